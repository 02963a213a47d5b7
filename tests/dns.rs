//! RFC 3263 resolution against a real DNS server (dnsmasq, Debian package
//! `dnsmasq-base`) on 127.0.0.1. Without dnsmasq these tests fail, naming the
//! package.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/dnsmasq.rs"]
mod dnsmasq;

use std::net::SocketAddr;
use std::time::Duration;

use dnsmasq::Dnsmasq;
use drawbridge::dns::{DnsError, ResolvedTarget, SipResolver, SipTarget, SipTransport};

const DOMAIN: &str = "sbc.test";

/// The test zone. Addresses are loopback so nothing leaves the machine.
fn zone() -> Vec<String> {
    [
        // naptr.sbc.test: NAPTR says TLS first, then UDP; an SCTP record and a
        // TCP SRV that no NAPTR points at must both be ignored.
        "--naptr-record=naptr.sbc.test,5,10,s,SIP+D2S,,_sip._sctp.naptr.sbc.test",
        "--naptr-record=naptr.sbc.test,20,10,s,SIP+D2U,,_sip._udp.naptr.sbc.test",
        "--naptr-record=naptr.sbc.test,10,10,s,SIPS+D2T,,_sips._tcp.naptr.sbc.test",
        "--srv-host=_sips._tcp.naptr.sbc.test,tls1.sbc.test,5061,10,0",
        "--srv-host=_sip._udp.naptr.sbc.test,udp1.sbc.test,5070,10,0",
        "--srv-host=_sip._tcp.naptr.sbc.test,tcp1.sbc.test,5080,1,0",
        "--host-record=tls1.sbc.test,127.0.0.11,::11",
        "--host-record=udp1.sbc.test,127.0.0.12",
        "--host-record=tcp1.sbc.test,127.0.0.13",
        // srv.sbc.test: no NAPTR; TCP SRV with three priorities listed out of
        // order, a UDP SRV and a TLS SRV; also an A record of its own.
        "--srv-host=_sip._tcp.srv.sbc.test,b.sbc.test,5062,20,10",
        "--srv-host=_sip._tcp.srv.sbc.test,c.sbc.test,5064,5,10",
        "--srv-host=_sip._tcp.srv.sbc.test,a.sbc.test,5060,10,10",
        "--srv-host=_sip._udp.srv.sbc.test,d.sbc.test,5066,1,0",
        "--srv-host=_sips._tcp.srv.sbc.test,e.sbc.test,5061,1,0",
        "--host-record=a.sbc.test,127.0.0.21",
        "--host-record=b.sbc.test,127.0.0.22",
        "--host-record=c.sbc.test,127.0.0.23",
        "--host-record=d.sbc.test,127.0.0.24",
        "--host-record=e.sbc.test,127.0.0.25",
        "--host-record=srv.sbc.test,127.0.0.41",
        // plain.sbc.test: only A and AAAA.
        "--host-record=plain.sbc.test,127.0.0.31,::31",
        // weighted.sbc.test: one priority, two weights, for the seeded order.
        "--srv-host=_sip._udp.weighted.sbc.test,w1.sbc.test,5060,10,1",
        "--srv-host=_sip._udp.weighted.sbc.test,w2.sbc.test,5060,10,1000",
        "--host-record=w1.sbc.test,127.0.0.51",
        "--host-record=w2.sbc.test,127.0.0.52",
        "--host-record=marker.sbc.test,127.0.0.99",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn start() -> (Dnsmasq, SipResolver) {
    let server = Dnsmasq::start(DOMAIN, &zone());
    let resolver = SipResolver::with_nameservers(&[server.addr()]).unwrap();
    (server, resolver)
}

fn target(
    host: &str,
    port: Option<u16>,
    transport: Option<SipTransport>,
    secure: bool,
) -> SipTarget {
    SipTarget {
        host: host.to_owned(),
        port,
        transport,
        secure,
    }
}

fn summary(found: &[ResolvedTarget]) -> Vec<(SocketAddr, SipTransport)> {
    found.iter().map(|t| (t.addr, t.transport)).collect()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// dnsmasq answers and logs queries in order: once the query for the marker
/// name is logged, every query sent before it has been logged too.
async fn queries_before_marker(server: &Dnsmasq, resolver: &SipResolver) -> Vec<String> {
    resolver
        .resolve(&target("marker.sbc.test", Some(1), None, false))
        .await
        .unwrap();
    assert!(server.wait_for_log("query[A] marker.sbc.test", Duration::from_secs(5)));
    server
        .queries()
        .into_iter()
        .take_while(|q| !q.contains("marker.sbc.test"))
        .collect()
}

#[tokio::test]
async fn naptr_then_srv_then_addresses_in_naptr_order() {
    let (_server, resolver) = start();
    let found = resolver
        .resolve(&target("naptr.sbc.test", None, None, false))
        .await
        .unwrap();
    assert_eq!(
        summary(&found),
        [
            (sa("127.0.0.11:5061"), SipTransport::Tls),
            (sa("[::11]:5061"), SipTransport::Tls),
            (sa("127.0.0.12:5070"), SipTransport::Udp),
        ]
    );
    // RFC 5922: the certificate is checked against the URI's domain.
    assert!(found.iter().all(|t| t.host == "naptr.sbc.test"));
}

#[tokio::test]
async fn sips_uri_follows_only_sips_naptr() {
    let (_server, resolver) = start();
    let found = resolver
        .resolve(&target("naptr.sbc.test", None, None, true))
        .await
        .unwrap();
    assert_eq!(
        summary(&found),
        [
            (sa("127.0.0.11:5061"), SipTransport::Tls),
            (sa("[::11]:5061"), SipTransport::Tls),
        ]
    );
}

#[tokio::test]
async fn without_naptr_srv_is_tried_per_transport_in_priority_order() {
    let (_server, resolver) = start();
    let found = resolver
        .resolve(&target("srv.sbc.test", None, None, false))
        .await
        .unwrap();
    assert_eq!(
        summary(&found),
        [
            (sa("127.0.0.25:5061"), SipTransport::Tls),
            (sa("127.0.0.23:5064"), SipTransport::Tcp), // priority 5
            (sa("127.0.0.21:5060"), SipTransport::Tcp), // priority 10
            (sa("127.0.0.22:5062"), SipTransport::Tcp), // priority 20
            (sa("127.0.0.24:5066"), SipTransport::Udp),
        ]
    );
}

#[tokio::test]
async fn explicit_transport_queries_only_that_srv() {
    let (server, resolver) = start();
    let found = resolver
        .resolve(&target(
            "srv.sbc.test",
            None,
            Some(SipTransport::Tcp),
            false,
        ))
        .await
        .unwrap();
    assert_eq!(
        summary(&found),
        [
            (sa("127.0.0.23:5064"), SipTransport::Tcp),
            (sa("127.0.0.21:5060"), SipTransport::Tcp),
            (sa("127.0.0.22:5062"), SipTransport::Tcp),
        ]
    );
    let queries = queries_before_marker(&server, &resolver).await;
    assert!(
        queries.iter().all(|q| !q.starts_with("query[NAPTR]")),
        "{queries:?}"
    );
    assert!(
        queries
            .iter()
            .any(|q| q.starts_with("query[SRV] _sip._tcp.srv.sbc.test")),
        "{queries:?}"
    );
    assert!(
        queries
            .iter()
            .all(|q| !q.contains("_udp") && !q.contains("_sips")),
        "{queries:?}"
    );
}

#[tokio::test]
async fn explicit_port_skips_naptr_and_srv() {
    let (server, resolver) = start();
    let found = resolver
        .resolve(&target(
            "srv.sbc.test",
            Some(5099),
            Some(SipTransport::Tcp),
            false,
        ))
        .await
        .unwrap();
    assert_eq!(
        summary(&found),
        [(sa("127.0.0.41:5099"), SipTransport::Tcp)]
    );
    let queries = queries_before_marker(&server, &resolver).await;
    assert!(
        queries
            .iter()
            .all(|q| q.starts_with("query[A] srv.sbc.test")
                || q.starts_with("query[AAAA] srv.sbc.test")),
        "{queries:?}"
    );
    assert!(!queries.is_empty());
}

#[tokio::test]
async fn ip_literal_sends_no_dns_query() {
    let (server, resolver) = start();
    let found = resolver
        .resolve(&target("127.0.0.7", None, Some(SipTransport::Tcp), false))
        .await
        .unwrap();
    assert_eq!(summary(&found), [(sa("127.0.0.7:5060"), SipTransport::Tcp)]);
    assert_eq!(
        queries_before_marker(&server, &resolver).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn no_naptr_no_srv_falls_back_to_a_and_aaaa_with_default_port() {
    let (_server, resolver) = start();
    let found = resolver
        .resolve(&target("plain.sbc.test", None, None, false))
        .await
        .unwrap();
    assert_eq!(
        summary(&found),
        [
            (sa("127.0.0.31:5060"), SipTransport::Udp),
            (sa("[::31]:5060"), SipTransport::Udp),
        ]
    );
    let found = resolver
        .resolve(&target("plain.sbc.test", None, None, true))
        .await
        .unwrap();
    assert_eq!(found[0].addr, sa("127.0.0.31:5061"));
    assert_eq!(found[0].transport, SipTransport::Tls);
}

#[tokio::test]
async fn nxdomain_is_a_clear_error_naming_the_domain() {
    let (_server, resolver) = start();
    let err = resolver
        .resolve(&target("missing.sbc.test", None, None, false))
        .await
        .unwrap_err();
    assert!(matches!(err, DnsError::NxDomain { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("missing.sbc.test") && text.contains("NXDOMAIN"),
        "{text}"
    );

    let err = resolver
        .resolve(&target("missing.sbc.test", Some(5060), None, false))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("missing.sbc.test"), "{err}");
}

#[tokio::test]
async fn weighted_srv_keeps_every_target_and_a_seed_fixes_the_order() {
    let server = Dnsmasq::start(DOMAIN, &zone());
    let t = target("weighted.sbc.test", None, Some(SipTransport::Udp), false);
    let mut orders = Vec::new();
    for _ in 0..2 {
        let resolver = SipResolver::with_nameservers(&[server.addr()])
            .unwrap()
            .with_rng_seed(3);
        orders.push(summary(&resolver.resolve(&t).await.unwrap()));
    }
    assert_eq!(orders[0], orders[1]);
    let mut addrs: Vec<SocketAddr> = orders[0].iter().map(|(a, _)| *a).collect();
    addrs.sort();
    assert_eq!(addrs, [sa("127.0.0.51:5060"), sa("127.0.0.52:5060")]);
}

#[tokio::test]
async fn answers_are_served_from_cache_within_their_ttl() {
    let (server, resolver) = start();
    let t = target("srv.sbc.test", None, Some(SipTransport::Tcp), false);
    let first = resolver.resolve(&t).await.unwrap();
    let before = queries_before_marker(&server, &resolver).await.len();
    let second = resolver.resolve(&t).await.unwrap();
    assert_eq!(summary(&first), summary(&second));
    // A second marker query proves dnsmasq logged everything sent meanwhile.
    resolver
        .resolve(&target("127.0.0.1", None, None, false))
        .await
        .unwrap();
    resolver
        .resolve(&target("plain.sbc.test", Some(1), None, false))
        .await
        .unwrap();
    assert!(server.wait_for_log("query[A] plain.sbc.test", Duration::from_secs(5)));
    let srv_queries = server
        .queries()
        .iter()
        .filter(|q| q.starts_with("query[SRV] _sip._tcp.srv.sbc.test"))
        .count();
    assert_eq!(srv_queries, 1, "second resolve went to the server");
    assert!(before >= 1);
}
