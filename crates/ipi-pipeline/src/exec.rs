//! The executor: runs a validated pipeline's steps in dependency order, under
//! a run lock, reusing what earlier runs already did, and recording
//! everything in the run manifest.
//!
//! For each step, in order:
//!
//! 1. A step whose dependency failed is skipped; with `retry`, a step that
//!    succeeded in the run being resumed is not run again.
//! 2. Its body is resolved (params, `${steps.*}` from the steps before it,
//!    `${each.*}` for each `for_each` value) and its inputs are versioned
//!    ([`state::version_of`]).
//! 3. Cache: when an earlier run with the same kind, resolved config, input
//!    versions and code version succeeded within `cache.expire_after`, and
//!    the outputs it wrote are still exactly as it left them, its result is
//!    reused ([`Status::Cached`]). Keys named in `cache.ignore`, and the
//!    inputs they name, are left out of that comparison. `--force` and
//!    `--only` run steps anyway, and so does a step one of whose
//!    dependencies ran in this run (it may read more than it declares: a
//!    report reads the whole store), unless the step reads that dependency
//!    only through keys its cache ignores.
//! 4. Otherwise the step runs, up to `retry.attempts` times with
//!    exponential backoff, but only while it fails with a transient storage
//!    error ([`is_transient`]): never for invalid config, bad data or a
//!    failed quality gate. Its outputs are then versioned and a cache stamp
//!    is written.
//!
//! The manifest is rewritten at every change of a step's state, so a run
//! that fails, is interrupted (SIGINT, SIGTERM) or is killed leaves it
//! behind, and `ipi-pipeline retry RUN_ID` resumes from it with the same
//! params and file.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use indexmap::IndexMap;
use ipi_config::{ParamValue, Pipeline};
use ipi_storage::{Location, object_store};
use tracing::{Instrument as _, error, info, info_span, warn};

use crate::exit;
use crate::lock::{self, Lease};
use crate::state::{
    self, CacheRecord, Execution, Io, ItemRecord, RunManifest, Session, Stamp, State, Status,
    StepRecord,
};
use crate::steps::{Registry, StepContext, StepKind, StepReport};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `run` or `retry`, for the lock and the manifest.
    pub command: &'static str,
    /// Run every step, reusing nothing.
    pub force: bool,
    /// Run only these steps (always, as with `force`); the steps they need
    /// are reused from earlier runs.
    pub only: Vec<String>,
    /// How long the run lock lasts without renewal.
    pub lock_ttl: Duration,
}

/// The outcome of a run that started.
#[derive(Debug)]
pub struct RunOutcome {
    pub manifest: RunManifest,
    /// Where the manifest is.
    pub manifest_url: String,
    /// The first error, when the run failed.
    pub error: Option<anyhow::Error>,
}

/// A run id: the start instant, sortable, plus a random suffix.
pub fn new_run_id(started_at: chrono::DateTime<Utc>) -> String {
    // The low 32 bits of a UUIDv7 are random.
    let suffix = uuid::Uuid::now_v7().as_u128() as u32;
    format!("{}-{suffix:08x}", started_at.format("%Y%m%dT%H%M%SZ"))
}

/// What every step decision needs.
pub struct Ctx<'a> {
    pub pipeline: &'a Pipeline,
    pub registry: &'a Registry,
    pub state: State,
    pub code: String,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("pipeline", &self.pipeline.name)
            .field("state", &self.state)
            .finish()
    }
}

impl<'a> Ctx<'a> {
    /// The context of a pipeline: its store's run state and this code.
    pub async fn new(pipeline: &'a Pipeline, registry: &'a Registry) -> anyhow::Result<Ctx<'a>> {
        let state = State::new(&state::store_of(pipeline))?;
        let code = tokio::task::spawn_blocking(state::code_version).await?;
        Ok(Ctx { pipeline, registry, state, code })
    }

    fn kind(&self, step: &str) -> anyhow::Result<&'a dyn StepKind> {
        let uses = &self.pipeline.steps[step].uses;
        self.registry.get(uses).with_context(|| format!("unknown step kind `{uses}`"))
    }
}

/// Outputs reported by the steps so far, for `${steps.NAME.ATTR}`.
pub type Outputs = HashMap<String, IndexMap<String, toml::Value>>;

/// Whether a step may reuse an earlier result.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Reuse this stamp's result.
    Hit(Box<Stamp>),
    /// Run it, for this reason.
    Miss(String),
}

/// Everything known about one execution of a step before it runs.
#[derive(Debug)]
pub struct Decision {
    pub body: toml::Table,
    pub config: serde_json::Value,
    pub inputs: Vec<Io>,
    pub outputs: Vec<Io>,
    pub key: String,
    pub verdict: Verdict,
}

/// Resolve a step (for one `for_each` value), version its inputs, and
/// decide whether an earlier result can be reused. `forced` names why it
/// must run whatever the cache says.
pub async fn decide(
    ctx: &Ctx<'_>,
    name: &str,
    each: Option<&ParamValue>,
    outputs: &Outputs,
    forced: Option<&str>,
) -> anyhow::Result<Decision> {
    let step = &ctx.pipeline.steps[name];
    let kind = ctx.kind(name)?;
    let body = ctx
        .pipeline
        .resolve_with(name, outputs, each, &toml::Table::new())
        .map_err(|e| exit::config(e.to_string()))?;
    let io = kind.io(&body);
    let config = state::table_to_json(&body);
    let mut inputs = Vec::new();
    for (key, url) in io.inputs {
        let version = match state::version_of(&url).await {
            Ok(v) => Some(v),
            Err(error) => {
                warn!(step = %name, %url, %error, "Cannot tell the version of an input; the step will run.");
                None
            }
        };
        inputs.push(Io { key, url, version });
    }
    let outs: Vec<Io> =
        io.outputs.into_iter().map(|(key, url)| Io { key, url, version: None }).collect();
    // What decides reuse: the config and inputs less the keys `cache.ignore` names.
    let ignore = step.cache.as_ref().map(|c| c.ignore.as_slice()).unwrap_or_default();
    let mut key_config = config.clone();
    if let serde_json::Value::Object(keys) = &mut key_config {
        keys.retain(|k, _| !ignore.contains(k));
    }
    let key_inputs: Vec<Io> = inputs.iter().filter(|i| !ignore.contains(&i.key)).cloned().collect();
    let key = state::cache_key(&step.uses, &key_config, &key_inputs, &ctx.code);
    let item = each.map(ToString::to_string);
    let verdict = if let Some(why) = forced {
        Verdict::Miss(why.to_owned())
    } else if step.cache.as_ref().is_some_and(|c| !c.enabled) {
        Verdict::Miss("`cache = false`".to_owned())
    } else if key_inputs.iter().any(|i| i.version.is_none()) {
        Verdict::Miss("the version of an input could not be told".to_owned())
    } else {
        verdict(ctx, name, item.as_deref(), &key, &key_config, &key_inputs).await
    };
    Ok(Decision { body, config, inputs, outputs: outs, key, verdict })
}

async fn verdict(
    ctx: &Ctx<'_>,
    name: &str,
    item: Option<&str>,
    key: &str,
    config: &serde_json::Value,
    inputs: &[Io],
) -> Verdict {
    let pipeline = &ctx.pipeline.name;
    let found = match state::read_json::<Stamp>(&ctx.state.stamp(pipeline, name, key)).await {
        Ok(found) => found,
        Err(error) => return Verdict::Miss(format!("the cache could not be read: {error:#}")),
    };
    let Some(stamp) = found else {
        let latest = state::read_json::<Stamp>(&ctx.state.latest_stamp(pipeline, name, item)).await;
        return Verdict::Miss(why_changed(
            latest.ok().flatten().as_ref(),
            config,
            inputs,
            &ctx.code,
        ));
    };
    let policy = ctx.pipeline.steps[name].cache.clone().unwrap_or_default();
    if let Some(max) = policy.expire_after {
        let age = Utc::now().signed_duration_since(stamp.finished_at);
        if age.to_std().is_ok_and(|age| age > max) {
            return Verdict::Miss(format!(
                "run {}'s result is {} old, older than `expire_after = \"{}\"`",
                stamp.run_id,
                ipi_config::format_duration(age.to_std().unwrap_or_default()),
                ipi_config::format_duration(max)
            ));
        }
    }
    for out in &stamp.outputs {
        let now = state::version_of(&out.url).await.ok();
        if now != out.version {
            let what = if now.as_deref() == Some("absent") { "is gone" } else { "changed" };
            return Verdict::Miss(format!(
                "output `{}` ({}) {what} since run {} wrote it",
                out.key, out.url, stamp.run_id
            ));
        }
    }
    Verdict::Hit(Box::new(stamp))
}

/// Why no earlier result matches, compared with the step's newest one.
fn why_changed(
    latest: Option<&Stamp>,
    config: &serde_json::Value,
    inputs: &[Io],
    code: &str,
) -> String {
    let Some(latest) = latest else {
        return "no earlier run of this step here".to_owned();
    };
    let run = &latest.run_id;
    if latest.code_version != code {
        return format!("the code changed since run {run} ({} -> {code})", latest.code_version);
    }
    if &latest.config != config {
        let keys: Vec<String> = match (config, &latest.config) {
            (serde_json::Value::Object(now), serde_json::Value::Object(then)) => now
                .keys()
                .chain(then.keys())
                .filter(|k| now.get(*k) != then.get(*k))
                .map(|k| format!("`{k}`"))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            _ => Vec::new(),
        };
        return format!("its config changed since run {run} ({})", keys.join(", "));
    }
    for input in inputs {
        let then = latest.inputs.iter().find(|i| i.key == input.key && i.url == input.url);
        match then {
            Some(t) if t.version == input.version => {}
            Some(_) => {
                return format!("input `{}` ({}) changed since run {run}", input.key, input.url);
            }
            None => return format!("input `{}` is new since run {run}", input.key),
        }
    }
    format!("no earlier run matches (newest: run {run})")
}

/// Whether an error is worth another attempt: a storage request that failed
/// for a transient reason (connection, timeout, 5xx, 429) after the storage
/// client's own retries. Everything else (missing objects, permissions,
/// invalid config, bad data, failed gates, commit conflicts) is not.
pub fn is_transient(error: &anyhow::Error) -> bool {
    use object_store::Error as OsError;
    for cause in error.chain() {
        if let Some(e) = cause.downcast_ref::<ipi_storage::Error>() {
            return match e {
                ipi_storage::Error::ObjectStore { source, .. } => object_store_transient(source),
                _ => false,
            };
        }
        if let Some(e) = cause.downcast_ref::<OsError>() {
            return object_store_transient(e);
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return io_transient(io);
        }
    }
    false
}

fn object_store_transient(error: &object_store::Error) -> bool {
    use object_store::Error as OsError;
    use object_store::client::{HttpError, HttpErrorKind};
    let OsError::Generic { source, .. } = error else { return false };
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
    while let Some(e) = cause {
        if let Some(http) = e.downcast_ref::<HttpError>() {
            return matches!(
                http.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Request
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Interrupted
            );
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return io_transient(io);
        }
        // object_store's retry error is not nameable; its text carries the
        // status ("... non-2xx status code: 503 Service Unavailable ...").
        let text = e.to_string();
        if let Some(at) = text.find("status code: ") {
            let code: String = text.get(at + 13..).unwrap_or_default().chars().take(3).collect();
            return code.starts_with('5') || code == "429" || code == "408";
        }
        cause = e.source();
    }
    false
}

fn io_transient(io: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        io.kind(),
        K::TimedOut
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::ConnectionRefused
            | K::BrokenPipe
            | K::Interrupted
    )
}

/// Waits for SIGINT or SIGTERM; never returns if they cannot be watched.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(mut int), Ok(mut term)) => tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            _ => std::future::pending().await,
        }
    }
    #[cfg(not(unix))]
    {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl-C",
            Err(_) => std::future::pending().await,
        }
    }
}

/// Watch for SIGINT and SIGTERM for the rest of the run (a watcher per
/// step would miss a signal that comes between two steps).
fn watch_signals() -> tokio::sync::watch::Receiver<Option<&'static str>> {
    let (tx, rx) = tokio::sync::watch::channel(None);
    tokio::spawn(async move {
        let signal = shutdown_signal().await;
        let _ = tx.send(Some(signal));
        // Keep the sender, so receivers never see the channel close.
        std::future::pending::<()>().await;
    });
    rx
}

/// Resolves with the signal once one came.
async fn interruption(mut rx: tokio::sync::watch::Receiver<Option<&'static str>>) -> &'static str {
    loop {
        if let Some(signal) = *rx.borrow_and_update() {
            return signal;
        }
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Run (or, with `resume`, retry) a pipeline: take the lock, then every
/// step. `Err` when the run could not start (the lock is held, the store
/// cannot be written); otherwise the outcome, failed or not.
pub async fn run(
    pipeline: &Pipeline,
    registry: &Registry,
    clock: chrono::DateTime<Utc>,
    opts: &RunOptions,
    resume: Option<RunManifest>,
) -> anyhow::Result<RunOutcome> {
    let ctx = Ctx::new(pipeline, registry).await?;
    for name in &opts.only {
        if !pipeline.steps.contains_key(name) {
            return Err(exit::usage(format!(
                "--only {name}: no such step; steps: {}",
                pipeline.order.join(", ")
            )));
        }
    }
    let started_at = Utc::now();
    let mut manifest = match resume {
        Some(m) => m,
        None => new_manifest(&ctx, clock, started_at, opts),
    };
    let lease = Lease::new(
        &manifest.run_id,
        opts.command,
        &pipeline.name,
        &state::lock_key(pipeline),
        opts.lock_ttl,
    );
    let lock_dir = ctx.state.lock_dir(&pipeline.name, &state::lock_key(pipeline));
    let guard = match lock::acquire(&lock_dir, lease, opts.lock_ttl).await? {
        Ok(guard) => guard,
        Err(held) => return Err(exit::locked(held.to_string())),
    };
    if let Some((dead, why)) = guard.taken_over()
        && dead.run_id != manifest.run_id
    {
        abandon(&ctx.state, &dead.run_id, why, &manifest.run_id).await;
    }
    manifest.lock = Some(guard.url());
    manifest.status = Status::Running;
    manifest.finished_at = None;
    manifest.error = None;
    manifest.sessions.push(Session {
        command: opts.command.to_owned(),
        host: guard_host(),
        pid: std::process::id(),
        started_at,
        finished_at: None,
        status: Status::Running,
    });
    // Steps not done in an earlier attempt start again from scratch.
    for name in &pipeline.order {
        let uses = pipeline.steps[name].uses.clone();
        let record = manifest.steps.entry(name.clone()).or_insert_with(|| StepRecord {
            uses,
            exec: Execution::new(Status::Pending),
            items: Vec::new(),
        });
        if !record.exec.status.is_done() {
            record.exec = Execution::new(Status::Pending);
            record.items.clear();
        }
    }
    let manifest_at = ctx.state.manifest(&manifest.run_id);
    let mut runner = Runner {
        ctx: &ctx,
        opts,
        manifest,
        manifest_at,
        outputs: Outputs::new(),
        guard,
        signals: watch_signals(),
        resuming: opts.command == "retry",
    };
    if let Err(error) = runner.save().await {
        runner.guard.release().await;
        return Err(error.context("cannot write the run manifest"));
    }
    info!(run_id = %runner.manifest.run_id, pipeline = %pipeline.name, manifest = %runner.manifest_at, "Starting run.");
    let error = runner.run_steps().await;
    runner.finish(error).await
}

fn guard_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

fn new_manifest(
    ctx: &Ctx<'_>,
    clock: chrono::DateTime<Utc>,
    started_at: chrono::DateTime<Utc>,
    opts: &RunOptions,
) -> RunManifest {
    let p = ctx.pipeline;
    RunManifest {
        format: "ipi-run".to_owned(),
        version: 1,
        run_id: new_run_id(started_at),
        pipeline: p.name.clone(),
        file: p.file.clone(),
        status: Status::Pending,
        started_at,
        finished_at: None,
        clock,
        timezone: p.timezone.name().to_owned(),
        params: p.params.iter().map(|(k, v)| (k.clone(), v.to_string())).collect(),
        env: p.env.clone(),
        source: p.source.clone(),
        code_version: ctx.code.clone(),
        store: ctx.state.store.clone(),
        lock: None,
        force: opts.force,
        only: opts.only.clone(),
        sessions: Vec::new(),
        error: None,
        steps: IndexMap::new(),
    }
}

struct Runner<'c, 'a> {
    ctx: &'c Ctx<'a>,
    opts: &'c RunOptions,
    manifest: RunManifest,
    manifest_at: Location,
    outputs: Outputs,
    guard: lock::Guard,
    /// The signal that stopped the run, once one came.
    signals: tokio::sync::watch::Receiver<Option<&'static str>>,
    /// Reuse the steps an earlier attempt of this run finished.
    resuming: bool,
}

impl Runner<'_, '_> {
    fn interrupted(&self) -> Option<&'static str> {
        *self.signals.borrow()
    }

    async fn save(&self) -> anyhow::Result<()> {
        state::write_json(&self.manifest_at, &self.manifest).await
    }

    /// Save, logging (not failing) when the store refuses: the step's own
    /// outcome matters more than its record.
    async fn save_quietly(&self) {
        if let Err(error) = self.save().await {
            warn!(url = %self.manifest_at, error = %format!("{error:#}"), "Failed to write the run manifest.");
        }
    }

    fn record(&mut self, name: &str) -> &mut StepRecord {
        let uses = self.ctx.pipeline.steps[name].uses.clone();
        self.manifest.steps.entry(name.to_owned()).or_insert_with(|| StepRecord {
            uses,
            exec: Execution::new(Status::Pending),
            items: Vec::new(),
        })
    }

    /// The steps `--only` needs, transitively (not including them).
    fn needed_by_only(&self) -> HashSet<String> {
        let mut needed = HashSet::new();
        let mut stack: Vec<&str> = self.opts.only.iter().map(String::as_str).collect();
        while let Some(name) = stack.pop() {
            for dep in &self.ctx.pipeline.steps[name].needs {
                if needed.insert(dep.clone()) {
                    stack.push(dep);
                }
            }
        }
        needed
    }

    /// Every step, in order; the first error.
    async fn run_steps(&mut self) -> Option<anyhow::Error> {
        let pipeline = self.ctx.pipeline;
        let needed = self.needed_by_only();
        let mut first_error: Option<anyhow::Error> = None;
        for name in &pipeline.order {
            let step = &pipeline.steps[name];
            if let Some(signal) = self.interrupted() {
                self.skip(name, format!("the run was interrupted by {signal}"));
                continue;
            }
            if self.guard.is_lost() {
                let e = anyhow::anyhow!(
                    "lost the run lock to another run; stopped before step `{name}`"
                );
                self.skip(name, e.to_string());
                first_error.get_or_insert(e);
                continue;
            }
            if self.resuming && self.record(name).exec.status.is_done() {
                let exposes = self.record(name).exec.exposes.clone();
                self.outputs.insert(name.clone(), exposes_to_toml(&exposes));
                info!(step = %name, "Done in an earlier attempt of this run; not run again.");
                continue;
            }
            let failed_dep = step
                .needs
                .iter()
                .find(|d| !self.manifest.steps.get(*d).is_some_and(|r| r.exec.status.is_done()));
            if let Some(dep) = failed_dep {
                warn!(step = %name, needs = %dep, "Skipping step: a step it needs did not succeed.");
                self.skip(name, format!("needs `{dep}`, which did not succeed"));
                self.save_quietly().await;
                continue;
            }
            let selected = self.opts.only.is_empty() || self.opts.only.contains(name);
            let result = if selected {
                let span = info_span!("step", step = %name, uses = %step.uses, run_id = %self.manifest.run_id);
                self.execute(name).instrument(span).await
            } else if needed.contains(name) {
                self.reuse_for_only(name).await
            } else {
                self.skip(name, "not selected by --only".to_owned());
                Ok(())
            };
            if let Err(e) = result {
                first_error.get_or_insert(e.context(format!("step `{name}` failed")));
            }
            self.save_quietly().await;
        }
        first_error
    }

    fn skip(&mut self, name: &str, why: String) {
        let record = self.record(name);
        record.exec = Execution::new(Status::Skipped);
        record.exec.error = Some(why);
    }

    /// A step `--only` does not select but needs: its result from the
    /// cache, or else its newest result, with a warning.
    async fn reuse_for_only(&mut self, name: &str) -> anyhow::Result<()> {
        let step = &self.ctx.pipeline.steps[name];
        if step.for_each.is_some() {
            anyhow::bail!("--only cannot reuse `{name}`, a for_each step; run it too");
        }
        let decision = decide(self.ctx, name, None, &self.outputs, None).await;
        let stamp = match decision {
            Ok(Decision { verdict: Verdict::Hit(stamp), .. }) => *stamp,
            other => {
                let why = match other {
                    Ok(Decision { verdict: Verdict::Miss(why), .. }) => why,
                    Err(e) => format!("{e:#}"),
                    Ok(_) => String::new(),
                };
                let latest = self.ctx.state.latest_stamp(&self.ctx.pipeline.name, name, None);
                match state::read_json::<Stamp>(&latest).await? {
                    Some(stamp) => {
                        warn!(step = %name, run_id = %stamp.run_id, %why, "Not selected by --only: reusing its newest result, which is stale.");
                        stamp
                    }
                    None => {
                        let e = anyhow::anyhow!(
                            "--only needs the outputs of `{name}`, which has never succeeded here; run it first"
                        );
                        let record = self.record(name);
                        record.exec = Execution::new(Status::Failed);
                        record.exec.error = Some(e.to_string());
                        return Err(e);
                    }
                }
            }
        };
        self.outputs.insert(name.to_owned(), exposes_to_toml(&stamp.exposes));
        let record = self.record(name);
        record.exec = cached_execution(&stamp, "not selected by --only; reused".to_owned());
        Ok(())
    }

    /// Run one step (each value of its `for_each` in turn).
    async fn execute(&mut self, name: &str) -> anyhow::Result<()> {
        let step = &self.ctx.pipeline.steps[name];
        let Some(each) = &step.for_each else {
            return self.execute_one(name, None).await;
        };
        let started = Utc::now();
        let clock = Instant::now();
        {
            let record = self.record(name);
            record.exec = Execution::new(Status::Running);
            record.exec.started_at = Some(started);
        }
        let mut result = Ok(());
        for (i, value) in each.values.iter().enumerate() {
            if self.interrupted().is_some() {
                break;
            }
            result = self.execute_one(name, Some((i, value))).await;
            if result.is_err() {
                break;
            }
        }
        let record = self.record(name);
        let items = &record.items;
        let status = if items.iter().any(|i| i.exec.status == Status::Failed) {
            Status::Failed
        } else if items.len() == each.values.len()
            && items.iter().all(|i| i.exec.status == Status::Cached)
        {
            Status::Cached
        } else if items.len() == each.values.len() {
            Status::Succeeded
        } else {
            Status::Failed
        };
        let sum = |f: fn(&Execution) -> Option<u64>| -> Option<u64> {
            items.iter().map(|i| f(&i.exec)).sum()
        };
        let rows = sum(|e| e.rows);
        let rejected = sum(|e| e.rejected);
        let attempts = items.iter().map(|i| i.exec.attempts).sum();
        let exposes = items.last().map(|i| i.exec.exposes.clone()).unwrap_or_default();
        let error = items.iter().find_map(|i| i.exec.error.clone());
        record.exec.status = status;
        record.exec.rows = rows;
        record.exec.rejected = rejected;
        record.exec.attempts = attempts;
        record.exec.exposes = exposes;
        record.exec.error = error;
        record.exec.finished_at = Some(Utc::now());
        record.exec.seconds = clock.elapsed().as_secs_f64();
        result
    }

    fn slot(&mut self, name: &str, item: Option<usize>) -> &mut Execution {
        let record = self.record(name);
        match item {
            None => &mut record.exec,
            Some(i) => {
                while record.items.len() <= i {
                    record.items.push(ItemRecord {
                        value: String::new(),
                        exec: Execution::new(Status::Pending),
                    });
                }
                &mut record.items[i].exec
            }
        }
    }

    /// One execution: decide, then reuse or run.
    async fn execute_one(
        &mut self,
        name: &str,
        each: Option<(usize, &ParamValue)>,
    ) -> anyhow::Result<()> {
        let item = each.map(|(i, _)| i);
        let value = each.map(|(_, v)| v);
        let started = Utc::now();
        let clock = Instant::now();
        if let (Some(i), Some(v)) = (item, value) {
            self.slot(name, Some(i));
            self.record(name).items[i].value = v.to_string();
        }
        {
            let slot = self.slot(name, item);
            *slot = Execution::new(Status::Running);
            slot.started_at = Some(started);
        }
        // A step a dependency of which ran again is run again too, even if
        // its declared inputs look the same: it may read more than it
        // declares (a report reads the whole store).
        let step = &self.ctx.pipeline.steps[name];
        let ran = step.needs.iter().find(|d| {
            self.manifest.steps.get(*d).is_some_and(|r| r.exec.status == Status::Succeeded)
                && reads_beyond_ignored(step, d)
        });
        let forced = if self.opts.force {
            Some("--force".to_owned())
        } else if !self.opts.only.is_empty() {
            Some("selected by --only".to_owned())
        } else {
            ran.map(|d| format!("`{d}`, which it needs, ran in this run"))
        };
        let decision = match decide(self.ctx, name, value, &self.outputs, forced.as_deref()).await {
            Ok(d) => d,
            Err(e) => {
                let slot = self.slot(name, item);
                slot.status = Status::Failed;
                slot.error = Some(format!("{e:#}"));
                slot.finished_at = Some(Utc::now());
                error!(step = %name, error = %format!("{e:#}"), "Step failed.");
                return Err(e);
            }
        };
        let Decision { body, config, inputs, outputs, key, verdict } = decision;
        match verdict {
            Verdict::Hit(stamp) => {
                let reason = format!(
                    "same config, inputs and code as run {} ({})",
                    stamp.run_id,
                    stamp.finished_at.format("%Y-%m-%dT%H:%M:%SZ")
                );
                info!(step = %name, each = %value.map(ToString::to_string).unwrap_or_default(), from_run = %stamp.run_id, "Cache hit; not run.");
                self.outputs.insert(name.to_owned(), exposes_to_toml(&stamp.exposes));
                let slot = self.slot(name, item);
                *slot = cached_execution(&stamp, reason);
                slot.started_at = Some(started);
                slot.finished_at = Some(Utc::now());
                return Ok(());
            }
            Verdict::Miss(reason) => {
                info!(step = %name, each = %value.map(ToString::to_string).unwrap_or_default(), %reason, "Running step.");
                let slot = self.slot(name, item);
                slot.config = config.clone();
                slot.inputs = inputs.clone();
                slot.outputs = outputs.clone();
                slot.cache =
                    Some(CacheRecord { key: key.clone(), hit: false, reason, run_id: None });
            }
        }
        self.save_quietly().await;

        let (result, attempts) = self.run_with_retries(name, item, body).await;
        let seconds = clock.elapsed().as_secs_f64();
        let report = match result {
            Ok(report) => report,
            Err(e) => {
                error!(step = %name, seconds, attempts, error = %format!("{e:#}"), "Step failed.");
                let slot = self.slot(name, item);
                slot.status = Status::Failed;
                slot.attempts = attempts;
                slot.seconds = seconds;
                slot.finished_at = Some(Utc::now());
                slot.error = Some(format!("{e:#}"));
                return Err(e);
            }
        };
        let mut written = outputs;
        for out in &mut written {
            out.version = state::version_of(&out.url).await.ok();
        }
        let exposes: serde_json::Map<String, serde_json::Value> =
            report.outputs.iter().map(|(k, v)| (k.clone(), state::toml_to_json(v))).collect();
        let count = |k: &str| report.metrics.get(k).and_then(serde_json::Value::as_u64);
        let (rows, rejected) = (count("rows"), count("rejected"));
        let finished_at = Utc::now();
        info!(step = %name, seconds, metrics = %serde_json::to_string(&report.metrics).unwrap_or_default(), "Step succeeded.");
        let stamp = Stamp {
            format: "ipi-cache".to_owned(),
            version: 1,
            key: key.clone(),
            pipeline: self.ctx.pipeline.name.clone(),
            step: name.to_owned(),
            item: value.map(ToString::to_string),
            uses: self.ctx.pipeline.steps[name].uses.clone(),
            run_id: self.manifest.run_id.clone(),
            finished_at,
            code_version: self.ctx.code.clone(),
            config,
            inputs,
            outputs: written.clone(),
            exposes: exposes.clone(),
            rows,
            rejected,
            metrics: report.metrics.clone(),
        };
        self.write_stamp(&stamp).await;
        self.outputs.insert(name.to_owned(), report.outputs);
        let slot = self.slot(name, item);
        slot.status = Status::Succeeded;
        slot.attempts = attempts;
        slot.seconds = seconds;
        slot.finished_at = Some(finished_at);
        slot.outputs = written;
        slot.exposes = exposes;
        slot.rows = rows;
        slot.rejected = rejected;
        slot.metrics = report.metrics;
        Ok(())
    }

    async fn write_stamp(&self, stamp: &Stamp) {
        let pipeline = &self.ctx.pipeline.name;
        let at = self.ctx.state.stamp(pipeline, &stamp.step, &stamp.key);
        let latest = self.ctx.state.latest_stamp(pipeline, &stamp.step, stamp.item.as_deref());
        for location in [at, latest] {
            if let Err(error) = state::write_json(&location, stamp).await {
                warn!(url = %location, error = %format!("{error:#}"), "Failed to write a cache stamp; the step will run again next time.");
            }
        }
    }

    /// Run the step, again after a transient storage error, with backoff;
    /// stop at SIGINT or SIGTERM. The result and the attempts made.
    async fn run_with_retries(
        &mut self,
        name: &str,
        item: Option<usize>,
        body: toml::Table,
    ) -> (anyhow::Result<StepReport>, u32) {
        let policy = self.ctx.pipeline.steps[name].retry.clone().unwrap_or_default();
        let kind = match self.ctx.kind(name) {
            Ok(kind) => kind,
            Err(e) => return (Err(e), 0),
        };
        let ctx = StepContext { run_id: self.manifest.run_id.clone(), step: name.to_owned() };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = tokio::select! {
                r = kind.run(&ctx, body.clone()) => r,
                signal = interruption(self.signals.clone()) => {
                    warn!(step = %name, signal, "Interrupted; stopping the run.");
                    return (Err(anyhow::anyhow!("interrupted by {signal}")), attempt);
                }
            };
            match result {
                Ok(report) => return (Ok(report), attempt),
                Err(e) if attempt < policy.attempts && is_transient(&e) => {
                    let wait = policy
                        .backoff
                        .saturating_mul(1 << (attempt - 1).min(16))
                        .min(Duration::from_secs(300));
                    warn!(step = %ctx.step, run_id = %ctx.run_id, attempt, of = policy.attempts, wait = %ipi_config::format_duration(wait), error = %format!("{e:#}"), "Transient storage error; trying the step again.");
                    self.slot(name, item).attempts = attempt;
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        signal = interruption(self.signals.clone()) => {
                            return (Err(e.context(format!("interrupted by {signal}"))), attempt);
                        }
                    }
                }
                Err(e) => return (Err(e), attempt),
            }
        }
    }

    /// Record the end of the run, release the lock.
    async fn finish(mut self, error: Option<anyhow::Error>) -> anyhow::Result<RunOutcome> {
        let now = Utc::now();
        let status = if error.is_some() { Status::Failed } else { Status::Succeeded };
        self.manifest.status = status;
        self.manifest.finished_at = Some(now);
        self.manifest.error = error.as_ref().map(|e| format!("{e:#}"));
        if let Some(session) = self.manifest.sessions.last_mut() {
            session.finished_at = Some(now);
            session.status = status;
        }
        let saved = self.save().await;
        self.guard.release().await;
        let manifest_url = self.manifest_at.to_string();
        if let Err(e) = saved {
            warn!(url = %manifest_url, error = %format!("{e:#}"), "Failed to write the run manifest.");
        }
        Ok(RunOutcome { manifest: self.manifest, manifest_url, error })
    }
}

/// Whether `step` depends on `dep` other than through keys its cache
/// ignores: a key that refers to `dep`'s outputs and is not ignored, or no
/// such key at all (`dep` is only in `needs`).
fn reads_beyond_ignored(step: &ipi_config::Step, dep: &str) -> bool {
    let ignore = step.cache.as_ref().map(|c| c.ignore.as_slice()).unwrap_or_default();
    if ignore.is_empty() {
        return true;
    }
    let needle = format!("${{steps.{dep}.");
    let mut referred = false;
    for (key, value) in &step.body {
        if mentions(value, &needle) {
            if !ignore.contains(key) {
                return true;
            }
            referred = true;
        }
    }
    !referred
}

/// Whether any string in `value` contains `needle`.
fn mentions(value: &toml::Value, needle: &str) -> bool {
    match value {
        toml::Value::String(s) => s.contains(needle),
        toml::Value::Array(items) => items.iter().any(|v| mentions(v, needle)),
        toml::Value::Table(t) => t.values().any(|v| mentions(v, needle)),
        _ => false,
    }
}

fn cached_execution(stamp: &Stamp, reason: String) -> Execution {
    let mut exec = Execution::new(Status::Cached);
    exec.cache = Some(CacheRecord {
        key: stamp.key.clone(),
        hit: true,
        reason,
        run_id: Some(stamp.run_id.clone()),
    });
    exec.config = stamp.config.clone();
    exec.inputs = stamp.inputs.clone();
    exec.outputs = stamp.outputs.clone();
    exec.exposes = stamp.exposes.clone();
    exec.rows = stamp.rows;
    exec.rejected = stamp.rejected;
    exec.metrics = stamp.metrics.clone();
    exec
}

/// A step's recorded outputs, for `${steps.NAME.ATTR}`.
pub fn exposes_to_toml(
    exposes: &serde_json::Map<String, serde_json::Value>,
) -> IndexMap<String, toml::Value> {
    exposes.iter().filter_map(|(k, v)| Some((k.clone(), state::json_to_toml(v)?))).collect()
}

/// Marks the manifest of a run that died holding the lock (killed, or its
/// machine lost) as failed, so that it no longer claims to be running;
/// `ipi-pipeline retry` can still resume it. Logs, never fails: the run
/// taking over matters more than the dead one's record.
async fn abandon(state: &State, run_id: &str, why: &str, by: &str) {
    let at = state.manifest(run_id);
    let mut manifest = match state::read_json::<RunManifest>(&at).await {
        Ok(Some(m)) if m.status == Status::Running => m,
        Ok(_) => return,
        Err(error) => {
            warn!(url = %at, error = %format!("{error:#}"), "Cannot read the manifest of the run whose lock was taken over.");
            return;
        }
    };
    let now = Utc::now();
    let error = format!("abandoned: its lock was free ({why}) and run {by} took it over");
    manifest.status = Status::Failed;
    manifest.finished_at = Some(now);
    manifest.error = Some(error.clone());
    for session in manifest.sessions.iter_mut().filter(|s| s.status == Status::Running) {
        session.status = Status::Failed;
        session.finished_at = Some(now);
    }
    for record in manifest.steps.values_mut() {
        let execs =
            std::iter::once(&mut record.exec).chain(record.items.iter_mut().map(|i| &mut i.exec));
        for exec in execs.filter(|e| e.status == Status::Running) {
            exec.status = Status::Failed;
            exec.finished_at = Some(now);
            exec.error = Some(error.clone());
        }
    }
    match state::write_json(&at, &manifest).await {
        Ok(()) => {
            warn!(%run_id, %why, "Marked a run that died holding the lock as failed; `ipi-pipeline retry {run_id}` resumes it.")
        }
        Err(error) => {
            warn!(url = %at, error = %format!("{error:#}"), "Cannot mark the abandoned run's manifest as failed.")
        }
    }
}

/// Load a run's manifest from a store.
pub async fn load_manifest(store: &str, run_id: &str) -> anyhow::Result<(RunManifest, String)> {
    let state = State::new(store)?;
    let at = state.manifest(run_id);
    match state::read_json::<RunManifest>(&at).await? {
        Some(m) => Ok((m, at.to_string())),
        None => Err(exit::usage(format!(
            "no run {run_id} in {store}: {at} does not exist (give the run's store with --store)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use futures::future::BoxFuture;
    use ipi_config::{BodyError, ParamType};

    use super::*;

    const DEFAULT_LOCK_TTL: Duration = Duration::from_secs(30 * 60);

    /// A step that fails `fails` times with `error()`, then writes a marker
    /// object to its `output` and succeeds.
    struct Flaky {
        calls: Arc<AtomicU32>,
        fails: u32,
        error: fn() -> anyhow::Error,
    }

    impl StepKind for Flaky {
        fn kind(&self) -> &'static str {
            "flaky"
        }
        fn about(&self) -> &'static str {
            "test"
        }
        fn outputs(&self) -> Vec<(&'static str, ParamType)> {
            vec![("output", ParamType::Url)]
        }
        fn check(&self, _body: &toml::Table) -> Vec<BodyError> {
            Vec::new()
        }
        fn run<'a>(
            &'a self,
            _ctx: &'a StepContext,
            body: toml::Table,
        ) -> BoxFuture<'a, anyhow::Result<StepReport>> {
            Box::pin(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst);
                if n < self.fails {
                    return Err((self.error)());
                }
                let output = body["output"].as_str().unwrap_or_default().to_owned();
                let marker = Location::parse(&format!("{output}/marker"))?;
                ipi_storage::put_atomic(&marker, "x".into()).await?;
                let mut report = StepReport::default();
                report.outputs.insert("output".into(), toml::Value::String(output));
                report.metrics.insert("rows".into(), 3.into());
                Ok(report)
            })
        }
    }

    fn transient() -> anyhow::Error {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out");
        let source = object_store::Error::Generic { store: "S3", source: Box::new(io) };
        anyhow::Error::new(ipi_storage::Error::ObjectStore { url: "s3://b/k".into(), source })
            .context("reading events")
    }

    fn permanent() -> anyhow::Error {
        let source = object_store::Error::NotFound { path: "k".into(), source: "gone".into() };
        anyhow::Error::new(ipi_storage::Error::ObjectStore { url: "s3://b/k".into(), source })
    }

    fn gate() -> anyhow::Error {
        anyhow::anyhow!("validation AUC 0.61 is below the gate 0.9")
    }

    fn pipeline(store: &str, registry: &Registry, extra: &str) -> Pipeline {
        let source = format!(
            "version = 1\nname = \"t\"\n[params]\nstore = {{ type = \"url\", default = \"{store}\" }}\n\
             [steps.a]\nuses = \"flaky\"\noutput = \"${{params.store}}/a\"\nretry = {{ attempts = 3, backoff = \"0s\" }}\n{extra}"
        );
        let opts = ipi_config::LoadOptions::new(&[], Utc::now(), registry);
        ipi_config::load("t.toml", &source, &opts).unwrap()
    }

    fn opts() -> RunOptions {
        RunOptions { command: "run", force: false, only: Vec::new(), lock_ttl: DEFAULT_LOCK_TTL }
    }

    fn registry(fails: u32, error: fn() -> anyhow::Error) -> (Registry, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let kind = Flaky { calls: calls.clone(), fails, error };
        (Registry::with(vec![Box::new(kind)]), calls)
    }

    fn store() -> String {
        format!("memory://exec-tests/{}", uuid::Uuid::now_v7())
    }

    #[test]
    fn transient_errors_are_told_apart() {
        assert!(is_transient(&transient()));
        assert!(!is_transient(&permanent()));
        assert!(!is_transient(&gate()));
        assert!(!is_transient(&exit::config("`users`: invalid type")));
    }

    #[tokio::test]
    async fn transient_storage_errors_are_retried() {
        let (registry, calls) = registry(2, transient);
        let store = store();
        let p = pipeline(&store, &registry, "");
        let out = run(&p, &registry, Utc::now(), &opts(), None).await.unwrap();
        assert!(out.error.is_none(), "{:?}", out.error);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let a = &out.manifest.steps["a"].exec;
        assert_eq!((a.status, a.attempts, a.rows), (Status::Succeeded, 3, Some(3)));
        // The manifest in the store says the same.
        let (m, _) = load_manifest(&store, &out.manifest.run_id).await.unwrap();
        assert_eq!(m.steps["a"].exec.attempts, 3);
        assert_eq!(m.status, Status::Succeeded);
    }

    #[tokio::test]
    async fn other_errors_and_failed_gates_are_not() {
        for error in [permanent as fn() -> anyhow::Error, gate] {
            let (registry, calls) = registry(1, error);
            let p = pipeline(&store(), &registry, "");
            let out = run(&p, &registry, Utc::now(), &opts(), None).await.unwrap();
            assert!(out.error.is_some());
            assert_eq!(calls.load(Ordering::SeqCst), 1);
            let a = &out.manifest.steps["a"].exec;
            assert_eq!((a.status, a.attempts), (Status::Failed, 1));
            assert_eq!(out.manifest.status, Status::Failed);
        }
    }

    #[tokio::test]
    async fn a_second_run_reuses_and_force_reruns() {
        let (registry, calls) = registry(0, gate);
        let store = store();
        let extra = "[steps.b]\nuses = \"flaky\"\ninput = \"${steps.a.output}\"\noutput = \"${params.store}/b\"\n";
        let p = pipeline(&store, &registry, extra);
        let first = run(&p, &registry, Utc::now(), &opts(), None).await.unwrap();
        assert!(first.error.is_none());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let second = run(&p, &registry, Utc::now(), &opts(), None).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2, "nothing ran again");
        for step in ["a", "b"] {
            let exec = &second.manifest.steps[step].exec;
            assert_eq!(exec.status, Status::Cached, "{step}");
            let cache = exec.cache.clone().unwrap();
            assert_eq!(cache.run_id.as_deref(), Some(first.manifest.run_id.as_str()));
        }
        // An output changed behind the cache's back: that step runs again,
        // and the step after it too, since its input changed.
        let marker = Location::parse(&format!("{store}/a/marker")).unwrap();
        ipi_storage::put_atomic(&marker, "changed".into()).await.unwrap();
        let third = run(&p, &registry, Utc::now(), &opts(), None).await.unwrap();
        let a = &third.manifest.steps["a"].exec;
        assert_eq!(a.status, Status::Succeeded);
        assert!(a.cache.clone().unwrap().reason.contains("changed since run"), "{a:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        let forced = RunOptions { force: true, ..opts() };
        run(&p, &registry, Utc::now(), &forced, None).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 6);
        // --only b: a is reused, b runs.
        let only = RunOptions { only: vec!["b".into()], ..opts() };
        let out = run(&p, &registry, Utc::now(), &only, None).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 7);
        assert_eq!(out.manifest.steps["a"].exec.status, Status::Cached);
        assert_eq!(out.manifest.steps["b"].exec.status, Status::Succeeded);
    }

    #[tokio::test]
    async fn expire_after_and_cache_false() {
        let (registry, calls) = registry(0, gate);
        let store = store();
        let extra = "[steps.b]\nuses = \"flaky\"\noutput = \"${params.store}/b\"\ncache = { expire_after = \"0s\" }\n\
                     [steps.c]\nuses = \"flaky\"\noutput = \"${params.store}/c\"\ncache = false\n";
        let p = pipeline(&store, &registry, extra);
        run(&p, &registry, Utc::now(), &opts(), None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let out = run(&p, &registry, Utc::now(), &opts(), None).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 5);
        let steps = &out.manifest.steps;
        assert_eq!(steps["a"].exec.status, Status::Cached);
        assert!(steps["b"].exec.cache.clone().unwrap().reason.contains("expire_after"));
        assert_eq!(steps["c"].exec.cache.clone().unwrap().reason, "`cache = false`");
    }

    #[tokio::test]
    async fn ignored_keys_let_a_step_be_reused_across_days() {
        let (registry, calls) = registry(0, gate);
        let store = store();
        let source = format!(
            "version = 1\nname = \"t\"\n[params]\nstore = {{ type = \"url\", default = \"{store}\" }}\n\
             day = {{ type = \"string\", default = \"1\" }}\n\
             [steps.a]\nuses = \"flaky\"\noutput = \"${{params.store}}/a/${{params.day}}\"\n\
             [steps.b]\nuses = \"flaky\"\ninput = \"${{steps.a.output}}\"\n\
             output = \"${{params.store}}/b/${{params.day}}\"\n\
             cache = {{ expire_after = \"7d\", ignore = [\"input\", \"output\"] }}\n\
             [steps.c]\nuses = \"flaky\"\ninput = \"${{steps.b.output}}\"\n\
             output = \"${{params.store}}/c/${{params.day}}\"\n"
        );
        let load = |day: &str| {
            let overrides = [("day".to_owned(), day.to_owned())];
            let opts = ipi_config::LoadOptions::new(&overrides, Utc::now(), &registry);
            ipi_config::load("t.toml", &source, &opts).unwrap()
        };
        let first = run(&load("1"), &registry, Utc::now(), &opts(), None).await.unwrap();
        assert!(first.error.is_none(), "{:?}", first.error);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // The next day: `a` writes a new day and runs; `b` reads it only
        // through an ignored key, so day 1's result is reused, and `c` runs
        // on that result.
        let out = run(&load("2"), &registry, Utc::now(), &opts(), None).await.unwrap();
        assert!(out.error.is_none(), "{:?}", out.error);
        assert_eq!(calls.load(Ordering::SeqCst), 5);
        let steps = &out.manifest.steps;
        assert_eq!(steps["a"].exec.status, Status::Succeeded);
        assert_eq!(steps["b"].exec.status, Status::Cached);
        assert_eq!(steps["c"].exec.status, Status::Succeeded);
        assert_eq!(steps["c"].exec.config["input"], format!("{store}/b/1"));
        // Without `ignore`, the same day-2 run would have run `b` again.
        let plain = source.replace(", ignore = [\"input\", \"output\"]", "");
        let overrides = [("day".to_owned(), "2".to_owned())];
        let opts2 = ipi_config::LoadOptions::new(&overrides, Utc::now(), &registry);
        let p = ipi_config::load("t.toml", &plain, &opts2).unwrap();
        let out = run(&p, &registry, Utc::now(), &opts(), None).await.unwrap();
        assert_eq!(out.manifest.steps["b"].exec.status, Status::Succeeded);
    }

    #[tokio::test]
    async fn for_each_runs_once_per_value_and_caches_each() {
        let (registry, calls) = registry(0, gate);
        let store = store();
        let extra = "[steps.b]\nuses = \"flaky\"\nfor_each = { day = \"2018-11-10..2018-11-12\" }\n\
                     output = \"${params.store}/b/date=${each.day}\"\n";
        let p = pipeline(&store, &registry, extra);
        let out = run(&p, &registry, Utc::now(), &opts(), None).await.unwrap();
        assert!(out.error.is_none(), "{:?}", out.error);
        let b = &out.manifest.steps["b"];
        let values: Vec<&str> = b.items.iter().map(|i| i.value.as_str()).collect();
        assert_eq!(values, ["2018-11-10", "2018-11-11", "2018-11-12"]);
        assert_eq!((b.exec.status, b.exec.rows), (Status::Succeeded, Some(9)));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        let again = run(&p, &registry, Utc::now(), &opts(), None).await.unwrap();
        assert_eq!(again.manifest.steps["b"].exec.status, Status::Cached);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_run_that_died_holding_the_lock_is_marked_failed_by_the_next() {
        let (registry, _calls) = registry(0, gate);
        let store = store();
        let p = pipeline(&store, &registry, "");
        // A run that was killed in its step: its manifest says running, and
        // its lease was never released (here: already expired).
        let dead = run(&p, &registry, Utc::now(), &opts(), None).await.unwrap().manifest;
        let (mut m, at) = load_manifest(&store, &dead.run_id).await.unwrap();
        m.status = Status::Running;
        m.finished_at = None;
        m.sessions[0].status = Status::Running;
        m.steps["a"].exec.status = Status::Running;
        state::write_json(&Location::parse(&at).unwrap(), &m).await.unwrap();
        let ctx = Ctx::new(&p, &registry).await.unwrap();
        let dir = ctx.state.lock_dir(&p.name, &state::lock_key(&p));
        let lease = Lease::new(&dead.run_id, "run", "t", "all", Duration::ZERO);
        drop(lock::acquire(&dir, lease, Duration::ZERO).await.unwrap().unwrap());

        let next = run(&p, &registry, Utc::now(), &opts(), None).await.unwrap();
        assert!(next.error.is_none(), "{:?}", next.error);
        let (m, _) = load_manifest(&store, &dead.run_id).await.unwrap();
        assert_eq!(m.status, Status::Failed);
        let error = m.error.unwrap();
        assert!(error.contains("abandoned") && error.contains(&next.manifest.run_id), "{error}");
        assert_eq!(m.sessions[0].status, Status::Failed);
        assert_eq!(m.steps["a"].exec.status, Status::Failed);
        // A run that finished is left as it was.
        let (m, _) = load_manifest(&store, &next.manifest.run_id).await.unwrap();
        assert_eq!(m.status, Status::Succeeded);
    }

    #[tokio::test]
    async fn a_held_lock_refuses_the_run() {
        let (registry, calls) = registry(0, gate);
        let store = store();
        let p = pipeline(&store, &registry, "");
        let ctx = Ctx::new(&p, &registry).await.unwrap();
        let dir = ctx.state.lock_dir(&p.name, &state::lock_key(&p));
        let ttl = DEFAULT_LOCK_TTL;
        let held = lock::acquire(&dir, Lease::new("other", "run", "t", "all", ttl), ttl)
            .await
            .unwrap()
            .unwrap();
        let error = run(&p, &registry, Utc::now(), &opts(), None).await.unwrap_err();
        assert_eq!(exit::code_of(&error), exit::Exit::Locked);
        assert!(error.to_string().contains("run other"), "{error}");
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        held.release().await;
        assert!(run(&p, &registry, Utc::now(), &opts(), None).await.is_ok());
    }
}
