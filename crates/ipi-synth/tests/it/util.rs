//! Helpers: run a synth in memory, read what it wrote.

use std::collections::BTreeMap;
use std::io::Read;

use arrow_array::{Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use bytes::Bytes;
use futures::TryStreamExt;
use ipi_ingest::parse::{LineFormat, Record, parse_line};
use ipi_storage::{Dataset, Location, ReadOptions, read_parquet};
use ipi_synth::{SynthConfig, SynthSummary, synth};

/// A fresh `memory://` root for a test.
pub fn root(name: &str) -> String {
    format!("memory://synth-it/{name}")
}

/// A small config: `users` users over `days` days, 16 users a file.
pub fn small(name: &str, users: u64, days: u32) -> SynthConfig {
    let mut config = SynthConfig::new(users, days, 11, root(name));
    config.users_per_file = Some(16);
    config
}

pub async fn run(config: &SynthConfig) -> SynthSummary {
    synth(config, None).await.unwrap_or_else(|e| panic!("synth failed: {e}"))
}

/// Every object under `root`, by path relative to it.
pub async fn objects(root: &str) -> BTreeMap<String, Bytes> {
    let location = Location::parse(root).unwrap();
    let prefix = format!("{}/", location.path().as_ref());
    let mut out = BTreeMap::new();
    for meta in ipi_storage::list_all(&location).await.unwrap() {
        let object = location.with_path(meta.location.clone());
        let bytes = ipi_storage::get_bytes(&object).await.unwrap();
        let path = meta.location.as_ref().strip_prefix(&prefix).unwrap().to_owned();
        out.insert(path, bytes);
    }
    out
}

/// The lines of every log file, in file order.
pub async fn log_lines(root: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for (path, bytes) in objects(&format!("{root}/logs")).await {
        let mut text = String::new();
        if path.ends_with(".gz") {
            flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_string(&mut text).unwrap();
        } else {
            text = String::from_utf8(bytes.to_vec()).unwrap();
        }
        assert!(text.ends_with('\n'), "{path} does not end with a newline");
        lines.extend(text.lines().map(str::to_owned));
    }
    lines
}

/// A line, parsed; panics with the line when it does not parse.
pub fn parse(line: &str) -> Record<'_> {
    parse_line(line.as_bytes(), LineFormat::Combined)
        .unwrap_or_else(|e| panic!("rejected ({e:?}): {line}"))
}

/// Whether ingest's login filter (GET /login_success, status 200) keeps it.
pub fn is_login(record: &Record<'_>) -> bool {
    record.method.as_deref() == Some("GET")
        && record.path.as_deref().is_some_and(|p| p.starts_with("/login_success"))
        && record.status == Some(200)
}

/// (timestamp µs, entity, ip) of the login lines.
pub fn login_keys(lines: &[String]) -> Vec<(i64, String, String)> {
    lines
        .iter()
        .map(|l| parse(l))
        .filter(is_login)
        .map(|r| (r.timestamp_us, r.user.unwrap().into_owned(), r.client.into_owned()))
        .collect()
}

/// Every batch of a committed dataset, partition by partition.
pub async fn read_dataset(url: &str) -> Vec<(String, RecordBatch)> {
    let dataset = Dataset::open(&Location::parse(url).unwrap()).await.unwrap();
    let mut out = Vec::new();
    for file in dataset.files() {
        let options = ReadOptions::default().with_file_size(file.size);
        let batches: Vec<RecordBatch> =
            read_parquet(&file.location, &options).await.unwrap().try_collect().await.unwrap();
        let partition = file.partition.clone();
        out.extend(batches.into_iter().map(|b| (partition.clone(), b)));
    }
    out
}

pub fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let column = batch.column_by_name(name).unwrap();
    let array = column.as_any().downcast_ref::<StringArray>().unwrap();
    (0..array.len()).map(|i| array.is_valid(i).then(|| array.value(i).to_owned())).collect()
}

pub fn timestamps(batch: &RecordBatch, name: &str) -> Vec<i64> {
    let column = batch.column_by_name(name).unwrap();
    column.as_any().downcast_ref::<TimestampMicrosecondArray>().unwrap().values().to_vec()
}

/// The labels: (partition, timestamp µs, entity, ip, kind).
pub async fn labels(root: &str) -> Vec<(String, i64, String, String, String)> {
    let mut out = Vec::new();
    for (partition, batch) in read_dataset(&format!("{root}/labels")).await {
        let (ts, entity, ip, kind) = (
            timestamps(&batch, "timestamp"),
            strings(&batch, "entity"),
            strings(&batch, "ip"),
            strings(&batch, "attack_kind"),
        );
        for i in 0..batch.num_rows() {
            out.push((
                partition.clone(),
                ts[i],
                entity[i].clone().unwrap(),
                ip[i].clone().unwrap(),
                kind[i].clone().unwrap(),
            ));
        }
    }
    out
}

/// Multiset difference: what `a` has beyond `b`; panics if `b` has
/// something `a` lacks.
pub fn minus<T: Ord + Clone + std::fmt::Debug>(a: &[T], b: &[T]) -> Vec<T> {
    let mut counts: BTreeMap<T, i64> = BTreeMap::new();
    for x in a {
        *counts.entry(x.clone()).or_default() += 1;
    }
    for x in b {
        let n = counts.entry(x.clone()).or_default();
        *n -= 1;
        assert!(*n >= 0, "{x:?} is in the second list more often than in the first");
    }
    counts.into_iter().flat_map(|(x, n)| std::iter::repeat_n(x, n as usize)).collect()
}
