//! Bounded state in the endpoint: OPTIONS are answered statelessly (RFC 3261 §8.2.7) with the
//! same To tag for a retransmission, and past `sip.max_transactions` new requests get 503.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::*;

fn request(method: &str, call_id: &str, branch: &str) -> String {
    format!(
        "{method} sip:+15550100@customer1.sbc.example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\nFrom: <sip:cc@127.0.0.1>;tag=f1\r\nTo: <sip:+15550100@customer1.sbc.example.test>\r\nCall-ID: {call_id}\r\nCSeq: 1 {method}\r\nContact: <sip:cc@127.0.0.1:5999>\r\nContent-Length: 0\r\n\r\n"
    )
}

/// The first answer to `msg`: an INVITE is a call attempt whose final answer may arrive while
/// a later request waits for its own, so answers are matched by Call-ID.
fn exchange(sock: &UdpSocket, to: std::net::SocketAddr, msg: &str) -> String {
    let call_id = msg
        .lines()
        .find(|l| l.starts_with("Call-ID:"))
        .unwrap()
        .to_owned();
    sock.send_to(msg.as_bytes(), to).unwrap();
    let mut buf = [0u8; 8192];
    for _ in 0..10 {
        let (n, _) = sock.recv_from(&mut buf).expect("no answer within 5 s");
        let rsp = String::from_utf8_lossy(&buf[..n]).into_owned();
        if rsp.lines().any(|l| l == call_id) {
            return rsp;
        }
    }
    panic!("no answer to {call_id} among 10 datagrams");
}

fn to_header(rsp: &str) -> String {
    rsp.lines()
        .find(|l| l.starts_with("To:"))
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retransmitted_options_get_the_same_stateless_answer_and_a_full_table_gives_503() {
    let certs = Certs::new("sbc.example.test");
    let teams = teams_section("sip3.pstnhub.microsoft.com", "127.0.0.1:9", 60, 1000);
    let d = Daemon::start(&lab_config(
        &certs,
        &format!("{teams}[sip]\nmax_transactions = 2\n"),
    ))
    .await;
    let daemon = d.addrs.trunk_udp.unwrap();
    let (first, again, invite1, invite2) = tokio::task::spawn_blocking(move || {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let opt = request("OPTIONS", "lim-opt", "o1");
        let first = exchange(&sock, daemon, &opt);
        let again = exchange(&sock, daemon, &opt);
        // Each INVITE is answered and then held by its transaction for retransmissions, so the
        // slots fill up; the keepalive's own client transaction may hold one too.
        let invite1 = exchange(&sock, daemon, &request("INVITE", "lim-inv-1", "i1"));
        let mut invite2 = String::new();
        for n in 2..=3 {
            invite2 = exchange(
                &sock,
                daemon,
                &request("INVITE", &format!("lim-inv-{n}"), &format!("i{n}")),
            );
            if invite2.starts_with("SIP/2.0 503 Service Unavailable\r\n") {
                break;
            }
        }
        (first, again, invite1, invite2)
    })
    .await
    .unwrap();
    assert!(first.starts_with("SIP/2.0 200 OK\r\n"), "{first}");
    assert!(to_header(&first).contains(";tag="), "{first}");
    assert_eq!(
        to_header(&first),
        to_header(&again),
        "a retransmission got another To tag"
    );
    assert!(
        !invite1.starts_with("SIP/2.0 503 Service Unavailable\r\n"),
        "{invite1}"
    );
    assert!(
        invite2.starts_with("SIP/2.0 503 Service Unavailable\r\n"),
        "{invite2}"
    );
    assert!(invite2.contains("\r\nRetry-After: 5\r\n"), "{invite2}");
    let rejects = metric(&d.metrics(), "drawbridge_sip_overload_rejects_total", &[]);
    assert!(rejects >= 1.0, "overload not counted: {rejects}");
    d.stop().await;
}
