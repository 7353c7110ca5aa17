//! The `synth` step kind: seeded synthetic logins with labelled attacks.

use futures::future::BoxFuture;
use ipi_config::{BodyError, ParamType};
use ipi_synth::SynthConfig;

use super::{StepContext, StepIo, StepKind, StepReport, check_config};
use crate::logging;

/// The value of `logs` that asks for synthetic data.
pub const DEMO: &str = "builtin:demo";

/// `uses = "synth"`.
///
/// Besides [`SynthConfig`]'s keys the step takes an optional `logs`: when it
/// is anything but `builtin:demo`, real logs were given, nothing is
/// synthesised, and they pass through as this step's `logs` output. That is
/// how `pipelines/daily.toml` runs on a demo data set until it is given logs.
#[derive(Debug)]
pub struct Synth;

/// Split the step's own `logs` key from the synth config's keys.
fn split(body: &toml::Table) -> (Option<toml::Value>, toml::Table) {
    let mut config = body.clone();
    let logs = config.remove("logs");
    (logs, config)
}

impl StepKind for Synth {
    fn kind(&self) -> &'static str {
        "synth"
    }

    fn about(&self) -> &'static str {
        "Synthesise seeded login logs with labelled attacks (or pass given `logs` through)."
    }

    fn outputs(&self) -> Vec<(&'static str, ParamType)> {
        vec![
            ("output", ParamType::Url),
            ("logs", ParamType::Url),
            ("events", ParamType::Url),
            ("labels", ParamType::Url),
        ]
    }

    fn check(&self, body: &toml::Table) -> Vec<BodyError> {
        let (logs, config) = split(body);
        let mut errors = check_config(&config, SynthConfig::problems);
        if logs.as_ref().is_some_and(|v| !v.is_str()) {
            errors.push(BodyError {
                path: vec!["logs".into()],
                message: format!("expected a URL or `{DEMO}`"),
            });
        }
        errors
    }

    /// Given logs are read and passed on; the demo is written to `output`.
    fn io(&self, body: &toml::Table) -> StepIo {
        let (logs, config) = split(body);
        match logs.as_ref().and_then(toml::Value::as_str).filter(|l| *l != DEMO) {
            Some(given) => {
                StepIo { inputs: vec![("logs".into(), given.to_owned())], outputs: vec![] }
            }
            None => StepIo { inputs: vec![], outputs: StepIo::guess(&config).outputs },
        }
    }

    fn run<'a>(
        &'a self,
        _ctx: &'a StepContext,
        body: toml::Table,
    ) -> BoxFuture<'a, anyhow::Result<StepReport>> {
        Box::pin(async move {
            let (logs, config) = split(&body);
            let mut report = StepReport::default();
            if let Some(given) = logs.as_ref().and_then(toml::Value::as_str).filter(|l| *l != DEMO)
            {
                tracing::info!(logs = %given, "Logs given; nothing to synthesise.");
                report.outputs.insert("logs".into(), toml::Value::String(given.to_owned()));
                report.outputs.insert("output".into(), toml::Value::String(given.to_owned()));
                report.outputs.insert("events".into(), toml::Value::String(String::new()));
                report.outputs.insert("labels".into(), toml::Value::String(String::new()));
                return Ok(report);
            }
            let config: SynthConfig = config.try_into()?;
            let summary = run(&config).await?;
            let url = |u: &Option<String>| toml::Value::String(u.clone().unwrap_or_default());
            report.outputs.insert("output".into(), toml::Value::String(summary.output.clone()));
            // `logs` for log output, `events` for Parquet output; the other is "".
            report.outputs.insert("logs".into(), url(&summary.logs));
            report.outputs.insert("events".into(), url(&summary.events));
            report.outputs.insert("labels".into(), toml::Value::String(summary.labels.clone()));
            report.metrics.insert("lines".into(), summary.lines.into());
            report.metrics.insert("attack_lines".into(), summary.attack_lines.into());
            Ok(report)
        })
    }
}

/// Run a synth with a progress bar over the users.
pub async fn run(config: &SynthConfig) -> anyhow::Result<ipi_synth::SynthSummary> {
    let bar = logging::bar(config.users, "synth");
    let summary = ipi_synth::synth(config, Some(logging::progress_fn(&bar))).await;
    bar.finish_and_clear();
    Ok(summary?)
}
