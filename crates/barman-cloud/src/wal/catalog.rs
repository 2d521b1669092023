//! The WAL files of a server as a deletion sees them: every object below `wals/`, at any
//! depth, whose name is a WAL name possibly followed by one compression suffix.

use std::collections::BTreeMap;

use super::name::{WalName, split_compression_suffix};
use crate::storage::ObjectInfo;

#[derive(Debug, Default, Clone)]
pub struct WalCatalog {
    /// WAL name (suffix removed) → object key. When `X` and `X.gz` both exist, the one
    /// listed last (the greater key) wins, as in Barman.
    by_name: BTreeMap<String, String>,
}

impl WalCatalog {
    /// Builds the catalog from a recursive listing of `wals/`, sorted by key.
    pub fn from_listing(objects: &[ObjectInfo]) -> Self {
        let mut by_name = BTreeMap::new();
        for object in objects {
            let basename = object.key.rsplit('/').next().unwrap_or_default();
            if let Some(name) = WalName::try_parse(split_compression_suffix(basename).0) {
                by_name.insert(name.as_str().to_string(), object.key.clone());
            }
        }
        WalCatalog { by_name }
    }

    /// (name, key) pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.by_name.iter().map(|(n, k)| (n.as_str(), k.as_str()))
    }

    pub fn remove(&mut self, name: &str) {
        self.by_name.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_wal_names_with_one_suffix_and_the_last_listed_duplicate() {
        let keys = [
            "p/srv/wals/00000002.history",
            "p/srv/wals/0000000100000000/000000010000000000000001",
            "p/srv/wals/0000000100000000/000000010000000000000001.gz",
            "p/srv/wals/0000000100000000/000000010000000000000002.00000028.backup",
            "p/srv/wals/0000000100000000/000000010000000000000003.partial.zst",
            "p/srv/wals/0000000100000000/000000010000000000000004.gz.gz",
            "p/srv/wals/0000000100000000/notes.txt",
        ];
        let objects: Vec<ObjectInfo> = keys
            .iter()
            .map(|k| ObjectInfo {
                key: k.to_string(),
                size: 1,
            })
            .collect();
        let catalog = WalCatalog::from_listing(&objects);
        let got: Vec<(&str, &str)> = catalog.iter().collect();
        assert_eq!(
            got,
            [
                (
                    "000000010000000000000001",
                    "p/srv/wals/0000000100000000/000000010000000000000001.gz"
                ),
                (
                    "000000010000000000000002.00000028.backup",
                    "p/srv/wals/0000000100000000/000000010000000000000002.00000028.backup"
                ),
                (
                    "000000010000000000000003.partial",
                    "p/srv/wals/0000000100000000/000000010000000000000003.partial.zst"
                ),
                ("00000002.history", "p/srv/wals/00000002.history"),
            ]
        );
    }
}
