//! `EvaluateConfig`: the `evaluate` step's table and the `evaluate`
//! subcommand's flags.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Measure a trained model on the test window: the SageMaker notebook's
/// random-address case and, with synth's labels, every labelled attack kind.
///
/// ```toml
/// [steps.evaluate]
/// uses   = "evaluate"
/// model  = "${steps.train.output}"
/// train  = "${steps.split.train}"
/// test   = "${steps.split.test}"
/// labels = "${steps.logs.labels}"
/// output = "${params.store}/evaluations/${params.date}"
/// target_fpr = 0.01
/// gate = { min_auc = 0.9 }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluateConfig {
    /// The model: a folder with `model.safetensors` and `model.json`.
    pub model: String,
    /// The training pairs (the split's `train/`): the generated attacks
    /// pose as these entities, in proportion to their training logins.
    pub train: String,
    /// The test events (the split's `test/`): normal traffic, and the
    /// labelled attacks among them.
    pub test: String,
    /// synth's `labels` dataset (`timestamp`, `entity`, `ip`,
    /// `attack_kind`). Test events it names are attacks of that kind, not
    /// normal traffic. Empty or absent: no labels (real logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<String>,
    /// Where `report.html`, `report.json`, `entities.csv` and `plots/` go.
    pub output: String,
    /// The share of normal events the chosen threshold may flag (0 < x < 1).
    #[serde(default = "default_target_fpr")]
    pub target_fpr: f64,
    /// The share of attacks the recall-target threshold must catch (0 < x ≤ 1).
    #[serde(default = "default_target_recall")]
    pub target_recall: f64,
    /// The case `target_recall` is about (a case name of the report, e.g.
    /// `credential_stuffing`); by default all labelled attacks together,
    /// or the random-address case when there are no labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recall_case: Option<String>,
    /// Which threshold becomes the step's `threshold` output: `fpr` (the
    /// one for `target_fpr`) or `recall` (the one for `target_recall`).
    #[serde(default)]
    pub choose: Choose,
    /// Fail (exit 1, before scoring) when detection is worse than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<Gate>,
    /// Seeds the random-address attacks.
    #[serde(default)]
    pub seed: u64,
    /// Run the IP encoder on this device instead of the model's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// Which target decides the threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choose {
    /// Flag at most `target_fpr` of normal events.
    #[default]
    Fpr,
    /// Catch at least `target_recall` of the recall case's attacks.
    Recall,
}

/// Floors under which the `evaluate` step fails.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// The lowest acceptable AUC of the random-address case (the
    /// notebook's test, always measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_auc: Option<f64>,
    /// The lowest acceptable AUC per case, e.g.
    /// `{ credential_stuffing = 0.95, all_labelled = 0.9 }`. A case with no
    /// attacks in the test window fails its floor.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub min_auc_by_case: BTreeMap<String, f64>,
}

fn default_target_fpr() -> f64 {
    0.01
}

fn default_target_recall() -> f64 {
    0.95
}

impl EvaluateConfig {
    /// A config with the required fields and every default.
    pub fn new(model: &str, train: &str, test: &str, output: &str) -> EvaluateConfig {
        EvaluateConfig {
            model: model.into(),
            train: train.into(),
            test: test.into(),
            labels: None,
            output: output.into(),
            target_fpr: default_target_fpr(),
            target_recall: default_target_recall(),
            recall_case: None,
            choose: Choose::default(),
            gate: None,
            seed: 0,
            device: None,
        }
    }

    /// The labels URL, if one was given (an empty string is none).
    pub fn labels_url(&self) -> Option<&str> {
        self.labels.as_deref().map(str::trim).filter(|l| !l.is_empty())
    }

    /// Problems serde cannot see, as `(field, message)`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (field, value) in [
            ("model", &self.model),
            ("train", &self.train),
            ("test", &self.test),
            ("output", &self.output),
        ] {
            if value.trim().is_empty() {
                out.push((field, "must not be empty".to_string()));
            }
        }
        if !(self.target_fpr > 0.0 && self.target_fpr < 1.0) {
            out.push((
                "target_fpr",
                format!("{} is out of range: allowed (0, 1)", self.target_fpr),
            ));
        }
        if !(self.target_recall > 0.0 && self.target_recall <= 1.0) {
            out.push((
                "target_recall",
                format!("{} is out of range: allowed (0, 1]", self.target_recall),
            ));
        }
        if let Some(gate) = &self.gate {
            let floors = gate.min_auc.iter().map(|&f| ("min_auc".to_string(), f));
            let floors = floors.chain(gate.min_auc_by_case.iter().map(|(k, &f)| (k.clone(), f)));
            for (name, floor) in floors {
                if !(0.0..=1.0).contains(&floor) {
                    out.push(("gate", format!("{name} = {floor} is out of range: allowed 0 to 1")));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_table_reads_and_unknown_keys_are_refused() {
        let toml = r#"
            model = "m"
            train = "tr"
            test = "te"
            labels = ""
            output = "o"
            choose = "recall"
            gate = { min_auc = 0.9, min_auc_by_case = { cgnat = 0.6 } }
        "#;
        let c: EvaluateConfig = toml::from_str(toml).unwrap();
        assert_eq!(c.labels_url(), None);
        assert_eq!(c.choose, Choose::Recall);
        assert_eq!(c.target_fpr, 0.01);
        assert_eq!(c.gate.as_ref().unwrap().min_auc_by_case["cgnat"], 0.6);
        assert!(c.problems().is_empty());
        let bad = toml.replace("min_auc =", "min_acu =");
        assert!(toml::from_str::<EvaluateConfig>(&bad).is_err());
    }

    #[test]
    fn out_of_range_values_are_problems() {
        let mut c = EvaluateConfig::new("m", "tr", "te", "");
        c.target_fpr = 1.0;
        c.target_recall = 0.0;
        c.gate = Some(Gate { min_auc: Some(1.5), ..Gate::default() });
        let fields: Vec<_> = c.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["output", "target_fpr", "target_recall", "gate"]);
    }
}
