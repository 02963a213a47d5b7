//! Leg B's INVITE, shaped for its side: TDR-INV-01..05 toward Teams (+E.164 at the proxy,
//! tenant-FQDN Contact, no Record-Route, X-MS-SBC, SRTP offer), the trunk's own URI, numbers and
//! plain RTP toward a trunk; and the names (Contact, Via) we use on each side.

use std::collections::VecDeque;
use std::net::IpAddr;

use bytes::Bytes;

use super::call::Leg;
use super::dialog::Dialog;
use super::setup::{ALLOW, Route};
use super::{B2bua, Dest};
use crate::sdp::SessionDescription;
use crate::sip::Method;
use crate::sip::message::{Host, NameAddr, Request, Uri};
use crate::sip::transport::{Side, Target, TransportKind};
use crate::trunk_policy::{self, NumberField, Toward};

const SUPPORTED: &str = "timer";

impl B2bua {
    /// Our Contact on leg A: the tenant FQDN toward Teams (TDR-INV-03), our trunk address
    /// toward the trunk.
    pub(super) fn contact_for(
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
    pub(super) fn via_for(&self, side: Side, route: &Route, transport: TransportKind) -> String {
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
    pub(crate) fn trunk_sent_by(&self, transport: TransportKind) -> (String, u16) {
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
    pub(super) fn build_b_invite(
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
                    let TrunkHop {
                        transport,
                        host,
                        port,
                        dest,
                        fallback,
                    } = trunk_hop(&route.trunk.uri);
                    let mut target = Uri::sip(host);
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
        let leg = Leg::ours(b_side, transport, d, fallback, via);
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

/// Max-Forwards for the next hop: one less than received (RFC 3261 §16.6 step 3, which a
/// B2BUA keeps to stop loops through it), 70 when absent.
fn max_forwards(req: &Request) -> String {
    match req.headers.max_forwards() {
        Ok(Some(n)) => n.saturating_sub(1).to_string(),
        _ => "70".to_owned(),
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

pub(super) fn trunk_contact(user: &str, host: &str, port: u16, transport: TransportKind) -> String {
    let t = transport.to_string().to_ascii_lowercase();
    if user.is_empty() {
        format!("<sip:{host}:{port};transport={t}>")
    } else {
        format!("<sip:{user}@{host}:{port};transport={t}>")
    }
}

/// Where requests to a trunk go: its configured URI's host, port and transport.
pub(crate) struct TrunkHop {
    pub(crate) transport: TransportKind,
    pub(crate) host: Host,
    pub(crate) port: Option<u16>,
    /// None when the URI names no host (config validation refuses that).
    pub(crate) dest: Option<Dest>,
    /// The resolved target, or an unresolved one the lookup replaces.
    pub(crate) fallback: Target,
}

pub(crate) fn trunk_hop(trunk_uri: &str) -> TrunkHop {
    let uri = Uri::parse(trunk_uri).ok();
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
    TrunkHop {
        transport,
        host,
        port,
        dest,
        fallback,
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
