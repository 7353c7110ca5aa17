//! A loaded, valid pipeline.

use std::collections::HashMap;
use std::time::Duration;

use chrono::NaiveDate;
use indexmap::IndexMap;

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

/// `cache = { expire_after = "7d" }`: the step's output may be reused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CachePolicy {
    /// Reuse an output only while it is younger than this; `None` reuses
    /// it for as long as the step's inputs are unchanged.
    pub expire_after: Option<Duration>,
}

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
    /// [`Pipeline::params`], and `${steps.S.A}` from `outputs[S][A]`, the
    /// attributes reported by the steps that already ran.
    ///
    /// A string that is exactly one reference becomes the referenced
    /// value itself; `$${` becomes `${`.
    pub fn resolve_body(
        &self,
        step: &str,
        outputs: &HashMap<String, IndexMap<String, toml::Value>>,
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
        let body = template::map_table(&s.template, &mut Vec::new(), &mut |_, text| {
            let t = template::parse(text);
            if let Some((_, e)) = t.errors.first() {
                first_error.get_or_insert_with(|| e.clone());
            }
            template::substitute(&t, &mut resolve).unwrap_or_else(|e| {
                first_error.get_or_insert(e);
                toml::Value::String(text.to_owned())
            })
        });
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
