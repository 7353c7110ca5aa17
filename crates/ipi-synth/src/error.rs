//! Errors of the synth step; each names the file, object or setting it
//! concerns.

/// What can stop a synth run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot be used as it is.
    #[error("invalid synth configuration: {0}")]
    Config(String),
    /// The ip2asn file could not be read or decompressed.
    #[error("{url}: {source}")]
    Read { url: String, source: std::io::Error },
    /// A row of the ip2asn file is malformed (`line` 0: the file as a whole).
    #[error("{url}:{line}: {reason}")]
    AsnFile { url: String, line: u64, reason: String },
    /// The store refused a read or a write.
    #[error("{context}: {source}")]
    Storage { context: String, source: ipi_storage::Error },
    /// An object could not be written.
    #[error("{url}: {source}")]
    Write { url: String, source: std::io::Error },
    /// A bug: a worker panicked or a value could not be encoded.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn storage(context: impl std::fmt::Display, source: ipi_storage::Error) -> Error {
        Error::Storage { context: context.to_string(), source }
    }
}

/// `Result` with the synth [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
