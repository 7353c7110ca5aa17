//! The `ingest` step kind: access logs into the events dataset.

use futures::future::BoxFuture;
use ipi_config::{BodyError, ParamType};
use ipi_ingest::IngestConfig;

use super::{StepContext, StepKind, StepReport, check_config};
use crate::logging;

/// `uses = "ingest"`.
#[derive(Debug)]
pub struct Ingest;

impl StepKind for Ingest {
    fn kind(&self) -> &'static str {
        "ingest"
    }

    fn about(&self) -> &'static str {
        "Parse Apache/Nginx access logs (plain or gzip, local or s3://) into the events dataset."
    }

    fn outputs(&self) -> Vec<(&'static str, ParamType)> {
        vec![("output", ParamType::Url), ("rows", ParamType::Int)]
    }

    fn check(&self, body: &toml::Table) -> Vec<BodyError> {
        check_config(body, IngestConfig::problems)
    }

    fn run<'a>(
        &'a self,
        _ctx: &'a StepContext,
        body: toml::Table,
    ) -> BoxFuture<'a, anyhow::Result<StepReport>> {
        Box::pin(async move {
            let config: IngestConfig = body.try_into()?;
            let summary = run(&config).await?;
            let mut report = StepReport::default();
            report.outputs.insert("output".into(), toml::Value::String(summary.output.clone()));
            report.outputs.insert("rows".into(), toml::Value::Integer(summary.totals.rows as i64));
            report.metrics.insert("lines".into(), summary.totals.lines.into());
            report.metrics.insert("rows".into(), summary.totals.rows.into());
            report.metrics.insert("filtered".into(), summary.totals.filtered.into());
            report.metrics.insert("rejected".into(), summary.totals.rejected.into());
            Ok(report)
        })
    }
}

/// Run an ingest with a progress bar over the input bytes.
pub async fn run(config: &IngestConfig) -> anyhow::Result<ipi_ingest::IngestSummary> {
    let total: u64 = ipi_ingest::run::plan(config).await?.iter().map(|(_, size)| size).sum();
    let bar = logging::bar(total, "ingest");
    bar.set_style(logging::bytes_style());
    let summary = ipi_ingest::ingest(config, Some(logging::progress_fn(&bar))).await;
    bar.finish_and_clear();
    Ok(summary?)
}
