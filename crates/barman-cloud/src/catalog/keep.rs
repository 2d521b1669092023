//! Keep annotations (`<server>/base/<id>/annotations/keep`, Barman's `barman/annotations.py`
//! `AnnotationManagerCloud._get_annotation_path`) as the catalog reads them
//! (`KeepManagerMixinCloud.get_keep_target`).

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

#[cfg(test)]
mod tests {
    use super::*;

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
