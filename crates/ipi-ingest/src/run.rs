//! The ingest step: inputs → parallel parse → the events dataset.
//!
//! Each input is read by one thread that cuts it into chunks of whole lines;
//! a rayon pool parses up to a few chunks at once, each as soon as a thread
//! is free, and they are put back in input order; an async task encodes and
//! uploads the batches in that same order,
//! so the output is deterministic whatever the thread count. Events are
//! committed atomically with the `ReplacePartitions` mode: re-ingesting a
//! day replaces that day. Rejected lines go to `<output>/_rejects/`,
//! partitioned `source_id=<hash of the source URL>`, so re-ingesting a file replaces
//! its rejects and keeps every other file's.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, FixedOffset};
use ipi_core::schema::{events_schema, rejects_schema};
use ipi_storage::{DatasetWriter, Location, WriteMode, WriterOptions};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::batch::{
    Counts, EntityExtractor, InputKind, Keep, ParseSettings, ParsedChunk, RowSettings, parse_chunk,
    partition_of,
};
use crate::config::{FormatName, IngestConfig};
use crate::error::{Error, Result};
use crate::parquet_input::{ParquetLayout, parse_batch};
use crate::parse::LineFormat;
use crate::source::{ChunkBytes, chunks};
use crate::table::{TableLayout, parse_instant};

/// Called with the number of input bytes processed since the last call.
pub type ProgressFn = Arc<dyn Fn(u64) + Send + Sync>;

/// What an ingest did.
#[derive(Debug, Clone, Serialize)]
pub struct IngestSummary {
    /// The events dataset.
    pub output: String,
    /// Totals over every input.
    pub totals: Counts,
    /// Counts per input, in input order.
    pub inputs: Vec<InputSummary>,
    /// The UTC days written.
    pub partitions: Vec<String>,
    /// Bytes read, after decompression.
    pub bytes_read: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Counts for one input file or object.
#[derive(Debug, Clone, Serialize)]
pub struct InputSummary {
    pub source: String,
    #[serde(flatten)]
    pub counts: Counts,
}

/// Run an ingest. `progress`, when given, is told how many (decompressed)
/// bytes each parsed window held; [`plan`] gives the inputs' stored sizes
/// for a total.
///
/// Each input is split into chunks parsed in parallel, and the next input
/// is parsed while one is written; rows are written in input order.
pub async fn ingest(config: &IngestConfig, progress: Option<ProgressFn>) -> Result<IngestSummary> {
    let clock = Instant::now();
    if let Some((field, problem)) = config.problems().into_iter().next() {
        return Err(Error::Config(format!("{field}: {problem}")));
    }
    let prepared = Arc::new(Prepared::new(config)?);
    let inputs = plan(config).await?;
    let output = Location::parse(&config.output)
        .map_err(|source| Error::Storage { context: "output".into(), source })?;
    let mut events =
        DatasetWriter::new(output.clone(), events_schema(), WriteMode::ReplacePartitions)
            .with_options(writer_options());
    let mut rejects =
        DatasetWriter::new(output.join("_rejects"), rejects_schema(), WriteMode::ReplacePartitions);

    let mut totals = Counts::default();
    let mut per_input = Vec::new();
    let mut partitions = std::collections::BTreeSet::new();
    let mut bytes_read = 0;
    // Each input gets a parser feeding its own bounded channel; the next
    // input's parser starts while this one's batches are written, so a
    // directory of small files keeps every core busy, and batches are still
    // written in input order (the output does not depend on timing).
    let mut queue = inputs.iter();
    let mut running = std::collections::VecDeque::new();
    loop {
        while running.len() < INPUTS_AHEAD {
            let Some((location, size)) = queue.next() else { break };
            running.push_back(start_parser(location, *size, &prepared, progress.clone()));
        }
        let Some((source, mut rx, parser)) = running.pop_front() else { break };
        // Encode and upload in input order while the next chunks parse.
        let rejects_partition = format!("source_id={:016x}", ipi_core::hash::entity_hash(&source));
        let mut counts = Counts::default();
        while let Some(parsed) = rx.recv().await {
            for (day, batch) in &parsed.events {
                let partition = partition_of(*day);
                events
                    .write(partition.as_str(), batch)
                    .await
                    .map_err(|e| Error::storage(&config.output, e))?;
                partitions.insert(partition);
            }
            if let Some(batch) = &parsed.rejects {
                rejects
                    .write(rejects_partition.as_str(), batch)
                    .await
                    .map_err(|e| Error::storage(&config.output, e))?;
            }
            counts.add(&parsed.counts);
        }
        // The parser's own result says whether it saw the whole input.
        bytes_read += parser.await.map_err(|e| Error::Internal(e.to_string()))??;
        // Mark the source's rejects partition written, so a clean re-run
        // clears rejects a previous run left.
        rejects
            .mark_written(rejects_partition.as_str())
            .map_err(|e| Error::storage(&config.output, e))?;
        totals.add(&counts);
        per_input.push(InputSummary { source, counts });
    }

    // Rejects are committed even when the step fails on them: they are what
    // the operator needs to look at.
    rejects.commit().await.map_err(|e| Error::storage(&config.output, e))?;
    let ratio = if totals.lines == 0 { 0.0 } else { totals.rejected as f64 / totals.lines as f64 };
    if ratio > config.max_reject_ratio {
        return Err(Error::TooManyRejects {
            rejected: totals.rejected,
            lines: totals.lines,
            max_ratio: config.max_reject_ratio,
            top_reasons: top_reasons(&totals.reasons, 5),
            rejects_url: output.join("_rejects").to_string(),
        });
    }
    events.commit().await.map_err(|e| Error::storage(&config.output, e))?;
    let summary = IngestSummary {
        output: output.to_string(),
        totals,
        inputs: per_input,
        partitions: partitions.into_iter().collect(),
        bytes_read,
        seconds: clock.elapsed().as_secs_f64(),
    };
    let manifest = serde_json::json!({ "step": "ingest", "config": config, "summary": summary });
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
    ipi_storage::put_atomic(&output.join("_manifest.json"), bytes.into())
        .await
        .map_err(|e| Error::storage(&config.output, e))?;
    Ok(summary)
}

/// The config in the form the parsers use, built once per ingest (the
/// entity regex is compiled here, not per input).
#[derive(Debug)]
struct Prepared {
    config: IngestConfig,
    keep: Keep,
    entity: EntityExtractor,
    default_timestamp: Option<DateTime<FixedOffset>>,
}

impl Prepared {
    fn new(config: &IngestConfig) -> Result<Prepared> {
        Ok(Prepared {
            config: config.clone(),
            keep: Keep::from_names(&config.keep)
                .map_err(|name| Error::Config(format!("keep: unknown column `{name}`")))?,
            entity: EntityExtractor::new(&config.entity)
                .map_err(|e| Error::Config(format!("entity: {e}")))?,
            default_timestamp: config.default_timestamp.as_deref().and_then(parse_instant),
        })
    }

    /// How one input's records become rows.
    fn rows<'a>(&'a self, source: &'a str) -> RowSettings<'a> {
        RowSettings { source, filter: &self.config.filter, keep: self.keep, entity: &self.entity }
    }
}

/// Inputs parsed at once: the one being written and the next.
const INPUTS_AHEAD: usize = 2;

type Parser = (String, mpsc::Receiver<ParsedChunk>, tokio::task::JoinHandle<Result<u64>>);

/// Start parsing one input into a bounded channel.
fn start_parser(
    location: &Location,
    size: u64,
    prepared: &Arc<Prepared>,
    progress: Option<ProgressFn>,
) -> Parser {
    let source = location.to_string();
    let (tx, rx) = mpsc::channel::<ParsedChunk>(4);
    let (location, prepared, name) = (location.clone(), Arc::clone(prepared), source.clone());
    let parser = if prepared.config.format == FormatName::Parquet {
        tokio::spawn(
            async move { parse_parquet_input(&location, size, &prepared, &name, &tx).await },
        )
    } else {
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            parse_input(&location, &prepared, &name, &handle, &tx, progress.as_ref())
        })
    };
    (source, rx, parser)
}

/// How events are encoded: zstd level 1 (encoding is the costliest part of an
/// ingest, and level 3 saved little on logs), no dictionary for the nearly
/// unique columns, delta encoding for the line numbers and timestamps, which
/// grow almost in step, and for the offset and status, which repeat (see
/// `events::DELTA`), no compression where zstd saves nothing (time, line
/// numbers and addresses as integers), and min/max statistics only where
/// readers prune with them (time, entity, address, status).
fn writer_options() -> WriterOptions {
    use ipi_core::schema::events;
    let mut options = WriterOptions::default();
    options.parquet.zstd_level = 1;
    options.parquet.plain_columns = events::PLAIN.map(String::from).to_vec();
    options.parquet.delta_columns = events::DELTA.map(String::from).to_vec();
    options.parquet.delta_length_columns = events::DELTA_LENGTH.map(String::from).to_vec();
    options.parquet.uncompressed_columns = events::UNCOMPRESSED.map(String::from).to_vec();
    options.parquet.no_statistics_columns = events::NO_STATISTICS.map(String::from).to_vec();
    options
}

/// Expand the inputs to the objects they name, with their sizes.
pub async fn plan(config: &IngestConfig) -> Result<Vec<(Location, u64)>> {
    let mut out = Vec::new();
    for input in &config.inputs {
        let found = ipi_storage::expand(input).await.map_err(|e| Error::storage(input, e))?;
        if found.is_empty() {
            return Err(Error::NoInput { input: input.clone() });
        }
        out.extend(found.into_iter().map(|(location, meta)| (location, meta.size)));
    }
    Ok(out)
}

/// Parse one input, sending parsed chunks in order. Returns the bytes read.
fn parse_input(
    location: &Location,
    prepared: &Prepared,
    source: &str,
    handle: &tokio::runtime::Handle,
    tx: &mpsc::Sender<ParsedChunk>,
    progress: Option<&ProgressFn>,
) -> Result<u64> {
    let config = &prepared.config;
    let default_timestamp = prepared.default_timestamp;
    let read_error = |e: std::io::Error| Error::Read { url: source.to_owned(), source: e };
    let mut chunker =
        chunks(location, handle, config.chunk_bytes, config.mmap).map_err(read_error)?;
    let window = rayon::current_num_threads().max(1) * 2;
    // A table with a header: its first line names the columns.
    let mut pending = None;
    // Lines of the input before the next chunk to send on: the header, at
    // first, if the table has one.
    let mut lines_before = 0;
    let layout;
    let input = match config.format {
        FormatName::SagemakerCsv => {
            layout = TableLayout::SAGEMAKER;
            InputKind::Table { layout: &layout, default_timestamp }
        }
        FormatName::Csv => {
            let Some(mut first) = chunker.next_chunk().map_err(read_error)? else {
                return Ok(0);
            };
            let end = memchr::memchr(b'\n', &first.bytes).unwrap_or(first.bytes.len());
            layout = TableLayout::from_header(&first.bytes[..end])
                .map_err(|e| Error::Config(format!("{source}: {e}")))?;
            if layout.timestamp.is_none() && default_timestamp.is_none() {
                return Err(Error::Config(format!(
                    "{source}: the table has no time column (timestamp, time or event_time); set default_timestamp"
                )));
            }
            first.bytes.advance(end + 1);
            lines_before = 1;
            pending = Some(first).filter(|chunk| !chunk.bytes.is_empty());
            InputKind::Table { layout: &layout, default_timestamp }
        }
        log => InputKind::Log(log.line_format().unwrap_or(LineFormat::Auto)),
    };
    let settings = ParseSettings { input, rows: prepared.rows(source) };
    // A reader thread cuts chunks a window ahead, so reading (and gunzip)
    // overlaps parsing; the channel bounds how far ahead it gets.
    std::thread::scope(|scope| {
        let (chunk_tx, chunk_rx) = std::sync::mpsc::sync_channel(window);
        let (recycle_tx, recycle_rx) = std::sync::mpsc::channel::<ChunkBytes>();
        let reader = scope.spawn(move || {
            loop {
                while let Ok(buffer) = recycle_rx.try_recv() {
                    chunker.recycle(buffer);
                }
                match chunker.next_chunk() {
                    Ok(Some(chunk)) => {
                        if chunk_tx.send(Ok(chunk)).is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = chunk_tx.send(Err(e));
                        break;
                    }
                }
            }
            chunker.bytes_read()
        });
        // Up to `window` chunks parse at once on the rayon pool, each as
        // soon as a thread is free (no chunk waits for a slower neighbour);
        // they are sent on in input order.
        let (done_tx, done_rx) = std::sync::mpsc::channel::<(u64, ParsedChunk, ChunkBytes)>();
        let settings = &settings;
        rayon::in_place_scope(|scope| -> Result<()> {
            let mut in_flight = 0;
            let mut input_done = false;
            // Chunks are numbered from 0 in input order.
            let mut next = 0;
            let mut ready = BTreeMap::new();
            loop {
                while !input_done && in_flight < window {
                    let Some(chunk) = pending.take().map(Ok).or_else(|| chunk_rx.recv().ok())
                    else {
                        input_done = true;
                        break;
                    };
                    let chunk = chunk.map_err(read_error)?;
                    let done_tx = done_tx.clone();
                    in_flight += 1;
                    scope.spawn(move |_| {
                        let parsed = parse_chunk(&chunk, settings);
                        let _ = done_tx.send((chunk.seq, parsed, chunk.bytes));
                    });
                }
                if in_flight == 0 {
                    return Ok(());
                }
                let Ok((seq, parsed, bytes)) = done_rx.recv() else { return Ok(()) };
                in_flight -= 1;
                if let Some(progress) = progress {
                    progress(bytes.len() as u64);
                }
                let _ = recycle_tx.send(bytes);
                ready.insert(seq, parsed);
                while let Some(mut parsed) = ready.remove(&next) {
                    next += 1;
                    parsed.renumber(lines_before);
                    lines_before += parsed.counts.lines;
                    // A closed channel means the writer stopped; its error
                    // is the one to report.
                    if tx.blocking_send(parsed).is_err() {
                        return Ok(());
                    }
                }
            }
        })?;
        drop(chunk_rx);
        reader.join().map_err(|_| Error::Internal(format!("{source}: the reader thread panicked")))
    })
}

/// Read a Parquet table input batch by batch, sending parsed chunks in
/// order. Returns the bytes of the object (`size`, from the listing).
async fn parse_parquet_input(
    location: &Location,
    size: u64,
    prepared: &Prepared,
    source: &str,
    tx: &mpsc::Sender<ParsedChunk>,
) -> Result<u64> {
    use futures::TryStreamExt as _;
    let options = ipi_storage::ReadOptions::default().with_batch_size(64 * 1024);
    let mut stream = ipi_storage::read_parquet(location, &options)
        .await
        .map_err(|e| Error::storage(source, e))?;
    let default_timestamp = prepared.default_timestamp;
    let layout = ParquetLayout::from_schema(stream.schema(), default_timestamp.is_some())
        .map_err(|e| Error::Config(format!("{source}: {e}")))?;
    let rows = prepared.rows(source);
    let mut first_row = 1;
    while let Some(batch) = stream.try_next().await.map_err(|e| Error::storage(source, e))? {
        let chunk = parse_batch(&batch, &layout, default_timestamp, rows, first_row);
        first_row += batch.num_rows() as u64;
        if tx.send(chunk).await.is_err() {
            break;
        }
    }
    Ok(size)
}

fn top_reasons(reasons: &BTreeMap<String, u64>, n: usize) -> String {
    let mut sorted: Vec<_> = reasons.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    sorted
        .iter()
        .take(n)
        .map(|(reason, count)| format!("{count} × {reason}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use arrow_array::{Array, UInt64Array};
    use futures::TryStreamExt as _;
    use ipi_storage::{Dataset, ReadOptions, read_parquet};

    use super::*;

    /// The `line` column of each partition of the dataset at `url`, its
    /// files in order.
    async fn lines(url: &str) -> BTreeMap<String, Vec<u64>> {
        let dataset = Dataset::open(&Location::parse(url).unwrap()).await.unwrap();
        let mut out = BTreeMap::<String, Vec<u64>>::new();
        for file in dataset.files() {
            let options = ReadOptions::default().with_columns(["line"]);
            let batches: Vec<_> =
                read_parquet(&file.location, &options).await.unwrap().try_collect().await.unwrap();
            let lines = out.entry(file.partition.clone()).or_default();
            for batch in batches {
                let column = batch.column(0).as_any().downcast_ref::<UInt64Array>().unwrap();
                lines.extend(column.values().iter().copied());
            }
        }
        out
    }

    /// Chunks parse on the pool in whatever order threads take them, and
    /// are written in input order: with 4 KiB chunks (over a hundred) the
    /// rows and rejects are those of one big chunk, line for line.
    #[test]
    fn small_chunks_are_written_in_input_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        let mut text = String::new();
        for i in 0..5000u32 {
            if i % 997 == 0 {
                text.push_str("not a log line\n");
                continue;
            }
            let day = if i < 2500 { 12 } else { 13 };
            let (h, m, s) = (i / 3600 % 24, i / 60 % 60, i % 60);
            writeln!(
                text,
                "10.0.{}.{} - user_{} [{day}/Nov/2018:{h:02}:{m:02}:{s:02} +0000] \"GET /login_success?i={i} HTTP/1.1\" 200 {i} \"-\" \"agent\"",
                i / 256 % 256,
                i % 256,
                i % 50
            )
            .unwrap();
        }
        std::fs::write(&log, text).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let ingest_with = |chunk_bytes: usize, name: &str, mmap: bool| {
            let output = dir.path().join(name).to_str().unwrap().to_string();
            let config: IngestConfig = serde_json::from_value(serde_json::json!({
                "inputs": [log.to_str().unwrap()],
                "output": output,
                "chunk_bytes": chunk_bytes,
                "mmap": mmap,
            }))
            .unwrap();
            runtime.block_on(async {
                let summary = ingest(&config, None).await.unwrap();
                assert_eq!(summary.totals.lines, 5000);
                assert_eq!(summary.totals.rejected, 6);
                (lines(&output).await, lines(&format!("{output}/_rejects")).await)
            })
        };
        let small = ingest_with(4096, "small", true);
        // Read instead of mapped: the same rows and rejects.
        assert_eq!(ingest_with(4096, "read", false), small);
        let (events, rejects) = small;
        let expected_rejects: Vec<u64> =
            (0..5000).filter(|i| i % 997 == 0).map(|i| i + 1).collect();
        assert_eq!(rejects.into_values().flatten().collect::<Vec<_>>(), expected_rejects);
        let day = |range: std::ops::Range<u64>| -> Vec<u64> {
            range.filter(|i| i % 997 != 0).map(|i| i + 1).collect()
        };
        assert_eq!(events["date=2018-11-12"], day(0..2500));
        assert_eq!(events["date=2018-11-13"], day(2500..5000));
        assert_eq!(ingest_with(64 << 20, "one", true).0, events);
    }

    /// A table's header is line 1, so its first record is line 2, in every
    /// chunk after the first too.
    #[test]
    fn a_headed_table_numbers_records_from_line_2() {
        let dir = tempfile::tempdir().unwrap();
        let table = dir.path().join("events.csv");
        let mut text = String::from("timestamp,entity,ip\n");
        for i in 0..1000u32 {
            if i % 301 == 0 {
                text.push_str("not,a,record\n");
            } else {
                writeln!(
                    text,
                    "2018-11-12T10:{:02}:{:02}Z,user_{},10.0.0.{}",
                    i / 60 % 60,
                    i % 60,
                    i % 7,
                    i % 250
                )
                .unwrap();
            }
        }
        std::fs::write(&table, text).unwrap();
        let output = dir.path().join("out").to_str().unwrap().to_string();
        let config: IngestConfig = serde_json::from_value(serde_json::json!({
            "inputs": [table.to_str().unwrap()],
            "output": output,
            "format": "csv",
            "chunk_bytes": 4096,
            "max_reject_ratio": 1.0,
        }))
        .unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (events, rejects) = runtime.block_on(async {
            let summary = ingest(&config, None).await.unwrap();
            assert_eq!((summary.totals.lines, summary.totals.rejected), (1000, 4));
            (lines(&output).await, lines(&format!("{output}/_rejects")).await)
        });
        let record_lines = |keep: fn(&u32) -> bool| -> Vec<u64> {
            (0..1000u32).filter(keep).map(|i| u64::from(i) + 2).collect()
        };
        assert_eq!(
            rejects.into_values().flatten().collect::<Vec<_>>(),
            record_lines(|i| i % 301 == 0)
        );
        assert_eq!(events["date=2018-11-12"], record_lines(|i| i % 301 != 0));
    }
}
