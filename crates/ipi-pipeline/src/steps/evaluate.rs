//! The `evaluate` step kind: detection quality per attack kind, the
//! threshold to flag at, plots and the HTML report; optionally a gate that
//! stops the pipeline before scoring.

use futures::future::BoxFuture;
use ipi_config::{BodyError, ParamType};
use ipi_eval::{EvaluateConfig, Evaluation};

use super::{StepContext, StepKind, StepReport, check_config};

/// `uses = "evaluate"`.
#[derive(Debug)]
pub struct Evaluate;

impl StepKind for Evaluate {
    fn kind(&self) -> &'static str {
        "evaluate"
    }

    fn about(&self) -> &'static str {
        "Measure a model per attack kind (AUC, ROC, precision/recall by threshold); choose a threshold; report.html + report.json; optional AUC gate."
    }

    fn outputs(&self) -> Vec<(&'static str, ParamType)> {
        vec![
            ("output", ParamType::Url),
            ("report", ParamType::Url),
            ("threshold", ParamType::Float),
            ("auc", ParamType::Float),
        ]
    }

    fn check(&self, body: &toml::Table) -> Vec<BodyError> {
        check_config(body, EvaluateConfig::problems)
    }

    fn run<'a>(
        &'a self,
        _ctx: &'a StepContext,
        body: toml::Table,
    ) -> BoxFuture<'a, anyhow::Result<StepReport>> {
        Box::pin(async move {
            let config: EvaluateConfig = body.try_into()?;
            let evaluation = run(&config).await?;
            let report = &evaluation.report;
            if let Some(failure) = report.gate_failure() {
                anyhow::bail!(
                    "{failure}; report at {}/report.html\n{}",
                    evaluation.output,
                    report.to_table()
                );
            }
            let mut out = StepReport::default();
            out.outputs.insert("output".into(), toml::Value::String(evaluation.output.clone()));
            out.outputs.insert(
                "report".into(),
                toml::Value::String(format!("{}/report.html", evaluation.output)),
            );
            out.outputs.insert("threshold".into(), toml::Value::Float(report.threshold.value));
            let notebook = report.case(ipi_eval::cases::NOTEBOOK);
            if let Some(auc) = notebook.and_then(|c| c.auc) {
                out.outputs.insert("auc".into(), toml::Value::Float(auc));
            }
            out.metrics.insert("threshold".into(), report.threshold.value.into());
            for case in &report.cases {
                let entry = serde_json::json!({
                    "attacks": case.attacks,
                    "auc": case.auc,
                    "precision": case.at_threshold.precision,
                    "recall": case.at_threshold.recall,
                    "fpr": case.at_threshold.fpr,
                });
                out.metrics.insert(format!("case:{}", case.name), entry);
            }
            Ok(out)
        })
    }
}

/// Evaluate and log where the report went.
pub async fn run(config: &EvaluateConfig) -> anyhow::Result<Evaluation> {
    let evaluation = ipi_eval::evaluate(config).await?;
    tracing::info!(
        report = %format!("{}/report.html", evaluation.output),
        threshold = evaluation.report.threshold.value,
        "Evaluation report written."
    );
    Ok(evaluation)
}
