//! Calls through the SBC with real peers (issue "Calls"). "Teams" is SIPp over TCP behind
//! stunnel (mutual TLS both ways, SIPp here has no TLS of its own); contact-center trunks are
//! SIPp over UDP. The daemon runs in-process on loopback; every port is a free one; every
//! peer is bounded by SIPp's -timeout and `wait_exit`.
// External peers run on the wall clock, not tokio's: the failover timing reads the real time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;
#[path = "support/dnsmasq.rs"]
mod dnsmasq;

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

    /// A "Teams proxy" whose SIPp answers the OPTIONS ping and then one call, listening.
    fn teams_proxy_answering_a_call(&self, name: &str) -> (TeamsTls, peers::Proc) {
        self.teams_proxy_answering(name, "teams_proxy_uas_call.xml")
    }

    /// The same with scenario `sf` for the call.
    fn teams_proxy_answering(&self, name: &str, sf: &str) -> (TeamsTls, peers::Proc) {
        let proxy = self.teams_proxy(name);
        let uas = proxy.uas("uas", sf, 2, &[]);
        peers::wait_tcp_listening(
            &format!("127.0.0.1:{}", proxy.sipp_port),
            std::time::Duration::from_secs(10),
        );
        (proxy, uas)
    }

    /// One tenant on trunk `cc1`, reached at `trunk_port`, and these Teams proxies.
    async fn one_tenant(&self, trunk_port: u16, proxies: &[(&str, String)]) -> Daemon {
        self.one_tenant_with(trunk_port, proxies, "").await
    }

    /// The same with `trunk_extra` (tables of the trunk, e.g. `[trunk.auth]`) after it.
    async fn one_tenant_with(
        &self,
        trunk_port: u16,
        proxies: &[(&str, String)],
        trunk_extra: &str,
    ) -> Daemon {
        // The trunk is the last table of the config: its own keys and tables go right after.
        let text = self.one_tenant_config(trunk_port, proxies) + trunk_extra;
        Daemon::start(&text).await
    }

    /// The config text of `one_tenant`, for a daemon started otherwise.
    fn one_tenant_config(&self, trunk_port: u16, proxies: &[(&str, String)]) -> String {
        self.config(
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
        )
    }
}

/// Waits for the call `trunk`'s SIPp "uas" answers to be up: its ACK is in the trace.
async fn answered_at(trunk: &TrunkPeer) {
    let trace = trunk.dir.join("uas-messages.log");
    wait_for(
        "the first call answered (ACK at the trunk)",
        CALL_WAIT,
        || {
            let t = std::fs::read_to_string(&trace).unwrap_or_default();
            t.contains("\nACK sip:").then_some(())
        },
    )
    .await;
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
    // Our Via names the tenant FQDN over TLS, so Teams' 200 finds its way back.
    let via = header(bye, "Via");
    assert!(
        via.starts_with(&format!("SIP/2.0/TLS {TENANT1}:")),
        "Via of the BYE toward Teams: {via}"
    );
    let c = trunk.trace("uas");
    assert_eq!(c.responses(200).len(), 1, "the trunk's BYE was answered");
    d.stop().await;
}

/// TDR-XFR-04: the contact center's agent transfers the Teams caller with REFER. The SBC
/// completes it locally: 202 and NOTIFYs to the agent, a new INVITE to the target through the
/// trunk, and the caller moves to the target without Teams being asked anything (the Teams
/// SIPp fails on any request it does not expect). Teams' BYE then reaches the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_refer_moves_the_teams_caller_to_the_target_tdr_xfr_04() {
    let lab = Lab::new();
    let trunk = lab.trunk("trunk");
    let d = lab.one_tenant(trunk.port, &[no_proxy()]).await;
    // Two calls for SIPp: the agent's, then the transfer target's.
    let uas = trunk.uas(
        "uas",
        "trunk_uas_refers.xml",
        &[
            "-m",
            "2",
            "-key",
            "rtp_port",
            "49180",
            "-key",
            "rtp_port2",
            "49190",
        ],
    );
    let teams = lab.teams("teams", &d);
    let uac = teams.uac(
        "uac",
        "teams_uac_call.xml",
        &[("tenant_fqdn", TENANT1)],
        &["-d", "3000"],
    );
    expect_success(uac, &teams.dir, "uac").await;
    expect_success(uas, &trunk.dir, "uas").await;

    let c = trunk.trace("uas");
    let invites = c.requests("INVITE");
    assert_eq!(invites.len(), 2, "the call, then the transfer:\n{}", c.raw);
    let (first, transfer) = (invites[0], invites[1]);
    assert!(
        first_line(transfer).starts_with("INVITE sip:+15550142@127.0.0.1:"),
        "{transfer}"
    );
    assert_ne!(header(first, "Call-ID"), header(transfer, "Call-ID"));
    assert_eq!(
        header(transfer, "From").split(";tag=").next(),
        header(first, "From").split(";tag=").next(),
        "the target sees the caller as the agent did"
    );
    assert!(header(transfer, "Referred-By").starts_with("<sip:agent7@"));
    // Topology hiding holds for the new leg too.
    let t = teams.trace("uac");
    assert_ne!(header(transfer, "Call-ID"), header(&t.sent[0], "Call-ID"));
    for needle in ["pstnhub", TENANT1, "TLS", "Microsoft", TEAMS_KEY] {
        assert!(
            !transfer.contains(needle),
            "{needle:?} leaked to the trunk:\n{transfer}"
        );
    }
    // The same media address toward the trunk for the target as for the agent (TDR-MED-08).
    let m = |inv: &str| {
        inv.lines()
            .find(|l| l.starts_with("m=audio"))
            .map(str::to_owned)
    };
    assert_eq!(m(first), m(transfer));
    // The caller's BYE went to the target (call 2), not the agent, who had hung up.
    let byes = c.requests("BYE");
    assert_eq!(byes.len(), 1, "{byes:?}");
    assert_eq!(header(byes[0], "Call-ID"), header(transfer, "Call-ID"));
    assert_eq!(t.requests("INVITE").len(), 0, "no re-INVITE toward Teams");
    // Counted for the tenant (only this test completes a trunk's transfer).
    let completed = metric(
        &d.metrics(),
        "drawbridge_transfers_total",
        &[
            ("tenant", TENANT1),
            ("requested_by", "trunk"),
            ("outcome", "completed"),
        ],
    );
    assert!(completed >= 1.0, "transfer not counted: {completed}");
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

/// A trunk with `auth`: SIPp's first INVITE gets 407, SIPp answers the digest challenge itself
/// and that INVITE reaches Teams, without the credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_with_digest_auth_answers_the_407_and_its_call_reaches_teams() {
    let lab = Lab::new();
    let (proxy, uas) = lab.teams_proxy_answering_a_call("teams");
    let trunk = lab.trunk("trunk");
    let d = lab
        .one_tenant_with(
            trunk.port,
            &[(PROXY1, proxy.tls_addr())],
            "[trunk.auth]\nusername = \"cc1\"\npassword = \"s3cret\"\n",
        )
        .await;
    let uac = trunk.uac(
        "uac",
        "trunk_uac_auth.xml",
        &trunk_addr(&d),
        &[("ruri_host", TENANT1)],
    );
    expect_success(uac, &trunk.dir, "uac").await;
    expect_success(uas, &proxy.dir, "uas").await;

    let c = trunk.trace("uac");
    let challenge = header(c.response(407), "Proxy-Authenticate");
    assert!(
        challenge.starts_with("Digest realm=\"sbc.example.test\"")
            && challenge.contains("qop=\"auth\""),
        "{challenge}"
    );
    let t = proxy.trace("uas");
    let invite = t.request("INVITE");
    assert_teams_invite_shape(invite, PROXY1);
    assert!(
        !invite.contains("Authorization") && !invite.contains("cc1\""),
        "credentials crossed to Teams:\n{invite}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_to_teams_invite_has_the_teams_shape_and_the_trunk_gets_plain_rtp() {
    let lab = Lab::new();
    let (proxy, uas) = lab.teams_proxy_answering_a_call("teams");
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

/// Two tenants, each with its own trunk, and nowhere for Teams-bound calls to go.
async fn two_tenant_daemon(lab: &Lab, port1: u16, port2: u16, max_calls: u32) -> Daemon {
    let text = lab.config(
        &[
            Tenant {
                fqdn: TENANT1,
                trunk: "cc1",
                max_calls,
            },
            Tenant {
                fqdn: TENANT2,
                trunk: "cc2",
                max_calls,
            },
        ],
        &[
            Trunk {
                name: "cc1",
                port: port1,
            },
            Trunk {
                name: "cc2",
                port: port2,
            },
        ],
        &[no_proxy()],
        "",
    );
    Daemon::start(&text).await
}

/// TDR-MT-05, TDR-MT-07: the same number called in two tenants at once reaches each tenant's
/// own trunk: routing is by the Request-URI's tenant FQDN, never by number alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_two_tenants_reach_each_tenants_own_trunk_tdr_mt_05_mt_07() {
    let lab = Lab::new();
    let (trunk1, trunk2) = (lab.trunk("trunk1"), lab.trunk("trunk2"));
    let d = two_tenant_daemon(&lab, trunk1.port, trunk2.port, 10).await;
    let uas1 = trunk1.uas("uas", "trunk_uas_call.xml", &[]);
    let uas2 = trunk2.uas("uas", "trunk_uas_call.xml", &[]);
    let (teams1, teams2) = (lab.teams("teams1", &d), lab.teams("teams2", &d));
    let uac1 = teams1.uac(
        "uac",
        "teams_uac_call.xml",
        &[("tenant_fqdn", TENANT1)],
        &["-d", "300"],
    );
    let uac2 = teams2.uac(
        "uac",
        "teams_uac_call.xml",
        &[("tenant_fqdn", TENANT2)],
        &["-d", "300"],
    );
    expect_success(uac1, &teams1.dir, "uac").await;
    expect_success(uac2, &teams2.dir, "uac").await;
    expect_success(uas1, &trunk1.dir, "uas").await;
    expect_success(uas2, &trunk2.dir, "uas").await;

    for (trunk, teams) in [(&trunk1, &teams1), (&trunk2, &teams2)] {
        let c = trunk.trace("uas");
        let invites = c.requests("INVITE");
        assert_eq!(
            invites.len(),
            1,
            "{:?} got {} INVITEs",
            trunk.dir,
            invites.len()
        );
        let t = teams.trace("uac");
        assert_trunk_invite_hides_teams(invites[0], header(&t.sent[0], "Call-ID"), trunk.port);
        assert!(
            !invites[0].contains(TENANT2),
            "tenant FQDN leaked:\n{}",
            invites[0]
        );
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_to_an_unknown_tenant_fqdn_is_refused_404() {
    let lab = Lab::new();
    let d = lab.one_tenant(free_udp_port(), &[no_proxy()]).await;
    let teams = lab.teams("teams", &d);
    let uac = teams.uac(
        "uac",
        "teams_uac_refused.xml",
        &[("tenant_fqdn", "nobody.sbc.example.test")],
        &[],
    );
    expect_success(uac, &teams.dir, "uac").await;
    let t = teams.trace("uac");
    assert!(
        t.responses(503).is_empty() && t.responses(403).is_empty(),
        "{}",
        t.raw
    );
    t.response(404);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_while_ringing_reaches_the_trunk_and_both_sides_end_with_487() {
    let lab = Lab::new();
    let trunk = lab.trunk("trunk");
    let d = lab.one_tenant(trunk.port, &[no_proxy()]).await;
    let uas = trunk.uas("uas", "trunk_uas_ring_cancel.xml", &[]);
    let teams = lab.teams("teams", &d);
    let uac = teams.uac(
        "uac",
        "teams_uac_cancel.xml",
        &[("tenant_fqdn", TENANT1)],
        &[],
    );
    // Teams' SIPp passes only with 200 (CANCEL) then 487; the trunk's only if the CANCEL came
    // and its 487 was ACKed.
    expect_success(uac, &teams.dir, "uac").await;
    expect_success(uas, &trunk.dir, "uas").await;

    let c = trunk.trace("uas");
    let (invite, cancel) = (c.request("INVITE"), c.request("CANCEL"));
    // RFC 3261 §9.1: the CANCEL matches the INVITE it cancels.
    assert_eq!(header(cancel, "Call-ID"), header(invite, "Call-ID"));
    assert_eq!(header(cancel, "Via"), header(invite, "Via"));
    assert_eq!(
        first_line(cancel).replacen("CANCEL", "INVITE", 1),
        first_line(invite)
    );
    // RFC 3326: the trunk learns why (`[trunk.headers] reason` passes it by default).
    assert_eq!(
        header(cancel, "Reason"),
        "SIP;cause=200;text=\"Call completed elsewhere\""
    );
    assert_eq!(c.requests("ACK").len(), 1, "487 not ACKed");
    let t = teams.trace("uac");
    assert!(
        t.responses(200)
            .iter()
            .any(|r| header(r, "CSeq") == "1 CANCEL"),
        "no 200 for the CANCEL:\n{}",
        t.raw
    );
    assert_eq!(header(t.response(487), "CSeq"), "1 INVITE");
    d.stop().await;
}

/// A contact center's trunk named by DNS (SRV, RFC 3263) with two targets: the first refuses
/// with 503, so the call goes to the second (RFC 3263 §4.3) and Teams sees one answered call.
/// A real DNS server (dnsmasq) serves the names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_target_refusing_503_passes_the_call_to_the_next_srv_target() {
    let lab = Lab::new();
    let (busy, live) = (lab.trunk("busy"), lab.trunk("live"));
    let dns = dnsmasq::Dnsmasq::start(
        "cc.test",
        &[
            format!(
                "--srv-host=_sip._udp.trunk.cc.test,a.cc.test,{},10,0",
                busy.port
            ),
            format!(
                "--srv-host=_sip._udp.trunk.cc.test,b.cc.test,{},20,0",
                live.port
            ),
            "--host-record=a.cc.test,127.0.0.1".to_owned(),
            "--host-record=b.cc.test,127.0.0.1".to_owned(),
        ],
    );
    let text = lab.one_tenant_config(busy.port, &[no_proxy()]).replace(
        &format!("uri = \"sip:127.0.0.1:{};transport=udp\"", busy.port),
        "uri = \"sip:trunk.cc.test;transport=udp\"",
    ) + &format!("[dns]\nnameservers = [\"{}\"]\n", dns.addr());
    assert!(text.contains("sip:trunk.cc.test"), "{text}");
    let d = Daemon::start(&text).await;
    let refuses = busy.uas("uas", "trunk_uas_503.xml", &[]);
    let answers = live.uas("uas", "trunk_uas_call.xml", &[]);
    let teams = lab.teams("teams", &d);
    let uac = teams.uac(
        "uac",
        "teams_uac_call.xml",
        &[("tenant_fqdn", TENANT1)],
        &["-d", "300"],
    );
    expect_success(refuses, &busy.dir, "uas").await;
    expect_success(uac, &teams.dir, "uac").await;
    expect_success(answers, &live.dir, "uas").await;

    let (first, second) = (busy.trace("uas"), live.trace("uas"));
    let (i1, i2) = (first.request("INVITE"), second.request("INVITE"));
    // One dialog toward the trunk, tried twice: same Call-ID, next CSeq, same Request-URI.
    assert_eq!(header(i1, "Call-ID"), header(i2, "Call-ID"));
    assert_eq!(header(i1, "CSeq"), "1 INVITE");
    assert_eq!(header(i2, "CSeq"), "2 INVITE");
    assert_eq!(first_line(i1), first_line(i2));
    let t = teams.trace("uac");
    assert!(
        t.responses(503).is_empty(),
        "the 503 stayed inside: {}",
        t.raw
    );
    t.response(200);
    d.stop().await;
}

/// A trunk with `options_interval_s`: up while it answers the SBC's OPTIONS, down once it
/// stops (`drawbridge_trunk_up`), and then a call from Teams for it gets 503 at once, so Teams
/// tries its next route rather than waiting on a dead peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_that_stops_answering_options_is_down_and_teams_calls_for_it_get_503_at_once() {
    let lab = Lab::new();
    let trunk = lab.trunk("trunk");
    // It answers the first ping only (-m 1), then is gone.
    let answers_once = trunk.uas("uas", "trunk_uas_options.xml", &[]);
    let d = lab
        .one_tenant_with(
            trunk.port,
            &[no_proxy()],
            "options_interval_s = 5\nfailover_timeout_ms = 500\n",
        )
        .await;
    let up = |d: &Daemon| metric(&d.metrics(), "drawbridge_trunk_up", &[("trunk", "cc1")]);
    wait_for("the trunk up", std::time::Duration::from_secs(10), || {
        (up(&d) == 1.0).then_some(())
    })
    .await;
    expect_success(answers_once, &trunk.dir, "uas").await;
    // The next round, 5 s on, finds nobody: down 0.5 s later.
    wait_for("the trunk down", std::time::Duration::from_secs(15), || {
        (up(&d) == 0.0).then_some(())
    })
    .await;

    let teams = lab.teams("teams", &d);
    let started = std::time::Instant::now();
    let uac = teams.uac(
        "uac",
        "teams_uac_refused.xml",
        &[("tenant_fqdn", TENANT1)],
        &[],
    );
    expect_success(uac, &teams.dir, "uac").await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "not refused at once"
    );
    let refusal = teams.trace("uac");
    let busy = refusal.response(503);
    assert!(first_line(busy).contains("trunk down"), "{busy}");
    assert_eq!(header(busy, "Retry-After"), "30");
    d.stop().await;
}

/// A trunk whose INVITE requires 100rel (RFC 3262) calling Teams, which sends early media: the
/// trunk's SIPp gets the 183 reliably (Require: 100rel, RSeq, with the SDP), PRACKs it and gets
/// 200 for the PRACK, then the call is answered and ends normally (TDR-INV-18).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_requiring_100rel_gets_teams_early_media_reliably_and_its_prack_answered_tdr_inv_18()
 {
    let lab = Lab::new();
    let (proxy, uas) = lab.teams_proxy_answering("teams", "teams_proxy_uas_early.xml");
    let trunk = lab.trunk("trunk");
    let d = lab
        .one_tenant(trunk.port, &[(PROXY1, proxy.tls_addr())])
        .await;
    let uac = trunk.uac(
        "uac",
        "trunk_uac_100rel.xml",
        &trunk_addr(&d),
        &[("ruri_host", TENANT1)],
    );
    // SIPp checks Require, RSeq, the SDP in the 183 and the PRACK's 200 as it goes.
    expect_success(uac, &trunk.dir, "uac").await;
    expect_success(uas, &proxy.dir, "uas").await;
    let c = trunk.trace("uac");
    let early = c.response(183);
    assert_eq!(header(early, "Require"), "100rel");
    let prack = c
        .sent
        .iter()
        .find(|m| m.starts_with("PRACK "))
        .expect("the trunk's PRACK");
    assert_eq!(
        header(prack, "RAck"),
        format!("{} 1 INVITE", header(early, "RSeq"))
    );
    // Teams never hears of it: the reliability is the trunk leg's own.
    assert!(proxy.trace("uas").requests("PRACK").is_empty());
    d.stop().await;
}

/// `[sip] ring_timeout_s` (RFC 3261 Timer C): a trunk that rings and never answers is
/// CANCELled, and Teams gets 480, not a failover code (TDR-INV-13), so it does not try the
/// call at another SBC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_ringing_past_ring_timeout_is_cancelled_and_teams_gets_480() {
    let lab = Lab::new();
    let trunk = lab.trunk("trunk");
    let d = lab
        .one_tenant_with(trunk.port, &[no_proxy()], "[sip]\nring_timeout_s = 2\n")
        .await;
    let uas = trunk.uas("uas", "trunk_uas_ring_cancel.xml", &[]);
    let teams = lab.teams("teams", &d);
    let started = std::time::Instant::now();
    let uac = teams.uac(
        "uac",
        "teams_uac_refused.xml",
        &[("tenant_fqdn", TENANT1)],
        &[],
    );
    // The trunk's SIPp passes only if the CANCEL came and its 487 was ACKed.
    expect_success(uas, &trunk.dir, "uas").await;
    expect_success(uac, &teams.dir, "uac").await;
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "given up before ring_timeout_s"
    );
    let t = teams.trace("uac");
    t.response(180);
    let refusal = t.response(480);
    assert_eq!(header(refusal, "CSeq"), "1 INVITE");
    assert!(
        t.responses(503).is_empty() && t.responses(504).is_empty(),
        "{}",
        t.raw
    );
    d.stop().await;
}

/// The c= address and m= port in an SDP body.
fn media_address(msg: &str) -> (String, String) {
    let c = sdp_line(msg, "c=").unwrap_or_else(|| panic!("no c= in:\n{msg}"));
    let m = sdp_line(msg, "m=audio").unwrap_or_else(|| panic!("no m= in:\n{msg}"));
    let port = m.split_whitespace().nth(1).unwrap_or_default();
    (c.to_owned(), port.to_owned())
}

fn direction(msg: &str) -> &str {
    ["a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"]
        .into_iter()
        .find(|d| sdp_line(msg, d).is_some())
        .unwrap_or("a=sendrecv (implicit)")
}

/// Hold and resume from Teams reach the trunk as re-INVITEs with the direction kept, plain
/// RTP and the SBC's media address unchanged (TDR-MED-08, TDR-INV-17); hold from the trunk
/// reaches Teams as a=inactive (TDR-INV-16) on the same SBC media address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_and_resume_both_ways_keep_the_media_address_tdr_med_08_inv_16() {
    let lab = Lab::new();
    let trunk = lab.trunk("trunk");
    let d = lab.one_tenant(trunk.port, &[no_proxy()]).await;
    let uas = trunk.uas("uas", "trunk_uas_hold.xml", &[]);
    let teams = lab.teams("teams", &d);
    let uac = teams.uac(
        "uac",
        "teams_uac_hold.xml",
        &[("tenant_fqdn", TENANT1)],
        &[],
    );
    expect_success(uac, &teams.dir, "uac").await;
    expect_success(uas, &trunk.dir, "uas").await;

    let c = trunk.trace("uas");
    let invites = c.requests("INVITE");
    assert_eq!(invites.len(), 3, "initial, hold, resume:\n{}", c.raw);
    let dirs: Vec<&str> = invites.iter().map(|m| direction(m)).collect();
    assert_eq!(
        dirs[1], "a=sendonly",
        "hold toward the trunk:\n{}",
        invites[1]
    );
    assert_eq!(
        dirs[2], "a=sendrecv",
        "resume toward the trunk:\n{}",
        invites[2]
    );
    for re in &invites[1..] {
        assert!(
            sdp_line(re, "m=audio").unwrap().contains(" RTP/AVP "),
            "{re}"
        );
        assert!(sdp_line(re, "a=crypto").is_none(), "{re}");
        assert_eq!(
            media_address(re),
            media_address(invites[0]),
            "TDR-MED-08: the SBC's trunk-side media address moved"
        );
    }

    let t = teams.trace("uac");
    let held = t.request("INVITE");
    assert_eq!(direction(held), "a=inactive", "TDR-INV-16:\n{held}");
    assert!(
        sdp_line(held, "m=audio").unwrap().contains(" RTP/SAVP "),
        "{held}"
    );
    assert_eq!(
        media_address(held),
        media_address(t.response(200)),
        "TDR-MED-08: the SBC's Teams-side media address moved"
    );
    assert!(sdp_line(held, "a=crypto:").is_some(), "{held}");
    d.stop().await;
}

/// A tenant at `max_calls` refuses the next call with 503 and Retry-After (so Teams retries
/// elsewhere, TDR-INV-13), and admits calls again once one ends.
/// Adding a customer needs no restart: a reload puts a new tenant and its trunk in force
/// while a call of the first tenant goes on to its normal end. A reload that changes what
/// only a restart can is refused as a whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_adds_a_tenant_and_its_trunk_while_a_call_goes_on() {
    const ADDED: &str = "added.sbc.example.test";
    let lab = Lab::new();
    let (trunk1, trunk2) = (lab.trunk("trunk1"), lab.trunk("trunk2"));
    let d = lab.one_tenant(trunk1.port, &[no_proxy()]).await;
    let server = d.server.as_ref().expect("the daemon runs");
    let before = lab.teams("before", &d);
    let unknown = before.uac(
        "uac",
        "teams_uac_refused.xml",
        &[("tenant_fqdn", ADDED)],
        &[],
    );
    expect_success(unknown, &before.dir, "uac").await;
    before.trace("uac").response(404);

    let uas1 = trunk1.uas("uas", "trunk_uas_call.xml", &[]);
    let first = lab.teams("first", &d);
    let uac1 = first.uac(
        "uac",
        "teams_uac_call.xml",
        &[("tenant_fqdn", TENANT1)],
        &["-d", "3000"],
    );
    answered_at(&trunk1).await;
    let text = lab.config(
        &[
            Tenant {
                fqdn: TENANT1,
                trunk: "cc1",
                max_calls: 10,
            },
            Tenant {
                fqdn: ADDED,
                trunk: "cc2",
                max_calls: 10,
            },
        ],
        &[
            Trunk {
                name: "cc1",
                port: trunk1.port,
            },
            Trunk {
                name: "cc2",
                port: trunk2.port,
            },
        ],
        &[no_proxy()],
        "",
    );
    let parse = |text: &str| {
        drawbridge::config::from_str(
            text,
            std::path::Path::new("test.toml"),
            std::path::Path::new("."),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    // Refused as a whole: a listener cannot move in a running daemon.
    let moved = text.replace("metrics = \"127.0.0.1:0\"", "metrics = \"127.0.0.2:0\"");
    assert_ne!(moved, text);
    let refusal = server
        .reload_config(parse(&moved))
        .await
        .expect_err("a changed [listen] is refused");
    assert!(refusal.to_string().contains("[listen]"), "{refusal}");
    server
        .reload_config(parse(&text))
        .await
        .expect("tenants and trunks reload");

    let uas2 = trunk2.uas("uas", "trunk_uas_call.xml", &[]);
    let second = lab.teams("second", &d);
    let uac2 = second.uac(
        "uac",
        "teams_uac_call.xml",
        &[("tenant_fqdn", ADDED)],
        &["-d", "300"],
    );
    expect_success(uac2, &second.dir, "uac").await;
    expect_success(uas2, &trunk2.dir, "uas").await;
    // The call across the reload ended as callers end calls: BYE from Teams, 200 back.
    expect_success(uac1, &first.dir, "uac").await;
    expect_success(uas1, &trunk1.dir, "uas").await;
    let labels = [("tenant", ADDED), ("direction", "teams_to_trunk")];
    assert_eq!(
        metric(&d.metrics(), "drawbridge_calls_answered_total", &labels),
        1.0,
        "the added tenant has its call metrics"
    );
    d.stop().await;
}

/// TDR-MON-04: draining before a stop. The call in progress goes on to its normal end, while
/// /healthz and a new call get 503 (so Teams fails over); the daemon reports itself drained
/// once that call is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_refuses_new_calls_with_503_and_lets_the_call_in_progress_end_tdr_mon_04() {
    let lab = Lab::new();
    let trunk = lab.trunk("trunk");
    let d = lab.one_tenant(trunk.port, &[no_proxy()]).await;
    let uas = trunk.uas("uas", "trunk_uas_call.xml", &[]);
    let first = lab.teams("first", &d);
    let uac = first.uac(
        "uac",
        "teams_uac_call.xml",
        &[("tenant_fqdn", TENANT1)],
        &["-d", "3000"],
    );
    answered_at(&trunk).await;
    let server = d.server.as_ref().expect("the daemon runs");
    let refused_before = metric(&d.metrics(), "drawbridge_sip_drain_rejects_total", &[]);
    server.drain();
    assert_eq!(http_get(d.addrs.metrics, "/healthz").0, 503);
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(200), server.drained())
            .await
            .is_err(),
        "drained with a call still up"
    );

    let second = lab.teams("second", &d);
    let refused = second.uac(
        "uac",
        "teams_uac_refused.xml",
        &[("tenant_fqdn", TENANT1)],
        &[],
    );
    expect_success(refused, &second.dir, "uac").await;
    second.trace("uac").response(503);
    assert_eq!(
        metric(&d.metrics(), "drawbridge_sip_drain_rejects_total", &[]),
        refused_before + 1.0
    );
    // Nothing cut the first call: both sides end it normally (BYE from Teams, 200 back).
    expect_success(uac, &first.dir, "uac").await;
    expect_success(uas, &trunk.dir, "uas").await;
    tokio::time::timeout(std::time::Duration::from_secs(5), server.drained())
        .await
        .expect("drained once the call ended");
    d.stop().await;
}

/// The built daemon with a Teams → trunk call up: its config (one tenant, the trunk SIPp,
/// `[sip] drain_timeout_s`), the daemon, the trunk SIPp and the Teams SIPp holding the call.
struct BinaryCall {
    daemon: peers::Proc,
    trunk: TrunkPeer,
    trunk_uas: peers::Proc,
    _teams: TeamsTls,
    _teams_uac: peers::Proc,
}

async fn binary_with_a_call(lab: &Lab, drain_timeout_s: u64) -> BinaryCall {
    let trunk = lab.trunk("trunk");
    let tls = free_tcp_port();
    let text = lab.one_tenant_config(trunk.port, &[no_proxy()]).replace(
        "teams_tls = \"127.0.0.1:0\"",
        &format!("teams_tls = \"127.0.0.1:{tls}\""),
    ) + &format!("[sip]\ndrain_timeout_s = {drain_timeout_s}\n");
    let file = lab.root().join("drawbridge.toml");
    std::fs::write(&file, text).unwrap();
    let log = lab.root().join("daemon.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_drawbridge"))
        .args(["run", "--config"])
        .arg(&file)
        .env("RUST_LOG", "info")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let daemon = peers::Proc {
        child,
        name: "drawbridge".to_owned(),
        log,
    };
    let addr = format!("127.0.0.1:{tls}");
    tokio::task::spawn_blocking(move || {
        peers::wait_tcp_listening(&addr, std::time::Duration::from_secs(20))
    })
    .await
    .unwrap();
    let trunk_uas = trunk.uas("uas", "trunk_uas_call.xml", &[]);
    let teams = TeamsTls::start(lab.root(), "teams", &lab.certs, Some(tls));
    // Teams would hold the call for a minute: longer than any test waits.
    let teams_uac = teams.uac(
        "uac",
        "teams_uac_call.xml",
        &[("tenant_fqdn", TENANT1)],
        &["-d", "60000"],
    );
    answered_at(&trunk).await;
    BinaryCall {
        daemon,
        trunk,
        trunk_uas,
        _teams: teams,
        _teams_uac: teams_uac,
    }
}

fn sigterm(p: &peers::Proc) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &p.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// TDR-MON-04 on the binary: SIGTERM drains, and a call still up when `[sip] drain_timeout_s`
/// runs out is ended with BYE (the trunk's SIPp passes only on a BYE); the daemon exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_ends_the_calls_left_at_the_drain_timeout_and_exits_0_tdr_mon_04() {
    let lab = Lab::new();
    let c = binary_with_a_call(&lab, 2).await;
    let asked = std::time::Instant::now();
    sigterm(&c.daemon);
    let (daemon, code) = wait_exit(c.daemon, std::time::Duration::from_secs(15)).await;
    let waited = asked.elapsed();
    let log = daemon.log_text();
    assert_eq!(code, 0, "{log}");
    assert!(
        waited >= std::time::Duration::from_secs(2),
        "stopped after {waited:?}, before the drain timeout, with a call up:\n{log}"
    );
    assert!(
        log.contains("drain timeout: the calls left are ended"),
        "{log}"
    );
    expect_success(c.trunk_uas, &c.trunk.dir, "uas").await;
}

/// A second SIGTERM while draining stops at once (an operator who means it), still ending
/// the call in progress with BYE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_while_draining_stops_the_binary_at_once_tdr_mon_04() {
    let lab = Lab::new();
    let c = binary_with_a_call(&lab, 60).await;
    sigterm(&c.daemon);
    let log_path = c.daemon.log.clone();
    wait_for(
        "the drain to start",
        std::time::Duration::from_secs(10),
        || {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            log.contains("SIGTERM: draining").then_some(())
        },
    )
    .await;
    let asked = std::time::Instant::now();
    sigterm(&c.daemon);
    let (daemon, code) = wait_exit(c.daemon, std::time::Duration::from_secs(15)).await;
    let log = daemon.log_text();
    assert_eq!(code, 0, "{log}");
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(10),
        "the second SIGTERM did not stop it at once:\n{log}"
    );
    expect_success(c.trunk_uas, &c.trunk.dir, "uas").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_at_max_calls_refuses_the_next_call_503_with_retry_after() {
    let lab = Lab::new();
    let trunk = lab.trunk("trunk");
    let d = two_tenant_daemon(&lab, trunk.port, free_udp_port(), 1).await;
    let uas = trunk.uas("uas", "trunk_uas_call.xml", &[]);
    let first = lab.teams("first", &d);
    // Held for 3 s: long enough for the second call to come while it is up.
    let uac = first.uac(
        "uac",
        "teams_uac_call.xml",
        &[("tenant_fqdn", TENANT1)],
        &["-d", "3000"],
    );
    answered_at(&trunk).await;

    let second = lab.teams("second", &d);
    let refused = second.uac(
        "uac",
        "teams_uac_refused.xml",
        &[("tenant_fqdn", TENANT1)],
        &[],
    );
    expect_success(refused, &second.dir, "uac").await;
    let r = second.trace("uac");
    let busy = r.response(503);
    let retry: u32 = header(busy, "Retry-After")
        .split(';')
        .next()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("Retry-After is not seconds:\n{busy}"));
    assert!(retry >= 1, "{busy}");
    // Only this test refuses calls of this tenant.
    let refused = metric(
        &d.metrics(),
        "drawbridge_calls_refused_total",
        &[("tenant", TENANT1), ("reason", "tenant_calls")],
    );
    assert_eq!(refused, 1.0, "the refusal is not counted");

    expect_success(uac, &first.dir, "uac").await;
    expect_success(uas, &trunk.dir, "uas").await;
    assert_eq!(
        trunk.trace("uas").requests("INVITE").len(),
        1,
        "the refused call reached the trunk"
    );

    // The slot is free again: the next call is admitted.
    let uas = trunk.uas("uas2", "trunk_uas_call.xml", &[]);
    let third = lab.teams("third", &d);
    let uac = third.uac(
        "uac",
        "teams_uac_call.xml",
        &[("tenant_fqdn", TENANT1)],
        &["-d", "100"],
    );
    expect_success(uac, &third.dir, "uac").await;
    expect_success(uas, &trunk.dir, "uas2").await;
    d.stop().await;
}

/// TDR-SIG-07 failover: the first proxy takes the TLS connection and never answers; after
/// `failover_timeout_ms` the INVITE goes to the second proxy and the call completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_to_teams_call_fails_over_to_the_next_proxy_when_the_first_is_silent() {
    let lab = Lab::new();
    let silent = SilentPeer::start();
    let p1 = TeamsTls::start_to(lab.root(), "proxy1", &lab.certs, None, silent.port);
    let (p2, uas) = lab.teams_proxy_answering_a_call("proxy2");
    let trunk = lab.trunk("trunk");
    // The silent proxy's OPTIONS stays unanswered for 30 s: it is not marked down during the
    // test, so the call tries it first and only the failover timer moves it on.
    let text = lab.config(
        &[Tenant {
            fqdn: TENANT1,
            trunk: "cc1",
            max_calls: 10,
        }],
        &[Trunk {
            name: "cc1",
            port: trunk.port,
        }],
        &[(PROXY1, p1.tls_addr()), (PROXY2, p2.tls_addr())],
        "failover_timeout_ms = 1000\noptions_timeout_ms = 30000\n",
    );
    let d = Daemon::start(&text).await;
    let started = std::time::Instant::now();
    let uac = trunk.uac(
        "uac",
        "trunk_uac_call.xml",
        &trunk_addr(&d),
        &[("ruri_host", TENANT1)],
    );
    expect_success(uac, &trunk.dir, "uac").await;
    expect_success(uas, &p2.dir, "uas").await;

    let first_try = silent.text();
    assert!(
        first_try.contains(&format!(
            "INVITE sip:+15550100@{PROXY1}:5061;user=phone;transport=tls SIP/2.0"
        )),
        "the first proxy never got the INVITE:\n{first_try}"
    );
    let t = p2.trace("uas");
    assert_teams_invite_shape(t.request("INVITE"), PROXY2);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1000),
        "the call completed before the failover timeout"
    );
    drop(p1);
    d.stop().await;
}

/// After one answered call, /metrics shows it for its tenant: one attempt, one answer, one
/// setup time, nothing active. The tenant exists only in this test, so the process-wide
/// recorder shared by the parallel tests cannot blur the counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_call_is_counted_per_tenant_in_metrics() {
    const TENANT: &str = "metrics.sbc.example.test";
    let lab = Lab::new();
    let trunk = lab.trunk("trunk");
    let text = lab.config(
        &[Tenant {
            fqdn: TENANT,
            trunk: "cc1",
            max_calls: 10,
        }],
        &[Trunk {
            name: "cc1",
            port: trunk.port,
        }],
        &[no_proxy()],
        "",
    );
    let d = Daemon::start(&text).await;
    let uas = trunk.uas("uas", "trunk_uas_call.xml", &[]);
    let teams = lab.teams("teams", &d);
    let uac = teams.uac(
        "uac",
        "teams_uac_call.xml",
        &[("tenant_fqdn", TENANT)],
        &["-d", "100"],
    );
    expect_success(uac, &teams.dir, "uac").await;
    expect_success(uas, &trunk.dir, "uas").await;

    let labels = [("tenant", TENANT), ("direction", "teams_to_trunk")];
    // The BYE's 200 reached Teams before the SBC's bookkeeping may have run: wait for it.
    wait_for(
        "the call ended in /metrics",
        std::time::Duration::from_secs(5),
        || (metric(&d.metrics(), "drawbridge_calls_active", &labels) == 0.0).then_some(()),
    )
    .await;
    let m = d.metrics();
    assert_eq!(
        metric(&m, "drawbridge_call_attempts_total", &labels),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "drawbridge_calls_answered_total", &labels),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "drawbridge_call_setup_seconds_count", &labels),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "drawbridge_calls_failed_total", &labels),
        0.0,
        "{m}"
    );
    d.stop().await;
}
