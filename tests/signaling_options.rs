//! OPTIONS over UDP, TCP and TLS get 200 from the daemon, with SIPp as the peer (TDR-OPT-06);
//! the TLS leg goes through stunnel (Debian's SIPp has no TLS), which checks our certificate
//! and presents a Teams client certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::peers::{self, StunnelService};
use common::*;

fn sipp_options(
    dir: &std::path::Path,
    name: &str,
    mode: &str,
    ruri: &str,
    target: &str,
) -> peers::Proc {
    let port = if mode == "u1" {
        free_udp_port()
    } else {
        free_tcp_port()
    }
    .to_string();
    let sf = scenario("options_uac.xml");
    peers::sipp(
        dir,
        name,
        &[
            "-sf",
            &sf.to_string_lossy(),
            "-t",
            mode,
            "-i",
            "127.0.0.1",
            "-p",
            &port,
            "-key",
            "ruri_host",
            ruri,
            "-m",
            "5",
            "-r",
            "50",
            "-timeout",
            "15s",
            "-timeout_error",
            target,
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_over_udp_tcp_and_tls_get_200_tdr_opt_06() {
    let certs = Certs::new("sbc.example.test");
    // The Teams proxy is unreachable here: this test is about answering, not pinging.
    let teams = teams_section("sip3.pstnhub.microsoft.com", "127.0.0.1:9", 60, 1000);
    let d = Daemon::start(&lab_config(&certs, &teams)).await;
    let dir = tempfile::tempdir().unwrap();

    let udp = d.addrs.trunk_udp.unwrap().to_string();
    let (p, code) = wait_exit(
        sipp_options(dir.path(), "udp", "u1", "127.0.0.1", &udp),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(code, 0, "SIPp over UDP failed:\n{}", p.log_text());

    let tcp = d.addrs.trunk_tcp.unwrap().to_string();
    let (p, code) = wait_exit(
        sipp_options(dir.path(), "tcp", "t1", "127.0.0.1", &tcp),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(code, 0, "SIPp over TCP failed:\n{}", p.log_text());

    // TLS: SIPp -> TCP -> stunnel (client cert "Teams", verifies our name) -> TLS -> daemon.
    let tun = format!("127.0.0.1:{}", free_tcp_port());
    let _stunnel = peers::stunnel(
        dir.path(),
        &[StunnelService {
            name: "teams-out",
            client: true,
            accept: tun.clone(),
            connect: d.addrs.teams_tls.to_string(),
            cert: &certs.path("teams.crt"),
            key: &certs.path("teams.key"),
            ca: &certs.path("ca.crt"),
            check_host: Some("customer1.sbc.example.test"),
            sni: Some("customer1.sbc.example.test"),
        }],
    );
    let (p, code) = wait_exit(
        sipp_options(dir.path(), "tls", "t1", "customer1.sbc.example.test", &tun),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(code, 0, "SIPp over stunnel/TLS failed:\n{}", p.log_text());

    let m = d.metrics();
    for transport in ["udp", "tcp", "tls"] {
        let n = metric(
            &m,
            "drawbridge_sip_messages_total",
            &[
                ("direction", "in"),
                ("transport", transport),
                ("method", "OPTIONS"),
            ],
        );
        assert!(n >= 5.0, "{transport}: {n} OPTIONS counted in\n{m}");
        let answered = metric(
            &m,
            "drawbridge_sip_messages_total",
            &[
                ("direction", "out"),
                ("transport", transport),
                ("method", "OPTIONS"),
                ("status_class", "2xx"),
            ],
        );
        assert!(
            answered >= 5.0,
            "{transport}: {answered} 200 OK to OPTIONS counted out"
        );
    }
    let ok = metric(
        &m,
        "drawbridge_tls_handshakes_total",
        &[("side", "teams"), ("outcome", "ok")],
    );
    assert!(
        ok >= 1.0,
        "no successful Teams-side handshake counted:\n{m}"
    );
    // The unreachable proxy's ping ends as a transport error at once (RFC 3261 §17.1.4), not
    // after timer F's 32 s.
    wait_for(
        "the failed ping counted as a transport error",
        Duration::from_secs(5),
        || {
            let m = d.metrics();
            let labels = [
                ("kind", "non_invite_client"),
                ("outcome", "transport_error"),
            ];
            (metric(&m, "drawbridge_sip_transactions_total", &labels) >= 1.0).then_some(())
        },
    )
    .await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_2_with_a_tdr_sig_02_suite_is_accepted() {
    let certs = Certs::new("sbc.example.test");
    let teams = teams_section("sip3.pstnhub.microsoft.com", "127.0.0.1:9", 60, 1000);
    let d = Daemon::start(&lab_config(&certs, &teams)).await;
    let dir = tempfile::tempdir().unwrap();
    let tun = format!("127.0.0.1:{}", free_tcp_port());
    // stunnel's config cannot cap the version per service in every build, so the cipher list
    // does it: a TLS 1.2-only ECDHE-RSA AES-GCM suite, as Teams offers.
    let _stunnel = peers::stunnel_with(
        dir.path(),
        &[StunnelService {
            name: "teams-tls12",
            client: true,
            accept: tun.clone(),
            connect: d.addrs.teams_tls.to_string(),
            cert: &certs.path("teams.crt"),
            key: &certs.path("teams.key"),
            ca: &certs.path("ca.crt"),
            check_host: Some("sbc.example.test"),
            sni: Some("sbc.example.test"),
        }],
        "sslVersionMax = TLSv1.2\nciphers = ECDHE-RSA-AES256-GCM-SHA384\n",
    );
    let (p, code) = wait_exit(
        sipp_options(dir.path(), "tls12", "t1", "sbc.example.test", &tun),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        code,
        0,
        "OPTIONS over TLS 1.2 failed:\n{}\nstunnel:\n{}",
        p.log_text(),
        std::fs::read_to_string(dir.path().join("stunnel.out")).unwrap_or_default()
    );
    let log = std::fs::read_to_string(dir.path().join("stunnel.out")).unwrap_or_default();
    assert!(
        log.contains("TLSv1.2"),
        "stunnel did not negotiate TLS 1.2:\n{log}"
    );
    d.stop().await;
}
