//! Errors of training, scoring and checkpoint I/O.

/// What went wrong, and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Hyperparameters outside SageMaker's ranges; every problem is named.
    #[error("invalid hyperparameters: {0}")]
    Hyperparameters(String),
    /// Training data that cannot be used, with the URL (and line or column).
    #[error("{0}")]
    Data(String),
    /// A checkpoint that is missing, damaged or made by an incompatible version.
    #[error("model {url}: {message}")]
    Checkpoint {
        /// The model's URL.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// A tensor operation failed (a device error, usually).
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// Reading or writing storage failed.
    #[error(transparent)]
    Storage(#[from] ipi_storage::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
