//! Test helpers shared by the conninfo tests: parsing shorthands and a fake machine.

use std::collections::HashMap;
use std::path::PathBuf;

use tokio_postgres::config::Host;

use super::defaults::SystemDefaults;
use super::{ConnInfo, ResolvedConnInfo};
use crate::accounts::User;
use crate::{Error, Result};

pub(super) fn parse(text: &str) -> ConnInfo {
    ConnInfo::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

pub(super) fn parse_err(text: &str) -> String {
    match ConnInfo::parse(text) {
        Ok(info) => panic!("{text}: parsed as {info:?}"),
        Err(e) => {
            assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
            e.to_string()
        }
    }
}

pub(super) fn pairs(info: &ConnInfo) -> Vec<(&str, &str)> {
    info.params.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A fake machine: two socket directories, one account (uid 1000 = alice, home in the temp
/// dir), alice as the effective user.
pub(super) struct Machine {
    pub(super) dir: tempfile::TempDir,
    pub(super) sys: SystemDefaults,
}

impl Machine {
    pub(super) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let tmp = dir.path().join("tmp");
        let home = dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        let alice = User {
            name: "alice".into(),
            home,
        };
        let sys = SystemDefaults {
            socket_dirs: vec![run, tmp],
            euid: 1000,
            user_by_uid: Box::new(move |uid| (uid == 1000).then(|| alice.clone())),
            sysconfdir: dir.path().join("etc"),
        };
        Machine { dir, sys }
    }

    pub(super) fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub(super) fn resolve(
        &self,
        info: &ConnInfo,
        env: &[(&str, &str)],
    ) -> Result<ResolvedConnInfo> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        info.resolve_with(&|k| env.get(k).cloned(), &self.sys)
    }

    pub(super) fn resolved(&self, text: &str, env: &[(&str, &str)]) -> ResolvedConnInfo {
        self.resolve(&parse(text), env)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// Writes a password file with the given mode; returns its path.
    pub(super) fn pgpass(&self, content: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.home().join(".pgpass");
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }
}

pub(super) fn password(r: &ResolvedConnInfo) -> Option<&str> {
    r.config
        .get_password()
        .map(|p| std::str::from_utf8(p).unwrap())
}

pub(super) fn unix_host(r: &ResolvedConnInfo) -> PathBuf {
    match r.config.get_hosts() {
        [Host::Unix(p)] => p.clone(),
        other => panic!("not one Unix host: {other:?}"),
    }
}

pub(super) fn tcp_host(r: &ResolvedConnInfo) -> String {
    match r.config.get_hosts() {
        [Host::Tcp(h)] => h.clone(),
        other => panic!("not one TCP host: {other:?}"),
    }
}
