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

/// `error` and its sources on one line, joined with ": ". Line breaks become spaces, and a
/// source whose text is already part of an earlier one is left out: many errors (object_store's,
/// tokio-postgres's) repeat their source in their own message.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut said: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(current) = next {
        let text = current.to_string().replace('\n', " ");
        if said.iter().all(|earlier| !earlier.contains(&text)) {
            said.push(text);
        }
        next = current.source();
    }
    said.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with a message and an optional source.
    #[derive(Debug)]
    struct Chained(&'static str, Option<Box<Chained>>);

    impl std::fmt::Display for Chained {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Chained {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    fn chain(texts: &[&'static str]) -> Chained {
        let (last, rest) = texts.split_last().expect("at least one");
        rest.iter().rev().fold(Chained(last, None), |source, text| {
            Chained(text, Some(Box::new(source)))
        })
    }

    #[test]
    fn error_chain_joins_sources_once_on_one_line() {
        assert_eq!(error_chain(&chain(&["alone"])), "alone");
        assert_eq!(
            error_chain(&chain(&["request failed", "timed out", "os error 110"])),
            "request failed: timed out: os error 110"
        );
        // A source already said by an earlier message is not repeated.
        assert_eq!(
            error_chain(&chain(&["error connecting: refused", "refused", "inner"])),
            "error connecting: refused: inner"
        );
        assert_eq!(
            error_chain(&chain(&["first\nline", "second"])),
            "first line: second"
        );
        let io = Error::io("/x", std::io::Error::other("denied"));
        assert_eq!(error_chain(&io), "/x: denied");
    }
}
