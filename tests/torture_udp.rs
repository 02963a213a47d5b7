//! Every RFC 4475 / RFC 5118 torture message sent to the running daemon over UDP: each gets the
//! answer the manifest names for an SBC (or none where it says drop), and the daemon keeps
//! answering OPTIONS afterwards. A Rust UDP peer: SIPp cannot send byte-exact broken messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::UdpSocket;
use std::path::Path;
use std::time::Duration;

use common::*;

const TORTURE: &str = "../shared/testdata/sip-torture";

fn probe(call_id: &str) -> String {
    format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{call_id}\r\nMax-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

/// The Call-ID header value (long or compact form) of a message's header section.
fn call_id_of(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            let k = k.trim();
            (k.eq_ignore_ascii_case("call-id") || k.eq_ignore_ascii_case("i"))
                .then(|| v.trim().to_owned())
        })
}

/// Status of the first answer, or None when the next datagram is the answer to the probe that
/// follows the message (UDP on loopback keeps order, so "dropped" is observed, not assumed).
fn answer_to(
    sock: &UdpSocket,
    daemon: std::net::SocketAddr,
    bytes: &[u8],
    n: usize,
) -> Option<u16> {
    let probe_id = format!("probe-{n}");
    let sent_call_id = call_id_of(bytes);
    sock.send_to(bytes, daemon).unwrap();
    sock.send_to(probe(&probe_id).as_bytes(), daemon).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut first: Option<u16> = None;
    loop {
        let (len, _) = sock
            .recv_from(&mut buf)
            .expect("the daemon stopped answering");
        let text = String::from_utf8_lossy(&buf[..len]);
        let status: u16 = text
            .get(8..11)
            .and_then(|s| s.parse().ok())
            .expect("not a SIP response");
        if text.contains(&format!("Call-ID: {probe_id}")) {
            assert_eq!(status, 200, "probe after message {n} not answered 200");
            return first;
        }
        // An INVITE that was accepted is a call: its final answer may come later, while a
        // later message is being tried. Answers are matched to their message by Call-ID.
        if sent_call_id.is_some() && call_id_of(text.as_bytes()) != sent_call_id {
            continue;
        }
        first.get_or_insert(status);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torture_messages_get_the_manifest_answer_and_the_daemon_keeps_answering() {
    let certs = Certs::new("sbc.example.test");
    let teams = teams_section("sip3.pstnhub.microsoft.com", "127.0.0.1:9", 60, 1000);
    let d = Daemon::start(&lab_config(&certs, &teams)).await;
    let daemon = d.addrs.trunk_udp.unwrap();
    let manifest = std::fs::read_to_string(Path::new(TORTURE).join("MANIFEST.tsv")).unwrap();
    let rows: Vec<Vec<String>> = manifest
        .lines()
        .skip(1)
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect();
    let results = tokio::task::spawn_blocking(move || {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        rows.iter()
            .enumerate()
            .map(|(n, row)| {
                let bytes = std::fs::read(Path::new(TORTURE).join(&row[0])).unwrap();
                (row.clone(), answer_to(&sock, daemon, &bytes, n))
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();

    let mut failures = Vec::new();
    for (row, got) in &results {
        let (file, action) = (&row[0], &row[4]);
        let ok = match action.as_str() {
            // unksm2 is a REGISTER whose To is not a SIP URI: a registrar answers 400, but an
            // SBC is no registrar, so REGISTER is refused as a method (405 with Allow) first.
            "reply 400" if file == "unksm2.dat" => *got == Some(400) || *got == Some(405),
            "reply 400" => *got == Some(400),
            "reply 400 (or process ignoring Date)" => got.is_some(),
            "drop" => got.is_none(),
            a if a.starts_with("reply 4xx/5xx specific")
                || a.starts_with("reply 5xx specific")
                || a.starts_with("reply 4xx specific") =>
            {
                let codes: Vec<u16> = a
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|s| s.parse().ok())
                    .filter(|c| *c >= 400)
                    .collect();
                // regaut01 (REGISTER with an unknown auth scheme): we are no registrar, so the
                // method itself is refused (405 with Allow) before authentication matters.
                got.is_some_and(|g| codes.contains(&g) || (file == "regaut01.dat" && g == 405))
            }
            // Accepted and processed: requests get the answer their method gets here (e.g. 501
            // for REGISTER/MESSAGE; an INVITE becomes a call attempt), never a parse 400;
            // valid responses match no transaction and are dropped.
            "accept and process" => *got != Some(400),
            other => panic!("unknown manifest action {other:?}"),
        };
        if !ok {
            failures.push(format!(
                "{file}: manifest says {action:?}, daemon answered {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(results.len(), 61);
    let m = d.metrics();
    assert!(
        metric(&m, "drawbridge_sip_parse_errors_total", &[]) >= 5.0,
        "parse errors not counted:\n{m}"
    );
    d.stop().await;
}
