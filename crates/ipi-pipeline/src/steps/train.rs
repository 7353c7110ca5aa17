//! The `train` step kind: the IP Insights model from the split's train set.

use futures::future::BoxFuture;
use indicatif::ProgressBar;
use ipi_config::{BodyError, ParamType};
use ipi_model::TrainConfig;
use ipi_model::train::{BatchMetrics, EpochMetrics, Observer};

use super::{StepContext, StepIo, StepKind, StepReport, check_config};
use crate::logging;

/// `uses = "train"`.
#[derive(Debug)]
pub struct Train;

impl StepKind for Train {
    fn kind(&self) -> &'static str {
        "train"
    }

    fn about(&self) -> &'static str {
        "Train the IP Insights model (candle) with SageMaker's hyperparameters; writes model.safetensors + model.json."
    }

    fn outputs(&self) -> Vec<(&'static str, ParamType)> {
        vec![
            ("output", ParamType::Url),
            ("model_id", ParamType::String),
            ("validation_auc", ParamType::Float),
        ]
    }

    fn check(&self, body: &toml::Table) -> Vec<BodyError> {
        check_config(body, TrainConfig::problems)
    }

    /// `model` is what train writes.
    fn io(&self, body: &toml::Table) -> StepIo {
        let mut io = StepIo::guess(body);
        let (outputs, inputs) = io.inputs.into_iter().partition(|(key, _)| key == "model");
        io.inputs = inputs;
        io.outputs.extend::<Vec<_>>(outputs);
        io
    }

    fn run<'a>(
        &'a self,
        _ctx: &'a StepContext,
        body: toml::Table,
    ) -> BoxFuture<'a, anyhow::Result<StepReport>> {
        Box::pin(async move {
            let config: TrainConfig = body.try_into()?;
            let card = run(&config).await?;
            let mut report = StepReport::default();
            let model = config.model.trim_end_matches('/').to_owned();
            report.outputs.insert("output".into(), toml::Value::String(model));
            report.outputs.insert("model_id".into(), toml::Value::String(card.model_id.clone()));
            let last = card.training.epochs.last();
            if let Some(auc) = last.and_then(|e| e.validation_discriminator_auc) {
                report.outputs.insert("validation_auc".into(), toml::Value::Float(auc));
                report.metrics.insert("validation:discriminator_auc".into(), auc.into());
            }
            if let Some(last) = last {
                report.metrics.insert(
                    "binary_classification_cross_entropy".into(),
                    last.binary_classification_cross_entropy.into(),
                );
                report.metrics.insert(
                    "throughput_pairs_per_sec".into(),
                    last.throughput_pairs_per_sec.into(),
                );
            }
            report.metrics.insert("epochs".into(), card.training.epochs.len().into());
            if let Some(auc) = card.training.test_random_ip_auc {
                report.metrics.insert("test:random_ip_auc".into(), auc.into());
            }
            Ok(report)
        })
    }
}

/// Train with a progress bar per epoch on a terminal, one log line per
/// epoch (and per metrics interval) otherwise.
pub async fn run(config: &TrainConfig) -> anyhow::Result<ipi_model::checkpoint::ModelCard> {
    let observer = Progress { bar: None, epochs: config.hyperparameters.epochs };
    let card = ipi_model::train(config, Box::new(observer)).await?;
    tracing::info!(model = %config.model, model_id = %card.model_id, "Model written.");
    Ok(card)
}

struct Progress {
    bar: Option<ProgressBar>,
    epochs: usize,
}

impl Observer for Progress {
    fn batch(&mut self, m: &BatchMetrics) {
        if logging::progress_enabled() {
            let bar = self.bar.get_or_insert_with(|| {
                logging::bar(m.batches as u64, format!("epoch {}/{}", m.epoch, self.epochs))
            });
            bar.set_position(m.batch as u64);
            bar.set_message(format!(
                "epoch {}/{} loss {:.4} {:.0} pairs/s",
                m.epoch,
                self.epochs,
                m.binary_classification_cross_entropy,
                m.throughput_pairs_per_sec
            ));
        } else if m.batch < m.batches {
            tracing::info!(
                epoch = m.epoch,
                batch = m.batch,
                batches = m.batches,
                binary_classification_cross_entropy = m.binary_classification_cross_entropy,
                binary_classification_accuracy = m.binary_classification_accuracy,
                pairs_per_sec = m.throughput_pairs_per_sec.round(),
                "Batch metrics."
            );
        }
    }

    fn epoch(&mut self, m: &EpochMetrics) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        tracing::info!(
            epoch = m.epoch,
            binary_classification_cross_entropy =
                format!("{:.5}", m.binary_classification_cross_entropy),
            binary_classification_accuracy = format!("{:.4}", m.binary_classification_accuracy),
            pairs_per_sec = m.throughput_pairs_per_sec.round(),
            seconds = format!("{:.1}", m.train_seconds),
            validation_discriminator_auc =
                m.validation_discriminator_auc.map(|a| format!("{a:.4}")),
            "Epoch done."
        );
    }
}
