//! The running daemon: starts both planes and the admin endpoint, and stops them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::dns::SipResolver;
use crate::media::MediaPlane;
use crate::sip::endpoint::{Drain, Endpoint, Reload};
use crate::sip::transport::expiry::Expiry;
use crate::sip::transport::{Side, TlsMaterial, TransportKind, TransportSettings, Transports};

/// Why the daemon could not start. Each names what failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("TLS material: {0}")]
    Tls(#[from] crate::sip::transport::TlsMaterialError),
    #[error("SIP transports: {0}")]
    Transport(#[from] crate::sip::transport::TransportError),
    #[error("media plane: {0}")]
    Media(#[from] crate::media::MediaError),
    #[error("metrics: {0}")]
    Metrics(#[from] crate::metrics::MetricsError),
    #[error("DNS resolver: {0}")]
    Dns(#[from] crate::dns::DnsError),
    #[error("CDR file: {0}")]
    Cdr(#[from] crate::cdr::CdrError),
    #[error("cannot listen on {addr} (metrics): {source}")]
    AdminBind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The addresses the daemon actually bound (ports may have been 0 in the config).
#[derive(Debug, Clone)]
pub struct LocalAddrs {
    pub teams_tls: SocketAddr,
    pub trunk_udp: Option<SocketAddr>,
    pub trunk_tcp: Option<SocketAddr>,
    pub trunk_tls: Option<SocketAddr>,
    pub metrics: SocketAddr,
}

/// A started daemon.
pub struct Server {
    addrs: LocalAddrs,
    drain: Drain,
    draining: Arc<std::sync::atomic::AtomicBool>,
    reloads: tokio::sync::mpsc::Sender<Reload>,
    tasks: TaskTracker,
    media: MediaPlane,
    transports: Transports,
    config: Arc<Config>,
    cdr: crate::cdr::CdrWriter,
    /// The running certificate's expiry, for the daily reminder.
    cert_expiry: tokio::sync::watch::Sender<Expiry>,
}

/// Why a config reload was refused; the running config stays in use.
#[derive(Debug, thiserror::Error)]
pub enum ConfigReloadError {
    #[error(
        "a reload changes only [[tenant]] and [[trunk]]; restart for changes to [{}]",
        .0.join("], [")
    )]
    FixedSections(Vec<&'static str>),
    #[error("the daemon is stopping")]
    Stopping,
}

/// Why a certificate reload was refused; the running certificate stays in use.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("TLS material: {0}")]
    Tls(#[from] crate::sip::transport::TlsMaterialError),
    #[error("SIP transports: {0}")]
    Transport(#[from] crate::sip::transport::TransportError),
}

impl Server {
    /// Starts the daemon on `config`; it runs until `shutdown` is cancelled.
    pub async fn start(
        mut config: Config,
        shutdown: CancellationToken,
    ) -> Result<Server, StartError> {
        let handle = crate::metrics::install()?;
        let tls = TlsMaterial::load(
            &config.tls.cert,
            &config.tls.key,
            &config.tls.ca,
            config.tls.peer_names.clone(),
        )?;
        let cert_expiry = tls.expiry();
        cert_expiry.report(&config.tls.cert, std::time::SystemTime::now());
        let settings = TransportSettings {
            teams_tls: Some(config.listen.teams_tls),
            trunk_udp: config.listen.trunk_udp,
            trunk_tcp: config.listen.trunk_tcp,
            trunk_tls: config.listen.trunk_tls,
            max_message_bytes: config.sip.max_message_bytes,
            idle_timeout: Duration::from_secs(config.sip.idle_timeout_s),
            handshake_timeout: Duration::from_millis(config.tls.handshake_timeout_ms),
            max_connections: config.sip.max_connections,
            connect_timeout: Duration::from_millis(config.sip.connect_timeout_ms),
            teams_tls13: config.tls.teams_tls13,
            teams_allow: Some(config.teams.allow.clone().into()),
            ..TransportSettings::default()
        };
        let (transports, incoming) = Transports::start(settings, Some(tls), shutdown.clone())?;
        // Contact and Via toward Teams carry the port we really listen on (TDR-OPT-04), which
        // differs from the configured one when that was 0.
        if config.listen.teams_advertised_port.is_none()
            && let Some(bound) = transports.local_addr(TransportKind::Tls, Side::Teams)
        {
            config.listen.teams_advertised_port = Some(bound.port());
        }
        let config = Arc::new(config);
        let resolver = if config.dns.nameservers.is_empty() {
            SipResolver::from_system()?
        } else {
            SipResolver::with_nameservers(&config.dns.nameservers)?
        };
        let (media, media_events) = MediaPlane::start(&config.media)?;

        let admin_listener = tokio::net::TcpListener::bind(config.listen.metrics)
            .await
            .map_err(|source| StartError::AdminBind {
                addr: config.listen.metrics,
                source,
            })?;
        let metrics_addr = admin_listener
            .local_addr()
            .map_err(|source| StartError::AdminBind {
                addr: config.listen.metrics,
                source,
            })?;

        let addrs = LocalAddrs {
            teams_tls: transports
                .local_addr(TransportKind::Tls, Side::Teams)
                .unwrap_or(config.listen.teams_tls),
            trunk_udp: transports.local_addr(TransportKind::Udp, Side::Trunk),
            trunk_tcp: transports.local_addr(TransportKind::Tcp, Side::Trunk),
            trunk_tls: transports.local_addr(TransportKind::Tls, Side::Trunk),
            metrics: metrics_addr,
        };

        let tasks = TaskTracker::new();
        let media_for_scrape = media.clone();
        let state = crate::admin::AdminState {
            handle,
            collectors: vec![Box::new(move || media_for_scrape.publish_metrics())],
            draining: Default::default(),
        };
        let draining = state.draining.clone();
        let draining_flag = state.draining.clone();
        tasks.spawn(crate::admin::serve(admin_listener, state, shutdown.clone()));
        let drain = Drain::default();
        let (reloads, reloads_rx) = tokio::sync::mpsc::channel(1);
        let cdr = crate::cdr::CdrWriter::start(&config.cdr)?;
        let endpoint = Endpoint::new(
            config.clone(),
            transports.clone(),
            resolver,
            media.clone(),
            cdr.clone(),
            drain.clone(),
            reloads_rx,
        );
        tasks.spawn(endpoint.run(incoming, media_events, shutdown.clone()));
        let stop = shutdown.clone();
        tasks.spawn(async move {
            stop.cancelled().await;
            draining.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let (cert_expiry, expiry_rx) = tokio::sync::watch::channel(cert_expiry);
        tasks.spawn(report_expiry_daily(
            expiry_rx,
            config.tls.cert.clone(),
            shutdown.clone(),
        ));
        tasks.close();
        tracing::info!(
            teams_tls = %addrs.teams_tls,
            trunk_udp = ?addrs.trunk_udp,
            trunk_tcp = ?addrs.trunk_tcp,
            metrics = %addrs.metrics,
            tenants = config.tenants.len(),
            trunks = config.trunks.len(),
            "drawbridge started"
        );
        Ok(Server {
            addrs,
            drain,
            draining: draining_flag,
            reloads,
            tasks,
            media,
            transports,
            config,
            cdr,
            cert_expiry,
        })
    }

    /// Reads the certificate, key and CA files again (TDR-SIG-06: after a renewal). New
    /// handshakes use them; connections already open keep theirs, so no call drops. A file
    /// that does not load leaves the running certificate in place.
    pub fn reload_tls(&self) -> Result<(), ReloadError> {
        let t = &self.config.tls;
        let tls = TlsMaterial::load(&t.cert, &t.key, &t.ca, t.peer_names.clone())?;
        let expiry = tls.expiry();
        self.transports.reload_tls(tls)?;
        tracing::info!(cert = %t.cert.display(), "TLS certificate reloaded");
        expiry.report(&t.cert, std::time::SystemTime::now());
        self.cert_expiry.send_replace(expiry);
        Ok(())
    }

    /// Starts a graceful stop (TDR-MON-04): `/healthz` answers 503, new INVITEs get 503 (Teams
    /// fails over to another SBC), calls in progress go on. `drained` says when none is left.
    pub fn drain(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.drain.requested.cancel();
    }

    /// Resolves once draining has started and no call is left.
    pub async fn drained(&self) {
        self.drain.done.cancelled().await;
    }

    /// How long `[sip] drain_timeout_s` lets calls go on after a SIGTERM.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.config.sip.drain_timeout_s)
    }

    /// Puts a reloaded config's tenants and trunks in force for new calls (adding a customer
    /// needs no restart); calls in progress go on as they are. `new` must be validated (as
    /// `config::load` does) and equal the running config outside `[[tenant]]` and
    /// `[[trunk]]`, else it is refused and nothing changes. Returns once applied.
    pub async fn reload_config(&self, mut new: Config) -> Result<(), ConfigReloadError> {
        // As at start: with no advertised port configured, the one we listen on is advertised.
        if new.listen.teams_advertised_port.is_none() {
            new.listen.teams_advertised_port = self.config.listen.teams_advertised_port;
        }
        let fixed = self.config.fixed_sections_changed(&new);
        if !fixed.is_empty() {
            return Err(ConfigReloadError::FixedSections(fixed));
        }
        let (applied, done) = tokio::sync::oneshot::channel();
        let reload = Reload {
            config: Arc::new(new),
            applied,
        };
        self.reloads
            .send(reload)
            .await
            .map_err(|_| ConfigReloadError::Stopping)?;
        done.await.map_err(|_| ConfigReloadError::Stopping)
    }

    /// Opens the CDR file again at its path (after logrotate moved it away).
    pub fn reopen_cdr(&self) {
        self.cdr.reopen();
    }

    pub fn local_addrs(&self) -> &LocalAddrs {
        &self.addrs
    }

    /// Waits for every task to finish after shutdown, then stops the media workers.
    pub async fn stopped(self) {
        self.tasks.wait().await;
        let media = self.media;
        let cdr = self.cdr;
        // Both join threads: the media workers, and the CDR writer after its last flush.
        let _ = tokio::task::spawn_blocking(move || {
            media.shutdown();
            cdr.stop();
        })
        .await;
    }
}

/// One-line summary of the listeners, for `check-config`.
pub fn listeners_summary(c: &Config) -> String {
    let mut parts = vec![format!("teams tls {}", c.listen.teams_tls)];
    if let Some(a) = c.listen.trunk_udp {
        parts.push(format!("trunk udp {a}"));
    }
    if let Some(a) = c.listen.trunk_tcp {
        parts.push(format!("trunk tcp {a}"));
    }
    if let Some(a) = c.listen.trunk_tls {
        parts.push(format!("trunk tls {a}"));
    }
    parts.push(format!("metrics {}", c.listen.metrics));
    parts.join(", ")
}

/// Says the certificate's standing again each day, so a warning that it expires soon keeps
/// reaching the log until it is renewed (start and reloads say it at once).
async fn report_expiry_daily(
    expiry: tokio::sync::watch::Receiver<Expiry>,
    cert: std::path::PathBuf,
    shutdown: CancellationToken,
) {
    const DAY: Duration = Duration::from_secs(86_400);
    let mut daily = tokio::time::interval_at(tokio::time::Instant::now() + DAY, DAY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = daily.tick() => {}
        }
        let current = *expiry.borrow();
        current.report(&cert, std::time::SystemTime::now());
    }
}
