//! The endpoint's side of the B2BUA: it runs what the calls ask for (answers, requests with
//! their client transactions, ACKs, CANCELs) and feeds back what comes of them.

use std::time::Instant;

use bytes::Bytes;

use super::{Endpoint, Feedback, TxContext, token};
use crate::b2bua::{Action, CallKey, Dest, LegId, Purpose};
use crate::clock;
use crate::dns::{SipTarget, SipTransport};
use crate::metrics::Direction;
use crate::sip::Method;
use crate::sip::message::{Request, Response};
use crate::sip::transaction::{Output, TransactionKey, TxId};
use crate::sip::transport::{SendNow, Side, Target, TransportKind};
use crate::teams::keepalive::Health;

/// A call's client transaction: what it is for, where it goes, and what it sent and last
/// received (the ACK of a non-2xx and a CANCEL are built from them, §17.1.1.3, §9.1).
#[derive(Debug, Clone)]
pub(super) struct CallTx {
    pub(super) call: CallKey,
    pub(super) leg: LegId,
    pub(super) purpose: Option<Purpose>,
    pub(super) dest: Target,
    pub(super) request: Request,
    pub(super) response: Option<Response>,
}

/// The targets of a `Dest::Lookup`'s host in RFC 3263 order, each to be reached on `side`
/// over `transport` (a call's next hop, a trunk's pings).
pub(super) async fn lookup(
    resolver: &crate::dns::SipResolver,
    side: Side,
    transport: TransportKind,
    host: &str,
    port: Option<u16>,
    server_name: Option<String>,
) -> Result<Vec<Target>, crate::dns::DnsError> {
    let query = SipTarget {
        host: host.to_owned(),
        port,
        transport: Some(match transport {
            TransportKind::Udp => SipTransport::Udp,
            TransportKind::Tcp => SipTransport::Tcp,
            TransportKind::Tls => SipTransport::Tls,
        }),
        secure: false,
    };
    Ok(resolver
        .resolve(&query)
        .await?
        .iter()
        .map(|r| Target {
            transport,
            addr: r.addr,
            conn: None,
            server_name: server_name.clone(),
            side,
        })
        .collect())
}

impl Endpoint {
    /// Runs everything the calls asked for.
    pub(super) fn run_call_actions(&mut self) {
        while let Some(action) = self.b2bua.poll_action() {
            match action {
                Action::Respond { tx, response } => {
                    self.server_respond(tx, response, clock::now());
                }
                Action::Cancel { tx, reason } => self.send_cancel(tx, reason),
                routed => match routed.dest() {
                    Some(Dest::Lookup { .. }) => self.resolve_then(routed),
                    _ => self.send_routed(routed),
                },
            }
        }
    }

    /// A request or ACK whose destination is an address.
    fn send_routed(&mut self, action: Action) {
        match action {
            Action::Request {
                call,
                leg,
                purpose,
                request,
                via,
                dest: Dest::Target(t),
            } => self.start_call_request(call, leg, purpose, request, &via, t),
            Action::Ack {
                request,
                via,
                dest: Dest::Target(t),
            } => self.send_ack(request, &via, t),
            _ => {}
        }
    }

    /// RFC 3263 lookup in a task; the action comes back as feedback with the address filled
    /// in, or the call hears that its request failed.
    fn resolve_then(&mut self, action: Action) {
        let Some(Dest::Lookup {
            side,
            transport,
            host,
            port,
            server_name,
        }) = action.dest().cloned()
        else {
            return;
        };
        let resolver = self.resolver.clone();
        let feedback = self.feedback_tx.clone();
        tokio::spawn(async move {
            let targets = match lookup(&resolver, side, transport, &host, port, server_name).await {
                Ok(targets) => targets,
                Err(e) => {
                    tracing::info!(host = %host, error = %e, "cannot resolve a call's next hop");
                    Vec::new()
                }
            };
            let _ = feedback
                .send(Feedback::CallResolved {
                    action: Box::new(action),
                    targets,
                })
                .await;
        });
    }

    pub(super) fn on_call_resolved(&mut self, mut action: Action, mut targets: Vec<Target>) {
        if let Action::Request {
            call,
            purpose: Purpose::Invite,
            ..
        } = &action
            && let Some(trunk) = self.b2bua.call_trunk(*call)
        {
            // Targets the trunk's pings see down go last; RFC 3263 order otherwise (stable).
            targets.sort_by_key(|t| self.trunk_health.target_down(trunk, t.addr));
        }
        let mut targets = targets.into_iter();
        match (targets.next(), &action) {
            (Some(t), _) => {
                // A call's INVITE toward a trunk whose name gave several targets: the call
                // keeps the others to fail over to (RFC 3263 §4.3).
                let alternatives = match &action {
                    Action::Request {
                        call,
                        purpose: Purpose::Invite,
                        ..
                    } if t.side == Side::Trunk => Some(*call),
                    _ => None,
                };
                // Told first: a send that fails at once moves straight on to the next.
                if let Some(call) = alternatives {
                    self.b2bua
                        .on_alternatives(call, targets.collect(), clock::now());
                }
                action.set_dest(Dest::Target(t));
                self.send_routed(action);
            }
            (
                None,
                Action::Request {
                    call, leg, purpose, ..
                },
            ) => {
                // No address: as a transport failure (§8.1.3.1: treated as 503).
                self.b2bua
                    .on_request_unroutable(*call, *leg, *purpose, clock::now());
            }
            (None, _) => {}
        }
    }

    fn start_call_request(
        &mut self,
        call: CallKey,
        leg: LegId,
        purpose: Purpose,
        mut request: Request,
        via: &str,
        dest: Target,
    ) {
        let branch = format!("z9hG4bK{}", token(&mut self.rng, 16));
        request
            .headers
            .push_front("Via", format!("{via};branch={branch};rport"));
        let method = request.method.clone();
        let key = TransactionKey::client(&branch, &method);
        let reliable = dest.transport != TransportKind::Udp;
        self.counters
            .message(Direction::Out, dest.transport, &method, None);
        let bytes = request.to_bytes();
        let ctx = TxContext::Call(Box::new(CallTx {
            call,
            leg,
            purpose: Some(purpose),
            dest,
            request,
            response: None,
        }));
        match self
            .txns
            .start_client(key, &method, bytes, reliable, ctx, clock::now())
        {
            Ok(tx) => self.b2bua.on_request_sent(call, purpose, tx),
            Err(e) => tracing::error!(call, error = %e, "cannot start a call's transaction"),
        }
    }

    fn send_ack(&mut self, mut ack: Request, via: &str, dest: Target) {
        let branch = format!("z9hG4bK{}", token(&mut self.rng, 16));
        ack.headers
            .push_front("Via", format!("{via};branch={branch};rport"));
        self.counters
            .message(Direction::Out, dest.transport, &Method::Ack, None);
        self.send(dest, ack.to_bytes());
    }

    /// §9.1: the CANCEL copies the INVITE's Request-URI, top Via, From, To, Call-ID, Route
    /// and CSeq number, and is its own non-INVITE transaction with the same branch.
    fn send_cancel(&mut self, invite_tx: TxId, reason: Option<Bytes>) {
        if !self.txns.cancel_allowed(invite_tx) {
            return;
        }
        let Some(TxContext::Call(ctx)) = self.txns.context(invite_tx) else {
            return;
        };
        let ctx = ctx.as_ref().clone();
        let invite = &ctx.request;
        let mut cancel = Request::new(Method::Cancel, invite.uri.clone());
        if let Some(v) = invite.headers.get("Via") {
            cancel.headers.push("Via", v.clone());
        }
        for name in ["Route", "From", "To", "Call-ID"] {
            for v in invite.headers.get_all(name) {
                cancel.headers.push(name, v.clone());
            }
        }
        let seq = invite.headers.cseq().map(|c| c.seq).unwrap_or(1);
        cancel.headers.push("CSeq", format!("{seq} CANCEL"));
        cancel.headers.push("Max-Forwards", "70");
        if let Some(value) = reason {
            cancel.headers.push("Reason", value);
        }
        let Some(branch) = invite.headers.top_via().ok().and_then(|v| v.branch.clone()) else {
            return;
        };
        let key = TransactionKey::client(&branch, &Method::Cancel);
        let reliable = ctx.dest.transport != TransportKind::Udp;
        self.counters
            .message(Direction::Out, ctx.dest.transport, &Method::Cancel, None);
        let bytes = cancel.to_bytes();
        let cctx = TxContext::Call(Box::new(CallTx {
            purpose: None,
            request: cancel,
            response: None,
            ..ctx
        }));
        let now = clock::now();
        match self
            .txns
            .start_client(key, &Method::Cancel, bytes, reliable, cctx, now)
        {
            Ok(_) => self.txns.cancelled(invite_tx, now),
            Err(e) => tracing::debug!(error = %e, "CANCEL not sent"),
        }
    }

    /// What a call's client transaction produced.
    pub(super) fn on_call_tx_output(&mut self, id: TxId, out: Output) {
        let now = clock::now();
        let Some(TxContext::Call(ctx)) = self.txns.context(id) else {
            return;
        };
        let (call, leg, purpose, dest) = (ctx.call, ctx.leg, ctx.purpose, ctx.dest.clone());
        match out {
            Output::Transmit(bytes) => self.send_detached_for(id, dest, bytes),
            Output::Deliver { status } => {
                let rsp = match self.txns.context_mut(id) {
                    Some(TxContext::Call(c)) => {
                        if (200..300).contains(&status) {
                            // No CANCEL and no ACK of ours is built from it any more.
                            c.request =
                                Request::new(c.request.method.clone(), c.request.uri.clone());
                        }
                        c.response.take()
                    }
                    _ => None,
                };
                if let (Some(rsp), Some(purpose)) = (rsp, purpose) {
                    if !self.b2bua.has_call(call) {
                        self.b2bua.end_orphan_dialog(call, &rsp, dest);
                        return;
                    }
                    self.b2bua.on_response(call, leg, purpose, id, rsp, now);
                }
            }
            Output::NeedAck { .. } => {
                if let Some(ack) = self.ack_for_non_2xx(id) {
                    let _ = self.txns.set_ack(id, ack);
                }
            }
            Output::Timeout | Output::TransportError => {
                let status = if matches!(out, Output::Timeout) {
                    408
                } else {
                    503
                };
                if let Some(purpose) = purpose {
                    self.b2bua
                        .on_request_failed(call, leg, purpose, id, status, now);
                }
            }
            Output::AckTimeout | Output::Terminated => {}
        }
    }

    /// §17.1.1.3: the ACK of a non-2xx has the INVITE's Request-URI, top Via, From, Call-ID,
    /// Route and CSeq number, and the response's To (with its tag).
    fn ack_for_non_2xx(&self, id: TxId) -> Option<Bytes> {
        let Some(TxContext::Call(ctx)) = self.txns.context(id) else {
            return None;
        };
        let invite = &ctx.request;
        let mut ack = Request::new(Method::Ack, invite.uri.clone());
        ack.headers.push("Via", invite.headers.get("Via")?.clone());
        for name in ["Route", "From", "Call-ID"] {
            for v in invite.headers.get_all(name) {
                ack.headers.push(name, v.clone());
            }
        }
        let to = ctx
            .response
            .as_ref()
            .and_then(|r| r.headers.get("To").cloned())
            .or_else(|| invite.headers.get("To").cloned())?;
        ack.headers.push("To", to);
        let seq = invite.headers.cseq().ok()?.seq;
        ack.headers.push("CSeq", format!("{seq} ACK"));
        ack.headers.push("Max-Forwards", "70");
        Some(ack.to_bytes())
    }

    /// Keeps a response for the call until the transaction delivers it.
    pub(super) fn stash_call_response(&mut self, id: TxId, rsp: Response) {
        if let Some(TxContext::Call(c)) = self.txns.context_mut(id) {
            c.response = Some(rsp);
        }
    }

    /// As [`Endpoint::send`], and a failure ends transaction `id` (§17.1.4).
    fn send_detached_for(&mut self, id: TxId, dest: Target, bytes: Bytes) {
        self.trace_out(&dest, &bytes);
        let bytes = match self.transports.send_now(&dest, bytes) {
            SendNow::Sent(_) => return,
            SendNow::Failed(e) => {
                tracing::info!(peer = %dest.addr, error = %e, "call request not sent");
                let _ = self.txns.handle_transport_error(id, clock::now());
                return;
            }
            SendNow::Later(bytes) => bytes,
        };
        let transports = self.transports.clone();
        let feedback = self.feedback_tx.clone();
        tokio::spawn(async move {
            if let Err(e) = transports.send(&dest, bytes).await {
                tracing::info!(peer = %dest.addr, error = %e, "call request not sent");
                let _ = feedback.send(Feedback::TxSendFailed { tx: id }).await;
            }
        });
    }

    /// The pinger's view of each Teams proxy, for the B2BUA to skip those marked down.
    pub(super) fn share_proxy_health(&mut self) {
        let count = self.config.teams.proxies.len();
        for proxy in 0..count {
            let down = self
                .pinger
                .targets()
                .iter()
                .filter(|t| t.proxy == proxy && t.carrier)
                .any(|t| matches!(t.health(), Health::Down));
            self.b2bua.set_proxy_up(proxy, !down);
        }
    }

    pub(super) fn call_timeouts(&mut self, now: Instant) {
        self.b2bua.handle_timeout(now);
    }
}
