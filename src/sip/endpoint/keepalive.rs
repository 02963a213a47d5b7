//! The I/O side of the OPTIONS keepalive: building pings, resolving and sending them, and
//! reporting health in logs and metrics.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Endpoint, Feedback, TxContext, policy, token};
use crate::config::Config;
use crate::dns::{SipTarget, SipTransport};
use crate::sip::Method;
use crate::sip::message::{Request, Uri};
use crate::sip::transaction::TransactionKey;
use crate::sip::transport::{Side, Target, TransportKind};
use crate::teams::keepalive::{Health, PingDue, Pinger, Transition};

/// Ping targets from the config: the carrier FQDN toward every proxy (TDR-OPT-08), plus each
/// tenant that is a Teams gateway of its own (TDR-OPT-01).
pub(super) fn pinger_for(config: &Config, now: Instant) -> Pinger {
    let targets = ping_targets(config);
    if config.teams.options_interval_s < 60 {
        tracing::warn!(
            interval_s = config.teams.options_interval_s,
            "teams.options_interval_s is below 60 s: Teams expects at most one OPTIONS a minute (TDR-OPT-02); use this only in a lab"
        );
    }
    for (i, p) in config.teams.proxies.iter().enumerate() {
        metrics::gauge!(crate::metrics::TEAMS_PROXY_UP, "proxy" => proxy_label(config, i)).set(0.0);
        tracing::debug!(proxy = %p.host, "OPTIONS keepalive scheduled");
    }
    Pinger::new(
        targets,
        Duration::from_secs(config.teams.options_interval_s),
        Duration::from_millis(config.teams.options_timeout_ms),
        now,
    )
}

/// (proxy index, Contact FQDN, carrier?) for every ping the config asks for.
pub(super) fn ping_targets(config: &Config) -> Vec<(usize, String, bool)> {
    let mut targets = Vec::new();
    for (i, _) in config.teams.proxies.iter().enumerate() {
        targets.push((i, config.sbc.base_domain.clone(), true));
        for t in config.tenants.iter().filter(|t| t.own_teams_trunk) {
            targets.push((i, t.fqdn.clone(), false));
        }
    }
    targets
}

/// Bounded label for a proxy: its configured host (the config bounds the set).
pub(super) fn proxy_label(config: &Config, proxy: usize) -> String {
    config
        .teams
        .proxies
        .get(proxy)
        .map(|p| format!("{}:{}", p.host, p.port))
        .unwrap_or_default()
}

impl Endpoint {
    /// A ping is due: resolve the proxy (a fixed `address` skips DNS) and send.
    pub(super) fn start_ping(&mut self, due: PingDue, now: Instant) {
        let Some(target) = self.pinger.targets().get(due.target) else {
            return;
        };
        let Some(proxy) = self.config.teams.proxies.get(target.proxy) else {
            return;
        };
        if let Some(addr) = proxy.address {
            let dest = teams_target(addr, &proxy.host);
            self.send_ping(due.target, due.seq, dest, now);
            return;
        }
        // TDR-SIG-07: address Teams by FQDN and re-resolve; the resolver's cache caps TTLs
        // at 15 minutes, so resolving per ping costs nothing between expiries.
        let resolver = self.resolver.clone();
        let feedback = self.feedback_tx.clone();
        let (host, port) = (proxy.host.clone(), proxy.port);
        let (t, seq) = (due.target, due.seq);
        tokio::spawn(async move {
            let query = SipTarget {
                host: host.clone(),
                port: Some(port),
                transport: Some(SipTransport::Tls),
                secure: false,
            };
            let fb = match resolver.resolve(&query).await {
                Ok(list) => match list.first() {
                    Some(r) => Feedback::PingResolved {
                        target: t,
                        seq,
                        dest: teams_target(r.addr, &host),
                    },
                    None => Feedback::PingSendFailed {
                        target: t,
                        seq,
                        tx: None,
                        reason: format!("{host}: no address"),
                    },
                },
                Err(e) => Feedback::PingSendFailed {
                    target: t,
                    seq,
                    tx: None,
                    reason: e.to_string(),
                },
            };
            let _ = feedback.send(fb).await;
        });
    }

    /// Builds the OPTIONS (TDR-OPT-04), starts its client transaction and sends it. The send
    /// runs in its own task: opening a TLS connection must not stall the endpoint.
    pub(super) fn send_ping(&mut self, target: usize, seq: u64, dest: Target, now: Instant) {
        let Some(t) = self.pinger.targets().get(target) else {
            return;
        };
        let Some(proxy) = self.config.teams.proxies.get(t.proxy) else {
            return;
        };
        let branch = format!("z9hG4bK{}", token(&mut self.rng, 16));
        let request = match build_options(
            &self.config,
            &proxy.host,
            proxy.port,
            &t.contact_fqdn,
            &branch,
            &token(&mut self.rng, 10),
            &format!("{}@{}", token(&mut self.rng, 20), t.contact_fqdn),
            seq,
        ) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(proxy = %proxy.host, error = %e, "cannot build OPTIONS");
                return;
            }
        };
        let key = TransactionKey::client(&branch, &Method::Options);
        let ctx = TxContext::Ping { dest, target, seq };
        self.counters.message(
            crate::metrics::Direction::Out,
            TransportKind::Tls,
            &Method::Options,
            None,
        );
        if let Err(e) = self
            .txns
            .start_client(key, &Method::Options, request, true, ctx, now)
        {
            tracing::error!(proxy = %proxy.host, error = %e, "cannot start OPTIONS transaction");
        }
    }
}

fn teams_target(addr: std::net::SocketAddr, host: &str) -> Target {
    Target {
        transport: TransportKind::Tls,
        addr,
        conn: None,
        server_name: Some(host.to_owned()),
        side: Side::Teams,
    }
}

/// The OPTIONS of TDR-OPT-04 / spec example A.
#[allow(clippy::too_many_arguments)]
fn build_options(
    config: &Config,
    proxy_host: &str,
    proxy_port: u16,
    contact_fqdn: &str,
    branch: &str,
    from_tag: &str,
    call_id: &str,
    cseq: u64,
) -> Result<Bytes, crate::sip::message::UriError> {
    let port = config.teams_port();
    let uri = Uri::parse(&format!("sip:{proxy_host}:{proxy_port}"))?;
    let mut req = Request::new(Method::Options, uri);
    let h = &mut req.headers;
    h.push(
        "Via",
        format!("SIP/2.0/TLS {contact_fqdn}:{port};branch={branch}"),
    );
    h.push("Max-Forwards", "70");
    h.push(
        "From",
        format!("<sip:{contact_fqdn}:{port}>;tag={from_tag}"),
    );
    h.push("To", format!("<sip:{proxy_host}:{proxy_port}>"));
    h.push("Call-ID", call_id.to_owned());
    // CSeq must fit 2^31 (RFC 3261 §8.1.1.5); the ping sequence number is small and growing.
    h.push("CSeq", format!("{} OPTIONS", cseq % (1 << 31)));
    h.push(
        "Contact",
        format!("<sip:{contact_fqdn}:{port};transport=tls>"),
    );
    h.push("Allow", policy::ALLOW);
    h.push("Supported", policy::SUPPORTED);
    h.push("Accept", policy::ACCEPT);
    h.push("User-Agent", config.sbc.product.clone());
    h.push("X-MS-SBC", config.sbc.product.clone());
    Ok(req.to_bytes())
}

/// Logs a health change once (TDR-OPT-05: a missing 200 means "not paired") and sets the gauge.
pub(super) fn report_transition(config: &Config, pinger: &Pinger, tr: &Transition) {
    let Some(t) = pinger.targets().get(tr.target) else {
        return;
    };
    let proxy = proxy_label(config, t.proxy);
    if t.carrier {
        let up = if tr.to == Health::Up { 1.0 } else { 0.0 };
        metrics::gauge!(crate::metrics::TEAMS_PROXY_UP, "proxy" => proxy.clone()).set(up);
    }
    match (&tr.to, &tr.failure) {
        (Health::Up, _) => {
            tracing::info!(proxy = %proxy, contact = %t.contact_fqdn, "Teams proxy answers OPTIONS: up")
        }
        (_, Some(f)) => tracing::warn!(
            proxy = %proxy,
            contact = %t.contact_fqdn,
            reason = %f,
            "Teams proxy down: no 200 to OPTIONS (not paired?)"
        ),
        _ => {}
    }
}

/// Per-answer metrics: OPTIONS round trip for 2xx.
pub(super) fn record_answer(
    config: &Config,
    pinger: &Pinger,
    target: usize,
    status: u16,
    rtt: Option<Duration>,
) {
    let Some(t) = pinger.targets().get(target) else {
        return;
    };
    if let Some(rtt) = rtt {
        metrics::histogram!(crate::metrics::OPTIONS_RTT, "proxy" => proxy_label(config, t.proxy))
            .record(rtt.as_secs_f64());
    }
    tracing::debug!(proxy = %proxy_label(config, t.proxy), status, "OPTIONS answered");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra_tenant: &str) -> Config {
        let text = crate::config::default::DEFAULT_TOML.to_owned() + extra_tenant;
        crate::config::test_support::with_dev_certs(&text).1
    }

    #[test]
    fn carrier_fqdn_is_pinged_toward_every_proxy_not_each_derived_tenant_tdr_opt_08() {
        let c = config("\n[[tenant]]\nfqdn = \"customer2.sbc.example.test\"\ntrunk = \"cc1\"\n");
        let p = pinger_for(&c, crate::clock::now());
        let targets: Vec<_> = p
            .targets()
            .iter()
            .map(|t| (t.proxy, t.contact_fqdn.as_str(), t.carrier))
            .collect();
        assert_eq!(
            targets,
            vec![(0, "sbc.example.test", true), (1, "sbc.example.test", true)]
        );
    }

    #[test]
    fn tenant_that_is_its_own_teams_gateway_is_pinged_with_its_fqdn_tdr_opt_01() {
        let c = config(
            "\n[[tenant]]\nfqdn = \"legacy.sbc.example.test\"\ntrunk = \"cc1\"\nown_teams_trunk = true\n",
        );
        let p = pinger_for(&c, crate::clock::now());
        let own: Vec<_> = p
            .targets()
            .iter()
            .filter(|t| !t.carrier)
            .map(|t| (t.proxy, t.contact_fqdn.as_str()))
            .collect();
        assert_eq!(
            own,
            vec![
                (0, "legacy.sbc.example.test"),
                (1, "legacy.sbc.example.test")
            ]
        );
    }

    #[test]
    fn options_carry_the_contact_allow_and_x_ms_sbc_of_tdr_opt_04() {
        let c = config("");
        let bytes = build_options(
            &c,
            "sip.pstnhub.microsoft.com",
            5061,
            "sbc.example.test",
            "z9hG4bKx",
            "t",
            "c@x",
            7,
        )
        .unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert!(
            text.starts_with("OPTIONS sip:sip.pstnhub.microsoft.com:5061 SIP/2.0\r\n"),
            "{text}"
        );
        assert!(
            text.contains("\r\nContact: <sip:sbc.example.test:5061;transport=tls>\r\n"),
            "{text}"
        );
        assert!(text.contains(
            "\r\nAllow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, REFER, PRACK, UPDATE\r\n"
        ));
        assert!(
            text.contains("\r\nX-MS-SBC: drawbridge/drawbridge/"),
            "{text}"
        );
        assert!(text.contains("\r\nCSeq: 7 OPTIONS\r\n"), "{text}");
    }
}
