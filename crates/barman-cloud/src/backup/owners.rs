//! User and group names for tar headers, as Python's tarfile fills uname/gname: looked up
//! through the C library (so accounts from LDAP or any other name service are named too),
//! once per ID and backup. Restores use the numeric IDs when a name is unknown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::accounts;

/// The names of the IDs met so far, `None` for an ID without a name.
type Names = Mutex<HashMap<u32, Option<Arc<str>>>>;

#[derive(Debug, Default)]
pub struct Owners {
    users: Names,
    groups: Names,
}

impl Owners {
    /// An empty cache: each name is looked up the first time its ID is asked for.
    pub fn load() -> Self {
        Owners::default()
    }

    pub fn user(&self, uid: u32) -> Option<Arc<str>> {
        cached(&self.users, uid, |uid| {
            accounts::user_by_uid(uid).map(|user| user.name)
        })
    }

    pub fn group(&self, gid: u32) -> Option<Arc<str>> {
        cached(&self.groups, gid, accounts::group_name)
    }
}

fn cached(names: &Names, id: u32, look_up: impl FnOnce(u32) -> Option<String>) -> Option<Arc<str>> {
    let mut names = names.lock().unwrap_or_else(PoisonError::into_inner);
    names
        .entry(id)
        .or_insert_with(|| look_up(id).map(Arc::from))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_looked_up_once() {
        let owners = Owners::load();
        let root = owners.user(0).expect("uid 0 has a name");
        assert_eq!(&*root, "root");
        assert_eq!(owners.group(0).as_deref(), Some("root"));
        // The second time comes from the cache: the same allocation.
        assert!(Arc::ptr_eq(&root, &owners.user(0).unwrap()));
        assert_eq!(owners.user(3_999_999_999), None);
        assert_eq!(owners.users.lock().unwrap().len(), 2);
    }
}
