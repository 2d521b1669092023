//! Keep annotations (`<server>/base/<id>/annotations/keep`, Barman's `barman/annotations.py`
//! `AnnotationManagerCloud._get_annotation_path`) as the catalog reads them
//! (`KeepManagerMixinCloud.get_keep_target`).

use std::collections::BTreeMap;

use super::error::CatalogError;

/// The keep target Barman reads from an annotation object: its first line *including* the
/// line break if there is one (Python's `readline()`), decoded as UTF-8. So a hand-made
/// `full\n` annotation is the target `"full\n"`, which Barman prints as is (breaking the
/// backup-list line) and does not treat as `full`; an empty object is the empty target,
/// which blocks `backup-delete -b` yet shows no keep status.
pub fn keep_target_from_annotation(content: &[u8]) -> Result<String, CatalogError> {
    let first_line = match content.iter().position(|b| *b == b'\n') {
        Some(i) => &content[..=i],
        None => content,
    };
    String::from_utf8(first_line.to_vec()).map_err(|e| {
        CatalogError::Encoding(format!(
            "'utf-8' codec can't decode the keep annotation: {e}"
        ))
    })
}

/// What a keep annotation makes retention do with its backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// `full`, and any other non-empty text: the backup and all later WAL stay.
    Full,
    /// `standalone`: the backup and the WAL it needs to be consistent stay.
    Standalone,
}

/// The keep annotations of a server's backups as Barman reads them (backup ID -> the
/// annotation's first line), and what each means: the one place that interprets them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeepAnnotations(BTreeMap<String, String>);

impl KeepAnnotations {
    pub fn insert(&mut self, backup_id: impl Into<String>, target: impl Into<String>) {
        self.0.insert(backup_id.into(), target.into());
    }

    /// Any annotation, even an empty one, stops `barman-cloud-backup-delete -b`.
    pub fn blocks_deletion(&self, backup_id: &str) -> bool {
        self.0.contains_key(backup_id)
    }

    /// What retention does with the backup; an empty annotation keeps nothing.
    pub fn keep(&self, backup_id: &str) -> Option<Keep> {
        match self.0.get(backup_id).map(String::as_str) {
            Some(crate::retention::KEEP_STANDALONE) => Some(Keep::Standalone),
            Some(text) if !text.is_empty() => Some(Keep::Full),
            _ => None,
        }
    }

    /// The annotation's text as Barman shows it (`backup-list`, `keep --status`).
    pub fn text(&self, backup_id: &str) -> Option<&str> {
        self.0.get(backup_id).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, String)> for KeepAnnotations {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        KeepAnnotations(pairs.into_iter().collect())
    }
}

impl Extend<(String, String)> for KeepAnnotations {
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, pairs: I) {
        self.0.extend(pairs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_annotations_mean() {
        let keeps: KeepAnnotations = [
            ("a", "standalone"),
            ("b", "full"),
            ("c", "full\n"),
            ("d", ""),
        ]
        .into_iter()
        .map(|(id, text)| (id.to_string(), text.to_string()))
        .collect();
        assert_eq!(keeps.keep("a"), Some(Keep::Standalone));
        assert_eq!(keeps.keep("b"), Some(Keep::Full));
        assert_eq!(
            keeps.keep("c"),
            Some(Keep::Full),
            "any other text keeps in full"
        );
        assert_eq!(keeps.keep("d"), None);
        assert!(
            keeps.blocks_deletion("d"),
            "an empty annotation still blocks -b"
        );
        assert!(!keeps.blocks_deletion("e"));
        assert_eq!(keeps.text("c"), Some("full\n"));
    }

    #[test]
    fn first_line_with_its_newline() {
        assert_eq!(keep_target_from_annotation(b"full").as_deref(), Ok("full"));
        assert_eq!(
            keep_target_from_annotation(b"standalone\nx\n").as_deref(),
            Ok("standalone\n")
        );
        assert_eq!(keep_target_from_annotation(b"").as_deref(), Ok(""));
        assert!(keep_target_from_annotation(b"\xff").is_err());
    }
}
