//! Calls through the SBC with real peers (issue "Calls"). "Teams" is SIPp over TCP behind
//! stunnel (mutual TLS both ways, SIPp here has no TLS of its own); contact-center trunks are
//! SIPp over UDP. The daemon runs in-process on loopback; every port is a free one; every
//! peer is bounded by SIPp's -timeout and `wait_exit`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::calls::*;
use common::*;

/// The SDES key the Teams scenarios offer (teams_uac_call.xml and friends).
const TEAMS_KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

struct Lab {
    _certs: Certs,
    dir: tempfile::TempDir,
    daemon: Daemon,
}

impl Lab {
    async fn start(certs: Certs, text: &str) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let daemon = Daemon::start(text).await;
        Lab {
            _certs: certs,
            dir,
            daemon,
        }
    }

    fn root(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn teams(&self, name: &str) -> TeamsTls {
        TeamsTls::start(
            self.dir.path(),
            name,
            &self._certs,
            Some(self.daemon.addrs.teams_tls.port()),
        )
    }

    fn trunk_addr(&self) -> String {
        let a = self.daemon.addrs.trunk_udp.expect("trunk_udp listener");
        a.to_string()
    }
}

/// One tenant, one trunk at `trunk_port`, no Teams proxy to call.
async fn one_tenant_lab(trunk_port: u16) -> Lab {
    let certs = Certs::new("sbc.example.test");
    let text = config(
        &certs,
        &[Tenant {
            fqdn: TENANT1,
            trunk: "cc1",
            max_calls: 10,
        }],
        &[Trunk {
            name: "cc1",
            port: trunk_port,
        }],
        &[no_proxy()],
        "",
    );
    Lab::start(certs, &text).await
}

/// What the trunk received must show nothing of Teams (topology hiding) and be plain RTP.
fn assert_trunk_invite_hides_teams(invite: &str, teams_call_id: &str, trunk_port: u16) {
    let ruri = first_line(invite);
    assert_eq!(
        ruri,
        format!("INVITE sip:+15550100@127.0.0.1:{trunk_port} SIP/2.0"),
        "Request-URI toward the trunk"
    );
    assert_ne!(header(invite, "Call-ID"), teams_call_id, "Call-ID reused");
    for needle in ["pstnhub", TENANT1, "TLS", "Microsoft", TEAMS_KEY] {
        assert!(
            !head(invite).contains(needle) && !body(invite).contains(needle),
            "{needle:?} leaked to the trunk:\n{invite}"
        );
    }
    assert_eq!(headers(invite, "Via").len(), 1, "one Via (ours):\n{invite}");
    assert_eq!(header(invite, "Max-Forwards"), "69", "Max-Forwards decremented");
    assert!(
        header(invite, "User-Agent").starts_with("drawbridge"),
        "User-Agent is the product:\n{invite}"
    );
    assert!(header(invite, "From").contains("+15550199"), "{invite}");
    let m = sdp_line(invite, "m=audio").unwrap();
    assert!(m.contains(" RTP/AVP "), "{m}");
    assert_eq!(sdp_line(invite, "c="), Some("c=IN IP4 127.0.0.1"));
    for absent in ["a=crypto", "a=ice-", "a=candidate"] {
        assert!(sdp_line(invite, absent).is_none(), "{absent} reached the trunk:\n{invite}");
    }
}

/// The 200 Teams got: SRTP with the SBC's own key (TDR-MED-01/02), rtcp-mux (TDR-MED-04),
/// REFER in Allow (TDR-XFR-01, TDR-HDR-03).
fn assert_teams_answer_is_srtp_with_our_key(ok: &str) {
    let m = sdp_line(ok, "m=audio").unwrap();
    assert!(m.contains(" RTP/SAVP "), "{m}");
    let crypto = sdp_line(ok, "a=crypto:").expect("a=crypto in the 200 toward Teams");
    assert!(crypto.contains("AES_CM_128_HMAC_SHA1_80 inline:"), "{crypto}");
    let key = sdes_key(ok).unwrap();
    assert_ne!(key, TEAMS_KEY, "the SBC echoed Teams' key instead of its own");
    assert_eq!(key.len(), 40, "30-byte key||salt in base64: {key}");
    assert!(sdp_line(ok, "a=rtcp-mux").is_some(), "{ok}");
    assert!(sdp_line(ok, "c=").is_some_and(|c| c.ends_with("127.0.0.1")), "{ok}");
    let allow = header(ok, "Allow");
    assert!(allow.contains("REFER"), "{allow}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_to_trunk_call_is_bridged_srtp_to_rtp_and_teams_hangs_up() {
    let trunk_port = free_udp_port();
    let lab = one_tenant_lab(trunk_port).await;
    let trunk = TrunkPeer {
        dir: lab.root().join("trunk"),
        port: trunk_port,
    };
    std::fs::create_dir_all(&trunk.dir).unwrap();
    let uas = trunk.uas("uas", "trunk_uas_call.xml", &[]);
    let teams = lab.teams("teams");
    let uac = teams.uac(
        "uac",
        "teams_uac_call.xml",
        &[("tenant_fqdn", TENANT1)],
        &["-d", "300"],
    );
    expect_success(uac, &teams.dir, "uac").await;
    expect_success(uas, &trunk.dir, "uas").await;

    let t = teams.trace("uac");
    let teams_invite = &t.sent[0];
    let c = trunk.trace("uas");
    assert_trunk_invite_hides_teams(
        c.request("INVITE"),
        header(teams_invite, "Call-ID"),
        trunk_port,
    );
    assert!(!t.responses(100).is_empty(), "no 100 Trying toward Teams");
    assert!(!t.responses(180).is_empty(), "180 not relayed to Teams");
    assert_teams_answer_is_srtp_with_our_key(t.response(200));
    assert_eq!(c.requests("ACK").len(), 1, "ACK not relayed to the trunk");
    assert_eq!(c.requests("BYE").len(), 1, "BYE not relayed to the trunk");
    lab.daemon.stop().await;
}
