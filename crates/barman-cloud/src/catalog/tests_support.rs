//! Test helpers: the fixtures under `tests/fixtures/catalog/` (see its README).

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/catalog")
}

/// The text of a fixture, by path relative to `tests/fixtures/catalog/`.
pub(super) fn fixture(name: &str) -> String {
    let path = root().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Sorted relative paths of the fixtures under `dir` whose name ends with `suffix`.
pub(super) fn fixture_names(dir: &str, suffix: &str) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, suffix: &str, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, suffix, out);
            } else if let Ok(rel) = path.strip_prefix(base)
                && let Some(rel) = rel.to_str()
                && rel.ends_with(suffix)
            {
                out.push(rel.to_string());
            }
        }
    }
    let base = root();
    let mut out = Vec::new();
    walk(&base, &base.join(dir), suffix, &mut out);
    out.sort();
    out
}

/// Bytes from lower- or upper-case hex.
pub(super) fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The path of a fixture that may not exist.
pub(super) fn fixture_path(name: &str) -> PathBuf {
    root().join(name)
}
