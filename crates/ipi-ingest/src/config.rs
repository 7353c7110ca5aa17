//! `IngestConfig`: the `ingest` step's table in a pipeline file, and the
//! `ipi-pipeline ingest` flags.

use serde::{Deserialize, Serialize};

use crate::parse::LineFormat;

/// Turn access logs into the `events` dataset.
///
/// ```toml
/// [steps.ingest]
/// uses   = "ingest"
/// inputs = ["s3://logs/access/2018-11-*/*.gz", "data/sample/access.log"]
/// format = "auto"
/// filter = { method = ["GET"], path_prefix = "/login_success", status = [200] }
/// output = "${params.store}/events"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Files, directories or globs, local or `s3://`; plain or gzip (detected
    /// from the bytes, multi-member gzip included).
    pub inputs: Vec<String>,
    /// The events dataset to write, partitioned `date=YYYY-MM-DD/` by UTC
    /// date. Rejected lines go to `<output>/_rejects/`.
    pub output: String,
    /// The line layout: `auto` (per line), `common`, `combined` or
    /// `vhost_combined`.
    #[serde(default)]
    pub format: FormatName,
    /// Keep only matching lines; the others are counted as filtered, not
    /// rejected.
    #[serde(default)]
    pub filter: Filter,
    /// Fail the step when more than this share of lines is rejected
    /// (0.0 to 1.0). The rejects are written either way.
    #[serde(default = "default_max_reject_ratio")]
    pub max_reject_ratio: f64,
    /// The optional event columns to fill: any of `method`, `path`,
    /// `protocol`, `bytes`, `referer`, `user_agent`, `vhost`,
    /// `forwarded_for`. The others are written as nulls, so the schema stays
    /// the same; `[]` keeps only what IP Insights needs (time, entity,
    /// address, status, source, line), which is smaller and faster to write.
    /// Default: all.
    #[serde(default = "all_optional_columns")]
    pub keep: Vec<String>,
    /// Lines per parallel chunk are cut at this many bytes (default 4 MiB).
    #[serde(default = "default_chunk_bytes")]
    pub chunk_bytes: usize,
}

impl IngestConfig {
    /// Checks serde cannot express, as (field, problem) pairs; empty when
    /// the config is usable.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.inputs.is_empty() {
            problems.push(("inputs", "at least one input is needed".to_owned()));
        }
        if !(0.0..=1.0).contains(&self.max_reject_ratio) {
            problems.push((
                "max_reject_ratio",
                format!("{} is outside 0.0 to 1.0", self.max_reject_ratio),
            ));
        }
        if let Err(name) = crate::batch::Keep::from_names(&self.keep) {
            problems.push((
                "keep",
                format!(
                    "unknown column `{name}`; expected some of {}",
                    OPTIONAL_COLUMNS.join(", ")
                ),
            ));
        }
        if self.chunk_bytes < 4096 {
            problems.push(("chunk_bytes", "must be at least 4096".to_owned()));
        }
        problems
    }

    /// A config with every optional setting at its default.
    pub fn default_for(inputs: &[String], output: &str) -> IngestConfig {
        IngestConfig {
            inputs: inputs.to_vec(),
            output: output.to_owned(),
            format: FormatName::default(),
            filter: Filter::default(),
            max_reject_ratio: default_max_reject_ratio(),
            keep: all_optional_columns(),
            chunk_bytes: default_chunk_bytes(),
        }
    }
}

/// The event columns `keep` can name.
pub const OPTIONAL_COLUMNS: [&str; 8] =
    ["method", "path", "protocol", "bytes", "referer", "user_agent", "vhost", "forwarded_for"];

fn all_optional_columns() -> Vec<String> {
    OPTIONAL_COLUMNS.map(String::from).to_vec()
}

fn default_max_reject_ratio() -> f64 {
    0.05
}

fn default_chunk_bytes() -> usize {
    4 << 20
}

/// The `format` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormatName {
    #[default]
    Auto,
    Common,
    Combined,
    VhostCombined,
}

impl From<FormatName> for LineFormat {
    fn from(name: FormatName) -> LineFormat {
        match name {
            FormatName::Auto => LineFormat::Auto,
            FormatName::Common => LineFormat::Common,
            FormatName::Combined => LineFormat::Combined,
            FormatName::VhostCombined => LineFormat::VhostCombined,
        }
    }
}

/// Which parsed lines become events; every part that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Request methods to keep, e.g. `["GET"]` (a single string works too).
    #[serde(default, deserialize_with = "one_or_many")]
    pub method: Vec<String>,
    /// Keep paths that start with this, e.g. `/login_success`.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Statuses to keep, e.g. `[200]`.
    #[serde(default)]
    pub status: Vec<u16>,
}

impl Filter {
    /// Whether the filter keeps every line.
    pub fn is_empty(&self) -> bool {
        self.method.is_empty() && self.path_prefix.is_none() && self.status.is_empty()
    }

    /// Whether the filter looks at the request line (method or path).
    pub fn needs_request(&self) -> bool {
        !self.method.is_empty() || self.path_prefix.is_some()
    }

    /// Whether a parsed line passes.
    pub fn keeps(&self, record: &crate::parse::Record<'_>) -> bool {
        (self.status.is_empty() || self.status.contains(&record.status))
            && (self.method.is_empty()
                || record.method.as_deref().is_some_and(|m| self.method.iter().any(|k| k == m)))
            && self.path_prefix.as_deref().is_none_or(|prefix| {
                record.path.as_deref().is_some_and(|path| path.starts_with(prefix))
            })
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}
