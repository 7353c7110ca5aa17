//! The one error type of this crate.
//!
//! Every variant says *where* it happened: the URL of the object or dataset
//! (in the form [`Location`](crate::Location) displays, which never holds a
//! credential) or the input that could not be parsed. The underlying error
//! is kept as the [`source`](std::error::Error::source), not repeated in the
//! message, so `{:#}` in anyhow prints each cause once.

/// A `Result` whose error defaults to this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `ipi-storage`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A string is not a path, `file://`, `s3://` or `memory://` URL we
    /// accept.
    #[error("invalid location {input:?}: {reason}")]
    InvalidLocation {
        /// The input, with any user information (credentials) removed.
        input: String,
        /// Why it was refused.
        reason: String,
    },

    /// A glob pattern did not compile.
    #[error("invalid glob pattern {pattern:?}")]
    InvalidGlob {
        /// The pattern as given.
        pattern: String,
        /// What globset said.
        source: globset::Error,
    },

    /// A request to the object store failed (after object_store's own
    /// retries of transient errors).
    #[error("storage request failed for {url}")]
    ObjectStore {
        /// The object or prefix the request was about.
        url: String,
        /// The store's error.
        source: object_store::Error,
    },

    /// Encoding or decoding Parquet failed.
    #[error("Parquet error in {url}")]
    Parquet {
        /// The Parquet object.
        url: String,
        /// The Parquet (or Arrow) error.
        source: parquet::errors::ParquetError,
    },

    /// A projection asked for a column the file does not have.
    #[error("{url} has no column named {column:?}")]
    ColumnNotFound {
        /// The Parquet object.
        url: String,
        /// The missing column.
        column: String,
    },

    /// The prefix holds no `_ipi_dataset.json` (nor, for
    /// [`Dataset::open_or_glob`](crate::Dataset::open_or_glob), any Parquet
    /// file).
    #[error("{url} is not an ipi dataset (no _ipi_dataset.json)")]
    NotADataset {
        /// The dataset root.
        url: String,
    },

    /// A dataset manifest could not be read, or is of a format or version we
    /// do not understand.
    #[error("invalid dataset manifest {url}: {reason}")]
    Manifest {
        /// The manifest object.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A partition name is not a relative, visible path.
    #[error("invalid partition {partition:?} in {url}: {reason}")]
    InvalidPartition {
        /// The dataset root.
        url: String,
        /// The partition as given.
        partition: String,
        /// Why it was refused.
        reason: String,
    },

    /// An append or partition replace would mix two schemas in one dataset.
    #[error("schema mismatch in {url}: {reason}")]
    SchemaMismatch {
        /// The dataset root.
        url: String,
        /// Which fields differ.
        reason: String,
    },

    /// Another writer committed the dataset concurrently; nothing of this
    /// transaction was published.
    #[error("commit conflict on {url}: {reason}")]
    Conflict {
        /// The dataset root.
        url: String,
        /// What the other writer did.
        reason: String,
    },

    /// A [`DatasetWriter`](crate::DatasetWriter) cannot go on: writing one of
    /// its partitions failed (that error was returned once, by a `write` or
    /// by `close_files`/`commit`), or a partition's task ended abnormally.
    /// Nothing of the transaction is published.
    #[error("dataset writer for {url} failed: {reason}")]
    WriterFailed {
        /// The dataset root, or the partition whose task failed.
        url: String,
        /// The error that stopped it, with its causes.
        reason: String,
    },
}

impl Error {
    /// True when the error is an object that does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::ObjectStore { source: object_store::Error::NotFound { .. }, .. })
    }

    /// True when `error` means "nothing there": not found, or (on local disk)
    /// a path that runs through a file as if it were a directory.
    pub(crate) fn is_missing(error: &object_store::Error) -> bool {
        if matches!(error, object_store::Error::NotFound { .. }) {
            return true;
        }
        let mut cause: Option<&(dyn std::error::Error + 'static)> =
            std::error::Error::source(error);
        while let Some(e) = cause {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                return io.kind() == std::io::ErrorKind::NotADirectory;
            }
            cause = e.source();
        }
        false
    }

    pub(crate) fn store(url: impl ToString, source: object_store::Error) -> Self {
        Error::ObjectStore { url: url.to_string(), source }
    }

    pub(crate) fn parquet(url: impl ToString, source: parquet::errors::ParquetError) -> Self {
        Error::Parquet { url: url.to_string(), source }
    }
}
