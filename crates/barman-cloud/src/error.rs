//! The library's error type.
//!
//! Every failure carries an [`ErrorKind`] because the command front-ends must turn it into
//! Barman's exit codes (0 ok, 1 operation failed, 2 network, 3 bad input, 4 other); the
//! mapping from kind to code lives in one place, the CLI's `exit` module.

use std::path::PathBuf;

/// How a failure is reported to the caller, mirroring Barman's exit classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The storage was reachable but the operation failed (object missing, conflict...).
    Operation,
    /// The storage could not be reached.
    Network,
    /// The user gave input we refuse (bad WAL name, bad option value).
    Input,
    /// Anything else: configuration cross-checks, bad URL, unexpected provider errors.
    General,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidInput(String),

    #[error("{0}")]
    Config(String),

    #[error("invalid URL '{url}': {reason}")]
    InvalidUrl { url: String, reason: String },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("Bucket {0} does not exist")]
    BucketMissing(String),

    #[error("Can't connect to cloud provider: {0}")]
    Connectivity(String),

    /// The wal-restore spool directory could not be used (Barman exits 2 for this).
    #[error("{0}")]
    Spool(String),

    #[error("object {0} not found")]
    NotFound(String),

    #[error("{0}")]
    Conflict(String),

    #[error("{0}")]
    Operation(String),

    /// PostgreSQL refused or lost the session, or a query failed.
    #[error("{0}")]
    Postgres(String),

    #[error("cloud storage error: {0}")]
    Storage(String),

    #[error("compression error ({codec}): {source}")]
    Compression {
        codec: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// `source`, said of what `context` names (an object, a file); same kind as `source`.
    #[error("{context}: {source}")]
    Context {
        context: String,
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Context { source, .. } => source.kind(),
            Error::InvalidInput(_) => ErrorKind::Input,
            Error::Connectivity(_) | Error::Spool(_) => ErrorKind::Network,
            Error::BucketMissing(_)
            | Error::NotFound(_)
            | Error::Conflict(_)
            | Error::Operation(_)
            | Error::Postgres(_) => ErrorKind::Operation,
            Error::Config(_)
            | Error::InvalidUrl { .. }
            | Error::Io { .. }
            | Error::Storage(_)
            | Error::Compression { .. } => ErrorKind::General,
        }
    }

    /// `self`, said of what `context` names.
    pub fn context(self, context: impl Into<String>) -> Self {
        Error::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
