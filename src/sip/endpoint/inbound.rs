//! Everything that arrives: parse, check the source, validate, match transactions, answer.

use bytes::Bytes;

use super::{Endpoint, TxContext, policy, token};
use crate::b2bua::Source;
use crate::clock;
use crate::metrics::Direction;
use crate::sip::Method;
use crate::sip::message::{Message, Request, Response, error_response_for_raw};
use crate::sip::transaction::{RequestFields, ServerDisposition, TransactionKey, TxId};
use crate::sip::transport::{Incoming, Side, Target, TransportKind};
use crate::sip::validate::{validate_request, validate_response};

impl Endpoint {
    pub(super) async fn on_incoming(&mut self, inc: Incoming) {
        if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!(
                peer = %inc.source,
                transport = %inc.transport,
                "SIP in:\n{}",
                super::trace::redacted(&inc.data)
            );
        }
        let reply_to = Target {
            transport: inc.transport,
            addr: inc.source,
            conn: inc.conn,
            server_name: None,
            side: inc.side,
        };
        let parsed = match inc.transport {
            TransportKind::Udp => Message::parse_datagram(inc.data.clone()),
            _ => Message::parse(inc.data.clone()),
        };
        let msg = match parsed {
            Ok(m) => m,
            Err(e) => {
                self.counters.parse_error(inc.transport, &e);
                // RFC 3261 §16.3/§8.2: a request we cannot read gets 400 if enough of it is
                // there to address an answer; a broken response is only dropped.
                if let Some((status, reason)) = e.status()
                    && let Some(bytes) = error_response_for_raw(&inc.data, status, reason)
                {
                    tracing::debug!(peer = %inc.source, status, error = %e, "malformed request");
                    // The method is unknown when the request did not parse.
                    let method = Method::Other(String::new());
                    self.send_stateless(&reply_to, &method, status, bytes).await;
                } else {
                    tracing::debug!(peer = %inc.source, error = %e, "malformed message dropped");
                }
                return;
            }
        };
        match msg {
            Message::Request(req) => self.on_request(req, &inc, reply_to).await,
            Message::Response(rsp) => self.on_response(rsp, &inc),
        }
    }

    async fn on_request(&mut self, mut req: Request, inc: &Incoming, reply_to: Target) {
        self.counters
            .message(Direction::In, inc.transport, &req.method, None);
        // The trunk side is not authenticated by TLS: only configured sources may talk to us.
        // Others get no answer at all, which tells a scanner nothing.
        if inc.side == Side::Trunk && self.routes.trunk_by_source(inc.source.ip()).is_none() {
            self.counters.acl_reject(inc.transport);
            tracing::debug!(peer = %inc.source, method = %req.method, "request from a source no trunk allows: dropped");
            return;
        }
        stamp_received(&mut req, inc.source);
        if let Err(rej) = validate_request(&req, &self.policy) {
            // RFC 3261 §17.2.3: ACK is never answered.
            if req.method != Method::Ack {
                let mut rsp = Response::for_request(
                    &req,
                    rej.status,
                    &rej.reason,
                    Some(&token(&mut self.rng, 10)),
                );
                for (name, value) in &rej.extra_headers {
                    rsp.headers.push(name, value.clone());
                }
                self.respond_stateless(&reply_to, rsp).await;
            }
            return;
        }
        // RFC 3261 §8.2.7: OPTIONS outside a dialog is answered by a stateless UAS, as
        // Kamailio's sl_send_reply does. Keepalives are most of the traffic, and a UDP server
        // transaction would be held 32 s (Timer J) for each: a flood would fill memory. A
        // retransmission gets the same answer again, with the same To tag derived from it.
        if req.method == Method::Options && !has_to_tag(&req) {
            let tag = stateless_tag(&req);
            let mut rsp = Response::for_request(&req, 200, "OK", Some(&tag));
            capabilities(&mut rsp);
            self.respond_stateless(&reply_to, rsp).await;
            return;
        }
        let Some(key) = server_key(&req) else {
            return;
        };
        // Bounded state: past the cap new requests are refused rather than queued (TDR-INV-13:
        // 503 lets Teams try another SBC). ACKs and CANCELs still reach what exists.
        if self.txns.len() >= self.config.sip.max_transactions
            && !matches!(req.method, Method::Ack | Method::Cancel)
        {
            self.counters.overload();
            let tag = token(&mut self.rng, 10);
            let mut rsp = Response::for_request(&req, 503, "Service Unavailable", Some(&tag));
            rsp.headers.push("Retry-After", "5");
            self.respond_stateless(&reply_to, rsp).await;
            return;
        }
        // Overload: when more is waiting than we handle in a few tens of milliseconds, a new
        // call is refused at once rather than queued. It costs a parse and an answer instead of
        // a call's work, so the calls already admitted keep their pace and complete (queuing
        // them all would make every caller time out). In-dialog requests are never refused.
        if req.method == Method::Invite && !has_to_tag(&req) && self.backlog > OVERLOAD_BACKLOG {
            self.counters.overload();
            let tag = token(&mut self.rng, 10);
            let mut rsp = Response::for_request(&req, 503, "Service Unavailable", Some(&tag));
            rsp.headers.push("Retry-After", "1");
            self.respond_stateless(&reply_to, rsp).await;
            return;
        }
        // Draining (TDR-MON-04): a new call gets 503, so Teams fails over to another SBC and a
        // trunk tries its next route. An INVITE with Replaces belongs to a call in progress.
        if req.method == Method::Invite
            && !has_to_tag(&req)
            && self.draining.requested.is_cancelled()
            && req.headers.get("Replaces").is_none()
        {
            self.counters.drain_reject();
            let tag = token(&mut self.rng, 10);
            let rsp = Response::for_request(&req, 503, "Service Unavailable", Some(&tag));
            self.respond_stateless(&reply_to, rsp).await;
            return;
        }
        let reliable = inc.transport != TransportKind::Udp;
        let now = clock::now();
        match self.txns.on_request(
            key.clone(),
            &req.method,
            reliable,
            TxContext::Server(reply_to),
            now,
        ) {
            ServerDisposition::Retransmission(_) | ServerDisposition::AckForFinal(_) => {}
            ServerDisposition::AckNoTransaction => {
                // An ACK for a 2xx belongs to a dialog; with no dialog it is dropped (§17.2.3).
                if !self.b2bua.on_dialog_request(None, req, now) {
                    tracing::debug!(peer = %inc.source, "ACK without a dialog dropped");
                }
            }
            ServerDisposition::New(id) => {
                self.dispatch(id, req, &key, inc).await;
            }
        }
    }

    /// A new server transaction: decide the answer.
    async fn dispatch(&mut self, id: TxId, req: Request, key: &TransactionKey, inc: &Incoming) {
        let now = clock::now();
        if has_to_tag(&req) && req.method != Method::Cancel {
            // Inside a dialog: the call it belongs to answers, or nobody knows it (481).
            if self.b2bua.on_dialog_request(Some(id), req.clone(), now) {
                return;
            }
            let to_tag = token(&mut self.rng, 10);
            let rsp =
                Response::for_request(&req, 481, "Call/Transaction Does Not Exist", Some(&to_tag));
            return self.server_respond(id, rsp, now);
        }
        if req.method == Method::Invite {
            return self.initial_invite(id, req, inc, now);
        }
        let req = &req;
        let to_tag = token(&mut self.rng, 10);
        let rsp = match &req.method {
            // TDR-OPT-06: answer OPTIONS with 200 and our capabilities (TDR-HDR-03).
            Method::Options => {
                let mut rsp = Response::for_request(req, 200, "OK", Some(&to_tag));
                capabilities(&mut rsp);
                rsp
            }
            Method::Cancel => match self.txns.find_cancel_target(key) {
                // RFC 3261 §9.2: 200 for the CANCEL; the call answers the INVITE with 487
                // if it is still ringing.
                Some(invite_tx) => {
                    let rsp = Response::for_request(req, 200, "OK", Some(&to_tag));
                    self.server_respond(id, rsp, now);
                    self.b2bua.on_cancel(invite_tx, req, now);
                    return;
                }
                None => Response::for_request(
                    req,
                    481,
                    "Call/Transaction Does Not Exist",
                    Some(&to_tag),
                ),
            },
            // Other requests outside a dialog (BYE, INFO, REFER ...) name nothing we know.
            _ => Response::for_request(req, 481, "Call/Transaction Does Not Exist", Some(&to_tag)),
        };
        self.server_respond(id, rsp, now);
    }

    /// A new call. An unknown tenant FQDN is counted here (TDR-INV-09); everything else is
    /// the B2BUA's.
    fn initial_invite(&mut self, id: TxId, req: Request, inc: &Incoming, now: std::time::Instant) {
        if inc.side == Side::Teams {
            let host = req.uri.host.to_string();
            if self.routes.tenant_by_fqdn(&host).is_none() {
                self.counters.unknown_tenant();
                tracing::info!(peer = %inc.source, tenant = %host, "INVITE for an unknown tenant FQDN: 404");
                let to_tag = token(&mut self.rng, 10);
                let rsp =
                    Response::for_request(&req, 404, "Not Found - unknown tenant", Some(&to_tag));
                return self.server_respond(id, rsp, now);
            }
        }
        self.share_proxy_health();
        let source = Source {
            side: inc.side,
            transport: inc.transport,
            addr: inc.source,
            conn: inc.conn,
            peer_name: inc.peer_name.as_deref().map(str::to_owned),
        };
        self.b2bua.on_invite(id, req, &source, now);
    }

    pub(super) fn server_respond(&mut self, id: TxId, mut rsp: Response, now: std::time::Instant) {
        rsp.headers.push("Server", self.config.sbc.product.clone());
        let status = rsp.status;
        if let (Some(TxContext::Server(t)), Ok(cseq)) = (self.txns.context(id), rsp.headers.cseq())
        {
            self.counters
                .message(Direction::Out, t.transport, &cseq.method, Some(status));
        }
        if let Err(e) = self.txns.respond(id, status, rsp.to_bytes(), now) {
            tracing::debug!(error = %e, "response not sent");
        }
    }

    async fn respond_stateless(&mut self, to: &Target, mut rsp: Response) {
        rsp.headers.push("Server", self.config.sbc.product.clone());
        let status = rsp.status;
        let method = rsp
            .headers
            .cseq()
            .map(|c| c.method)
            .unwrap_or(Method::Other(String::new()));
        self.send_stateless(to, &method, status, rsp.to_bytes())
            .await;
    }

    async fn send_stateless(&mut self, to: &Target, method: &Method, status: u16, bytes: Bytes) {
        self.counters
            .message(Direction::Out, to.transport, method, Some(status));
        self.send(to.clone(), bytes);
    }

    fn on_response(&mut self, rsp: Response, inc: &Incoming) {
        // A broken response (bad CSeq, repeated single-valued headers, a broadcast Via) is
        // dropped before it can touch a transaction: it cannot be answered (RFC 4475 §3.1.2.5).
        if let Err(e) = validate_response(&rsp) {
            self.counters.response_headers_error(inc.transport);
            tracing::debug!(peer = %inc.source, error = %e, "malformed response dropped");
            return;
        }
        let (Ok(via), Ok(cseq)) = (rsp.headers.top_via(), rsp.headers.cseq()) else {
            self.counters.response_headers_error(inc.transport);
            return;
        };
        self.counters
            .message(Direction::In, inc.transport, &cseq.method, Some(rsp.status));
        let Some(branch) = via.branch.as_deref() else {
            return;
        };
        let key = TransactionKey::client(branch, &cseq.method);
        let status = rsp.status;
        if let Some(id) = self.txns.on_response(&key, status, clock::now()) {
            self.stash_call_response(id, rsp);
        } else {
            // A stray response: a proxy would forward it, a B2BUA has nowhere to send it.
            self.counters.stray_response();
            tracing::debug!(peer = %inc.source, status, "response matches no transaction");
        }
    }
}

/// Messages waiting for the endpoint above which new calls are refused: about 150 ms of work
/// at ~13,000 messages per second (1,600 calls/s). 500 refused calls at 1,600/s while the
/// signaling thread averaged 55 % of a core: bursts from stunnel's TLS records and from the
/// thread being descheduled on a shared box are longer than 40 ms.
const OVERLOAD_BACKLOG: usize = 2000;

/// What we can do, as OPTIONS answers say (TDR-OPT-06, TDR-HDR-03, TDR-XFR-01).
fn capabilities(rsp: &mut Response) {
    rsp.headers.push("Allow", policy::ALLOW);
    rsp.headers.push("Accept", policy::ACCEPT);
    rsp.headers.push("Supported", policy::SUPPORTED);
}

fn has_to_tag(req: &Request) -> bool {
    req.headers.to().ok().is_some_and(|t| t.tag().is_some())
}

/// A To tag that a retransmission of the same request gets again (RFC 3261 §8.2.6.2 wants
/// the same tag on every response to one request). `DefaultHasher::new()` has fixed keys.
fn stateless_tag(req: &Request) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    req.headers.call_id().ok().hash(&mut h);
    req.headers.get("Via").hash(&mut h);
    req.headers.get("From").hash(&mut h);
    req.headers.get("CSeq").hash(&mut h);
    format!("sl{:016x}", h.finish())
}

/// RFC 3261 §18.2.1: note where the request really came from in the top Via (`received` when
/// the sent-by host differs from the source IP; RFC 3581 `rport` filled in when asked), so the
/// responses tell the client what we saw. Responses go to the source address and port in any
/// case: the client may sit behind a NAT.
fn stamp_received(req: &mut Request, source: std::net::SocketAddr) {
    let Ok(mut via) = req.headers.top_via() else {
        return;
    };
    let host_is_source = via
        .host
        .to_string()
        .trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .ok()
        == Some(source.ip());
    let mut changed = false;
    if !host_is_source {
        via.received = Some(source.ip().to_string());
        changed = true;
    }
    if via.rport == Some(None) {
        via.rport = Some(Some(source.port()));
        changed = true;
    }
    if !changed {
        return;
    }
    let mut values: Vec<Bytes> = req.headers.values("Via").collect();
    if let Some(first) = values.first_mut() {
        *first = Bytes::from(via.to_string());
    }
    let joined: Vec<&[u8]> = values.iter().map(|v| v.as_ref()).collect();
    req.headers.set("Via", joined.join(&b", "[..]));
}

/// RFC 3261 §17.2.3 server transaction key, with the RFC 2543 fallback when the branch lacks
/// the magic cookie.
fn server_key(req: &Request) -> Option<TransactionKey> {
    let via = req.headers.top_via().ok()?;
    let cseq = req.headers.cseq().ok()?;
    let call_id = req.headers.call_id().ok()?;
    let sent_by = via.sent_by();
    // The RFC 2543 fields below (From and To parsed, the Request-URI and Via printed) are
    // built only for peers without the magic cookie.
    if let Some(key) = TransactionKey::server_rfc3261(&req.method, via.branch.as_deref(), &sent_by)
    {
        return Some(key);
    }
    let request_uri = req.uri.to_string();
    let to_tag = req
        .headers
        .to()
        .ok()
        .and_then(|t| t.tag().map(str::to_owned));
    let from_tag = req
        .headers
        .from()
        .ok()
        .and_then(|f| f.tag().map(str::to_owned));
    let top_via = via.to_string();
    Some(TransactionKey::server(&RequestFields {
        method: &req.method,
        branch: via.branch.as_deref(),
        sent_by: &sent_by,
        request_uri: &request_uri,
        to_tag: to_tag.as_deref(),
        from_tag: from_tag.as_deref(),
        call_id,
        cseq: cseq.seq,
        top_via: &top_via,
    }))
}
