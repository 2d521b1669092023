//! Why a backup.info could not be read, written or shown.
//!
//! The distinction that matters is Barman's: a key it does not know makes it print
//! [`CatalogError::UnsupportedField`]'s message and exit 1 at once, even in the middle of
//! `backup-list` (that path is a `SystemExit`, which the commands' `except Exception` does
//! not catch); any other defect is an ordinary exception, so `backup-list` skips that
//! backup with a warning and `backup-show` exits 4. [`CatalogError::kind`] gives that
//! classification. Messages are Python's exception texts where Barman would print them.

use crate::error::{Error, ErrorKind};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CatalogError {
    /// A key that is not a backup.info field.
    #[error(
        "Unsupported field '{0}' found in backup metadata. This indicates the backup was \
         created with a newer version of Barman. Please upgrade to a compatible or newer \
         version."
    )]
    UnsupportedField(String),

    /// A non-blank, non-comment line without `=` (Barman cannot name the file when it
    /// reads from object storage, hence `<UNKNOWN>`).
    #[error("invalid line {0} in file <UNKNOWN>")]
    InvalidLine(String),

    /// The file is not UTF-8.
    #[error("{0}")]
    Encoding(String),

    /// A field value its loader refuses.
    #[error("{message}")]
    InvalidValue {
        field: &'static str,
        message: String,
    },

    /// A value that would make the written file unreadable (a line break in a plain-text
    /// field); Barman would write it and corrupt the file, we refuse.
    #[error("cannot write backup.info: field {field} contains a line break")]
    Unwritable { field: &'static str },

    /// The data cannot be shown the way Barman shows it (where Barman's rendering raises).
    #[error("{0}")]
    Render(String),
}

impl CatalogError {
    /// The exit class: 1 for an unknown key (Barman's `close_and_exit`), 4 otherwise.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CatalogError::UnsupportedField(_) => ErrorKind::Operation,
            _ => ErrorKind::General,
        }
    }
}

impl From<CatalogError> for Error {
    fn from(e: CatalogError) -> Self {
        match e.kind() {
            ErrorKind::Operation => Error::Operation(e.to_string()),
            _ => Error::Config(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_exit_1_with_barmans_message() {
        let e = CatalogError::UnsupportedField("new_key".into());
        assert_eq!(
            e.to_string(),
            "Unsupported field 'new_key' found in backup metadata. This indicates the backup \
             was created with a newer version of Barman. Please upgrade to a compatible or \
             newer version."
        );
        assert_eq!(Error::from(e).kind(), ErrorKind::Operation);
        let other = CatalogError::InvalidLine("foo".into());
        assert_eq!(other.to_string(), "invalid line foo in file <UNKNOWN>");
        assert_eq!(Error::from(other).kind(), ErrorKind::General);
    }
}
