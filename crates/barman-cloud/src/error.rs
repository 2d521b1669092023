//! The library's error type: variants say what happened; they know nothing of exit codes.
//! Each front-end maps them to its own codes in one place (the cloud commands: the CLI's
//! `exit` module, with Barman's 0 ok, 1 operation failed, 2 network, 3 bad input, 4 other).

use std::path::PathBuf;

use crate::catalog::CatalogError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input we refuse: a bad WAL name, a bad option value.
    #[error("{0}")]
    InvalidInput(String),

    /// Settings that cannot work: options that exclude each other, credentials or a client
    /// that cannot be set up, a recovery target that cannot be read.
    #[error("{0}")]
    Config(String),

    /// What barman-rs does not do (yet), or what this build cannot do.
    #[error("{0}")]
    Unsupported(String),

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

    /// The storage could not be reached (refused, reset, timed out).
    #[error("Can't connect to cloud provider: {0}")]
    Connectivity(String),

    /// The wal-restore spool directory could not be used.
    #[error("{0}")]
    Spool(String),

    /// An object that is not there.
    #[error("object {0} not found")]
    NotFound(String),

    /// The backup or WAL file asked for does not exist, or no backup fits a recovery
    /// target (the message says which).
    #[error("{0}")]
    Missing(String),

    /// No backup, or more than one, matches a name or shortcut.
    #[error("{0}")]
    UnknownBackup(String),

    /// A rule says no: a kept backup, the minimum redundancy, a status other than DONE, a
    /// destination that is not empty, content that is not what its name says.
    #[error("{0}")]
    Refused(String),

    /// A backup's data is damaged or incomplete.
    #[error("{0}")]
    Corrupt(String),

    /// A backup.info barman-rs could not read or write; its source says why.
    #[error(transparent)]
    Catalog(#[from] CatalogError),

    /// The catalog as a whole does not allow the operation (a DONE backup without end
    /// time, a WAL bound without begin WAL).
    #[error("{0}")]
    BadCatalog(String),

    /// A write or create-only write met an object already there.
    #[error("{0}")]
    Conflict(String),

    /// An operation that was under way failed (an upload, a deletion, a task).
    #[error("{0}")]
    Failed(String),

    /// A `barman` server's retry hook script asked to stop (exit code 63): Barman's
    /// `AbortedRetryHookScript`, its text.
    #[error("{0}")]
    RetryHookStop(String),

    /// A compute provider (EC2, Compute Engine, Azure Compute) answered with an error, or
    /// its resources do not allow the operation: no such instance, a disk not attached or
    /// not mounted, a snapshot that is not the backup's.
    #[error("{0}")]
    Provider(String),

    /// A snapshot lock forbids deleting the snapshot now.
    #[error("{0}")]
    SnapshotLocked(String),

    /// PostgreSQL refused or lost the session, or a query failed.
    #[error("{0}")]
    Postgres(String),

    /// The storage answered with an error.
    #[error("cloud storage error: {0}")]
    Storage(String),

    #[error("compression error ({codec}): {source}")]
    Compression {
        codec: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// `source`, said of what `context` names (an object, a file).
    #[error("{context}: {source}")]
    Context {
        context: String,
        #[source]
        source: Box<Error>,
    },

    /// A Barman hook script refusing work that retrying cannot change (a backup that is
    /// not DONE): Barman stops retrying the hook on this exit code (63).
    #[error("{0}")]
    HookAbort(String),
}

impl Error {
    /// The error below any [`Error::Context`] wrappers: what happened.
    pub fn root(&self) -> &Error {
        match self {
            Error::Context { source, .. } => source.root(),
            other => other,
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
