//! The synth step: blocks of users generated in parallel, written in block
//! order.
//!
//! `threads` rayon workers take block numbers in turn and generate them;
//! the blocks are handed on strictly in block order, and at most
//! `threads + 1` are claimed ahead of the next to hand on (plus one queued
//! and one being written), so memory stays bounded (a block is about
//! 100,000 lines, 23 MB) whatever the number of users.
//! An async task uploads each block as one log object (or encodes its
//! events), buffers the labels per day, and folds the statistics. Every
//! block's content depends only on the seed and the settings, so the
//! output is the same at any thread count.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use arrow_array::RecordBatch;
use chrono::DateTime;
use ipi_core::schema::{events_schema, labels_schema};
use ipi_storage::{DatasetWriter, Location, WriteMode, WriterOptions};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::attack::AttackKind;
use crate::config::{OutputFormat, SynthConfig};
use crate::error::{Error, Result};
use crate::model::{Block, Label, World};
use crate::output::{events_batches, labels_batch, put_object};
use crate::space::AddressSpace;
use crate::stats::{StatsAccumulator, SynthStats};

/// Called with the number of users finished since the last call.
pub type ProgressFn = Arc<dyn Fn(u64) + Send + Sync>;

/// Label rows buffered per day before they are written.
const LABEL_ROWS_PER_WRITE: usize = 65_536;
/// Event rows written before the open Parquet files are closed, which
/// bounds the memory of long windows (one open file per day).
const EVENT_ROWS_PER_CLOSE: u64 = 4_000_000;

/// Attack lines by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AttackCounts {
    pub random_ip: u64,
    pub credential_stuffing: u64,
    pub impossible_travel: u64,
    pub same_country_isp: u64,
    pub cgnat: u64,
}

impl AttackCounts {
    fn from_kinds(counts: [u64; 5]) -> AttackCounts {
        let [random_ip, credential_stuffing, impossible_travel, same_country_isp, cgnat] = counts;
        AttackCounts { random_ip, credential_stuffing, impossible_travel, same_country_isp, cgnat }
    }

    /// Every attack line.
    pub fn total(&self) -> u64 {
        self.random_ip
            + self.credential_stuffing
            + self.impossible_travel
            + self.same_country_isp
            + self.cgnat
    }

    /// The count of one kind.
    pub fn get(&self, kind: AttackKind) -> u64 {
        match kind {
            AttackKind::RandomIp => self.random_ip,
            AttackKind::CredentialStuffing => self.credential_stuffing,
            AttackKind::ImpossibleTravel => self.impossible_travel,
            AttackKind::SameCountryIsp => self.same_country_isp,
            AttackKind::Cgnat => self.cgnat,
        }
    }
}

/// What a synth run wrote.
#[derive(Debug, Clone, Serialize)]
pub struct SynthSummary {
    /// The output root.
    pub output: String,
    /// The folder of log files (`format = log`): give it to `ingest`.
    pub logs: Option<String>,
    /// The `events` dataset (`format = parquet`).
    pub events: Option<String>,
    /// The `labels` dataset: one row per attack line.
    pub labels: String,
    /// Log files written (0 for Parquet).
    pub files: u64,
    pub users: u64,
    pub days: u32,
    /// The window, RFC 3339, end exclusive.
    pub start: String,
    pub end: String,
    /// The address table: `seeded` or the ip2asn file, and its networks.
    pub table: String,
    pub networks: u64,
    /// Lines written (for Parquet: rows).
    pub lines: u64,
    /// Lines that pass ingest's login filter (GET /login_success, status
    /// 200): normal logins and attacks.
    pub login_lines: u64,
    /// Lines the login filter drops (`lines - login_lines`).
    pub other_lines: u64,
    /// Attack lines, all kinds (= rows of `labels`).
    pub attack_lines: u64,
    pub attacks: AttackCounts,
    /// Bytes of log written (after gzip).
    pub bytes: u64,
    pub stats: SynthStats,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl SynthSummary {
    /// A short human summary.
    pub fn to_table(&self) -> String {
        let pct = |x: f64| format!("{:.2}%", 100.0 * x);
        let q = |q: &crate::stats::Quantiles| {
            format!(
                "p10 {} · p50 {} · p90 {} · p99 {} · max {} (mean {:.1})",
                q.p10, q.p50, q.p90, q.p99, q.max, q.mean
            )
        };
        let written = match (&self.logs, &self.events) {
            (Some(logs), _) => format!("{} log files in {logs}", self.files),
            (None, Some(events)) => format!("events dataset {events}"),
            (None, None) => String::new(),
        };
        let attacks = AttackKind::ALL
            .iter()
            .map(|k| format!("{} {}", k.name(), self.attacks.get(*k)))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "synth: {users} users × {days} day{plural} ({start} .. {end}), {networks} networks ({table})\n\
             wrote:           {written}; labels {labels}\n\
             lines:           {lines} = {login} login + {other} other ({bytes:.1} MB)\n\
             attacks:         {attack_lines} ({attacks})\n\
             logins per user: {epu}\n\
             IPs per user:    {ipu}\n\
             travel share:    {travel}; shared-address share {shared}{sample}\n\
             time:            {seconds:.2} s\n",
            users = self.users,
            days = self.days,
            plural = if self.days == 1 { "" } else { "s" },
            start = self.start,
            end = self.end,
            networks = self.networks,
            table = self.table,
            labels = self.labels,
            lines = self.lines,
            login = self.login_lines,
            other = self.other_lines,
            bytes = self.bytes as f64 / 1e6,
            attack_lines = self.attack_lines,
            epu = q(&self.stats.events_per_user),
            ipu = q(&self.stats.distinct_ips_per_user),
            travel = pct(self.stats.travel_share),
            shared = pct(self.stats.shared_address_share),
            sample = if self.stats.shared_address_sample < 1.0 {
                format!(" (on a {} sample of addresses)", pct(self.stats.shared_address_sample))
            } else {
                String::new()
            },
            seconds = self.seconds,
        )
    }
}

/// A block, with its Parquet batches encoded by the worker.
#[derive(Debug)]
struct Prepared {
    block: Block,
    events: Vec<(u32, RecordBatch)>,
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// The name of block `index`'s log file.
pub fn log_name(index: u64, gzip: bool) -> String {
    format!("access-{index:05}.log{}", if gzip { ".gz" } else { "" })
}

/// Run a synth. `progress`, when given, is told about users as their
/// blocks are written.
pub async fn synth(config: &SynthConfig, progress: Option<ProgressFn>) -> Result<SynthSummary> {
    let clock = Instant::now();
    let problems = config.problems();
    if !problems.is_empty() {
        let text: Vec<String> = problems.iter().map(|(field, p)| format!("{field}: {p}")).collect();
        return Err(Error::Config(text.join("; ")));
    }
    let output = Location::parse(&config.output).map_err(|e| Error::storage("output", e))?;
    let space = load_space(config).await?;
    let world = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || World::new(&config, space))
            .await
            .map_err(internal)??
    };
    let world = Arc::new(world);
    let threads = config.threads.unwrap_or_else(rayon::current_num_threads).max(1);
    let (tx, rx) = mpsc::channel::<Result<Prepared>>(1);
    let producer = {
        let world = Arc::clone(&world);
        tokio::task::spawn_blocking(move || produce(&world, threads, &tx))
    };
    let written = consume(config, &world, &output, rx, progress).await;
    producer.await.map_err(internal)?;
    let (counts, accumulator, files, bytes) = written?;

    let logs = (config.format == OutputFormat::Log).then(|| output.join("logs").to_string());
    let events =
        (config.format == OutputFormat::Parquet).then(|| output.join("events").to_string());
    let instant =
        |t: i64| DateTime::from_timestamp(t, 0).map(|d| d.to_rfc3339()).unwrap_or_default();
    let attacks = AttackCounts::from_kinds(counts.attacks);
    let summary = SynthSummary {
        output: output.to_string(),
        logs,
        events,
        labels: output.join("labels").to_string(),
        files,
        users: config.users,
        days: config.days,
        start: instant(world.window.start),
        end: instant(world.window.end),
        table: world.space.source.clone(),
        networks: world.space.networks.len() as u64,
        lines: counts.lines,
        login_lines: counts.login_lines,
        other_lines: counts.other_lines,
        attack_lines: attacks.total(),
        attacks,
        bytes,
        stats: accumulator.finish(world.sample_bits),
        seconds: clock.elapsed().as_secs_f64(),
    };
    tracing::info!(
        users = summary.users,
        lines = summary.lines,
        attack_lines = summary.attack_lines,
        seconds = summary.seconds,
        "Synth finished."
    );
    let manifest = serde_json::json!({ "step": "synth", "config": config, "summary": summary });
    let manifest = serde_json::to_vec_pretty(&manifest).map_err(internal)?;
    ipi_storage::put_atomic(&output.join("_manifest.json"), manifest.into())
        .await
        .map_err(|e| Error::storage(&output, e))?;
    Ok(summary)
}

async fn load_space(config: &SynthConfig) -> Result<AddressSpace> {
    match &config.asn_file {
        None => {
            let seed = config.seed;
            tokio::task::spawn_blocking(move || AddressSpace::seeded(seed)).await.map_err(internal)
        }
        Some(file) => {
            let location = Location::parse(file).map_err(|e| Error::storage("asn_file", e))?;
            let bytes =
                ipi_storage::get_bytes(&location).await.map_err(|e| Error::storage(file, e))?;
            let url = location.to_string();
            tokio::task::spawn_blocking(move || AddressSpace::from_ip2asn(&bytes, &url))
                .await
                .map_err(internal)?
        }
    }
}

/// Totals over blocks.
#[derive(Debug, Default)]
struct Counts {
    lines: u64,
    login_lines: u64,
    other_lines: u64,
    attacks: [u64; 5],
}

type Written = (Counts, StatsAccumulator, u64, u64);

/// Writes the blocks as they come, in order; returns the totals, the
/// statistics, the files and the bytes written.
async fn consume(
    config: &SynthConfig,
    world: &World,
    output: &Location,
    mut rx: mpsc::Receiver<Result<Prepared>>,
    progress: Option<ProgressFn>,
) -> Result<Written> {
    let logs = output.join("logs");
    let mut labels =
        DatasetWriter::new(output.join("labels"), labels_schema(), WriteMode::Overwrite);
    let mut events = (config.format == OutputFormat::Parquet).then(|| {
        DatasetWriter::new(output.join("events"), events_schema(), WriteMode::Overwrite)
            .with_options(events_options())
    });
    let mut pending: BTreeMap<u32, Vec<Label>> = BTreeMap::new();
    let mut counts = Counts::default();
    let mut stats = StatsAccumulator::default();
    let mut names = BTreeSet::new();
    let (mut files, mut bytes, mut rows_open, mut received) = (0u64, 0u64, 0u64, 0u64);
    let storage = |e| Error::storage(output, e);
    while let Some(prepared) = rx.recv().await {
        let Prepared { block, events: batches } = prepared?;
        received += 1;
        if let Some(log) = block.log {
            let name = log_name(block.index, config.gzip);
            bytes += log.len() as u64;
            let log = bytes::Bytes::from(log);
            put_object(&logs.join(&name), log.clone()).await?;
            // The store holds no reference once the object is written.
            if let Ok(buffer) = log.try_into_mut() {
                world.recycle(buffer.into());
            }
            names.insert(name);
            files += 1;
        }
        if let Some(writer) = events.as_mut() {
            for (day, batch) in &batches {
                writer
                    .write(world.window.partition(*day).as_str(), batch)
                    .await
                    .map_err(storage)?;
                rows_open += batch.num_rows() as u64;
            }
            if rows_open >= EVENT_ROWS_PER_CLOSE {
                writer.close_files().await.map_err(storage)?;
                rows_open = 0;
            }
        }
        for label in block.labels {
            let day = world.window.day_of(label.t);
            let rows = pending.entry(day).or_default();
            rows.push(label);
            if rows.len() >= LABEL_ROWS_PER_WRITE {
                let batch = labels_batch(rows)?;
                rows.clear();
                labels
                    .write(world.window.partition(day).as_str(), &batch)
                    .await
                    .map_err(storage)?;
            }
        }
        let s = &block.stats;
        counts.lines += s.lines;
        counts.login_lines += s.login_lines;
        counts.other_lines += s.other_lines;
        for (total, n) in counts.attacks.iter_mut().zip(s.attacks) {
            *total += n;
        }
        stats.add(s);
        if let Some(progress) = &progress {
            progress(block.users);
        }
    }
    for (day, rows) in &pending {
        if !rows.is_empty() {
            let batch = labels_batch(rows)?;
            labels.write(world.window.partition(*day).as_str(), &batch).await.map_err(storage)?;
        }
    }
    if received != world.blocks() {
        return Err(Error::Internal(format!(
            "the generator stopped after {received} of {} blocks",
            world.blocks()
        )));
    }
    labels.commit().await.map_err(storage)?;
    if let Some(writer) = events {
        writer.commit().await.map_err(storage)?;
    }
    if config.format == OutputFormat::Log {
        remove_stale_logs(&logs, &names).await?;
    }
    Ok((counts, stats, files, bytes))
}

/// Deletes `access-*.log[.gz]` files a previous, larger run left.
async fn remove_stale_logs(logs: &Location, keep: &BTreeSet<String>) -> Result<()> {
    let found = ipi_storage::list_all(logs).await.map_err(|e| Error::storage(logs, e))?;
    for meta in found {
        let Some(name) = meta.location.filename() else { continue };
        let ours = name.starts_with("access-")
            && (name.ends_with(".log") || name.ends_with(".log.gz"))
            && logs.join(name).path() == &meta.location;
        if ours && !keep.contains(name) {
            let stale = logs.with_path(meta.location.clone());
            ipi_storage::delete(&stale).await.map_err(|e| Error::storage(&stale, e))?;
        }
    }
    Ok(())
}

/// How events are encoded (as ingest does: zstd 1, no dictionary or
/// statistics where they do not pay).
fn events_options() -> WriterOptions {
    use ipi_core::schema::events::{
        BYTES, FORWARDED_FOR, IP, IPV4, LINE, METHOD, PATH, PROTOCOL, REFERER, SOURCE, USER_AGENT,
        VHOST,
    };
    let mut options = WriterOptions::default();
    options.parquet.zstd_level = 1;
    options.parquet.plain_columns = [IP, IPV4, BYTES].map(String::from).to_vec();
    options.parquet.delta_columns = [LINE].map(String::from).to_vec();
    options.parquet.no_statistics_columns =
        [METHOD, PATH, PROTOCOL, REFERER, USER_AGENT, VHOST, FORWARDED_FOR, SOURCE, LINE, BYTES]
            .map(String::from)
            .to_vec();
    options
}

/// Blocks handed on in order, with at most `limit` claimed ahead of the
/// next one to hand on.
struct Ordered<T> {
    state: Mutex<OrderedState<T>>,
    changed: Condvar,
}

struct OrderedState<T> {
    next_claim: u64,
    next_take: u64,
    total: u64,
    limit: u64,
    ready: HashMap<u64, T>,
    stopped: bool,
}

impl<T> Ordered<T> {
    fn new(total: u64, limit: u64) -> Ordered<T> {
        Ordered {
            state: Mutex::new(OrderedState {
                next_claim: 0,
                next_take: 0,
                total,
                limit: limit.max(1),
                ready: HashMap::new(),
                stopped: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, OrderedState<T>> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, OrderedState<T>>) -> MutexGuard<'a, OrderedState<T>> {
        self.changed.wait(guard).unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The next block to generate, or `None` when all are claimed or the
    /// run stopped.
    fn claim(&self) -> Option<u64> {
        let mut state = self.lock();
        loop {
            if state.stopped || state.next_claim >= state.total {
                return None;
            }
            if state.next_claim < state.next_take + state.limit {
                state.next_claim += 1;
                return Some(state.next_claim - 1);
            }
            state = self.wait(state);
        }
    }

    fn put(&self, index: u64, value: T) {
        self.lock().ready.insert(index, value);
        self.changed.notify_all();
    }

    /// Block `index`, once generated.
    fn take(&self, index: u64) -> Option<T> {
        let mut state = self.lock();
        loop {
            if let Some(value) = state.ready.remove(&index) {
                state.next_take = index + 1;
                drop(state);
                self.changed.notify_all();
                return Some(value);
            }
            if state.stopped {
                return None;
            }
            state = self.wait(state);
        }
    }

    fn stop(&self) {
        self.lock().stopped = true;
        self.changed.notify_all();
    }
}

fn prepare(world: &World, index: u64) -> Result<Prepared> {
    let mut block = world.block(index);
    let events = if world.format == OutputFormat::Parquet {
        let source = format!("synth:{}", log_name(index, false));
        let batches = events_batches(&world.window, &block.logins, &source)?;
        block.logins = Vec::new();
        batches
    } else {
        Vec::new()
    };
    Ok(Prepared { block, events })
}

/// Generates every block on `threads` workers and sends them in order.
fn produce(world: &World, threads: usize, tx: &mpsc::Sender<Result<Prepared>>) {
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("ipi-synth-{i}"))
        .build()
    {
        Ok(pool) => pool,
        Err(e) => {
            let _ = tx.blocking_send(Err(internal(e)));
            return;
        }
    };
    let total = world.blocks();
    let queue: Ordered<Result<Prepared>> = Ordered::new(total, threads as u64 + 1);
    pool.in_place_scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|_| {
                while let Some(index) = queue.claim() {
                    let made = std::panic::catch_unwind(AssertUnwindSafe(|| prepare(world, index)))
                        .unwrap_or_else(|panic| {
                            let what = panic
                                .downcast_ref::<&str>()
                                .map(|s| (*s).to_owned())
                                .or_else(|| panic.downcast_ref::<String>().cloned())
                                .unwrap_or_default();
                            Err(Error::Internal(format!("block {index} panicked: {what}")))
                        });
                    queue.put(index, made);
                }
            });
        }
        for index in 0..total {
            let Some(prepared) = queue.take(index) else { break };
            let failed = prepared.is_err();
            if tx.blocking_send(prepared).is_err() || failed {
                break;
            }
        }
        queue.stop();
    });
}
