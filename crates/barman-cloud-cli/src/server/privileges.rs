//! Barman runs as `barman_user`: started as another user, it switches to that user's
//! identity (groups, group, user, `HOME`) before anything else, which works only as root.

use std::ffi::CString;

/// Why the switch did not happen, worded by the caller as Barman words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No account of that name.
    UnknownUser,
    /// The switch failed (not root).
    NotPermitted,
}

struct Account {
    uid: libc::uid_t,
    gid: libc::gid_t,
    home: CString,
    name: CString,
}

fn account(name: &str) -> Option<Account> {
    let c_name = CString::new(name).ok()?;
    let mut size = 1024usize;
    loop {
        let mut buffer: Vec<libc::c_char> = vec![0; size];
        let mut entry = std::mem::MaybeUninit::<libc::passwd>::uninit();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: getpwnam_r fills `entry`, with strings in `buffer`, when it finds one.
        let code = unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                entry.as_mut_ptr(),
                buffer.as_mut_ptr(),
                buffer.len(),
                &mut result,
            )
        };
        if code == libc::ERANGE && size < (1 << 24) {
            size *= 2;
            continue;
        }
        if code != 0 || result.is_null() {
            return None;
        }
        // SAFETY: found, so the entry is filled and its strings point into `buffer`.
        let entry = unsafe { entry.assume_init_ref() };
        let home = if entry.pw_dir.is_null() {
            CString::default()
        } else {
            // SAFETY: a NUL-terminated string in `buffer`, alive here.
            unsafe { std::ffi::CStr::from_ptr(entry.pw_dir) }.to_owned()
        };
        return Some(Account {
            uid: entry.pw_uid,
            gid: entry.pw_gid,
            home,
            name: c_name,
        });
    }
}

/// Becomes `user` unless already running as it (by real user ID).
pub fn drop_to(user: &str) -> Result<(), Refusal> {
    let account = account(user).ok_or(Refusal::UnknownUser)?;
    // SAFETY: getuid has no preconditions.
    if account.uid == unsafe { libc::getuid() } {
        return Ok(());
    }
    let mut groups: Vec<libc::gid_t> = vec![0; 256];
    let mut count = groups.len() as libc::c_int;
    // SAFETY: `groups` holds `count` entries; getgrouplist writes at most that many and
    // sets `count` to the number found.
    while unsafe {
        libc::getgrouplist(
            account.name.as_ptr(),
            account.gid,
            groups.as_mut_ptr(),
            &mut count,
        )
    } < 0
    {
        groups.resize(count.max(groups.len() as libc::c_int * 2) as usize, 0);
        count = groups.len() as libc::c_int;
    }
    groups.truncate(count as usize);
    // SAFETY: plain system calls on owned, initialised data.
    let switched = unsafe {
        libc::setgroups(groups.len() as _, groups.as_ptr()) == 0
            && libc::setgid(account.gid) == 0
            && libc::setuid(account.uid) == 0
    };
    if !switched {
        return Err(Refusal::NotPermitted);
    }
    let home =
        std::ffi::OsStr::new(std::str::from_utf8(account.home.as_bytes()).unwrap_or_default());
    // SAFETY: called at start-up from the only thread that reads the environment.
    unsafe { std::env::set_var("HOME", home) };
    Ok(())
}
