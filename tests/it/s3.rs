//! Against the real S3-compatible server that `tests/run.sh` starts: the
//! binary ingests to `s3://`, and pyarrow, an independent reader, reads the
//! committed Parquet straight from the server.

use std::process::Command;

use crate::util::{ipi, repo_root, run, s3_required, test_python, text};

/// The S3 prefix for this test run, or `None` (skip) when no server is
/// configured and none is required.
pub(crate) fn s3_prefix() -> Option<String> {
    match std::env::var("IPI_TEST_S3_URL") {
        Ok(url) => Some(format!("{}/{}", url.trim_end_matches('/'), uuid::Uuid::now_v7())),
        Err(_) if s3_required() => panic!("IPI_TEST_S3_REQUIRED=1 but IPI_TEST_S3_URL is not set"),
        Err(_) => {
            eprintln!("skipped: set IPI_TEST_S3_URL (tests/run.sh does) to test against S3");
            None
        }
    }
}

#[test]
fn ingest_to_s3_is_read_back_by_pyarrow() {
    let (Some(prefix), Some(python)) = (s3_prefix(), test_python()) else { return };
    let root = repo_root();
    let output = format!("{prefix}/events");
    let out = run(ipi(&root).args([
        "ingest",
        "data/sample/access.log.gz",
        "--json",
        "--output",
        &output,
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = summary["totals"]["rows"].as_u64().unwrap();
    assert!(rows > 0);

    // pyarrow follows our manifest to the committed files and reads them
    // from the server with its own S3 client and its own signing.
    let script = r#"
import json, os, sys
import pyarrow.fs as fs, pyarrow.parquet as pq
url = sys.argv[1]
bucket_and_key = url[len("s3://"):]
s3 = fs.S3FileSystem(endpoint_override=os.environ["AWS_ENDPOINT_URL"], region=os.environ["AWS_REGION"],
                     access_key=os.environ["AWS_ACCESS_KEY_ID"], secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                     scheme="http")
with s3.open_input_stream(bucket_and_key + "/_ipi_dataset.json") as f:
    manifest = json.load(f)
rows, users = 0, set()
for entry in manifest["files"]:
    table = pq.read_table(bucket_and_key + "/" + entry["path"], filesystem=s3)
    assert str(table.schema.field("timestamp").type) == "timestamp[us, tz=UTC]", table.schema
    rows += table.num_rows
    users.update(table.column("entity").to_pylist())
print(json.dumps({"rows": rows, "users": len(users)}))
"#;
    let out = run(Command::new(python).arg("-c").arg(script).arg(&output));
    assert!(out.status.success(), "{}", text(&out));
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(read["rows"].as_u64(), Some(rows));
    assert!(read["users"].as_u64().unwrap() > 1);
}

#[test]
fn ingest_reads_gzipped_logs_from_s3_by_glob() {
    let Some(prefix) = s3_prefix() else { return };
    let root = repo_root();
    let sample = std::fs::read(root.join("data/sample/access.log.gz")).unwrap();
    // Two copies of the sample under a prefix, and a file the glob must skip.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for name in ["logs/a/access.log.gz", "logs/b/access.log.gz", "logs/b/notes.txt"] {
            let location = ipi_storage::Location::parse(&format!("{prefix}/{name}")).unwrap();
            ipi_storage::put_atomic(&location, sample.clone().into()).await.unwrap();
        }
    });
    let local = run(ipi(&root)
        .args(["ingest", "data/sample/access.log.gz", "--json", "--output"])
        .arg(tempfile::tempdir().unwrap().path().join("events")));
    assert_eq!(local.status.code(), Some(0), "{}", text(&local));
    let local: serde_json::Value = serde_json::from_slice(&local.stdout).unwrap();

    let out = run(ipi(&root)
        .args(["ingest", &format!("{prefix}/logs/*/*.gz"), "--json", "--output"])
        .arg(format!("{prefix}/events")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let remote: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let inputs = remote["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 2, "{remote}");
    for input in inputs {
        assert!(input["source"].as_str().unwrap().starts_with("s3://"), "{input}");
        assert_eq!(input["lines"], local["totals"]["lines"]);
        assert_eq!(input["rejected"], local["totals"]["rejected"]);
    }
    let rows = |v: &serde_json::Value| v["totals"]["rows"].as_u64().unwrap();
    assert_eq!(rows(&remote), 2 * rows(&local));
}
