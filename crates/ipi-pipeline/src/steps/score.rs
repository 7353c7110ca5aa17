//! The `score` step kind: the day's events scored with the trained model.

use futures::future::BoxFuture;
use ipi_config::{BodyError, ParamType};
use ipi_score::ScoreConfig;

use super::{StepContext, StepIo, StepKind, StepReport, check_config};

/// `uses = "score"`.
#[derive(Debug)]
pub struct Score;

impl StepKind for Score {
    fn kind(&self) -> &'static str {
        "score"
    }

    fn about(&self) -> &'static str {
        "Score events with a model into the scores dataset (by UTC day; bad rows to _rejects/)."
    }

    fn outputs(&self) -> Vec<(&'static str, ParamType)> {
        vec![("output", ParamType::Url), ("rows", ParamType::Int), ("flagged", ParamType::Int)]
    }

    fn check(&self, body: &toml::Table) -> Vec<BodyError> {
        check_config(body, ScoreConfig::problems)
    }

    /// A day of events (`.../date=YYYY-MM-DD`) is scored into that day's
    /// partition of the scores dataset, and only that partition is this
    /// step's output: scoring other days does not make it stale.
    fn io(&self, body: &toml::Table) -> StepIo {
        let mut io = StepIo::guess(body);
        let day = body
            .get("input")
            .and_then(toml::Value::as_str)
            .and_then(|i| i.trim_end_matches('/').rsplit('/').next())
            .filter(|last| last.starts_with("date=") && !ipi_storage::is_glob(last))
            .map(str::to_owned);
        if let Some(day) = day
            && body.get("accept").is_none()
        {
            for (key, url) in &mut io.outputs {
                if key == "output" {
                    *url = format!("{}/{day}", url.trim_end_matches('/'));
                }
            }
        }
        io
    }

    fn run<'a>(
        &'a self,
        _ctx: &'a StepContext,
        body: toml::Table,
    ) -> BoxFuture<'a, anyhow::Result<StepReport>> {
        Box::pin(async move {
            let config: ScoreConfig = body.try_into()?;
            let report = ipi_score::score(&config).await?;
            tracing::info!(
                rows = report.rows,
                rejected = report.rejected,
                unseen_entities = report.unseen_entities,
                flagged = report.flagged,
                output = %report.output,
                "Scored."
            );
            let mut out = StepReport::default();
            let output = config.output.trim_end_matches('/').to_owned();
            out.outputs.insert("output".into(), toml::Value::String(output));
            out.outputs.insert("rows".into(), toml::Value::Integer(report.rows as i64));
            out.outputs.insert("flagged".into(), toml::Value::Integer(report.flagged as i64));
            out.metrics.insert("rows".into(), report.rows.into());
            out.metrics.insert("rejected".into(), report.rejected.into());
            out.metrics.insert("unseen_entities".into(), report.unseen_entities.into());
            out.metrics.insert("flagged".into(), report.flagged.into());
            out.metrics.insert("pairs_per_sec".into(), report.pairs_per_sec.into());
            Ok(out)
        })
    }
}
