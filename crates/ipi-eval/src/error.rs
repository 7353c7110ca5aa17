//! The errors of evaluation and tuning.

/// What went wrong, and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value that cannot be used; the field is named.
    #[error("{field}: {message}")]
    Config {
        /// The field (`target_fpr`, `gate.min_auc`, ...).
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// Input data that cannot be evaluated on, with its URL.
    #[error("{url}: {reason}")]
    Input {
        /// The dataset's URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Loading, training or running the model failed.
    #[error(transparent)]
    Model(#[from] ipi_model::Error),
    /// Reading or writing storage failed.
    #[error(transparent)]
    Storage(#[from] ipi_storage::Error),
    /// Drawing a plot failed.
    #[error("plot `{plot}`: {message}")]
    Plot {
        /// The plot's name.
        plot: &'static str,
        /// What went wrong.
        message: String,
    },
    /// A worker thread stopped unexpectedly.
    #[error("a worker failed: {0}")]
    Task(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
