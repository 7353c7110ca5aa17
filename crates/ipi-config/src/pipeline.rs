//! A loaded, valid pipeline.

use std::collections::HashMap;
use std::time::Duration;

use chrono::NaiveDate;
use indexmap::IndexMap;

use crate::cases::TestCase;
use crate::template::{self, Ref, Subst};
use crate::{Error, ParamType, ParamValue, Result};

/// A pipeline file that passed every check.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Pipeline {
    /// `name` from the file.
    pub name: String,
    /// `description` from the file, if any.
    pub description: Option<String>,
    /// The file name given to [`load`](crate::load).
    pub file: String,
    /// The zone `today` and `yesterday` were resolved in (`UTC` unless
    /// the file sets `timezone`).
    pub timezone: chrono_tz::Tz,
    /// The day `today` resolved to, in `timezone`, for the clock given to
    /// [`load`](crate::load).
    pub today: NaiveDate,
    /// Every param's final value (override, else default), in file order.
    pub params: IndexMap<String, ParamValue>,
    /// Every param's declaration, in file order.
    pub param_decls: IndexMap<String, ParamDecl>,
    /// The steps, in file order.
    pub steps: IndexMap<String, Step>,
    /// Step names in the order to run them: dependencies first, file
    /// order among steps that are ready together.
    pub order: Vec<String>,
    /// The environment variables the file refers to (`${env.NAME}`, where
    /// allowed), with the values they had when it was loaded.
    pub env: IndexMap<String, String>,
    /// The file's `[[tests]]`, in file order.
    pub tests: Vec<TestCase>,
    /// The file's text, as loaded.
    pub source: String,
}

/// How a param was declared.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParamDecl {
    /// `type`.
    pub ty: ParamType,
    /// `doc`, if any.
    pub doc: Option<String>,
    /// Whether the param has no `default` and must be given with
    /// `--param`.
    pub required: bool,
}

/// One step of a pipeline.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Step {
    /// The step's name (`[steps.NAME]`).
    pub name: String,
    /// The step kind (`uses`).
    pub uses: String,
    /// Every step this one depends on: `needs` first, then the steps its
    /// body refers to, without repeats.
    pub needs: Vec<String>,
    /// `cache`, if set.
    pub cache: Option<CachePolicy>,
    /// `retry`, if set.
    pub retry: Option<RetryPolicy>,
    /// `for_each`, if set: the step runs once per value.
    pub for_each: Option<ForEach>,
    /// The step's own keys, with params substituted. Strings that still
    /// refer to step outputs are left as templates (`${steps.S.A}` as
    /// written, a literal `${` as `$${`): use
    /// [`Pipeline::resolve_body`] for the values to run with.
    pub body: toml::Table,
    /// 1-based line of the step's `[steps.NAME]` header or key.
    pub line: usize,
    /// The body as written, before any substitution.
    pub(crate) template: toml::Table,
}

/// `cache = { expire_after = "7d", ignore = ["train"] }` or `cache =
/// false`: whether and for how long a step's earlier result may be reused.
/// Without `cache`, a step is reused for as long as its config, inputs and
/// code are unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachePolicy {
    /// `false` (from `cache = false`): always run the step.
    pub enabled: bool,
    /// Reuse an output only while it is younger than this; `None` reuses
    /// it for as long as the step's inputs are unchanged.
    pub expire_after: Option<Duration>,
    /// Keys of the step's table whose values, and the inputs they name, do
    /// not decide reuse: a step that trains weekly on the day's split
    /// ignores `train` (a new path every day), so its result is reused
    /// until `expire_after`, and the steps after it get that result's
    /// outputs (the model trained on the day it ran).
    pub ignore: Vec<String>,
}

impl Default for CachePolicy {
    /// The policy when a step says nothing: reuse while nothing changed.
    fn default() -> Self {
        CachePolicy { enabled: true, expire_after: None, ignore: Vec::new() }
    }
}

/// `for_each = { date = "${params.from}..${params.to}" }`: the step runs
/// once per value, with `${each.date}` standing for the value.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ForEach {
    /// The name the body refers to as `${each.NAME}`.
    pub name: String,
    /// The values, in order: every day of a `FROM..TO` range (both
    /// included), or the items of a list.
    pub values: Vec<ParamValue>,
}

/// The most values one `for_each` may have (ten years of days).
pub const MAX_FOR_EACH: usize = 3660;

/// `retry = { attempts = 3, backoff = "2s" }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How many times to run the step at most, first run included
    /// (at least 1; 3 when not set).
    pub attempts: u32,
    /// How long to wait before the first retry (1s when not set).
    pub backoff: Duration,
}

impl RetryPolicy {
    /// Attempts when `retry` does not set them.
    pub const DEFAULT_ATTEMPTS: u32 = 3;
    /// Backoff when `retry` does not set it.
    pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: Self::DEFAULT_ATTEMPTS, backoff: Self::DEFAULT_BACKOFF }
    }
}

impl Pipeline {
    /// The step's body with every reference substituted: params from
    /// [`Pipeline::params`], environment variables from [`Pipeline::env`],
    /// and `${steps.S.A}` from `outputs[S][A]`, the attributes reported by
    /// the steps that already ran.
    ///
    /// A string that is exactly one reference becomes the referenced
    /// value itself; `$${` becomes `${`.
    pub fn resolve_body(
        &self,
        step: &str,
        outputs: &HashMap<String, IndexMap<String, toml::Value>>,
    ) -> Result<toml::Table> {
        self.resolve_with(step, outputs, None, &toml::Table::new())
    }

    /// [`resolve_body`](Self::resolve_body) for one value of the step's
    /// `for_each` (`${each.NAME}` becomes `each`), with the top-level keys
    /// of `replace` put in place of the step's own first (taken as they
    /// are, without substitution: `ipi-pipeline test` points a step at its
    /// test input this way).
    pub fn resolve_with(
        &self,
        step: &str,
        outputs: &HashMap<String, IndexMap<String, toml::Value>>,
        each: Option<&ParamValue>,
        replace: &toml::Table,
    ) -> Result<toml::Table> {
        let s = self.steps.get(step).ok_or_else(|| Error::UnknownStep { step: step.to_owned() })?;
        let mut first_error = None;
        let mut resolve = |r: &Ref| -> Result<Subst, String> {
            match r {
                Ref::Param(name) => self
                    .params
                    .get(name)
                    .map(|v| Subst::Value(v.to_toml()))
                    .ok_or_else(|| format!("no param `{name}`")),
                Ref::Env(name) => self
                    .env
                    .get(name)
                    .map(|v| Subst::Value(toml::Value::String(v.clone())))
                    .ok_or_else(|| format!("environment variable `{name}` was not read")),
                Ref::Each(name) => match (each, &s.for_each) {
                    (Some(v), Some(f)) if &f.name == name => Ok(Subst::Value(v.to_toml())),
                    _ => Err(format!("`{r}` has no value outside the step's `for_each`")),
                },
                Ref::Step { step: from, attr } => outputs
                    .get(from)
                    .and_then(|o| o.get(attr))
                    .map(|v| Subst::Value(v.clone()))
                    .ok_or_else(|| {
                        format!(
                            "`{r}` has no value: step `{from}` has not \
                             reported `{attr}`"
                        )
                    }),
            }
        };
        let mut template = s.template.clone();
        for key in replace.keys() {
            template.remove(key);
        }
        let mut body = template::map_table(&template, &mut Vec::new(), &mut |_, text| {
            let t = template::parse(text);
            if let Some((_, e)) = t.errors.first() {
                first_error.get_or_insert_with(|| e.clone());
            }
            template::substitute(&t, &mut resolve).unwrap_or_else(|e| {
                first_error.get_or_insert(e);
                toml::Value::String(text.to_owned())
            })
        });
        for (key, value) in replace {
            body.insert(key.clone(), value.clone());
        }
        match first_error {
            None => Ok(body),
            Some(message) => Err(Error::Resolve { step: step.to_owned(), message }),
        }
    }

    /// The steps that depend on `step`, directly, in file order.
    pub fn dependents(&self, step: &str) -> Vec<&str> {
        self.steps
            .values()
            .filter(|s| s.needs.iter().any(|n| n == step))
            .map(|s| s.name.as_str())
            .collect()
    }
}
