//! The config file's shape. Units are in key names (`t1_ms`, `options_interval_s`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

use super::policy::{NumberRewriteConfig, TrunkHeaders};

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub sbc: SbcSection,
    pub listen: ListenSection,
    pub tls: TlsSection,
    #[serde(default)]
    pub sip: SipSection,
    pub teams: TeamsSection,
    #[serde(default, rename = "tenant")]
    pub tenants: Vec<TenantConfig>,
    #[serde(default, rename = "trunk")]
    pub trunks: Vec<TrunkConfig>,
    #[serde(default)]
    pub media: crate::media::MediaConfig,
    #[serde(default)]
    pub dns: DnsSection,
    #[serde(default)]
    pub cdr: CdrConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SbcSection {
    /// The carrier's base FQDN (the carrier trunk in Teams); tenants are one-label subdomains.
    pub base_domain: String,
    /// Value of X-MS-SBC toward Teams (TDR-HDR-01) and the product token in User-Agent/Server.
    #[serde(default = "default_product")]
    pub product: String,
}

fn default_product() -> String {
    format!("drawbridge/drawbridge/{}", env!("CARGO_PKG_VERSION"))
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenSection {
    /// Teams-side SIP over mutual TLS (TDR-SIG-03: Teams connects to this port).
    pub teams_tls: SocketAddr,
    /// Port written in Contact/Via toward Teams when the SBC is reached through NAT or a port
    /// mapping; defaults to the port of `teams_tls`.
    #[serde(default)]
    pub teams_advertised_port: Option<u16>,
    #[serde(default)]
    pub trunk_udp: Option<SocketAddr>,
    #[serde(default)]
    pub trunk_tcp: Option<SocketAddr>,
    #[serde(default)]
    pub trunk_tls: Option<SocketAddr>,
    /// Host written in Via/Contact toward trunks; defaults to the listening IP.
    #[serde(default)]
    pub trunk_advertised_host: Option<String>,
    /// Prometheus `/metrics` and `/healthz`.
    pub metrics: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM chain: leaf first, then intermediates (TDR-SIG-04: Teams needs the full chain).
    pub cert: PathBuf,
    pub key: PathBuf,
    /// PEM roots that the Teams proxies' certificates must chain to (TDR-SIG-05).
    pub ca: PathBuf,
    /// Names a Teams peer certificate must carry (SAN dNSName, or CN without SANs).
    pub peer_names: Vec<String>,
    /// Allow TLS 1.3 on the Teams side as well as 1.2 (TDR-SIG-02 requires 1.2 to work).
    #[serde(default = "yes")]
    pub teams_tls13: bool,
    #[serde(default = "default_handshake_timeout_ms")]
    pub handshake_timeout_ms: u64,
}

fn yes() -> bool {
    true
}
fn default_handshake_timeout_ms() -> u64 {
    5_000
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipSection {
    /// Largest SIP message accepted on any transport (TDR-SIG-12: Teams sends > 1,500 bytes).
    pub max_message_bytes: usize,
    /// A TCP/TLS connection with no traffic for this long is closed.
    pub idle_timeout_s: u64,
    pub max_connections: usize,
    /// Live SIP transactions at most; past it new requests get 503 (bounded memory).
    pub max_transactions: usize,
    pub connect_timeout_ms: u64,
    /// RFC 3261 timer values (Kamailio tm defaults).
    pub t1_ms: u64,
    pub t2_ms: u64,
    pub t4_ms: u64,
    /// On SIGTERM, how long calls in progress may go on while new ones get 503 (TDR-MON-04);
    /// the SBC stops when the last one ends. 0 stops at once.
    pub drain_timeout_s: u64,
    /// RFC 3261 Timer C: an INVITE of ours (a call's, or a transfer's) with no final answer
    /// this long after it went out or after its last provisional is CANCELled; the caller
    /// gets 480, a transfer's referrer a NOTIFY with 480. 0: no limit (the caller decides).
    pub ring_timeout_s: u64,
}

impl SipSection {
    /// The transaction timers. RFC 6026's Accepted state is always on: it is what absorbs
    /// INVITE retransmissions after a 2xx.
    pub fn timer_config(&self) -> crate::sip::transaction::TimerConfig {
        crate::sip::transaction::TimerConfig {
            t1_ms: self.t1_ms,
            t2_ms: self.t2_ms,
            t4_ms: self.t4_ms,
            rfc6026_accepted: true,
        }
    }
}

impl Default for SipSection {
    fn default() -> Self {
        SipSection {
            max_message_bytes: 64 * 1024,
            idle_timeout_s: 600,
            max_connections: 4096,
            max_transactions: 200_000,
            connect_timeout_ms: 3_000,
            t1_ms: 500,
            t2_ms: 4_000,
            t4_ms: 5_000,
            drain_timeout_s: 60,
            ring_timeout_s: 180,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsSection {
    /// Seconds between OPTIONS to each proxy (TDR-OPT-02: 60 to 180).
    #[serde(default = "default_options_interval_s")]
    pub options_interval_s: u64,
    /// A ping without a final answer after this long marks the proxy down.
    #[serde(default = "default_options_timeout_ms")]
    pub options_timeout_ms: u64,
    /// Microsoft SIP proxies in failover order (TDR-SIG-07: sip, sip2, sip3).
    #[serde(rename = "proxy")]
    pub proxies: Vec<ProxyConfig>,
    /// How long a call toward Teams waits for any answer (even 100 Trying) from a proxy
    /// before it is tried at the next one.
    #[serde(default = "default_failover_timeout_ms")]
    pub failover_timeout_ms: u64,
    /// Source networks whose TCP connections the Teams listener accepts (TDR-SIG-08); any
    /// other source is closed before the TLS handshake. Default: Microsoft's commercial
    /// ranges, 52.112.0.0/14 and 52.120.0.0/14 (GCC High 52.127.88.0/21, DoD 52.127.64.0/21).
    #[serde(default = "default_teams_allow")]
    pub allow: Vec<IpNet>,
}

/// TDR-SIG-08: the signaling ranges of Microsoft 365 commercial.
fn default_teams_allow() -> Vec<IpNet> {
    [
        IpNet::V4(ipnet::Ipv4Net::new_assert(
            std::net::Ipv4Addr::new(52, 112, 0, 0),
            14,
        )),
        IpNet::V4(ipnet::Ipv4Net::new_assert(
            std::net::Ipv4Addr::new(52, 120, 0, 0),
            14,
        )),
    ]
    .to_vec()
}

fn default_failover_timeout_ms() -> u64 {
    2000
}

fn default_options_interval_s() -> u64 {
    60
}
fn default_options_timeout_ms() -> u64 {
    5_000
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    pub host: String,
    #[serde(default = "default_tls_port")]
    pub port: u16,
    /// Fixed address: skips DNS (labs and tests). Production leaves it out (TDR-SIG-07).
    #[serde(default)]
    pub address: Option<SocketAddr>,
}

fn default_tls_port() -> u16 {
    5061
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// The tenant's own FQDN, one label under `sbc.base_domain` (TDR-MT-01, TDR-MT-02).
    pub fqdn: String,
    /// Name of the `[[trunk]]` this tenant's calls go to.
    pub trunk: String,
    /// Concurrent calls admitted for this tenant.
    #[serde(default = "default_max_calls")]
    pub max_calls: u32,
    /// New calls per second admitted for this tenant (0 = no limit).
    #[serde(default)]
    pub calls_per_second: u32,
    /// A tenant configured in Teams as a gateway of its own (legacy, not a derived trunk): it
    /// gets OPTIONS pings with its own FQDN in Contact (TDR-OPT-01 vs TDR-OPT-08).
    #[serde(default)]
    pub own_teams_trunk: bool,
}

fn default_max_calls() -> u32 {
    100
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    pub name: String,
    /// Where calls for this trunk go, e.g. `sip:10.0.0.5:5060;transport=udp`.
    pub uri: String,
    /// Source networks that may send requests as this trunk (the trunk-side ACL).
    pub allow: Vec<IpNet>,
    /// What happens to the identity and call-history headers crossing to or from this trunk.
    #[serde(default)]
    pub headers: TrunkHeaders,
    /// Rules rewriting the user part of Request-URI, From and To (E.164 normalisation).
    #[serde(default)]
    pub number_rewrite: Vec<NumberRewriteConfig>,
    /// When `uri`'s host resolves to several targets (DNS SRV, RFC 3263): how long a call
    /// waits for any answer (even 100 Trying) from one before its INVITE goes to the next.
    /// A 503, a timeout or a failed connection moves on at once.
    #[serde(default = "default_trunk_failover_timeout_ms")]
    pub failover_timeout_ms: u64,
    /// Seconds between OPTIONS pings to each of the trunk's targets; 0 (the default) pings
    /// none. A trunk whose every target fails its ping is down: calls for it get 503 at once.
    #[serde(default)]
    pub options_interval_s: u64,
    /// Q.850 causes from Teams rewritten (or dropped) toward this trunk (TDR-INV-07).
    #[serde(default)]
    pub q850_rewrite: Vec<super::Q850Rewrite>,
    /// New calls per second admitted from or to this trunk (0 = no limit).
    #[serde(default)]
    pub calls_per_second: u32,
    /// Codecs offered on calls with this trunk, in order (TDR-MED-05); telephone-event and
    /// CN are always kept. Empty keeps what the other side offered.
    #[serde(default = "default_trunk_codecs")]
    pub codecs: Vec<String>,
    /// SIP digest authentication (RFC 3261 §22) this trunk must pass on every new call, on top
    /// of its `allow` list: an INVITE without good credentials gets 407.
    #[serde(default)]
    pub auth: Option<TrunkAuth>,
}

/// A trunk's digest credentials. Debug never prints the password.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkAuth {
    pub username: String,
    pub password: String,
    /// The realm of the challenge. Default: `sbc.base_domain`.
    #[serde(default)]
    pub realm: Option<String>,
}

impl std::fmt::Debug for TrunkAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrunkAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("realm", &self.realm)
            .finish()
    }
}

fn default_trunk_failover_timeout_ms() -> u64 {
    2000
}

fn default_trunk_codecs() -> Vec<String> {
    vec!["PCMU".into(), "PCMA".into(), "G722".into(), "G729".into()]
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSection {
    /// Name servers to ask instead of /etc/resolv.conf.
    #[serde(default)]
    pub nameservers: Vec<SocketAddr>,
}

/// Call detail records: one JSON line per call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdrConfig {
    /// File the records are appended to; absent: no records are written.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// How calling and called numbers appear in the records.
    #[serde(default)]
    pub numbers: NumberPolicy,
}

/// How much of a calling or called number a call record keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NumberPolicy {
    /// The number as signaled.
    #[default]
    Full,
    /// First four and last two digits; the rest replaced by `*`.
    Masked,
    /// No number at all.
    Omit,
}

impl Config {
    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        let cdr = self.cdr.path.as_mut();
        for p in [&mut self.tls.cert, &mut self.tls.key, &mut self.tls.ca]
            .into_iter()
            .chain(cdr)
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// Port advertised toward Teams in Contact and Via.
    pub fn teams_port(&self) -> u16 {
        self.listen
            .teams_advertised_port
            .unwrap_or(self.listen.teams_tls.port())
    }

    /// Finds a trunk by name.
    pub fn trunk(&self, name: &str) -> Option<&TrunkConfig> {
        self.trunks.iter().find(|t| t.name == name)
    }

    /// The sections a reload cannot change in a running daemon, where `new` differs: the
    /// listeners, certificates, SIP limits and timers, Teams proxies, media ports, DNS and the
    /// CDR file are set up at start. `[[tenant]]` and `[[trunk]]` are what a reload changes.
    pub fn fixed_sections_changed(&self, new: &Config) -> Vec<&'static str> {
        let mut changed = Vec::new();
        let mut check = |differs: bool, name: &'static str| {
            if differs {
                changed.push(name);
            }
        };
        check(self.sbc != new.sbc, "sbc");
        check(self.listen != new.listen, "listen");
        check(self.tls != new.tls, "tls");
        check(self.sip != new.sip, "sip");
        check(self.teams != new.teams, "teams");
        check(self.media != new.media, "media");
        check(self.dns != new.dns, "dns");
        check(self.cdr != new.cdr, "cdr");
        changed
    }
}
