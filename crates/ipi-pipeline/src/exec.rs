//! The executor: runs a validated pipeline's steps in dependency order.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Context as _;
use indexmap::IndexMap;
use ipi_config::Pipeline;
use tracing::{Instrument as _, error, info, info_span, warn};

use crate::steps::{Registry, StepContext};

/// How each step of a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Succeeded,
    Failed,
    /// Not run, because a step it depends on failed.
    Skipped,
}

/// The outcome of a run.
#[derive(Debug)]
pub struct RunOutcome {
    pub run_id: String,
    pub steps: Vec<(String, StepStatus, f64)>,
    pub error: Option<anyhow::Error>,
}

/// A run id: the start instant, sortable, plus a random suffix.
pub fn new_run_id(started_at: chrono::DateTime<chrono::Utc>) -> String {
    // The low 32 bits of a UUIDv7 are random.
    let suffix = uuid::Uuid::now_v7().as_u128() as u32;
    format!("{}-{suffix:08x}", started_at.format("%Y%m%dT%H%M%SZ"))
}

/// Run every step of `pipeline` in order. A failed step stops the steps
/// that depend on it; independent steps still run, so one bad day of logs
/// does not hide every other problem. The first error is returned in the
/// outcome.
pub async fn run(
    pipeline: &Pipeline,
    registry: &Registry,
    started_at: chrono::DateTime<chrono::Utc>,
) -> RunOutcome {
    let run_id = new_run_id(started_at);
    info!(run_id = %run_id, pipeline = %pipeline.name, steps = pipeline.order.len(), "Starting run.");
    let mut outputs: HashMap<String, IndexMap<String, toml::Value>> = HashMap::new();
    let mut status: HashMap<&str, StepStatus> = HashMap::new();
    let mut steps = Vec::new();
    let mut first_error = None;

    for name in &pipeline.order {
        let step = &pipeline.steps[name];
        let blocked =
            step.needs.iter().find(|dep| status.get(dep.as_str()) != Some(&StepStatus::Succeeded));
        if let Some(dep) = blocked {
            warn!(step = %name, needs = %dep, "Skipping step: a step it needs did not succeed.");
            status.insert(name, StepStatus::Skipped);
            steps.push((name.clone(), StepStatus::Skipped, 0.0));
            continue;
        }
        let ctx = StepContext { run_id: run_id.clone(), step: name.clone() };
        let clock = Instant::now();
        let result = run_step(pipeline, registry, &ctx, &outputs)
            .instrument(info_span!("step", step = %name, uses = %step.uses, run_id = %ctx.run_id))
            .await;
        let seconds = clock.elapsed().as_secs_f64();
        match result {
            Ok(report) => {
                let metrics = serde_json::to_string(&report.metrics).unwrap_or_default();
                info!(step = %name, seconds, %metrics, "Step succeeded.");
                outputs.insert(name.clone(), report.outputs);
                status.insert(name, StepStatus::Succeeded);
                steps.push((name.clone(), StepStatus::Succeeded, seconds));
            }
            Err(err) => {
                error!(step = %name, seconds, error = %format!("{err:#}"), "Step failed.");
                status.insert(name, StepStatus::Failed);
                steps.push((name.clone(), StepStatus::Failed, seconds));
                first_error.get_or_insert(err.context(format!("step `{name}` failed")));
            }
        }
    }
    RunOutcome { run_id, steps, error: first_error }
}

async fn run_step(
    pipeline: &Pipeline,
    registry: &Registry,
    ctx: &StepContext,
    outputs: &HashMap<String, IndexMap<String, toml::Value>>,
) -> anyhow::Result<crate::steps::StepReport> {
    let step = &pipeline.steps[&ctx.step];
    let kind =
        registry.get(&step.uses).with_context(|| format!("unknown step kind `{}`", step.uses))?;
    let body = pipeline
        .resolve_body(&ctx.step, outputs)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("resolving references")?;
    kind.run(ctx, body).await
}
