//! Errors of the ingest step; each names the input or output it concerns.

/// What can stop an ingest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot be used as it is.
    #[error("invalid ingest configuration: {0}")]
    Config(String),
    /// An input pattern matched nothing.
    #[error("no input matches `{input}`")]
    NoInput { input: String },
    /// An input could not be read (or decompressed).
    #[error("{url}: {source}")]
    Read { url: String, source: std::io::Error },
    /// The store refused a read or a write.
    #[error("{context}: {source}")]
    Storage { context: String, source: ipi_storage::Error },
    /// More lines were rejected than `max_reject_ratio` allows.
    #[error(
        "{rejected} of {lines} lines rejected ({:.2}%), over the limit of {:.2}%; top reasons: {top_reasons}; every rejected line is in {rejects_url}",
        100.0 * *rejected as f64 / (*lines).max(1) as f64,
        100.0 * max_ratio
    )]
    TooManyRejects {
        rejected: u64,
        lines: u64,
        max_ratio: f64,
        top_reasons: String,
        rejects_url: String,
    },
    /// A bug: a task panicked or a value could not be encoded.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn storage(context: &str, source: ipi_storage::Error) -> Error {
        Error::Storage { context: context.to_owned(), source }
    }
}

/// `Result` with the ingest [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
