//! `ipi-pipeline query` and the `query` step: every report in `sql/` on a
//! month of scores, locally and on the S3-compatible server, checked
//! against DuckDB on the same files and against a snapshot; bound
//! parameters, the read-only guard, errors with positions, and the step.
//!
//! Snapshots live in `tests/it/snapshots/query/`; after changing a report
//! or the fixture, `IPI_BLESS=1 tests/run.sh -- query` rewrites them (then
//! read the diff).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float32Array, Int16Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt16Array, UInt32Array, UInt64Array,
};
use arrow_schema::SchemaRef;
use ipi_core::schema::{events_schema, labels_schema, rejects_schema, scores_schema};
use ipi_storage::{Dataset, DatasetWriter, Location, WriteMode};

use crate::s3::s3_prefix;
use crate::util::{PY_STORE_FS, ipi, repo_root, run, test_python, text};

/// The day every report is run for.
const DATE: &str = "2018-11-12";
/// 2018-10-15T00:00:00Z: the fixture's first day; it has 30 (to 2018-11-13).
const DAY0: i64 = 1_539_561_600_000_000;
const DAY: i64 = 86_400_000_000;
const DAYS: i64 = 30;
/// The day whose scores were written without a threshold (flagged null).
const UNFLAGGED_DAY: i64 = 27;
/// The day of `DATE`, which has two files (a second, appended commit).
const DATE_DAY: i64 = 28;

fn day_name(day: i64) -> String {
    let date = chrono::DateTime::from_timestamp_micros(DAY0 + day * DAY).unwrap();
    date.format("%Y-%m-%d").to_string()
}

/// splitmix64: a fixed pseudo-random function, so the fixture is the same
/// everywhere.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn h(parts: &[u64]) -> u64 {
    parts.iter().fold(0x1234_5678, |acc, p| mix(acc ^ p))
}

/// A labelled attack: time, entity, address, kind.
type Label = (i64, String, u32, &'static str);

/// One scored login.
#[derive(Clone)]
struct Login {
    ts: i64,
    entity: String,
    ipv4: u32,
    user_agent: Option<&'static str>,
    anomaly: f32,
    seen: bool,
    flagged: Option<bool>,
}

const AGENTS: [Option<&str>; 4] = [
    Some("Mozilla/5.0 (X11; Linux x86_64)"),
    Some("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)"),
    Some("curl/8.4.0"),
    None,
];

/// The month of logins: 40 users, mostly from their home /16 with low
/// scores; one login in ten from elsewhere, scored high; users 0 to 3 move
/// in the last week (their scores shift); a few entities the model never
/// saw each day. Returns the logins by day and the labelled attacks.
fn month() -> (Vec<Vec<Login>>, Vec<Label>) {
    let mut days = Vec::new();
    let mut labels = Vec::new();
    for day in 0..DAYS {
        let mut logins = Vec::new();
        for u in 0..40u64 {
            let n = 1 + h(&[u, day as u64]) % 3;
            for k in 0..n {
                let r = h(&[u, day as u64, k]);
                let moved = u < 4 && day >= 22 && !r.is_multiple_of(3);
                let away = r.is_multiple_of(10) || moved;
                let (ipv4, anomaly) = if away {
                    let net = 20 + (r >> 8) % 200;
                    let addr = (net << 24) | ((r >> 16) & 0xff) << 16 | (r >> 32) & 0xffff;
                    (addr as u32, 1.0 + ((r >> 24) % 400) as f32 / 100.0)
                } else {
                    let addr = (10 << 24) | (u << 16) | (k << 8) | ((r >> 8) & 0xff);
                    (addr as u32, -1.0 - ((r >> 24) % 300) as f32 / 100.0)
                };
                let hour = (r >> 40) % 24;
                let ts = DAY0 + day * DAY + ((hour * 3600 + (r >> 48) % 3600) * 1_000_000) as i64;
                let agent = AGENTS[((r >> 56) % 4) as usize];
                let login = Login {
                    ts,
                    entity: format!("user_{u}"),
                    ipv4,
                    user_agent: if away && r.is_multiple_of(2) {
                        Some("curl/8.4.0")
                    } else {
                        agent
                    },
                    anomaly,
                    seen: true,
                    flagged: (day != UNFLAGGED_DAY).then_some(anomaly > 0.0),
                };
                // The last week's attacks: away logins of every fifth user
                // (most caught) and home logins of user 7 (missed).
                if day >= 22 && ((away && u % 5 == 0) || (u == 7 && k == 0)) {
                    let kind = if u == 7 {
                        "same_country_isp"
                    } else {
                        ["random_ip", "credential_stuffing", "impossible_travel", "cgnat"]
                            [(r % 4) as usize]
                    };
                    labels.push((ts, login.entity.clone(), ipv4, kind));
                }
                logins.push(login);
            }
        }
        for k in 0..(2 + day % 3) as u64 {
            let r = h(&[1000 + k, day as u64]);
            logins.push(Login {
                ts: DAY0 + day * DAY + ((r % 86_400) * 1_000_000) as i64,
                entity: format!("new_{day}_{k}"),
                ipv4: (100 << 24) | (r >> 40) as u32 & 0xff_ffff,
                user_agent: AGENTS[(r % 4) as usize],
                anomaly: ((r >> 8) % 200) as f32 / 100.0 - 1.0,
                seen: false,
                flagged: (day != UNFLAGGED_DAY).then_some(((r >> 8) % 200) > 100),
            });
        }
        // Attacks nobody scored (say ingest filtered them out).
        if day >= 22 {
            labels.push((
                DAY0 + day * DAY + 3_600_000_000,
                "user_3".into(),
                0xcb00_7101,
                "random_ip",
            ));
        }
        logins.sort_by(|a, b| (a.ts, &a.entity).cmp(&(b.ts, &b.entity)));
        days.push(logins);
    }
    (days, labels)
}

fn ip_text(ipv4: u32) -> String {
    std::net::Ipv4Addr::from(ipv4).to_string()
}

/// The logins as the score step writes them: the events' columns, then
/// the scores'.
fn scores_batch(logins: &[Login]) -> RecordBatch {
    let schema = scores_schema(&events_schema(), None);
    let n = logins.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(logins.iter().map(|l| l.ts))
                .with_timezone("UTC"),
        ),
        Arc::new(Int16Array::from(vec![0i16; n])),
        Arc::new(StringArray::from_iter_values(logins.iter().map(|l| l.entity.as_str()))),
        Arc::new(StringArray::from_iter_values(logins.iter().map(|l| ip_text(l.ipv4)))),
        Arc::new(UInt32Array::from_iter_values(logins.iter().map(|l| l.ipv4))),
        Arc::new(StringArray::from(vec![Some("GET"); n])),
        Arc::new(StringArray::from(vec![Some("/login_success"); n])),
        Arc::new(StringArray::from(vec![Some("HTTP/1.1"); n])),
        Arc::new(UInt16Array::from(vec![Some(200u16); n])),
        Arc::new(UInt64Array::from(vec![Some(512u64); n])),
        Arc::new(StringArray::from(vec![None::<&str>; n])),
        Arc::new(StringArray::from_iter(logins.iter().map(|l| l.user_agent))),
        Arc::new(StringArray::from(vec![None::<&str>; n])),
        Arc::new(StringArray::from(vec![None::<&str>; n])),
        Arc::new(StringArray::from(vec!["fixture.log"; n])),
        Arc::new(UInt64Array::from_iter_values(1..=n as u64)),
        Arc::new(Float32Array::from_iter_values(logins.iter().map(|l| -l.anomaly))),
        Arc::new(Float32Array::from_iter_values(logins.iter().map(|l| l.anomaly))),
        Arc::new(BooleanArray::from_iter(logins.iter().map(|l| Some(l.seen)))),
        Arc::new(BooleanArray::from_iter(logins.iter().map(|l| l.flagged))),
        Arc::new(StringArray::from(vec!["fixture-model"; n])),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

fn labels_batch(labels: &[Label]) -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(labels.iter().map(|l| l.0))
                .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter_values(labels.iter().map(|l| l.1.as_str()))),
        Arc::new(StringArray::from_iter_values(labels.iter().map(|l| ip_text(l.2)))),
        Arc::new(StringArray::from_iter_values(labels.iter().map(|l| l.3))),
    ];
    RecordBatch::try_new(labels_schema(), columns).unwrap()
}

async fn commit(
    root: Location,
    schema: SchemaRef,
    mode: WriteMode,
    parts: Vec<(String, RecordBatch)>,
) {
    let mut writer = DatasetWriter::new(root, schema, mode);
    for (partition, batch) in parts {
        let partition = (!partition.is_empty()).then_some(partition.as_str());
        writer.write(partition, &batch).await.unwrap();
    }
    writer.commit().await.unwrap();
}

/// Writes the fixture store at `url`: a month of daily `scores` (the
/// report day in two files, one day without flags), their `_rejects/`, a
/// file a crashed writer left behind, `events` for two days, synth's
/// `demo/labels`, and splits of two days.
fn write_store(url: &str) {
    let (days, labels) = month();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Location::parse(url).unwrap();
        let scores = store.join("scores");
        let schema = scores_schema(&events_schema(), None);
        let parts = days
            .iter()
            .enumerate()
            .map(|(d, logins)| (format!("date={}", day_name(d as i64)), scores_batch(logins)))
            .collect();
        commit(scores.clone(), schema.clone(), WriteMode::ReplacePartitions, parts).await;
        // Late logins of the report day, appended: that day has two files.
        let late: Vec<Login> = (0..5)
            .map(|i| Login {
                ts: DAY0 + DATE_DAY * DAY + (23 * 3600 + i * 60) * 1_000_000,
                entity: format!("late_{i}"),
                ipv4: 0xc633_6400 + i as u32,
                user_agent: Some("python-requests/2.31"),
                anomaly: 2.5 + i as f32 / 4.0,
                seen: i != 0,
                flagged: Some(true),
            })
            .collect();
        let date = format!("date={DATE}");
        commit(
            scores.clone(),
            schema,
            WriteMode::Append,
            vec![(date.clone(), scores_batch(&late))],
        )
        .await;
        let rejects = RecordBatch::try_new(
            rejects_schema(),
            vec![
                Arc::new(StringArray::from(vec!["fixture.log"])),
                Arc::new(UInt64Array::from(vec![7u64])),
                Arc::new(StringArray::from(vec!["invalid_ip"])),
                Arc::new(arrow_array::BinaryArray::from_vec(vec![b"user_1,::1"])),
            ],
        )
        .unwrap();
        commit(
            scores.join("_rejects"),
            rejects_schema(),
            WriteMode::ReplacePartitions,
            vec![(date.clone(), rejects)],
        )
        .await;
        let committed = Dataset::open(&scores).await.unwrap();
        let first = committed.files().iter().find(|f| f.partition == date).unwrap();
        let orphan = scores.join(&format!("{date}/part-ffffffff-crashed-00000.parquet"));
        ipi_storage::copy_object(&first.location, &orphan).await.unwrap();

        let events: Vec<(String, RecordBatch)> = [DATE_DAY, DATE_DAY + 1]
            .iter()
            .map(|&d| {
                let batch = scores_batch(&days[d as usize]);
                let events = batch
                    .project(&(0..events_schema().fields().len()).collect::<Vec<_>>())
                    .unwrap();
                let events =
                    RecordBatch::try_new(events_schema(), events.columns().to_vec()).unwrap();
                (format!("date={}", day_name(d)), events)
            })
            .collect();
        commit(store.join("events"), events_schema(), WriteMode::ReplacePartitions, events).await;

        let mut by_day: BTreeMap<String, Vec<Label>> = BTreeMap::new();
        for label in labels {
            by_day
                .entry(format!("date={}", day_name((label.0 - DAY0) / DAY)))
                .or_default()
                .push(label);
        }
        let parts = by_day.into_iter().map(|(p, l)| (p, labels_batch(&l))).collect();
        commit(store.join("demo/labels"), labels_schema(), WriteMode::ReplacePartitions, parts)
            .await;

        for (day, names) in
            [("2018-11-12", &["train"][..]), ("2018-11-13", &["train", "validation", "test"][..])]
        {
            for (i, name) in names.iter().enumerate() {
                let batch = scores_batch(&days[20 + i]);
                let pairs = batch.project(&[0, 2, 3, 4]).unwrap();
                commit(
                    store.join(&format!("splits/{day}/{name}")),
                    pairs.schema(),
                    WriteMode::Overwrite,
                    vec![(String::new(), pairs)],
                )
                .await;
            }
        }
    });
}

/// Every report in `sql/`, sorted.
fn reports() -> Vec<PathBuf> {
    let mut reports: Vec<PathBuf> = std::fs::read_dir(repo_root().join("sql"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    reports.sort();
    assert!(reports.len() >= 8, "{reports:?}");
    reports
}

fn name(report: &Path) -> String {
    report.file_stem().unwrap().to_string_lossy().into_owned()
}

/// `ipi-pipeline query --store STORE REPORT --param date=DATE ARGS...`,
/// which must succeed; its stdout.
fn query(store: &str, report: &Path, args: &[&str]) -> String {
    let out = run(ipi(&repo_root())
        .args(["query", "--store", store])
        .arg(report)
        .args(["--param", &format!("date={DATE}")])
        .args(args));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// The parameters each report is run with, as DuckDB gets them: `date`,
/// and the defaults its `-- @param` lines declare.
fn report_params(report: &Path) -> BTreeMap<String, String> {
    let sql = std::fs::read_to_string(report).unwrap();
    let given = ipi_sql::Params::from([("date".to_string(), ipi_sql::ParamValue::from(DATE))]);
    ipi_sql::params::with_defaults(&sql, &given)
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect()
}

/// Compares each report's result (our Parquet) with DuckDB's on the same
/// files: DuckDB reads the files each table's manifest lists (from disk,
/// or through pyarrow's S3 client), with Hive partitioning.
const DUCKDB_COMPARE: &str = r#"
import datetime, decimal, json, math, os, re, sys
import duckdb, pyarrow as pa, pyarrow.parquet as pq

spec = json.load(open(sys.argv[1]))
fs, base = store_fs(spec["store"])
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
for name, rel in spec["tables"].items():
    root = base + "/" + rel
    with fs.open_input_stream(root + "/_ipi_dataset.json") as f:
        files = json.load(f)["files"]
    if fs.type_name == "local":
        paths = [root + "/" + f["path"] for f in files]
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({paths!r}, hive_partitioning = true)")
    else:
        tables = []
        for f in files:
            t = pq.read_table(root + "/" + f["path"], filesystem=fs)
            for part in filter(None, f["partition"].split("/")):
                key, value = part.split("=", 1)
                t = t.append_column(key, pa.array([datetime.date.fromisoformat(value)] * t.num_rows, pa.date32()))
            tables.append(t)
        con.register(name + "_files", pa.concat_tables(tables))
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM {name}_files")

def norm(v):
    if isinstance(v, float):
        return round(v, 6)
    if isinstance(v, decimal.Decimal):
        return round(float(v), 6)
    if isinstance(v, datetime.datetime):
        return v.astimezone(datetime.timezone.utc).isoformat()
    return v

checked = 0
for report in spec["reports"]:
    sql = open(report["sql"]).read()
    params = {k: v for k, v in report["params"].items() if re.search(r"\$" + k + r"\b", sql)}
    expected = con.execute(sql, params).to_arrow_table()
    ours = pq.read_table(report["ours"])
    assert ours.column_names == expected.column_names, (report["sql"], ours.column_names, expected.column_names)
    a = [tuple(norm(v) for v in row.values()) for row in ours.to_pylist()]
    b = [tuple(norm(v) for v in row.values()) for row in expected.to_pylist()]
    if a != b:
        diff = [(i, x, y) for i, (x, y) in enumerate(zip(a, b)) if x != y][:5]
        raise SystemExit(f"{report['sql']}: {len(a)} rows (ours) vs {len(b)} (DuckDB); first differences: {diff}")
    assert len(a) > 0, report["sql"] + ": no rows; the fixture should give every report some"
    checked += 1
print(json.dumps({"checked": checked}))
"#;

/// Runs every report on the store at `store` (ours to Parquet under
/// `out`) and has DuckDB check each result.
fn reports_equal_duckdb(store: &str, out: &Path) {
    let Some(python) = test_python() else { return };
    let mut specs = Vec::new();
    for report in reports() {
        let ours = out.join(format!("{}.parquet", name(&report)));
        query(store, &report, &["--output", ours.to_str().unwrap()]);
        specs.push(serde_json::json!({
            "sql": report,
            "params": report_params(&report),
            "ours": ours,
        }));
    }
    let spec = serde_json::json!({
        "store": store,
        "tables": { "scores": "scores", "labels": "demo/labels", "events": "events" },
        "reports": specs,
    });
    let spec_path = out.join("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    let script = format!("{PY_STORE_FS}{DUCKDB_COMPARE}");
    let result = run(Command::new(python).arg("-c").arg(script).arg(&spec_path));
    assert!(result.status.success(), "{}", text(&result));
    let checked: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(checked["checked"], reports().len());
}

#[test]
fn every_report_equals_duckdb_on_local_disk_and_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    write_store(store.to_str().unwrap());
    let store = store.to_str().unwrap();

    // The snapshot of each report, as the aligned table a person sees.
    let snapshots = repo_root().join("tests/it/snapshots/query");
    let bless = std::env::var("IPI_BLESS").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for report in reports() {
        let table = query(store, &report, &["--format", "table"]);
        let path = snapshots.join(format!("{}.txt", name(&report)));
        if bless {
            std::fs::create_dir_all(&snapshots).unwrap();
            std::fs::write(&path, &table).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(expected) if expected == table => {}
            Ok(expected) => {
                eprintln!("--- {} expected:\n{expected}\n--- got:\n{table}", path.display());
                stale.push(name(&report));
            }
            Err(_) => stale.push(format!("{} (no snapshot)", name(&report))),
        }
    }
    assert!(
        stale.is_empty(),
        "reports differ from their snapshots: {stale:?}; IPI_BLESS=1 rewrites them"
    );

    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    reports_equal_duckdb(store, &out);
}

#[test]
fn every_report_equals_duckdb_on_s3() {
    let Some(prefix) = s3_prefix() else { return };
    write_store(&prefix);
    let dir = tempfile::tempdir().unwrap();
    reports_equal_duckdb(&prefix, dir.path());

    // A result written to S3 is the one written locally.
    let report = repo_root().join("sql/daily_flagged.sql");
    let local = query(&prefix, &report, &["--format", "csv"]);
    let remote = format!("{prefix}/reports/daily_flagged.csv");
    query(&prefix, &report, &["--output", &remote]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bytes =
        runtime.block_on(ipi_storage::get_bytes(&Location::parse(&remote).unwrap())).unwrap();
    assert_eq!(String::from_utf8(bytes.to_vec()).unwrap(), local);
    assert!(local.lines().count() > 5, "{local}");
}

#[test]
fn one_day_of_a_month_reads_only_that_days_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    write_store(store.to_str().unwrap());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let scores = Dataset::open(&Location::from_local_path(&store.join("scores")).unwrap())
            .await
            .unwrap();
        let partitions = scores.partitions();
        assert_eq!(partitions.len(), DAYS as usize);
        let day_files: Vec<String> = scores
            .files()
            .iter()
            .filter(|f| f.partition == format!("date={DATE}"))
            .map(|f| f.location.path().to_string())
            .collect();
        assert_eq!(day_files.len(), 2);

        let session = ipi_sql::QuerySession::open(&ipi_sql::SessionOptions {
            store: Some(store.to_str().unwrap().into()),
            ..Default::default()
        })
        .await
        .unwrap();
        let sql = std::fs::read_to_string(repo_root().join("sql/daily_flagged.sql")).unwrap();
        let query = ipi_sql::Query {
            source_name: "sql/daily_flagged.sql".into(),
            sql,
            params: ipi_sql::Params::from([("date".to_string(), ipi_sql::ParamValue::from(DATE))]),
        };
        let prepared = session.prepare(&query).await.unwrap();
        // The plan reads that day's two committed files, not the 29 other
        // days, and not the file the crashed writer left in that day.
        assert_eq!(prepared.files(), day_files);
        let plan = ipi_sql::datafusion::physical_plan::displayable(prepared.plan().as_ref())
            .indent(true)
            .to_string();
        assert_eq!(plan.matches(".parquet").count(), 2, "{plan}");
    });

    // The command line says so too.
    let out = run(ipi(&repo_root())
        .args([
            "query",
            "--store",
            store.to_str().unwrap(),
            "--param",
            &format!("date={DATE}"),
            "-e",
        ])
        .arg("SELECT count(*) AS n FROM scores WHERE date = CAST($date AS DATE)")
        .args(["--format", "csv"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let expected_rows = month().0[DATE_DAY as usize].len() + 5;
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("n\n{expected_rows}\n"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("files_read=2") && stderr.contains("files_in_tables="), "{stderr}");
}

#[test]
fn the_command_binds_parameters_refuses_writes_and_points_at_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    write_store(store.to_str().unwrap());
    let store = store.to_str().unwrap();
    let q = |args: &[&str]| run(ipi(dir.path()).args(["query", "--store", store]).args(args));

    // A bound value is a value, whatever it holds.
    let out = q(&[
        "-e",
        "SELECT count(*) AS n FROM scores WHERE entity = $who",
        "--param",
        "who=x' OR '1'='1",
        "-f",
        "csv",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "n\n0\n");

    // Every output format; JSON is an array of objects.
    let out = q(&["-e", "SELECT entity, date FROM scores WHERE entity = 'late_1'", "-f", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows, serde_json::json!([{"entity": "late_1", "date": DATE}]));
    let out = q(&["-e", "SELECT entity FROM scores WHERE false", "-f", "json"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );
    let out = q(&["-e", "SELECT entity FROM scores WHERE false", "-f", "csv"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "entity\n");
    let out = q(&["-e", "SELECT 1 AS a, NULL AS b", "-f", "jsonl"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{\"a\":1,\"b\":null}\n");
    let out = q(&["-e", "SELECT 1 AS a, NULL AS b"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("| 1 | NULL |"), "{}", text(&out));

    // Read-only unless --allow-write; exit 2 like any mistake in the query.
    let copied = dir.path().join("copied.csv");
    let copy = format!("COPY (SELECT * FROM scores) TO '{}'", copied.display());
    let out = q(&["-e", &copy]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("COPY is refused") && text(&out).contains("--allow-write"),
        "{}",
        text(&out)
    );
    assert!(!copied.exists());
    let out = q(&["-e", &copy, "--allow-write"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(copied.exists());

    // A mistake in a file points at its line and column.
    std::fs::write(
        dir.path().join("bad.sql"),
        "-- Which entities?\nSELECT entity, anomaly\nFROM scores\n",
    )
    .unwrap();
    let out = q(&["bad.sql"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("bad.sql:2:16: "), "{}", text(&out));
    // A missing parameter names itself.
    let out = q(&[repo_root().join("sql/daily_flagged.sql").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("parameter `date`"), "{}", text(&out));
}

#[test]
fn the_query_step_writes_one_file_per_report_and_skips_missing_tables() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    write_store(store.to_str().unwrap());
    let pipeline = dir.path().join("reports.toml");
    std::fs::write(
        &pipeline,
        r#"version = 1
name = "reports"
[params]
store = { type = "url" }
date  = { type = "date", default = "2018-11-12" }
[steps.reports]
uses    = "query"
store   = "${params.store}"
queries = ["sql/daily_flagged.sql", "sql/attacks_by_kind.sql", "sql/unseen_entities.sql"]
params  = { date = "${params.date}" }
format  = "parquet"
output  = "${params.store}/reports/${params.date}"
skip_missing_tables = true
"#,
    )
    .unwrap();
    let run_pipeline = |store: &Path| {
        let out = run(ipi(&repo_root())
            .args(["run"])
            .arg(&pipeline)
            .args(["--param", &format!("store={}", store.display())]));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let manifest = store.join(format!("reports/{DATE}/_manifest.json"));
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(manifest).unwrap()).unwrap()
    };
    let manifest = run_pipeline(&store);
    let reports = manifest["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 3, "{manifest}");
    for report in reports {
        assert!(report["rows"].as_u64().unwrap() > 0, "{report}");
        assert_eq!(report["params"]["date"], DATE, "{report}");
        assert!(report.get("skipped").is_none(), "{report}");
    }
    for name in ["daily_flagged", "attacks_by_kind", "unseen_entities"] {
        assert!(store.join(format!("reports/{DATE}/{name}.parquet")).exists(), "{name}");
    }
    assert_eq!(manifest["tables"]["labels"].as_str().unwrap().rsplit('/').next(), Some("labels"));

    // Real logs have no labels: that report is skipped, the others run.
    std::fs::remove_dir_all(store.join("demo")).unwrap();
    let manifest = run_pipeline(&store);
    let reports = manifest["reports"].as_array().unwrap();
    assert_eq!(reports[1]["skipped"], "the store has no labels table", "{manifest}");
    assert!(!store.join(format!("reports/{DATE}/attacks_by_kind.parquet")).exists());
    assert!(reports[0]["rows"].as_u64().unwrap() > 0);
}
