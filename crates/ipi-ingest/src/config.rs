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
    /// The input layout: access logs as `auto` (decided per line),
    /// `common`, `combined` or `vhost_combined`; or tables as
    /// `sagemaker_csv` (SageMaker's `entity,ip` training CSV, no header) or
    /// `csv` (a header names the columns; see the `table` module), or
    /// `parquet` (the same column names; see the `parquet_input` module).
    #[serde(default)]
    pub format: FormatName,
    /// The time of every event of a table input that has no time column,
    /// as RFC 3339 (`2018-11-12T00:00:00Z`). Required for `sagemaker_csv`.
    #[serde(default)]
    pub default_timestamp: Option<String>,
    /// Where the entity comes from: the authenticated-user field (`%u`,
    /// the default), a query-string parameter, or a regex capture on the
    /// path, for sites that don't log the user:
    ///
    /// ```toml
    /// entity = { from = "user" }
    /// entity = { from = "query_param", name = "userId" }
    /// entity = { from = "path_regex", pattern = "^/accounts/([^/]+)/login" }
    /// ```
    #[serde(default)]
    pub entity: EntitySource,
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
    /// Lines per parallel chunk are cut at this many bytes. Each chunk makes
    /// one batch per UTC day it holds, so larger chunks hand the writer
    /// fewer, longer batches, and hold more memory. Default: 16 MiB for a
    /// memory-mapped file, 4 MiB for a stream (gzip, `s3://`, `mmap =
    /// false`), whose chunks are buffers of ours (see
    /// [`crate::source::chunks`]).
    #[serde(default)]
    pub chunk_bytes: Option<usize>,
    /// Memory-map local plain files instead of reading them (default
    /// true): faster, but a file truncated while it is read (a log rotated
    /// with `copytruncate` during the ingest) kills the process with SIGBUS.
    /// Nothing is committed then, and a re-run is clean.
    #[serde(default = "default_mmap")]
    pub mmap: bool,
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
        if let EntitySource::PathRegex { pattern } = &self.entity {
            match regex::Regex::new(pattern) {
                Ok(re) if re.captures_len() < 2 => problems.push((
                    "entity",
                    format!("the pattern `{pattern}` has no capture group to take the entity from"),
                )),
                Ok(_) => {}
                Err(e) => problems.push(("entity", format!("invalid regex: {e}"))),
            }
        }
        match (&self.default_timestamp, self.format) {
            (Some(text), _) if crate::table::parse_instant(text).is_none() => problems.push((
                "default_timestamp",
                format!("`{text}` is not an RFC 3339 time with an offset, e.g. 2018-11-12T00:00:00Z"),
            )),
            (None, FormatName::SagemakerCsv) => problems.push((
                "default_timestamp",
                "SageMaker's CSV has no times: set default_timestamp (e.g. the day the file covers)"
                    .to_owned(),
            )),
            _ => {}
        }
        if self.format.line_format().is_none() && self.filter.needs_request() {
            problems.push((
                "filter",
                "tables have no request line: filter on method or path_prefix only for access logs"
                    .to_owned(),
            ));
        }
        if self.chunk_bytes.is_some_and(|bytes| bytes < 4096) {
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
            default_timestamp: None,
            entity: EntitySource::default(),
            filter: Filter::default(),
            max_reject_ratio: default_max_reject_ratio(),
            keep: all_optional_columns(),
            chunk_bytes: None,
            mmap: default_mmap(),
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

fn default_mmap() -> bool {
    true
}

/// Where the entity of an event comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case", deny_unknown_fields)]
pub enum EntitySource {
    /// The authenticated-user field, `%u`; `-` means none.
    #[default]
    User,
    /// A parameter of the request's query string, percent-decoded.
    QueryParam {
        /// The parameter's name, e.g. `userId`.
        name: String,
    },
    /// The first capture group of a regex matched against the path
    /// (query string included).
    PathRegex {
        /// The regex, e.g. `^/accounts/([^/]+)/`.
        pattern: String,
    },
}

/// The `format` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum), value(rename_all = "snake_case"))]
pub enum FormatName {
    #[default]
    Auto,
    Common,
    Combined,
    VhostCombined,
    SagemakerCsv,
    Csv,
    Parquet,
}

impl FormatName {
    /// The access-log layout, or `None` for a table format.
    pub fn line_format(self) -> Option<LineFormat> {
        match self {
            FormatName::Auto => Some(LineFormat::Auto),
            FormatName::Common => Some(LineFormat::Common),
            FormatName::Combined => Some(LineFormat::Combined),
            FormatName::VhostCombined => Some(LineFormat::VhostCombined),
            FormatName::SagemakerCsv | FormatName::Csv | FormatName::Parquet => None,
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
        (self.status.is_empty() || record.status.is_some_and(|s| self.status.contains(&s)))
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
