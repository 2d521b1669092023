//! `barman recover` (`restore`) of a snapshot backup: Barman 3.20.1's checks of the
//! command line (`cli.restore`) in its order, the WAL archiving it runs first, then
//! `barman_cloud::server::recover` and Barman's closing report.

use barman_cloud::Error;
use barman_cloud::catalog::PyValue;
use barman_cloud::catalog::render::human_readable_timedelta;
use barman_cloud::catalog::timestamp;
use barman_cloud::server::archive::archive_incoming;
use barman_cloud::server::backup_id;
use barman_cloud::server::config::{Config, Value};
use barman_cloud::server::home::{ServerHome, load_backups};
use barman_cloud::server::hooks::{Hooks, RecoverOption, recover_env};
use barman_cloud::server::recover::{RecoverOptions, RecoveryResults, Report, recover_snapshot};
use barman_cloud::server::recovery_conf::Assertion;
use barman_cloud::snapshot::aws::AwsSnapshotSettings;
use barman_cloud::snapshot::{ProviderOptions, provider_for_backup};

use super::args::RecoverArgs;
use super::output::Output;
use super::wal::{RECOVER, archive_paths, archive_settings, get_server};

struct Console<'a>(&'a mut Output);

impl Report for Console<'_> {
    fn info(&mut self, line: &str) {
        self.0.info(line);
    }

    fn warning(&mut self, line: &str) {
        self.0.warning(line, "barman.recovery_executor");
    }
}

/// Python's `socket.getfqdn()`: the host name resolved to an address and that address
/// back to its (first) name; the host name itself when either lookup fails. (Python
/// would prefer an alias containing a dot; the resolver gives the primary name only.)
fn fqdn() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length.
    let named = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    let hostname = String::from_utf8_lossy(&buffer[..end]).into_owned();
    if named != 0 {
        return hostname;
    }
    reverse_name(&hostname).unwrap_or(hostname)
}

fn reverse_name(hostname: &str) -> Option<String> {
    let name = std::ffi::CString::new(hostname).ok()?;
    let mut found: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C string, null hints and service, `found` freed below.
    let resolved = unsafe {
        libc::getaddrinfo(
            name.as_ptr(),
            std::ptr::null(),
            std::ptr::null(),
            &mut found,
        )
    };
    if resolved != 0 || found.is_null() {
        return None;
    }
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: `found` is the list getaddrinfo returned; its first entry's address and
    // length are valid; `host` is writable for its length.
    let named = unsafe {
        let first = &*found;
        let named = libc::getnameinfo(
            first.ai_addr,
            first.ai_addrlen,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        );
        libc::freeaddrinfo(found);
        named
    };
    if named != 0 {
        return None;
    }
    // SAFETY: getnameinfo wrote a NUL-terminated string.
    let text = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    Some(text.to_string_lossy().into_owned())
}

/// Barman's backup choice for `auto` (`cli.restore`): with a time or LSN target, the
/// newest copied backup ending at or before it (on the target timeline if one is given);
/// without a target, the newest one (on the target timeline if given). Refusals are
/// [`Error::Refused`]; what Barman raises (an unparsable time, `current`) is an error of
/// another kind.
fn choose_backup<'a>(
    home: &ServerHome,
    backups: &'a [barman_cloud::catalog::BackupInfo],
    args: &RecoverArgs,
) -> Result<&'a barman_cloud::catalog::BackupInfo, Error> {
    let tli = match args.target_tli.as_deref() {
        None => None,
        Some("current") => {
            return Err(Error::Config(
                "'current' is not a valid timeline keyword when recovering without a backup_id"
                    .into(),
            ));
        }
        Some("latest") => {
            let latest = barman_cloud::server::check::latest_archived(&home.wal);
            Some(i64::from(*latest.keys().next_back().ok_or_else(|| {
                Error::Config("max() arg is an empty sequence".into())
            })?))
        }
        Some(number) => Some(
            number
                .parse::<i64>()
                .map_err(|_| Error::Config(format!("{number} is not a valid timeline")))?,
        ),
    };
    let refused = if args.target_immediate {
        Some("target_immediate")
    } else if args.target_xid.is_some() {
        Some("target_xid")
    } else if args.target_name.is_some() {
        Some("target_name")
    } else {
        None
    };
    if let Some(option) = refused {
        return Err(Error::Refused(format!(
            "For PITR without a backup_id, the only possible recovery targets are target_time \
             and target_lsn. '{option}' recovery target is not allowed without a backup_id."
        )));
    }
    let mut candidates: Vec<&barman_cloud::catalog::BackupInfo> = backups
        .iter()
        .filter(|b| b.status.as_ref().is_some_and(|s| s.is_copy_done()))
        .collect();
    candidates.sort_by(|a, b| b.backup_id.cmp(&a.backup_id));
    let on_timeline = |b: &&&barman_cloud::catalog::BackupInfo| tli.is_none() || b.timeline == tli;
    let chosen = if let Some(text) = &args.target_time {
        let target = timestamp::parse(text).map_err(|e| {
            Error::Config(format!(
                "Unable to parse the target time parameter {}: {e}",
                barman_cloud::catalog::pyliteral::repr_str(text)
            ))
        })?;
        candidates
            .iter()
            .filter(|b| b.end_time.is_some_and(|end| end <= target))
            .find(on_timeline)
    } else if let Some(text) = &args.target_lsn {
        let target = barman_cloud::wal::Lsn::parse(text)
            .ok_or_else(|| Error::Config(format!("Invalid LSN: {text}")))?;
        candidates
            .iter()
            .filter(|b| {
                b.end_xlog
                    .as_deref()
                    .and_then(barman_cloud::wal::Lsn::parse)
                    .is_some_and(|end| end <= target)
            })
            .find(on_timeline)
    } else {
        candidates.iter().find(on_timeline)
    };
    chosen
        .copied()
        .ok_or_else(|| Error::Refused("Cannot find any candidate backup for recovery.".into()))
}

pub(super) fn recover_command(config: &Config, args: &RecoverArgs, out: &mut Output) -> u8 {
    let mut server = match get_server(config, &args.server, RECOVER, out) {
        Ok(server) => server,
        Err(code) => return code,
    };
    let targets = [
        args.target_time.is_some(),
        args.target_xid.is_some(),
        args.target_lsn.is_some(),
        args.target_name.is_some(),
        args.target_immediate,
    ];
    if targets.iter().filter(|t| **t).count() > 1 {
        out.error(
            "You cannot specify multiple targets for the recovery operation",
            "barman.cli",
        );
        return out.close();
    }
    let home = ServerHome::from_config(&server);
    let backups = load_backups(&home);
    let info = if args.backup_id == "auto" {
        match choose_backup(&home, &backups, args) {
            Ok(info) => info.clone(),
            Err(Error::Refused(message)) => {
                out.error(&message, "barman.cli");
                return out.close();
            }
            Err(error) => {
                out.exception(
                    &format!("{error}\nSee log file for more details."),
                    "barman.cli",
                );
                return out.close();
            }
        }
    } else {
        match backup_id::resolve(&backups, &args.backup_id, &server.name) {
            Ok(info) => info.clone(),
            Err(error) => {
                out.error(&error.to_string(), "barman.cli");
                return out.close();
            }
        }
    };
    if !info.status.as_ref().is_some_and(|s| s.is_copy_done()) {
        out.error(
            &format!(
                "Cannot restore from backup '{}' of server '{}': backup status is not DONE",
                args.backup_id, server.name
            ),
            "barman.cli",
        );
        return out.close();
    }
    let mut tablespaces: Vec<(String, String)> = Vec::new();
    for rule in &args.tablespaces {
        match rule.split_once(':') {
            Some((name, location)) => {
                tablespaces.retain(|(n, _)| n != name);
                tablespaces.push((name.to_string(), location.to_string()));
            }
            None => {
                out.error(
                    &format!(
                        "Invalid tablespace relocation rule '{rule}'\nHINT: The valid syntax \
                         for a relocation rule is NAME:LOCATION"
                    ),
                    "barman.cli",
                );
                return out.close();
            }
        }
    }
    let valid: Vec<String> = info
        .tablespaces
        .iter()
        .flatten()
        .map(|t| t.name.clone())
        .collect();
    for (name, _) in &tablespaces {
        if !valid.contains(name) {
            out.error(
                &format!(
                    "Invalid tablespace name '{name}'\nHINT: Please use any of the following \
                     tablespaces: {}",
                    valid.join(", ")
                ),
                "barman.cli",
            );
            return out.close();
        }
    }
    if args.destination.contains(':') {
        out.error(
            "The destination directory parameter cannot contain the ':' character\nHINT: If \
             you want to do a remote recovery you have to use the --remote-ssh-command option",
            "barman.cli",
        );
        return out.close();
    }
    let get_wal = args
        .get_wal
        .unwrap_or_else(|| server.recovery_options.iter().any(|o| o == "get-wal"));
    if args.network_compression == Some(true) && args.remote_ssh_command.is_none() {
        out.error(
            "Network compression can only be used with remote recovery.\nHINT: If you want \
             to do a remote recovery you have to use the --remote-ssh-command option",
            "barman.cli",
        );
        return out.close();
    }
    let backup_id = info.backup_id.clone().unwrap_or_default();
    if info.snapshots_info.is_none() {
        if args.snapshot_recovery_instance.is_some() {
            out.error(
                &format!(
                    "Backup {backup_id} is not a snapshot backup but the following snapshot \
                     arguments have been used: --snapshot-recovery-instance"
                ),
                "barman.cli",
            );
        } else {
            out.error(
                &format!(
                    "Backup {backup_id} is not a snapshot backup: barman-rs recovers snapshot \
                     backups only"
                ),
                "barman.cli",
            );
        }
        return out.close();
    }
    let Some(instance) = args.snapshot_recovery_instance.clone() else {
        out.error(
            &format!(
                "Backup {backup_id} is a snapshot backup and the following required arguments \
                 have not been provided: --snapshot-recovery-instance"
            ),
            "barman.cli",
        );
        return out.close();
    };
    if !tablespaces.is_empty() {
        out.error(
            &format!(
                "Backup {backup_id} is a snapshot backup therefore tablespace relocation rules \
                 cannot be used."
            ),
            "barman.cli",
        );
        return out.close();
    }
    if let Some(region) = &args.aws_region {
        server.aws_region = Some(region.clone());
    }
    if let Some(group) = &args.azure_resource_group {
        server.azure_resource_group = Some(group.clone());
    }
    if let Some(zone) = args
        .gcp_zone
        .as_ref()
        .or(args.snapshot_recovery_zone.as_ref())
    {
        server.gcp_zone = Some(zone.clone());
    }

    // Barman files the WALs waiting in incoming/ first (quietly).
    if !args.skip_archive_wal && server.archiver {
        match archive_settings(&server) {
            Ok(settings) => match archive_incoming(&archive_paths(&server), &settings) {
                Ok(outcome) => {
                    for line in outcome.lines(false) {
                        out.info(&line);
                    }
                }
                Err(error) => {
                    out.exception(
                        &format!("{error}\nSee log file for more details."),
                        "barman.cli",
                    );
                    return out.close();
                }
            },
            Err(message) => {
                out.error(&message, "barman.server");
                return out.close();
            }
        }
    }

    let parallel_jobs = args
        .jobs
        .unwrap_or_else(|| match server.value("parallel_jobs") {
            Some(Value::Int(n)) => usize::try_from(*n).unwrap_or(1),
            _ => 1,
        });
    let options = RecoverOptions {
        destination: args.destination.clone(),
        remote_ssh_command: args.remote_ssh_command.clone(),
        recovery_instance: instance,
        target_time: args.target_time.clone(),
        target_xid: args.target_xid.clone(),
        target_lsn: args.target_lsn.clone(),
        target_name: args.target_name.clone(),
        target_immediate: args.target_immediate,
        exclusive: args.exclusive,
        target_tli: args.target_tli.clone(),
        target_action: args.target_action.clone(),
        standby_mode: args.standby_mode,
        get_wal,
        restore_command: args.restore_command.clone(),
        recovery_option_port: args.recovery_option_port.clone(),
        recovery_conf_filename: args.recovery_conf_filename.clone(),
        wal_directory: args.staging_wal_directory.clone(),
        partial_wal: args.partial_wal,
        parallel_jobs,
        network_compression: args.network_compression == Some(true),
        bwlimit: args.bwlimit,
        barman_user: config.barman_user.clone(),
        fqdn: if args.remote_ssh_command.is_some() {
            fqdn()
        } else {
            String::new()
        },
    };
    let provider_options = ProviderOptions {
        aws: AwsSnapshotSettings {
            profile: server.aws_profile.clone(),
            region: server.aws_region.clone(),
            ..Default::default()
        },
        gcp_zone: server.gcp_zone.clone(),
        azure_resource_group: server.azure_resource_group.clone(),
        azure_credential: match server.azure_credential.as_deref() {
            Some("azure-cli") => Some(barman_cloud::storage::AzureCredentialKind::AzureCli),
            Some("managed-identity") => {
                Some(barman_cloud::storage::AzureCredentialKind::ManagedIdentity)
            }
            _ => None,
        },
    };
    // Barman's remote command: tried (`true`) before the hooks run.
    if let Some(ssh) = &args.remote_ssh_command
        && super::check::runtime()
            .block_on(barman_cloud::snapshot::host::SshHost::connect(ssh))
            .is_err()
    {
        out.error(
            &format!("Unable to connect to the target host using the command '{ssh}'"),
            "barman.fs",
        );
        return out.close();
    }
    // The recovery hook scripts' environment (Barman's: the recovery's options set, the
    // snapshot recovery instance among them).
    let hook_env = recover_env(
        &home,
        &info,
        &args.destination,
        &tablespaces,
        args.remote_ssh_command.as_deref(),
        recover_hook_options(&options),
    );
    let hooks_log = |level: i64, text: &str| out.log.record(level, "barman.hooks", text);
    let hooks = Hooks {
        server: &server,
        config_file: &config.config_file,
        log: &hooks_log,
    };
    let pre = hooks.pre("recovery", &hook_env);
    if let Err(error) = pre {
        out.exception(
            &format!("{error}\nSee log file for more details."),
            "barman.cli",
        );
        return out.close();
    }
    let runtime = super::check::runtime();
    let snapshots = info.snapshots_info.clone().expect("a snapshot backup");
    let name = server.name.clone();
    let outcome = runtime.block_on(async {
        let provider = provider_for_backup(&snapshots, &provider_options).await?;
        let mut console = Console(out);
        recover_snapshot(
            &home,
            &name,
            &info,
            &options,
            provider.as_ref(),
            &mut console,
        )
        .await
    });
    match outcome {
        Ok(results) => {
            let hooks_log = |level: i64, text: &str| out.log.record(level, "barman.hooks", text);
            let hooks = Hooks {
                server: &server,
                config_file: &config.config_file,
                log: &hooks_log,
            };
            hooks.post("recovery", "post-recovery", &hook_env);
            print_results(&results, out);
            out.close()
        }
        Err(error) => {
            match &error {
                // Barman's own refusals and failed steps.
                Error::Config(_) | Error::Failed(_) | Error::Refused(_) => {
                    out.error(&error.to_string(), "barman.cli")
                }
                // What Barman lets through to its main loop (cloud, host, files).
                _ => out.exception(
                    &format!("{error}\nSee log file for more details."),
                    "barman.cli",
                ),
            }
            out.close()
        }
    }
}

/// The options Barman gives its recovery (`BARMAN_RECOVER_OPTIONS` keeps those set).
fn recover_hook_options(options: &RecoverOptions) -> Vec<(&'static str, RecoverOption)> {
    let text = |value: &Option<String>| RecoverOption::Text(value.clone().unwrap_or_default());
    let tli = match options.target_tli.as_deref() {
        Some(tli) => match tli.parse::<i64>() {
            Ok(n) => RecoverOption::Int(n),
            Err(_) => RecoverOption::Text(tli.to_string()),
        },
        None => RecoverOption::Text(String::new()),
    };
    vec![
        ("target_tli", tli),
        ("target_time", text(&options.target_time)),
        ("target_xid", text(&options.target_xid)),
        ("target_lsn", text(&options.target_lsn)),
        ("target_name", text(&options.target_name)),
        (
            "target_immediate",
            RecoverOption::Bool(options.target_immediate),
        ),
        ("exclusive", RecoverOption::Bool(options.exclusive)),
        ("target_action", text(&options.target_action)),
        ("standby_mode", RecoverOption::Bool(options.standby_mode)),
        (
            "recovery_conf_filename",
            text(&options.recovery_conf_filename),
        ),
        ("recovery_option_port", text(&options.recovery_option_port)),
        ("custom_restore_command", text(&options.restore_command)),
        ("copy_partial", RecoverOption::Bool(options.partial_wal)),
        (
            "recovery_instance",
            RecoverOption::Text(options.recovery_instance.clone()),
        ),
    ]
}

fn elapsed_seconds(results: &RecoveryResults) -> f64 {
    (chrono::Local::now() - results.start_time)
        .num_microseconds()
        .unwrap_or(0) as f64
        / 1e6
}

fn elapsed_text(seconds: f64) -> String {
    human_readable_timedelta(&PyValue::Float(seconds))
        .unwrap_or_else(|_| "less than one second".to_string())
}

/// Barman's JSON `result_recovery`: the lists (each setting as `[file, line, key,
/// value]`), their counts, warnings, and the start time and duration.
fn json_results(results: &RecoveryResults, out: &mut Output) {
    let assertions = |list: &[Assertion]| {
        PyValue::List(
            list.iter()
                .map(|a| {
                    PyValue::List(vec![
                        PyValue::str(&a.filename),
                        PyValue::Int(a.line as i128),
                        PyValue::str(&a.key),
                        a.value
                            .as_deref()
                            .map(PyValue::str)
                            .unwrap_or(PyValue::None),
                    ])
                })
                .collect(),
        )
    };
    out.json_result("changes_count", PyValue::Int(results.changes.len() as i128));
    out.json_result("changes", assertions(&results.changes));
    if !results.changes.is_empty() {
        out.warning(
            "IMPORTANT! Some settings have been modified to prevent data losses. See \
             'changes' key.",
            "barman.output",
        );
    }
    out.json_result(
        "warnings_count",
        PyValue::Int(results.warnings.len() as i128),
    );
    out.json_result("warnings", assertions(&results.warnings));
    if !results.warnings.is_empty() {
        out.warning(
            "WARNING! You are required to review the options as potentially dangerous. See \
             'warnings' key.",
            "barman.output",
        );
    }
    out.json_result(
        "missing_files",
        PyValue::List(results.missing_files.iter().map(PyValue::str).collect()),
    );
    if !results.missing_files.is_empty() {
        out.warning(
            "WARNING! Some configuration files have not been saved during backup, hence \
             they have not been restored. See 'missing_files' key.",
            "barman.output",
        );
    }
    if results.get_wal {
        out.warning(
            "WARNING: 'get-wal' is in the specified 'recovery_options'. Before you start up \
             the PostgreSQL server, please review the recovery configuration inside the \
             target directory. Make sure that 'restore_command' can be executed by the \
             PostgreSQL user.",
            "barman.output",
        );
    }
    let start = results.start_time.fixed_offset();
    out.json_result(
        "recovery_start_time",
        PyValue::str(timestamp::python_str(&start)),
    );
    out.json_result(
        "recovery_start_time_timestamp",
        PyValue::str(start.timestamp().to_string()),
    );
    let seconds = elapsed_seconds(results);
    out.json_result("recovery_elapsed_time", PyValue::str(elapsed_text(seconds)));
    out.json_result("recovery_elapsed_time_seconds", PyValue::Float(seconds));
}

/// Barman's console `result_recovery`.
fn print_results(results: &RecoveryResults, out: &mut Output) {
    if out.format == super::args::Format::Json {
        json_results(results, out);
        return;
    }
    if !results.changes.is_empty() {
        out.info("");
        out.info("IMPORTANT");
        out.info("These settings have been modified to prevent data losses");
        out.info("");
        for a in &results.changes {
            out.info(&format!(
                "{} line {}: {} = {}",
                a.filename,
                a.line,
                a.key,
                a.shown_value()
            ));
        }
    }
    if !results.warnings.is_empty() {
        out.info("");
        out.info("WARNING");
        out.info("You are required to review the following options as potentially dangerous");
        out.info("");
        for a in &results.warnings {
            out.info(&format!(
                "{} line {}: {} = {}",
                a.filename,
                a.line,
                a.key,
                a.shown_value()
            ));
        }
    }
    if !results.missing_files.is_empty() {
        out.info("");
        out.info("WARNING");
        out.info(
            "The following configuration files have not been saved during backup, hence they \
             have not been restored.",
        );
        out.info(
            "You need to manually restore them in order to start the restored PostgreSQL \
             instance:",
        );
        out.info("");
        for name in &results.missing_files {
            out.info(&format!("    {name}"));
        }
    }
    if results.get_wal {
        out.info("");
        out.info("WARNING: 'get-wal' is in the specified 'recovery_options'.");
        out.info(&format!(
            "Before you start up the PostgreSQL server, please review the {} file",
            results.recovery_configuration_file
        ));
        out.info(
            "inside the target directory. Make sure that 'restore_command' can be executed by \
             the PostgreSQL user.",
        );
    }
    out.info("");
    let start = results.start_time.fixed_offset();
    let elapsed = elapsed_text(elapsed_seconds(results));
    out.info(&format!(
        "Restore operation completed (start time: {}, elapsed time: {elapsed})",
        timestamp::python_str(&start)
    ));
    out.info("Your PostgreSQL server has been successfully prepared for recovery!");
}
