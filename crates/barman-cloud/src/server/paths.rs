//! Where one server's WAL archive lives: the directories and files the WAL flow reads
//! and writes, as plain paths. The CLI maps `barman.conf` onto this, so the archive code
//! does not depend on how the configuration is parsed.

use std::path::PathBuf;

use crate::wal::name::WalName;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalArchivePaths {
    /// The server's name, as in `[name]` of barman.conf: it names the lock files and
    /// appears in every message.
    pub server: String,
    /// `incoming_wals_directory`: where archive_command and put-wal drop WAL files.
    pub incoming: PathBuf,
    /// `streaming_wals_directory`: where pg_receivewal writes.
    pub streaming: PathBuf,
    /// `wals_directory`: the archive proper (hash directories, history files).
    pub wals: PathBuf,
    /// `errors_directory`: where duplicates and unknown files are moved.
    pub errors: PathBuf,
    /// `<xlogdb_directory>/<server>-xlog.db`.
    pub xlogdb_file: PathBuf,
    /// `barman_lock_directory`.
    pub lock_dir: PathBuf,
}

impl WalArchivePaths {
    /// Barman's defaults for a server whose directory is `server_dir`
    /// (`<barman_home>/<server>`), locks in `lock_dir` (by default `barman_home`).
    pub fn with_defaults(
        server: impl Into<String>,
        server_dir: impl Into<PathBuf>,
        lock_dir: impl Into<PathBuf>,
    ) -> Self {
        let server = server.into();
        let server_dir = server_dir.into();
        let wals = server_dir.join("wals");
        WalArchivePaths {
            xlogdb_file: wals.join(format!("{server}-xlog.db")),
            incoming: server_dir.join("incoming"),
            streaming: server_dir.join("streaming"),
            errors: server_dir.join("errors"),
            wals,
            lock_dir: lock_dir.into(),
            server,
        }
    }

    /// `.<server>-xlogdb.lock`, held while xlog.db is read or written.
    pub fn xlogdb_lock(&self) -> PathBuf {
        self.lock_dir.join(format!(".{}-xlogdb.lock", self.server))
    }

    /// `.<server>-archive-wal.lock`, held by the one archive-wal run of the server.
    pub fn archive_wal_lock(&self) -> PathBuf {
        self.lock_dir
            .join(format!(".{}-archive-wal.lock", self.server))
    }

    /// Where `wal` is stored in the archive: `wals/<hash>/<name>`, or `wals/<name>` for
    /// history files.
    pub fn stored_path(&self, wal: &WalName) -> PathBuf {
        match wal.hash_dir() {
            Some(hash) => self.wals.join(hash).join(wal.as_str()),
            None => self.wals.join(wal.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_barman_layout() {
        let paths = WalArchivePaths::with_defaults("pg", "/b/pg", "/b");
        assert_eq!(paths.xlogdb_file, PathBuf::from("/b/pg/wals/pg-xlog.db"));
        assert_eq!(paths.xlogdb_lock(), PathBuf::from("/b/.pg-xlogdb.lock"));
        assert_eq!(
            paths.archive_wal_lock(),
            PathBuf::from("/b/.pg-archive-wal.lock")
        );
        let seg = WalName::parse("0000000100000002000000AB").unwrap();
        assert_eq!(
            paths.stored_path(&seg),
            PathBuf::from("/b/pg/wals/0000000100000002/0000000100000002000000AB")
        );
        let history = WalName::parse("00000002.history").unwrap();
        assert_eq!(
            paths.stored_path(&history),
            PathBuf::from("/b/pg/wals/00000002.history")
        );
    }
}
