//! The daemon pings a Teams proxy with OPTIONS (TDR-OPT-01/-04) and tracks its health in
//! /metrics. The proxy is SIPp behind stunnel (mutual TLS, as Microsoft's proxies do).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::peers::{self, StunnelService};
use common::*;

const PROXY: &str = "sip.pstnhub.microsoft.com:5061";

fn proxy_uas(dir: &std::path::Path, name: &str, port: u16) -> peers::Proc {
    let sf = scenario("teams_proxy_uas.xml");
    let trace = dir.join(format!("{name}-messages.log"));
    peers::sipp(
        dir,
        name,
        &[
            "-sf",
            &sf.to_string_lossy(),
            "-t",
            "t1",
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-trace_msg",
            "-message_file",
            &trace.to_string_lossy(),
        ],
    )
}

fn up(d: &Daemon) -> f64 {
    metric(
        &d.metrics(),
        "drawbridge_teams_proxy_up",
        &[("proxy", PROXY)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_gets_options_with_fqdn_contact_and_its_gauge_follows_it_tdr_opt_04() {
    let certs = Certs::new("sbc.example.test");
    let dir = tempfile::tempdir().unwrap();
    let sipp_port = free_tcp_port();
    let tun = format!("127.0.0.1:{}", free_tcp_port());
    let mut uas = proxy_uas(dir.path(), "proxy1", sipp_port);
    // The "proxy" side of TLS: presents a Microsoft-named certificate, requires ours
    // (mutual TLS), and checks it names the SBC.
    let _stunnel = peers::stunnel(
        dir.path(),
        &[StunnelService {
            name: "teams-in",
            client: false,
            accept: tun.clone(),
            connect: format!("127.0.0.1:{sipp_port}"),
            cert: &certs.path("teams.crt"),
            key: &certs.path("teams.key"),
            ca: &certs.path("ca.crt"),
            check_host: Some("sbc.example.test"),
            sni: None,
        }],
    );
    // A one-second interval is a lab setting (TDR-OPT-02 wants 60 s); it keeps the test short.
    let teams = teams_section("sip.pstnhub.microsoft.com", &tun, 1, 800);
    let d = Daemon::start(&lab_config(&certs, &teams)).await;

    wait_for("proxy up", Duration::from_secs(15), || {
        (up(&d) == 1.0).then_some(())
    })
    .await;
    // SIPp flushes its message trace on its own schedule: wait for the OPTIONS to appear.
    let want = format!(
        "Contact: <sip:sbc.example.test:{};transport=tls>",
        d.addrs.teams_tls.port()
    );
    let trace_file = dir.path().join("proxy1-messages.log");
    let trace = wait_for(
        "the OPTIONS in SIPp's trace",
        Duration::from_secs(10),
        || {
            let t = std::fs::read_to_string(&trace_file).unwrap_or_default();
            t.contains("X-MS-SBC").then_some(t)
        },
    )
    .await;
    assert!(
        trace.contains(&want),
        "no {want:?} in the OPTIONS SIPp received:\n{trace}"
    );
    assert!(
        trace.contains("OPTIONS sip:sip.pstnhub.microsoft.com:5061 SIP/2.0"),
        "{trace}"
    );
    assert!(
        trace.contains("X-MS-SBC: "),
        "no X-MS-SBC (TDR-HDR-01):\n{trace}"
    );

    // The proxy goes away: the next ping fails and the gauge drops.
    uas.stop();
    wait_for("proxy down", Duration::from_secs(15), || {
        (up(&d) == 0.0).then_some(())
    })
    .await;

    // It comes back on the same address: the gauge follows.
    let _uas2 = proxy_uas(dir.path(), "proxy2", sipp_port);
    wait_for("proxy up again", Duration::from_secs(15), || {
        (up(&d) == 1.0).then_some(())
    })
    .await;
    let rtt = metric(
        &d.metrics(),
        "drawbridge_options_rtt_seconds_count",
        &[("proxy", PROXY)],
    );
    assert!(rtt >= 2.0, "OPTIONS round trips not recorded: {rtt}");
    let m = d.metrics();
    let pings_ok = metric(
        &m,
        "drawbridge_sip_transactions_total",
        &[("kind", "non_invite_client"), ("outcome", "2xx")],
    );
    assert!(
        pings_ok >= 2.0,
        "answered pings not counted as transactions: {pings_ok}"
    );
    d.stop().await;
}
