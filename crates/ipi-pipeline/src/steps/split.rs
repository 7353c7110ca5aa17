//! The `split` step kind: out-of-time train, validation and test sets.

use futures::future::BoxFuture;
use ipi_config::{BodyError, ParamType};
use ipi_split::SplitConfig;

use super::{StepContext, StepIo, StepKind, StepReport, check_config};

/// `uses = "split"`.
#[derive(Debug)]
pub struct Split;

impl StepKind for Split {
    fn kind(&self) -> &'static str {
        "split"
    }

    fn about(&self) -> &'static str {
        "Cut events into out-of-time train/validation/test sets on UTC instants (polars)."
    }

    fn outputs(&self) -> Vec<(&'static str, ParamType)> {
        vec![
            ("output", ParamType::Url),
            ("train", ParamType::Url),
            ("validation", ParamType::Url),
            ("test", ParamType::Url),
        ]
    }

    fn check(&self, body: &toml::Table) -> Vec<BodyError> {
        check_config(body, SplitConfig::problems)
    }

    /// `validation` and `test` are durations here, not locations.
    fn io(&self, body: &toml::Table) -> StepIo {
        let mut io = StepIo::guess(body);
        io.inputs.retain(|(key, _)| key == "input");
        io
    }

    fn run<'a>(
        &'a self,
        _ctx: &'a StepContext,
        body: toml::Table,
    ) -> BoxFuture<'a, anyhow::Result<StepReport>> {
        Box::pin(async move {
            let config: SplitConfig = body.try_into()?;
            let report = ipi_split::split(&config).await?;
            let mut out = StepReport::default();
            let output = config.output.trim_end_matches('/').to_owned();
            for name in ["train", "validation", "test"] {
                out.outputs.insert(name.into(), toml::Value::String(format!("{output}/{name}")));
            }
            out.outputs.insert("output".into(), toml::Value::String(output));
            out.metrics.insert("train_rows".into(), report.train.rows.into());
            out.metrics.insert("validation_rows".into(), report.validation.rows.into());
            out.metrics.insert("test_rows".into(), report.test.rows.into());
            Ok(out)
        })
    }
}
