//! The SIP endpoint: one task that owns the transaction table and the OPTIONS keepalive, fed by
//! the transports. It parses, checks and answers what arrives, and sends the pings.
//!
//! Transactions and the pinger are sans-I/O; this task only moves bytes and time between them
//! and the transports (STYLE §2: one task owns the state, no `Arc<Mutex<_>>`).

mod calls;
mod counters;
mod inbound;
mod keepalive;
mod policy;
mod trace;
mod trunk_pings;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::b2bua::{B2bua, LocalAddrs};
use crate::clock;
use crate::config::Config;
use crate::dns::SipResolver;
use crate::media::{MediaEvent, MediaPlane};
use crate::routing::Routes;
use crate::sip::transaction::{Output, Transactions, TxId};
use crate::sip::transport::{Incoming, SendNow, Side, Target, TransportKind, Transports};
use crate::sip::validate::ValidationPolicy;
use crate::teams::keepalive::Pinger;

/// What a transaction's output is for.
#[derive(Debug, Clone)]
enum TxContext {
    /// A server transaction: responses go back to where the request came from.
    Server(Target),
    /// An OPTIONS ping: `target`, `seq` identify it in the pinger.
    Ping {
        dest: Target,
        target: usize,
        seq: u64,
    },
    /// A client transaction of a call.
    Call(Box<calls::CallTx>),
    /// An OPTIONS ping toward a trunk's target.
    TrunkPing {
        dest: Target,
        ping: crate::trunk_health::Ping,
    },
}

/// Results that spawned send tasks report back.
#[derive(Debug)]
enum Feedback {
    /// The ping could not be resolved (`tx` None: no transaction yet) or sent (`tx` Some).
    PingSendFailed {
        target: usize,
        seq: u64,
        tx: Option<TxId>,
        reason: String,
    },
    PingResolved {
        target: usize,
        seq: u64,
        dest: Target,
    },
    /// A call's request could not be sent: its transaction ends as a transport error.
    TxSendFailed { tx: TxId },
    /// A trunk's URI was looked up for a round of pings (no targets: `why` says why).
    TrunkResolved {
        trunk: usize,
        targets: Vec<Target>,
        why: String,
    },
    /// A trunk ping could not be sent (`tx`: its transaction, to end).
    TrunkPingFailed {
        ping: crate::trunk_health::Ping,
        tx: TxId,
        why: String,
    },
    /// A call's next hop was looked up: its targets in RFC 3263 order (none: it did not
    /// resolve).
    CallResolved {
        action: Box<crate::b2bua::Action>,
        targets: Vec<Target>,
    },
}

pub(crate) struct Endpoint {
    config: Arc<Config>,
    transports: Transports,
    resolver: SipResolver,
    txns: Transactions<TxContext>,
    pinger: Pinger,
    /// OPTIONS pings toward the trunks that ask for them, and their health.
    trunk_health: crate::trunk_health::TrunkHealth,
    counters: counters::Counters,
    /// Tenant FQDN ⇄ trunk and the trunk-side ACL, built once from the config.
    routes: Routes,
    /// What requests must satisfy; built once, read for every request.
    policy: ValidationPolicy,
    rng: StdRng,
    /// Every call: both legs' dialogs, the media bridge, the limits.
    b2bua: B2bua,
    /// Messages still queued behind the one being handled (overload detection).
    backlog: usize,
    feedback_tx: mpsc::Sender<Feedback>,
    feedback_rx: mpsc::Receiver<Feedback>,
    draining: Drain,
    reloads: mpsc::Receiver<Reload>,
}

/// A reloaded config for the running endpoint (only `[[tenant]]` and `[[trunk]]` differ);
/// `applied` is answered once new requests see it.
pub(crate) struct Reload {
    pub(crate) config: Arc<Config>,
    pub(crate) applied: tokio::sync::oneshot::Sender<()>,
}

/// Graceful stop (TDR-MON-04): once `requested`, new calls are refused with 503 and the calls
/// in progress go on; `done` is cancelled when none is left.
#[derive(Clone, Default)]
pub(crate) struct Drain {
    pub(crate) requested: CancellationToken,
    pub(crate) done: CancellationToken,
}

impl Endpoint {
    pub(crate) fn new(
        config: Arc<Config>,
        transports: Transports,
        resolver: SipResolver,
        media: MediaPlane,
        cdr: crate::cdr::CdrWriter,
        draining: Drain,
        reloads: mpsc::Receiver<Reload>,
    ) -> Self {
        let now = clock::now();
        let local = LocalAddrs {
            teams_port: config
                .listen
                .teams_advertised_port
                .or_else(|| {
                    transports
                        .local_addr(TransportKind::Tls, Side::Teams)
                        .map(|a| a.port())
                })
                .unwrap_or(5061),
            trunk_udp: transports.local_addr(TransportKind::Udp, Side::Trunk),
            trunk_tcp: transports.local_addr(TransportKind::Tcp, Side::Trunk),
            trunk_tls: transports.local_addr(TransportKind::Tls, Side::Trunk),
        };
        let b2bua = B2bua::new(config.clone(), media, local, cdr);
        let pinger = keepalive::pinger_for(&config, now);
        let trunk_health = trunk_pings::health_for(&config, now);
        let (feedback_tx, feedback_rx) = mpsc::channel(1024);
        let routes = Routes::new(&config);
        Endpoint {
            txns: Transactions::new(config.sip.timer_config()),
            config,
            transports,
            resolver,
            pinger,
            trunk_health,
            counters: counters::Counters::new(),
            routes,
            policy: ValidationPolicy {
                allowed_methods: policy::allowed_methods(),
                supported_option_tags: policy::SUPPORTED_TAGS.to_vec(),
                accepted_body_types: policy::ACCEPTED_BODIES.to_vec(),
            },
            rng: StdRng::from_os_rng(),
            b2bua,
            backlog: 0,
            feedback_tx,
            feedback_rx,
            draining,
            reloads,
        }
    }

    /// Tenants and trunks from a reload: routing, the trunk ACL, limits, policies and the
    /// OPTIONS targets of tenants that are Teams gateways of their own (TDR-OPT-08). Calls in
    /// progress are not touched.
    fn reconfigure(&mut self, config: Arc<Config>) {
        self.routes = Routes::new(&config);
        self.pinger
            .retarget(keepalive::ping_targets(&config), clock::now());
        self.b2bua.reconfigure(config.clone());
        self.trunk_health.reconfigure(&config, clock::now());
        trunk_pings::publish_unanswered(&config, &self.trunk_health);
        self.b2bua.set_trunks_down(self.trunk_health.down_trunks());
        tracing::info!(
            tenants = config.tenants.len(),
            trunks = config.trunks.len(),
            "config reloaded: tenants and trunks"
        );
        self.config = config;
    }

    pub(crate) async fn run(
        mut self,
        mut incoming: mpsc::Receiver<Incoming>,
        mut media_events: mpsc::Receiver<MediaEvent>,
        shutdown: CancellationToken,
    ) {
        let mut drain_seen = false;
        loop {
            self.drain().await;
            if drain_seen && self.b2bua.active_calls() == 0 {
                self.draining.done.cancel();
            }
            let deadline = earliest(
                earliest(self.txns.poll_timeout(), self.pinger.poll_timeout()),
                earliest(self.b2bua.poll_timeout(), self.trunk_health.poll_timeout()),
            );
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = self.draining.requested.cancelled(), if !drain_seen => {
                    drain_seen = true;
                    tracing::info!(
                        calls = self.b2bua.active_calls(),
                        "draining: new calls get 503, calls in progress go on"
                    );
                }
                msg = incoming.recv() => match msg {
                    Some(inc) => {
                        self.backlog = incoming.len();
                        self.on_incoming(inc).await
                    }
                    None => break,
                },
                Some(fb) = self.feedback_rx.recv() => self.on_feedback(fb),
                Some(ev) = media_events.recv() => self.b2bua.on_media_event(ev, clock::now()),
                Some(r) = self.reloads.recv() => {
                    self.reconfigure(r.config);
                    let _ = r.applied.send(());
                }
                () = sleep_until_opt(deadline) => {
                    let now = clock::now();
                    self.txns.handle_timeouts(now);
                    for tr in self.pinger.handle_timeout(now) {
                        keepalive::report_transition(&self.config, &self.pinger, &tr);
                    }
                    for tr in self.trunk_health.handle_timeout(now) {
                        self.trunk_transition(tr);
                    }
                    self.call_timeouts(now);
                }
            }
        }
        // Calls still up get their BYEs (or CANCELs) before the transports close.
        if self.b2bua.active_calls() > 0 {
            tracing::info!(
                calls = self.b2bua.active_calls(),
                "ending calls in progress"
            );
            self.b2bua.end_all(clock::now());
            self.drain().await;
        }
    }

    /// Sends everything the transactions and the pinger want sent now.
    async fn drain(&mut self) {
        let now = clock::now();
        while let Some(due) = self.pinger.poll_due(now) {
            self.start_ping(due, now);
        }
        while let Some(trunk) = self.trunk_health.poll_round(now) {
            self.start_trunk_round(trunk, now);
        }
        // Call actions start transactions, whose first sends are transaction outputs; those
        // outputs may in turn feed the calls.
        loop {
            self.run_call_actions();
            let mut any = false;
            while let Some((id, out)) = self.txns.poll_output() {
                any = true;
                self.on_tx_output(id, out).await;
            }
            if !any && !self.b2bua.has_actions() {
                break;
            }
        }
    }

    async fn on_tx_output(&mut self, id: TxId, out: Output) {
        let now = clock::now();
        self.count_outcome(id, &out);
        if matches!(self.txns.context(id), Some(TxContext::Call(_))) {
            self.on_call_tx_output(id, out);
            return;
        }
        match out {
            Output::Transmit(bytes) => match self.txns.context(id) {
                Some(TxContext::Server(dest)) => {
                    let dest = dest.clone();
                    self.send(dest, bytes);
                }
                Some(TxContext::Ping { dest, target, seq }) => {
                    // Opening a TLS connection to a proxy may take a while: it must not stall
                    // the endpoint. A failure comes back as feedback, so the proxy is marked
                    // down at once rather than after the ping timeout.
                    let (dest, target, seq) = (dest.clone(), *target, *seq);
                    self.trace_out(&dest, &bytes);
                    let transports = self.transports.clone();
                    let feedback = self.feedback_tx.clone();
                    tokio::spawn(async move {
                        if let Err(e) = transports.send(&dest, bytes).await {
                            let reason = e.to_string();
                            let _ = feedback
                                .send(Feedback::PingSendFailed {
                                    target,
                                    seq,
                                    tx: Some(id),
                                    reason,
                                })
                                .await;
                        }
                    });
                }
                Some(TxContext::TrunkPing { dest, ping }) => {
                    let (dest, ping) = (dest.clone(), *ping);
                    self.trace_out(&dest, &bytes);
                    let transports = self.transports.clone();
                    let feedback = self.feedback_tx.clone();
                    tokio::spawn(async move {
                        if let Err(e) = transports.send(&dest, bytes).await {
                            let why = format!("{}: {e}", dest.addr);
                            let _ = feedback
                                .send(Feedback::TrunkPingFailed { ping, tx: id, why })
                                .await;
                        }
                    });
                }
                Some(TxContext::Call(_)) | None => {}
            },
            Output::Deliver { status } => {
                if let Some(TxContext::TrunkPing { ping, .. }) = self.txns.context(id)
                    && status >= 200
                {
                    let ping = *ping;
                    if let Some(tr) = self.trunk_health.on_final(ping, status) {
                        self.trunk_transition(tr);
                    }
                }
                if let Some(TxContext::Ping { target, seq, .. }) = self.txns.context(id)
                    && status >= 200
                {
                    let (target, seq) = (*target, *seq);
                    let (rtt, tr) = self.pinger.on_final(target, seq, status, now);
                    keepalive::record_answer(&self.config, &self.pinger, target, status, rtt);
                    if let Some(tr) = tr {
                        keepalive::report_transition(&self.config, &self.pinger, &tr);
                    }
                }
            }
            Output::Timeout | Output::TransportError => {
                if let Some(TxContext::TrunkPing { ping, .. }) = self.txns.context(id) {
                    let ping = *ping;
                    let why = format!("{}: no answer", ping.addr);
                    if let Some(tr) = self.trunk_health.on_failure(ping, why) {
                        self.trunk_transition(tr);
                    }
                }
                if let Some(TxContext::Ping { target, seq, .. }) = self.txns.context(id) {
                    let (target, seq) = (*target, *seq);
                    if let Some(tr) =
                        self.pinger
                            .on_transport_failure(target, seq, "transaction failed".into())
                    {
                        keepalive::report_transition(&self.config, &self.pinger, &tr);
                    }
                }
            }
            // Non-2xx finals to our OPTIONS need no ACK; AckTimeout only concerns INVITEs,
            // which this endpoint answers at once and does not relay.
            Output::NeedAck { .. } | Output::AckTimeout | Output::Terminated => {}
        }
    }

    /// Counts how client transactions and unanswered server transactions end; server finals
    /// are counted where they are sent.
    fn count_outcome(&self, id: TxId, out: &Output) {
        let Some(kind) = self.txns.kind(id) else {
            return;
        };
        let outcome = match out {
            Output::Deliver { status } if *status >= 200 => counters::TxOutcome::Final(*status),
            Output::Timeout => counters::TxOutcome::Timeout,
            Output::TransportError => counters::TxOutcome::TransportError,
            Output::AckTimeout => counters::TxOutcome::AckTimeout,
            _ => return,
        };
        self.counters.transaction(kind, outcome);
    }

    /// Sends on an established path (responses, retransmissions, ACKs) without waiting: at
    /// once when the socket or an open connection takes it, in a task when a connection must be
    /// opened first (RFC 3261 §18.2.2), which can take up to the connect timeout and must not
    /// stall every other message. A failure is logged; the transaction's own timers decide
    /// what it means.
    fn send(&self, dest: Target, bytes: Bytes) {
        self.trace_out(&dest, &bytes);
        let bytes = match self.transports.send_now(&dest, bytes) {
            SendNow::Sent(_) => return,
            SendNow::Failed(e) => {
                tracing::debug!(peer = %dest.addr, error = %e, "send failed");
                return;
            }
            SendNow::Later(bytes) => bytes,
        };
        let transports = self.transports.clone();
        tokio::spawn(async move {
            if let Err(e) = transports.send(&dest, bytes).await {
                tracing::debug!(peer = %dest.addr, error = %e, "send failed");
            }
        });
    }

    /// The whole message at debug level, keys redacted.
    fn trace_out(&self, dest: &Target, bytes: &Bytes) {
        if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!(peer = %dest.addr, transport = %dest.transport, "SIP out:\n{}", trace::redacted(bytes));
        }
    }

    fn on_feedback(&mut self, fb: Feedback) {
        match fb {
            Feedback::PingSendFailed {
                target,
                seq,
                tx,
                reason,
            } => {
                // The pinger first, so the log names the real cause.
                if let Some(tr) = self.pinger.on_transport_failure(target, seq, reason) {
                    keepalive::report_transition(&self.config, &self.pinger, &tr);
                }
                // RFC 3261 §17.1.4: a transport failure ends the client transaction now,
                // rather than after timer F, and it is counted as what it was.
                if let Some(id) = tx {
                    let _ = self.txns.handle_transport_error(id, clock::now());
                }
            }
            Feedback::PingResolved { target, seq, dest } => {
                self.send_ping(target, seq, dest, clock::now());
            }
            Feedback::TxSendFailed { tx } => {
                let _ = self.txns.handle_transport_error(tx, clock::now());
            }
            Feedback::CallResolved { action, targets } => self.on_call_resolved(*action, targets),
            Feedback::TrunkResolved {
                trunk,
                targets,
                why,
            } => self.on_trunk_resolved(trunk, targets, &why),
            Feedback::TrunkPingFailed { ping, tx, why } => {
                if let Some(tr) = self.trunk_health.on_failure(ping, why) {
                    self.trunk_transition(tr);
                }
                let _ = self.txns.handle_transport_error(tx, clock::now());
            }
        }
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// Random token for tags, branches and Call-IDs (RFC 3261 §8.1.1.4: globally unique).
fn token(rng: &mut StdRng, len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}
