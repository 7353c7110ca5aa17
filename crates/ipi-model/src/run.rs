//! The `train` step: read the data, train, write the checkpoint.

use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, ModelCard, Provenance};
use crate::hyper::Hyperparameters;
use crate::ip::IpEncoderSpec;
use crate::train::{FitOptions, Observer, fit};
use crate::{Error, Model, Result};

/// What to train on and where to write the model; the `train` step's table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Training pairs: the split's `train/` dataset, a Parquet file, or
    /// SageMaker's headerless `entity,ip` CSV (path or `s3://`).
    pub train: String,
    /// Optional validation pairs, in the same forms, for
    /// `validation:discriminator_auc` after every epoch.
    #[serde(default)]
    pub validation: Option<String>,
    /// Optional test pairs (the split's `test/`): after training, the
    /// notebook's random-address test AUC is computed on them and recorded.
    #[serde(default)]
    pub test: Option<String>,
    /// The model directory to write `model.safetensors` and `model.json` to.
    pub model: String,
    /// SageMaker's hyperparameters (strings or numbers), plus `seed` and `device`.
    #[serde(default)]
    pub hyperparameters: Hyperparameters,
    /// Stop when validation AUC has not improved for this many epochs.
    #[serde(default)]
    pub early_stopping_patience: Option<usize>,
    /// Rows for each hashed prefix (/24 and /32) of the IP encoder; 2^16
    /// by default. More rows mean fewer collisions and a larger model.
    #[serde(default)]
    pub ip_hash_buckets: Option<u32>,
}

impl TrainConfig {
    /// Every problem, as `(field, message)`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> = self
            .hyperparameters
            .problems()
            .into_iter()
            .map(|p| ("hyperparameters", p.to_string()))
            .collect();
        if self.early_stopping_patience == Some(0) {
            out.push(("early_stopping_patience", "must be at least 1".into()));
        }
        if self.ip_hash_buckets.is_some_and(|b| !(1024..=1 << 26).contains(&b)) {
            out.push(("ip_hash_buckets", "must be between 1024 and 67108864".into()));
        }
        if self.early_stopping_patience.is_some() && self.validation.is_none() {
            out.push(("early_stopping_patience", "needs `validation` data".into()));
        }
        out
    }
}

/// Trains as `config` says and writes the model; returns its card.
pub async fn train(config: &TrainConfig, observer: Box<dyn Observer + Send>) -> Result<ModelCard> {
    if let Some((field, message)) = config.problems().into_iter().next() {
        return Err(Error::Hyperparameters(format!("{field}: {message}")));
    }
    let h = config.hyperparameters.clone();
    let train = crate::data::load(&config.train, h.num_entity_vectors).await?;
    if train.is_empty() {
        return Err(Error::Data(format!("{}: no usable training pairs", config.train)));
    }
    let validation = match &config.validation {
        Some(url) => Some(crate::data::load(url, h.num_entity_vectors).await?),
        None => None,
    };
    let test = match &config.test {
        Some(url) => Some(crate::data::load(url, h.num_entity_vectors).await?),
        None => None,
    };
    tracing::info!(
        rows = train.summary.rows,
        entities = train.summary.entities,
        validation_rows = validation.as_ref().map(|v| v.summary.rows),
        "Training data loaded."
    );
    let options = FitOptions {
        early_stopping_patience: config.early_stopping_patience,
        max_steps_per_epoch: None,
    };
    let spec = IpEncoderSpec {
        hash_buckets: config.ip_hash_buckets.unwrap_or(crate::ip::DEFAULT_HASH_BUCKETS),
        ..IpEncoderSpec::default()
    };
    let (model, report, train, validation) = tokio::task::spawn_blocking(move || {
        let mut observer = observer;
        let model = Model::new(&h, spec)?;
        let (model, mut report) =
            fit(model, &train, validation.as_ref(), &options, observer.as_mut())?;
        if let Some(test) = &test {
            report.test_random_ip_auc =
                crate::metrics::random_ip_test_auc(&model, &train, test, h.seed)?;
        }
        Ok::<_, Error>((model, report, train, validation))
    })
    .await
    .map_err(|e| Error::Data(format!("training thread failed: {e}")))??;
    let provenance = Provenance {
        training_data: Some(train.summary),
        validation_data: validation.map(|v| v.summary),
        training: report,
    };
    checkpoint::save(&model, &config.model, provenance).await
}
