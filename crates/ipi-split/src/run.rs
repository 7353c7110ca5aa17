//! The split itself: read with polars, label each row by its UTC instant,
//! shuffle train, write Parquet (and CSV), report.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use polars::prelude::*;

use crate::config::{Bounds, Mode, SplitConfig, rfc3339};
use crate::error::{Error, Result};
use crate::report::{Boundaries, Dropped, SplitReport, SplitStats};

/// The columns every split keeps.
pub const COLUMNS: [&str; 4] = ["timestamp", "entity", "ip", "ipv4"];
/// The window names, which are also the output directories.
pub const SPLITS: [&str; 3] = ["train", "validation", "test"];

/// Splits `config.input` into `config.output`'s `train/`, `validation/`
/// and `test/`, writes `_manifest.json`, and returns the report.
pub async fn split(config: &SplitConfig) -> Result<SplitReport> {
    let started = Instant::now();
    let mode = config.mode().map_err(|problems| {
        Error::Config(
            problems.iter().map(|(f, why)| format!("{f}: {why}")).collect::<Vec<_>>().join("; "),
        )
    })?;
    let input =
        ipi_storage::Location::parse(&config.input).map_err(|e| Error::storage("input", e))?;
    let output =
        ipi_storage::Location::parse(&config.output).map_err(|e| Error::storage("output", e))?;
    let dataset =
        ipi_storage::Dataset::open(&input).await.map_err(|e| Error::storage("input", e))?;
    let files = dataset
        .files()
        .iter()
        .map(|f| {
            f.location.as_local_path().ok_or_else(|| {
                Error::Config(format!("input: `{}` is not on local disk", f.location))
            })
        })
        .collect::<Result<Vec<PathBuf>>>()?;
    let out_dir = output
        .as_local_path()
        .ok_or_else(|| Error::Config(format!("output: `{output}` is not on local disk")))?;
    let (seed, drop_unseen, csv) = (config.seed, config.drop_unseen_entities, config.sagemaker_csv);
    // polars blocks on its own runtime with `tokio::task::block_in_place`,
    // which panics on a current-thread runtime (even in `spawn_blocking`):
    // run it on a thread of its own, outside any runtime.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("ipi-split".into())
        .spawn(move || {
            // Sending can only fail when the caller went away; then nobody wants the result.
            let _ = tx.send(run(&files, &out_dir, mode, seed, drop_unseen, csv));
        })
        .map_err(|e| Error::Internal(format!("cannot start the split thread: {e}")))?;
    let mut report =
        rx.await.map_err(|_| Error::Internal("the split thread panicked".into()))??;
    report.seconds = started.elapsed().as_secs_f64();
    let json = serde_json::to_vec_pretty(&report).map_err(|e| Error::Internal(e.to_string()))?;
    let manifest = output.join("_manifest.json");
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

/// Reads the four columns of every file, in manifest order.
fn read(files: &[PathBuf]) -> Result<DataFrame> {
    if files.is_empty() {
        return Err(Error::Config("input: the dataset has no files".into()));
    }
    let scans = files
        .iter()
        .map(|path| {
            let args = ScanArgsParquet {
                hive_options: HiveOptions::new_disabled(),
                glob: false,
                ..Default::default()
            };
            let name = path.to_string_lossy();
            LazyFrame::scan_parquet(PlRefPath::new(name.as_ref()), args)
                .map_err(Error::polars(path.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    concat(scans, UnionArgs::default())
        .map_err(Error::polars("input"))?
        .select(COLUMNS.map(col))
        .collect()
        .map_err(Error::polars("reading the input"))
}

const DROP_ENTITY: u8 = 3;
const DROP_IPV4: u8 = 4;
const DROP_GAP: u8 = 5;

fn run(
    files: &[PathBuf],
    out: &Path,
    mode: Mode,
    seed: u64,
    drop_unseen: bool,
    csv: bool,
) -> Result<SplitReport> {
    let df = read(files)?;
    let input_rows = df.height() as u64;
    let ctx = Error::polars("input columns");
    let ts: Vec<Option<i64>> =
        df.column("timestamp").and_then(|c| c.datetime()).map_err(ctx)?.physical().iter().collect();
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
            (_, _, None) => DROP_GAP,
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
    for (i, mut frame) in [train, validation, test].into_iter().enumerate() {
        stats[i].files = write_split(out, SPLITS[i], &mut frame, csv)?;
    }
    let [train, validation, test] = stats;
    if !leakage_check_passed {
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
    Ok(SplitReport {
        input_rows,
        boundaries: Boundaries {
            train_end: rfc3339(bounds.train_end),
            validation_start: rfc3339(bounds.validation_start),
            validation_end: rfc3339(bounds.validation_end),
            test_start: rfc3339(bounds.test_start),
        },
        train,
        validation,
        test,
        dropped,
        leakage_check_passed,
        seed,
        seconds: 0.0,
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
        files: Vec::new(),
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
/// `out/<name>.csv`, each under a temporary name renamed into place.
/// Other `.parquet` files in `out/<name>/` (from an earlier run) are
/// removed. Returns the paths written, relative to `out`.
fn write_split(out: &Path, name: &str, df: &mut DataFrame, csv: bool) -> Result<Vec<String>> {
    let dir = out.join(name);
    std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    let file_name = "part-00000.parquet";
    let tmp = dir.join(format!(".{file_name}.tmp"));
    let file = std::fs::File::create(&tmp).map_err(Error::io(&tmp))?;
    ParquetWriter::new(std::io::BufWriter::new(file))
        .with_compression(ParquetCompression::Zstd(None))
        .finish(df)
        .map_err(Error::polars(tmp.display()))?;
    for entry in std::fs::read_dir(&dir).map_err(Error::io(&dir))? {
        let path = entry.map_err(Error::io(&dir))?.path();
        if path.extension().is_some_and(|e| e == "parquet") {
            std::fs::remove_file(&path).map_err(Error::io(&path))?;
        }
    }
    let target = dir.join(file_name);
    std::fs::rename(&tmp, &target).map_err(Error::io(&target))?;
    let mut written = vec![format!("{name}/{file_name}")];
    if csv {
        let target = out.join(format!("{name}.csv"));
        let tmp = out.join(format!(".{name}.csv.tmp"));
        let file = std::fs::File::create(&tmp).map_err(Error::io(&tmp))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        for (e, ip) in str_col(df, "entity")?.iter().zip(str_col(df, "ip")?.iter()) {
            write_csv_field(&mut w, e.unwrap_or_default()).map_err(Error::io(&tmp))?;
            w.write_all(b",").map_err(Error::io(&tmp))?;
            write_csv_field(&mut w, ip.unwrap_or_default()).map_err(Error::io(&tmp))?;
            w.write_all(b"\n").map_err(Error::io(&tmp))?;
        }
        w.into_inner()
            .map_err(|e| Error::io(&tmp)(e.into_error()))?
            .sync_all()
            .map_err(Error::io(&tmp))?;
        std::fs::rename(&tmp, &target).map_err(Error::io(&target))?;
        written.push(format!("{name}.csv"));
    }
    Ok(written)
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
