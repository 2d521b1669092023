//! Why a backup.info could not be read, written or shown.
//!
//! The distinction that matters is Barman's: a key it does not know makes it print
//! [`CatalogError::UnsupportedField`]'s message and exit 1 at once, even in the middle of
//! `backup-list` (that path is a `SystemExit`, which the commands' `except Exception` does
//! not catch); any other defect is an ordinary exception, so `backup-list` skips that
//! backup with a warning and `backup-show` exits 4 (the front-end maps them so).
//! Messages are Python's exception texts where Barman would print them.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_keep_barmans_message_and_errors_their_source() {
        let e = CatalogError::UnsupportedField("new_key".into());
        assert_eq!(
            e.to_string(),
            "Unsupported field 'new_key' found in backup metadata. This indicates the backup \
             was created with a newer version of Barman. Please upgrade to a compatible or \
             newer version."
        );
        let other = CatalogError::InvalidLine("foo".into());
        assert_eq!(other.to_string(), "invalid line foo in file <UNKNOWN>");
        let wrapped = crate::Error::from(other);
        assert!(matches!(
            wrapped,
            crate::Error::Catalog(CatalogError::InvalidLine(_))
        ));
        assert_eq!(wrapped.to_string(), "invalid line foo in file <UNKNOWN>");
    }
}
