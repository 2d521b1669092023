//! Command-line syntax of the nine commands, argparse-compatible: unique prefixes of long
//! options are accepted, `--help` is the only help flag (`-h` is `--host` in
//! barman-cloud-backup), and every parse error exits 3.

use std::path::PathBuf;

use barman_cloud::backup_catalog::{KeepTarget, TargetTimeline};
use barman_cloud::compression::{Compression, CompressionLevel};
use barman_cloud::pg::ConnectionOptions;
use barman_cloud::retention::RetentionPolicy;
pub use barman_cloud::snapshot::aws::LockMode;
use barman_cloud::storage::{
    AddressingStyle, AzureCredentialKind, Provider, S3Encryption, StorageOptions,
};
use barman_cloud::units;
use clap::{ArgAction, ArgGroup, Args, Parser};

/// The longest `--read-timeout` passed on (ten years).
const MAX_READ_TIMEOUT_SECS: i64 = 10 * 366 * 24 * 3600;

/// Options every command accepts.
#[derive(Args, Debug)]
pub struct Common {
    /// Show this help message and exit
    #[arg(long = "help", action = ArgAction::Help)]
    help: Option<bool>,
    /// Increase output verbosity (e.g., -vv is more than -v)
    #[arg(short = 'v', long, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Decrease output verbosity (e.g., -qq is less than -q)
    #[arg(short = 'q', long, action = ArgAction::Count)]
    pub quiet: u8,
    /// Test cloud connectivity and exit
    #[arg(short = 't', long)]
    pub test: bool,
    /// The cloud provider to use as a storage backend (file:// URLs always use a local directory)
    #[arg(long, value_parser = choice(PROVIDERS), default_value = "aws-s3")]
    pub cloud_provider: Provider,
    /// Override default S3 endpoint URL with the given one
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// Profile name (e.g. INI section in AWS credentials file)
    #[arg(short = 'P', long = "aws-profile", alias = "profile")]
    pub aws_profile: Option<String>,
    /// Use IAM roles for service accounts (EKS): web identity from AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE
    #[arg(long)]
    pub aws_irsa: bool,
    /// The time in seconds until a timeout is raised when waiting to read from a connection (defaults to 60 seconds)
    #[arg(long, value_parser = parse_python_int, allow_negative_numbers = true)]
    pub read_timeout: Option<i64>,
    /// S3 addressing style
    #[arg(long, value_parser = choice(ADDRESSING_STYLES))]
    pub addressing_style: Option<AddressingStyle>,
    /// Optionally specify the type of credential to use when authenticating with Azure
    #[arg(long = "azure-credential", aliases = ["credential", "default"], value_parser = choice(AZURE_CREDENTIALS))]
    pub azure_credential: Option<AzureCredentialKind>,
}

/// The names argparse accepts for an option with `choices`, and what each means.
type Choices<T> = &'static [(&'static str, T)];

const PROVIDERS: Choices<Provider> = &[
    ("aws-s3", Provider::AwsS3),
    ("azure-blob-storage", Provider::AzureBlobStorage),
    ("google-cloud-storage", Provider::GoogleCloudStorage),
];
const ADDRESSING_STYLES: Choices<AddressingStyle> = &[
    ("auto", AddressingStyle::Auto),
    ("virtual", AddressingStyle::Virtual),
    ("path", AddressingStyle::Path),
];
const AZURE_CREDENTIALS: Choices<AzureCredentialKind> = &[
    ("azure-cli", AzureCredentialKind::AzureCli),
    ("managed-identity", AzureCredentialKind::ManagedIdentity),
    ("default", AzureCredentialKind::Default),
];
const S3_ENCRYPTIONS: Choices<S3Encryption> = &[
    ("AES256", S3Encryption::Aes256),
    ("aws:kms", S3Encryption::AwsKms),
];
const LOCK_MODES: Choices<LockMode> = &[
    ("governance", LockMode::Governance),
    ("compliance", LockMode::Compliance),
];
const KEEP_TARGETS: Choices<KeepTarget> = &[
    ("full", KeepTarget::Full),
    ("standalone", KeepTarget::Standalone),
];

/// A value parser that accepts exactly `choices` (listed in help and errors, as argparse
/// lists them) and gives the library's value for the name.
fn choice<T: Clone + Send + Sync + 'static>(
    choices: Choices<T>,
) -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(choices.iter().map(|(name, _)| *name)).map(
        move |name| {
            choices
                .iter()
                .find(|(known, _)| *known == name)
                .map(|(_, value)| value.clone())
                .expect("the parser accepted only these names")
        },
    )
}

impl Common {
    pub fn storage_options(&self) -> StorageOptions {
        StorageOptions {
            cloud_provider: Some(self.cloud_provider),
            endpoint_url: self.endpoint_url.clone(),
            aws_profile: self.aws_profile.clone(),
            aws_irsa: self.aws_irsa,
            // Barman takes any integer; beyond ten years a timeout means none, and the
            // HTTP client's deadline arithmetic must not overflow.
            read_timeout_secs: self
                .read_timeout
                .map(|t| t.clamp(1, MAX_READ_TIMEOUT_SECS) as u64),
            addressing_style: self.addressing_style.unwrap_or_default(),
            azure_credential: self.azure_credential,
            ..StorageOptions::default()
        }
    }
}

/// S3 server-side encryption options of the commands that write.
#[derive(Args, Debug)]
pub struct Encryption {
    /// The encryption algorithm used when storing the uploaded data in S3
    #[arg(short = 'e', long, value_parser = choice(S3_ENCRYPTIONS))]
    pub encryption: Option<S3Encryption>,
    /// The AWS KMS key ID that should be used for encrypting the uploaded data in S3
    #[arg(long)]
    pub sse_kms_key_id: Option<String>,
    /// The name of an encryption scope defined in the Azure Blob Storage service
    #[arg(long)]
    pub encryption_scope: Option<String>,
    /// The name of the GCP KMS key which should be used for encrypting the uploaded data in GCS
    #[arg(long)]
    pub kms_key_name: Option<String>,
}

impl Encryption {
    pub fn apply(&self, options: &mut StorageOptions) {
        options.s3_encryption = self.encryption;
        options.sse_kms_key_id = self.sse_kms_key_id.clone();
        options.encryption_scope = self.encryption_scope.clone();
        options.kms_key_name = self.kms_key_name.clone();
    }
}

fn parse_size(text: &str) -> Result<u64, String> {
    units::parse_size(text).map_err(|e| e.to_string())
}

/// An option Barman reads with Python's `int`: blanks around, a sign, digits with single
/// underscores between them, of any length. Values beyond `i64` saturate: for the
/// options read this way (`--parallel`, `--batch-size`, `--read-timeout`) they mean the
/// same as the largest or smallest `i64`.
fn parse_python_int(text: &str) -> Result<i64, String> {
    let bad = || format!("invalid int value: '{text}'");
    let trimmed = text.trim();
    let (negative, digits) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let well_formed = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !well_formed {
        return Err(bad());
    }
    let digits = digits.replace('_', "");
    Ok(match digits.parse::<i64>() {
        Ok(n) if negative => -n,
        Ok(n) => n,
        Err(_) if negative => i64::MIN,
        Err(_) => i64::MAX,
    })
}

fn parse_positive(text: &str) -> Result<u32, String> {
    match text.trim().parse::<i64>() {
        Ok(n) if n >= 1 && n <= u32::MAX as i64 => Ok(n as u32),
        _ => Err(format!("'{text}' must be a positive integer")),
    }
}

fn parse_tag(text: &str) -> Result<(String, String), String> {
    units::parse_tag(text).map_err(|e| e.to_string())
}

fn parse_csv_tag(text: &str) -> Result<(String, String), String> {
    units::parse_csv_tag(text).map_err(|e| e.to_string())
}

fn parse_level(text: &str) -> Result<CompressionLevel, String> {
    CompressionLevel::parse(text).map_err(|e| e.to_string())
}

/// The codec of a mutually exclusive group of compression flags, if one was given.
fn chosen_compression<const N: usize>(flags: [(bool, Compression); N]) -> Option<Compression> {
    flags.into_iter().find_map(|(on, c)| on.then_some(c))
}

/// Picks the effective tag list: `--tag` if any, else `--tags`.
pub fn effective_tags(
    tag: &[(String, String)],
    tags: &Option<Vec<(String, String)>>,
) -> Vec<(String, String)> {
    if !tag.is_empty() {
        tag.to_vec()
    } else {
        tags.clone().unwrap_or_default()
    }
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, infer_long_args = true)]
#[command(group(ArgGroup::new("compression").multiple(false)))]
#[command(
    about = "Archive a WAL file to cloud storage (drop-in for Barman's barman-cloud-wal-archive)"
)]
pub struct WalArchiveArgs {
    /// URL of the cloud destination, such as a bucket in AWS S3 (e.g. s3://bucket/path), or file:///dir
    #[arg(value_name = "DESTINATION_URL")]
    pub url: String,
    /// The name of the server as configured in Barman
    pub server_name: String,
    /// The value of the '%p' keyword (according to 'archive_command')
    pub wal_path: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
    /// gzip-compress the WAL while uploading to the cloud
    #[arg(short = 'z', long, group = "compression")]
    pub gzip: bool,
    /// bzip2-compress the WAL while uploading to the cloud
    #[arg(short = 'j', long, group = "compression")]
    pub bzip2: bool,
    /// xz-compress the WAL while uploading to the cloud
    #[arg(long, group = "compression")]
    pub xz: bool,
    /// snappy-compress the WAL while uploading to the cloud
    #[arg(long, group = "compression")]
    pub snappy: bool,
    /// zstd-compress the WAL while uploading to the cloud
    #[arg(long, group = "compression")]
    pub zstd: bool,
    /// lz4-compress the WAL while uploading to the cloud
    #[arg(long, group = "compression")]
    pub lz4: bool,
    /// A compression level: low, medium, high or an integer (default: medium)
    #[arg(long, value_parser = parse_level, allow_negative_numbers = true)]
    pub compression_level: Option<CompressionLevel>,
    /// Tag KEY,VALUE added to every uploaded WAL file (repeatable)
    #[arg(long, value_parser = parse_tag, action = ArgAction::Append, conflicts_with = "tags")]
    pub tag: Vec<(String, String)>,
    /// Tags (KEY,VALUE ...) added to every uploaded WAL file (deprecated form; end with --)
    #[arg(long, value_parser = parse_csv_tag, num_args = 0..)]
    pub tags: Option<Vec<(String, String)>>,
    /// Tag KEY,VALUE for history files, used instead of --tag (repeatable)
    #[arg(long, value_parser = parse_tag, action = ArgAction::Append, conflicts_with = "history_tags")]
    pub history_tag: Vec<(String, String)>,
    /// Tags (KEY,VALUE ...) for history files (deprecated form)
    #[arg(long, value_parser = parse_csv_tag, num_args = 0..)]
    pub history_tags: Option<Vec<(String, String)>>,
    #[command(flatten)]
    pub encryption: Encryption,
    /// SSE-C key for S3, as file:///path to a file holding the base64 of a 32-byte key
    #[arg(long)]
    pub sse_customer_key: Option<String>,
    /// Azure: maximum block size for uploads bigger than --max-single-put-size (default 4MB)
    #[arg(long, value_parser = parse_size)]
    pub max_block_size: Option<u64>,
    /// Azure: maximum number of concurrent block uploads (default 1)
    #[arg(long, value_parser = parse_positive)]
    pub max_concurrency: Option<u32>,
    /// Azure: largest upload done as a single request (default 64MB)
    #[arg(long, value_parser = parse_size)]
    pub max_single_put_size: Option<u64>,
}

impl WalArchiveArgs {
    pub fn compression(&self) -> Option<Compression> {
        chosen_compression([
            (self.gzip, Compression::Gzip),
            (self.bzip2, Compression::Bzip2),
            (self.xz, Compression::Xz),
            (self.snappy, Compression::Snappy),
            (self.zstd, Compression::Zstd),
            (self.lz4, Compression::Lz4),
        ])
    }
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, infer_long_args = true)]
#[command(
    about = "Restore a WAL file from cloud storage (drop-in for Barman's barman-cloud-wal-restore)"
)]
pub struct WalRestoreArgs {
    /// URL of the cloud source, such as a bucket in AWS S3 (e.g. s3://bucket/path), or file:///dir
    #[arg(value_name = "SOURCE_URL")]
    pub url: String,
    /// The name of the server as configured in Barman
    pub server_name: String,
    /// The value of the '%f' keyword (according to 'restore_command')
    pub wal_name: String,
    /// The value of the '%p' keyword (according to 'restore_command')
    pub wal_dest: PathBuf,
    #[command(flatten)]
    pub common: Common,
    /// Do not download partial WAL files
    #[arg(long)]
    pub no_partial: bool,
    /// Number of WAL files to fetch in all, prefetching into --spool-dir (values <= 1 disable prefetch)
    #[arg(short = 'p', long, default_value_t = 0, value_parser = parse_python_int, allow_negative_numbers = true)]
    pub parallel: i64,
    /// Directory for prefetched WAL files
    #[arg(long, default_value = "/var/tmp/walrestore")]
    pub spool_dir: PathBuf,
    /// SSE-C key for S3, as file:///path to a file holding the base64 of a 32-byte key
    #[arg(long)]
    pub sse_customer_key: Option<String>,
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, infer_long_args = true)]
#[command(about = "Check that the WAL archive destination is safe for a new PostgreSQL cluster")]
pub struct CheckWalArchiveArgs {
    /// URL of the cloud destination, such as a bucket in AWS S3 (e.g. s3://bucket/path), or file:///dir
    #[arg(value_name = "DESTINATION_URL")]
    pub url: String,
    /// The name of the server as configured in Barman
    pub server_name: String,
    #[command(flatten)]
    pub common: Common,
    /// The earliest timeline whose WALs should cause the check to fail
    #[arg(long, value_parser = parse_positive)]
    pub timeline: Option<u32>,
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, infer_long_args = true)]
#[command(about = "List the backups of a server in cloud storage")]
pub struct BackupListArgs {
    /// URL of the cloud source, such as a bucket in AWS S3 (e.g. s3://bucket/path), or file:///dir
    #[arg(value_name = "SOURCE_URL")]
    pub url: String,
    /// The name of the server as configured in Barman
    pub server_name: String,
    #[command(flatten)]
    pub common: Common,
    /// Output format: console, or anything else for JSON (as Barman)
    #[arg(long, default_value = "console")]
    pub format: String,
    /// SSE-C key for S3, as file:///path to a file holding the base64 of a 32-byte key
    #[arg(long)]
    pub sse_customer_key: Option<String>,
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, infer_long_args = true)]
#[command(about = "Show the metadata of one backup in cloud storage")]
pub struct BackupShowArgs {
    /// URL of the cloud source, such as a bucket in AWS S3 (e.g. s3://bucket/path), or file:///dir
    #[arg(value_name = "SOURCE_URL")]
    pub url: String,
    /// The name of the server as configured in Barman
    pub server_name: String,
    /// The backup ID, a shortcut (first, oldest, last, latest, last-failed) or a backup name
    pub backup_id: String,
    #[command(flatten)]
    pub common: Common,
    /// Output format: console, or anything else for JSON (as Barman)
    #[arg(long, default_value = "console")]
    pub format: String,
    /// SSE-C key for S3, as file:///path to a file holding the base64 of a 32-byte key
    #[arg(long)]
    pub sse_customer_key: Option<String>,
}

fn parse_tablespace_rule(text: &str) -> Result<(String, PathBuf), String> {
    text.split_once(':')
        .map(|(name, location)| (name.to_string(), PathBuf::from(location)))
        .ok_or_else(|| {
            format!("Invalid tablespace relocation rule '{text}': expected NAME:LOCATION")
        })
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, infer_long_args = true)]
#[command(about = "Restore a backup from cloud storage into a new PGDATA directory")]
pub struct RestoreArgs {
    /// URL of the cloud source, such as a bucket in AWS S3 (e.g. s3://bucket/path), or file:///dir
    #[arg(value_name = "SOURCE_URL")]
    pub url: String,
    /// The name of the server as configured in Barman
    pub server_name: String,
    /// The backup ID, a shortcut, a backup name, or `auto` (chosen from the --target-* options)
    pub backup_id: String,
    /// The path to a directory for recovery
    pub recovery_dir: PathBuf,
    #[command(flatten)]
    pub common: Common,
    /// Tablespace relocation rule NAME:LOCATION (repeatable)
    #[arg(long, value_parser = parse_tablespace_rule, action = ArgAction::Append)]
    pub tablespace: Vec<(String, PathBuf)>,
    /// Instance where the disks recovered from the snapshots are attached
    #[arg(long)]
    pub snapshot_recovery_instance: Option<String>,
    /// Zone of the instance for GCP snapshot recovery
    #[arg(long = "gcp-zone", alias = "snapshot-recovery-zone")]
    pub gcp_zone: Option<String>,
    /// Resource group of the instance for Azure snapshot recovery
    #[arg(long)]
    pub azure_resource_group: Option<String>,
    /// AWS region of the instance for snapshot recovery
    #[arg(long)]
    pub aws_region: Option<String>,
    /// SSE-C key for S3, as file:///path to a file holding the base64 of a 32-byte key
    #[arg(long)]
    pub sse_customer_key: Option<String>,
    /// With `auto`: the timeline to recover (a number, `latest` or `current`)
    #[arg(long, value_parser = parse_target_tli)]
    pub target_tli: Option<TargetTimeline>,
    /// With `auto`: the LSN to recover to
    #[arg(long, conflicts_with = "target_time")]
    pub target_lsn: Option<String>,
    /// With `auto`: the time to recover to
    #[arg(long)]
    pub target_time: Option<String>,
}

/// `--target-tli` as Barman's `check_tli` takes it: `current`, `latest` or a positive
/// integer (Python's `int()` syntax).
fn parse_target_tli(text: &str) -> Result<TargetTimeline, String> {
    match text {
        "current" => Ok(TargetTimeline::Current),
        "latest" => Ok(TargetTimeline::Latest),
        _ => match parse_python_int(text) {
            Err(_) => Err(format!("'{text}' is not a valid input")),
            Ok(n) if n < 1 => Err(format!("'{text}' is not a valid positive integer")),
            Ok(n) => Ok(TargetTimeline::Number(n)),
        },
    }
}

fn parse_non_negative(text: &str) -> Result<u64, String> {
    match text.trim().parse::<i64>() {
        Ok(n) if n >= 0 => Ok(n as u64),
        _ => Err(format!("'{text}' must be a non-negative integer")),
    }
}

fn parse_bandwidth(text: &str) -> Result<u64, String> {
    match parse_size(text)? {
        0 => Err(format!("'{text}' must be a positive size")),
        n => Ok(n),
    }
}

/// `--aws-snapshot-lock-expiration-date` as Barman's `strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")`
/// takes it (fractional seconds of 1 to 6 digits required, `Z` literal); kept as given.
fn parse_lock_expiration(text: &str) -> Result<String, String> {
    let fraction_ok = text
        .strip_suffix('Z')
        .and_then(|rest| rest.rsplit_once('.'))
        .is_some_and(|(_, digits)| {
            (1..=6).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
        });
    let parsed = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.fZ");
    if fraction_ok && parsed.is_ok() && text.split('-').next().is_some_and(|y| y.len() == 4) {
        Ok(text.to_string())
    } else {
        Err(format!(
            "Invalid date: '{text}'. Expected format is '%Y-%m-%dT%H:%M:%S.%fZ'."
        ))
    }
}

fn parse_range(text: &str, low: i64, high: i64) -> Result<i64, String> {
    match text.trim().parse::<i64>() {
        Ok(n) if (low..=high).contains(&n) => Ok(n),
        _ => Err(format!(
            "'{text}' must be an integer between {low} and {high}"
        )),
    }
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, infer_long_args = true)]
#[command(group(ArgGroup::new("compression").multiple(false)))]
#[command(
    about = "Take a base backup of a PostgreSQL server into cloud storage (drop-in for Barman's barman-cloud-backup)"
)]
pub struct BackupArgs {
    /// URL of the cloud destination, such as a bucket in AWS S3 (e.g. s3://bucket/path), or file:///dir
    #[arg(value_name = "DESTINATION_URL")]
    pub url: String,
    /// The name of the server as configured in Barman
    pub server_name: String,
    #[command(flatten)]
    pub common: Common,
    /// gzip-compress the backup while uploading to the cloud
    #[arg(short = 'z', long, group = "compression")]
    pub gzip: bool,
    /// bzip2-compress the backup while uploading to the cloud
    #[arg(short = 'j', long, group = "compression")]
    pub bzip2: bool,
    /// snappy-compress the backup while uploading to the cloud
    #[arg(long, group = "compression")]
    pub snappy: bool,
    /// lz4-compress the backup while uploading to the cloud
    #[arg(long, group = "compression")]
    pub lz4: bool,
    /// zstd-compress the backup while uploading to the cloud
    #[arg(long, group = "compression")]
    pub zstd: bool,
    /// Host or Unix socket for PostgreSQL connection (default: libpq settings)
    #[arg(short = 'h', long)]
    pub host: Option<String>,
    /// Port for PostgreSQL connection (default: libpq settings)
    #[arg(short = 'p', long)]
    pub port: Option<String>,
    /// User name for PostgreSQL connection (default: libpq settings)
    #[arg(short = 'U', long)]
    pub user: Option<String>,
    /// Database name or conninfo string for Postgres connection (default: postgres)
    #[arg(short = 'd', long, default_value = "postgres")]
    pub dbname: String,
    /// Forces the initial checkpoint to be done as quickly as possible
    #[arg(long)]
    pub immediate_checkpoint: bool,
    /// Number of subprocesses to upload data to cloud storage (default: 2)
    #[arg(short = 'J', long, value_parser = parse_positive, default_value = "2")]
    pub jobs: u32,
    /// Seconds between keep-alive queries to PostgreSQL during the backup (default: 60; 0 disables)
    #[arg(long, value_parser = parse_non_negative, default_value = "60")]
    pub keepalive_interval: u64,
    /// Maximum size of an archive when uploading to cloud storage (default: 100GB)
    #[arg(short = 'S', long, value_parser = parse_size, default_value = "100GB")]
    pub max_archive_size: u64,
    /// Minimum size of an individual chunk when uploading to cloud storage
    #[arg(long, value_parser = parse_size)]
    pub min_chunk_size: Option<u64>,
    /// The maximum amount of data to be uploaded per second when backing up to object storages
    #[arg(long, value_parser = parse_bandwidth)]
    pub max_bandwidth: Option<u64>,
    /// A name which can be used to reference this backup in commands such as barman-cloud-restore and barman-cloud-backup-delete
    #[arg(short = 'n', long)]
    pub name: Option<String>,
    /// Instance where the disks to be backed up as snapshots are attached
    #[arg(long)]
    pub snapshot_instance: Option<String>,
    /// Name of a disk for which snapshots should be taken (repeatable)
    #[arg(long = "snapshot-disk", action = ArgAction::Append)]
    pub snapshot_disks: Vec<String>,
    /// Zone of the disks from which snapshots should be taken (deprecated: use --gcp-zone)
    #[arg(long)]
    pub snapshot_zone: Option<String>,
    /// Tag KEY,VALUE added to every uploaded file (repeatable)
    #[arg(long, value_parser = parse_tag, action = ArgAction::Append, conflicts_with = "tags")]
    pub tag: Vec<(String, String)>,
    /// Tags (KEY,VALUE ...) added to every uploaded file (deprecated form; end with --)
    #[arg(long, value_parser = parse_csv_tag, num_args = 0..)]
    pub tags: Option<Vec<(String, String)>>,
    #[command(flatten)]
    pub encryption: Encryption,
    /// SSE-C key for S3, as file:///path to a file holding the base64 of a 32-byte key
    #[arg(long)]
    pub sse_customer_key: Option<String>,
    /// The AWS region where the instance and disks for snapshot backups are located
    #[arg(long)]
    pub aws_region: Option<String>,
    /// Seconds to wait for AWS snapshots to be created (default: 3600)
    #[arg(long, value_parser = parse_positive, default_value = "3600")]
    pub aws_await_snapshots_timeout: u32,
    /// The lock mode to apply to the AWS snapshots
    #[arg(long, value_parser = choice(LOCK_MODES))]
    pub aws_snapshot_lock_mode: Option<LockMode>,
    /// Cool-off period in hours for compliance-mode snapshot locks (1 to 72)
    #[arg(long, value_parser = |t: &str| parse_range(t, 1, 72))]
    pub aws_snapshot_lock_cool_off_period: Option<i64>,
    /// Expiration date of the snapshot lock (YYYY-MM-DDThh:mm:ss.sssZ)
    #[arg(long, conflicts_with = "aws_snapshot_lock_duration", value_parser = parse_lock_expiration)]
    pub aws_snapshot_lock_expiration_date: Option<String>,
    /// Duration in days of the snapshot lock (1 to 36500)
    #[arg(long, value_parser = |t: &str| parse_range(t, 1, 36500))]
    pub aws_snapshot_lock_duration: Option<i64>,
    /// The ID of the Azure subscription which owns the instance and disks for snapshot backups
    #[arg(long)]
    pub azure_subscription_id: Option<String>,
    /// The name of the Azure resource group the instance and disks belong to
    #[arg(long)]
    pub azure_resource_group: Option<String>,
    /// GCP project under which disks are located (for snapshot backups)
    #[arg(long, alias = "snapshot-gcp-project")]
    pub gcp_project: Option<String>,
    /// Zone of the disks from which snapshots should be taken
    #[arg(long)]
    pub gcp_zone: Option<String>,
}

impl BackupArgs {
    pub fn compression(&self) -> Option<Compression> {
        chosen_compression([
            (self.gzip, Compression::Gzip),
            (self.bzip2, Compression::Bzip2),
            (self.snappy, Compression::Snappy),
            (self.lz4, Compression::Lz4),
            (self.zstd, Compression::Zstd),
        ])
    }

    pub fn is_snapshot_backup(&self) -> bool {
        self.snapshot_instance.is_some() || !self.snapshot_disks.is_empty()
    }

    pub fn connection_options(&self) -> ConnectionOptions {
        ConnectionOptions {
            host: self.host.clone(),
            port: self.port.clone(),
            user: self.user.clone(),
            dbname: self.dbname.clone(),
        }
    }
}

fn parse_retention_policy(text: &str) -> Result<RetentionPolicy, String> {
    RetentionPolicy::parse(text).map_err(|e| e.to_string())
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, infer_long_args = true)]
#[command(
    about = "Delete backups made with barman-cloud-backup, by ID or by retention policy, \
                   and the WAL no remaining backup needs"
)]
#[command(group(ArgGroup::new("what").required(true).args(["backup_id", "retention_policy"])))]
pub struct BackupDeleteArgs {
    /// URL of the cloud source, such as a bucket in AWS S3 (e.g. s3://bucket/path), or file:///dir
    #[arg(value_name = "SOURCE_URL")]
    pub url: String,
    /// The name of the server as configured in Barman
    pub server_name: String,
    #[command(flatten)]
    pub common: Common,
    /// Backup ID of the backup to be deleted (or a shortcut: first, oldest, last, latest, last-failed; or a backup name)
    #[arg(short = 'b', long)]
    pub backup_id: Option<String>,
    /// Delete every backup obsolete under this policy: REDUNDANCY value | RECOVERY WINDOW OF value {DAYS | WEEKS | MONTHS}
    #[arg(short = 'r', long, value_parser = parse_retention_policy)]
    pub retention_policy: Option<RetentionPolicy>,
    /// The minimum number of backups that should always be available
    #[arg(short = 'm', long, default_value = "0", value_parser = parse_non_negative)]
    pub minimum_redundancy: u64,
    /// Find the objects which need to be deleted but do not delete them
    #[arg(long)]
    pub dry_run: bool,
    /// The maximum number of objects to be deleted in a single request (default and maximum: 1000 for aws-s3, 256 for azure-blob-storage, 100 for google-cloud-storage)
    #[arg(long = "batch-size", value_parser = parse_python_int, allow_negative_numbers = true)]
    pub batch_size: Option<i64>,
    /// Check for S3 Object Lock (retention, legal hold) on the backup's archives before deleting anything (one request per object)
    #[arg(long)]
    pub check_object_lock: bool,
    /// SSE-C key for S3, as file:///path to a file holding the base64 of a 32-byte key
    #[arg(long)]
    pub sse_customer_key: Option<String>,
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, infer_long_args = true)]
#[command(about = "Add, show or release the keep annotation of a backup in cloud storage")]
#[command(group(ArgGroup::new("action").required(true).args(["release", "status", "target"])))]
pub struct BackupKeepArgs {
    /// URL of the cloud source, such as a bucket in AWS S3 (e.g. s3://bucket/path), or file:///dir
    #[arg(value_name = "SOURCE_URL")]
    pub url: String,
    /// The name of the server as configured in Barman
    pub server_name: String,
    /// The backup ID, a shortcut (first, oldest, last, latest, last-failed) or a backup name
    pub backup_id: String,
    #[command(flatten)]
    pub common: Common,
    /// If specified, the command will remove the keep annotation and the backup will be eligible for deletion
    #[arg(short = 'r', long)]
    pub release: bool,
    /// Print the keep status of the backup
    #[arg(short = 's', long)]
    pub status: bool,
    /// Specify the recovery target for this backup
    #[arg(long, value_parser = choice(KEEP_TARGETS))]
    pub target: Option<KeepTarget>,
    /// SSE-C key for S3, as file:///path to a file holding the base64 of a 32-byte key
    #[arg(long)]
    pub sse_customer_key: Option<String>,
}
