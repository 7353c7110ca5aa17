//! The step registry: every kind of step a pipeline file can `uses`.
//!
//! A step kind is a small adapter between the pipeline runner and a step
//! crate: it names the kind, declares the attributes other steps may
//! reference (`${steps.NAME.output}`), checks a step's own table strictly,
//! and runs it. The step crates own their config structs and know nothing
//! of pipelines; this module is the only place that joins the two.

pub mod evaluate;
pub mod ingest;
pub mod promote;
pub mod query;
pub mod score;
pub mod split;
pub mod synth;
pub mod train;

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use indexmap::IndexMap;
use ipi_config::{BodyError, ParamType, StepCatalog};

/// What a step knows about the run it is part of.
#[derive(Debug, Clone)]
pub struct StepContext {
    /// The run's id, unique per run.
    pub run_id: String,
    /// The step's name in the pipeline file.
    pub step: String,
}

/// What a finished step hands to the runner.
#[derive(Debug, Default)]
pub struct StepReport {
    /// Values other steps can reference as `${steps.NAME.ATTR}`.
    pub outputs: IndexMap<String, toml::Value>,
    /// Counts and metrics for the run summary and manifest.
    pub metrics: BTreeMap<String, serde_json::Value>,
}

/// One kind of step.
pub trait StepKind: Send + Sync {
    /// The name used in `uses = "..."`.
    fn kind(&self) -> &'static str;
    /// One line saying what the step does.
    fn about(&self) -> &'static str;
    /// The attributes a step of this kind exposes, with their types.
    fn outputs(&self) -> Vec<(&'static str, ParamType)>;
    /// Strictly check a step's own table; report every problem.
    fn check(&self, body: &toml::Table) -> Vec<BodyError>;
    /// The locations a step reads and writes, from its table: the runner
    /// versions the inputs for its cache, checks the outputs are still what
    /// it wrote, and records both in the run manifest. The default
    /// ([`StepIo::guess`]) goes by key names; override it where a key
    /// means something else (`train`'s `model` is an output).
    fn io(&self, body: &toml::Table) -> StepIo {
        StepIo::guess(body)
    }
    /// Run the step on its resolved table.
    fn run<'a>(
        &'a self,
        ctx: &'a StepContext,
        body: toml::Table,
    ) -> BoxFuture<'a, anyhow::Result<StepReport>>;
}

/// What a step reads and writes: `(key, location)` pairs, in key order.
/// Values that are not locations (`builtin:demo`) are kept: the runner
/// skips what it cannot parse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepIo {
    pub inputs: Vec<(String, String)>,
    pub outputs: Vec<(String, String)>,
}

impl StepIo {
    /// Keys read as inputs by [`StepIo::guess`].
    pub const INPUT_KEYS: [&'static str; 13] = [
        "input",
        "inputs",
        "model",
        "train",
        "validation",
        "test",
        "labels",
        "logs",
        "events",
        "scores",
        "queries",
        "sql",
        "files",
    ];
    /// Keys read as outputs by [`StepIo::guess`].
    pub const OUTPUT_KEYS: [&'static str; 3] = ["output", "outputs", "to"];

    /// Inputs and outputs by key name: [`Self::INPUT_KEYS`] and
    /// [`Self::OUTPUT_KEYS`], each a string or a list of strings.
    pub fn guess(body: &toml::Table) -> StepIo {
        let mut io = StepIo::default();
        for (key, value) in body {
            let target = if Self::OUTPUT_KEYS.contains(&key.as_str()) {
                &mut io.outputs
            } else if Self::INPUT_KEYS.contains(&key.as_str()) {
                &mut io.inputs
            } else {
                continue;
            };
            target.extend(Self::strings(value).into_iter().map(|s| (key.clone(), s)));
        }
        io
    }

    /// The strings of a value: itself, or a list's string items.
    pub fn strings(value: &toml::Value) -> Vec<String> {
        match value {
            toml::Value::String(s) if !s.is_empty() => vec![s.clone()],
            toml::Value::Array(items) => items
                .iter()
                .filter_map(|i| i.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Check a step's table against its strict config type `T`, then with the
/// config's own `problems` (checks serde cannot express), all as body errors.
pub fn check_config<T: serde::de::DeserializeOwned>(
    body: &toml::Table,
    problems: impl Fn(&T) -> Vec<(&'static str, String)>,
) -> Vec<BodyError> {
    let mut errors = ipi_config::check_with_serde::<T>(body);
    if let Ok(config) = body.clone().try_into::<T>() {
        errors.extend(as_body_errors(problems(&config)));
    }
    errors
}

/// A config's `(field, problem)` pairs as body errors.
pub fn as_body_errors(problems: Vec<(&'static str, String)>) -> Vec<BodyError> {
    problems
        .into_iter()
        .map(|(field, message)| BodyError { path: vec![field.to_owned()], message })
        .collect()
}

/// Every step kind this binary knows.
pub struct Registry {
    kinds: Vec<Box<dyn StepKind>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.kinds.iter().map(|k| k.kind())).finish()
    }
}

impl Registry {
    /// A registry of just these kinds (tests use made-up ones).
    #[cfg(test)]
    pub fn with(kinds: Vec<Box<dyn StepKind>>) -> Registry {
        Registry { kinds }
    }

    /// The registry of this build. Each step issue adds its kind here.
    pub fn builtin() -> Registry {
        Registry {
            kinds: vec![
                Box::new(synth::Synth),
                Box::new(ingest::Ingest),
                Box::new(split::Split),
                Box::new(train::Train),
                Box::new(evaluate::Evaluate),
                Box::new(promote::Promote),
                Box::new(score::Score),
                Box::new(query::QueryStep),
            ],
        }
    }

    /// The step kind named `kind`.
    pub fn get(&self, kind: &str) -> Option<&dyn StepKind> {
        self.kinds.iter().find(|k| k.kind() == kind).map(AsRef::as_ref)
    }

    /// Every kind, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &dyn StepKind> {
        self.kinds.iter().map(AsRef::as_ref)
    }
}

impl StepCatalog for Registry {
    fn kinds(&self) -> Vec<&'static str> {
        self.kinds.iter().map(|k| k.kind()).collect()
    }

    fn outputs(&self, kind: &str) -> Vec<(&'static str, ParamType)> {
        self.get(kind).map(StepKind::outputs).unwrap_or_default()
    }

    fn check(&self, kind: &str, body: &toml::Table) -> Vec<BodyError> {
        self.get(kind).map(|k| k.check(body)).unwrap_or_default()
    }
}
