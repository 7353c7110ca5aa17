//! Errors of the split step; each names the setting, file or object it
//! concerns.

/// What can stop a split.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot be used as it is (`field: why`).
    #[error("invalid split configuration: {0}")]
    Config(String),
    /// The input cannot be split as it is: no usable files, a missing
    /// column, naive times without `assume_timezone`.
    #[error("input {url}: {reason}")]
    Input { url: String, reason: String },
    /// The store refused a read or a write.
    #[error("{context}: {source}")]
    Storage { context: String, source: ipi_storage::Error },
    /// polars could not read, filter or write the data.
    #[error("{context}: {source}")]
    Polars { context: String, source: polars::error::PolarsError },
    /// A local file could not be written or renamed.
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// The windows overlap in time. Should be impossible: it is a bug.
    #[error("leakage check failed: {0}")]
    Leakage(String),
    /// A bug: a worker panicked or a value could not be encoded.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn storage(context: impl std::fmt::Display, source: ipi_storage::Error) -> Error {
        Error::Storage { context: context.to_string(), source }
    }

    pub(crate) fn input(url: impl std::fmt::Display, reason: impl Into<String>) -> Error {
        Error::Input { url: url.to_string(), reason: reason.into() }
    }

    pub(crate) fn polars(
        context: impl std::fmt::Display,
    ) -> impl FnOnce(polars::error::PolarsError) -> Error {
        let context = context.to_string();
        move |source| Error::Polars { context, source }
    }

    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.display().to_string();
        move |source| Error::Io { path, source }
    }
}

/// `Result` with the split [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
