//! Media peers for call tests: a "Teams" endpoint speaking SRTP made by webrtc-srtp (an
//! independent RFC 3711 implementation) and a "contact center" endpoint speaking plain RTP, each
//! on a loopback UDP socket the test owns; plus reading what a SIPp scenario wrote about the SDP
//! it saw (`media_*.xml` write `IP PORT [KEY]` to a file with `<exec>` as soon as they see it).
//!
//! Include with `#[path = "support/media_peer.rs"] mod media_peer;` (needs `mod common;`).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use tokio::net::UdpSocket;
use webrtc_srtp::context::Context;
use webrtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use webrtc_srtp::protection_profile::ProtectionProfile;

use crate::common::peers::Proc;

/// How long a relayed datagram may take on loopback before the test calls it lost.
pub const ARRIVAL: Duration = Duration::from_secs(3);

/// 30 random octets: an AES_CM_128_HMAC_SHA1_80 master key (16) and salt (14).
pub fn new_master_key() -> [u8; 30] {
    let mut k = [0u8; 30];
    rand::rng().fill_bytes(&mut k);
    k
}

/// The `inline:` text of an SDES key (RFC 4568 §6.1, base64 of key||salt).
pub fn inline(key: &[u8]) -> String {
    B64.encode(key)
}

/// webrtc-srtp's context for an SDES key given as base64 key||salt.
pub fn srtp_context(key_b64: &str) -> Context {
    let raw = B64
        .decode(key_b64)
        .unwrap_or_else(|e| panic!("SDES key {key_b64:?} is not base64: {e}"));
    assert_eq!(
        raw.len(),
        30,
        "AES_CM_128_HMAC_SHA1_80 key||salt is 30 octets"
    );
    Context::new(
        &raw[..16],
        &raw[16..],
        ProtectionProfile::Aes128CmHmacSha1_80,
        Some(srtp_replay_protection(64)),
        Some(srtcp_replay_protection(64)),
    )
    .unwrap()
}

/// An RTP packet (RFC 3550 §5.1) without CSRCs or extension.
pub fn rtp(seq: u16, ts: u32, ssrc: u32, marker_pt: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, marker_pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A call's worth of packets: G.711 audio with distinct payloads and an RFC 4733
/// telephone-event (PT 101, marker on its first packet).
pub fn call_packets(ssrc: u32, first_seq: u16) -> Vec<Vec<u8>> {
    (0..20u16)
        .map(|i| {
            let seq = first_seq.wrapping_add(i);
            let ts = u32::from(i) * 160;
            match i {
                8 => rtp(seq, ts, ssrc, 0x80 | 101, &[1, 0x0a, 0x00, 0xa0]),
                9 => rtp(seq, ts, ssrc, 101, &[1, 0x8a, 0x01, 0x40]),
                _ => rtp(seq, ts, ssrc, 0, &[i as u8 ^ 0x5a; 160]),
            }
        })
        .collect()
}

/// (payload type, sequence number, payload) of an RTP packet, read by rtp-rs.
pub fn rtp_fields(packet: &[u8]) -> (u8, u16, Vec<u8>) {
    let r =
        rtp_rs::RtpReader::new(packet).unwrap_or_else(|e| panic!("not RTP ({e:?}): {packet:02x?}"));
    (
        r.payload_type(),
        u16::from(r.sequence_number()),
        r.payload().to_vec(),
    )
}

/// A UDP socket on 127.0.0.1 and a free port.
pub async fn socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

/// The next datagram and its source, or None after `within`.
pub async fn recv_within(s: &UdpSocket, within: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = vec![0u8; 2048];
    match tokio::time::timeout(within, s.recv_from(&mut buf)).await {
        Ok(Ok((n, from))) => {
            buf.truncate(n);
            Some((buf, from))
        }
        Ok(Err(e)) => panic!("recv on {:?}: {e}", s.local_addr()),
        Err(_) => None,
    }
}

/// What a SIPp media scenario saw in the SDP of the other side: `IP PORT [KEY]`.
#[derive(Debug, Clone)]
pub struct SeenSdp {
    pub addr: SocketAddr,
    /// base64 key||salt of the a=crypto line, when the scenario captured one.
    pub key: Option<String>,
}

/// Waits until `file` (written atomically by a scenario's `<exec>`) exists; fails at once, with
/// every peer's log, when one of `peers` exits first or nothing comes within `timeout`.
pub async fn wait_seen(file: &Path, peers: &mut [&mut Proc], timeout: Duration) -> SeenSdp {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(file)
            && text.ends_with('\n')
        {
            let mut f = text.split_whitespace();
            let ip = f.next().unwrap();
            let port = f.next().unwrap();
            let addr = format!("{ip}:{port}")
                .parse()
                .unwrap_or_else(|e| panic!("{file:?}: {text:?}: {e}"));
            return SeenSdp {
                addr,
                key: f.next().map(str::to_owned),
            };
        }
        let exited = peers
            .iter_mut()
            .find_map(|p| Some((p.name.clone(), p.child.try_wait().unwrap()?)));
        if let Some((name, st)) = exited {
            panic!(
                "{name} exited ({st}) before {file:?} was written\n{}",
                peer_logs(peers)
            );
        }
        assert!(
            Instant::now() < deadline,
            "no {file:?} after {timeout:?}\n{}",
            peer_logs(peers)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The tail of every log file in the peers' directories (SIPp stdout, errors, message traces).
pub fn peer_logs(peers: &[&mut Proc]) -> String {
    let mut out = String::new();
    let mut dirs: Vec<&Path> = peers.iter().filter_map(|p| p.log.parent()).collect();
    dirs.dedup();
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(d) else {
            continue;
        };
        let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            if f.extension().is_some_and(|e| e == "log" || e == "out") {
                let text = std::fs::read_to_string(&f).unwrap_or_default();
                let start = (text.len().saturating_sub(6000)..text.len())
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(text.len());
                let tail = &text[start..];
                out += &format!("==== {}\n{tail}\n", f.display());
            }
        }
    }
    out
}
