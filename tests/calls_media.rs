//! Media end to end through real calls. SIPp sets the calls up through the daemon: a "Teams"
//! SIPp over mutual TLS (TCP into stunnel, Debian's SIPp has no TLS) offering RTP/SAVP with an
//! SDES key the test chose, and a "contact center" SIPp over UDP with plain RTP/AVP; both
//! advertise UDP sockets the test owns. The scenarios write the SBC's addresses and key the
//! moment they see them; the test then plays both media endpoints: SRTP made by webrtc-srtp
//! (an independent RFC 3711 implementation) on the Teams side, RTP on the trunk side.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;
#[path = "support/media_peer.rs"]
mod media_peer;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::peers::{self, Proc, StunnelService};
use common::*;
use media_peer::*;
use tokio::net::UdpSocket;
use webrtc_srtp::context::Context;

const TENANT: &str = "customer1.sbc.example.test";
const PROXY: &str = "sip.pstnhub.microsoft.com";
/// Call hold time in the SIPp scenarios (-d): the media checks run inside it.
const HOLD_MS: u64 = 6000;
/// INVITE to both sides having seen the SDP.
const SETUP: Duration = Duration::from_secs(20);
/// After the hold: BYE and its 200, with retransmissions to spare.
const TEARDOWN: Duration = Duration::from_secs(HOLD_MS / 1000 + 20);
const AUTH_DROPS: &str = "drawbridge_media_drops_total";

fn subdir(root: &Path, name: &str) -> PathBuf {
    let d = root.join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The lab config with trunk cc1 at `trunk_port`, the Teams proxy at `proxy_addr` and the media
/// range `ports` (each test its own, below the ephemeral range). The proxy is configured with
/// `proxy_addr`'s port, so its up gauge is `proxy_label(proxy_addr)`.
fn config(certs: &Certs, trunk_port: u16, proxy_addr: &str, ports: (u16, u16)) -> String {
    let extra = format!(
        "{}[media]\nport_min = {}\nport_max = {}\n",
        teams_section_at(PROXY, port_of(proxy_addr), proxy_addr, 60, 2000),
        ports.0,
        ports.1
    );
    let lab = lab_config(certs, &extra);
    let text = lab.replace(
        "uri = \"sip:127.0.0.1:5080;",
        &format!("uri = \"sip:127.0.0.1:{trunk_port};"),
    );
    assert_ne!(lab, text, "lab_config no longer names the trunk at 5080");
    text
}

fn port_of(addr: &str) -> u16 {
    addr.parse::<SocketAddr>().unwrap().port()
}

/// The `proxy` label of the Teams proxy `config` puts at `proxy_addr`.
fn proxy_label(proxy_addr: &str) -> String {
    format!("{PROXY}:{}", port_of(proxy_addr))
}

/// SIPp running one call of `tests/sipp/<sf>`, its message trace beside its log.
fn sipp(dir: &Path, name: &str, sf: &str, args: &[&str]) -> Proc {
    let sf = scenario(sf);
    let trace = dir.join(format!("{name}-messages.log"));
    let mut all = vec![
        "-sf",
        sf.to_str().unwrap(),
        "-i",
        "127.0.0.1",
        "-m",
        "1",
        "-trace_msg",
        "-message_file",
        trace.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    peers::sipp(dir, name, &all)
}

/// "Teams" UAC over TCP to `target` (stunnel's plain side).
fn teams_uac(dir: &Path, target: &str, rtp_port: u16, key: &str) -> Proc {
    let port = free_tcp_port().to_string();
    let rtp = rtp_port.to_string();
    let hold = HOLD_MS.to_string();
    sipp(
        dir,
        "teams-uac",
        "media_teams_uac.xml",
        &[
            target,
            "-t",
            "t1",
            "-p",
            &port,
            "-key",
            "teams_port",
            &port,
            "-key",
            "tenant_fqdn",
            TENANT,
            "-key",
            "rtp_port",
            &rtp,
            "-key",
            "srtp_key",
            key,
            "-d",
            &hold,
            "-aa",
        ],
    )
}

/// "Teams" UAS on TCP `port` behind a TLS listener at `tls_port`; answers OPTIONS (-aa).
/// SIPp counts each answered OPTIONS as a call that never ends: with the SBC pinging it, wait
/// for its done.txt instead of its exit.
fn teams_uas(dir: &Path, port: u16, tls_port: u16, rtp_port: u16, key: &str, calls: u32) -> Proc {
    let p = sipp(
        dir,
        "teams-uas",
        "media_teams_uas.xml",
        &[
            "-t",
            "t1",
            "-p",
            &port.to_string(),
            "-key",
            "teams_port",
            &tls_port.to_string(),
            "-key",
            "rtp_port",
            &rtp_port.to_string(),
            "-key",
            "srtp_key",
            key,
            "-aa",
            "-m",
            &calls.to_string(),
        ],
    );
    peers::wait_tcp_listening(&format!("127.0.0.1:{port}"), Duration::from_secs(10));
    p
}

/// "Contact center" UAS on UDP `port`.
fn trunk_uas(dir: &Path, port: u16, rtp_port: u16) -> Proc {
    sipp(
        dir,
        "trunk-uas",
        "media_trunk_uas.xml",
        &[
            "-t",
            "u1",
            "-p",
            &port.to_string(),
            "-key",
            "rtp_port",
            &rtp_port.to_string(),
        ],
    )
}

/// "Contact center" UAS on UDP `port` whose agent (media at `rtp_port`) transfers the caller
/// to a target at the same SIPp (media at `target_rtp_port`).
fn trunk_uas_refers(dir: &Path, port: u16, rtp_port: u16, target_rtp_port: u16) -> Proc {
    sipp(
        dir,
        "trunk-uas",
        "trunk_uas_refers.xml",
        &[
            "-t",
            "u1",
            "-p",
            &port.to_string(),
            "-m",
            "2",
            "-key",
            "rtp_port",
            &rtp_port.to_string(),
            "-key",
            "rtp_port2",
            &target_rtp_port.to_string(),
        ],
    )
}

/// "Contact center" UAC over UDP to `target`.
fn trunk_uac(dir: &Path, target: &str, rtp_port: u16) -> Proc {
    sipp(
        dir,
        "trunk-uac",
        "media_trunk_uac.xml",
        &[
            target,
            "-t",
            "u1",
            "-p",
            &free_udp_port().to_string(),
            "-key",
            "tenant_fqdn",
            TENANT,
            "-key",
            "rtp_port",
            &rtp_port.to_string(),
            "-d",
            &HOLD_MS.to_string(),
        ],
    )
}

/// The "Teams" certificate, key and the test CA, as stunnel takes them.
struct TeamsCert {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

impl TeamsCert {
    fn new(certs: &Certs) -> TeamsCert {
        TeamsCert {
            cert: certs.path("teams.crt"),
            key: certs.path("teams.key"),
            ca: certs.path("ca.crt"),
        }
    }

    /// A stunnel service presenting the Teams certificate and requiring one from the test CA;
    /// a client also sends the tenant FQDN as SNI.
    fn service<'a>(
        &'a self,
        name: &'a str,
        client: bool,
        accept: &str,
        connect: &str,
        check_host: Option<&'a str>,
    ) -> StunnelService<'a> {
        StunnelService {
            name,
            client,
            accept: accept.to_owned(),
            connect: connect.to_owned(),
            cert: &self.cert,
            key: &self.key,
            ca: &self.ca,
            check_host,
            sni: client.then_some(TENANT),
        }
    }
}

/// The two media endpoints of a call and where the SBC (or the other peer) receives.
struct Ends {
    teams: UdpSocket,
    trunk: UdpSocket,
    /// Where Teams-side SRTP goes (the address in the SDP the Teams peer received).
    to_teams_side: SocketAddr,
    /// Where trunk-side RTP goes.
    to_trunk_side: SocketAddr,
    /// Protects what the Teams peer sends (the key the Teams peer advertised).
    teams_tx: Context,
    /// Unprotects what reaches the Teams peer (the key it received).
    teams_rx: Context,
}

impl Ends {
    /// TDR-MED-06: SRTP from Teams leaves toward the trunk as RTP with the same payload type,
    /// sequence number and payload (audio and RFC 4733 events), from the advertised port.
    async fn srtp_from_teams_arrives_as_rtp(&mut self) {
        for plain in call_packets(0x7ea5_0001, 1000) {
            let wire = self.teams_tx.encrypt_rtp(&plain).unwrap();
            assert_eq!(wire.len(), plain.len() + 10, "80-bit tag");
            self.teams.send_to(&wire, self.to_teams_side).await.unwrap();
            let (got, from) = recv_within(&self.trunk, ARRIVAL)
                .await
                .unwrap_or_else(|| panic!("no RTP at the trunk peer for {:?}", rtp_fields(&plain)));
            assert_eq!(
                from, self.to_trunk_side,
                "RTP comes from the advertised port"
            );
            assert_eq!(rtp_fields(&got), rtp_fields(&plain));
        }
    }

    /// TDR-MED-07: RTP from the trunk reaches Teams as SRTP that authenticates and decrypts
    /// with the key the Teams peer was given, to the same payloads.
    async fn rtp_from_trunk_arrives_as_srtp(&mut self) {
        for plain in call_packets(0xcc00_0001, 5000) {
            self.trunk
                .send_to(&plain, self.to_trunk_side)
                .await
                .unwrap();
            let (wire, from) = recv_within(&self.teams, ARRIVAL).await.unwrap_or_else(|| {
                panic!("no SRTP at the Teams peer for {:?}", rtp_fields(&plain))
            });
            assert_eq!(
                from, self.to_teams_side,
                "SRTP comes from the advertised port"
            );
            assert_eq!(wire.len(), plain.len() + 10, "SRTP = RTP + 80-bit tag");
            assert_ne!(wire[12..plain.len()], plain[12..], "payload not encrypted");
            let back = self
                .teams_rx
                .decrypt_rtp(&wire)
                .unwrap_or_else(|e| panic!("SRTP toward Teams does not unprotect: {e}"));
            assert_eq!(rtp_fields(&back), rtp_fields(&plain));
        }
    }
}

/// Waits for a SIPp to finish its call and asserts it counts it successful (exit code 0).
async fn call_completed(p: Proc) {
    let name = p.name.clone();
    let (mut p, code) = wait_exit(p, TEARDOWN).await;
    assert_eq!(code, 0, "{name} failed its call:\n{}", peer_logs(&[&mut p]));
}

/// A Teams-originated call through the daemon, set up and with both media endpoints ready.
struct TeamsCall {
    d: Daemon,
    ends: Ends,
    uac: Proc,
    uas: Proc,
    _tunnel: Proc,
    _certs: Certs,
    _dir: tempfile::TempDir,
}

async fn teams_originated_call(ports: (u16, u16)) -> TeamsCall {
    teams_call_answered_by(ports, trunk_uas).await
}

/// As `teams_originated_call`, with the contact center's SIPp started by `uas(dir, SIP port,
/// the port of the trunk-side media socket)`.
async fn teams_call_answered_by(
    ports: (u16, u16),
    uas: impl FnOnce(&Path, u16, u16) -> Proc,
) -> TeamsCall {
    let certs = Certs::new("sbc.example.test");
    let dir = tempfile::tempdir().unwrap();
    let (teams, trunk) = (socket().await, socket().await);
    let uas_port = free_udp_port();
    // No Teams proxy in this test: pings go to the discard port and fail, which is harmless.
    let d = Daemon::start(&config(&certs, uas_port, "127.0.0.1:9", ports)).await;
    let mut uas = uas(
        &subdir(dir.path(), "trunk"),
        uas_port,
        trunk.local_addr().unwrap().port(),
    );
    let tun = format!("127.0.0.1:{}", free_tcp_port());
    let mut tunnel = peers::stunnel(
        &subdir(dir.path(), "tls"),
        &[TeamsCert::new(&certs).service(
            "teams-out",
            true,
            &tun,
            &d.addrs.teams_tls.to_string(),
            Some("sbc.example.test"),
        )],
    );
    let key = inline(&new_master_key());
    let mut uac = teams_uac(
        &subdir(dir.path(), "teams"),
        &tun,
        teams.local_addr().unwrap().port(),
        &key,
    );
    let procs = &mut [&mut uac, &mut uas, &mut tunnel];
    let answer = wait_seen(&dir.path().join("teams/answer.txt"), procs, SETUP).await;
    let offer = wait_seen(&dir.path().join("trunk/offer.txt"), procs, SETUP).await;
    let sbc_key = answer
        .key
        .expect("the 200 toward Teams carries the SBC's key");
    assert_ne!(
        sbc_key, key,
        "the SBC answers with its own key, not Teams' (TDR-MED-03)"
    );
    TeamsCall {
        d,
        ends: Ends {
            teams,
            trunk,
            to_teams_side: answer.addr,
            to_trunk_side: offer.addr,
            teams_tx: srtp_context(&key),
            teams_rx: srtp_context(&sbc_key),
        },
        uac,
        uas,
        _tunnel: tunnel,
        _certs: certs,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_call_relays_srtp_to_rtp_and_rtp_to_srtp_with_payloads_intact_tdr_med_06_07() {
    let mut call = teams_originated_call((24000, 24099)).await;
    call.ends.srtp_from_teams_arrives_as_rtp().await;
    call.ends.rtp_from_trunk_arrives_as_srtp().await;
    call_completed(call.uac).await;
    call_completed(call.uas).await;
    call.d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_srtp_on_a_call_is_dropped_and_counted() {
    let mut call = teams_originated_call((24100, 24199)).await;
    let e = &mut call.ends;
    let auth_drops = || metric(&call.d.metrics(), AUTH_DROPS, &[("reason", "auth")]);
    let before = auth_drops();

    let first = rtp(3000, 0, 0x7ea5_0002, 0, &[1; 160]);
    let wire = e.teams_tx.encrypt_rtp(&first).unwrap();
    e.teams.send_to(&wire, e.to_teams_side).await.unwrap();
    let (got, _) = recv_within(&e.trunk, ARRIVAL)
        .await
        .expect("an intact packet arrives");
    assert_eq!(rtp_fields(&got), rtp_fields(&first));

    // One payload bit flipped after protection: the tag no longer matches (RFC 3711 §3.3).
    let second = rtp(3001, 160, 0x7ea5_0002, 0, &[2; 160]);
    let mut wire = e.teams_tx.encrypt_rtp(&second).unwrap().to_vec();
    wire[40] ^= 0x01;
    e.teams.send_to(&wire, e.to_teams_side).await.unwrap();
    if let Some((p, _)) = recv_within(&e.trunk, Duration::from_millis(500)).await {
        panic!("a tampered SRTP packet was forwarded to the trunk: {p:02x?}");
    }
    wait_for(
        "the tampered packet counted",
        Duration::from_secs(5),
        || (auth_drops() > before).then_some(()),
    )
    .await;

    // The session keeps working after the drop.
    let third = rtp(3002, 320, 0x7ea5_0002, 0, &[3; 160]);
    let wire = e.teams_tx.encrypt_rtp(&third).unwrap();
    e.teams.send_to(&wire, e.to_teams_side).await.unwrap();
    let (got, _) = recv_within(&e.trunk, ARRIVAL)
        .await
        .expect("the next intact packet arrives");
    assert_eq!(rtp_fields(&got), rtp_fields(&third));

    call_completed(call.uac).await;
    call_completed(call.uas).await;
    call.d.stop().await;
}

/// TDR-XFR-04 end to end: the agent transfers the Teams caller with REFER; the caller hears
/// ringback while the target rings; once the target answers, the caller's SRTP reaches the
/// target as RTP and the target's RTP reaches the caller as SRTP with the key Teams already
/// has, and the agent gets nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_transfer_moves_the_teams_callers_media_to_the_target_tdr_xfr_04() {
    let target = socket().await;
    let target_port = target.local_addr().unwrap().port();
    let mut call = teams_call_answered_by((24300, 24399), |dir, port, rtp| {
        trunk_uas_refers(dir, port, rtp, target_port)
    })
    .await;
    let transferred = call._dir.path().join("trunk/transferred.txt");
    wait_for("the target's answer ACKed", SETUP, || {
        transferred.exists().then_some(())
    })
    .await;
    let e = &mut call.ends;
    // While the target rang (a second), the caller heard ringback: SRTP under the key Teams
    // was given, a PCMU stream of the SBC's own. The agent sent nothing in this test.
    let mut rang = 0;
    while let Some((srtp, _)) = recv_within(&e.teams, Duration::from_millis(50)).await {
        let tone = e
            .teams_rx
            .decrypt_rtp(&srtp)
            .unwrap_or_else(|err| panic!("ringback toward Teams does not unprotect: {err}"));
        assert_eq!(tone[1] & 0x7f, 0, "PCMU");
        rang += 1;
    }
    assert!(rang >= 5, "{rang} ringback packets reached the caller");
    // The media plane applies the switch at its worker's next turn: probe until it has.
    let mut arrived = false;
    for seq in 4000..4050 {
        let probe = rtp(seq, 0, 0x7ea5_0003, 0, &[9; 160]);
        let wire = e.teams_tx.encrypt_rtp(&probe).unwrap();
        e.teams.send_to(&wire, e.to_teams_side).await.unwrap();
        if recv_within(&target, Duration::from_millis(100))
            .await
            .is_some()
        {
            arrived = true;
            break;
        }
    }
    assert!(arrived, "no media from the caller at the transfer target");
    let agent = std::mem::replace(&mut e.trunk, target);
    e.srtp_from_teams_arrives_as_rtp().await;
    e.rtp_from_trunk_arrives_as_srtp().await;
    while recv_within(&agent, Duration::from_millis(50))
        .await
        .is_some()
    {}
    let last = rtp(4100, 0, 0x7ea5_0003, 0, &[7; 160]);
    let wire = e.teams_tx.encrypt_rtp(&last).unwrap();
    e.teams.send_to(&wire, e.to_teams_side).await.unwrap();
    assert!(recv_within(&e.trunk, ARRIVAL).await.is_some());
    assert!(
        recv_within(&agent, Duration::from_millis(300))
            .await
            .is_none(),
        "the agent still gets the caller's media"
    );
    call_completed(call.uac).await;
    call_completed(call.uas).await;
    call.d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_call_to_teams_relays_rtp_to_srtp_and_back_tdr_med_06_07() {
    let certs = Certs::new("sbc.example.test");
    let dir = tempfile::tempdir().unwrap();
    let (teams, trunk) = (socket().await, socket().await);
    let teams_dir = subdir(dir.path(), "teams");
    let key = inline(&new_master_key());
    let (uas_port, tun_port) = (free_tcp_port(), free_tcp_port());
    let mut uas = teams_uas(
        &teams_dir,
        uas_port,
        tun_port,
        teams.local_addr().unwrap().port(),
        &key,
        100,
    );
    // The "Microsoft proxy" side of TLS: presents the Teams cert, requires and checks the SBC's.
    let tun = format!("127.0.0.1:{tun_port}");
    let mut tunnel = peers::stunnel(
        &subdir(dir.path(), "tls"),
        &[TeamsCert::new(&certs).service(
            "teams-in",
            false,
            &tun,
            &format!("127.0.0.1:{uas_port}"),
            Some("sbc.example.test"),
        )],
    );
    let d = Daemon::start(&config(&certs, free_udp_port(), &tun, (24200, 24299))).await;
    // This daemon's own series: every daemon of this binary sets its proxies' gauges.
    let proxy = proxy_label(&tun);
    wait_for("the Teams proxy up", SETUP, || {
        let up = metric(
            &d.metrics(),
            "drawbridge_teams_proxy_up",
            &[("proxy", &proxy)],
        );
        (up == 1.0).then_some(())
    })
    .await;
    let mut uac = trunk_uac(
        &subdir(dir.path(), "trunk"),
        &d.addrs.trunk_udp.expect("trunk UDP listener").to_string(),
        trunk.local_addr().unwrap().port(),
    );
    let procs = &mut [&mut uac, &mut uas, &mut tunnel];
    let offer = wait_seen(&teams_dir.join("offer.txt"), procs, SETUP).await;
    let answer = wait_seen(&dir.path().join("trunk/answer.txt"), procs, SETUP).await;
    let sbc_key = offer
        .key
        .expect("the INVITE toward Teams carries the SBC's key");
    let mut ends = Ends {
        teams,
        trunk,
        to_teams_side: offer.addr,
        to_trunk_side: answer.addr,
        teams_tx: srtp_context(&key),
        teams_rx: srtp_context(&sbc_key),
    };
    ends.rtp_from_trunk_arrives_as_srtp().await;
    ends.srtp_from_teams_arrives_as_rtp().await;
    call_completed(uac).await;
    let done = teams_dir.join("done.txt");
    wait_for("the Teams UAS to answer the BYE", TEARDOWN, || {
        done.exists().then_some(())
    })
    .await;
    drop(uas);
    d.stop().await;
}

/// The peers themselves, with no SBC between them: the Teams UAC reaches the Teams UAS through
/// two stunnel services (mutual TLS), the trunk UAC the trunk UAS over UDP; each side sees the
/// other's SDP, and SRTP/RTP made by the media endpoints round-trips with the exchanged keys.
/// When a test above fails, this one tells whether the harness or the daemon is at fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_peers_interoperate_directly_without_the_sbc() {
    let certs = Certs::new("sbc.example.test");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (socket().await, socket().await);
    let (uas_port, tls_port, plain_port) = (free_tcp_port(), free_tcp_port(), free_tcp_port());
    let (key_a, key_b) = (inline(&new_master_key()), inline(&new_master_key()));
    let mut uas = teams_uas(
        &subdir(dir.path(), "teams-b"),
        uas_port,
        tls_port,
        b.local_addr().unwrap().port(),
        &key_b,
        1,
    );
    let tls_addr = format!("127.0.0.1:{tls_port}");
    let plain_addr = format!("127.0.0.1:{plain_port}");
    let tc = TeamsCert::new(&certs);
    let mut tunnel = peers::stunnel(
        &subdir(dir.path(), "tls"),
        &[
            tc.service("out", true, &plain_addr, &tls_addr, None),
            tc.service(
                "in",
                false,
                &tls_addr,
                &format!("127.0.0.1:{uas_port}"),
                None,
            ),
        ],
    );
    let mut uac = teams_uac(
        &subdir(dir.path(), "teams-a"),
        &plain_addr,
        a.local_addr().unwrap().port(),
        &key_a,
    );
    let procs = &mut [&mut uac, &mut uas, &mut tunnel];
    let answer = wait_seen(&dir.path().join("teams-a/answer.txt"), procs, SETUP).await;
    let offer = wait_seen(&dir.path().join("teams-b/offer.txt"), procs, SETUP).await;
    assert_eq!(answer.addr, b.local_addr().unwrap());
    assert_eq!(offer.addr, a.local_addr().unwrap());
    assert_eq!(answer.key.as_deref(), Some(key_b.as_str()));
    assert_eq!(offer.key.as_deref(), Some(key_a.as_str()));
    // SRTP both ways between the two Teams-side endpoints, keys as each side saw them.
    let (mut a_tx, mut b_rx) = (srtp_context(&key_a), srtp_context(&offer.key.unwrap()));
    let (mut b_tx, mut a_rx) = (srtp_context(&key_b), srtp_context(&answer.key.unwrap()));
    for plain in call_packets(1, 0) {
        a.send_to(&a_tx.encrypt_rtp(&plain).unwrap(), answer.addr)
            .await
            .unwrap();
        let (w, _) = recv_within(&b, ARRIVAL).await.unwrap();
        assert_eq!(b_rx.decrypt_rtp(&w).unwrap()[..], plain[..]);
        b.send_to(&b_tx.encrypt_rtp(&plain).unwrap(), offer.addr)
            .await
            .unwrap();
        let (w, _) = recv_within(&a, ARRIVAL).await.unwrap();
        assert_eq!(a_rx.decrypt_rtp(&w).unwrap()[..], plain[..]);
    }

    let (c, e) = (socket().await, socket().await);
    let cc_port = free_udp_port();
    let mut cc_uas = trunk_uas(
        &subdir(dir.path(), "cc-b"),
        cc_port,
        e.local_addr().unwrap().port(),
    );
    let mut cc_uac = trunk_uac(
        &subdir(dir.path(), "cc-a"),
        &format!("127.0.0.1:{cc_port}"),
        c.local_addr().unwrap().port(),
    );
    let procs = &mut [&mut cc_uac, &mut cc_uas];
    let answer = wait_seen(&dir.path().join("cc-a/answer.txt"), procs, SETUP).await;
    let offer = wait_seen(&dir.path().join("cc-b/offer.txt"), procs, SETUP).await;
    assert_eq!(answer.addr, e.local_addr().unwrap());
    assert_eq!(offer.addr, c.local_addr().unwrap());
    assert!(answer.key.is_none() && offer.key.is_none());

    for p in [uac, cc_uac, cc_uas] {
        call_completed(p).await;
    }
    // The Teams UAC's success includes the 200 to its BYE, which only the Teams UAS sends. The
    // UAS's own verdict is not used: when the UAC exits, stunnel closes the UAS's connection,
    // and SIPp may count the call failed in the instant before its last step.
    drop(uas);
}
