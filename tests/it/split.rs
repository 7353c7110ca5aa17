//! `ipi-pipeline split` end to end: from and to the real S3-compatible
//! server that `tests/run.sh` starts, compared with the same split on local
//! disk; and CSV input whose times have no zone.

use std::path::Path;
use std::process::Command;

use ipi_storage::{Dataset, Location};

use crate::s3::s3_prefix;
use crate::util::{ipi, repo_root, run, test_python, text};

/// Runs `ipi-pipeline ARGS --json` and returns its JSON report.
fn json(root: &Path, args: &[&str]) -> serde_json::Value {
    let out = run(ipi(root).args(args).arg("--json"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

const SPLITS: [&str; 3] = ["train", "validation", "test"];

#[test]
fn split_from_s3_to_s3_matches_a_local_split() {
    let Some(prefix) = s3_prefix() else { return };
    let root = repo_root();
    let dir = tempfile::tempdir().unwrap();
    let local = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let (events, splits) = (format!("{prefix}/events"), format!("{prefix}/splits"));
    for output in [&events, &local("events")] {
        json(&root, &["ingest", "data/sample/access.log.gz", "--output", output]);
    }
    let split = |input: &str, output: &str| {
        json(
            &root,
            &[
                "split",
                "--input",
                input,
                "--output",
                output,
                "--validation",
                "1d",
                "--test",
                "1d",
                "--seed",
                "3",
                "--sagemaker-csv",
            ],
        )
    };
    let remote = split(&events, &splits);
    let here = split(&local("events"), &local("splits"));
    assert!(remote["train"]["rows"].as_u64().unwrap() > 0, "{remote}");
    for key in ["input_rows", "input_files", "boundaries", "dropped", "leakage_check_passed"] {
        assert_eq!(remote[key], here[key], "{key}");
    }

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let splits = Location::parse(&splits).unwrap();
        for name in SPLITS {
            let (r, l) = (&remote[name], &here[name]);
            for key in ["rows", "entities", "distinct_ips", "min_timestamp", "max_timestamp"] {
                assert_eq!(r[key], l[key], "{name}.{key}");
            }
            // A committed dataset on S3, whose one file is the local one.
            let dataset = Dataset::open(&splits.join(name)).await.unwrap();
            assert_eq!(dataset.commit_id(), r["commit"].as_str());
            assert_eq!(dataset.num_rows(), r["rows"].as_u64().unwrap());
            let file = ipi_storage::get_bytes(&dataset.files()[0].location).await.unwrap();
            let local_file = dir.path().join("splits").join(l["files"][0].as_str().unwrap());
            assert!(file == std::fs::read(local_file).unwrap(), "{name}: Parquet differs");
            let csv = ipi_storage::get_bytes(&splits.join(&format!("{name}.csv"))).await.unwrap();
            let local_csv = std::fs::read(dir.path().join(format!("splits/{name}.csv"))).unwrap();
            assert!(csv == local_csv, "{name}.csv differs");
        }
        let report = ipi_storage::get_bytes(&splits.join("_manifest.json")).await.unwrap();
        let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
        assert_eq!(report["train"]["commit"], remote["train"]["commit"]);
    });

    // A re-run replaces each split: a new commit, one file, no CSV now.
    let again = json(
        &root,
        &["split", "--input", &events, "--output", &splits, "--validation", "1d", "--test", "1d"],
    );
    runtime.block_on(async {
        let splits = Location::parse(&splits).unwrap();
        for name in SPLITS {
            assert_ne!(again[name]["commit"], remote[name]["commit"], "{name}");
            let objects = ipi_storage::list_all(&splits.join(name)).await.unwrap();
            assert_eq!(objects.len(), 2, "{name}: the manifest and one file: {objects:?}");
            let csv = ipi_storage::get_bytes(&splits.join(&format!("{name}.csv"))).await;
            assert!(csv.unwrap_err().is_not_found(), "{name}.csv outlived the run without it");
        }
    });

    // pyarrow, an independent reader, follows the manifests on the server.
    let Some(python) = test_python() else { return };
    let script = r#"
import json, os, sys
import pyarrow.fs as fs, pyarrow.parquet as pq
bucket_and_key = sys.argv[1][len("s3://"):]
s3 = fs.S3FileSystem(endpoint_override=os.environ["AWS_ENDPOINT_URL"], region=os.environ["AWS_REGION"],
                     access_key=os.environ["AWS_ACCESS_KEY_ID"], secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                     scheme="http")
rows = {}
for name in ["train", "validation", "test"]:
    with s3.open_input_stream(f"{bucket_and_key}/{name}/_ipi_dataset.json") as f:
        manifest = json.load(f)
    rows[name] = 0
    for entry in manifest["files"]:
        table = pq.read_table(f"{bucket_and_key}/{name}/{entry['path']}", filesystem=s3)
        assert str(table.schema.field("timestamp").type) == "timestamp[us, tz=UTC]", table.schema
        rows[name] += table.num_rows
print(json.dumps(rows))
"#;
    let out = run(Command::new(python).arg("-c").arg(script).arg(&splits));
    assert!(out.status.success(), "{}", text(&out));
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for name in SPLITS {
        assert_eq!(read[name], again[name]["rows"], "{name}");
    }
}

#[test]
fn split_reads_naive_csv_times_only_with_assume_timezone() {
    let root = repo_root();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("logins.csv");
    std::fs::write(
        &csv,
        "timestamp,entity,ip\n\
         2018-11-10 09:00:00,alice,10.0.0.1\n\
         2018-11-11 09:00:00,alice,10.0.0.2\n\
         2018-11-12 09:00:00,bob,10.0.0.3\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let args = |extra: &[&'static str]| {
        let mut args = vec!["split", "--input", csv.to_str().unwrap()];
        args.extend(["--output", out.to_str().unwrap(), "--validation", "1d", "--test", "1d"]);
        args.extend(extra);
        args
    };
    let refused = run(ipi(&root).args(args(&[])));
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("--assume-timezone"), "{}", text(&refused));

    let report = json(&root, &args(&["--assume-timezone", "Asia/Kolkata"]));
    assert_eq!(report["assumed_timezone"]["naive_rows"], 3, "{report}");
    assert_eq!(report["test"]["min_timestamp"], "2018-11-12T03:30:00Z", "{report}");
    assert_eq!(report["train"]["rows"], 1, "{report}");
}
