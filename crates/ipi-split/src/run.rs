//! The split itself: read with polars, label each row by its UTC instant,
//! shuffle train, write Parquet (and CSV), report.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use polars::prelude::*;

use crate::config::{Bounds, LocalZone, Mode, SplitConfig, rfc3339};
use crate::error::{Error, Result};
use crate::input::Format;
use crate::report::{AssumedTimezone, Boundaries, Dropped, SplitReport, SplitStats};
use crate::times::{naive_refused, utc_micros};

/// The columns every split keeps.
pub const COLUMNS: [&str; 4] = ["timestamp", "entity", "ip", "ipv4"];
/// The window names, which are also the output directories.
pub const SPLITS: [&str; 3] = ["train", "validation", "test"];

/// Splits `config.input` into `config.output`'s `train/`, `validation/`
/// and `test/`, writes `_manifest.json`, and returns the report.
///
/// Input files that are not on the local disk are first copied to a
/// temporary directory (`TMPDIR`); the splits are written there too, then
/// published: each as a committed dataset (replacing the one a previous run
/// left), then the SageMaker CSVs, then the report.
pub async fn split(config: &SplitConfig) -> Result<SplitReport> {
    let started = Instant::now();
    let mode = config.mode().map_err(|problems| {
        Error::Config(
            problems.iter().map(|(f, why)| format!("{f}: {why}")).collect::<Vec<_>>().join("; "),
        )
    })?;
    let zone =
        config.local_zone().map_err(|why| Error::Config(format!("assume_timezone: {why}")))?;
    let input =
        ipi_storage::Location::parse(&config.input).map_err(|e| Error::storage("input", e))?;
    let output =
        ipi_storage::Location::parse(&config.output).map_err(|e| Error::storage("output", e))?;
    let found = crate::input::resolve(&input).await?;
    let scratch = tempfile::Builder::new()
        .prefix("ipi-split-")
        .tempdir()
        .map_err(Error::io(&std::env::temp_dir()))?;
    let staged = scratch.path().join("input");
    let files = crate::input::stage(&found, &staged).await?;
    let job = Job {
        files,
        format: found.format,
        url: input.to_string(),
        zone,
        out: scratch.path().join("output"),
        mode,
        seed: config.seed,
        drop_unseen: config.drop_unseen_entities,
        csv: config.sagemaker_csv,
    };
    // polars blocks on its own runtime with `tokio::task::block_in_place`,
    // which panics on a current-thread runtime (even in `spawn_blocking`):
    // run it on a thread of its own, outside any runtime.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("ipi-split".into())
        .spawn(move || {
            // Sending can only fail when the caller went away; then nobody wants the result.
            let _ = tx.send(run(&job).map(|report| (report, job)));
        })
        .map_err(|e| Error::Internal(format!("cannot start the split thread: {e}")))?;
    let (mut report, job) =
        rx.await.map_err(|_| Error::Internal("the split thread panicked".into()))??;
    // Staged inputs are no longer needed; free the disk before publishing.
    if staged.exists() {
        tokio::fs::remove_dir_all(&staged).await.map_err(Error::io(&staged))?;
    }
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        output = %output,
        "Split written to the scratch directory; publishing."
    );
    report.input_files = job.files.len() as u64;
    report.input_format = found.format.name().into();

    // The old report goes first: whenever `_manifest.json` exists, it
    // describes the splits beside it.
    let manifest = output.join("_manifest.json");
    delete_if_present(&manifest).await?;
    let published =
        futures::future::try_join_all(SPLITS.map(|name| publish(&job.out, &output, name, job.csv)))
            .await?;
    for (stats, (commit, files)) in
        [&mut report.train, &mut report.validation, &mut report.test].into_iter().zip(published)
    {
        stats.commit = commit;
        stats.files = files;
    }
    report.seconds = started.elapsed().as_secs_f64();
    let json = serde_json::to_vec_pretty(&report).map_err(|e| Error::Internal(e.to_string()))?;
    ipi_storage::put_atomic(&manifest, json.into())
        .await
        .map_err(|e| Error::storage(&manifest, e))?;
    tracing::info!(
        train = report.train.rows,
        validation = report.validation.rows,
        test = report.test.rows,
        "Split done."
    );
    Ok(report)
}

/// What the polars thread does.
#[derive(Debug)]
struct Job {
    /// Local files, in input order.
    files: Vec<PathBuf>,
    format: Format,
    /// The input, for messages.
    url: String,
    zone: Option<LocalZone>,
    /// Where to write `<split>/part-00000.parquet` and `<split>.csv`.
    out: PathBuf,
    mode: Mode,
    seed: u64,
    drop_unseen: bool,
    csv: bool,
}

/// The one file polars writes per split, in the scratch directory.
const PART: &str = "part-00000.parquet";

/// Commits `staged/<name>/part-00000.parquet` as the dataset
/// `output/<name>/` (replacing what was there), and copies or removes
/// `output/<name>.csv`. Returns the commit id and the files, relative to
/// `output`.
async fn publish(
    staged: &Path,
    output: &ipi_storage::Location,
    name: &str,
    csv: bool,
) -> Result<(String, Vec<String>)> {
    let local = |path: PathBuf| {
        ipi_storage::Location::from_local_path(&path).map_err(|e| Error::storage(path.display(), e))
    };
    let file = local(staged.join(name).join(PART))?;
    let footer = ipi_storage::read_parquet_metadata(&file, None)
        .await
        .map_err(|e| Error::storage(&file, e))?;
    let root = output.join(name);
    let mut writer = ipi_storage::DatasetWriter::new(
        root.clone(),
        footer.schema().clone(),
        ipi_storage::WriteMode::Overwrite,
    );
    let added = writer.add_file(None, &file).await.map_err(|e| Error::storage(&root, e))?;
    let summary = writer.commit().await.map_err(|e| Error::storage(&root, e))?;
    let mut files = vec![format!("{name}/{}", added.location.filename().unwrap_or_default())];
    let target = output.join(&format!("{name}.csv"));
    if csv {
        let source = local(staged.join(format!("{name}.csv")))?;
        ipi_storage::copy_object(&source, &target).await.map_err(|e| Error::storage(&target, e))?;
        files.push(format!("{name}.csv"));
    } else {
        // A CSV of an earlier run would no longer match the split.
        delete_if_present(&target).await?;
    }
    Ok((summary.commit, files))
}

async fn delete_if_present(location: &ipi_storage::Location) -> Result<()> {
    match ipi_storage::delete(location).await {
        Err(e) if !e.is_not_found() => Err(Error::storage(location, e)),
        _ => Ok(()),
    }
}

/// The columns of every file, concatenated in order: `timestamp` as
/// `Datetime(µs, UTC)` if the files have a zone, naive `Datetime(µs)`
/// (only with `zone`) or text as it was; `entity` and `ip` as text; and
/// `ipv4` when every file has it as `UInt32`.
fn read(job: &Job) -> Result<DataFrame> {
    if job.files.is_empty() {
        return Err(Error::input(&job.url, "the dataset has no files"));
    }
    let mut scans = Vec::with_capacity(job.files.len());
    for path in &job.files {
        let name = path.to_string_lossy();
        let mut scan = match job.format {
            Format::Parquet => {
                let args = ScanArgsParquet {
                    hive_options: HiveOptions::new_disabled(),
                    glob: false,
                    ..Default::default()
                };
                LazyFrame::scan_parquet(PlRefPath::new(name.as_ref()), args)
            }
            // Every column as text: times are parsed here, not guessed.
            Format::Csv => LazyCsvReader::new(PlRefPath::new(name.as_ref()))
                .with_has_header(true)
                .with_infer_schema_length(Some(0))
                .with_glob(false)
                .finish(),
        }
        .map_err(Error::polars(path.display()))?;
        let schema = scan.collect_schema().map_err(Error::polars(path.display()))?;
        let file_url =
            if job.files.len() == 1 { job.url.clone() } else { path.display().to_string() };
        for column in ["timestamp", "entity", "ip"] {
            if schema.get(column).is_none() {
                let names: Vec<&str> = schema.iter_names().map(|n| n.as_str()).collect();
                return Err(Error::input(
                    &file_url,
                    format!(
                        "has no `{column}` column (it has {}); split needs timestamp, entity and ip",
                        names.join(", ")
                    ),
                ));
            }
        }
        let timestamp = match schema.get("timestamp") {
            Some(DataType::Datetime(_, Some(_))) => col("timestamp")
                .dt()
                .convert_time_zone(TimeZone::UTC)
                .cast(DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))),
            Some(DataType::Datetime(_, None)) if job.zone.is_none() => {
                return Err(Error::input(&file_url, naive_refused("column `timestamp`")));
            }
            Some(DataType::Datetime(_, None)) => {
                col("timestamp").cast(DataType::Datetime(TimeUnit::Microseconds, None))
            }
            Some(DataType::String) => col("timestamp"),
            other => {
                return Err(Error::input(
                    &file_url,
                    format!(
                        "column `timestamp` is {}, not a time",
                        other.map(|t| t.to_string()).unwrap_or_default()
                    ),
                ));
            }
        };
        let has_ipv4 = schema.get("ipv4") == Some(&DataType::UInt32);
        scans.push((scan, timestamp, has_ipv4));
    }
    let with_ipv4 = scans.iter().all(|(_, _, has)| *has);
    let frames = scans
        .into_iter()
        .map(|(scan, timestamp, _)| {
            let mut columns = vec![
                timestamp,
                col("entity").cast(DataType::String),
                col("ip").cast(DataType::String),
            ];
            if with_ipv4 {
                columns.push(col("ipv4"));
            }
            scan.select(columns)
        })
        .collect::<Vec<_>>();
    let mut df = concat(frames, UnionArgs::default())
        .map_err(Error::polars(&job.url))?
        .collect()
        .map_err(|e| match e {
        // Files whose `timestamp` types differ cannot be stacked.
        PolarsError::SchemaMismatch(why) => {
            Error::input(&job.url, format!("the files' columns have different types ({why})"))
        }
        other => Error::polars("reading the input")(other),
    })?;
    if !with_ipv4 {
        let ip = df.column("ip").and_then(|c| c.str()).map_err(Error::polars("ip"))?;
        let ipv4: UInt32Chunked =
            ip.iter().map(|ip| ip.and_then(|ip| ipi_core::ipv4::parse(ip.as_bytes()))).collect();
        df.with_column(ipv4.with_name("ipv4".into()).into_column())
            .map_err(Error::polars("ipv4"))?;
    }
    Ok(df)
}

const DROP_ENTITY: u8 = 3;
const DROP_IPV4: u8 = 4;
const DROP_GAP: u8 = 5;
const DROP_TIME: u8 = 6;

fn run(job: &Job) -> Result<SplitReport> {
    let (mode, seed, drop_unseen) = (job.mode, job.seed, job.drop_unseen);
    let mut df = read(job)?;
    let input_rows = df.height() as u64;
    let times = utc_micros(
        df.column("timestamp").map_err(Error::polars("timestamp"))?,
        job.zone,
        &job.url,
    )?;
    let ts = times.us;
    if !matches!(
        df.column("timestamp").map(|c| c.dtype()),
        Ok(DataType::Datetime(TimeUnit::Microseconds, Some(_)))
    ) {
        let utc = Int64Chunked::from_iter_options("timestamp".into(), ts.iter().copied())
            .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC));
        df.with_column(utc.into_column()).map_err(Error::polars("timestamp"))?;
    }
    let entity = df.column("entity").and_then(|c| c.str()).map_err(Error::polars("entity"))?;
    let ipv4 = df.column("ipv4").and_then(|c| c.u32()).map_err(Error::polars("ipv4"))?;
    // Reason to drop (or 0 to keep) first; the window once bounds are known.
    let mut label: Vec<u8> = entity
        .iter()
        .zip(ipv4.iter())
        .zip(&ts)
        .map(|((e, ip), t)| match (e, ip, t) {
            (None, _, _) => DROP_ENTITY,
            (_, None, _) => DROP_IPV4,
            (_, _, None) => DROP_TIME,
            _ => 0,
        })
        .collect();
    let max_us =
        ts.iter().zip(&label).filter(|(_, l)| **l == 0).filter_map(|(t, _)| *t).max().unwrap_or(0);
    let bounds = mode.bounds(max_us);
    for (l, t) in label.iter_mut().zip(&ts) {
        if *l == 0 {
            *l = window(&bounds, t.unwrap_or(i64::MIN));
        }
    }
    let count = |v: u8| label.iter().filter(|l| **l == v).count() as u64;
    let mut dropped = Dropped {
        null_entity: count(DROP_ENTITY),
        non_ipv4: count(DROP_IPV4),
        gap: count(DROP_GAP),
        bad_timestamp: count(DROP_TIME),
        unseen_entity: 0,
    };
    let mut frames = Vec::with_capacity(3);
    for w in 0..3u8 {
        let mask: Vec<bool> = label.iter().map(|l| *l == w).collect();
        let mask = BooleanChunked::from_slice("mask".into(), &mask);
        frames.push(df.filter(&mask).map_err(Error::polars(SPLITS[w as usize]))?);
    }
    drop(df);
    let [train, mut validation, mut test] =
        <[DataFrame; 3]>::try_from(frames).map_err(|_| Error::Internal("three frames".into()))?;
    let train = shuffle(&train, seed)?;
    let train_entities: HashSet<String> =
        str_col(&train, "entity")?.iter().flatten().map(str::to_owned).collect();
    let mut stats = [stats(&train, None)?, SplitStats::default(), SplitStats::default()];
    for (i, frame) in [&mut validation, &mut test].into_iter().enumerate() {
        stats[i + 1] = self::stats(frame, Some(&train_entities))?;
        if drop_unseen && stats[i + 1].unseen_entity_rows > 0 {
            let seen: Vec<bool> = str_col(frame, "entity")?
                .iter()
                .map(|e| e.is_some_and(|e| train_entities.contains(e)))
                .collect();
            *frame = frame
                .filter(&BooleanChunked::from_slice("seen".into(), &seen))
                .map_err(Error::polars("unseen"))?;
            dropped.unseen_entity += stats[i + 1].unseen_entity_rows;
            let kept = self::stats(frame, Some(&train_entities))?;
            // Keep the unseen figures of the window as it was.
            stats[i + 1] = SplitStats {
                unseen_entities: stats[i + 1].unseen_entities,
                unseen_entity_share: stats[i + 1].unseen_entity_share,
                unseen_entity_rows: stats[i + 1].unseen_entity_rows,
                ..kept
            };
        }
    }
    let leakage_check_passed = leakage_ok(&[&train, &validation, &test])?;
    let [train_stats, validation_stats, test_stats] = stats;
    if !leakage_check_passed {
        let (train, validation, test) = (&train_stats, &validation_stats, &test_stats);
        return Err(Error::Leakage(format!(
            "train {:?}..{:?}, validation {:?}..{:?}, test {:?}..{:?}",
            train.min_timestamp,
            train.max_timestamp,
            validation.min_timestamp,
            validation.max_timestamp,
            test.min_timestamp,
            test.max_timestamp
        )));
    }
    for (i, mut frame) in [train, validation, test].into_iter().enumerate() {
        write_split(&job.out, SPLITS[i], &mut frame, job.csv)?;
    }
    Ok(SplitReport {
        input_rows,
        boundaries: Boundaries {
            train_end: rfc3339(bounds.train_end),
            validation_start: rfc3339(bounds.validation_start),
            validation_end: rfc3339(bounds.validation_end),
            test_start: rfc3339(bounds.test_start),
        },
        train: train_stats,
        validation: validation_stats,
        test: test_stats,
        dropped,
        assumed_timezone: job.zone.map(|zone| AssumedTimezone {
            zone: zone.to_string(),
            naive_rows: times.naive,
            ambiguous_rows: times.ambiguous,
            skipped_rows: times.skipped,
        }),
        leakage_check_passed,
        seed,
        ..SplitReport::default()
    })
}

/// 0 train, 1 validation, 2 test, [`DROP_GAP`] between windows.
fn window(b: &Bounds, t: i64) -> u8 {
    if t < b.train_end {
        0
    } else if t < b.validation_start {
        DROP_GAP
    } else if t < b.validation_end {
        1
    } else if t < b.test_start {
        DROP_GAP
    } else {
        2
    }
}

fn str_col<'a>(df: &'a DataFrame, name: &str) -> Result<&'a StringChunked> {
    df.column(name).and_then(|c| c.str()).map_err(Error::polars(name))
}

fn timestamps(df: &DataFrame) -> Result<Vec<i64>> {
    let ts =
        df.column("timestamp").and_then(|c| c.datetime()).map_err(Error::polars("timestamp"))?;
    Ok(ts.physical().iter().flatten().collect())
}

/// A seeded Fisher–Yates permutation of the rows (SplitMix64), so the
/// order depends on the seed and the input only, not on polars.
fn shuffle(df: &DataFrame, seed: u64) -> Result<DataFrame> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let n = df.height();
    let mut order: Vec<IdxSize> = (0..n).map(|i| i as IdxSize).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    df.take(&IdxCa::from_vec("order".into(), order)).map_err(Error::polars("shuffling train"))
}

fn stats(df: &DataFrame, train: Option<&HashSet<String>>) -> Result<SplitStats> {
    let ts = timestamps(df)?;
    let entity = str_col(df, "entity")?;
    let entities: HashSet<&str> = entity.iter().flatten().collect();
    let ips: HashSet<&str> = str_col(df, "ip")?.iter().flatten().collect();
    let (mut unseen_entities, mut unseen_entity_rows) = (0, 0);
    if let Some(train) = train {
        unseen_entities = entities.iter().filter(|e| !train.contains(**e)).count() as u64;
        unseen_entity_rows = entity.iter().flatten().filter(|e| !train.contains(*e)).count() as u64;
    }
    Ok(SplitStats {
        rows: df.height() as u64,
        entities: entities.len() as u64,
        distinct_ips: ips.len() as u64,
        min_timestamp: ts.iter().min().map(|t| rfc3339(*t)),
        max_timestamp: ts.iter().max().map(|t| rfc3339(*t)),
        unseen_entities,
        unseen_entity_share: if entities.is_empty() {
            0.0
        } else {
            unseen_entities as f64 / entities.len() as f64
        },
        unseen_entity_rows,
        ..SplitStats::default()
    })
}

/// `max(train) < min(validation) <= max(validation) < min(test)` over the
/// non-empty windows.
fn leakage_ok(frames: &[&DataFrame; 3]) -> Result<bool> {
    let mut previous_max: Option<i64> = None;
    for frame in frames {
        let ts = timestamps(frame)?;
        let (Some(min), Some(max)) = (ts.iter().min().copied(), ts.iter().max().copied()) else {
            continue;
        };
        if previous_max.is_some_and(|p| p >= min) || min > max {
            return Ok(false);
        }
        previous_max = Some(max);
    }
    Ok(true)
}

/// Writes `out/<name>/part-00000.parquet` (zstd) and, with `csv`,
/// `out/<name>.csv`.
fn write_split(out: &Path, name: &str, df: &mut DataFrame, csv: bool) -> Result<()> {
    let dir = out.join(name);
    std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    let path = dir.join(PART);
    let file = std::fs::File::create(&path).map_err(Error::io(&path))?;
    ParquetWriter::new(std::io::BufWriter::new(file))
        .with_compression(ParquetCompression::Zstd(None))
        .finish(df)
        .map_err(Error::polars(path.display()))?;
    if csv {
        let path = out.join(format!("{name}.csv"));
        let file = std::fs::File::create(&path).map_err(Error::io(&path))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        for (e, ip) in str_col(df, "entity")?.iter().zip(str_col(df, "ip")?.iter()) {
            write_csv_field(&mut w, e.unwrap_or_default()).map_err(Error::io(&path))?;
            w.write_all(b",").map_err(Error::io(&path))?;
            write_csv_field(&mut w, ip.unwrap_or_default()).map_err(Error::io(&path))?;
            w.write_all(b"\n").map_err(Error::io(&path))?;
        }
        w.flush().map_err(Error::io(&path))?;
    }
    Ok(())
}

/// RFC 4180: quoted (quotes doubled) only when it holds `,`, `"` or a
/// line break.
fn write_csv_field(w: &mut impl Write, field: &str) -> std::io::Result<()> {
    if field.contains([',', '"', '\n', '\r']) {
        write!(w, "\"{}\"", field.replace('"', "\"\""))
    } else {
        w.write_all(field.as_bytes())
    }
}
