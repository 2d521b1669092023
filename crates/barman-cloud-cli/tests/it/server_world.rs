//! A `barman_home` shared by Python Barman and our `barman`, for the server command tests:
//! run both with the same arguments and compare what users see.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::ec2::{FakeMounts, fakes_dir};
use crate::postgres::{Cluster, chown_postgres};
use crate::support::{our_binary, required_env, stderr, stdout, temp_dir};

/// A temporary directory with `barman_home/`, a link named `barman` to our binary, and
/// the configuration files a test writes.
pub struct World {
    dir: tempfile::TempDir,
}

impl World {
    pub fn new(tag: &str) -> Self {
        let dir = temp_dir(tag);
        std::fs::create_dir(dir.path().join("home")).unwrap();
        std::os::unix::fs::symlink(our_binary(), dir.path().join("barman")).unwrap();
        World { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `name` with `{home}` and `{dir}` replaced.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        let text = text
            .replace("{home}", &self.path("home").display().to_string())
            .replace("{dir}", &self.dir.path().display().to_string());
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn run(&self, program: &Path, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("BARMAN_CONFIG_FILE")
            .output()
            .expect("run barman")
    }

    /// Runs both and asserts the same outcome; returns ours.
    pub fn compare(&self, args: &[&str]) -> Output {
        let python = PathBuf::from(required_env("BARMAN_RS_TEST_BARMAN_BIN")).join("barman");
        let theirs = self.run(&python, args);
        let ours = self.run(&self.path("barman"), args);
        let what = format!("barman {}", args.join(" "));
        assert_eq!(stdout(&ours), stdout(&theirs), "stdout of {what}");
        assert_eq!(
            prefixed_lines(&stderr(&ours)),
            prefixed_lines(&stderr(&theirs)),
            "stderr of {what}:\nours: {}\nBarman: {}",
            stderr(&ours),
            stderr(&theirs)
        );
        assert_eq!(ours.status.code(), theirs.status.code(), "exit of {what}");
        ours
    }
}

pub fn prefixed_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| {
            [
                "WARNING:",
                "ERROR:",
                "FATAL",
                "Configuration file",
                "Could not find",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .collect()
}

/// Python Barman's `barman`.
pub fn python_barman() -> PathBuf {
    PathBuf::from(required_env("BARMAN_RS_TEST_BARMAN_BIN")).join("barman")
}

impl World {
    /// Our `barman`.
    pub fn ours(&self) -> PathBuf {
        self.path("barman")
    }

    /// Runs `program` with `stdin` (a file, or nothing) and extra environment.
    pub fn run_with(
        &self,
        program: &Path,
        args: &[&str],
        stdin: Option<&Path>,
        env: &[(&str, &str)],
    ) -> Output {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("BARMAN_CONFIG_FILE")
            .env_remove("SSH_CONNECTION")
            .envs(env.iter().copied());
        match stdin {
            Some(file) => command.stdin(std::fs::File::open(file).expect("stdin file")),
            None => command.stdin(std::process::Stdio::null()),
        };
        command.output().expect("run barman")
    }
}

/// The `ssh_command` wrapper for the `findmnt` stand-in over the real sshd (see
/// `server_check`'s module docs) for `ssh` (a complete ssh command without remote
/// command): leading `-o X` pairs are ssh options, the rest the remote command, run with
/// `tests/fakes` first on `PATH` and `BARMAN_RS_FAKE_MOUNTS=<table>`.
pub fn ssh_wrapper(dir: &Path, name: &str, ssh: &str, table: &Path) -> PathBuf {
    let fakes = fakes_dir().canonicalize().expect("tests/fakes");
    let path = dir.join(name);
    let script = format!(
        "#!/bin/sh\n\
         # ssh options first (-o X pairs), then the remote command words.\n\
         opts=''\n\
         while [ \"$1\" = '-o' ]; do opts=\"$opts -o $2\"; shift 2; done\n\
         exec {ssh} $opts \"env PATH={fakes}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
         BARMAN_RS_FAKE_MOUNTS={table} $*\"\n",
        fakes = fakes.display(),
        table = table.display(),
    );
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A snapshot server's PostgreSQL host for `barman check`: a [`World`], a real
/// PostgreSQL 15 archiving into `home/<server>/incoming` with `cp`, a fake mount table
/// (nothing mounted yet) and the `ssh_command` wrapper reaching it over the real sshd.
/// Both tools run with `env`; Python Barman also with `barman_env` (its compute client
/// pointed at a fake).
pub struct CheckHost {
    pub world: World,
    pub cluster: Cluster,
    pub mounts: FakeMounts,
    pub env: Vec<(String, String)>,
    pub barman_env: Vec<(String, String)>,
    pub good_ssh: PathBuf,
}

impl CheckHost {
    pub fn new(tag: &str, server: &str, env: Vec<(String, String)>) -> CheckHost {
        let world = World::new(tag);
        // The server's incoming directory exists before Barman creates the rest, writable
        // by PostgreSQL's archive_command.
        let incoming = world.path(&format!("home/{server}/incoming"));
        std::fs::create_dir_all(&incoming).unwrap();
        chown_postgres(&incoming);
        let cluster = Cluster::initdb(tag);
        cluster.configure(&format!(
            "archive_mode = on\narchive_command = 'test ! -f {dir}/%f && cp %p {dir}/%f'\n",
            dir = incoming.display()
        ));
        cluster.start();
        let mounts = FakeMounts::new(0);
        let ssh = required_env("BARMAN_RS_TEST_SSH_COMMAND");
        let good_ssh = ssh_wrapper(&world.path(""), "ssh-pg", &ssh, mounts.table_path());
        CheckHost {
            world,
            cluster,
            mounts,
            env,
            barman_env: Vec::new(),
            good_ssh,
        }
    }

    /// Writes `barman.conf` from `template` with `{socket}`, `{port}`, `{home}`, `{dir}`
    /// replaced.
    pub fn write_conf(&self, template: &str) {
        let text = template
            .replace("{socket}", &self.cluster.socket_dir())
            .replace("{port}", &self.cluster.port.to_string());
        self.world.write("barman.conf", &text);
    }

    /// `program -c barman.conf args` with the environment (Barman's extra environment
    /// when `program` is Python Barman's).
    pub fn run(&self, program: &Path, args: &[&str]) -> Output {
        let conf = self.world.path("barman.conf").display().to_string();
        let mut all = vec!["-c", conf.as_str()];
        all.extend(args);
        let mut env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if program == python_barman() {
            env.extend(
                self.barman_env
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            );
        }
        self.world.run_with(program, &all, None, &env)
    }

    /// Runs both tools; same stdout, same error lines, same exit code. Returns ours.
    pub fn compare(&self, args: &[&str]) -> Output {
        let theirs = self.run(&python_barman(), args);
        let ours = self.run(&self.world.ours(), args);
        let what = format!("barman {}", args.join(" "));
        assert_eq!(
            stdout(&ours),
            stdout(&theirs),
            "stdout of {what}\nour stderr: {}\nBarman's stderr: {}",
            stderr(&ours),
            stderr(&theirs)
        );
        assert_eq!(
            prefixed_lines(&stderr(&ours)),
            prefixed_lines(&stderr(&theirs)),
            "stderr of {what}"
        );
        assert_eq!(ours.status.code(), theirs.status.code(), "exit of {what}");
        ours
    }
}
