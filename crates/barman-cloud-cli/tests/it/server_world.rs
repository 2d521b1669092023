//! A `barman_home` shared by Python Barman and our `barman`, for the server command tests:
//! run both with the same arguments and compare what users see.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
