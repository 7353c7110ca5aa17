//! `ipi-pipeline score`: events in, the scores dataset out by UTC day,
//! locally and on the S3-compatible server; re-scoring a day replaces it;
//! bad rows kept in `_rejects/`; SageMaker's request and response bodies.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, Float32Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt32Array,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use futures::TryStreamExt;
use ipi_storage::{Dataset, DatasetWriter, Location, ReadOptions, WriteMode, read_parquet};

use crate::s3::s3_prefix;
use crate::util::{PY_STORE_FS, ipi, run, test_python, text};

const DAY1: i64 = 1_541_980_800_000_000; // 2018-11-12T00:00:00Z
const DAY: i64 = 86_400_000_000;

/// A small model trained on 60 users with home /16s (as in `train.rs`).
pub(crate) fn train_model(dir: &Path) {
    let mut csv = String::new();
    for u in 0..60u32 {
        for k in 0..25u32 {
            writeln!(
                csv,
                "user_{u},{}.{}.{}.{}",
                10 + u % 200,
                (u * 37) % 256,
                k % 4,
                (k * 53) % 256
            )
            .unwrap();
        }
    }
    std::fs::write(dir.join("train.csv"), csv).unwrap();
    let out = run(ipi(dir).args([
        "train",
        "--train",
        "train.csv",
        "--model",
        "model",
        "--num-entity-vectors",
        "120",
        "--vector-dim",
        "16",
        "--epochs",
        "2",
        "--mini-batch-size",
        "50",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// Events over two UTC days: 100 rows on 2018-11-12 (one IPv6, one without
/// an entity, eight of entities never trained on), 50 on 2018-11-13.
fn write_events(url: &str) {
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("entity", DataType::Utf8, true),
        Field::new("ip", DataType::Utf8, false),
        Field::new("ipv4", DataType::UInt32, true),
    ]));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let root = Location::parse(url).unwrap();
        let mut writer = DatasetWriter::new(root, schema.clone(), WriteMode::ReplacePartitions);
        for (day, n) in [(0i64, 100u32), (1, 50)] {
            let mut ts = Vec::new();
            let mut entity = Vec::new();
            let mut ip = Vec::new();
            let mut ipv4 = Vec::new();
            for i in 0..n {
                let u = i % 60;
                let addr = format!("{}.{}.{}.{}", 10 + u % 200, (u * 37) % 256, i % 4, i % 256);
                ts.push(DAY1 + day * DAY + i64::from(i) * 1_000_000);
                match (day, i) {
                    (0, 0) => {
                        entity.push(Some("user_0".to_string()));
                        ip.push("2001:db8::1".to_string());
                        ipv4.push(None);
                    }
                    (0, 1) => {
                        entity.push(None);
                        ipv4.push(ipi_core::ipv4::parse(addr.as_bytes()));
                        ip.push(addr);
                    }
                    (0, 2..=9) => {
                        entity.push(Some(format!("never_seen_user_{i}")));
                        ipv4.push(ipi_core::ipv4::parse(addr.as_bytes()));
                        ip.push(addr);
                    }
                    _ => {
                        entity.push(Some(format!("user_{u}")));
                        ipv4.push(ipi_core::ipv4::parse(addr.as_bytes()));
                        ip.push(addr);
                    }
                }
            }
            let columns: Vec<ArrayRef> = vec![
                Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")),
                Arc::new(StringArray::from(entity)),
                Arc::new(StringArray::from(ip)),
                Arc::new(UInt32Array::from(ipv4)),
            ];
            let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
            let partition = format!("date=2018-11-1{}", 2 + day);
            writer.write(partition.as_str(), &batch).await.unwrap();
        }
        writer.commit().await.unwrap();
    });
}

/// One day of a committed dataset, its files in order, as one batch, and
/// the files' paths.
fn read_day(root: &Location, day: &str) -> (RecordBatch, Vec<String>) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dataset = Dataset::open(root).await.unwrap();
        let mut batches = Vec::new();
        let mut names = Vec::new();
        for file in dataset.files().iter().filter(|f| f.partition == day) {
            names.push(file.path.clone());
            let options = ReadOptions::default().with_file_size(file.size);
            let stream = read_parquet(&file.location, &options).await.unwrap();
            batches.extend(stream.try_collect::<Vec<_>>().await.unwrap());
        }
        (arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap(), names)
    })
}

fn score_json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = run(ipi(dir).arg("score").args(args).arg("--json"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `(partition, rows)` of the committed dataset at `url`.
fn partitions(url: &str) -> Vec<(String, u64)> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dataset = Dataset::open(&Location::parse(url).unwrap()).await.unwrap();
        let mut out: Vec<(String, u64)> = Vec::new();
        for f in dataset.files() {
            match out.iter_mut().find(|(p, _)| *p == f.partition) {
                Some((_, rows)) => *rows += f.rows,
                None => out.push((f.partition.clone(), f.rows)),
            }
        }
        out.sort();
        out
    })
}

/// Reads the files a dataset's manifest lists (local, or on the S3 test
/// server) into DuckDB and counts each partition's rows.
const DUCKDB_READ_BACK: &str = r#"
import json, sys
import duckdb, pyarrow as pa, pyarrow.parquet as pq
fs, root = store_fs(sys.argv[1])
with fs.open_input_stream(root + "/_ipi_dataset.json") as f:
    files = json.load(f)["files"]
tables = []
for f in files:
    t = pq.read_table(root + "/" + f["path"], filesystem=fs)
    tables.append(t.append_column("part", pa.array([f["partition"]] * t.num_rows)))
scores = pa.concat_tables(tables)
rows = duckdb.sql("select part, count(*), count(distinct (entity, timestamp)), sum(case when anomaly_score = -dot_product then 1 else 0 end) from scores group by part order by part").fetchall()
print(json.dumps(rows))
"#;

/// Score two days, re-score one: same rows, no duplicates, rejects kept.
fn score_and_rescore(dir: &Path, store: &str) {
    let events = format!("{store}/events");
    let scores = format!("{store}/scores");
    write_events(&events);
    let report = score_json(
        dir,
        &["--model", "model", "--input", &events, "--output", &scores, "--threshold", "0"],
    );
    assert_eq!(report["rows_in"], 150, "{report}");
    assert_eq!(report["rows"], 148, "{report}");
    assert_eq!(report["rejected"], 2, "{report}");
    assert!(report["unseen_entities"].as_u64().unwrap() >= 1, "{report}");
    let expected = vec![("date=2018-11-12".to_string(), 98), ("date=2018-11-13".to_string(), 50)];
    assert_eq!(partitions(&scores), expected);
    assert_eq!(partitions(&format!("{scores}/_rejects")), [("date=2018-11-12".to_string(), 2)]);

    // Re-scoring one day replaces it: the same rows, none twice.
    let again = score_json(
        dir,
        &["--model", "model", "--input", &format!("{events}/date=2018-11-12"), "--output", &scores],
    );
    assert_eq!(again["rows"], 98, "{again}");
    assert_eq!(again["partitions"], serde_json::json!(["date=2018-11-12"]));
    assert_eq!(partitions(&scores), expected);
    assert_eq!(partitions(&format!("{scores}/_rejects")), [("date=2018-11-12".to_string(), 2)]);

    // DuckDB reads the scores back (from the S3 server through pyarrow's
    // client, or from disk): every row of both days once, with its scores.
    if let Some(python) = test_python() {
        let script = format!("{PY_STORE_FS}{DUCKDB_READ_BACK}");
        let out = run(Command::new(python).arg("-c").arg(script).arg(&scores));
        assert!(out.status.success(), "{}", text(&out));
        let counts: Vec<(String, i64, i64, i64)> = serde_json::from_slice(&out.stdout).unwrap();
        let expected = [("date=2018-11-12", 98), ("date=2018-11-13", 50)]
            .map(|(day, n)| (day.to_string(), n, n, n));
        assert_eq!(
            counts, expected,
            "(partition, rows, distinct rows, anomaly_score = -dot_product)"
        );
    }

    // A day without events scores nothing and does not fail.
    let empty = score_json(
        dir,
        &["--model", "model", "--input", &format!("{events}/date=2030-01-01"), "--output", &scores],
    );
    assert_eq!(empty["rows"], 0, "{empty}");
    assert_eq!(partitions(&scores), expected);
}

#[test]
fn score_events_by_day_locally_and_rescore_replaces_the_day() {
    let dir = tempfile::tempdir().unwrap();
    train_model(dir.path());
    let store = dir.path().join("store");
    score_and_rescore(dir.path(), store.to_str().unwrap());

    // The events dataset with --accept: one SageMaker response per input
    // file, a line per scored row, however the rows are batched.
    let events = store.join("events");
    for batch_rows in ["65536", "7"] {
        let out = dir.path().join(format!("responses-{batch_rows}"));
        let args = [
            "--model",
            "model",
            "--input",
            events.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--accept",
            "application/jsonlines",
            "--batch-rows",
            batch_rows,
        ];
        score_json(dir.path(), &args);
        let mut lines = Vec::new();
        for day in ["date=2018-11-12", "date=2018-11-13"] {
            let files: Vec<_> = std::fs::read_dir(out.join(day)).unwrap().flatten().collect();
            assert_eq!(files.len(), 1, "{day}");
            let name = files[0].file_name().into_string().unwrap();
            assert!(name.ends_with(".parquet.out"), "{name}");
            lines.push(std::fs::read_to_string(files[0].path()).unwrap().lines().count());
        }
        assert_eq!(lines, [98, 50], "batch rows {batch_rows}");
    }

    // The scores dataset has each row's columns and the score the
    // responses have: day 2's columns were carried over unchanged (every
    // row scored), day 1's were decoded and written again (it has rejects).
    let scores = Location::parse(store.join("scores").to_str().unwrap()).unwrap();
    for (day, rows) in [("date=2018-11-12", 98), ("date=2018-11-13", 50)] {
        let dir = dir.path().join("responses-65536").join(day);
        let file = std::fs::read_dir(&dir).unwrap().flatten().next().unwrap().path();
        let response: Vec<f32> = std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["dot_product"]
                    .as_f64()
                    .unwrap() as f32
            })
            .collect();
        let (scored, names) = read_day(&scores, day);
        assert_eq!(scored.num_rows(), rows, "{day}");
        // Carried files are named `part-<txn>-c<n>.parquet`, others
        // `part-<txn>-<n>.parquet` (the txn, a UUID, may hold "-c0" too).
        let carried =
            names.iter().all(|n| n.rsplit('-').next().is_some_and(|n| n.starts_with('c')));
        assert_eq!(carried, day == "date=2018-11-13", "{names:?}");
        let dot = scored["dot_product"].as_any().downcast_ref::<Float32Array>().unwrap();
        assert_eq!(dot.values().to_vec(), response, "{day}");
        let (events, _) = read_day(&Location::parse(events.to_str().unwrap()).unwrap(), day);
        let keep: Vec<usize> = match day {
            "date=2018-11-12" => (2..100).collect(),
            _ => (0..50).collect(),
        };
        let indices = UInt32Array::from_iter_values(keep.iter().map(|&i| i as u32));
        for (i, field) in events.schema().fields().iter().enumerate() {
            let expected = arrow::compute::take(events.column(i), &indices, None).unwrap();
            assert_eq!(&expected, &scored[field.name().as_str()], "{day} {}", field.name());
        }
    }

    // DuckDB, an independent reader, sees the columns and their meaning.
    let Some(python) = test_python() else { return };
    let script = r#"
import duckdb, json, sys
d = sys.argv[1]
q = f"select count(*), count(distinct (entity, timestamp)), sum(case when anomaly_score = -dot_product then 1 else 0 end), sum(case when not entity_seen then 1 else 0 end), sum(case when flagged = (anomaly_score > 0) then 1 else 0 end), count(distinct model_id) from read_parquet('{d}/scores/date=*/*.parquet')"
print(json.dumps(duckdb.sql(q).fetchall()[0]))
reasons = duckdb.sql(f"select reason from read_parquet('{d}/scores/_rejects/*/*.parquet', hive_partitioning=false) order by reason").fetchall()
print(json.dumps([r[0] for r in reasons]))
"#;
    let out = run(Command::new(python).arg("-c").arg(script).arg(&store));
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut lines = stdout.lines();
    let counts: Vec<i64> = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(counts[0], 148);
    assert_eq!(counts[1], 148, "no duplicates");
    assert_eq!(counts[2], 148, "anomaly_score = -dot_product");
    assert!(counts[3] >= 1, "unseen entities are kept");
    // Day 2 kept its threshold's flags; day 1 was re-scored without a
    // threshold, so its 98 rows have flagged = null.
    assert_eq!(counts[4], 50, "flagged = anomaly_score > threshold");
    assert_eq!(counts[5], 1);
    let reasons: Vec<String> = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(reasons, ["empty_entity", "invalid_ip"]);
}

#[test]
fn score_events_on_s3_and_rescore_replaces_the_day() {
    let Some(prefix) = s3_prefix() else { return };
    let dir = tempfile::tempdir().unwrap();
    train_model(dir.path());
    score_and_rescore(dir.path(), &prefix);
}

/// Every SageMaker request format in, every response format out.
#[test]
fn sagemaker_request_bodies_get_sagemaker_responses() {
    let dir = tempfile::tempdir().unwrap();
    train_model(dir.path());
    let d = dir.path();
    std::fs::create_dir(d.join("in")).unwrap();
    std::fs::write(d.join("in/a.csv"), "user_1,35.37.0.1\nuser_2,10.10.1.2\nuser_3,::1\n").unwrap();
    std::fs::write(
        d.join("in/b.json"),
        r#"{"instances":[{"data":{"features":{"values":["user_1","35.37.0.1"]}}},{"features":["user_2","10.10.1.2"]}]}"#,
    )
    .unwrap();
    std::fs::write(
        d.join("in/c.jsonl"),
        "{\"features\":[\"user_1\",\"35.37.0.1\"]}\n{\"data\":{\"features\":{\"values\":[\"user_2\",\"10.10.1.2\"]}}}\n",
    )
    .unwrap();

    // CSV to the scores dataset: the input's columns and the scores.
    let report =
        score_json(d, &["--model", "model", "--input", "in/a.csv", "--output", "csv_scores"]);
    assert_eq!(report["rows"], 2, "{report}");
    assert_eq!(report["rejected"], 1, "{report}");
    assert_eq!(partitions(d.join("csv_scores").to_str().unwrap()), [(String::new(), 2)]);

    // JSON, JSON Lines responses, verbose and not.
    let mut dots = Vec::new();
    for (input, ct) in [
        ("in/a.csv", "text/csv"),
        ("in/b.json", "application/json"),
        ("in/c.jsonl", "application/jsonlines"),
    ] {
        for verbose in [false, true] {
            let out_dir = format!("out-{}-{verbose}", ct.replace('/', "_"));
            let mut args = vec![
                "--model",
                "model",
                "--input",
                input,
                "--output",
                &out_dir,
                "--content-type",
                ct,
                "--accept",
                "application/jsonlines",
            ];
            if verbose {
                args.push("--verbose");
            }
            score_json(d, &args);
            let name = Path::new(input).file_name().unwrap().to_str().unwrap();
            let body =
                std::fs::read_to_string(d.join(&out_dir).join(format!("{name}.out"))).unwrap();
            assert_eq!(body.lines().count(), 2, "{body}");
            for raw in body.lines() {
                let line: serde_json::Value = serde_json::from_str(raw).unwrap();
                let keys = line.as_object().unwrap().len();
                if verbose {
                    // SageMaker's key order.
                    assert_eq!(keys, 3, "{raw}");
                    let at = |k: &str| raw.find(&format!("\"{k}\"")).unwrap();
                    assert!(at("dot_product") < at("ip_embedding"), "{raw}");
                    assert!(at("ip_embedding") < at("entity_embedding"), "{raw}");
                    let ip: Vec<f64> =
                        serde_json::from_value(line["ip_embedding"].clone()).unwrap();
                    let e: Vec<f64> =
                        serde_json::from_value(line["entity_embedding"].clone()).unwrap();
                    assert_eq!(ip.len(), 16);
                    let dot: f64 = ip.iter().zip(&e).map(|(a, b)| a * b).sum();
                    let got = line["dot_product"].as_f64().unwrap();
                    assert!((dot - got).abs() < 1e-5, "{dot} vs {got}");
                } else {
                    assert_eq!(keys, 1, "{raw}");
                    assert!(raw.starts_with("{\"dot_product\":"), "{raw}");
                }
                dots.push(line["dot_product"].as_f64().unwrap());
            }
        }
    }
    // The same pairs score the same in every format.
    for pair in dots.chunks(2) {
        assert_eq!(pair, &dots[..2]);
    }

    // application/json: {"predictions":[...]}.
    score_json(
        d,
        &[
            "--model",
            "model",
            "--input",
            "in/b.json",
            "--output",
            "out-json",
            "--accept",
            "application/json",
        ],
    );
    let body: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out-json/b.json.out")).unwrap()).unwrap();
    let predictions = body["predictions"].as_array().unwrap();
    assert_eq!(body.as_object().unwrap().len(), 1);
    assert_eq!(predictions.len(), 2);
    assert_eq!(predictions[0]["dot_product"].as_f64().unwrap(), dots[0]);

    // An unsupported type is a usage error that says what is supported.
    let out = run(ipi(d).args([
        "score",
        "--model",
        "model",
        "--input",
        "in/a.csv",
        "--output",
        "x",
        "--content-type",
        "text/plain",
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("text/csv"), "{}", text(&out));

    // A glob names request bodies, not Parquet: refused, saying what to give.
    let out =
        run(ipi(d).args(["score", "--model", "model", "--input", "in/*.parquet", "--output", "x"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("a day of it"), "{}", text(&out));
}

#[test]
fn large_bodies_are_streamed_in_pieces_with_the_same_results() {
    // A CSV body of 1,000 lines, a few of them bad, scored whole (one
    // piece) and in pieces of 7 lines: the same responses, the same
    // rejects with the same line numbers, and the same scores dataset.
    let dir = tempfile::tempdir().unwrap();
    train_model(dir.path());
    let d = dir.path();
    let mut csv = String::new();
    let mut bad_lines = Vec::new();
    for line in 1..=1000u32 {
        match line % 97 {
            0 => {
                writeln!(csv, "user_{line},2001:db8::{line}").unwrap();
                bad_lines.push(u64::from(line));
            }
            13 => {
                writeln!(csv, "only_one_field_{line}").unwrap();
                bad_lines.push(u64::from(line));
            }
            _ => {
                writeln!(csv, "user_{},{}.{}.0.{}", line % 60, 10 + line % 60, line % 7, line % 256)
                    .unwrap()
            }
        }
    }
    csv.push_str("user_1,35.37.0.1"); // no final newline
    std::fs::write(d.join("big.csv"), &csv).unwrap();

    let rejected_lines = |out: &str| -> Vec<u64> {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let root = Location::parse(&format!("{}/{out}/_rejects", d.display())).unwrap();
            let dataset = Dataset::open(&root).await.unwrap();
            let mut lines = Vec::new();
            for f in dataset.files() {
                let mut stream = read_parquet(&f.location, &Default::default()).await.unwrap();
                while let Some(batch) = TryStreamExt::try_next(&mut stream).await.unwrap() {
                    let column = batch.column_by_name("line").unwrap();
                    let column =
                        column.as_any().downcast_ref::<arrow_array::UInt64Array>().unwrap();
                    lines.extend(column.values().iter().copied());
                }
            }
            lines.sort_unstable();
            lines
        })
    };
    let mut bodies = Vec::new();
    for batch_rows in ["100000", "7"] {
        for accept in ["application/jsonlines", "application/json"] {
            let out = format!("out-{batch_rows}-{}", accept.replace('/', "_"));
            let report = score_json(
                d,
                &[
                    "--model",
                    "model",
                    "--input",
                    "big.csv",
                    "--output",
                    &out,
                    "--accept",
                    accept,
                    "--batch-rows",
                    batch_rows,
                ],
            );
            assert_eq!(report["rows_in"], 1001, "{report}");
            assert_eq!(report["rejected"], bad_lines.len(), "{report}");
            assert_eq!(rejected_lines(&out), bad_lines, "batch rows {batch_rows}");
            bodies.push(std::fs::read(d.join(&out).join("big.csv.out")).unwrap());
        }
        let out = format!("scores-{batch_rows}");
        score_json(
            d,
            &[
                "--model",
                "model",
                "--input",
                "big.csv",
                "--output",
                &out,
                "--batch-rows",
                batch_rows,
            ],
        );
        assert_eq!(
            partitions(d.join(&out).to_str().unwrap()),
            [(String::new(), 1001 - bad_lines.len() as u64)]
        );
    }
    // The same predictions, in the same order (scores of a pair agree to
    // float rounding: the matmul's kernel depends on the batch's size).
    let dots = |body: &[u8], json: bool| -> Vec<f64> {
        let values: Vec<serde_json::Value> = if json {
            let body: serde_json::Value = serde_json::from_slice(body).unwrap();
            body["predictions"].as_array().unwrap().clone()
        } else {
            body.split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice(l).unwrap())
                .collect()
        };
        values.iter().map(|v| v["dot_product"].as_f64().unwrap()).collect()
    };
    let whole = dots(&bodies[0], false);
    assert_eq!(whole.len(), 1001 - bad_lines.len());
    for (body, json) in [(&bodies[1], true), (&bodies[2], false), (&bodies[3], true)] {
        let other = dots(body, json);
        assert_eq!(other.len(), whole.len());
        for (i, (a, b)) in whole.iter().zip(&other).enumerate() {
            assert!((a - b).abs() <= 1e-6 * a.abs().max(1.0), "prediction {i}: {a} vs {b}");
        }
    }
}

/// pyarrow writes an empty table as one row group of no rows: scoring it
/// scores nothing and succeeds, as an input without row groups does.
#[test]
fn an_empty_row_group_scores_nothing() {
    let Some(python) = test_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    train_model(dir.path());
    let script = r#"
import sys, pyarrow as pa, pyarrow.parquet as pq
schema = pa.schema([("timestamp", pa.timestamp("us", tz="UTC")), ("entity", pa.string()), ("ip", pa.string())])
pq.write_table(schema.empty_table(), sys.argv[1])
assert pq.ParquetFile(sys.argv[1]).metadata.num_row_groups == 1
"#;
    std::fs::create_dir(dir.path().join("in")).unwrap();
    let out = run(Command::new(python).arg("-c").arg(script).arg(dir.path().join("in/e.parquet")));
    assert!(out.status.success(), "{}", text(&out));
    let report =
        score_json(dir.path(), &["--model", "model", "--input", "in", "--output", "scores"]);
    assert_eq!((&report["rows_in"], &report["rows"]), (&0.into(), &0.into()), "{report}");
}

#[test]
fn a_promoted_model_is_what_the_models_folder_loads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    train_model(d);
    std::fs::create_dir(d.join("models")).unwrap();
    std::fs::rename(d.join("model"), d.join("models/2018-11-12")).unwrap();
    std::fs::write(d.join("pairs.csv"), "user_1,35.37.0.1\nuser_2,10.10.1.2\n").unwrap();

    // Nothing promoted yet: a clear error, not a crash.
    let out =
        run(ipi(d).args(["score", "--model", "models", "--input", "pairs.csv", "--output", "o"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("ipi-pipeline promote"), "{}", text(&out));

    // Promoted with a threshold below every score: scoring with the folder
    // flags every row unless given another threshold.
    let out = run(ipi(d).args([
        "promote",
        "--model",
        "models/2018-11-12",
        "--to",
        "models",
        "--threshold",
        "-1e9",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let latest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("models/latest.json")).unwrap()).unwrap();
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("models/2018-11-12/model.json")).unwrap())
            .unwrap();
    assert_eq!(latest["model"], "2018-11-12");
    assert_eq!(latest["model_id"], card["model_id"]);
    assert_eq!(latest["threshold"], -1e9);
    let report = score_json(d, &["--model", "models", "--input", "pairs.csv", "--output", "o"]);
    assert_eq!(report["model_id"], card["model_id"]);
    assert_eq!(report["rows"], 2);
    assert_eq!(report["threshold"], -1e9);
    assert_eq!(report["flagged"], 2);
    let args = ["--model", "models", "--input", "pairs.csv", "--output", "o", "--threshold", "1e9"];
    let report = score_json(d, &args);
    assert_eq!((report["threshold"].as_f64(), report["flagged"].as_u64()), (Some(1e9), Some(0)));
    // The model folder itself carries no threshold.
    let args = ["--model", "models/2018-11-12", "--input", "pairs.csv", "--output", "o"];
    let report = score_json(d, &args);
    assert_eq!((report["threshold"].is_null(), report["flagged"].as_u64()), (true, Some(0)));

    // A model retrained into the promoted folder without being promoted
    // is not used behind the pointer's back.
    let out = run(ipi(d).args([
        "train",
        "--train",
        "train.csv",
        "--model",
        "models/2018-11-12",
        "--num-entity-vectors",
        "120",
        "--vector-dim",
        "16",
        "--epochs",
        "1",
        "--mini-batch-size",
        "50",
        "--seed",
        "9",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out =
        run(ipi(d).args(["score", "--model", "models", "--input", "pairs.csv", "--output", "o"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("promote it again"), "{}", text(&out));
}
