//! SageMaker IP Insights' hyperparameters: its names, defaults and ranges.
//!
//! A SageMaker user's `hyperparameters` map (whose values SageMaker passes as
//! strings) deserialises into [`Hyperparameters`] as it is. Two are ipi's
//! own: `seed` and `device`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Every hyperparameter of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hyperparameters {
    /// Rows of the entity table; entities are hashed into them. About twice
    /// the number of distinct entities. 1 to 250,000,000.
    #[serde(deserialize_with = "lenient")]
    pub num_entity_vectors: u64,
    /// Length of the entity and IP vectors. 4 to 4096.
    #[serde(deserialize_with = "lenient")]
    pub vector_dim: usize,
    /// Passes over the training data. At least 1.
    #[serde(deserialize_with = "lenient")]
    pub epochs: usize,
    /// Adam's step size. 1e-6 to 10.
    #[serde(deserialize_with = "lenient")]
    pub learning_rate: f64,
    /// Positive pairs per step. 1 to 500,000.
    #[serde(deserialize_with = "lenient")]
    pub mini_batch_size: usize,
    /// Fully connected layers (with ReLU) after the prefix embeddings. 0 to 100.
    #[serde(deserialize_with = "lenient")]
    pub num_ip_encoder_layers: usize,
    /// Negatives per positive with a uniformly random address. 0 to 500.
    #[serde(deserialize_with = "lenient")]
    pub random_negative_sampling_rate: usize,
    /// Negatives per positive made by shuffling entities in the batch. 0 to 500.
    #[serde(deserialize_with = "lenient")]
    pub shuffled_negative_sampling_rate: usize,
    /// L2 weight decay, added to the gradient of every row a step touches. 0 to 10.
    #[serde(deserialize_with = "lenient")]
    pub weight_decay: f64,
    /// Batches between two training-metric reports. At least 1.
    #[serde(deserialize_with = "lenient")]
    pub batch_metrics_publish_interval: usize,
    /// ipi: seeds initialisation, negative sampling and shuffling.
    #[serde(deserialize_with = "lenient")]
    pub seed: u64,
    /// ipi: where the dense layers run: `cpu`, `cuda` or `cuda:N`.
    pub device: String,
}

impl Default for Hyperparameters {
    /// SageMaker's defaults; `num_entity_vectors` and `vector_dim`, which
    /// SageMaker requires, take the values its container falls back to.
    fn default() -> Hyperparameters {
        Hyperparameters {
            num_entity_vectors: 100_000,
            vector_dim: 128,
            epochs: 10,
            learning_rate: 0.001,
            mini_batch_size: 10_000,
            num_ip_encoder_layers: 1,
            random_negative_sampling_rate: 1,
            shuffled_negative_sampling_rate: 1,
            weight_decay: 0.00001,
            batch_metrics_publish_interval: 1000,
            seed: 0,
            device: "cpu".into(),
        }
    }
}

/// A hyperparameter outside its range.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeError {
    /// The SageMaker name.
    pub name: &'static str,
    /// The value given, as text.
    pub value: String,
    /// The allowed range, as text.
    pub allowed: &'static str,
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {} is out of range: allowed {}", self.name, self.value, self.allowed)
    }
}

impl std::error::Error for RangeError {}

impl Hyperparameters {
    /// Every value outside SageMaker's range, each with the allowed range.
    pub fn problems(&self) -> Vec<RangeError> {
        let mut out = Vec::new();
        let mut check = |ok: bool, name: &'static str, value: String, allowed: &'static str| {
            if !ok {
                out.push(RangeError { name, value, allowed });
            }
        };
        let h = self;
        check(
            (1..=250_000_000).contains(&h.num_entity_vectors),
            "num_entity_vectors",
            h.num_entity_vectors.to_string(),
            "1 to 250000000",
        );
        check(
            (4..=4096).contains(&h.vector_dim),
            "vector_dim",
            h.vector_dim.to_string(),
            "4 to 4096",
        );
        check(h.epochs >= 1, "epochs", h.epochs.to_string(), "1 or more");
        check(
            (1e-6..=10.0).contains(&h.learning_rate),
            "learning_rate",
            h.learning_rate.to_string(),
            "1e-6 to 10.0",
        );
        check(
            (1..=500_000).contains(&h.mini_batch_size),
            "mini_batch_size",
            h.mini_batch_size.to_string(),
            "1 to 500000",
        );
        check(
            h.num_ip_encoder_layers <= 100,
            "num_ip_encoder_layers",
            h.num_ip_encoder_layers.to_string(),
            "0 to 100",
        );
        let (r, s) = (h.random_negative_sampling_rate, h.shuffled_negative_sampling_rate);
        check(r <= 500, "random_negative_sampling_rate", r.to_string(), "0 to 500");
        check(s <= 500, "shuffled_negative_sampling_rate", s.to_string(), "0 to 500");
        if r <= 500 && s <= 500 {
            check(
                (1..=500).contains(&(r + s)),
                "random_negative_sampling_rate + shuffled_negative_sampling_rate",
                (r + s).to_string(),
                "1 to 500",
            );
        }
        check(
            (0.0..=10.0).contains(&h.weight_decay),
            "weight_decay",
            h.weight_decay.to_string(),
            "0 to 10",
        );
        check(
            h.batch_metrics_publish_interval >= 1,
            "batch_metrics_publish_interval",
            h.batch_metrics_publish_interval.to_string(),
            "1 or more",
        );
        if parse_device(&h.device).is_none() {
            out.push(RangeError {
                name: "device",
                value: format!("{:?}", h.device),
                allowed: "cpu, cuda or cuda:N",
            });
        }
        out
    }

    /// [`Hyperparameters::problems`] as one error, naming every problem.
    pub fn validate(&self) -> Result<(), crate::Error> {
        let problems = self.problems();
        if problems.is_empty() {
            return Ok(());
        }
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        Err(crate::Error::Hyperparameters(text.join("; ")))
    }
}

/// `cpu` → `None` ordinal; `cuda` → 0; `cuda:N` → N. Anything else: `None`.
pub fn parse_device(device: &str) -> Option<Device> {
    match device {
        "cpu" => Some(Device::Cpu),
        "cuda" | "gpu" => Some(Device::Cuda(0)),
        _ => device.strip_prefix("cuda:")?.parse().ok().map(Device::Cuda),
    }
}

/// A device named by the `device` hyperparameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// The host CPU.
    Cpu,
    /// A CUDA GPU by ordinal.
    Cuda(usize),
}

/// SageMaker passes every hyperparameter as a string (`"128"`), its users'
/// files hold numbers; accept both.
fn lenient<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr + Deserialize<'de>,
    T::Err: fmt::Display,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either<T> {
        Text(String),
        Value(T),
    }
    match Either::<T>::deserialize(deserializer)? {
        Either::Value(v) => Ok(v),
        Either::Text(text) => text.trim().parse().map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_sagemakers_and_valid() {
        let h = Hyperparameters::default();
        assert_eq!(h.epochs, 10);
        assert_eq!(h.learning_rate, 0.001);
        assert_eq!(h.weight_decay, 0.00001);
        assert_eq!(h.num_ip_encoder_layers, 1);
        assert_eq!(h.batch_metrics_publish_interval, 1000);
        assert!(h.problems().is_empty());
    }

    #[test]
    fn sagemaker_string_values_are_accepted() {
        let json = r#"{"num_entity_vectors":"20000","vector_dim":"128","learning_rate":"0.01",
                       "epochs":5,"random_negative_sampling_rate":"5"}"#;
        let h: Hyperparameters = serde_json::from_str(json).unwrap();
        assert_eq!(h.num_entity_vectors, 20000);
        assert_eq!(h.learning_rate, 0.01);
        assert_eq!(h.random_negative_sampling_rate, 5);
        assert_eq!(h.shuffled_negative_sampling_rate, 1);
    }

    #[test]
    fn out_of_range_values_name_the_allowed_range() {
        let h = Hyperparameters {
            vector_dim: 2,
            learning_rate: 20.0,
            random_negative_sampling_rate: 0,
            shuffled_negative_sampling_rate: 0,
            device: "tpu".into(),
            ..Hyperparameters::default()
        };
        let text: Vec<String> = h.problems().iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "vector_dim = 2 is out of range: allowed 4 to 4096",
                "learning_rate = 20 is out of range: allowed 1e-6 to 10.0",
                "random_negative_sampling_rate + shuffled_negative_sampling_rate = 0 is out of range: allowed 1 to 500",
                "device = \"tpu\" is out of range: allowed cpu, cuda or cuda:N",
            ]
        );
    }

    #[test]
    fn unknown_names_are_refused() {
        let err = serde_json::from_str::<Hyperparameters>(r#"{"vector_dims": 8}"#).unwrap_err();
        assert!(err.to_string().contains("vector_dims"), "{err}");
    }
}
