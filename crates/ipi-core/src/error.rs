//! Errors that say where.
//!
//! A message like "invalid status" is useless on a year of logs; "step
//! `ingest`: s3://logs/2018/access.log.gz:81723: field `status`: `2O0` is not
//! a number" is what an operator needs. [`Where`] carries that position and
//! every ipi crate attaches one to its errors.

use std::fmt;

/// A position in ipi's world: which step, which object, which line, which
/// field. Every part is optional; `Display` prints the parts that are set,
/// most general first.
///
/// URLs must never carry credentials: object URLs in ipi are
/// `s3://bucket/key`, with credentials only in the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Where {
    /// The pipeline step, e.g. `ingest`.
    pub step: Option<String>,
    /// The file or object, as a URL or path.
    pub url: Option<String>,
    /// The 1-based line number within `url`.
    pub line: Option<u64>,
    /// The field or column within the line.
    pub field: Option<String>,
}

impl Where {
    /// A position in the object at `url`.
    pub fn url(url: impl Into<String>) -> Where {
        Where { url: Some(url.into()), ..Where::default() }
    }

    /// The same position, at a line.
    pub fn line(mut self, line: u64) -> Where {
        self.line = Some(line);
        self
    }

    /// The same position, at a field.
    pub fn field(mut self, field: impl Into<String>) -> Where {
        self.field = Some(field.into());
        self
    }

    /// The same position, within a step.
    pub fn step(mut self, step: impl Into<String>) -> Where {
        self.step = Some(step.into());
        self
    }
}

impl fmt::Display for Where {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(step) = &self.step {
            write!(f, "step `{step}`")?;
            sep = ": ";
        }
        if let Some(url) = &self.url {
            write!(f, "{sep}{url}")?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
            sep = ": ";
        } else if let Some(line) = self.line {
            write!(f, "{sep}line {line}")?;
            sep = ": ";
        }
        if let Some(field) = &self.field {
            write!(f, "{sep}field `{field}`")?;
        }
        Ok(())
    }
}

/// The error type of `ipi-core`, and the shape the other crates follow.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A record that cannot be used as it is.
    #[error("{at}: {reason}")]
    InvalidRecord { at: Where, reason: String },
    /// A value outside what a setting allows.
    #[error("{at}: {reason}")]
    InvalidValue { at: Where, reason: String },
    /// A dataset whose schema is not the one expected.
    #[error("{at}: schema mismatch: {reason}")]
    Schema { at: Where, reason: String },
}

/// `Result` with [`Error`] as its default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_prints_most_general_first() {
        let at = Where::url("s3://logs/a.log.gz").line(81723).field("status").step("ingest");
        assert_eq!(at.to_string(), "step `ingest`: s3://logs/a.log.gz:81723: field `status`");
        assert_eq!(Where::default().line(3).to_string(), "line 3");
        let err = Error::InvalidRecord { at, reason: "`2O0` is not a number".into() };
        assert_eq!(
            err.to_string(),
            "step `ingest`: s3://logs/a.log.gz:81723: field `status`: `2O0` is not a number"
        );
    }
}
