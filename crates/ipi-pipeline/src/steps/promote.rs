//! The `promote` step kind: point a models folder's `latest.json` at a
//! model that passed the pipeline's checks.

use futures::future::BoxFuture;
use ipi_config::{BodyError, ParamType};
use serde::Deserialize;

use super::{StepContext, StepIo, StepKind, StepReport, check_config};

/// `uses = "promote"`.
#[derive(Debug)]
pub struct Promote;

/// A `promote` step's table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromoteConfig {
    /// The model folder to promote.
    model: String,
    /// The models folder whose `latest.json` is replaced.
    to: String,
    /// The `anomaly_score` threshold to flag at with this model (the
    /// evaluate step's `threshold`); scoring with the folder uses it.
    #[serde(default)]
    threshold: Option<f64>,
}

impl StepKind for Promote {
    fn kind(&self) -> &'static str {
        "promote"
    }

    fn about(&self) -> &'static str {
        "Point a models folder's latest.json at a model (after its checks passed); score and serve load the folder as that model."
    }

    fn outputs(&self) -> Vec<(&'static str, ParamType)> {
        vec![("output", ParamType::Url), ("model", ParamType::Url)]
    }

    fn check(&self, body: &toml::Table) -> Vec<BodyError> {
        check_config::<PromoteConfig>(body, |_| Vec::new())
    }

    /// Reads the model; writes only the folder's `latest.json`.
    fn io(&self, body: &toml::Table) -> StepIo {
        let mut io = StepIo::guess(body);
        for (_, url) in &mut io.outputs {
            *url = format!("{}/{}", url.trim_end_matches('/'), ipi_model::registry::LATEST);
        }
        io
    }

    fn run<'a>(
        &'a self,
        _ctx: &'a StepContext,
        body: toml::Table,
    ) -> BoxFuture<'a, anyhow::Result<StepReport>> {
        Box::pin(async move {
            let config: PromoteConfig = body.try_into()?;
            let latest =
                ipi_model::registry::promote(&config.model, &config.to, config.threshold).await?;
            tracing::info!(model = %config.model, model_id = %latest.model_id, threshold = ?latest.threshold, to = %config.to, "Promoted.");
            let mut out = StepReport::default();
            let to = config.to.trim_end_matches('/').to_owned();
            out.outputs.insert("output".into(), toml::Value::String(to));
            out.outputs.insert("model".into(), toml::Value::String(config.model));
            out.metrics.insert("model_id".into(), latest.model_id.into());
            Ok(out)
        })
    }
}
