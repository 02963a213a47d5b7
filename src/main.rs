//! The `drawbridge` binary: command line, config load, logging, run.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc malloc: allocation was about 15 % of the daemon's CPU under call load,
/// and glibc's per-thread arenas hold on to memory the signaling and media threads hand each
/// other (README, Measurements).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "drawbridge",
    version,
    about = "Multi-tenant SBC: Microsoft Teams Direct Routing <-> contact-center trunks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the SBC. Without --config: the built-in loopback lab config with development certificates.
    Run {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Check a config file: exit 0 with a summary, or 1 with FILE:LINE:COL: reason.
    CheckConfig { file: PathBuf },
    /// Create development certificates (CA, SBC server certificate, lab "Teams" client
    /// certificate) in DIR where missing. Not for production.
    DevCerts {
        dir: PathBuf,
        #[arg(long, default_value = "sbc.example.test")]
        base_domain: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => match drawbridge::config::load(&file) {
            Ok(c) => {
                say(format_args!(
                    "{}: ok: {} tenants, {} trunks, {} Teams proxies, listeners: {}",
                    file.display(),
                    c.tenants.len(),
                    c.trunks.len(),
                    c.teams.proxies.len(),
                    drawbridge::listeners_summary(&c)
                ));
                certificate_check(&c)
            }
            Err(e) => {
                complain(format_args!("{e}"));
                ExitCode::FAILURE
            }
        },
        Command::DevCerts { dir, base_domain } => {
            match drawbridge::sip::transport::dev_certs::ensure_dev_certs(&dir, &base_domain) {
                Ok(_) => {
                    say(format_args!(
                        "{}: development certificates for {base_domain} (not for production)",
                        dir.display()
                    ));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    complain(format_args!("drawbridge: {e}"));
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run { config } => {
            init_tracing();
            match run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    complain(format_args!("drawbridge: {e:#}"));
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Without `RUST_LOG`: info, except rustls's parsing of a peer's handshake, which warns for
/// every client that sends an IP address or two names as SNI (stunnel and many SIP clients do);
/// a warning per connection that the peer caused and the operator cannot act on is noise.
const DEFAULT_LOG_FILTER: &str = "info,rustls::msgs::handshake=error";

/// `check-config`'s word on the certificate: its expiry, and a failure once it has expired,
/// since Teams would refuse every call (TDR-MON-03, 569008).
fn certificate_check(c: &drawbridge::config::Config) -> ExitCode {
    let t = &c.tls;
    // `config::load` has just loaded the same files; only a race with a renewal fails here.
    match drawbridge::sip::transport::TlsMaterial::load(&t.cert, &t.key, &t.ca, Vec::new()) {
        Ok(m) => {
            let now = std::time::SystemTime::now();
            say(format_args!(
                "{}: {}",
                t.cert.display(),
                m.expiry().describe(now)
            ));
            match m.expiry().standing(now) {
                drawbridge::sip::transport::expiry::Standing::Expired { .. } => ExitCode::FAILURE,
                _ => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            complain(format_args!("{e}"));
            ExitCode::FAILURE
        }
    }
}

/// One line on stdout. A reader that has gone (`check-config … | head -1`) is not an error
/// worth a panic: the exit code still says how the check went.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// One line on stderr, as `say`.
fn complain(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .init();
}

fn run(path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = match &path {
        Some(path) => drawbridge::config::load(path)?,
        None => drawbridge::config::default::lab_config()?,
    };
    raise_open_files_limit(&config);
    // One signaling thread: measured at 300 calls/s over one TLS connection, the multi-thread
    // scheduler spent more in cross-thread wake-ups and task migration than it gained (README,
    // Measurements). Media has its own threads, one per core.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let server = drawbridge::Server::start(config, shutdown.clone()).await?;
        let mut signals = Signals::new(path)?;
        if signals.until_stop(&server).await == Stop::Drain {
            drain(&server, &mut signals).await;
        }
        tracing::info!("stopping");
        shutdown.cancel();
        server.stopped().await;
        Ok(())
    })
}

/// Every call holds three media sockets (Teams leg, trunk RTP and RTCP) and every SIP
/// connection one descriptor; the usual soft limit of 1,024 would fail calls at a few hundred.
/// The soft limit goes up to the hard one, and a hard limit below what the configured call and
/// connection limits need is said at start rather than found as failed calls.
fn raise_open_files_limit(config: &drawbridge::config::Config) {
    const SOCKETS_PER_CALL: u64 = 3;
    // Listeners, the metrics endpoint, DNS, the CDR file, the runtime's own descriptors.
    const HEADROOM: u64 = 256;
    let calls: u64 = config.tenants.iter().map(|t| u64::from(t.max_calls)).sum();
    let connections = u64::try_from(config.sip.max_connections).unwrap_or(u64::MAX);
    let wanted = calls
        .saturating_mul(SOCKETS_PER_CALL)
        .saturating_add(connections)
        .saturating_add(HEADROOM);
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < wanted => tracing::warn!(
            limit,
            wanted,
            "open-files limit is below what the tenants' max_calls and sip.max_connections need: \
             calls beyond it fail (raise the hard limit, e.g. LimitNOFILE= in the unit)"
        ),
        Ok(limit) => tracing::info!(limit, wanted, "open-files limit"),
        Err(e) => tracing::warn!(error = %e, "could not read or raise the open-files limit"),
    }
}

/// How a signal asks the daemon to stop.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    /// SIGTERM (what systemd sends): drain first (TDR-MON-04).
    Drain,
    /// SIGINT: stop at once (as does any stop signal while draining).
    Now,
}

/// SIGHUP reloads the config file's tenants and trunks, the TLS certificate (after a
/// renewal) and reopens the CDR file (after logrotate); SIGTERM drains and stops, SIGINT
/// stops.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    /// The config file; None for the built-in lab config, which has nothing to reload.
    config: Option<PathBuf>,
}

impl Signals {
    fn new(config: Option<PathBuf>) -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            config,
        })
    }

    /// The config file read again; refused as a whole (with the file, line and reason) if
    /// it does not validate or changes what only a restart can.
    async fn reload_config(&self, server: &drawbridge::Server) {
        let Some(path) = &self.config else {
            return;
        };
        let result = match drawbridge::config::load(path) {
            Ok(new) => server.reload_config(new).await.map_err(anyhow::Error::from),
            Err(e) => Err(anyhow::Error::from(e)),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "SIGHUP: config reload refused, the running config stays");
        }
    }

    /// Serves SIGHUP until a stop is asked for.
    async fn until_stop(&mut self, server: &drawbridge::Server) -> Stop {
        loop {
            tokio::select! {
                _ = self.term.recv() => return Stop::Drain,
                _ = self.int.recv() => return Stop::Now,
                _ = self.hup.recv() => {
                    self.reload_config(server).await;
                    server.reopen_cdr();
                    if let Err(e) = server.reload_tls() {
                        tracing::error!(error = %e, "SIGHUP: TLS reload refused, the running certificate stays");
                    }
                }
            }
        }
    }
}

/// Lets the calls in progress end, for up to `[sip] drain_timeout_s`, while new ones get 503.
async fn drain(server: &drawbridge::Server, signals: &mut Signals) {
    let limit = server.drain_timeout();
    if limit.is_zero() {
        return;
    }
    tracing::info!(
        timeout_s = limit.as_secs(),
        "SIGTERM: draining before the stop (a second SIGTERM or SIGINT stops at once)"
    );
    server.drain();
    tokio::select! {
        () = server.drained() => tracing::info!("drained: no call left"),
        () = tokio::time::sleep(limit) => {
            tracing::warn!(timeout_s = limit.as_secs(), "drain timeout: the calls left are ended");
        }
        _ = signals.until_stop(server) => tracing::info!("stop signal while draining: stopping at once"),
    }
}
