//! Logging on stderr in Barman's format, `YYYY-MM-DD HH:MM:SS,mmm [PID] LEVEL: message`,
//! with Barman's verbosity arithmetic: WARNING by default, `-v` INFO, `-vv` DEBUG, `-q`
//! ERROR, `-qq` and beyond nothing but fatal messages. Secrets are hidden in every line.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

struct BarmanFormat;

impl<S, N> FormatEvent<S, N> for BarmanFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARNING",
            Level::INFO => "INFO",
            Level::DEBUG | Level::TRACE => "DEBUG",
        };
        let now = chrono::Local::now();
        write!(
            writer,
            "{} [{}] {level}: ",
            now.format("%Y-%m-%d %H:%M:%S,%3f"),
            std::process::id()
        )?;
        // Fields are rendered first so that no secret reaches the log (see secrets.rs).
        let mut fields = String::new();
        ctx.field_format()
            .format_fields(Writer::new(&mut fields), event)?;
        writeln!(writer, "{}", crate::secrets::redact(&fields))
    }
}

pub fn init(verbose: u8, quiet: u8) {
    let score = 30 - 10 * (i32::from(verbose) - i32::from(quiet));
    let ours = match score.max(10) {
        10 => "debug",
        20 => "info",
        30 => "warn",
        40 => "error",
        _ => "off",
    };
    // Libraries (HTTP, credential chains) speak one level below us: their warnings are
    // noise in an archive_command log unless asked for with -v.
    let others = match ours {
        "debug" => "info",
        "info" => "warn",
        "warn" => "error",
        quieter => quieter,
    };
    let filter = tracing_subscriber::EnvFilter::new(format!(
        "{others},barman_cloud={ours},barman_cloud_cli={ours}"
    ));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(BarmanFormat)
        .try_init();
}
