//! Trunk-side source ACL: a request from an address no trunk's `allow` admits gets no answer at
//! all and is counted; the same request from an allowed address is answered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::*;

fn options(call_id: &str) -> String {
    format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{call_id}\r\nMax-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=a\r\nTo: <sip:127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_from_sources_no_trunk_allows_are_dropped_and_counted() {
    let certs = Certs::new("sbc.example.test");
    let teams = teams_section("sip3.pstnhub.microsoft.com", "127.0.0.1:9", 60, 1000);
    // Only 127.0.0.2 may act as the trunk.
    let text = lab_config(&certs, &teams)
        .replace("allow = [\"127.0.0.1/32\"]", "allow = [\"127.0.0.2/32\"]");
    let d = Daemon::start(&text).await;
    let daemon = d.addrs.trunk_udp.unwrap();

    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    stranger
        .send_to(options("acl-denied").as_bytes(), daemon)
        .unwrap();
    // The drop is observed through its counter, not by waiting for silence.
    wait_for("the ACL reject counted", Duration::from_secs(5), || {
        (metric(
            &d.metrics(),
            "drawbridge_sip_acl_rejects_total",
            &[("transport", "udp")],
        ) >= 1.0)
            .then_some(())
    })
    .await;

    let trunk = UdpSocket::bind("127.0.0.2:0").unwrap();
    trunk
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    trunk
        .send_to(options("acl-allowed").as_bytes(), daemon)
        .unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = trunk
        .recv_from(&mut buf)
        .expect("the allowed trunk got no answer");
    assert!(
        buf[..n].starts_with(b"SIP/2.0 200 OK\r\n"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );

    // Nothing was ever sent back to the stranger: its socket holds no datagram.
    stranger.set_nonblocking(true).unwrap();
    let mut sbuf = [0u8; 4096];
    assert!(
        stranger.recv_from(&mut sbuf).is_err(),
        "the denied source got an answer"
    );
    d.stop().await;
}
