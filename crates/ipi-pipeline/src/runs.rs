//! `run`, `retry` and `plan`: what they print around the executor.

use std::collections::HashSet;
use std::fmt::Write as _;

use chrono::Utc;
use futures::StreamExt as _;
use ipi_config::LoadOptions;

use crate::cli::{PlanArgs, RetryArgs, RunArgs, RunsArgs};
use crate::commands::{invalid, load};
use crate::exec::{self, Ctx, Decision, Outputs, RunOptions, RunOutcome, Verdict};
use crate::exit::{self, Exit};
use crate::state::{self, Status};
use crate::steps::Registry;

fn lock_ttl(text: &str) -> anyhow::Result<std::time::Duration> {
    let ttl =
        ipi_config::parse_duration(text).map_err(|e| exit::usage(format!("--lock-ttl: {e}")))?;
    if ttl < std::time::Duration::from_secs(10) {
        return Err(exit::usage(format!(
            "--lock-ttl {text}: at least 10s, or the lock would expire while the run lives"
        )));
    }
    Ok(ttl)
}

/// `ipi-pipeline run FILE`.
pub async fn run(registry: &Registry, args: &RunArgs) -> anyhow::Result<Exit> {
    let clock = Utc::now();
    let file = &args.pipeline.file;
    let pipeline =
        load(registry, file, &args.pipeline.params, clock).map_err(|d| invalid(file, &d))?;
    if pipeline.order.is_empty() {
        eprintln!("{}: no steps to run", file.display());
        return Ok(Exit::Ok);
    }
    let opts = RunOptions {
        command: "run",
        force: args.force,
        only: args.only.clone(),
        lock_ttl: lock_ttl(&args.lock_ttl)?,
    };
    let outcome = exec::run(&pipeline, registry, clock, &opts, None).await?;
    finish(outcome)
}

/// `ipi-pipeline retry RUN_ID`.
pub async fn retry(registry: &Registry, args: &RetryArgs) -> anyhow::Result<Exit> {
    let (manifest, url) = exec::load_manifest(&args.store, &args.run_id).await?;
    if manifest.status == Status::Succeeded {
        eprintln!(
            "run {} of `{}` already succeeded ({url}); nothing to retry",
            manifest.run_id, manifest.pipeline
        );
        return Ok(Exit::Ok);
    }
    // The file as it was run, with the params it was run with (dates
    // already resolved) and the environment values it read.
    let overrides: Vec<(String, String)> =
        manifest.params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let env = manifest.env.clone();
    let lookup = move |name: &str| env.get(name).cloned();
    let opts =
        LoadOptions { overrides: &overrides, now: manifest.clock, catalog: registry, env: &lookup };
    let pipeline = ipi_config::load(&manifest.file, &manifest.source, &opts).map_err(|d| {
        invalid(std::path::Path::new(&format!("{} (as recorded in {url})", manifest.file)), &d)
    })?;
    if state::store_of(&pipeline) != manifest.store {
        return Err(exit::usage(format!(
            "run {} keeps its state in {}, not {}",
            manifest.run_id,
            manifest.store,
            state::store_of(&pipeline)
        )));
    }
    eprintln!("retrying run {} of `{}` from {url}", manifest.run_id, manifest.pipeline);
    let run_opts = RunOptions {
        command: "retry",
        force: manifest.force,
        only: manifest.only.clone(),
        lock_ttl: lock_ttl(&args.lock_ttl)?,
    };
    let clock = manifest.clock;
    let outcome = exec::run(&pipeline, registry, clock, &run_opts, Some(manifest)).await?;
    finish(outcome)
}

/// Print the run's summary (stderr, with the logs); a failed run's error.
fn finish(outcome: RunOutcome) -> anyhow::Result<Exit> {
    let m = &outcome.manifest;
    let mut text = describe(m);
    let _ = writeln!(text, "manifest: {}", outcome.manifest_url);
    if let Some(error) = outcome.error {
        let _ = writeln!(
            text,
            "resume it with the same params; steps that succeeded are not run again:\n  \
             ipi-pipeline retry {} --store {}",
            m.run_id, m.store
        );
        eprint!("{text}");
        return Err(error);
    }
    eprint!("{text}");
    Ok(Exit::Ok)
}

/// The step of a run that failed, if one did.
fn failed_step(m: &state::RunManifest) -> Option<&str> {
    m.steps.iter().find(|(_, r)| r.exec.status == Status::Failed).map(|(n, _)| n.as_str())
}

/// How a run went, in a word or two.
fn verdict(m: &state::RunManifest) -> String {
    match (m.status, failed_step(m)) {
        (Status::Succeeded, _) => "succeeded".to_owned(),
        (Status::Running | Status::Pending, _) => "running".to_owned(),
        (_, Some(step)) => format!("FAILED at step `{step}`"),
        _ => "FAILED".to_owned(),
    }
}

/// A run's verdict and one line per step: status, seconds, rows, reuse.
fn describe(m: &state::RunManifest) -> String {
    let mut text = format!("run {} of `{}` {}\n", m.run_id, m.pipeline, verdict(m));
    for (name, record) in &m.steps {
        let e = &record.exec;
        let mut note = String::new();
        if let Some(cache) = &e.cache
            && cache.hit
        {
            let _ = write!(note, "reused run {}", cache.run_id.as_deref().unwrap_or("?"));
        }
        if let Some(rows) = e.rows {
            let _ = write!(note, "{}{rows} rows", if note.is_empty() { "" } else { ", " });
        }
        if let Some(rejected) = e.rejected {
            let _ = write!(note, ", {rejected} rejected");
        }
        let sep = |note: &String| if note.is_empty() { "" } else { ", " };
        if !record.items.is_empty() {
            let cached = record.items.iter().filter(|i| i.exec.status == Status::Cached).count();
            let _ = write!(note, "{}{} values, {cached} reused", sep(&note), record.items.len());
        } else if e.attempts > 1 {
            let _ = write!(note, "{}{} attempts", sep(&note), e.attempts);
        }
        if let Some(error) = &e.error
            && e.status == Status::Skipped
        {
            note = error.clone();
        }
        let _ = writeln!(text, "  {name:<16} {:<8} {:>8.1}s  {note}", e.status.as_str(), e.seconds);
    }
    text
}

/// One run in `ipi-pipeline runs`' list.
#[derive(Debug, serde::Serialize)]
struct RunSummary {
    run_id: String,
    pipeline: String,
    status: Status,
    started_at: chrono::DateTime<Utc>,
    finished_at: Option<chrono::DateTime<Utc>>,
    params: indexmap::IndexMap<String, String>,
    /// The step that failed, if one did.
    failed_step: Option<String>,
    error: Option<String>,
}

/// The start second a run's manifest path (`…/<run id>/manifest.json`)
/// names: its run id up to the `-` (`20261125T131836Z`).
fn run_second(path: &str) -> &str {
    let run_id = path.rsplit('/').nth(1).unwrap_or_default();
    run_id.split('-').next().unwrap_or_default()
}

/// Run manifests `runs` reads at once.
const MANIFESTS_AT_ONCE: usize = 8;

/// `ipi-pipeline runs [RUN_ID]`: the runs a store keeps, newest first; or
/// one run's steps.
pub async fn runs(args: &RunsArgs) -> anyhow::Result<Exit> {
    if let Some(run_id) = &args.run_id {
        let (manifest, url) = exec::load_manifest(&args.store, run_id).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&manifest)?);
        } else {
            print!("{}", describe(&manifest));
            println!("manifest: {url}");
            if let Some(error) = &manifest.error {
                println!("error: {error}");
            }
        }
        return Ok(Exit::Ok);
    }
    let root = ipi_storage::Location::parse(&args.store)?.join("runs");
    // Hidden names (`_cache`, `_locks`) are not runs.
    let mut found = match ipi_storage::list_glob(&root, "*/manifest.json").await {
        Ok(found) => found,
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    // Run ids begin with their start time, to the second: newest first,
    // manifests are read a few at a time (one GET each on S3) until `limit`
    // runs match, and the runs of the last one's second (which may have
    // started before or after it) are read too.
    found.sort_by(|a, b| b.location.cmp(&a.location));
    let mut manifests = futures::stream::iter(found)
        .map(|meta| {
            let second = run_second(meta.location.as_ref()).to_owned();
            let at = root.with_path(meta.location);
            async move {
                let read = state::read_json::<state::RunManifest>(&at).await;
                (second, at, read)
            }
        })
        .buffered(MANIFESTS_AT_ONCE);
    let mut summaries = Vec::new();
    let mut last_second = None;
    while let Some((second, at, read)) = manifests.next().await {
        if summaries.len() >= args.limit && last_second.as_ref() != Some(&second) {
            break;
        }
        // A manifest that cannot be read is named, not fatal: the list is
        // what someone looks at when things went wrong.
        let m = match read {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(manifest = %at, error = %e, "Skipping a manifest that cannot be read.");
                continue;
            }
        };
        if args.pipeline.as_ref().is_some_and(|p| *p != m.pipeline)
            || (args.failed && m.status != Status::Failed)
        {
            continue;
        }
        let failed_step = failed_step(&m).map(str::to_owned);
        last_second = Some(second);
        summaries.push(RunSummary {
            run_id: m.run_id,
            pipeline: m.pipeline,
            status: m.status,
            started_at: m.started_at,
            finished_at: m.finished_at,
            params: m.params,
            failed_step,
            error: m.error,
        });
    }
    summaries.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.run_id.cmp(&a.run_id)));
    summaries.truncate(args.limit);
    if args.json {
        for s in &summaries {
            println!("{}", serde_json::to_string(s)?);
        }
        return Ok(Exit::Ok);
    }
    if summaries.is_empty() {
        eprintln!("no runs in {root}");
        return Ok(Exit::Ok);
    }
    let mut rows = vec![(
        ["RUN", "PIPELINE", "STATUS", "STARTED (UTC)", "TOOK", "PARAMS"].map(String::from),
        None,
    )];
    for s in &summaries {
        let took = s
            .finished_at
            .map(|f| format!("{:.1}s", (f - s.started_at).num_milliseconds() as f64 / 1000.0))
            .unwrap_or_else(|| "-".to_owned());
        // The params a person tells runs apart by; the store is the same.
        let params: Vec<String> = s
            .params
            .iter()
            .filter(|(k, _)| k.as_str() != "store")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let status = match (&s.status, &s.failed_step) {
            (Status::Failed, Some(step)) => format!("FAILED ({step})"),
            (other, _) => other.as_str().to_owned(),
        };
        let cells = [
            s.run_id.clone(),
            s.pipeline.clone(),
            status,
            s.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            took,
            params.join(" "),
        ];
        let error = s.error.as_deref().map(|e| e.lines().next().unwrap_or_default().to_owned());
        rows.push((cells, error));
    }
    let mut widths = [0; 6];
    for (cells, _) in &rows {
        for (w, cell) in widths.iter_mut().zip(cells) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for (cells, error) in rows {
        let [run, pipeline, status, started, took, params] = cells;
        let [w0, w1, w2, w3, w4, _] = widths;
        println!(
            "{run:<w0$}  {pipeline:<w1$}  {status:<w2$}  {started:<w3$}  {took:>w4$}  {params}"
        );
        if let Some(error) = error {
            println!("    {error}");
        }
    }
    Ok(Exit::Ok)
}

/// One step of a plan.
#[derive(Debug, serde::Serialize)]
struct PlannedStep {
    step: String,
    uses: String,
    /// `cached`, `runs` or `skipped`.
    action: &'static str,
    reason: String,
    /// For `for_each` steps: each value and its own action.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    items: Vec<(String, &'static str, String)>,
    reads: Vec<String>,
    /// `(url, "write" | "replace")`.
    writes: Vec<(String, &'static str)>,
}

/// `ipi-pipeline plan FILE`: what `run` would do, writing nothing.
pub async fn plan(registry: &Registry, args: &PlanArgs) -> anyhow::Result<Exit> {
    let clock = Utc::now();
    let file = &args.pipeline.file;
    let pipeline =
        load(registry, file, &args.pipeline.params, clock).map_err(|d| invalid(file, &d))?;
    for name in &args.only {
        if !pipeline.steps.contains_key(name) {
            return Err(exit::usage(format!("--only {name}: no such step")));
        }
    }
    let ctx = Ctx::new(&pipeline, registry).await?;
    let mut outputs = Outputs::new();
    let mut runs: HashSet<String> = HashSet::new();
    let mut planned = Vec::new();
    let mut needed: HashSet<String> = HashSet::new();
    let mut stack: Vec<&str> = args.only.iter().map(String::as_str).collect();
    while let Some(n) = stack.pop() {
        for dep in &pipeline.steps[n].needs {
            if needed.insert(dep.clone()) {
                stack.push(dep);
            }
        }
    }
    for name in &pipeline.order {
        let step = &pipeline.steps[name];
        let kind = registry.get(&step.uses);
        let template_io = kind.map(|k| k.io(&step.body)).unwrap_or_default();
        let selected = args.only.is_empty() || args.only.contains(name);
        let mut p = PlannedStep {
            step: name.clone(),
            uses: step.uses.clone(),
            action: "runs",
            reason: String::new(),
            items: Vec::new(),
            reads: template_io.inputs.iter().map(|(_, u)| u.clone()).collect(),
            writes: Vec::new(),
        };
        let mut write_urls: Vec<String> =
            template_io.outputs.iter().map(|(_, u)| u.clone()).collect();
        if !selected && !needed.contains(name) {
            p.action = "skipped";
            p.reason = "not selected by --only".into();
            write_urls.clear();
        } else if let Some(dep) = step.needs.iter().find(|d| runs.contains(*d)) {
            p.reason = format!("after `{dep}`, which runs");
            runs.insert(name.clone());
        } else {
            let forced = if !selected {
                None
            } else if args.force {
                Some("--force")
            } else if !args.only.is_empty() {
                Some("selected by --only")
            } else {
                None
            };
            let values: Vec<Option<&ipi_config::ParamValue>> = match &step.for_each {
                Some(each) => each.values.iter().map(Some).collect(),
                None => vec![None],
            };
            let mut all_hit = true;
            let mut reads = Vec::new();
            let mut writes = Vec::new();
            let mut last_hit = None;
            let mut first_miss = None;
            for value in values {
                let label = value.map(ToString::to_string).unwrap_or_default();
                match exec::decide(&ctx, name, value, &outputs, forced).await {
                    Ok(Decision { verdict, inputs, outputs: outs, .. }) => {
                        for url in inputs.into_iter().map(|i| i.url) {
                            if !reads.contains(&url) {
                                reads.push(url);
                            }
                        }
                        for url in outs.into_iter().map(|o| o.url) {
                            if !writes.contains(&url) {
                                writes.push(url);
                            }
                        }
                        match verdict {
                            Verdict::Hit(stamp) => {
                                let why = format!(
                                    "same config, inputs and code as run {} ({})",
                                    stamp.run_id,
                                    stamp.finished_at.format("%Y-%m-%dT%H:%M:%SZ")
                                );
                                p.items.push((label, "cached", why.clone()));
                                last_hit = Some((stamp, why));
                            }
                            Verdict::Miss(why) => {
                                all_hit = false;
                                p.items.push((label, "runs", why.clone()));
                                first_miss.get_or_insert(why);
                            }
                        }
                    }
                    Err(e) => {
                        all_hit = false;
                        let why = format!("cannot resolve it yet: {e:#}");
                        p.items.push((label, "runs", why.clone()));
                        first_miss.get_or_insert(why);
                    }
                }
            }
            if !reads.is_empty() {
                p.reads = reads;
            }
            if !writes.is_empty() {
                write_urls = writes;
            }
            match (all_hit, last_hit) {
                (true, Some((stamp, why))) => {
                    p.action = "cached";
                    p.reason = why;
                    outputs.insert(name.clone(), exec::exposes_to_toml(&stamp.exposes));
                    write_urls.clear();
                }
                _ if !selected => {
                    p.action = "cached";
                    p.reason = "not selected by --only: its newest result would be reused".into();
                    write_urls.clear();
                }
                _ => {
                    p.reason = first_miss.unwrap_or_default();
                    runs.insert(name.clone());
                }
            }
            if step.for_each.is_none() {
                p.items.clear();
            }
        }
        for url in write_urls {
            let exists =
                !url.contains("${") && state::version_of(&url).await.is_ok_and(|v| v != "absent");
            p.writes.push((url, if exists { "replace" } else { "write" }));
        }
        planned.push(p);
    }

    if args.json {
        let doc = serde_json::json!({
            "pipeline": pipeline.name,
            "file": pipeline.file,
            "params": pipeline.params.iter().map(|(k, v)| (k.clone(), v.to_string())).collect::<indexmap::IndexMap<_, _>>(),
            "store": ctx.state.store,
            "manifests": ctx.state.root.join("<run_id>/manifest.json").to_string(),
            "lock": ctx.state.lock_dir(&pipeline.name, &state::lock_key(&pipeline)).to_string(),
            "code_version": ctx.code,
            "steps": planned,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(Exit::Ok);
    }
    let mut out = String::new();
    let _ = writeln!(out, "plan of `{}` ({}); nothing is written", pipeline.name, file.display());
    let _ = writeln!(out, "params:");
    let width = pipeline.params.keys().map(String::len).max().unwrap_or(0);
    for (name, value) in &pipeline.params {
        let _ = writeln!(out, "  {name:<width$} = {value}");
    }
    let _ = writeln!(out, "run state: {}", ctx.state.root);
    let _ =
        writeln!(out, "  lock {}", ctx.state.lock_dir(&pipeline.name, &state::lock_key(&pipeline)));
    let _ = writeln!(out, "steps, in order:");
    for (i, p) in planned.iter().enumerate() {
        let _ = writeln!(out, "{:>3}. {} ({}): {}: {}", i + 1, p.step, p.uses, p.action, p.reason);
        for (value, action, why) in &p.items {
            let _ = writeln!(out, "       {value}: {action}: {why}");
        }
        for url in &p.reads {
            let _ = writeln!(out, "       reads   {url}");
        }
        for (url, how) in &p.writes {
            let _ = writeln!(out, "       {how:<8}{url}");
        }
    }
    let count = |a: &str| planned.iter().filter(|p| p.action == a).count();
    let _ = writeln!(
        out,
        "{} steps: {} cached, {} to run, {} skipped",
        planned.len(),
        count("cached"),
        count("runs"),
        count("skipped")
    );
    print!("{out}");
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_path_names_its_start_second() {
        let path = "ipi/runs/20261125T131836Z-0affd421/manifest.json";
        assert_eq!(run_second(path), "20261125T131836Z");
        assert_eq!(run_second("manifest.json"), "");
    }
}
