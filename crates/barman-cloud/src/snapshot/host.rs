//! Commands on the machine the disks are attached to (Barman: `barman/fs.py`
//! `UnixLocalCommand`): `barman-cloud-backup` and `barman-cloud-restore` run them locally; a
//! Barman server will run them over `ssh_command`. Only the answers Barman's code reads are
//! used (stdout and the exit status), so both kinds of host give the same results.

use async_trait::async_trait;

use crate::error::{Error, Result};

/// The outcome of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    pub success: bool,
    pub stdout: String,
}

#[async_trait]
pub trait Host: Send + Sync {
    /// Runs `program` with `args` (no shell involved) and returns its status and stdout. A
    /// program that cannot be started at all is an error.
    async fn run(&self, program: &str, args: &[&str]) -> Result<CommandOutput>;

    /// `test -e`: whether the path exists (following symbolic links).
    async fn exists(&self, path: &str) -> Result<bool> {
        Ok(self.run("test", &["-e", path]).await?.success)
    }

    /// Barman's `check_directory_exists`: whether `path` is a directory; an error when
    /// something else than a directory is there.
    async fn directory_exists(&self, path: &str) -> Result<bool> {
        if !self.exists(path).await? {
            return Ok(false);
        }
        if self.run("test", &["-d", path]).await?.success {
            Ok(true)
        } else {
            Err(Error::Provider(
                "A file with the same name exists, but is not a directory".into(),
            ))
        }
    }

    /// `ls <path>`: the names in a directory, empty when it cannot be listed.
    async fn list_dir(&self, path: &str) -> Result<Vec<String>> {
        let output = self.run("ls", &[path]).await?;
        Ok(output
            .stdout
            .split_whitespace()
            .map(str::to_string)
            .collect())
    }

    /// The content of a file; an error when it does not exist or cannot be read.
    async fn read_file(&self, path: &str) -> Result<String> {
        if !self.exists(path).await? {
            return Err(Error::Provider(format!("The {path} file does not exist")));
        }
        let output = self.run("cat", &[path]).await?;
        if !output.success {
            return Err(Error::Provider(format!(
                "Failed to execute \"cat '{path}'\""
            )));
        }
        Ok(output.stdout)
    }

    /// The path with every symbolic link resolved (`realpath -e`); `None` when it does not
    /// exist.
    async fn real_path(&self, path: &str) -> Result<Option<String>> {
        let output = self.run("realpath", &["-e", "--", path]).await?;
        Ok(output
            .success
            .then(|| output.stdout.trim_end_matches('\n').to_string()))
    }
}

/// This machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalHost;

#[async_trait]
impl Host for LocalHost {
    async fn run(&self, program: &str, args: &[&str]) -> Result<CommandOutput> {
        let output = tokio::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| Error::Provider(format!("cannot run {program}: {e}")))?;
        Ok(CommandOutput {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        })
    }
}

/// Barman's `shell_quote`: single quotes around the argument, each `'` written `'\''`; a
/// lone `|` is left bare (Barman builds pipelines with it).
pub fn shell_quote(arg: &str) -> String {
    if arg == "|" {
        return arg.to_string();
    }
    format!("'{}'", arg.replace('\'', "'\\''"))
}

/// Barman's `full_command_quote`: the command as given, then each argument quoted.
pub fn full_command_quote(command: &str, args: &[&str]) -> String {
    if args.is_empty() {
        return command.to_string();
    }
    let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    format!("{command} {}", quoted.join(" "))
}

/// What a shell command line gave: exit code (`None` when killed by a signal), stdout,
/// stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `line` with `/bin/sh -c`, as Python's `subprocess` with `shell=True` does (stdin
/// closed).
pub async fn run_shell(line: &str) -> Result<ShellOutput> {
    let output = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(line)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| Error::Provider(format!("cannot run /bin/sh: {e}")))?;
    Ok(ShellOutput {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// The PostgreSQL host reached through a server's `ssh_command` (Barman's
/// `UnixRemoteCommand`): each command is quoted with [`full_command_quote`] and appended,
/// quoted again as one argument, to `ssh_command` plus `options`; the line runs through
/// `/bin/sh -c`, so `ssh_command` itself is read by the local shell as Barman's is.
#[derive(Debug, Clone)]
pub struct SshHost {
    ssh_command: String,
    options: Vec<String>,
}

impl SshHost {
    /// A host for `ssh_command`, with extra ssh `options` (quoted one by one).
    pub fn new(ssh_command: &str, options: &[String]) -> Self {
        SshHost {
            ssh_command: ssh_command.to_string(),
            options: options.to_vec(),
        }
    }

    /// Barman's `unix_command_factory` for a remote command: the host once `true` ran
    /// there with status 0; else Barman's reason (`Connection failed using '<ssh_command> '
    /// return code <n>`, or `Unable to execute <ssh_command>`).
    pub async fn connect(ssh_command: &str) -> Result<Self> {
        let host = SshHost::new(ssh_command, &[]);
        let output = run_shell(&host.line("true", &[]))
            .await
            .map_err(|_| Error::Provider(format!("Unable to execute {ssh_command}")))?;
        if output.code != Some(0) {
            return Err(Error::Provider(format!(
                "Connection failed using '{ssh_command} {}' return code {}",
                host.options.join(" "),
                output.code.unwrap_or(-1)
            )));
        }
        Ok(host)
    }

    /// The local shell line that runs `program args` on the host.
    pub fn line(&self, program: &str, args: &[&str]) -> String {
        let remote = full_command_quote(program, args);
        let mut all: Vec<&str> = self.options.iter().map(String::as_str).collect();
        all.push(&remote);
        full_command_quote(&self.ssh_command, &all)
    }
}

#[async_trait]
impl Host for SshHost {
    async fn run(&self, program: &str, args: &[&str]) -> Result<CommandOutput> {
        let output = run_shell(&self.line(program, args)).await?;
        Ok(CommandOutput {
            success: output.code == Some(0),
            stdout: output.stdout,
        })
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A host whose commands answer from a table, for unit tests of mount discovery.

    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    pub struct FakeHost {
        /// "program arg arg" -> (success, stdout)
        pub answers: BTreeMap<String, (bool, String)>,
        pub calls: Mutex<Vec<String>>,
    }

    impl FakeHost {
        pub fn answer(mut self, command: &str, success: bool, stdout: &str) -> Self {
            self.answers
                .insert(command.to_string(), (success, stdout.to_string()));
            self
        }
    }

    #[async_trait]
    impl Host for FakeHost {
        async fn run(&self, program: &str, args: &[&str]) -> Result<CommandOutput> {
            let line = std::iter::once(program)
                .chain(args.iter().copied())
                .collect::<Vec<_>>()
                .join(" ");
            self.calls.lock().unwrap().push(line.clone());
            let (success, stdout) = self
                .answers
                .get(&line)
                .cloned()
                .unwrap_or((false, String::new()));
            Ok(CommandOutput { success, stdout })
        }
    }
}
