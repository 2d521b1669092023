//! The one place where outcomes become process exit codes, as Barman's cloud commands
//! use them: 0 ok, 1 operation failed, 2 network, 3 bad input, 4 anything else.

use std::process::ExitCode;

use barman_cloud::{Error, ErrorKind};

pub const OK: u8 = 0;

pub fn code_for(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Operation => 1,
        ErrorKind::Network => 2,
        ErrorKind::Input => 3,
        ErrorKind::General => 4,
    }
}

/// Logs `error` as one line (through the same logger as everything else, so `-q` works)
/// and returns its exit code.
pub fn report(error: &Error) -> ExitCode {
    tracing::error!("{error}");
    ExitCode::from(code_for(error.kind()))
}

/// Argument errors: clap prints usage and message; Barman exits 3 for all of them.
pub fn report_usage(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind as K;
    match error.kind() {
        K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            ExitCode::from(OK)
        }
        _ => {
            // One line, as every error we print: clap's own hint lines add nothing.
            let text = error.render().to_string();
            let line = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("error");
            eprintln!("{}", line.trim_end());
            ExitCode::from(code_for(ErrorKind::Input))
        }
    }
}
