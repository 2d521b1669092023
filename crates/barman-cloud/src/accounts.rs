//! Local user and group accounts, looked up through the C library (`getpwuid_r`,
//! `getgrgid_r`) rather than by reading `/etc/passwd` and `/etc/group`, so that accounts
//! from every source the name service switch knows (LDAP, SSSD, systemd...) are found, as
//! libpq and Python's `pwd` and `grp` modules find them.

use std::ffi::{CStr, OsStr};
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// What the callers need of a user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub name: String,
    pub home: PathBuf,
}

/// The effective user ID of this process.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The account of user ID `uid`; `None` if there is none, its name is not UTF-8 or the lookup
/// failed.
pub(crate) fn user_by_uid(uid: u32) -> Option<User> {
    user_by_uid_with_buffer(uid, FIRST_BUFFER_SIZE)
}

/// The name of group ID `gid`; `None` if there is none, its name is not UTF-8 or the lookup
/// failed.
pub(crate) fn group_name(gid: u32) -> Option<String> {
    group_name_with_buffer(gid, FIRST_BUFFER_SIZE)
}

/// The strings of an entry live in a caller-supplied buffer; `ERANGE` asks for a bigger one.
const FIRST_BUFFER_SIZE: usize = 1024;
/// Past this size we give up (a group listing many thousands of members stays far below).
const MAX_BUFFER_SIZE: usize = 64 << 20;

fn user_by_uid_with_buffer(uid: u32, first_size: usize) -> Option<User> {
    // SAFETY: getpwuid_r fills the entry, with strings in the buffer, when it finds one.
    unsafe {
        lookup(
            first_size,
            |entry, buffer, len, result| libc::getpwuid_r(uid, entry, buffer, len, result),
            |entry: &libc::passwd| {
                Some(User {
                    name: text(entry.pw_name)?.to_str().ok()?.to_owned(),
                    home: text(entry.pw_dir)
                        .map(|home| PathBuf::from(OsStr::from_bytes(home.to_bytes())))
                        .unwrap_or_default(),
                })
            },
        )
    }
}

fn group_name_with_buffer(gid: u32, first_size: usize) -> Option<String> {
    // SAFETY: getgrgid_r fills the entry, with strings in the buffer, when it finds one.
    unsafe {
        lookup(
            first_size,
            |entry, buffer, len, result| libc::getgrgid_r(gid, entry, buffer, len, result),
            |entry: &libc::group| Some(text(entry.gr_name)?.to_str().ok()?.to_owned()),
        )
    }
}

/// A string field of an entry `lookup` found; `None` if null.
///
/// # Safety
/// `field` is null or points to a NUL-terminated string alive for `'a`.
unsafe fn text<'a>(field: *const libc::c_char) -> Option<&'a CStr> {
    // SAFETY: non-null, so a string as the caller guarantees.
    (!field.is_null()).then(|| unsafe { CStr::from_ptr(field) })
}

/// Calls `get`, a reentrant `get*_r` lookup (entry, buffer, buffer length, result), with a
/// buffer that doubles while the call answers `ERANGE`, and gives the entry found to `read`
/// while the buffer its strings point into is alive.
///
/// # Safety
/// `get` behaves as `getpwuid_r`: when it returns 0 with a non-null result, that result
/// points to the entry it was given, which it has filled in, and every string pointer in the
/// entry is null or points into the buffer.
unsafe fn lookup<T, R>(
    first_size: usize,
    get: impl Fn(*mut T, *mut libc::c_char, libc::size_t, *mut *mut T) -> libc::c_int,
    read: impl FnOnce(&T) -> Option<R>,
) -> Option<R> {
    let mut buffer: Vec<libc::c_char> = vec![0; first_size.max(1)];
    loop {
        let mut entry = MaybeUninit::<T>::uninit();
        let mut result: *mut T = std::ptr::null_mut();
        match get(
            entry.as_mut_ptr(),
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut result,
        ) {
            libc::ERANGE if buffer.len() < MAX_BUFFER_SIZE => {
                buffer.resize(buffer.len() * 2, 0);
            }
            libc::EINTR => {}
            // SAFETY: found, so `get` filled `entry` in (the caller's guarantee).
            0 if !result.is_null() => return read(unsafe { entry.assume_init_ref() }),
            // No such entry (0 with a null result), or a failure of the name service.
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_the_current_user_are_found() {
        let root = user_by_uid(0).expect("uid 0");
        assert_eq!(root.name, "root");
        assert!(root.home.is_absolute(), "{root:?}");
        assert_eq!(group_name(0).as_deref(), Some("root"));

        let me = user_by_uid(effective_uid()).expect("the effective user has an account");
        assert!(!me.name.is_empty());

        // A buffer too small for any entry: ERANGE, then bigger buffers until it fits.
        assert_eq!(user_by_uid_with_buffer(0, 1), Some(root));
        assert_eq!(group_name_with_buffer(0, 1).as_deref(), Some("root"));
    }

    #[test]
    fn unknown_ids_have_no_account() {
        assert_eq!(user_by_uid(3_999_999_999), None);
        assert_eq!(group_name(3_999_999_999), None);
    }
}
