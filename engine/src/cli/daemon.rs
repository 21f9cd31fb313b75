//! `engine daemon`: runs the standing pipelines of a directory (continuous and cron triggers) and
//! serves the HTTP API, until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::logging::{LogFormat, Logging};
use super::run::SlurmArgs;
use super::target::{absolute, StateArgs};
use super::Exit;
use crate::api::{self, ApiState};
use crate::daemon::backups::{keep_backing_up, BackupSettings};
use crate::daemon::webhooks::WebhookSettings;
use crate::daemon::{self, Daemon, DaemonOptions};

/// Run the pipelines of a directory as they are triggered (new data, cron), and serve the API.
///
/// Every `.pipe` file under DIR is loaded, and loaded again when it changes; a file that no longer
/// checks keeps its last good version and the error is logged. SIGTERM stops firing triggers, lets
/// running tasks finish for up to --grace, then stops them.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// The directory of `.pipe` files (default: the current directory).
    #[arg(long, value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// Where the API listens.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// Task slots per run (default: the number of cores).
    #[arg(long, short, value_name = "N")]
    jobs: Option<usize>,
    /// Where products go (default: `out` beside the state directory).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// How often the `.pipe` files are looked at again, besides file-system events (seconds).
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    rescan: f64,
    /// After SIGTERM: how long running tasks may take to finish before they are stopped (seconds).
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    grace: f64,
    /// Read the API's bearer token from this file (default: $ENGINE_API_TOKEN, or
    /// STATE/api-token, created on first start with mode 0600 and printed once).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Serve the API's read endpoints without a token (changes always need one).
    #[arg(long)]
    public_reads: bool,
    /// The daemon's URL as webhook receivers reach it, for the links in what they are sent
    /// (default: http://LISTEN).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// A host name the API answers to, beside IP addresses, localhost, this machine's name and
    /// the host of --public-url (repeatable): any other `Host` is refused, against DNS rebinding.
    #[arg(long, value_name = "NAME")]
    allow_host: Vec<String>,
    /// Attempts to deliver each webhook, the first included.
    #[arg(long, value_name = "N", default_value_t = 6)]
    webhook_attempts: u32,
    /// The wait before a webhook's first retry, doubled before each next one (seconds).
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    webhook_backoff: f64,
    /// How long one webhook attempt may take (seconds).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    webhook_timeout: f64,
    /// How often a verified backup of the store is written to STATE/backups/ (e.g. 30m, 1h):
    /// a damaged store loses at most what ran since the last one.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = backup_interval)]
    backup_every: Duration,
    /// How many backups to keep (the oldest beyond are removed); 0 makes none.
    #[arg(long, value_name = "N", default_value_t = 3)]
    backups: usize,
    #[command(flatten)]
    slurm: SlurmArgs,
    /// Log lines as text or as JSON objects.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(flatten)]
    state: StateArgs,
}

impl DaemonArgs {
    /// How the daemon logs.
    pub fn logging(&self) -> Logging {
        Logging::Daemon(self.log_format)
    }
}

fn backup_interval(text: &str) -> Result<Duration, String> {
    let ms = dsl::model::quantity::parse_duration(text)?;
    if ms < 1000 {
        return Err(format!(
            "`{text}` is too short: back up at most every second"
        ));
    }
    Ok(Duration::from_millis(ms))
}

pub fn run(args: &DaemonArgs) -> Result<Exit> {
    let state_dir = absolute(&args.state.dir());
    let store = args.state.open()?;
    let dir = std::fs::canonicalize(&args.dir)
        .with_context(|| format!("cannot read the directory `{}`", args.dir.display()))?;
    let seconds = |name: &str, value: f64| {
        Duration::try_from_secs_f64(value)
            .with_context(|| format!("--{name} {value}: expected a number of seconds, 0 or more"))
    };
    if let Some(url) = &args.public_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            anyhow::bail!("--public-url {url}: expected an http:// or https:// URL");
        }
    }
    let mut options = DaemonOptions {
        out_root: args.out.as_deref().map(absolute).unwrap_or_else(|| {
            state_dir
                .parent()
                .map(|p| p.join("out"))
                .unwrap_or_else(|| PathBuf::from("out"))
        }),
        dir,
        state_dir,
        jobs: args
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1),
        rescan: seconds("rescan", args.rescan)?.max(Duration::from_millis(100)),
        grace: seconds("grace", args.grace)?,
        slurm: args.slurm.settings(),
        webhooks: WebhookSettings {
            attempts: args.webhook_attempts.max(1),
            backoff: seconds("webhook-backoff", args.webhook_backoff)?,
            timeout: seconds("webhook-timeout", args.webhook_timeout)?
                .max(Duration::from_millis(100)),
            // Known once the API listens (the port may be chosen by the system).
            base_url: args.public_url.clone().unwrap_or_default(),
        },
        backups: BackupSettings {
            every: args.backup_every,
            keep: args.backups,
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // A client that goes away mid-answer must not kill the daemon: `engine` takes SIGPIPE's
        // default (so `engine runs | head` ends quietly), and hyper's writes raise it. With a
        // handler installed, a write to a closed connection fails with EPIPE instead. The
        // handler lasts as long as the process; exec resets it, so commands get the default.
        let _sigpipe = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::pipe())
            .context("cannot handle SIGPIPE")?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        tracing::info!(
            dir = %options.dir.display(),
            state = %options.state_dir.display(),
            listen = %listener.local_addr()?,
            "daemon started"
        );
        if args.public_url.is_none() {
            options.webhooks.base_url = format!("http://{}", listener.local_addr()?);
        }
        let (token, created) =
            api::load_or_create_token(&options.state_dir, args.token_file.as_deref())?;
        if created {
            println!(
                "API token (kept in {}): {}",
                options.state_dir.join(api::TOKEN_FILE).display(),
                token.as_str()
            );
        }
        let state_dir = options.state_dir.clone();
        let backups_stop = CancellationToken::new();
        let backups = tokio::spawn(keep_backing_up(
            store.clone(),
            options.backups.clone(),
            backups_stop.clone(),
        ));
        let (daemon, receiver) = Daemon::new(store.clone(), options);
        let api_state = Arc::new(ApiState {
            store,
            control: daemon.clone(),
            token,
            public_reads: args.public_reads,
            hosts: api::hosts::AllowedHosts::new(
                args.public_url.iter().chain(&args.allow_host).cloned(),
            ),
            state_dir,
        });
        // The API outlives the drain, so a run's logs can be followed while it stops.
        let api_stop = CancellationToken::new();
        let api = tokio::spawn(api::serve(listener, api_state, api_stop.clone()));
        let result = daemon::run(daemon, receiver).await;
        backups_stop.cancel();
        api_stop.cancel();
        let _ = api.await;
        let _ = backups.await;
        result
    })?;
    Ok(Exit::Success)
}
