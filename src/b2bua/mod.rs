//! The B2BUA: each call is two dialogs, one per leg, joined by the SBC (RFC 7092 §3.1).
//!
//! Leg A is the dialog the caller made with us (Teams, or a contact-center trunk); leg B the
//! one we made toward the other side. Each has its own Call-ID, tags, CSeq, Via and Contact,
//! so nothing of one side's topology reaches the other (topology hiding). Every SDP goes
//! through [`media::CallMedia`], which keeps the media plane in step.
//!
//! Like the transactions below it, this layer is sans-I/O: the endpoint feeds it requests,
//! responses, transaction outcomes, media events and the time, and drains [`Action`]s (answer
//! through a server transaction, start a client transaction, send an ACK, CANCEL). It talks
//! to the media plane directly, which is itself a non-blocking command channel.

mod auth;
mod body;
mod call;
mod deadlines;
mod dialog;
mod dialog_requests;
mod limits;
mod media;
mod outbound;
mod records;
mod refer;
mod setup;
mod teardown;
mod timer;
mod upstream;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::config::Config;
use crate::media::{MediaEvent, MediaPlane};
use crate::routing::Routes;
use crate::sip::Method;
use crate::sip::message::{Request, Response};
use crate::sip::transaction::TxId;
use crate::sip::transport::{ConnId, Side, Target, TransportKind};

use call::Call;
pub(crate) use call::{CallKey, LegId, Purpose};
pub(crate) use outbound::trunk_hop;

/// Where the request came from, as the transports saw it.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) side: Side,
    pub(crate) transport: TransportKind,
    pub(crate) addr: SocketAddr,
    pub(crate) conn: Option<ConnId>,
    /// The name the Teams peer's certificate proved (mutual TLS).
    pub(crate) peer_name: Option<String>,
}

impl Source {
    pub(crate) fn reply_target(&self) -> Target {
        Target {
            transport: self.transport,
            addr: self.addr,
            conn: self.conn,
            server_name: self.peer_name.clone(),
            side: self.side,
        }
    }
}

/// Where a request of ours goes.
#[derive(Debug, Clone)]
pub(crate) enum Dest {
    Target(Target),
    /// A host name to resolve first (RFC 3263), then send as to `Target`.
    Lookup {
        side: Side,
        transport: TransportKind,
        host: String,
        port: Option<u16>,
        server_name: Option<String>,
    },
}

/// What the endpoint must do for the B2BUA.
#[derive(Debug)]
pub(crate) enum Action {
    /// Answer through server transaction `tx`.
    Respond { tx: TxId, response: Response },
    /// Start a client transaction for `request`; the endpoint puts `via` (sent-protocol and
    /// sent-by) with a fresh branch on top and reports the outcome back with `call`, `leg`
    /// and `purpose`.
    Request {
        call: CallKey,
        leg: LegId,
        purpose: Purpose,
        request: Request,
        via: String,
        dest: Dest,
    },
    /// An ACK for a 2xx: no transaction (§13.2.2.4); the endpoint adds a Via.
    Ack {
        request: Request,
        via: String,
        dest: Dest,
    },
    /// CANCEL INVITE client transaction `tx` (§9.1), built from the INVITE it sent, with
    /// `reason` as its Reason header (RFC 3326) when there is one to carry.
    Cancel {
        tx: TxId,
        reason: Option<bytes::Bytes>,
    },
}

impl Action {
    /// Where a request or ACK goes (nothing for answers and CANCELs, which follow their
    /// transactions).
    pub(crate) fn dest(&self) -> Option<&Dest> {
        match self {
            Action::Request { dest, .. } | Action::Ack { dest, .. } => Some(dest),
            Action::Respond { .. } | Action::Cancel { .. } => None,
        }
    }

    /// Fills in the address a lookup found.
    pub(crate) fn set_dest(&mut self, to: Dest) {
        if let Action::Request { dest, .. } | Action::Ack { dest, .. } = self {
            *dest = to;
        }
    }
}

/// The local addresses requests and Contacts name.
#[derive(Debug, Clone, Default)]
pub(crate) struct LocalAddrs {
    /// Port written toward Teams (TDR-INV-03).
    pub(crate) teams_port: u16,
    pub(crate) trunk_udp: Option<SocketAddr>,
    pub(crate) trunk_tcp: Option<SocketAddr>,
    pub(crate) trunk_tls: Option<SocketAddr>,
}

pub(crate) struct B2bua {
    config: Arc<Config>,
    routes: Routes,
    media: MediaPlane,
    local: LocalAddrs,
    limits: limits::Limits,
    records: records::Records,
    /// Header policy and number rules per trunk name.
    policies: HashMap<String, crate::trunk_policy::TrunkPolicy>,
    /// Per trunk, built once: a call shares its trunk's codec list.
    codecs: HashMap<String, crate::sdp::CodecPolicy>,
    /// Boxed: a call is several KiB, and a map's empty slots cost as much as
    /// full ones (at 5,000 calls, 3.6 KiB a call went to empty slots).
    calls: HashMap<CallKey, Box<Call>>,
    /// (Call-ID, our tag) of every leg → its call.
    dialogs: HashMap<(String, String), (CallKey, LegId)>,
    /// Dialogs a call left behind (replaced by a transfer), until their BYE or the call ends.
    detached: HashMap<(String, String), CallKey>,
    /// Leg A's INVITE server transaction → its call, for CANCEL.
    invites: HashMap<TxId, CallKey>,
    timers: BinaryHeap<Reverse<(Instant, CallKey)>>,
    actions: VecDeque<Action>,
    next_key: CallKey,
    rng: StdRng,
    /// Which Teams proxies the OPTIONS pings see up, in configured order.
    proxies_up: Vec<bool>,
    /// Digest nonces for trunks with `auth`; None if the random source failed at start.
    nonces: Option<crate::sip::digest::Nonces>,
    /// Trunks whose OPTIONS pings say down (`trunk_health`): calls for them get 503 at once.
    trunks_down: std::collections::HashSet<String>,
}

impl B2bua {
    pub(crate) fn new(
        config: Arc<Config>,
        media: MediaPlane,
        local: LocalAddrs,
        cdr: crate::cdr::CdrWriter,
    ) -> B2bua {
        let tenants: Vec<String> = config.tenants.iter().map(|t| t.fqdn.clone()).collect();
        let proxies_up = vec![true; config.teams.proxies.len()];
        B2bua {
            routes: Routes::new(&config),
            limits: limits::Limits::new(&config),
            records: records::Records::new(cdr, &tenants),
            codecs: codecs_of(&config),
            policies: policies_of(&config),
            config,
            media,
            local,
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            detached: HashMap::new(),
            invites: HashMap::new(),
            timers: BinaryHeap::new(),
            actions: VecDeque::new(),
            next_key: 1,
            rng: StdRng::from_os_rng(),
            proxies_up,
            nonces: crate::sip::digest::Nonces::new()
                .inspect_err(|_| {
                    tracing::error!("no key for digest nonces: trunks with auth get 500")
                })
                .ok(),
            trunks_down: Default::default(),
        }
    }

    /// The trunks the OPTIONS pings now say are down.
    pub(crate) fn set_trunks_down(&mut self, down: std::collections::HashSet<String>) {
        self.trunks_down = down;
    }

    /// The trunk a call runs over.
    pub(crate) fn call_trunk(&self, key: CallKey) -> Option<&str> {
        self.calls.get(&key).map(|c| c.trunk.as_str())
    }

    /// A reloaded config (only `[[tenant]]` and `[[trunk]]` may differ): new calls are routed,
    /// limited and shaped by it; calls in progress keep their legs and media as they are.
    pub(crate) fn reconfigure(&mut self, config: Arc<Config>) {
        self.routes = Routes::new(&config);
        self.limits.reconfigure(&config);
        let tenants: Vec<String> = config.tenants.iter().map(|t| t.fqdn.clone()).collect();
        self.records.add_tenants(&tenants);
        self.codecs = codecs_of(&config);
        self.policies = policies_of(&config);
        self.config = config;
    }

    /// The pinger's view of proxy `index` (TDR-OPT: a proxy marked down is skipped).
    pub(crate) fn set_proxy_up(&mut self, index: usize, up: bool) {
        if let Some(p) = self.proxies_up.get_mut(index) {
            *p = up;
        }
    }

    pub(crate) fn has_call(&self, key: CallKey) -> bool {
        self.calls.contains_key(&key)
    }

    pub(crate) fn active_calls(&self) -> usize {
        self.calls.len()
    }

    pub(crate) fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Runs every call whose earliest deadline has come.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, key))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            // A call reschedules itself whenever its deadlines move; stale heap entries find
            // nothing due and are skipped.
            if let Some(call) = self.calls.get(&key)
                && call.next_deadline().is_some_and(|d| d <= now)
            {
                self.on_call_timer(key, now);
            }
        }
    }

    /// The CANCEL of leg A's INVITE (the endpoint answered the CANCEL itself, §9.2).
    pub(crate) fn on_cancel(&mut self, invite_tx: TxId, cancel: &Request, now: Instant) {
        if let Some(key) = self.invites.get(&invite_tx).copied() {
            self.cancel_from_a(key, &cancel.headers, now);
        }
    }

    /// Media plane news: a silent stream ends the call (its other side is gone too), except
    /// while a transfer rings: then the held party's side is silent by design (a blind
    /// transfer's referrer has hung up), and the new party may ring longer than the timeout.
    pub(crate) fn on_media_event(&mut self, ev: MediaEvent, now: Instant) {
        match ev {
            MediaEvent::Timeout {
                id,
                leg,
                silent_for,
            } => {
                let key = id;
                let side = match leg {
                    crate::media::Leg::Teams => media::SdpSide::Teams,
                    crate::media::Leg::Trunk => media::SdpSide::Trunk,
                };
                if let Some(call) = self.calls.get(&key)
                    && call.is_confirmed()
                    && call.transfer.is_none()
                    && call.media.expects_media_from(side)
                {
                    tracing::info!(call = key, ?leg, silent_s = silent_for.as_secs(), tenant = %call.tenant, "no media: ending the call");
                    self.end_call(key, teardown::End::media_timeout(), now);
                }
            }
            MediaEvent::UnexpectedSource { id, leg, addr } => {
                tracing::debug!(call = id, ?leg, %addr, "media from an unexpected source dropped");
            }
        }
    }

    /// Ends every call (shutdown): BYE or CANCEL on each leg that has one.
    pub(crate) fn end_all(&mut self, now: Instant) {
        let keys: Vec<CallKey> = self.calls.keys().copied().collect();
        for key in keys {
            self.end_call(key, teardown::End::shutdown(), now);
        }
    }

    fn new_key(&mut self) -> CallKey {
        let k = self.next_key;
        self.next_key += 1;
        k
    }

    fn token(&mut self, len: usize) -> String {
        use rand::Rng;
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| char::from(ALPHABET[self.rng.random_range(0..ALPHABET.len())]))
            .collect()
    }

    fn schedule(&mut self, key: CallKey) {
        if let Some(at) = self.calls.get(&key).and_then(|c| c.next_deadline()) {
            self.timers.push(Reverse((at, key)));
        }
    }

    fn respond(&mut self, tx: TxId, response: Response) {
        self.actions.push_back(Action::Respond { tx, response });
    }

    /// A final answer to a request outside any call.
    fn reject(&mut self, tx: TxId, req: &Request, status: u16, reason: &str) {
        let tag = self.token(10);
        let rsp = Response::for_request(req, status, reason, Some(&tag));
        self.respond(tx, rsp);
    }

    fn register_dialog(&mut self, call_id: &str, local_tag: &str, key: CallKey, leg: LegId) {
        self.dialogs
            .insert((call_id.to_owned(), local_tag.to_owned()), (key, leg));
    }

    /// The call and leg a request with this Call-ID and To tag belongs to.
    pub(crate) fn find_dialog(&self, call_id: &str, to_tag: &str) -> Option<(CallKey, LegId)> {
        self.dialogs
            .get(&(call_id.to_owned(), to_tag.to_owned()))
            .copied()
    }
}

/// Whether a method starts an offer/answer exchange we bridge.
fn is_session_method(m: &Method) -> bool {
    matches!(m, Method::Invite | Method::Update)
}

#[cfg(test)]
mod tests;

fn codecs_of(config: &Config) -> HashMap<String, crate::sdp::CodecPolicy> {
    config
        .trunks
        .iter()
        .map(|t| (t.name.clone(), setup::codec_policy(t)))
        .collect()
}

fn policies_of(config: &Config) -> HashMap<String, crate::trunk_policy::TrunkPolicy> {
    config
        .trunks
        .iter()
        .filter_map(|t| match crate::trunk_policy::TrunkPolicy::from_config(t) {
            Ok(p) => Some((t.name.clone(), p)),
            Err(e) => {
                // check-config refuses such rules; a policy that still fails passes
                // identity headers and rewrites nothing.
                tracing::error!(trunk = %t.name, error = %e, "trunk policy not usable");
                None
            }
        })
        .collect()
}
