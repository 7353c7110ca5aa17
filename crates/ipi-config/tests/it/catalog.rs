//! A step catalog shaped like ipi's real steps, for tests.

use chrono::NaiveDate;
use ipi_config::{BodyError, LoadOptions, ParamType, StepCatalog, check_with_serde};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Synth {
    users: u32,
    #[serde(default)]
    days: Option<u32>,
    output: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Filter {
    method: Option<String>,
    path_prefix: Option<String>,
    status: Option<Vec<u16>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Ingest {
    inputs: Vec<String>,
    output: String,
    format: Option<String>,
    filter: Option<Filter>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Split {
    input: String,
    end: NaiveDate,
    validation: String,
    test: String,
    output: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Hyperparameters {
    epochs: u32,
    learning_rate: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Train {
    input: String,
    hyperparameters: Option<Hyperparameters>,
    min_auc: Option<f64>,
}

/// Kinds `synth`, `ingest`, `split` and `train`.
pub struct Catalog;

impl StepCatalog for Catalog {
    fn kinds(&self) -> Vec<&'static str> {
        vec!["synth", "ingest", "split", "train"]
    }

    fn outputs(&self, kind: &str) -> Vec<(&'static str, ParamType)> {
        match kind {
            "ingest" => vec![("output", ParamType::Url), ("rows", ParamType::Int)],
            "train" => vec![("output", ParamType::Url), ("auc", ParamType::Float)],
            _ => vec![("output", ParamType::Url)],
        }
    }

    fn check(&self, kind: &str, body: &toml::Table) -> Vec<BodyError> {
        match kind {
            "synth" => check_with_serde::<Synth>(body),
            "ingest" => check_with_serde::<Ingest>(body),
            "split" => check_with_serde::<Split>(body),
            "train" => check_with_serde::<Train>(body),
            _ => vec![],
        }
    }
}

/// 2024-03-10T12:00:00Z.
pub fn noon() -> chrono::DateTime<chrono::Utc> {
    at("2024-03-10T12:00:00Z")
}

pub fn at(rfc3339: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

pub fn opts(overrides: &[(String, String)]) -> LoadOptions<'_> {
    LoadOptions::new(overrides, noon(), &Catalog)
}

pub fn overrides(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// Load and return every diagnostic's Display string.
pub fn errors(source: &str, overrides: &[(String, String)]) -> Vec<String> {
    match ipi_config::load("test.toml", source, &opts(overrides)) {
        Ok(_) => panic!("expected errors, the file loaded"),
        Err(diags) => diags.iter().map(ToString::to_string).collect(),
    }
}

/// Column (1-based) of the first `needle` on 1-based `line` of `source`.
pub fn col(source: &str, line: usize, needle: &str) -> usize {
    let text = source.lines().nth(line - 1).unwrap();
    text.find(needle).unwrap_or_else(|| panic!("{needle:?} not on line {line}: {text:?}")) + 1
}
