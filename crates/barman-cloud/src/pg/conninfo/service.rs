//! Connection service files (`~/.pg_service.conf`, `PGSERVICEFILE`, the system-wide
//! `pg_service.conf`), read as libpq's `parseServiceInfo` does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::defaults::SystemDefaults;
use super::invalid;
use super::keywords::canonical;
use super::parse::is_space;
use crate::Result;

/// The parameters of `service` from the user's service file, else the system one (libpq's
/// `parseServiceInfo`). Only keys not set in `params` will be used by the caller.
pub(super) fn service_params(
    service: &str,
    params: &BTreeMap<&'static str, String>,
    env: &dyn Fn(&str) -> Option<String>,
    sys: &SystemDefaults,
) -> Result<Vec<(&'static str, String)>> {
    let user_file = params
        .get("servicefile")
        .cloned()
        .or_else(|| env("PGSERVICEFILE"))
        .filter(|f| !f.is_empty())
        .map(PathBuf::from)
        .or_else(|| sys.home_dir(env).map(|h| h.join(".pg_service.conf")));
    let sysconfdir = env("PGSYSCONFDIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| sys.sysconfdir.clone());
    for file in user_file
        .into_iter()
        .chain([sysconfdir.join("pg_service.conf")])
    {
        if let Some(found) = read_service_file(&file, service)? {
            return Ok(found);
        }
    }
    Err(invalid(format!(
        "definition of service \"{service}\" not found"
    )))
}

/// The `[service]` group of a service file; `None` if the file or the group is missing.
fn read_service_file(file: &Path, service: &str) -> Result<Option<Vec<(&'static str, String)>>> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Ok(None);
    };
    let syntax = |n: usize| {
        invalid(format!(
            "syntax error in service file \"{}\", line {n}",
            file.display()
        ))
    };
    let mut found: Option<Vec<(&'static str, String)>> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_matches(|c: char| c.is_ascii() && is_space(c as u8));
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(group) = line.strip_prefix('[') {
            if found.is_some() {
                break;
            }
            if group
                .strip_prefix(service)
                .is_some_and(|r| r.starts_with(']'))
            {
                found = Some(Vec::new());
            }
            continue;
        }
        let Some(entries) = found.as_mut() else {
            continue;
        };
        let (key, value) = line.split_once('=').ok_or_else(|| syntax(n + 1))?;
        if key == "service" {
            return Err(invalid(format!(
                "nested service specifications not supported in service file \"{}\", line {}",
                file.display(),
                n + 1
            )));
        }
        let (key, value) = canonical(key, value).map_err(|_| syntax(n + 1))?;
        // The first setting of a key wins.
        if !entries.iter().any(|(k, _)| *k == key) {
            entries.push((key, value));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{Machine, parse, tcp_host};

    #[test]
    fn service_file() {
        let m = Machine::new();
        std::fs::write(
            m.home().join(".pg_service.conf"),
            "# comment\n[other]\nhost=wrong\n\n[mysvc]\n host=svchost\nport=6000\ndbname=svcdb\n[last]\nhost=no\n",
        )
        .unwrap();
        let home = m.home().display().to_string();
        let env = [
            ("HOME", home.as_str()),
            ("PGPORT", "7000"),
            ("PGUSER", "envuser"),
        ];
        let r = m.resolved("service=mysvc dbname=mine", &env);
        assert_eq!(tcp_host(&r), "svchost");
        assert_eq!(
            r.config.get_ports(),
            [6000],
            "the service beats the environment"
        );
        assert_eq!(
            r.config.get_dbname(),
            Some("mine"),
            "the conninfo beats the service"
        );
        assert_eq!(r.config.get_user(), Some("envuser"));
        let mut env_service = env.to_vec();
        env_service.push(("PGSERVICE", "mysvc"));
        assert_eq!(tcp_host(&m.resolved("", &env_service)), "svchost");

        // The system file, from PGSYSCONFDIR.
        let etc = m.dir.path().join("etc2");
        std::fs::create_dir(&etc).unwrap();
        std::fs::write(etc.join("pg_service.conf"), "[sys]\nhost=syshost\n").unwrap();
        let etc = etc.display().to_string();
        let mut env_sys = env.to_vec();
        env_sys.push(("PGSYSCONFDIR", etc.as_str()));
        assert_eq!(tcp_host(&m.resolved("service=sys", &env_sys)), "syshost");

        let e = m.resolve(&parse("service=nope"), &env).unwrap_err();
        assert_eq!(e.to_string(), "definition of service \"nope\" not found");
        std::fs::write(m.home().join(".pg_service.conf"), "[bad]\nbogus=1\n").unwrap();
        let e = m.resolve(&parse("service=bad"), &env).unwrap_err();
        assert!(
            e.to_string().contains("syntax error in service file"),
            "{e}"
        );
    }
}
