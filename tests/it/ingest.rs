//! `ipi-pipeline ingest` end to end: every line accounted for, and DuckDB,
//! an independent reader, agrees with the input.

use std::path::Path;
use std::process::Command;

use crate::util::{ipi, repo_root, run, test_python, text};

/// Ingest `inputs` into a fresh temp dir; returns (dir, summary JSON).
fn ingest(inputs: &[&Path]) -> (tempfile::TempDir, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("events");
    let mut cmd = ipi(&repo_root());
    cmd.arg("ingest").args(inputs).arg("--output").arg(&output).args([
        "--json",
        "--max-reject-ratio",
        "1",
    ]);
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    (dir, serde_json::from_slice(&out.stdout).unwrap())
}

/// Every input's lines = rows + filtered + rejected, and the lines are the
/// file's lines.
fn assert_accounted(summary: &serde_json::Value) {
    for input in summary["inputs"].as_array().unwrap() {
        let n = |k: &str| input[k].as_u64().unwrap();
        assert_eq!(n("lines"), n("rows") + n("filtered") + n("rejected"), "{input}");
        let path = input["source"].as_str().unwrap().trim_start_matches("file://");
        let bytes = std::fs::read(path).unwrap();
        let lines = bytes.split(|&b| b == b'\n').count() as u64 - u64::from(bytes.ends_with(b"\n"));
        assert_eq!(n("lines"), lines, "{path}");
    }
}

/// DuckDB reads the events and rejects; Python's own strptime reads the
/// timestamps of every line that was not rejected. They must agree with us
/// on count, min and max.
fn assert_duckdb_agrees(events: &Path, inputs: &[&Path]) {
    let Some(python) = test_python() else { return };
    let script = r#"
import datetime, json, re, sys
import duckdb
events = sys.argv[1]
got = duckdb.sql(f"select count(*), min(timestamp), max(timestamp) from read_parquet('{events}/date=*/*.parquet')").fetchall()[0]
rejected = {(s, l) for s, l in duckdb.sql(f"select source, line from read_parquet('{events}/_rejects/*/*.parquet', hive_partitioning=false)").fetchall()}
stamp = re.compile(rb'\[(\d\d/\w\w\w/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\]')
times = []
for path in sys.argv[2:]:
    source = "file://" + path
    for n, line in enumerate(open(path, "rb").read().split(b"\n")[:-1], 1):
        if (source, n) in rejected:
            continue
        ts = stamp.search(line).group(1).decode()
        times.append(datetime.datetime.strptime(ts, "%d/%b/%Y:%H:%M:%S %z"))
utc = datetime.timezone.utc
print(json.dumps({"ours": [got[0], got[1].astimezone(utc).isoformat(), got[2].astimezone(utc).isoformat()],
                  "input": [len(times), min(times).astimezone(utc).isoformat(), max(times).astimezone(utc).isoformat()]}))
"#;
    let mut cmd = Command::new(python);
    cmd.arg("-c").arg(script).arg(events).args(inputs);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", text(&out));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["ours"], seen["input"]);
}

#[test]
fn edge_cases_fixture_is_parsed_or_rejected_as_expected() {
    let fixture = repo_root().join("tests/data/access_logs/edge_cases.log");
    let (dir, summary) = ingest(&[&fixture]);
    assert_accounted(&summary);
    let totals = &summary["totals"];
    assert_eq!(totals["rows"], 18, "{summary}");
    assert_eq!(totals["rejected"], 8, "{summary}");
    let reasons = totals["reasons"].as_object().unwrap();
    for reason in [
        "timestamp: impossible date",
        "timestamp: impossible offset",
        "timestamp: malformed",
        "user_agent: unterminated quote",
        "status: malformed",
        "empty line",
    ] {
        assert!(reasons.contains_key(reason), "no `{reason}` in {reasons:?}");
    }
    assert_duckdb_agrees(&dir.path().join("events"), &[&fixture]);
}

#[test]
fn the_real_logs_are_all_accounted_for() {
    // Real logs with their provenance sit beside the checkout (never
    // committed); skip where they are not.
    let shared = repo_root().join("../shared/data/access-logs");
    let mut inputs: Vec<_> = [
        "crowdsec_hub_http_tests.log",
        "elastic_examples_apache_logs.log",
        "logparser_hackers-access.log",
        "beats/filebeat_apache_access_test.log",
        "beats/filebeat_nginx_access_test.log",
    ]
    .iter()
    .map(|name| shared.join(name))
    .filter(|path| path.exists())
    .collect();
    if inputs.is_empty() {
        eprintln!("skipped: no real logs at {}", shared.display());
        return;
    }
    inputs.iter_mut().for_each(|p| *p = p.canonicalize().unwrap());
    let inputs: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
    let (dir, summary) = ingest(&inputs);
    assert_accounted(&summary);
    assert_duckdb_agrees(&dir.path().join("events"), &inputs);
    assert_rows_in_input_order(&dir.path().join("events"), &inputs);
}

/// In every file, rows come in input order: sources as given, and lines
/// rising within a source, however the inputs' parsing overlapped.
fn assert_rows_in_input_order(events: &Path, inputs: &[&Path]) {
    let Some(python) = test_python() else { return };
    let script = r#"
import glob, json, sys
import pyarrow.parquet as pq
order = {"file://" + p: i for i, p in enumerate(sys.argv[2:])}
checked = 0
for f in sorted(glob.glob(sys.argv[1] + "/date=*/*.parquet")):
    t = pq.read_table(f, columns=["source", "line"])
    keys = [(order[s], l) for s, l in zip(t.column("source").to_pylist(), t.column("line").to_pylist())]
    assert keys == sorted(keys), f
    checked += len(keys)
print(checked)
"#;
    let out = run(Command::new(python).arg("-c").arg(script).arg(events).args(inputs));
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn sagemaker_csv_and_headed_csv_tables() {
    let root = repo_root();
    let dir = tempfile::tempdir().unwrap();
    let sagemaker = root.join("tests/data/tables/sagemaker.csv");
    // SageMaker's CSV has no times, so a default is required.
    let out = run(ipi(&root)
        .args(["ingest", "--format", "sagemaker_csv", "--output"])
        .arg(dir.path().join("a"))
        .arg(&sagemaker));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("default_timestamp"), "{}", text(&out));

    let out = run(ipi(&root)
        .args(["ingest", "--format", "sagemaker_csv", "--json", "--max-reject-ratio", "1"])
        .args(["--default-timestamp", "2018-11-12T00:00:00Z", "--output"])
        .arg(dir.path().join("a"))
        .arg(&sagemaker));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["totals"]["rows"], 4, "{summary}");
    assert_eq!(summary["totals"]["reasons"]["ip: missing"], 1, "{summary}");
    assert_eq!(summary["partitions"], serde_json::json!(["date=2018-11-12"]));

    let out = run(ipi(&root)
        .args(["ingest", "--format", "csv", "--json", "--max-reject-ratio", "1", "--output"])
        .arg(dir.path().join("b"))
        .arg(root.join("tests/data/tables/events.csv")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["totals"]["rows"], 2, "{summary}");
    assert_eq!(summary["totals"]["reasons"]["timestamp: malformed"], 1, "{summary}");
    // 23:30 at -01:00 is 00:30 UTC the next day.
    assert_eq!(summary["partitions"], serde_json::json!(["date=2018-11-12", "date=2018-11-13"]));
}

/// Write a one-file Parquet table with these columns.
fn write_table(path: &Path, columns: Vec<(&str, arrow_array::ArrayRef)>) {
    let batch = arrow_array::RecordBatch::try_from_iter(columns).unwrap();
    let location = ipi_storage::Location::parse(path.to_str().unwrap()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut sink = ipi_storage::ParquetSink::create(
            &location,
            batch.schema(),
            &ipi_storage::ParquetOptions::default(),
        )
        .unwrap();
        sink.write(&batch).await.unwrap();
        sink.close().await.unwrap();
    });
}

#[test]
fn parquet_tables_with_named_columns() {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray, TimestampMicrosecondArray};

    let dir = tempfile::tempdir().unwrap();
    let users = Arc::new(StringArray::from(vec![Some("alice"), Some("bob"), None]));
    let ips = Arc::new(StringArray::from(vec![Some("192.0.2.1"), Some("192.0.2.2"), Some("")]));
    // 2018-11-12T23:30:00Z and 2018-11-13T00:30:00Z, and one more.
    let times = [1_542_065_400_000_000, 1_542_069_000_000_000, 1_542_069_000_000_000];
    let table = dir.path().join("table.parquet");
    write_table(
        &table,
        vec![
            ("user", users.clone()),
            ("ip_address", ips.clone()),
            (
                "event_time",
                Arc::new(TimestampMicrosecondArray::from(times.to_vec()).with_timezone("UTC")),
            ),
            ("status", Arc::new(Int64Array::from(vec![200, 200, 200]))),
        ],
    );
    let out = run(ipi(&repo_root())
        .args(["ingest", "--format", "parquet", "--json", "--max-reject-ratio", "1", "--output"])
        .arg(dir.path().join("events"))
        .arg(&table));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["totals"]["rows"], 2, "{summary}");
    assert_eq!(summary["totals"]["reasons"]["ip: missing"], 1, "{summary}");
    assert_eq!(summary["partitions"], serde_json::json!(["date=2018-11-12", "date=2018-11-13"]));

    // Naive times could mean any instant: refused, naming the column.
    let naive = dir.path().join("naive.parquet");
    write_table(
        &naive,
        vec![
            ("user", users),
            ("ip", ips),
            ("timestamp", Arc::new(TimestampMicrosecondArray::from(times.to_vec()))),
        ],
    );
    let out = run(ipi(&repo_root())
        .args(["ingest", "--format", "parquet", "--output"])
        .arg(dir.path().join("naive-events"))
        .arg(&naive));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("naive times"), "{}", text(&out));
}
