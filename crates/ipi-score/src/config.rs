//! `ScoreConfig`: the `score` step's table and the `score` subcommand's flags.

use serde::{Deserialize, Serialize};

use crate::codec::{Accept, ContentType};

/// Score events (or SageMaker request bodies) with a trained model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreConfig {
    /// The model: a folder with `model.safetensors` and `model.json`,
    /// local or `s3://`.
    pub model: String,
    /// What to score: the events dataset, a day of it
    /// (`events/date=2018-11-13`), Parquet with `entity` and `ipv4` or `ip`
    /// columns, or request bodies (`*.csv`, `*.json`, `*.jsonl` or any
    /// files with `content_type`). Local or `s3://`, globs allowed for
    /// request bodies.
    pub input: String,
    /// Where the scores dataset goes (partitioned `date=YYYY-MM-DD/` when
    /// the input has timestamps); with `accept`, where the `.out` files go.
    pub output: String,
    /// Read the input as request bodies of this type (`text/csv`,
    /// `application/json`, `application/jsonlines`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Write SageMaker's response bodies (`application/json` or
    /// `application/jsonlines`), one `<input name>.out` per input object,
    /// instead of the scores dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept: Option<String>,
    /// Also write `ip_embedding` and `entity_embedding`.
    #[serde(default)]
    pub verbose: bool,
    /// Flag rows whose `anomaly_score` (= −dot_product) is above this
    /// (default: the threshold a models folder's `latest.json` carries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Run the IP encoder on this device (`cpu`, `cuda`, `cuda:N`) instead
    /// of the one the model was trained on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Rows per batch read, scored and written (bounds memory).
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
}

fn default_batch_rows() -> usize {
    65_536
}

impl ScoreConfig {
    /// A config with the required fields and every default.
    pub fn new(model: &str, input: &str, output: &str) -> ScoreConfig {
        ScoreConfig {
            model: model.into(),
            input: input.into(),
            output: output.into(),
            content_type: None,
            accept: None,
            verbose: false,
            threshold: None,
            device: None,
            batch_rows: default_batch_rows(),
        }
    }

    /// Problems serde cannot see, as `(field, message)`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(ct) = &self.content_type
            && let Err(e) = ContentType::parse(ct)
        {
            out.push(("content_type", e.to_string()));
        }
        if let Some(accept) = &self.accept
            && let Err(e) = Accept::parse(accept)
        {
            out.push(("accept", e.to_string()));
        }
        if self.threshold.is_some_and(|t| !t.is_finite()) {
            out.push(("threshold", "must be a finite number".to_string()));
        }
        if self.batch_rows == 0 {
            out.push(("batch_rows", "must be at least 1".to_string()));
        }
        for (field, value) in
            [("model", &self.model), ("input", &self.input), ("output", &self.output)]
        {
            if value.trim().is_empty() {
                out.push((field, "must not be empty".to_string()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_refused() {
        let toml = r#"{"model":"m","input":"i","output":"o","treshold":1.0}"#;
        assert!(serde_json::from_str::<ScoreConfig>(toml).is_err());
    }

    #[test]
    fn bad_values_are_problems() {
        let mut c = ScoreConfig::new("m", "i", "o");
        assert!(c.problems().is_empty());
        c.content_type = Some("text/plain".into());
        c.accept = Some("text/csv".into());
        c.batch_rows = 0;
        let fields: Vec<_> = c.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["content_type", "accept", "batch_rows"]);
    }
}
