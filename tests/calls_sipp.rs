//! Calls through the SBC with real peers (issue "Calls"). "Teams" is SIPp over TCP behind
//! stunnel (mutual TLS both ways, SIPp here has no TLS of its own); contact-center trunks are
//! SIPp over UDP. The daemon runs in-process on loopback; every port is a free one; every
//! peer is bounded by SIPp's -timeout and `wait_exit`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::calls::*;
use common::peers;
use common::*;

/// The SDES key the Teams scenarios offer (teams_uac_call.xml and friends).
const TEAMS_KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

/// Certificates, a directory for the peers' logs, and the daemon.
struct Lab {
    certs: Certs,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        Lab {
            certs: Certs::new("sbc.example.test"),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// A Teams peer calling the SBC (and reached back through the same stunnel).
    fn teams(&self, name: &str, d: &Daemon) -> TeamsTls {
        TeamsTls::start(
            self.root(),
            name,
            &self.certs,
            Some(d.addrs.teams_tls.port()),
        )
    }

    /// A Teams proxy the SBC calls: it must be up before the daemon starts, so that the
    /// daemon's first OPTIONS ping reaches it (and is answered on the scenario's ping branch).
    fn teams_proxy(&self, name: &str) -> TeamsTls {
        TeamsTls::start(self.root(), name, &self.certs, None)
    }

    fn trunk(&self, name: &str) -> TrunkPeer {
        TrunkPeer::new(self.root(), name)
    }

    fn config(
        &self,
        tenants: &[Tenant<'_>],
        trunks: &[Trunk<'_>],
        proxies: &[(&str, String)],
        teams_extra: &str,
    ) -> String {
        config(&self.certs, tenants, trunks, proxies, teams_extra)
    }

    /// One tenant on trunk `cc1`, reached at `trunk_port`, and these Teams proxies.
    async fn one_tenant(&self, trunk_port: u16, proxies: &[(&str, String)]) -> Daemon {
        let text = self.config(
            &[Tenant {
                fqdn: TENANT1,
                trunk: "cc1",
                max_calls: 10,
            }],
            &[Trunk {
                name: "cc1",
                port: trunk_port,
            }],
            proxies,
            "",
        );
        Daemon::start(&text).await
    }
}

fn trunk_addr(d: &Daemon) -> String {
    d.addrs.trunk_udp.expect("trunk_udp listener").to_string()
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
    assert_eq!(
        header(invite, "Max-Forwards"),
        "69",
        "Max-Forwards decremented"
    );
    assert!(
        header(invite, "User-Agent").starts_with("drawbridge"),
        "User-Agent is the product:\n{invite}"
    );
    assert!(header(invite, "From").contains("+15550199"), "{invite}");
    let m = sdp_line(invite, "m=audio").unwrap();
    assert!(m.contains(" RTP/AVP "), "{m}");
    assert_eq!(sdp_line(invite, "c="), Some("c=IN IP4 127.0.0.1"));
    for absent in ["a=crypto", "a=ice-", "a=candidate"] {
        assert!(
            sdp_line(invite, absent).is_none(),
            "{absent} reached the trunk:\n{invite}"
        );
    }
}

/// The 200 Teams got: SRTP with the SBC's own key (TDR-MED-01/02), rtcp-mux (TDR-MED-04),
/// REFER in Allow (TDR-XFR-01, TDR-HDR-03).
fn assert_teams_answer_is_srtp_with_our_key(ok: &str) {
    let m = sdp_line(ok, "m=audio").unwrap();
    assert!(m.contains(" RTP/SAVP "), "{m}");
    let crypto = sdp_line(ok, "a=crypto:").expect("a=crypto in the 200 toward Teams");
    assert!(
        crypto.contains("AES_CM_128_HMAC_SHA1_80 inline:"),
        "{crypto}"
    );
    let key = sdes_key(ok).unwrap();
    assert_ne!(
        key, TEAMS_KEY,
        "the SBC echoed Teams' key instead of its own"
    );
    assert_eq!(key.len(), 40, "30-byte key||salt in base64: {key}");
    assert!(sdp_line(ok, "a=rtcp-mux").is_some(), "{ok}");
    assert!(
        sdp_line(ok, "c=").is_some_and(|c| c.ends_with("127.0.0.1")),
        "{ok}"
    );
    let allow = header(ok, "Allow");
    assert!(allow.contains("REFER"), "{allow}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_to_trunk_call_is_bridged_srtp_to_rtp_and_teams_hangs_up() {
    let lab = Lab::new();
    let trunk = lab.trunk("trunk");
    let d = lab.one_tenant(trunk.port, &[no_proxy()]).await;
    let uas = trunk.uas("uas", "trunk_uas_call.xml", &[]);
    let teams = lab.teams("teams", &d);
    let uac = teams.uac(
        "uac",
        "teams_uac_call.xml",
        &[("tenant_fqdn", TENANT1)],
        &["-d", "300"],
    );
    expect_success(uac, &teams.dir, "uac").await;
    expect_success(uas, &trunk.dir, "uas").await;

    let t = teams.trace("uac");
    let c = trunk.trace("uas");
    assert_trunk_invite_hides_teams(
        c.request("INVITE"),
        header(&t.sent[0], "Call-ID"),
        trunk.port,
    );
    assert!(!t.responses(100).is_empty(), "no 100 Trying toward Teams");
    assert!(!t.responses(180).is_empty(), "180 not relayed to Teams");
    assert_teams_answer_is_srtp_with_our_key(t.response(200));
    assert_eq!(c.requests("ACK").len(), 1, "ACK not relayed to the trunk");
    assert_eq!(c.requests("BYE").len(), 1, "BYE not relayed to the trunk");
    assert_eq!(t.responses(200).len(), 2, "200 for INVITE and for BYE");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_to_trunk_call_ends_when_the_trunk_hangs_up() {
    let lab = Lab::new();
    let trunk = lab.trunk("trunk");
    let d = lab.one_tenant(trunk.port, &[no_proxy()]).await;
    let uas = trunk.uas("uas", "trunk_uas_hangs_up.xml", &[]);
    let teams = lab.teams("teams", &d);
    let uac = teams.uac(
        "uac",
        "teams_uac_gets_bye.xml",
        &[("tenant_fqdn", TENANT1)],
        &[],
    );
    // Each side's SIPp passes only if the BYE reached Teams and its 200 came back to the trunk.
    expect_success(uac, &teams.dir, "uac").await;
    expect_success(uas, &trunk.dir, "uas").await;

    let t = teams.trace("uac");
    let bye = t.request("BYE");
    // The BYE toward Teams is a request in Teams' dialog: its Request-URI is Teams' Contact and
    // it names the tenant FQDN, not the trunk.
    assert!(
        first_line(bye).starts_with("BYE sip:+15550199@127.0.0.1:"),
        "{bye}"
    );
    assert!(
        !bye.contains("cc@"),
        "trunk Contact leaked to Teams:\n{bye}"
    );
    let c = trunk.trace("uas");
    assert_eq!(c.responses(200).len(), 1, "the trunk's BYE was answered");
    d.stop().await;
}

/// TDR-INV-01..05, TDR-MED-01/02/04, TDR-HDR-01/03, TDR-XFR-01 on the INVITE toward Teams.
fn assert_teams_invite_shape(invite: &str, proxy_host: &str) {
    assert_eq!(
        first_line(invite),
        format!("INVITE sip:+15550100@{proxy_host}:5061;user=phone;transport=tls SIP/2.0"),
        "Request-URI (TDR-INV-01)"
    );
    let from = header(invite, "From");
    assert!(
        from.contains("<sip:+15550199@"),
        "From user +E.164 (TDR-INV-02): {from}"
    );
    let contact = header(invite, "Contact");
    assert!(
        contact.starts_with(&format!("<sip:+15550199@{TENANT1}:"))
            && contact.ends_with(";transport=tls>"),
        "Contact with the tenant FQDN (TDR-INV-03): {contact}"
    );
    assert!(
        headers(invite, "Record-Route").is_empty(),
        "Record-Route (TDR-INV-04):\n{invite}"
    );
    let m = sdp_line(invite, "m=audio").expect("an SDP offer (TDR-INV-05)");
    assert!(m.contains(" RTP/SAVP "), "TDR-MED-01: {m}");
    let crypto = sdp_line(invite, "a=crypto:").expect("a=crypto (TDR-MED-02)");
    assert!(
        crypto.contains("AES_CM_128_HMAC_SHA1_80 inline:"),
        "{crypto}"
    );
    assert!(
        sdp_line(invite, "a=rtcp-mux").is_some(),
        "a=rtcp-mux (TDR-MED-04)"
    );
    assert!(
        header(invite, "X-MS-SBC").starts_with("drawbridge"),
        "X-MS-SBC (TDR-HDR-01)"
    );
    let allow = header(invite, "Allow");
    assert!(
        allow.contains("REFER") && allow.contains("NOTIFY"),
        "Allow (TDR-XFR-01, TDR-HDR-03): {allow}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_to_teams_invite_has_the_teams_shape_and_the_trunk_gets_plain_rtp() {
    let lab = Lab::new();
    let proxy = lab.teams_proxy("teams");
    // Two SIPp calls: the OPTIONS ping, then the INVITE.
    let uas = proxy.uas("uas", "teams_proxy_uas_call.xml", 2, &[]);
    peers::wait_tcp_listening(
        &format!("127.0.0.1:{}", proxy.sipp_port),
        std::time::Duration::from_secs(10),
    );
    let trunk = lab.trunk("trunk");
    let d = lab
        .one_tenant(trunk.port, &[(PROXY1, proxy.tls_addr())])
        .await;
    let uac = trunk.uac(
        "uac",
        "trunk_uac_call.xml",
        &trunk_addr(&d),
        &[("ruri_host", TENANT1)],
    );
    expect_success(uac, &trunk.dir, "uac").await;
    expect_success(uas, &proxy.dir, "uas").await;

    let t = proxy.trace("uas");
    let invite = t.request("INVITE");
    assert_teams_invite_shape(invite, PROXY1);
    let c = trunk.trace("uac");
    assert_ne!(
        header(invite, "Call-ID"),
        header(&c.sent[0], "Call-ID"),
        "Call-ID reused"
    );
    assert!(
        !invite.contains("CC agent@") && !body(invite).contains("49180"),
        "trunk media leaked:\n{invite}"
    );
    let ok = c.response(200);
    assert!(
        sdp_line(ok, "m=audio").unwrap().contains(" RTP/AVP "),
        "{ok}"
    );
    assert!(
        sdp_line(ok, "a=crypto").is_none(),
        "SRTP key leaked to the trunk:\n{ok}"
    );
    assert!(
        !ok.contains("pstnhub"),
        "Teams topology leaked to the trunk:\n{ok}"
    );
    assert_eq!(t.requests("ACK").len(), 1, "ACK not relayed to Teams");
    assert_eq!(t.requests("BYE").len(), 1, "BYE not relayed to Teams");
    d.stop().await;
}
