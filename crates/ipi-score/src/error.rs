//! The errors of scoring.

/// What went wrong while scoring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request body's `Content-Type` is not one IP Insights reads.
    #[error(
        "unsupported content type {0:?}: use text/csv, application/json or application/jsonlines"
    )]
    UnsupportedContentType(String),
    /// An `Accept` value names no response format IP Insights writes.
    #[error(
        "unsupported accept {0:?}: use application/json or application/jsonlines (optionally `; verbose=True`)"
    )]
    UnsupportedAccept(String),
    /// A request body that cannot be read at all, or a pair that cannot be
    /// scored (in the endpoint, where nothing is rejected quietly).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// An input that is not scoreable (no `entity` column, say).
    #[error("{url}: {reason}")]
    Input {
        /// The input's URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The model could not be loaded or run.
    #[error(transparent)]
    Model(#[from] ipi_model::Error),
    /// Reading or writing storage failed.
    #[error(transparent)]
    Storage(#[from] ipi_storage::Error),
    /// An Arrow kernel failed (a cast, usually).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// The endpoint could not listen on its address, or stopped serving.
    #[error("cannot serve on {address}: {source}")]
    Listen {
        /// The address (`127.0.0.1:8080`).
        address: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// A scoring task stopped unexpectedly.
    #[error("a scoring task failed: {0}")]
    Task(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
