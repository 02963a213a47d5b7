//! A new call: routing (tenant FQDN ⇄ trunk), admission, the media session, and leg B's
//! INVITE shaped for its side (TDR-INV-01..05 toward Teams, plain RTP toward the trunk).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::body::{SdpBody, sdp_of};
use super::call::{Call, CallDirection, CallKey, Leg, LegId, Purpose, State};
use super::dialog::Dialog;
use super::media::{CallMedia, SdpSide};
use super::timer::{self, UasTimer};
use super::{Action, B2bua, Dest, Source};
use crate::config::{TenantConfig, TrunkConfig};
use crate::sdp::{CodecPolicy, SessionDescription};
use crate::sip::Method;
use crate::sip::message::{Host, NameAddr, Request, Response, Uri};
use crate::sip::transaction::TxId;
use crate::sip::transport::{Side, Target, TransportKind};
use crate::trunk_policy::{self, NumberField, Toward};

/// Methods we handle, for Allow (TDR-HDR-03, TDR-XFR-01).
pub(crate) const ALLOW: &str =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, REFER, PRACK, UPDATE";
const SUPPORTED: &str = "timer";

/// Where leg B goes: the tenant's trunk, or the Teams proxies.
struct Route {
    tenant: TenantConfig,
    trunk: TrunkConfig,
    direction: CallDirection,
}

impl B2bua {
    /// An INVITE outside any dialog, with its new server transaction `tx`.
    pub(crate) fn on_invite(&mut self, tx: TxId, req: Request, src: &Source, now: Instant) {
        if self.on_replacing_invite(tx, &req, src, now) {
            return;
        }
        let route = match self.route(&req, src) {
            Ok(r) => r,
            Err((status, reason)) => {
                tracing::debug!(peer = %src.addr, status, reason, uri = %req.uri, "INVITE refused");
                return self.reject(tx, &req, status, reason);
            }
        };
        // RFC 4028 §9: a Session-Expires below our Min-SE is refused before anything else.
        let a_timer = timer::uas_timer(&req.headers);
        if a_timer == UasTimer::TooSmall {
            let tag = self.token(10);
            let mut rsp =
                Response::for_request(&req, 422, "Session Interval Too Small", Some(&tag));
            rsp.headers.push("Min-SE", timer::MIN_SE.to_string());
            return self.respond(tx, rsp);
        }
        let offer = match sdp_of(&req.headers, &req.body) {
            SdpBody::Sdp(sd) => Some(*sd),
            SdpBody::None => None,
            SdpBody::Invalid => {
                return self.reject(tx, &req, 400, "Bad Request - SDP does not parse");
            }
        };
        if offer.is_none() && src.side == Side::Teams {
            // TDR-INV-05 concerns our INVITEs; Teams always offers. Without one we could not
            // keep the Teams leg SRTP (TDR-MED-01).
            return self.reject(tx, &req, 488, "Not Acceptable Here - SRTP offer required");
        }
        if let Err(refusal) = self
            .limits
            .admit(&route.tenant.fqdn, &route.trunk.name, now)
        {
            tracing::debug!(tenant = %route.tenant.fqdn, trunk = %route.trunk.name, why = refusal.label(), "call refused: limit");
            metrics::counter!(
                crate::metrics::CALLS_REFUSED,
                "tenant" => route.tenant.fqdn.clone(),
                "reason" => refusal.label()
            )
            .increment(1);
            let tag = self.token(10);
            let mut rsp = Response::for_request(&req, 503, refusal.reason(), Some(&tag));
            rsp.headers
                .push("Retry-After", refusal.retry_after().as_secs().to_string());
            return self.respond(tx, rsp);
        }
        // The 100 goes out before anything slow (TDR-INV-13: answer at once).
        self.respond(tx, Response::for_request(&req, 100, "Trying", None));

        let key = self.new_key();
        match self.start_call(key, tx, req.clone(), src, route, offer, now) {
            Ok(()) => self.schedule(key),
            Err((status, reason, tenant)) => {
                self.limits.release(&tenant);
                self.reject(tx, &req, status, &reason);
            }
        }
    }

    fn route(&self, req: &Request, src: &Source) -> Result<Route, (u16, &'static str)> {
        match src.side {
            Side::Teams => {
                // TDR-INV-09, TDR-MT-05: the Request-URI host names the tenant.
                let host = req.uri.host.to_string();
                let tenant = self
                    .routes
                    .tenant_by_fqdn(&host)
                    .ok_or((404, "Not Found - unknown tenant"))?;
                let trunk = self
                    .routes
                    .trunk_of(tenant)
                    .ok_or((404, "Not Found - tenant has no trunk"))?;
                Ok(Route {
                    tenant: tenant.clone(),
                    trunk: trunk.clone(),
                    direction: CallDirection::TeamsToTrunk,
                })
            }
            Side::Trunk => {
                let trunk = self
                    .routes
                    .trunk_by_source(src.addr.ip())
                    .ok_or((403, "Forbidden"))?;
                // TDR-MT-07: a trunk serving several tenants names one in the Request-URI
                // host; one serving a single tenant needs not.
                let host = req.uri.host.to_string();
                let tenants: Vec<&TenantConfig> = self.routes.tenants_of(trunk).collect();
                let tenant = tenants
                    .iter()
                    .find(|t| t.fqdn.eq_ignore_ascii_case(&host))
                    .or(if tenants.len() == 1 {
                        tenants.first()
                    } else {
                        None
                    })
                    .ok_or((404, "Not Found - no tenant for this trunk and host"))?;
                Ok(Route {
                    tenant: (*tenant).clone(),
                    trunk: trunk.clone(),
                    direction: CallDirection::TrunkToTeams,
                })
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn start_call(
        &mut self,
        key: CallKey,
        tx: TxId,
        req: Request,
        src: &Source,
        route: Route,
        offer: Option<SessionDescription>,
        now: Instant,
    ) -> Result<(), (u16, String, String)> {
        let tenant = route.tenant.fqdn.clone();
        let fail = |status: u16, reason: String| (status, reason, tenant.clone());
        let policy = codec_policy(&route.trunk);
        let mut media = CallMedia::create(&self.media, key, policy, false)
            .map_err(|e| {
                // The reason goes to the log; the peer learns only that we are busy.
                tracing::warn!(call = key, tenant = %tenant, error = %e, "no media session for a call: 503");
                fail(503, "Service Unavailable".into())
            })?;
        let a_side = src.side;
        let a_local_tag = self.token(10);
        let a_contact = self.contact_for(a_side, &route, &req, src.transport);
        let Some(mut a_dialog) = Dialog::as_uas(&req, a_local_tag, a_contact) else {
            let _ = self.media.destroy_session(key);
            return Err(fail(400, "Bad Request - no Contact".into()));
        };
        a_dialog.remote_cseq = req.headers.cseq().map(|c| c.seq).unwrap_or(0);

        // Leg B's offer.
        let (from_side, b_side) = match route.direction {
            CallDirection::TeamsToTrunk => (SdpSide::Teams, Side::Trunk),
            CallDirection::TrunkToTeams => (SdpSide::Trunk, Side::Teams),
        };
        let b_offer = match media.offer(&self.media, from_side, offer.as_ref()) {
            Ok(sd) => sd,
            Err(e) => {
                let _ = self.media.destroy_session(key);
                tracing::info!(call = key, tenant = %route.tenant.fqdn, error = %e, "offer refused");
                return Err(fail(e.status(), reason_for(e.status())));
            }
        };

        let from_user = req.headers.from().ok().and_then(|f| f.uri.user.clone());
        let to_user = req.uri.user.clone();
        let (b_invite, b_leg, dest, proxies_left) = self.build_b_invite(
            &route,
            &req,
            b_side,
            from_user.as_deref(),
            to_user.as_deref(),
            &b_offer,
        );
        let Some(dest) = dest else {
            let _ = self.media.destroy_session(key);
            return Err(fail(503, "Service Unavailable - no Teams proxy".into()));
        };

        let a_transport = src.transport;
        let a = Leg {
            side: a_side,
            transport: a_transport,
            dialog: a_dialog,
            fallback: src.reply_target(),
            // Requests we start on leg A (BYE, re-INVITE) need our own sent-by, like leg B's.
            via: self.via_for(a_side, &route, a_transport),
            allows_update: allows(&req, "UPDATE"),
            last_ack: None,
            // Started when the call is answered.
            session_timer: None,
            remote_origin: offer.as_ref().map(super::call::origin_of),
        };
        let b_cseq = 1;
        let mut call = Call {
            key,
            direction: route.direction,
            tenant: route.tenant.fqdn.clone(),
            trunk: route.trunk.name.clone(),
            state: State::Calling,
            a,
            b: b_leg,
            media,
            a_invite: req,
            a_invite_tx: tx,
            b_invite: b_invite.clone(),
            b_invite_tx: None,
            b_invite_cseq: b_cseq,
            proxies_left,
            failover_at: None,
            provisional_seen: false,
            cancel_sent: false,
            resend_2xx: None,
            pending: None,
            guard_at: None,
            setup_wall: std::time::SystemTime::now(),
            setup_at: now,
            answered: None,
            final_status: None,
            from_number: from_user,
            to_number: to_user,
            pracked: Vec::new(),
            early_answer: None,
            ended: None,
            transfer: None,
        };
        call.b.dialog.local_cseq = b_cseq;
        if call.b.side == Side::Teams {
            call.failover_at = Some(now + self.failover_timeout());
        }
        let a_dlg = (
            call.a.dialog.call_id.clone(),
            call.a.dialog.local_tag.clone(),
        );
        let b_dlg = (
            call.b.dialog.call_id.clone(),
            call.b.dialog.local_tag.clone(),
        );
        let via = call.b.via.clone();
        tracing::debug!(call = key, tenant = %call.tenant, trunk = %call.trunk, direction = call.direction.metric_label(), "call started");
        self.calls.insert(key, call);
        self.register_dialog(&a_dlg.0, &a_dlg.1, key, LegId::A);
        self.register_dialog(&b_dlg.0, &b_dlg.1, key, LegId::B);
        self.invites.insert(tx, key);
        self.records.attempt(&route.tenant.fqdn, route.direction);
        self.actions.push_back(Action::Request {
            call: key,
            leg: LegId::B,
            purpose: Purpose::Invite,
            request: b_invite,
            via,
            dest,
        });
        Ok(())
    }

    pub(super) fn failover_timeout(&self) -> Duration {
        Duration::from_millis(self.config.teams.failover_timeout_ms)
    }

    /// Our Contact on leg A: the tenant FQDN toward Teams (TDR-INV-03), our trunk address
    /// toward the trunk.
    fn contact_for(
        &self,
        side: Side,
        route: &Route,
        req: &Request,
        transport: TransportKind,
    ) -> String {
        let user = req.uri.user.clone().unwrap_or_default();
        match side {
            Side::Teams => teams_contact(&user, &route.tenant.fqdn, self.local.teams_port),
            Side::Trunk => {
                let (host, port) = self.trunk_sent_by(transport);
                trunk_contact(&user, &host, port, transport)
            }
        }
    }

    /// Sent-protocol and sent-by of our Via on a leg: the tenant FQDN toward Teams, our
    /// trunk address toward the trunk.
    fn via_for(&self, side: Side, route: &Route, transport: TransportKind) -> String {
        match side {
            Side::Teams => format!(
                "SIP/2.0/TLS {}:{}",
                route.tenant.fqdn, self.local.teams_port
            ),
            Side::Trunk => {
                let (host, port) = self.trunk_sent_by(transport);
                format!("SIP/2.0/{transport} {host}:{port}")
            }
        }
    }

    /// The host and port we name toward trunks on `transport`.
    pub(super) fn trunk_sent_by(&self, transport: TransportKind) -> (String, u16) {
        let local = match transport {
            TransportKind::Udp => self.local.trunk_udp,
            TransportKind::Tcp => self.local.trunk_tcp,
            TransportKind::Tls => self.local.trunk_tls,
        }
        .or(self.local.trunk_udp)
        .or(self.local.trunk_tcp);
        let host = self
            .config
            .listen
            .trunk_advertised_host
            .clone()
            .or_else(|| local.map(|a| host_text(a.ip())))
            .unwrap_or_else(|| "127.0.0.1".to_owned());
        (host, local.map(|a| a.port()).unwrap_or(5060))
    }

    /// Leg B's INVITE and dialog, and where it goes first.
    #[allow(clippy::type_complexity)]
    fn build_b_invite(
        &mut self,
        route: &Route,
        a_req: &Request,
        b_side: Side,
        from_user: Option<&str>,
        to_user: Option<&str>,
        offer: &SessionDescription,
    ) -> (Request, Leg, Option<Dest>, VecDeque<usize>) {
        let call_id = self.token(24);
        let tag = self.token(10);
        let a_from = a_req.headers.from().ok();
        let display = a_from.as_ref().and_then(|f| f.display.clone());
        let toward = match b_side {
            Side::Teams => Toward::Teams,
            Side::Trunk => Toward::Trunk,
        };
        let policy = self.policies.get(&route.trunk.name).cloned();
        // TDR-INV-02: a caller given only in P-Asserted-Identity becomes From toward Teams.
        let caller = match (b_side, from_user) {
            (Side::Teams, Some(u)) if !trunk_policy::is_e164(u) => {
                trunk_policy::caller_from_pai(&a_req.headers).unwrap_or_else(|| u.to_owned())
            }
            (_, u) => u.unwrap_or("anonymous").to_owned(),
        };
        let rewrite = |field: NumberField, user: &str| -> String {
            match &policy {
                Some(p) => p.rewrite_number(toward, field, user).into_owned(),
                None => user.to_owned(),
            }
        };
        let from_user = rewrite(NumberField::From, &caller);
        let callee = to_user.unwrap_or_default().to_owned();
        let to_user = rewrite(NumberField::To, &callee);
        let ruri_user = rewrite(NumberField::RequestUri, &callee);
        let (target, local, remote, contact, via, transport, dest, proxies_left, fallback) =
            match b_side {
                Side::Trunk => {
                    let uri = Uri::parse(&route.trunk.uri).ok();
                    let transport = uri
                        .as_ref()
                        .and_then(|u| u.param("transport").flatten().map(str::to_ascii_lowercase))
                        .map(|t| match t.as_str() {
                            "tcp" => TransportKind::Tcp,
                            "tls" => TransportKind::Tls,
                            _ => TransportKind::Udp,
                        })
                        .unwrap_or(TransportKind::Udp);
                    let (host, port) = uri
                        .as_ref()
                        .map(|u| (u.host.clone(), u.port))
                        .unwrap_or((Host::Domain(String::new()), None));
                    let mut target = Uri::sip(host.clone());
                    target.user = Some(ruri_user.clone());
                    target.port = port;
                    let (our_host, our_port) = self.trunk_sent_by(transport);
                    let mut local = NameAddr::new(sip_uri(&from_user, &our_host, None));
                    local.display = display;
                    let mut to_uri = target.clone();
                    to_uri.user = Some(to_user.clone());
                    let remote = NameAddr::new(to_uri);
                    let contact = trunk_contact(&from_user, &our_host, our_port, transport);
                    let via = format!("SIP/2.0/{transport} {our_host}:{our_port}");
                    let default_port = if transport == TransportKind::Tls {
                        5061
                    } else {
                        5060
                    };
                    let dest = match &host {
                        Host::V4(ip) => Some(ip_dest(
                            IpAddr::V4(*ip),
                            port.unwrap_or(default_port),
                            transport,
                        )),
                        Host::V6(ip) => Some(ip_dest(
                            IpAddr::V6(*ip),
                            port.unwrap_or(default_port),
                            transport,
                        )),
                        Host::Domain(name) if !name.is_empty() => Some(Dest::Lookup {
                            side: Side::Trunk,
                            transport,
                            host: name.clone(),
                            port,
                            server_name: Some(name.clone()),
                        }),
                        Host::Domain(_) => None,
                    };
                    let fallback = match &dest {
                        Some(Dest::Target(t)) => t.clone(),
                        _ => unresolved(Side::Trunk, transport),
                    };
                    (
                        target,
                        local,
                        remote,
                        contact,
                        via,
                        transport,
                        dest,
                        VecDeque::new(),
                        fallback,
                    )
                }
                Side::Teams => {
                    let mut order: VecDeque<usize> = (0..self.config.teams.proxies.len())
                        .filter(|&i| self.proxies_up.get(i).copied().unwrap_or(true))
                        .collect();
                    // With every proxy marked down, trying them beats refusing the call.
                    if order.is_empty() {
                        order = (0..self.config.teams.proxies.len()).collect();
                    }
                    let first = order.pop_front();
                    let proxy = first.and_then(|i| self.config.teams.proxies.get(i));
                    let (phost, pport) =
                        proxy.map(|p| (p.host.clone(), p.port)).unwrap_or_default();
                    // TDR-INV-01: +E.164 at the proxy, user=phone.
                    let mut target = sip_uri(&ruri_user, &phost, Some(pport));
                    target.params.push(("user".into(), Some("phone".into())));
                    target.params.push(("transport".into(), Some("tls".into())));
                    let fqdn = route.tenant.fqdn.clone();
                    // TDR-INV-02: the caller in +E.164 in From.
                    let mut from_uri = sip_uri(&from_user, &fqdn, None);
                    from_uri.params.push(("user".into(), Some("phone".into())));
                    let mut local = NameAddr::new(from_uri);
                    local.display = display;
                    let mut to_uri = sip_uri(&to_user, &phost, None);
                    to_uri.params.push(("user".into(), Some("phone".into())));
                    let remote = NameAddr::new(to_uri);
                    let contact = teams_contact(&from_user, &fqdn, self.local.teams_port);
                    let via = format!("SIP/2.0/TLS {}:{}", fqdn, self.local.teams_port);
                    let dest = proxy.map(|p| self.proxy_dest(p));
                    let fallback = match &dest {
                        Some(Dest::Target(t)) => t.clone(),
                        _ => unresolved(Side::Teams, TransportKind::Tls),
                    };
                    (
                        target,
                        local,
                        remote,
                        contact,
                        via,
                        TransportKind::Tls,
                        dest,
                        order,
                        fallback,
                    )
                }
            };
        let dialog = Dialog::as_uac(call_id, tag, local, remote, target, contact);
        let mut d = dialog.clone();
        let mut req = d.request(Method::Invite);
        req.headers.set("Max-Forwards", max_forwards(a_req));
        req.headers.push("Allow", ALLOW);
        req.headers.push("Supported", SUPPORTED);
        req.headers
            .push("User-Agent", self.config.sbc.product.clone());
        if b_side == Side::Teams {
            // TDR-HDR-01.
            req.headers
                .push("X-MS-SBC", self.config.sbc.product.clone());
        }
        match &policy {
            Some(p) => p.carry_identity(toward, &a_req.headers, &mut req.headers),
            None => carry_identity(a_req, &mut req),
        }
        req.headers.push("Content-Type", "application/sdp");
        req.body = Bytes::from(offer.to_string());
        let leg = Leg {
            side: b_side,
            transport,
            dialog: d,
            fallback,
            via,
            allows_update: false,
            last_ack: None,
            session_timer: None,
            remote_origin: None,
        };
        (req, leg, dest, proxies_left)
    }

    pub(super) fn proxy_dest(&self, p: &crate::config::ProxyConfig) -> Dest {
        match p.address {
            Some(addr) => Dest::Target(Target {
                transport: TransportKind::Tls,
                addr,
                conn: None,
                server_name: Some(p.host.clone()),
                side: Side::Teams,
            }),
            None => Dest::Lookup {
                side: Side::Teams,
                transport: TransportKind::Tls,
                host: p.host.clone(),
                port: Some(p.port),
                server_name: Some(p.host.clone()),
            },
        }
    }
}

/// Without a policy (a trunk whose rules did not build): P-Asserted-Identity and Privacy pass.
fn carry_identity(from: &Request, to: &mut Request) {
    for name in ["P-Asserted-Identity", "Privacy"] {
        for v in from.headers.get_all(name) {
            to.headers.push(name, v.clone());
        }
    }
}

fn codec_policy(trunk: &TrunkConfig) -> CodecPolicy {
    CodecPolicy {
        allow: trunk.codecs.clone(),
        keep_telephone_event: true,
        keep_cn: true,
    }
}

/// Max-Forwards for the next hop: one less than received (RFC 3261 §16.6 step 3, which a
/// B2BUA keeps to stop loops through it), 70 when absent.
fn max_forwards(req: &Request) -> String {
    match req.headers.max_forwards() {
        Ok(Some(n)) => n.saturating_sub(1).to_string(),
        _ => "70".to_owned(),
    }
}

pub(super) fn allows(req: &Request, method: &str) -> bool {
    req.headers
        .values("Allow")
        .any(|v| v.as_ref().eq_ignore_ascii_case(method.as_bytes()))
}

pub(super) fn reason_for(status: u16) -> String {
    match status {
        488 => "Not Acceptable Here".into(),
        500 => "Server Internal Error".into(),
        _ => "Service Unavailable".into(),
    }
}

fn sip_uri(user: &str, host: &str, port: Option<u16>) -> Uri {
    let mut u = Uri::sip(host_of(host));
    if !user.is_empty() {
        u.user = Some(user.to_owned());
    }
    u.port = port;
    u
}

fn host_of(host: &str) -> Host {
    match host.trim_matches(['[', ']']).parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => Host::V4(a),
        Ok(IpAddr::V6(a)) => Host::V6(a),
        Err(_) => Host::Domain(host.to_owned()),
    }
}

fn host_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

/// TDR-INV-03: `<sip:{user}@{FQDN}:{port};transport=tls>`.
fn teams_contact(user: &str, fqdn: &str, port: u16) -> String {
    if user.is_empty() {
        format!("<sip:{fqdn}:{port};transport=tls>")
    } else {
        format!("<sip:{user}@{fqdn}:{port};transport=tls>")
    }
}

fn trunk_contact(user: &str, host: &str, port: u16, transport: TransportKind) -> String {
    let t = transport.to_string().to_ascii_lowercase();
    if user.is_empty() {
        format!("<sip:{host}:{port};transport={t}>")
    } else {
        format!("<sip:{user}@{host}:{port};transport={t}>")
    }
}

fn ip_dest(ip: IpAddr, port: u16, transport: TransportKind) -> Dest {
    Dest::Target(Target {
        transport,
        addr: std::net::SocketAddr::new(ip, port),
        conn: None,
        server_name: None,
        side: Side::Trunk,
    })
}

fn unresolved(side: Side, transport: TransportKind) -> Target {
    Target {
        transport,
        addr: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
        conn: None,
        server_name: None,
        side,
    }
}
