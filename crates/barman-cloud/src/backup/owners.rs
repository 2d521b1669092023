//! User and group names for tar headers, read once from the local account databases
//! (Python's tarfile fills uname/gname the same way; restores use the numeric ids
//! when a name is unknown).

use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct Owners {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

fn parse_names(text: &str) -> HashMap<u32, String> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let id = fields.nth(1)?.parse().ok()?;
            Some((id, name.to_string()))
        })
        .collect()
}

impl Owners {
    pub fn load() -> Self {
        let read = |path| std::fs::read_to_string(path).unwrap_or_default();
        Owners {
            users: parse_names(&read("/etc/passwd")),
            groups: parse_names(&read("/etc/group")),
        }
    }

    pub fn user(&self, uid: u32) -> Option<&str> {
        self.users.get(&uid).map(String::as_str)
    }

    pub fn group(&self, gid: u32) -> Option<&str> {
        self.groups.get(&gid).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd_and_group_lines() {
        let users = parse_names(
            "root:x:0:0:root:/root:/bin/bash\n#c\npostgres:x:104:110::/var/lib/postgresql:/bin/bash\nbroken\n",
        );
        assert_eq!(users.get(&0).map(String::as_str), Some("root"));
        assert_eq!(users.get(&104).map(String::as_str), Some("postgres"));
        let groups = parse_names("postgres:x:110:\n");
        assert_eq!(groups.get(&110).map(String::as_str), Some("postgres"));
    }
}
