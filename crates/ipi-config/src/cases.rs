//! `[[tests]]`: unit tests that a pipeline file carries for its own steps,
//! in the manner of Vector's `tests` (run by `ipi-pipeline test FILE`).
//!
//! ```toml
//! [[tests]]
//! name = "ingest keeps successful logins only"
//! step = "ingest"
//! input = { lines = [
//!   '10.0.0.1 - user_1 [12/Nov/2018:10:00:00 +0000] "GET /login_success HTTP/1.1" 200 12',
//! ] }
//! expect = { metrics = { rows = 1 }, rows = [{ entity = "user_1", ip = "10.0.0.1" }] }
//! ```
//!
//! This crate checks a test's shape and that its step exists; the binary
//! runs it.

use serde::Deserialize;

/// One `[[tests]]` entry.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TestCase {
    /// `name`: what the test shows, unique in the file.
    pub name: String,
    /// `step`: the step under test.
    pub step: String,
    /// `input`: what the step reads instead of its own input, if any.
    pub input: Option<TestInput>,
    /// `with`: step keys to use instead of the step's own (params
    /// substituted). Steps' outputs are not known in a test, so every key
    /// that refers to one and is not the test input must be given here.
    pub with: toml::Table,
    /// `expect`: what must come out.
    pub expect: TestExpect,
    /// 1-based line of the `[[tests]]` header.
    pub line: usize,
}

/// A test's input: written to a file in a fresh directory, whose path
/// replaces the step's input key.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TestInput {
    /// The step key to point at the input (default: the step's first
    /// input, e.g. `inputs` of `ingest`, `input` of `split`).
    pub key: Option<String>,
    /// The input file's name (default `input.log` for lines, `input.csv`
    /// for rows); its extension tells some steps how to read it.
    pub file: Option<String>,
    /// The content.
    pub data: TestData,
}

/// What a test input holds.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum TestData {
    /// Lines of text, each written with a trailing newline.
    Lines(Vec<String>),
    /// Rows, written as CSV with a header of every key in order of first
    /// appearance (an empty cell where a row lacks one).
    Rows(Vec<toml::Table>),
}

/// What a test expects.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct TestExpect {
    /// The step fails, with an error whose text holds this.
    pub error: Option<String>,
    /// The output key whose dataset `rows` and `num_rows` are about
    /// (default: the step's first output).
    pub output: Option<String>,
    /// Metrics the step reports, each equal to this.
    pub metrics: toml::Table,
    /// The output's rows, in order: as many as listed, each with these
    /// column values (columns not listed are not compared; values compare
    /// as text, `"null"` for a null).
    pub rows: Option<Vec<toml::Table>>,
    /// How many rows the output has.
    pub num_rows: Option<u64>,
}

/// The shape serde checks (unknown keys, types), with positions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestSpec {
    pub(crate) name: String,
    pub(crate) step: String,
    #[serde(default)]
    pub(crate) input: Option<InputSpec>,
    #[serde(default)]
    pub(crate) with: toml::Table,
    pub(crate) expect: ExpectSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InputSpec {
    #[serde(default)]
    pub(crate) key: Option<String>,
    #[serde(default)]
    pub(crate) file: Option<String>,
    #[serde(default)]
    pub(crate) lines: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) rows: Option<Vec<toml::Table>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExpectSpec {
    #[serde(default)]
    pub(crate) error: Option<String>,
    #[serde(default)]
    pub(crate) output: Option<String>,
    #[serde(default)]
    pub(crate) metrics: Option<toml::Table>,
    #[serde(default)]
    pub(crate) rows: Option<Vec<toml::Table>>,
    #[serde(default)]
    pub(crate) num_rows: Option<u64>,
}

impl TestSpec {
    /// Problems serde cannot see, as `(key path, message)`.
    pub(crate) fn problems(&self) -> Vec<(Vec<String>, String)> {
        let mut out = Vec::new();
        let path = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        if self.name.trim().is_empty() {
            out.push((path(&["name"]), "`name` must not be empty".to_owned()));
        }
        if let Some(input) = &self.input {
            match (&input.lines, &input.rows) {
                (Some(_), Some(_)) => out.push((
                    path(&["input"]),
                    "give either `lines` or `rows` in `input`, not both".to_owned(),
                )),
                (None, None) => out.push((
                    path(&["input"]),
                    "`input` needs `lines = [...]` or `rows = [{ ... }]`".to_owned(),
                )),
                _ => {}
            }
            if let Some(file) = &input.file
                && (file.is_empty() || file.contains(['/', '\\']) || file.starts_with('.'))
            {
                out.push((
                    path(&["input", "file"]),
                    "`file` must be a plain file name such as access.log".to_owned(),
                ));
            }
        }
        let e = &self.expect;
        if e.error.is_none() && e.metrics.is_none() && e.rows.is_none() && e.num_rows.is_none() {
            out.push((
                path(&["expect"]),
                "`expect` needs at least one of error, metrics, rows, num_rows".to_owned(),
            ));
        }
        if e.error.is_some() && (e.metrics.is_some() || e.rows.is_some() || e.num_rows.is_some()) {
            out.push((
                path(&["expect", "error"]),
                "a test that expects an error cannot also expect metrics or rows".to_owned(),
            ));
        }
        out
    }

    pub(crate) fn into_case(self, with: toml::Table, line: usize) -> TestCase {
        let input = self.input.map(|i| TestInput {
            key: i.key,
            file: i.file,
            data: match (i.lines, i.rows) {
                (Some(lines), _) => TestData::Lines(lines),
                (None, rows) => TestData::Rows(rows.unwrap_or_default()),
            },
        });
        TestCase {
            name: self.name,
            step: self.step,
            input,
            with,
            expect: TestExpect {
                error: self.expect.error,
                output: self.expect.output,
                metrics: self.expect.metrics.unwrap_or_default(),
                rows: self.expect.rows,
                num_rows: self.expect.num_rows,
            },
            line,
        }
    }
}
