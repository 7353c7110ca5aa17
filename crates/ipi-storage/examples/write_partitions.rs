//! How fast a [`DatasetWriter`] writes interleaved partitions, the shape of
//! an ingest: batches of log-like rows arriving round-robin for ten days.
//!
//! ```text
//! cargo run --release -p ipi-storage --example write_partitions -- \
//!     [--rows 3000000] [--batch-rows 8192] [--partitions 10] [--concurrency N] \
//!     [--dir PATH]
//! ```
//!
//! The batches are generated before the clock starts (a pool of 64 is
//! reused), so the figure is encoding, compression and local-disk writes
//! only. Output goes to a temporary directory unless `--dir` is given.
//!
//! On a 2-core machine, 3M rows: about 3.4M rows/s when the caller encoded
//! every partition itself, about 5M rows/s with one encoding task per
//! partition and `encode_concurrency` 2 (about 3.3M rows/s with 1).

use std::sync::Arc;
use std::time::Instant;

use arrow_array::{RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use ipi_storage::{DatasetWriter, Location, ParquetOptions, WriteMode, WriterOptions};

const POOL: usize = 64;

struct Args {
    rows: usize,
    batch_rows: usize,
    partitions: usize,
    concurrency: Option<usize>,
    dir: Option<String>,
}

fn args() -> Result<Args, String> {
    let mut args =
        Args { rows: 3_000_000, batch_rows: 8192, partitions: 10, concurrency: None, dir: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--rows" => args.rows = number(value()?)?,
            "--batch-rows" => args.batch_rows = number(value()?)?.max(1),
            "--partitions" => args.partitions = number(value()?)?.max(1),
            "--concurrency" => args.concurrency = Some(number(value()?)?),
            "--dir" => args.dir = Some(value()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("entity", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("user_agent", DataType::Utf8, false),
    ]))
}

/// A deterministic pseudo-random sequence (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Long, repetitive user agents: a few hundred distinct values.
fn user_agent(rng: &mut Rng) -> String {
    const OS: [&str; 6] = [
        "Windows NT 10.0; Win64; x64",
        "Macintosh; Intel Mac OS X 10_14_1",
        "X11; Linux x86_64",
        "iPhone; CPU iPhone OS 12_1 like Mac OS X",
        "Linux; Android 9; SM-G960F",
        "Windows NT 6.1; WOW64",
    ];
    let os = OS[rng.below(OS.len() as u64) as usize];
    let major = 60 + rng.below(12);
    let build = rng.below(4) * 1000 + 3029;
    format!(
        "Mozilla/5.0 ({os}) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/{major}.0.{build}.110 Safari/537.36"
    )
}

fn batch(schema: &SchemaRef, rows: usize, rng: &mut Rng, start_micros: i64) -> RecordBatch {
    let mut timestamps = Vec::with_capacity(rows);
    let mut entities = Vec::with_capacity(rows);
    let mut paths = Vec::with_capacity(rows);
    let mut agents = Vec::with_capacity(rows);
    for i in 0..rows {
        timestamps.push(start_micros + i as i64 * 1_000 + rng.below(1_000) as i64);
        entities.push(format!("user-{:06}", rng.below(200_000)));
        paths.push(format!("/api/v1/items/{}?page={}", rng.below(5_000), rng.below(20)));
        agents.push(user_agent(rng));
    }
    RecordBatch::try_new(
        Arc::clone(schema),
        vec![
            Arc::new(TimestampMicrosecondArray::from(timestamps).with_timezone("UTC")),
            Arc::new(StringArray::from(entities)),
            Arc::new(StringArray::from(paths)),
            Arc::new(StringArray::from(agents)),
        ],
    )
    .expect("a valid batch")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    let schema = schema();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let pool: Vec<RecordBatch> = (0..POOL)
        .map(|i| {
            batch(&schema, args.batch_rows, &mut rng, 1_541_980_800_000_000 + i as i64 * 10_000_000)
        })
        .collect();

    let temp = tempfile::tempdir()?;
    let dir = match &args.dir {
        Some(dir) => std::path::PathBuf::from(dir),
        None => temp.path().join("dataset"),
    };
    let root = Location::parse(dir.to_str().ok_or("the directory is not UTF-8")?)?;
    let mut options = WriterOptions {
        parquet: ParquetOptions {
            zstd_level: 1,
            plain_columns: vec!["timestamp".to_string()],
            ..ParquetOptions::default()
        },
        ..WriterOptions::default()
    };
    if let Some(n) = args.concurrency {
        options.encode_concurrency = n;
    }
    println!(
        "{} rows in batches of {}, {} interleaved partitions, encode_concurrency {}, to {}",
        args.rows,
        args.batch_rows,
        args.partitions,
        options.encode_concurrency,
        dir.display()
    );

    let clock = Instant::now();
    let mut writer =
        DatasetWriter::new(root, Arc::clone(&schema), WriteMode::Overwrite).with_options(options);
    let (mut written, mut i) = (0, 0);
    while written < args.rows {
        let batch = &pool[i % POOL];
        let take = batch.num_rows().min(args.rows - written);
        let partition = format!("date=2018-11-{:02}", 1 + i % args.partitions);
        writer.write(partition.as_str(), &batch.slice(0, take)).await?;
        written += take;
        i += 1;
    }
    let writes = clock.elapsed().as_secs_f64();
    let summary = writer.commit().await?;
    let seconds = clock.elapsed().as_secs_f64();

    println!(
        "{} rows, {} files, {:.1} MiB in {seconds:.2} s ({writes:.2} s of writes, then the commit): \
         {:.0} rows/s",
        summary.rows_written,
        summary.files_written,
        summary.bytes_written as f64 / (1024.0 * 1024.0),
        summary.rows_written as f64 / seconds,
    );
    Ok(())
}
