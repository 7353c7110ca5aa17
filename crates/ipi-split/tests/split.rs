//! End-to-end splits of a small events dataset written in many offsets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, Int16Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt16Array,
    UInt32Array, UInt64Array,
};
use chrono::{DateTime, TimeZone as _, Utc};
use ipi_split::{SplitConfig, SplitReport, split};
use ipi_storage::{Dataset, DatasetWriter, Location, WriteMode};
use polars::prelude::*;

const HOUR: i64 = 3_600_000_000;

/// One event: UTC µs, the offset it was written in, entity, ip (unique per
/// row, so a row can be found again), whether it is IPv4.
#[derive(Debug, Clone)]
struct Event {
    us: i64,
    offset: i16,
    entity: Option<String>,
    ip: String,
    v4: bool,
}

fn utc(y: i32, m: u32, d: u32, h: u32) -> i64 {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap().timestamp_micros()
}

/// America/New_York's offset at `us` (the 2018 change is 2018-11-04 06:00Z).
fn new_york(us: i64) -> i16 {
    if us < utc(2018, 11, 4, 6) { -240 } else { -300 }
}

/// About 1,000 events from 2018-11-01 to 2018-11-14 UTC in five offsets
/// (+05:45, -03:30, +00:00, New York around its DST change, +14:00), with
/// null entities, IPv6 addresses, and rows on and next to the boundaries.
fn events() -> Vec<Event> {
    let start = utc(2018, 11, 1, 0);
    let mut instants: Vec<i64> =
        (0..1000).map(|i| start + i * 1_123_456_789 / 10 * 10 + i % 7).collect();
    for b in [utc(2018, 11, 11, 0), utc(2018, 11, 12, 0), utc(2018, 11, 4, 6), utc(2018, 11, 4, 7)]
    {
        instants.extend([b - 1, b, b + 1]);
    }
    instants
        .into_iter()
        .enumerate()
        .map(|(i, us)| {
            let offset = [345, -210, 0, new_york(us), 840][i % 5];
            let entity = (i % 17 != 3).then(|| {
                // `late_user` only logs in at the end: unseen in train.
                if us >= utc(2018, 11, 12, 12) && i % 4 == 0 {
                    "late_user".to_owned()
                } else {
                    format!("user_{}", i % 13)
                }
            });
            let v4 = i % 19 != 5;
            let ip = if v4 {
                format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256)
            } else {
                format!("2001:db8::{i:x}")
            };
            Event { us, offset, entity, ip, v4 }
        })
        .collect()
}

fn batch(events: &[&Event]) -> RecordBatch {
    let n = events.len();
    let s = |v: Vec<Option<String>>| Arc::new(StringArray::from(v)) as ArrayRef;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMicrosecondArray::from(events.iter().map(|e| e.us).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
        Arc::new(Int16Array::from(events.iter().map(|e| e.offset).collect::<Vec<_>>())),
        s(events.iter().map(|e| e.entity.clone()).collect()),
        s(events.iter().map(|e| Some(e.ip.clone())).collect()),
        Arc::new(UInt32Array::from(
            events
                .iter()
                .map(|e| e.v4.then(|| e.ip.parse::<std::net::Ipv4Addr>().unwrap().into()))
                .collect::<Vec<Option<u32>>>(),
        )),
        s(vec![Some("GET".into()); n]),
        s(vec![Some("/login_success".into()); n]),
        s(vec![Some("HTTP/1.1".into()); n]),
        Arc::new(UInt16Array::from(vec![Some(200); n])),
        Arc::new(UInt64Array::from(vec![Some(10); n])),
        s(vec![None; n]),
        s(vec![None; n]),
        s(vec![None; n]),
        s(vec![None; n]),
        s(vec![Some("test.log".into()); n]),
        Arc::new(UInt64Array::from((1..=n as u64).collect::<Vec<_>>())),
    ];
    RecordBatch::try_new(ipi_core::schema::events_schema(), columns).unwrap()
}

/// Writes the events as a committed dataset, `date=` by UTC day.
async fn write_events(root: &Path, events: &[Event]) {
    write_events_at(Location::parse(root.to_str().unwrap()).unwrap(), events).await;
}

/// Writes the events as a committed dataset at any location.
async fn write_events_at(location: Location, events: &[Event]) {
    let mut by_date: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
    for e in events {
        let date = DateTime::<Utc>::from_timestamp_micros(e.us)
            .unwrap()
            .format("date=%Y-%m-%d")
            .to_string();
        by_date.entry(date).or_default().push(e);
    }
    let mut writer =
        DatasetWriter::new(location, ipi_core::schema::events_schema(), WriteMode::Overwrite);
    for (date, rows) in &by_date {
        writer.write(date.as_str(), &batch(rows)).await.unwrap();
    }
    writer.commit().await.unwrap();
}

/// `(ip, timestamp)` of each row of `out/<name>/`, in file order.
fn read_split(out: &Path, name: &str) -> Vec<(String, i64)> {
    let mut rows = Vec::new();
    let mut files: Vec<_> =
        std::fs::read_dir(out.join(name)).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for path in files.iter().filter(|p| p.extension().is_some_and(|e| e == "parquet")) {
        // polars blocks on its own runtime: not from inside the test's.
        let path = path.to_str().unwrap().to_owned();
        let df = std::thread::spawn(move || {
            LazyFrame::scan_parquet(PlRefPath::new(&path), Default::default())
                .unwrap()
                .collect()
                .unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(
            df.column("timestamp").unwrap().dtype(),
            &DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
        );
        let ip = df.column("ip").unwrap().str().unwrap().clone();
        let ts = df.column("timestamp").unwrap().datetime().unwrap().physical().clone();
        rows.extend(ip.iter().zip(ts.iter()).map(|(ip, t)| (ip.unwrap().to_owned(), t.unwrap())));
    }
    rows
}

fn ips(rows: &[(String, i64)]) -> BTreeSet<String> {
    rows.iter().map(|r| r.0.clone()).collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    input: String,
    root: std::path::PathBuf,
    events: Vec<Event>,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let events = events();
    write_events(&root.join("events"), &events).await;
    Fixture { input: root.join("events").to_str().unwrap().to_owned(), root, events, _dir: dir }
}

impl Fixture {
    fn out(&self, name: &str) -> String {
        self.root.join(name).to_str().unwrap().to_owned()
    }

    /// The expected ip sets of train, validation, test for these bounds.
    fn expected(&self, bounds: [i64; 4]) -> [BTreeSet<String>; 3] {
        let mut sets: [BTreeSet<String>; 3] = Default::default();
        for e in self.events.iter().filter(|e| e.entity.is_some() && e.v4) {
            let w = if e.us < bounds[0] {
                0
            } else if e.us >= bounds[1] && e.us < bounds[2] {
                1
            } else if e.us >= bounds[3] {
                2
            } else {
                continue;
            };
            sets[w].insert(e.ip.clone());
        }
        sets
    }
}

fn assert_adds_up(report: &SplitReport) {
    let d = &report.dropped;
    assert_eq!(
        report.train.rows
            + report.validation.rows
            + report.test.rows
            + d.null_entity
            + d.non_ipv4
            + d.bad_timestamp
            + d.gap
            + d.unseen_entity,
        report.input_rows,
        "{report:#?}"
    );
    assert!(report.leakage_check_passed);
}

#[tokio::test]
async fn every_row_lands_in_the_window_of_its_utc_instant() {
    let f = fixture().await;
    let out = f.out("explicit");
    let config =
        SplitConfig::explicit(&f.input, &out, "2018-11-11T00:00:00Z", "2018-11-12T00:00:00Z");
    let report = split(&config).await.unwrap();
    let (b1, b2) = (utc(2018, 11, 11, 0), utc(2018, 11, 12, 0));
    let expected = f.expected([b1, b1, b2, b2]);
    for (i, name) in ipi_split::SPLITS.iter().enumerate() {
        let rows = read_split(Path::new(&out), name);
        assert_eq!(ips(&rows), expected[i], "{name}");
        assert_eq!(rows.len(), expected[i].len(), "{name}: duplicates");
    }
    assert_eq!(report.input_rows, f.events.len() as u64);
    assert_eq!(
        report.dropped.null_entity,
        f.events.iter().filter(|e| e.entity.is_none()).count() as u64
    );
    assert_eq!(
        report.dropped.non_ipv4,
        f.events.iter().filter(|e| e.entity.is_some() && !e.v4).count() as u64
    );
    assert_eq!(report.dropped.gap, 0);
    assert_eq!(report.boundaries.train_end, "2018-11-11T00:00:00Z");
    assert_adds_up(&report);
    // The test window sees `late_user`, whom train never saw.
    assert!(
        report.test.unseen_entities >= 1 && report.test.unseen_entity_share > 0.0,
        "{report:#?}"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(&out).join("_manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["train"]["rows"], report.train.rows);
    assert!(report.to_table().contains("leakage check passed"));
}

#[tokio::test]
async fn the_same_instants_in_other_zones_give_the_same_split() {
    let f = fixture().await;
    let configs = [
        SplitConfig::explicit(
            &f.input,
            &f.out("z"),
            "2018-11-04T07:00:00Z",
            "2018-11-11T00:00:00Z",
        ),
        SplitConfig::explicit(
            &f.input,
            &f.out("offsets"),
            "2018-11-04T02:00:00-05:00",
            "2018-11-11T05:45:00+05:45",
        ),
        SplitConfig::explicit(
            &f.input,
            &f.out("more"),
            "2018-11-04T21:00:00+14:00",
            "2018-11-10T20:30:00-03:30",
        ),
        SplitConfig {
            // 02:00 on the night New York leaves daylight saving is EST.
            timezone: Some("America/New_York".into()),
            ..SplitConfig::explicit(
                &f.input,
                &f.out("zone"),
                "2018-11-04T02:00:00",
                "2018-11-10T19:00:00",
            )
        },
    ];
    let expected = f.expected([
        utc(2018, 11, 4, 7),
        utc(2018, 11, 4, 7),
        utc(2018, 11, 11, 0),
        utc(2018, 11, 11, 0),
    ]);
    for config in &configs {
        let report = split(config).await.unwrap();
        assert_eq!(report.boundaries.train_end, "2018-11-04T07:00:00Z", "{config:?}");
        assert_eq!(report.boundaries.validation_end, "2018-11-11T00:00:00Z", "{config:?}");
        assert_adds_up(&report);
        let got = ipi_split::SPLITS.map(|s| ips(&read_split(Path::new(&config.output), s)));
        assert_eq!(got, expected, "{config:?}");
    }
}

#[tokio::test]
async fn a_new_york_evening_is_the_next_utc_day() {
    let f = fixture().await;
    let a = SplitConfig::explicit(
        &f.input,
        &f.out("a"),
        "2018-11-11T00:00:00Z",
        "2018-11-12T00:00:00Z",
    );
    let b = SplitConfig::explicit(
        &f.input,
        &f.out("b"),
        "2018-11-10T19:00:00-05:00",
        "2018-11-11T19:00:00-05:00",
    );
    let c = SplitConfig {
        timezone: Some("America/New_York".into()),
        ..SplitConfig::explicit(&f.input, &f.out("c"), "2018-11-10T19:00:00", "2018-11-11T19:00:00")
    };
    let mut seen = Vec::new();
    for config in [&a, &b, &c] {
        let report = split(config).await.unwrap();
        assert_eq!(report.boundaries.validation_end, "2018-11-12T00:00:00Z");
        seen.push((
            ipi_split::SPLITS.map(|s| read_split(Path::new(&config.output), s)),
            report.train.rows,
        ));
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0], seen[2]);
}

#[tokio::test]
async fn durations_back_from_the_end_with_a_gap() {
    let f = fixture().await;
    let out = f.out("durations");
    let mut config = SplitConfig::from_end(&f.input, &out, "1d", "2d");
    config.gap = Some("6h".into());
    let report = split(&config).await.unwrap();
    let last = f.events.iter().filter(|e| e.entity.is_some() && e.v4).map(|e| e.us).max().unwrap();
    let test_start = last + 1 - 48 * HOUR;
    let validation_end = test_start - 6 * HOUR;
    let validation_start = validation_end - 24 * HOUR;
    let expected =
        f.expected([validation_start - 6 * HOUR, validation_start, validation_end, test_start]);
    for (i, name) in ipi_split::SPLITS.iter().enumerate() {
        assert_eq!(ips(&read_split(Path::new(&out), name)), expected[i], "{name}");
    }
    assert!(report.dropped.gap > 0);
    assert_adds_up(&report);
}

#[tokio::test]
async fn the_shuffle_depends_on_the_seed_only() {
    let f = fixture().await;
    let order = |seed: u64, name: &str| {
        let mut config = SplitConfig::explicit(
            &f.input,
            &f.out(name),
            "2018-11-11T00:00:00Z",
            "2018-11-12T00:00:00Z",
        );
        config.seed = seed;
        async move {
            split(&config).await.unwrap();
            read_split(Path::new(&config.output), "train")
        }
    };
    let a = order(1, "s1").await;
    let b = order(1, "s1again").await;
    let c = order(2, "s2").await;
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(ips(&a), ips(&c));
    // Shuffled, not in time order.
    assert!(a.windows(2).any(|w| w[0].1 > w[1].1));
}

#[tokio::test]
async fn unseen_entities_are_dropped_on_request_and_counted_either_way() {
    let f = fixture().await;
    let keep = SplitConfig::explicit(
        &f.input,
        &f.out("keep"),
        "2018-11-11T00:00:00Z",
        "2018-11-12T00:00:00Z",
    );
    let kept = split(&keep).await.unwrap();
    let drop = SplitConfig { drop_unseen_entities: true, output: f.out("drop"), ..keep.clone() };
    let dropped = split(&drop).await.unwrap();
    assert!(kept.test.unseen_entity_rows > 0);
    assert_eq!(kept.dropped.unseen_entity, 0);
    assert_eq!(
        dropped.dropped.unseen_entity,
        kept.test.unseen_entity_rows + kept.validation.unseen_entity_rows
    );
    assert_eq!(dropped.test.rows, kept.test.rows - kept.test.unseen_entity_rows);
    assert_eq!(dropped.test.unseen_entity_rows, kept.test.unseen_entity_rows);
    assert_adds_up(&dropped);
    assert_adds_up(&kept);
}

#[tokio::test]
async fn sagemaker_csv_has_one_entity_ip_line_per_row() {
    let f = fixture().await;
    let out = f.out("csv");
    let config = SplitConfig {
        sagemaker_csv: true,
        ..SplitConfig::explicit(&f.input, &out, "2018-11-11T00:00:00Z", "2018-11-12T00:00:00Z")
    };
    let report = split(&config).await.unwrap();
    let text = std::fs::read_to_string(Path::new(&out).join("validation.csv")).unwrap();
    assert_eq!(text.lines().count() as u64, report.validation.rows);
    let rows = read_split(Path::new(&out), "validation");
    let csv_ips: BTreeSet<String> =
        text.lines().map(|l| l.split_once(',').unwrap().1.to_owned()).collect();
    assert_eq!(csv_ips, ips(&rows));
    assert!(text.lines().all(|l| l.starts_with("user_") || l.starts_with("late_user")));
}

#[tokio::test]
async fn bad_settings_are_refused_before_reading() {
    let config = SplitConfig::explicit(
        "/nonexistent",
        "/nonexistent-out",
        "2018-11-11",
        "2018-11-12T00:00:00Z",
    );
    let err = split(&config).await.unwrap_err();
    assert!(err.to_string().contains("train_end"), "{err}");
}

/// DuckDB reads every split; runs when `IPI_TEST_PYTHON` names a python
/// with duckdb.
#[tokio::test]
async fn duckdb_reads_every_split() {
    let Ok(python) = std::env::var("IPI_TEST_PYTHON") else {
        eprintln!("skipped: set IPI_TEST_PYTHON to a python with duckdb");
        return;
    };
    let f = fixture().await;
    let out = f.out("duck");
    let report = split(&SplitConfig::explicit(
        &f.input,
        &out,
        "2018-11-11T00:00:00Z",
        "2018-11-12T00:00:00Z",
    ))
    .await
    .unwrap();
    for (name, stats) in
        [("train", &report.train), ("validation", &report.validation), ("test", &report.test)]
    {
        let script = format!(
            "import duckdb; print(duckdb.connect().execute(\"select count(*), count(distinct entity), min(timestamp)::varchar, typeof(min(timestamp)) from '{out}/{name}/*.parquet'\").fetchone())"
        );
        let output = std::process::Command::new(&python).args(["-c", &script]).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let line = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            line.starts_with(&format!("({}, {}, ", stats.rows, stats.entities)),
            "{name}: {line}"
        );
        assert!(line.contains("TIMESTAMP WITH TIME ZONE"), "{name}: {line}");
    }
}

/// The visible names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn splits_are_committed_datasets_that_a_rerun_replaces() {
    let f = fixture().await;
    let out = f.out("committed");
    let mut config = SplitConfig {
        sagemaker_csv: true,
        ..SplitConfig::explicit(&f.input, &out, "2018-11-11T00:00:00Z", "2018-11-12T00:00:00Z")
    };
    let first = split(&config).await.unwrap();
    config.sagemaker_csv = false;
    let second = split(&config).await.unwrap();
    assert_eq!(listing(Path::new(&out)), ["_manifest.json", "test", "train", "validation"]);
    for (name, (a, b)) in ipi_split::SPLITS.iter().zip([
        (&first.train, &second.train),
        (&first.validation, &second.validation),
        (&first.test, &second.test),
    ]) {
        assert_ne!(a.commit, b.commit, "{name}");
        let file = format!("part-{}-00000.parquet", b.commit);
        assert_eq!(b.files, [format!("{name}/{file}")]);
        assert_eq!(a.files[1], format!("{name}.csv"));
        assert_eq!(
            listing(&Path::new(&out).join(name)),
            [ipi_storage::MANIFEST_NAME.to_string(), file],
            "{name}: one committed file, the first run's is gone"
        );
        let dataset =
            Dataset::open(&Location::parse(&format!("{out}/{name}")).unwrap()).await.unwrap();
        assert_eq!(dataset.commit_id(), Some(b.commit.as_str()));
        assert_eq!(dataset.num_rows(), b.rows, "{name}");
        assert_eq!(a.rows, b.rows, "{name}");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(&out).join("_manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["train"]["commit"], second.train.commit.as_str());
    assert_eq!(manifest["input_format"], "parquet");
}

/// Through the object-store paths: the input is staged from `memory://`,
/// the splits are published to `memory://`, and they hold what a local
/// split holds.
#[tokio::test]
async fn memory_input_and_output_split_as_local_ones_do() {
    let f = fixture().await;
    let input = format!("memory://split-tests-{}/events", std::process::id());
    write_events_at(Location::parse(&input).unwrap(), &f.events).await;
    let output = format!("memory://split-tests-{}/splits", std::process::id());
    let config = SplitConfig {
        sagemaker_csv: true,
        ..SplitConfig::explicit(&input, &output, "2018-11-11T00:00:00Z", "2018-11-12T00:00:00Z")
    };
    let remote = split(&config).await.unwrap();
    let local_out = f.out("local");
    let local = split(&SplitConfig { output: local_out.clone(), ..config.clone() }).await.unwrap();
    let output = Location::parse(&output).unwrap();
    for (name, (r, l)) in ipi_split::SPLITS.iter().zip([
        (&remote.train, &local.train),
        (&remote.validation, &local.validation),
        (&remote.test, &local.test),
    ]) {
        assert_eq!((r.rows, r.entities, &r.min_timestamp), (l.rows, l.entities, &l.min_timestamp));
        let dataset = Dataset::open(&output.join(name)).await.unwrap();
        assert_eq!(dataset.num_rows(), r.rows, "{name}");
        let parquet = ipi_storage::get_bytes(&dataset.files()[0].location).await.unwrap();
        let local_file = Path::new(&local_out).join(&l.files[0]);
        assert_eq!(parquet.len() as u64, std::fs::metadata(local_file).unwrap().len(), "{name}");
        let csv = ipi_storage::get_bytes(&output.join(&format!("{name}.csv"))).await.unwrap();
        let local_csv = std::fs::read(Path::new(&local_out).join(format!("{name}.csv"))).unwrap();
        assert!(csv == local_csv, "{name}.csv differs");
    }
    let report = ipi_storage::get_bytes(&output.join("_manifest.json")).await.unwrap();
    let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
    assert_eq!(report["train"]["rows"], remote.train.rows);
    assert_adds_up(&remote);
}

fn write_file(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A CSV without offsets: naive local times.
const NAIVE_CSV: &str = "timestamp,entity,ip\n2018-11-10 12:00:00,user_1,10.0.0.1\n";

#[tokio::test]
async fn naive_times_are_refused_without_assume_timezone() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("logins.csv");
    write_file(&csv, NAIVE_CSV);
    let out = dir.path().join("out");
    let config = SplitConfig::from_end(csv.to_str().unwrap(), out.to_str().unwrap(), "1d", "1d");
    let err = split(&config).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ipi_split::Error::Input { .. }), "{err:?}");
    assert!(message.contains("2018-11-10 12:00:00"), "{message}");
    assert!(message.contains("assume_timezone"), "{message}");
    assert!(!out.exists(), "nothing is written");

    // A naive Parquet timestamp column is refused before it is read.
    let parquet = dir.path().join("naive.parquet");
    write_naive_parquet(&parquet, &[("2018-11-10T12:00:00", "user_1", "10.0.0.1")]).await;
    let config =
        SplitConfig::from_end(parquet.to_str().unwrap(), out.to_str().unwrap(), "1d", "1d");
    let message = split(&config).await.unwrap_err().to_string();
    assert!(message.contains("column `timestamp` has no time zone"), "{message}");
    assert!(message.contains("--assume-timezone"), "{message}");

    // Times with offsets need no zone.
    write_file(&csv, "timestamp,entity,ip\n2018-11-10T12:00:00+05:45,user_1,10.0.0.1\n");
    let config = SplitConfig::from_end(csv.to_str().unwrap(), out.to_str().unwrap(), "1d", "1d");
    let report = split(&config).await.unwrap();
    assert_eq!(report.test.min_timestamp.as_deref(), Some("2018-11-10T06:15:00Z"));
    assert_eq!(report.input_format, "csv");
    assert_eq!(report.assumed_timezone, None);
}

/// Writes a Parquet file whose `timestamp` is a naive `Timestamp(µs)`.
async fn write_naive_parquet(path: &Path, rows: &[(&str, &str, &str)]) {
    let micros: Vec<i64> = rows
        .iter()
        .map(|r| {
            chrono::NaiveDateTime::parse_from_str(r.0, "%Y-%m-%dT%H:%M:%S")
                .unwrap()
                .and_utc()
                .timestamp_micros()
        })
        .collect();
    let text = |i: usize| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(|r| [r.0, r.1, r.2][i]).collect::<Vec<_>>()))
    };
    let batch = RecordBatch::try_from_iter([
        ("timestamp", Arc::new(TimestampMicrosecondArray::from(micros)) as ArrayRef),
        ("entity", text(1)),
        ("ip", text(2)),
    ])
    .unwrap();
    let location = Location::from_local_path(path).unwrap();
    let mut sink =
        ipi_storage::ParquetSink::create(&location, batch.schema(), &Default::default()).unwrap();
    sink.write(&batch).await.unwrap();
    sink.close().await.unwrap();
}

/// Naive New York times on both sides of the 2018-11-04 change (EDT,
/// UTC-4, then EST, UTC-5), in a directory of two CSV files.
#[tokio::test]
async fn naive_times_in_an_assumed_zone_become_their_utc_instants() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("logins");
    write_file(
        &input.join("a.csv"),
        "timestamp,entity,ip\n\
         2018-11-03 20:00:00,user_1,10.0.0.1\n\
         2018-11-04 00:30:00,user_1,10.0.0.2\n\
         2018-11-04 01:30:00,user_2,10.0.0.3\n\
         2018-03-11 02:30:00,user_2,10.0.0.4\n",
    );
    write_file(
        &input.join("b.csv"),
        "timestamp,entity,ip\n\
         2018-11-04T03:00:00,user_1,10.0.0.5\n\
         2018-11-05 12:00:00.250,user_2,10.0.0.6\n\
         2018-11-06T00:00:00+05:45,user_1,10.0.0.7\n\
         not a time,user_1,10.0.0.8\n\
         2018-11-05 13:00:00,,10.0.0.9\n",
    );
    std::fs::write(input.join("README.txt"), "not data").unwrap();
    let out = dir.path().join("out");
    let config = SplitConfig {
        assume_timezone: Some("America/New_York".into()),
        ..SplitConfig::explicit(
            input.to_str().unwrap(),
            out.to_str().unwrap(),
            "2018-11-04T06:00:00Z",
            "2018-11-05T00:00:00Z",
        )
    };
    let report = split(&config).await.unwrap();
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros();
    let expected: [Vec<(&str, i64)>; 3] = [
        vec![
            ("10.0.0.1", at("2018-11-04T00:00:00Z")),
            ("10.0.0.2", at("2018-11-04T04:30:00Z")),
            // 01:30 happens twice that night: the earlier (EDT) instant.
            ("10.0.0.3", at("2018-11-04T05:30:00Z")),
        ],
        vec![("10.0.0.5", at("2018-11-04T08:00:00Z"))],
        vec![("10.0.0.6", at("2018-11-05T17:00:00.25Z")), ("10.0.0.7", at("2018-11-05T18:15:00Z"))],
    ];
    for (name, expected) in ipi_split::SPLITS.iter().zip(expected) {
        let got: BTreeMap<String, i64> = read_split(&out, name).into_iter().collect();
        let expected: BTreeMap<String, i64> =
            expected.into_iter().map(|(ip, us)| (ip.to_owned(), us)).collect();
        assert_eq!(got, expected, "{name}");
    }
    assert_eq!(report.input_files, 2);
    assert_eq!(report.input_rows, 9);
    // 02:30 on 2018-03-11 never happened in New York; `not a time` is no time.
    assert_eq!(report.dropped.bad_timestamp, 2);
    assert_eq!(report.dropped.null_entity, 1);
    assert_eq!(
        report.assumed_timezone,
        Some(ipi_split::AssumedTimezone {
            zone: "America/New_York".into(),
            naive_rows: 7,
            ambiguous_rows: 1,
            skipped_rows: 1,
        })
    );
    assert_adds_up(&report);
    assert!(report.to_table().contains("naive times read in America/New_York: 7 rows"));
}

/// A naive Parquet file read at a fixed offset.
#[tokio::test]
async fn naive_parquet_at_a_fixed_offset() {
    let dir = tempfile::tempdir().unwrap();
    let parquet = dir.path().join("logins.parquet");
    write_naive_parquet(
        &parquet,
        &[
            ("2018-11-10T05:30:00", "user_1", "10.0.0.1"),
            ("2018-11-11T05:29:59", "user_1", "10.0.0.2"),
            ("2018-11-11T05:30:00", "user_2", "10.0.0.3"),
        ],
    )
    .await;
    let out = dir.path().join("out");
    let config = SplitConfig {
        assume_timezone: Some("+05:30".into()),
        ..SplitConfig::explicit(
            parquet.to_str().unwrap(),
            out.to_str().unwrap(),
            "2018-11-10T12:00:00Z",
            "2018-11-11T00:00:00Z",
        )
    };
    let report = split(&config).await.unwrap();
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros();
    assert_eq!(read_split(&out, "train"), [("10.0.0.1".to_owned(), at("2018-11-10T00:00:00Z"))]);
    assert_eq!(
        read_split(&out, "validation"),
        [("10.0.0.2".to_owned(), at("2018-11-10T23:59:59Z"))]
    );
    assert_eq!(read_split(&out, "test"), [("10.0.0.3".to_owned(), at("2018-11-11T00:00:00Z"))]);
    let assumed = report.assumed_timezone.unwrap();
    assert_eq!((assumed.zone.as_str(), assumed.naive_rows), ("+05:30", 3));
}
