//! The password file (`~/.pgpass`, `PGPASSFILE`, `passfile=`), read as libpq's
//! `passwordFromFile` does.

use std::path::Path;

/// The password for host/port/dbname/user from a libpq password file, if one line matches.
/// A missing file is no error; a file that is not a plain file or is readable by group or
/// others is ignored with a warning, as libpq does.
pub(super) fn password_from_file(
    file: &Path,
    host: &str,
    port: &str,
    dbname: &str,
    user: &str,
) -> Option<Vec<u8>> {
    let metadata = std::fs::metadata(file).ok()?;
    if !metadata.is_file() {
        tracing::warn!("password file \"{}\" is not a plain file", file.display());
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if metadata.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                "password file \"{}\" has group or world access; permissions should be u=rw (0600) or less",
                file.display()
            );
            return None;
        }
    }
    let content = std::fs::read(file).ok()?;
    content.split(|&c| c == b'\n').find_map(|line| {
        let mut end = line.len();
        while end > 0 && matches!(line[end - 1], b'\r' | b'\n') {
            end -= 1;
        }
        let line = &line[..end];
        if line.is_empty() || line[0] == b'#' {
            return None;
        }
        let rest = match_pgpass_field(line, host.as_bytes())?;
        let rest = match_pgpass_field(rest, port.as_bytes())?;
        let rest = match_pgpass_field(rest, dbname.as_bytes())?;
        let rest = match_pgpass_field(rest, user.as_bytes())?;
        // The password runs to the next unescaped ':' or the end of the line.
        let mut password = Vec::new();
        let mut i = 0;
        while i < rest.len() && rest[i] != b':' {
            if rest[i] == b'\\' && i + 1 < rest.len() {
                i += 1;
            }
            password.push(rest[i]);
            i += 1;
        }
        Some(password)
    })
}

/// libpq's `pwdfMatchesString`: if the field at the start of `line` matches `token` (`*`
/// matches anything, `\` escapes), the rest of the line after its ':'.
fn match_pgpass_field<'a>(line: &'a [u8], token: &[u8]) -> Option<&'a [u8]> {
    if line.starts_with(b"*:") {
        return Some(&line[2..]);
    }
    let (mut i, mut t, mut escaped) = (0, 0, false);
    while i < line.len() {
        if line[i] == b'\\' && !escaped {
            i += 1;
            escaped = true;
            if i >= line.len() {
                return None;
            }
        }
        if line[i] == b':' && t == token.len() && !escaped {
            return Some(&line[i + 1..]);
        }
        escaped = false;
        if t == token.len() || line[i] != token[t] {
            return None;
        }
        i += 1;
        t += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{Machine, password};
    use super::*;

    #[test]
    fn pgpass_matching() {
        let m = Machine::new();
        let home = m.home().display().to_string();
        let env = [("HOME", home.as_str())];
        let file = m.pgpass(
            "# comment\n\
             \n\
             other:*:*:*:wrong\n\
             db.example:5432:app:bob:first\n\
             db.example:5432:app:bob:second\n\
             db.example:*:*:carol:wild\\:card\\\\x:ignored\n\
             we\\:ird:5432:*:*:escaped\r\n\
             localhost:5432:*:alice:local\n\
             /custom/dir:5433:*:*:custom\n\
             *:*:*:dave:star\n",
            0o600,
        );
        let pw = |text: &str| {
            let r = m.resolved(text, &env);
            password(&r).map(str::to_owned)
        };
        assert_eq!(
            pw("host=db.example user=bob dbname=app").as_deref(),
            Some("first")
        );
        assert_eq!(pw("host=db.example user=bob dbname=other"), None);
        assert_eq!(pw("host=db.example user=bob dbname=app port=5433"), None);
        assert_eq!(
            pw("host=db.example port=6000 user=carol dbname=x").as_deref(),
            Some("wild:card\\x")
        );
        assert_eq!(
            pw("host=we:ird user=x dbname=y").as_deref(),
            Some("escaped")
        );
        assert_eq!(pw("host=anywhere user=dave").as_deref(), Some("star"));
        // Unix sockets: the default socket directory is "localhost", others match by path.
        assert_eq!(pw("user=alice").as_deref(), Some("local"));
        assert_eq!(pw("host='' user=alice").as_deref(), Some("local"));
        assert_eq!(
            pw("host=/var/run/postgresql user=alice").as_deref(),
            Some("local")
        );
        assert_eq!(pw("host=localhost user=alice").as_deref(), Some("local"));
        assert_eq!(
            pw("host=/custom/dir port=5433 user=alice").as_deref(),
            Some("custom")
        );
        assert_eq!(pw("host=/custom/dir user=alice"), None);
        // An explicit password (or PGPASSWORD) wins over the file.
        assert_eq!(
            pw("host=db.example user=bob dbname=app password=given").as_deref(),
            Some("given")
        );
        let r = m.resolved(
            "host=db.example user=bob dbname=app",
            &[("HOME", home.as_str()), ("PGPASSWORD", "envpw")],
        );
        assert_eq!(password(&r), Some("envpw"));
        assert_eq!(r.password_file, None);
        let r = m.resolved("host=db.example user=bob dbname=app", &env);
        assert_eq!(r.password_file.as_deref(), Some(file.as_path()));

        // passfile= and PGPASSFILE point elsewhere.
        let elsewhere = m.dir.path().join("pw");
        std::fs::copy(&file, &elsewhere).unwrap();
        std::fs::remove_file(&file).unwrap();
        assert_eq!(pw("user=dave"), None, "missing file: no password, no error");
        let p = elsewhere.display().to_string();
        assert_eq!(
            pw(&format!("user=dave passfile={p}")).as_deref(),
            Some("star")
        );
        let r = m.resolved("user=dave", &[("PGPASSFILE", p.as_str())]);
        assert_eq!(password(&r), Some("star"));

        // A file readable by others is ignored, as is a directory.
        m.pgpass("*:*:*:*:open\n", 0o644);
        assert_eq!(pw("user=dave"), None);
        m.pgpass("*:*:*:*:ok\n", 0o600);
        assert_eq!(pw("user=dave").as_deref(), Some("ok"));
        let r = m.resolved(&format!("user=dave passfile={}", m.home().display()), &[]);
        assert_eq!(password(&r), None);
        // Without HOME, the home directory comes from the user's account.
        assert_eq!(password(&m.resolved("user=dave", &[])), Some("ok"));
    }

    #[test]
    fn pgpass_field_matching() {
        assert_eq!(match_pgpass_field(b"*:rest", b"x"), Some(&b"rest"[..]));
        assert_eq!(match_pgpass_field(b"abc:rest", b"abc"), Some(&b"rest"[..]));
        assert_eq!(match_pgpass_field(b"abc:rest", b"ab"), None);
        assert_eq!(match_pgpass_field(b"ab:rest", b"abc"), None);
        assert_eq!(
            match_pgpass_field(b"a\\:b:rest", b"a:b"),
            Some(&b"rest"[..])
        );
        assert_eq!(
            match_pgpass_field(b"a\\\\:rest", b"a\\"),
            Some(&b"rest"[..])
        );
        // '*' is a wildcard only as the whole field.
        assert_eq!(match_pgpass_field(b"*x:rest", b"abc"), None);
        assert_eq!(match_pgpass_field(b"abc", b"abc"), None);
    }
}
