//! baresip (Debian's baresip-core, a real SIP/SRTP softphone) plays Teams: mutual TLS with its
//! client certificate (`sip_certificate`), SDES SRTP required (`mediaenc=srtp-mand`), a 440 Hz
//! tone from `ausine` as its microphone, scripted over `ctrl_tcp`. It calls the tenant through the
//! daemon to a contact center that is a SIPp UAS answering with a UDP socket the test owns.
//!
//! What Debian's baresip 1.0.0 (libre 1.1.0) cannot do: verify the server certificate. It loads
//! `sip_cafile`, but sends its INVITE (SRTP key included) to a server presenting a self-signed
//! certificate of another CA all the same (checked by hand with `openssl s_server`); the
//! `sip_verify_server` switch arrived in baresip 1.1. The SBC's certificate chain and name are
//! verified by stunnel in the SIPp tests (calls_media.rs, signaling_options.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;
#[path = "support/dnsmasq.rs"]
mod dnsmasq;
#[path = "support/media_peer.rs"]
mod media_peer;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::peers::{self, Proc, StunnelService};
use common::*;
use media_peer::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TENANT: &str = "customer1.sbc.example.test";
const SETUP: Duration = Duration::from_secs(20);

/// A port `p` where UDP and TCP `p` and TCP `p + 1` are free: baresip's `sip_listen` takes UDP
/// and TCP on `p` and TLS on `p + 1`, and binds without SO_REUSEADDR.
fn sip_listen_port() -> u16 {
    for _ in 0..50 {
        let p = free_udp_port();
        let free = p < 65535
            && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok();
        if free {
            return p;
        }
    }
    panic!("no free port pair for baresip");
}

/// baresip with its config in `dir`: TLS client cert `teams.pem`, CA `ca.crt`, new calls
/// through `outbound` (the SBC's TLS port, as Teams knows it), names resolved by `dns` (the
/// SBC's Contact carries the tenant FQDN, TDR-OPT-04: in-dialog ACK and BYE need it).
struct Baresip {
    proc: Proc,
    ctrl: SocketAddr,
}

impl Baresip {
    fn start(
        dir: &Path,
        certs: &Certs,
        outbound: SocketAddr,
        dns: SocketAddr,
        rtp_ports: (u16, u16),
    ) -> Baresip {
        let bin = peers::require("baresip", "baresip-core");
        let pem = dir.join("teams.pem");
        let mut both = std::fs::read(certs.path("teams.crt")).unwrap();
        both.extend(std::fs::read(certs.path("teams.key")).unwrap());
        std::fs::write(&pem, both).unwrap();
        let ctrl: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
        // Loopback only (net_interface); PCMU only; modules listed one by one: nothing that
        // needs a sound card or a terminal.
        let config = format!(
            "poll_method epoll\n\
             net_interface 127.0.0.1\n\
             dns_server {dns}\n\
             sip_listen 127.0.0.1:{sip}\n\
             sip_certificate {pem}\n\
             sip_cafile {ca}\n\
             audio_source ausine,440\n\
             audio_player aufile,{out}\n\
             audio_alert aufile,/dev/null\n\
             ausrc_srate 48000\n\
             ausrc_channels 2\n\
             rtp_ports {rtp_min}-{rtp_max}\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module ausine.so\n\
             module aufile.so\n\
             module srtp.so\n\
             module_app account.so\n\
             module_app menu.so\n\
             module_app ctrl_tcp.so\n\
             ctrl_tcp_listen {ctrl}\n",
            sip = sip_listen_port(),
            pem = pem.display(),
            ca = certs.path("ca.crt").display(),
            out = dir.join("heard.wav").display(),
            rtp_min = rtp_ports.0,
            rtp_max = rtp_ports.1,
        );
        std::fs::write(dir.join("config"), config).unwrap();
        std::fs::write(
            dir.join("accounts"),
            format!(
                "<sip:+15550199@sip.pstnhub.microsoft.com;transport=tls>;regint=0;\
                 mediaenc=srtp-mand;audio_codecs=PCMU;outbound=\"sip:{outbound};transport=tls\"\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.join("contacts"), "").unwrap();
        let log = dir.join("baresip.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .args(["-f", dir.to_str().unwrap(), "-v", "-t", "60"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("start baresip");
        let proc = Proc {
            child,
            name: "baresip".into(),
            log,
        };
        peers::wait_tcp_listening(&ctrl.to_string(), Duration::from_secs(10));
        Baresip { proc, ctrl }
    }
}

/// baresip's ctrl_tcp: JSON commands and events in netstrings (`LEN:JSON,`).
struct Ctrl {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Ctrl {
    async fn connect(addr: SocketAddr) -> Ctrl {
        Ctrl {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    async fn command(&mut self, command: &str, params: &str) {
        let json =
            serde_json::json!({"command": command, "params": params, "token": command}).to_string();
        let msg = format!("{}:{json},", json.len());
        self.stream.write_all(msg.as_bytes()).await.unwrap();
    }

    /// The next message, or None at `deadline`.
    async fn next(&mut self, deadline: Instant) -> Option<serde_json::Value> {
        loop {
            if let Some(colon) = self.buf.iter().position(|&b| b == b':') {
                let len: usize = std::str::from_utf8(&self.buf[..colon])
                    .unwrap()
                    .parse()
                    .unwrap();
                if self.buf.len() > colon + len + 1 {
                    let body = self.buf[colon + 1..colon + 1 + len].to_vec();
                    assert_eq!(self.buf[colon + 1 + len], b',', "netstring framing");
                    self.buf.drain(..colon + len + 2);
                    return Some(serde_json::from_slice(&body).unwrap());
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(left, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Err(_) => return None,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => panic!("ctrl_tcp: {e}"),
            }
        }
    }

    /// Waits for the call event `want`; a CALL_CLOSED first fails with baresip's reason.
    async fn wait_event(&mut self, want: &str, timeout: Duration, log: &Proc) {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(m) = self.next(deadline).await {
            let kind = m["type"].as_str().unwrap_or_default().to_owned();
            if kind == want {
                return;
            }
            assert!(
                kind != "CALL_CLOSED",
                "the call closed before {want}: {m}\n{}",
                log.log_text()
            );
            seen.push(m);
        }
        panic!(
            "no {want} within {timeout:?}; ctrl_tcp said {seen:?}\n{}",
            log.log_text()
        );
    }
}

/// μ-law (G.711 PCMU) to linear, ITU-T G.711 table 2.
fn ulaw_to_linear(u: u8) -> i16 {
    let u = !u;
    let t = ((i16::from(u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
    if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }
}

/// Sign changes in PCMU audio: a 440 Hz tone crosses zero 880 times a second, noise (or
/// ciphertext) about once every other sample.
fn zero_crossings(payloads: &[Vec<u8>]) -> usize {
    let samples: Vec<i16> = payloads
        .iter()
        .flatten()
        .map(|&b| ulaw_to_linear(b))
        .collect();
    samples
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count()
}

/// Reads 25 RTP packets (half a second of 20 ms PCMU) from `sock`, all from `from`; returns
/// their payloads after checking PCMU, 160 octets each, consecutive sequence numbers.
async fn pcmu_packets(
    sock: &tokio::net::UdpSocket,
    from: SocketAddr,
    decrypt: &mut impl FnMut(&[u8]) -> Vec<u8>,
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut last_seq = None;
    while out.len() < 25 {
        let (p, src) = recv_within(sock, ARRIVAL)
            .await
            .unwrap_or_else(|| panic!("audio stopped after {} packets", out.len()));
        assert_eq!(src, from, "media comes from the advertised address");
        let p = decrypt(&p);
        let (pt, seq, payload) = rtp_fields(&p);
        if pt != 0 {
            continue; // comfort noise or events, if any
        }
        assert_eq!(payload.len(), 160, "20 ms of PCMU");
        if let Some(l) = last_seq {
            assert_eq!(seq, u16::wrapping_add(l, 1), "packets in order on loopback");
        }
        last_seq = Some(seq);
        out.push(payload);
    }
    out
}

fn assert_is_the_tone(payloads: &[Vec<u8>]) {
    // 0.5 s of 440 Hz: 440 crossings; allow for the start of the tone and resampling.
    let z = zero_crossings(payloads);
    assert!(
        (400..=480).contains(&z),
        "{z} zero crossings in 0.5 s: not baresip's 440 Hz tone (noise gives ~2000)"
    );
}

/// DNS for the lab: the tenant FQDN is 127.0.0.1.
fn tenant_dns() -> dnsmasq::Dnsmasq {
    dnsmasq::Dnsmasq::start(
        "sbc.example.test",
        &[format!("--host-record={TENANT},127.0.0.1")],
    )
}

fn subdir(root: &Path, name: &str) -> PathBuf {
    let d = root.join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// "Contact center" SIPp UAS on UDP `port` answering with `rtp_port`.
fn trunk_uas(dir: &Path, port: u16, rtp_port: u16) -> Proc {
    let sf = scenario("media_trunk_uas.xml");
    peers::sipp(
        dir,
        "trunk-uas",
        &[
            "-sf",
            sf.to_str().unwrap(),
            "-t",
            "u1",
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            "1",
            "-key",
            "rtp_port",
            &rtp_port.to_string(),
            "-trace_msg",
            "-message_file",
            dir.join("trunk-uas-messages.log").to_str().unwrap(),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_through_the_sbc_and_its_srtp_reaches_the_trunk_as_rtp_tdr_med_06() {
    let certs = Certs::new("sbc.example.test");
    let dir = tempfile::tempdir().unwrap();
    let trunk = socket().await;
    let uas_port = free_udp_port();
    let extra = format!(
        "{}[media]\nport_min = 24300\nport_max = 24399\n",
        teams_section("sip.pstnhub.microsoft.com", "127.0.0.1:9", 60, 2000)
    );
    let text = lab_config(&certs, &extra).replace(
        "uri = \"sip:127.0.0.1:5080;",
        &format!("uri = \"sip:127.0.0.1:{uas_port};"),
    );
    let d = Daemon::start(&text).await;
    let trunk_dir = subdir(dir.path(), "trunk");
    let mut uas = trunk_uas(&trunk_dir, uas_port, trunk.local_addr().unwrap().port());
    let dns = tenant_dns();
    let mut phone = Baresip::start(
        &subdir(dir.path(), "baresip"),
        &certs,
        d.addrs.teams_tls,
        dns.addr(),
        (24400, 24499),
    );
    let mut ctrl = Ctrl::connect(phone.ctrl).await;
    ctrl.command("dial", &format!("sip:+15550100@{TENANT}"))
        .await;
    ctrl.wait_event("CALL_ESTABLISHED", SETUP, &phone.proc)
        .await;
    let offer = wait_seen(
        &trunk_dir.join("offer.txt"),
        &mut [&mut uas, &mut phone.proc],
        SETUP,
    )
    .await;

    // What baresip's SRTP carried arrives as plain RTP: PCMU that decodes to its tone.
    let audio = pcmu_packets(&trunk, offer.addr, &mut |p| p.to_vec()).await;
    assert_is_the_tone(&audio);

    ctrl.command("hangup", "").await;
    ctrl.wait_event("CALL_CLOSED", Duration::from_secs(10), &phone.proc)
        .await;
    let (mut uas, code) = wait_exit(uas, Duration::from_secs(15)).await;
    assert_eq!(
        code,
        0,
        "the UAS saw no clean BYE:\n{}",
        peer_logs(&[&mut uas])
    );
    d.stop().await;
}

/// The peers without the SBC: baresip's mutual TLS ends at a stunnel server in front of a "Teams"
/// SIPp UAS; its SRTP, decrypted with the key it offered, is the tone. When the test above
/// fails, this one tells whether baresip or the daemon is at fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_places_an_srtp_call_directly_to_a_tls_sipp() {
    let certs = Certs::new("sbc.example.test");
    let dir = tempfile::tempdir().unwrap();
    let teams = socket().await;
    let (uas_port, tls_port) = (free_tcp_port(), free_tcp_port());
    let uas_dir = subdir(dir.path(), "uas");
    let sf = scenario("media_teams_uas.xml");
    let mut uas = peers::sipp(
        &uas_dir,
        "teams-uas",
        &[
            "-sf",
            sf.to_str().unwrap(),
            "-t",
            "t1",
            "-i",
            "127.0.0.1",
            "-p",
            &uas_port.to_string(),
            "-m",
            "1",
            "-key",
            "teams_port",
            &tls_port.to_string(),
            "-key",
            "rtp_port",
            &teams.local_addr().unwrap().port().to_string(),
            "-key",
            "srtp_key",
            &inline(&new_master_key()),
        ],
    );
    peers::wait_tcp_listening(&format!("127.0.0.1:{uas_port}"), Duration::from_secs(10));
    let (cert, key, ca) = (
        certs.path("server.crt"),
        certs.path("server.key"),
        certs.path("ca.crt"),
    );
    let _tunnel = peers::stunnel(
        &subdir(dir.path(), "tls"),
        &[StunnelService {
            name: "sbc-stand-in",
            client: false,
            accept: format!("127.0.0.1:{tls_port}"),
            connect: format!("127.0.0.1:{uas_port}"),
            cert: &cert,
            key: &key,
            ca: &ca,
            check_host: None,
            sni: None,
        }],
    );
    let dns = tenant_dns();
    let mut phone = Baresip::start(
        &subdir(dir.path(), "baresip"),
        &certs,
        format!("127.0.0.1:{tls_port}").parse().unwrap(),
        dns.addr(),
        (24500, 24599),
    );
    let mut ctrl = Ctrl::connect(phone.ctrl).await;
    ctrl.command("dial", &format!("sip:+15550100@{TENANT}"))
        .await;
    ctrl.wait_event("CALL_ESTABLISHED", SETUP, &phone.proc)
        .await;
    let offer = wait_seen(
        &uas_dir.join("offer.txt"),
        &mut [&mut uas, &mut phone.proc],
        SETUP,
    )
    .await;
    let mut rx = srtp_context(offer.key.as_deref().expect("baresip offers an SDES key"));
    let audio = pcmu_packets(&teams, offer.addr, &mut |p| {
        rx.decrypt_rtp(p)
            .unwrap_or_else(|e| panic!("baresip's SRTP: {e}"))
            .to_vec()
    })
    .await;
    assert_is_the_tone(&audio);
    ctrl.command("hangup", "").await;
    ctrl.wait_event("CALL_CLOSED", Duration::from_secs(10), &phone.proc)
        .await;
    let (mut uas, code) = wait_exit(uas, Duration::from_secs(15)).await;
    assert_eq!(
        code,
        0,
        "the UAS saw no clean BYE:\n{}",
        peer_logs(&[&mut uas])
    );
}
