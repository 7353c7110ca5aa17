//! The one error type of this crate.

use std::fmt;

use datafusion::error::DataFusionError;

/// What can go wrong while opening tables, planning, running or writing a
/// query.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The SQL text is wrong: it does not parse, names an unknown table or
    /// column, or does not type-check. Carries the place in the text.
    #[error("{0}")]
    Sql(Box<SqlError>),
    /// A statement that writes (DDL, DML, `COPY`, `SET`) without
    /// `allow_write`.
    #[error(
        "{source_name}:{line}:{column}: {statement} is refused: queries are read-only unless --allow-write (allow_write = true) is given"
    )]
    ReadOnly {
        /// The file the statement is in, or `-e`.
        source_name: String,
        /// 1-based line of the statement's first token.
        line: u64,
        /// 1-based column of the statement's first token.
        column: u64,
        /// What kind of statement it is (`COPY`, `CREATE VIEW`, ...).
        statement: String,
    },
    /// A parameter is missing, unknown, or its value does not fit its type.
    #[error("{source_name}: parameter `{name}`: {message}")]
    Param {
        /// The file, or `-e`.
        source_name: String,
        /// The parameter's name, without `$`.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A table given by the caller (`--table NAME=URL`) has a bad name or
    /// is not a dataset.
    #[error("table `{name}`: {message}")]
    Table {
        /// The table's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// Reading the store failed.
    #[error(transparent)]
    Storage(#[from] ipi_storage::Error),
    /// DataFusion failed while running a query (not a mistake in the text).
    #[error("{context}: {source}")]
    Execution {
        /// What was being done (`running sql/daily_flagged.sql`).
        context: String,
        /// The cause.
        #[source]
        source: Box<DataFusionError>,
    },
    /// Writing the result failed.
    #[error("writing {target}: {message}")]
    Output {
        /// Where it was going (a URL or `stdout`).
        target: String,
        /// What failed.
        message: String,
    },
    /// Broken pipes and other local I/O, kept as `std::io::Error` so the
    /// binary can tell a closed pipe (`| head`) from a failure.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Bad settings (an empty query list, an unknown format).
    #[error("{0}")]
    Config(String),
    /// A bug: DataFusion panicked on this query.
    #[error("internal error (please report it with the query): {0}")]
    Internal(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A mistake in SQL text, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// The file the text came from, or `-e`.
    pub source_name: String,
    /// 1-based line and column, when known.
    pub position: Option<(u64, u64)>,
    /// What is wrong, without DataFusion's prefixes.
    pub message: String,
    /// The offending line of the text with a caret under the column.
    pub snippet: Option<String>,
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, column)) => {
                write!(f, "{}:{line}:{column}: {}", self.source_name, self.message)?
            }
            None => write!(f, "{}: {}", self.source_name, self.message)?,
        }
        if let Some(snippet) = &self.snippet {
            write!(f, "\n{snippet}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SqlError {}

impl Error {
    /// An execution error with what was being done.
    pub(crate) fn execution(context: impl Into<String>, source: DataFusionError) -> Error {
        // A failure to read the store surfaces inside DataFusion's error;
        // an I/O error (a closed pipe) keeps its kind.
        Error::Execution { context: context.into(), source: Box::new(source) }
    }

    /// The position a SQL error points at, if this is one.
    pub fn sql_position(&self) -> Option<(u64, u64)> {
        match self {
            Error::Sql(e) => e.position,
            Error::ReadOnly { line, column, .. } => Some((*line, *column)),
            _ => None,
        }
    }
}
