//! The ipi pipeline file: its envelope, typed params, `${...}` references, the
//! step DAG, and validation that reports every problem at once, each with a line
//! and column.
//!
//! This crate knows nothing of any step's own fields. Those are checked
//! through a [`StepCatalog`], which the binary implements, usually with one
//! [`check_with_serde`] call per step kind.
//!
//! # Brief overview
//!
//! * [`load`] (or [`load_path`]) parses a file, applies `--param` overrides,
//!   resolves `today`/`yesterday` against the clock in [`LoadOptions`], checks
//!   everything, and returns a [`Pipeline`] or every [`Diagnostic`] found.
//! * A [`Pipeline`] has its params, its [`Step`]s in file order, and
//!   [`Pipeline::order`], a stable topological order.
//! * [`Pipeline::resolve_body`] substitutes the outputs of steps that already
//!   ran into a step's body just before it runs ([`Pipeline::resolve_with`]
//!   also for one value of a step's `for_each`).
//! * `${env.NAME}` is read only where allowed: `url` and `string` param
//!   defaults, and the step keys [`StepCatalog::env_keys`] marks; names
//!   that look like credentials ([`is_credential_name`]) are refused.
//! * [`Pipeline::tests`] holds the file's `[[tests]]` ([`TestCase`]).
//!
//! # Example
//!
//! ```
//! use ipi_config::{check_with_serde, load, BodyError, LoadOptions, ParamType, StepCatalog};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! #[allow(dead_code)]
//! struct Echo {
//!     message: String,
//!     #[serde(default)]
//!     times: u32,
//!     output: String,
//! }
//!
//! struct Catalog;
//!
//! impl StepCatalog for Catalog {
//!     fn kinds(&self) -> Vec<&'static str> {
//!         vec!["echo"]
//!     }
//!     fn outputs(&self, _kind: &str) -> Vec<(&'static str, ParamType)> {
//!         vec![("output", ParamType::Url)]
//!     }
//!     fn check(&self, _kind: &str, body: &toml::Table) -> Vec<BodyError> {
//!         check_with_serde::<Echo>(body)
//!     }
//! }
//!
//! let source = r#"
//! version = 1
//! name = "hello"
//! [params]
//! store = { type = "url", default = "var/ipi" }
//! times = { type = "int", default = 2 }
//! [steps.first]
//! uses = "echo"
//! message = "hi"
//! times = "${params.times}"
//! output = "${params.store}/first"
//! [steps.second]
//! uses = "echo"
//! message = "after ${steps.first.output}"
//! output = "${params.store}/second"
//! "#;
//! let now = chrono::DateTime::parse_from_rfc3339("2024-03-10T12:00:00Z")
//!     .unwrap()
//!     .to_utc();
//! let overrides = [("store".to_owned(), "s3://bucket/ipi".to_owned())];
//! let opts = LoadOptions::new(&overrides, now, &Catalog);
//! let pipeline = load("hello.toml", source, &opts).unwrap();
//! assert_eq!(pipeline.order, ["first", "second"]);
//! assert_eq!(pipeline.steps["second"].needs, ["first"]);
//! assert_eq!(pipeline.steps["first"].body["times"], toml::Value::Integer(2));
//!
//! // Just before `second` runs, with what `first` reported:
//! let mut outputs = std::collections::HashMap::new();
//! outputs.insert(
//!     "first".to_owned(),
//!     indexmap::IndexMap::from([("output".to_owned(), toml::Value::from("s3://bucket/ipi/first"))]),
//! );
//! let body = pipeline.resolve_body("second", &outputs).unwrap();
//! assert_eq!(body["message"].as_str(), Some("after s3://bucket/ipi/first"));
//!
//! // A typo is reported with its position, along with what follows from it.
//! let bad = source.replace("message = \"hi\"", "mesage = \"hi\"");
//! let errors = load("hello.toml", &bad, &opts).unwrap_err();
//! let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
//! assert_eq!(shown, [
//!     "hello.toml:7:8: step `first`: missing key `message`",
//!     "hello.toml:9:1: step `first`: unknown key `mesage`, expected one of `message`, `times`, `output`",
//! ]);
//! ```

mod cases;
mod dag;
mod diagnostic;
mod load;
mod pipeline;
mod template;
mod value;

pub use cases::{TestCase, TestData, TestExpect, TestInput};
pub use diagnostic::{Diagnostic, line_col};
pub use load::{LoadOptions, is_credential_name, load, load_path, process_env};
pub use pipeline::{CachePolicy, ForEach, MAX_FOR_EACH, ParamDecl, Pipeline, RetryPolicy, Step};
pub use value::{ParamType, ParamValue, format_duration, parse_duration};

/// Errors outside of loading a file (loading reports [`Diagnostic`]s).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A param type name that is not one of `string`, `int`, `float`,
    /// `bool`, `date`, `url`, `duration`.
    #[error("unknown param type `{name}`; known: string, int, float, bool, date, url, duration")]
    UnknownParamType {
        /// The name given.
        name: String,
    },
    /// [`Pipeline::resolve_body`] was asked for a step the pipeline lacks.
    #[error("unknown step `{step}`")]
    UnknownStep {
        /// The name given.
        step: String,
    },
    /// A reference in a step's body could not be substituted, usually
    /// because a step it refers to has not reported that output.
    #[error("step `{step}`: {message}")]
    Resolve {
        /// The step whose body was being resolved.
        step: String,
        /// What went wrong.
        message: String,
    },
}

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the binary knows about step kinds. ipi-config uses it to check
/// `uses`, `${steps.NAME.ATTR}` references and each step's own keys.
pub trait StepCatalog {
    /// Known step kinds, for "unknown step kind `x`; known: a, b" messages.
    fn kinds(&self) -> Vec<&'static str>;

    /// The attributes a step of this kind exposes to `${steps.NAME.ATTR}`
    /// and their types (e.g. `("output", ParamType::Url)`).
    fn outputs(&self, kind: &str) -> Vec<(&'static str, ParamType)>;

    /// Strictly check a step body: every key other than `uses`, `needs`,
    /// `cache` and `retry`, already interpolated, with placeholder values
    /// for step outputs (a `url` output reads
    /// `memory://ipi-placeholder/STEP/ATTR`; an `int` one 0, and so on).
    ///
    /// Return every problem found. Each carries the key path inside the
    /// body (e.g. `["filter", "metho"]`, array elements as their index) so
    /// that ipi-config can map it to a line and column. Implementations
    /// typically call [`check_with_serde`] with a
    /// `#[serde(deny_unknown_fields)]` struct.
    fn check(&self, kind: &str, body: &toml::Table) -> Vec<BodyError>;

    /// The keys of a step of this kind whose values may use
    /// `${env.NAME}` (the last key of the path, array indices aside).
    /// By default `endpoint` and `bucket`, which no step kind has yet;
    /// return an empty list to allow none.
    fn env_keys(&self, _kind: &str) -> Vec<&'static str> {
        vec!["endpoint", "bucket"]
    }
}

/// One problem in a step body, found by [`StepCatalog::check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyError {
    /// Key path inside the body; array elements are their index.
    /// Empty for the body as a whole (e.g. a missing required key).
    pub path: Vec<String>,
    /// What is wrong. When it does not name the last key of `path`,
    /// ipi-config prefixes the path (`` `filter.status`: invalid type ``).
    pub message: String,
}

/// Check `body` by deserializing it as `T`, and report every problem
/// found, each with its key path.
///
/// Serde stops at the first problem, so after each one the body is
/// patched and deserialized again (at most 64 times): an unknown key is
/// removed, and a wrongly typed or missing value is replaced by the first
/// of `""`, `0`, `0.0`, `false`, `[]` and `{}` that serde accepts there
/// (or removed when none is). Serde's words are put in TOML's: unknown
/// keys (from `deny_unknown_fields`) read
/// ``unknown key `x`, expected one of ...``, with a path that ends with
/// the unknown key, and missing ones ``missing key `x` ``.
pub fn check_with_serde<T: serde::de::DeserializeOwned>(body: &toml::Table) -> Vec<BodyError> {
    let mut body = body.clone();
    let mut errors = Vec::new();
    let mut removed: Vec<Vec<String>> = Vec::new();
    let mut next = first_error::<T>(&body);
    for _ in 0..64 {
        let Some(problem) = next.take() else { break };
        let target = problem.target();
        if problem.missing.is_some() && removed.contains(&target) {
            // Already reported as a wrongly typed key, then removed.
            break;
        }
        let unknown = problem.unknown;
        errors.push(BodyError { path: problem.path, message: problem.message });
        if target.is_empty() {
            break;
        }
        if !unknown {
            let patched = stand_ins().into_iter().find_map(|value| {
                let mut trial = body.clone();
                if !set_path(&mut trial, &target, value) {
                    return None;
                }
                let after = first_error::<T>(&trial);
                match &after {
                    Some(p) if p.target() == target => None,
                    _ => Some((trial, after)),
                }
            });
            if let Some((patched, after)) = patched {
                body = patched;
                next = after;
                continue;
            }
        }
        // Remove the key (a whole array, for an element).
        let mut key = target;
        while key.last().is_some_and(|seg| seg.parse::<usize>().is_ok()) {
            key.pop();
        }
        if key.is_empty() || !remove_path(&mut body, &key) {
            break;
        }
        removed.push(key);
        next = first_error::<T>(&body);
    }
    errors
}

/// The first problem serde finds, in TOML's words.
struct Problem {
    path: Vec<String>,
    message: String,
    /// The missing key, for `missing field` errors.
    missing: Option<String>,
    /// Whether this is an unknown key (the last element of `path`).
    unknown: bool,
}

impl Problem {
    /// The path of the value at fault.
    fn target(&self) -> Vec<String> {
        let mut t = self.path.clone();
        t.extend(self.missing.clone());
        t
    }
}

fn first_error<T: serde::de::DeserializeOwned>(body: &toml::Table) -> Option<Problem> {
    let err = serde_path_to_error::deserialize::<_, T>(body.clone()).err()?;
    let mut path: Vec<String> = err
        .path()
        .iter()
        .map(|seg| match seg {
            serde_path_to_error::Segment::Seq { index } => index.to_string(),
            serde_path_to_error::Segment::Map { key } => key.clone(),
            serde_path_to_error::Segment::Enum { variant } => variant.clone(),
            serde_path_to_error::Segment::Unknown => "?".to_owned(),
        })
        .collect();
    let mut message = err.into_inner().message().to_owned();
    let mut missing = None;
    let mut unknown = false;
    if let Some(rest) = message.strip_prefix("unknown field `") {
        // serde_path_to_error 0.1.20 already ends the path with the key;
        // make sure of it.
        let key = rest.split('`').next().unwrap_or_default().to_owned();
        if path.last() != Some(&key) {
            path.push(key);
        }
        unknown = true;
        message = format!("unknown key `{rest}");
    } else if let Some(rest) = message.strip_prefix("missing field `") {
        missing = Some(rest.split('`').next().unwrap_or_default().to_owned());
        message = format!("missing key `{rest}");
    }
    Some(Problem { path, message, missing, unknown })
}

fn stand_ins() -> [toml::Value; 6] {
    [
        toml::Value::String(String::new()),
        toml::Value::Integer(0),
        toml::Value::Float(0.0),
        toml::Value::Boolean(false),
        toml::Value::Array(Vec::new()),
        toml::Value::Table(toml::Table::new()),
    ]
}

/// The value at `path`'s parent, to change its last element.
fn parent_mut<'t>(table: &'t mut toml::Table, path: &[String]) -> Option<&'t mut toml::Value> {
    let (first, rest) = path.split_first()?;
    let mut node = table.get_mut(first)?;
    for seg in rest {
        node = match node {
            toml::Value::Table(t) => t.get_mut(seg)?,
            toml::Value::Array(items) => items.get_mut(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> bool {
    let Some((last, parent)) = path.split_last() else { return false };
    if parent.is_empty() {
        table.insert(last.clone(), value);
        return true;
    }
    match parent_mut(table, parent) {
        Some(toml::Value::Table(t)) => {
            t.insert(last.clone(), value);
            true
        }
        Some(toml::Value::Array(items)) => {
            match last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(slot) => {
                    *slot = value;
                    true
                }
                None => false,
            }
        }
        _ => false,
    }
}

fn remove_path(table: &mut toml::Table, path: &[String]) -> bool {
    let Some((last, parent)) = path.split_last() else { return false };
    if parent.is_empty() {
        return table.remove(last).is_some();
    }
    match parent_mut(table, parent) {
        Some(toml::Value::Table(t)) => t.remove(last).is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Filter {
        method: Option<String>,
        status: Option<Vec<u16>>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        input: String,
        users: u32,
        filter: Option<Filter>,
        list: Option<Vec<Filter>>,
    }

    fn check(src: &str) -> Vec<(String, String)> {
        let t: toml::Table = src.parse().unwrap();
        check_with_serde::<Body>(&t).into_iter().map(|e| (e.path.join("."), e.message)).collect()
    }

    #[test]
    fn unknown_keys_end_the_path() {
        assert_eq!(
            check("input = 'x'\nusers = 1\nfilter = { metho = 'GET' }"),
            vec![(
                "filter.metho".to_owned(),
                "unknown key `metho`, expected `method` or `status`".to_owned()
            )]
        );
        assert_eq!(
            check("input = 'x'\nusers = 1\nlist = [{}, { x = 1 }]"),
            vec![(
                "list.1.x".to_owned(),
                "unknown key `x`, expected `method` or `status`".to_owned()
            )]
        );
    }

    #[test]
    fn reports_several_problems() {
        let got = check(
            "input = 'x'\nfromat = 1\nusers = 'many'\n\
             filter = { status = ['ok'] }\nother = 2",
        );
        let paths: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(paths, ["fromat", "users", "filter.status.0", "other"]);
        assert!(got[1].1.starts_with("invalid type: string \"many\""), "{got:?}");
        // A wrongly typed key does not hide the missing ones after it.
        let got = check(
            "users = -1
list = [{ method = 1 }, { status = [1, 'x'] }]",
        );
        assert_eq!(
            got,
            [
                ("users".to_owned(), "invalid value: integer `-1`, expected u32".to_owned()),
                (
                    "list.0.method".to_owned(),
                    "invalid type: integer `1`, expected a string".to_owned()
                ),
                (
                    "list.1.status.1".to_owned(),
                    "invalid type: string \"x\", expected u16".to_owned()
                ),
                (String::new(), "missing key `input`".to_owned()),
            ]
        );
        assert_eq!(check("users = 1"), vec![(String::new(), "missing key `input`".to_owned())]);
        assert!(check("input = 'a'\nusers = 2").is_empty());
    }
}
