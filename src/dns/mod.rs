//! RFC 3263 ("Locating SIP Servers") over hickory-resolver.
//!
//! hickory answers single queries and caches them by TTL; the SIP procedure on
//! top (NAPTR -> SRV -> A/AAAA, transport choice, RFC 2782 ordering) is here.
//! The result is the ordered list of addresses a client tries for failover.

mod naptr;
mod srv;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts,
};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::ProtoError;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tracing::debug;

use naptr::NaptrEntry;
use srv::SrvEntry;

/// TDR-SIG-07: the SBC must re-resolve Microsoft's FQDNs at least every 15
/// minutes, so no positive answer is cached longer than this, whatever its TTL.
pub const MAX_POSITIVE_TTL: Duration = Duration::from_secs(900);

/// Upper bound for caching NXDOMAIN/NODATA, so a fixed DNS entry is seen soon.
pub const MAX_NEGATIVE_TTL: Duration = Duration::from_secs(60);

/// SIP transports the SBC speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SipTransport {
    Udp,
    Tcp,
    Tls,
}

impl SipTransport {
    /// RFC 3261 §19.1.2: 5060 for UDP/TCP, 5061 for TLS.
    pub fn default_port(self) -> u16 {
        match self {
            SipTransport::Udp | SipTransport::Tcp => 5060,
            SipTransport::Tls => 5061,
        }
    }

    /// Lower-case name as used in Via and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            SipTransport::Udp => "udp",
            SipTransport::Tcp => "tcp",
            SipTransport::Tls => "tls",
        }
    }

    /// RFC 3263 §4.1 SRV owner-name prefix for this transport.
    fn srv_prefix(self) -> &'static str {
        match self {
            SipTransport::Udp => "_sip._udp.",
            SipTransport::Tcp => "_sip._tcp.",
            SipTransport::Tls => "_sips._tcp.",
        }
    }
}

impl fmt::Display for SipTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a SIP URI says about where to send: host, optional port and
/// `transport` parameter, and whether it is a `sips:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipTarget {
    /// Domain name or IP literal (IPv6 with or without brackets).
    pub host: String,
    pub port: Option<u16>,
    pub transport: Option<SipTransport>,
    /// `sips:` URI: only TLS is acceptable.
    pub secure: bool,
}

/// One address to try, in failover order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTarget {
    pub addr: SocketAddr,
    pub transport: SipTransport,
    /// Name the TLS peer certificate must match and the SNI to send: the host
    /// of the URI, not the SRV target (RFC 5922 §4.1).
    pub host: String,
}

/// Why resolution failed; each variant names the DNS name involved.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("reading the system DNS configuration (/etc/resolv.conf): {source}")]
    SystemConfig { source: NetError },
    #[error("no DNS nameservers configured")]
    NoNameservers,
    #[error("building the DNS resolver: {source}")]
    Build { source: NetError },
    #[error("{name}: not a valid DNS name: {source}")]
    InvalidName { name: String, source: ProtoError },
    #[error("{name}: no such domain (NXDOMAIN) for {record_type} query")]
    NxDomain {
        name: String,
        record_type: RecordType,
    },
    #[error("{name}: {record_type} lookup failed: {source}")]
    Lookup {
        name: String,
        record_type: RecordType,
        source: NetError,
    },
    #[error("{name}: no A or AAAA records")]
    NoAddresses { name: String },
    #[error("{host}: a sips: URI cannot use UDP (RFC 3261 §26.2)")]
    SipsOverUdp { host: String },
}

/// RFC 3263 resolver: cheap to clone, shares the cache and the RNG.
#[derive(Clone)]
pub struct SipResolver {
    inner: TokioResolver,
    /// RFC 2782 weighted choice. Seeded from the OS unless a test injects a seed.
    rng: Arc<Mutex<StdRng>>,
}

impl fmt::Debug for SipResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SipResolver").finish_non_exhaustive()
    }
}

fn resolver_opts(mut opts: ResolverOpts) -> ResolverOpts {
    opts.positive_max_ttl = Some(MAX_POSITIVE_TTL);
    opts.negative_max_ttl = Some(MAX_NEGATIVE_TTL);
    // A before AAAA: a host without IPv6 reachability would otherwise spend a
    // connect timeout on every AAAA first. Both families stay in the list.
    opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    opts
}

impl SipResolver {
    /// Nameservers and options from /etc/resolv.conf, with our TTL caps.
    pub fn from_system() -> Result<Self, DnsError> {
        let mut builder =
            TokioResolver::builder_tokio().map_err(|source| DnsError::SystemConfig { source })?;
        let opts = resolver_opts(builder.options_mut().clone());
        let inner = builder
            .with_options(opts)
            .build()
            .map_err(|source| DnsError::Build { source })?;
        Ok(Self::from_inner(inner))
    }

    /// Query exactly these servers (UDP, falling back to TCP on truncation).
    pub fn with_nameservers(servers: &[SocketAddr]) -> Result<Self, DnsError> {
        if servers.is_empty() {
            return Err(DnsError::NoNameservers);
        }
        let name_servers = servers
            .iter()
            .map(|s| {
                let mut udp = ConnectionConfig::udp();
                udp.port = s.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = s.port();
                NameServerConfig::new(s.ip(), true, vec![udp, tcp])
            })
            .collect();
        let config = ResolverConfig::from_name_servers(name_servers);
        let inner = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(resolver_opts(ResolverOpts::default()))
            .build()
            .map_err(|source| DnsError::Build { source })?;
        Ok(Self::from_inner(inner))
    }

    /// Makes the RFC 2782 weighted order reproducible (tests).
    pub fn with_rng_seed(mut self, seed: u64) -> Self {
        self.rng = Arc::new(Mutex::new(StdRng::seed_from_u64(seed)));
        self
    }

    fn from_inner(inner: TokioResolver) -> Self {
        Self {
            inner,
            rng: Arc::new(Mutex::new(StdRng::from_os_rng())),
        }
    }

    /// Cache ceiling configured in hickory (TDR-SIG-07).
    pub fn positive_max_ttl(&self) -> Option<Duration> {
        self.inner.options().positive_max_ttl
    }

    /// RFC 3263 §4: the addresses to try for `target`, best first.
    pub async fn resolve(&self, target: &SipTarget) -> Result<Vec<ResolvedTarget>, DnsError> {
        let host = target
            .host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&target.host);
        let fixed_transport = chosen_transport(target, host)?;

        // §4.1/§4.2: a numeric IP needs no DNS at all.
        if let Ok(ip) = host.parse::<IpAddr>() {
            let transport = fixed_transport.unwrap_or(default_transport(target.secure));
            let port = target.port.unwrap_or(transport.default_port());
            return Ok(vec![ResolvedTarget {
                addr: SocketAddr::new(ip, port),
                transport,
                host: host.to_owned(),
            }]);
        }

        let name = fqdn(host)?;

        // §4.2: "If the TARGET was not a numeric IP address, but a port is
        // present in the URI, the client performs an A or AAAA record lookup".
        if let Some(port) = target.port {
            let transport = fixed_transport.unwrap_or(default_transport(target.secure));
            return self.addresses(&name, port, transport, host).await;
        }

        // §4.1: a transport parameter skips NAPTR; §4.2 then does SRV for it.
        if let Some(transport) = fixed_transport {
            let srv_name = srv_owner(transport, &name)?;
            let found = self.srv_targets(&srv_name, transport, host).await?;
            if !found.is_empty() {
                return Ok(found);
            }
            return self
                .addresses(&name, transport.default_port(), transport, host)
                .await;
        }

        let mut found = Vec::new();
        for (transport, replacement) in self.naptr_services(&name, target.secure).await? {
            let srv_name = parse_name(&replacement)?;
            found.extend(self.srv_targets(&srv_name, transport, host).await?);
        }

        // §4.1: "If no NAPTR records are found, the client constructs SRV
        // queries for those transport protocols it supports".
        if found.is_empty() {
            let candidates: &[SipTransport] = if target.secure {
                &[SipTransport::Tls]
            } else {
                &[SipTransport::Tls, SipTransport::Tcp, SipTransport::Udp]
            };
            for &transport in candidates {
                let srv_name = srv_owner(transport, &name)?;
                found.extend(self.srv_targets(&srv_name, transport, host).await?);
            }
        }

        // §4.2: no SRV either: A/AAAA on the domain with the default port; §4.1
        // picks TLS for sips: and UDP for sip:.
        if found.is_empty() {
            let transport = default_transport(target.secure);
            return self
                .addresses(&name, transport.default_port(), transport, host)
                .await;
        }
        dedup(&mut found);
        Ok(found)
    }

    /// NAPTR records usable for SIP, best first; an NXDOMAIN ends resolution
    /// since a name that does not exist has no SRV or address records either.
    async fn naptr_services(
        &self,
        name: &Name,
        secure: bool,
    ) -> Result<Vec<(SipTransport, String)>, DnsError> {
        let Some(lookup) = self.lookup(name, RecordType::NAPTR).await? else {
            return Ok(Vec::new());
        };
        let records = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::NAPTR(n) => Some(NaptrEntry {
                    order: n.order,
                    preference: n.preference,
                    flags: String::from_utf8_lossy(&n.flags).into_owned(),
                    services: String::from_utf8_lossy(&n.services).into_owned(),
                    replacement: n.replacement.to_ascii(),
                }),
                _ => None,
            })
            .collect();
        Ok(naptr::sip_services(records, secure))
    }

    /// SRV lookup then addresses of each target, RFC 2782 order. An absent
    /// SRV name gives an empty list (the caller falls back), a target without
    /// addresses is skipped while others remain.
    async fn srv_targets(
        &self,
        srv_name: &Name,
        transport: SipTransport,
        tls_host: &str,
    ) -> Result<Vec<ResolvedTarget>, DnsError> {
        let lookup = match self.lookup(srv_name, RecordType::SRV).await {
            Ok(Some(lookup)) => lookup,
            Ok(None) | Err(DnsError::NxDomain { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let entries: Vec<SrvEntry> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                // RFC 2782: a target of "." means the service is not offered here.
                RData::SRV(s) if !s.target.is_root() => Some(SrvEntry {
                    priority: s.priority,
                    weight: s.weight,
                    port: s.port,
                    target: s.target.to_ascii(),
                }),
                _ => None,
            })
            .collect();
        let ordered = {
            let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
            srv::order_srv(entries, &mut *rng)
        };

        let mut found = Vec::new();
        let mut first_error = None;
        for entry in ordered {
            let target = parse_name(&entry.target)?;
            match self
                .addresses(&target, entry.port, transport, tls_host)
                .await
            {
                Ok(addrs) => found.extend(addrs),
                Err(e) => {
                    debug!(srv = %srv_name, target = %entry.target, error = %e, "SRV target skipped");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) if found.is_empty() => Err(e),
            _ => Ok(found),
        }
    }

    /// A and AAAA of `name`, A first.
    async fn addresses(
        &self,
        name: &Name,
        port: u16,
        transport: SipTransport,
        tls_host: &str,
    ) -> Result<Vec<ResolvedTarget>, DnsError> {
        let lookup = self.inner.lookup_ip(name.clone()).await.map_err(|source| {
            if source.is_nx_domain() {
                DnsError::NxDomain {
                    name: name.to_ascii(),
                    record_type: RecordType::A,
                }
            } else if source.is_no_records_found() {
                DnsError::NoAddresses {
                    name: name.to_ascii(),
                }
            } else {
                DnsError::Lookup {
                    name: name.to_ascii(),
                    record_type: RecordType::A,
                    source,
                }
            }
        })?;
        let found: Vec<ResolvedTarget> = lookup
            .iter()
            .map(|ip| ResolvedTarget {
                addr: SocketAddr::new(ip, port),
                transport,
                host: tls_host.to_owned(),
            })
            .collect();
        if found.is_empty() {
            return Err(DnsError::NoAddresses {
                name: name.to_ascii(),
            });
        }
        Ok(found)
    }

    /// One query through hickory's cache. `Ok(None)` is NODATA (the name
    /// exists, this type does not).
    async fn lookup(
        &self,
        name: &Name,
        record_type: RecordType,
    ) -> Result<Option<Lookup>, DnsError> {
        match self.inner.lookup(name.clone(), record_type).await {
            Ok(lookup) => Ok(Some(lookup)),
            Err(e) if e.is_nx_domain() => Err(DnsError::NxDomain {
                name: name.to_ascii(),
                record_type,
            }),
            Err(e) if e.is_no_records_found() => Ok(None),
            Err(source) => Err(DnsError::Lookup {
                name: name.to_ascii(),
                record_type,
                source,
            }),
        }
    }
}

/// The transport fixed by the URI, if any. A `sips:` URI means TLS whatever
/// `transport=tcp` says (RFC 3261 §26.2: TLS over TCP), and never UDP.
fn chosen_transport(target: &SipTarget, host: &str) -> Result<Option<SipTransport>, DnsError> {
    match (target.transport, target.secure) {
        (Some(SipTransport::Udp), true) => Err(DnsError::SipsOverUdp {
            host: host.to_owned(),
        }),
        (Some(_), true) => Ok(Some(SipTransport::Tls)),
        (None, true) => Ok(None),
        (t, false) => Ok(t),
    }
}

fn default_transport(secure: bool) -> SipTransport {
    if secure {
        SipTransport::Tls
    } else {
        SipTransport::Udp
    }
}

/// Parses `host` as an absolute name so resolv.conf search domains never apply.
fn fqdn(host: &str) -> Result<Name, DnsError> {
    let mut name = parse_name(host)?;
    name.set_fqdn(true);
    Ok(name)
}

fn parse_name(s: &str) -> Result<Name, DnsError> {
    Name::from_ascii(s).map_err(|source| DnsError::InvalidName {
        name: s.to_owned(),
        source,
    })
}

fn srv_owner(transport: SipTransport, domain: &Name) -> Result<Name, DnsError> {
    fqdn(&format!("{}{}", transport.srv_prefix(), domain.to_ascii()))
}

/// The same address and transport reached by two routes is tried once.
fn dedup(found: &mut Vec<ResolvedTarget>) {
    let mut seen = std::collections::HashSet::new();
    found.retain(|t| seen.insert((t.addr, t.transport)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(
        host: &str,
        port: Option<u16>,
        transport: Option<SipTransport>,
        secure: bool,
    ) -> SipTarget {
        SipTarget {
            host: host.to_owned(),
            port,
            transport,
            secure,
        }
    }

    // Port 9 on loopback: nothing answers, so any DNS query would fail.
    fn unreachable_dns() -> SipResolver {
        SipResolver::with_nameservers(&["127.0.0.1:9".parse().unwrap()]).unwrap()
    }

    #[tokio::test]
    async fn ip_literal_needs_no_dns_and_gets_default_port() {
        let r = unreachable_dns();
        let got = r
            .resolve(&target("192.0.2.7", None, None, false))
            .await
            .unwrap();
        assert_eq!(
            got,
            [ResolvedTarget {
                addr: "192.0.2.7:5060".parse().unwrap(),
                transport: SipTransport::Udp,
                host: "192.0.2.7".into()
            }]
        );
        let got = r
            .resolve(&target("[2001:db8::1]", None, None, true))
            .await
            .unwrap();
        assert_eq!(got[0].addr, "[2001:db8::1]:5061".parse().unwrap());
        assert_eq!(got[0].transport, SipTransport::Tls);
        assert_eq!(got[0].host, "2001:db8::1");
    }

    #[tokio::test]
    async fn sips_over_udp_is_refused() {
        let err = unreachable_dns()
            .resolve(&target("192.0.2.7", None, Some(SipTransport::Udp), true))
            .await
            .unwrap_err();
        assert!(matches!(err, DnsError::SipsOverUdp { .. }), "{err}");
    }

    #[tokio::test]
    async fn positive_ttls_are_capped_at_15_minutes_tdr_sig_07() {
        assert_eq!(
            unreachable_dns().positive_max_ttl(),
            Some(Duration::from_secs(900))
        );
    }

    #[test]
    fn srv_owner_names_follow_rfc_3263() {
        let d = fqdn("example.com").unwrap();
        assert_eq!(
            srv_owner(SipTransport::Tls, &d).unwrap().to_ascii(),
            "_sips._tcp.example.com."
        );
        assert_eq!(
            srv_owner(SipTransport::Udp, &d).unwrap().to_ascii(),
            "_sip._udp.example.com."
        );
    }
}
