//! Checks serde cannot express: cross-references, names under the base domain, address and
//! port conflicts, readable key material. Returns every problem, not just the first, so an
//! operator fixes a file in one pass.

use std::collections::HashSet;

use super::schema::Config;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(&'static str),
    Index(usize),
}

/// A validation problem: where (key path) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub path: Vec<Seg>,
    pub reason: String,
}

impl Issue {
    fn new(path: Vec<Seg>, reason: impl Into<String>) -> Self {
        Issue {
            path,
            reason: reason.into(),
        }
    }

    /// `tenant[3].trunk`, as the operator reads it.
    pub fn key_string(&self) -> String {
        let mut s = String::new();
        for seg in &self.path {
            match seg {
                Key(k) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(k);
                }
                Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }
}

use Seg::{Index, Key};

pub(crate) fn validate(c: &Config) -> Vec<Issue> {
    let mut out = Vec::new();
    sbc(c, &mut out);
    listen(c, &mut out);
    tls(c, &mut out);
    sip(c, &mut out);
    teams(c, &mut out);
    trunks(c, &mut out);
    tenants(c, &mut out);
    cdr(c, &mut out);
    if let Err(e) = c.media.validate() {
        use crate::media::MediaConfigError as E;
        let key = match &e {
            E::InvertedRange { .. } | E::NoPortPair { .. } | E::PrivilegedPort { .. } => "port_min",
            E::UnspecifiedPublic { key, .. } => key,
            E::NoEventCapacity => "event_capacity",
        };
        out.push(Issue::new(vec![Key("media"), Key(key)], e.to_string()));
    }
    out
}

/// RFC 1035 §2.3.1 host name, as used in a certificate and in Contact (TDR-OPT-04: an IP
/// address there gets 403 from Teams, so a name is required).
pub(crate) fn is_dns_name(s: &str) -> bool {
    if s.is_empty() || s.len() > 253 || s.parse::<std::net::IpAddr>().is_ok() {
        return false;
    }
    s.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

fn sbc(c: &Config, out: &mut Vec<Issue>) {
    if !is_dns_name(&c.sbc.base_domain) {
        out.push(Issue::new(
            vec![Key("sbc"), Key("base_domain")],
            format!(
                "{:?} is not a DNS name (Teams refuses an IP address in Contact, TDR-OPT-04)",
                c.sbc.base_domain
            ),
        ));
    }
    if c.sbc.product.is_empty() || c.sbc.product.chars().any(|ch| ch.is_control()) {
        out.push(Issue::new(
            vec![Key("sbc"), Key("product")],
            "must be a non-empty single-line token such as Vendor/Product/Version",
        ));
    }
}

fn listen(c: &Config, out: &mut Vec<Issue>) {
    let l = &c.listen;
    if l.trunk_udp.is_none() && l.trunk_tcp.is_none() && l.trunk_tls.is_none() {
        out.push(Issue::new(
            vec![Key("listen")],
            "no trunk-side listener: set at least one of trunk_udp, trunk_tcp, trunk_tls",
        ));
    }
    // TCP-based listeners share the TCP port space; two on one address cannot both bind.
    let tcp = [
        ("teams_tls", Some(l.teams_tls)),
        ("trunk_tcp", l.trunk_tcp),
        ("trunk_tls", l.trunk_tls),
        ("metrics", Some(l.metrics)),
    ];
    for (i, (name_a, a)) in tcp.iter().enumerate() {
        for (name_b, b) in tcp.iter().skip(i + 1) {
            if let (Some(a), Some(b)) = (a, b)
                && a == b
                && a.port() != 0
            {
                out.push(Issue::new(
                    vec![Key("listen"), Key(name_b)],
                    format!("{b} is already used by listen.{name_a} (both are TCP)"),
                ));
            }
        }
    }
    if let Some(h) = &l.trunk_advertised_host
        && h.parse::<std::net::IpAddr>().is_err()
        && !is_dns_name(h)
    {
        out.push(Issue::new(
            vec![Key("listen"), Key("trunk_advertised_host")],
            format!("{h:?} is neither an IP address nor a DNS name"),
        ));
    }
}

fn tls(c: &Config, out: &mut Vec<Issue>) {
    for (key, path) in [
        ("cert", &c.tls.cert),
        ("key", &c.tls.key),
        ("ca", &c.tls.ca),
    ] {
        if let Err(e) = std::fs::metadata(path) {
            out.push(Issue::new(
                vec![Key("tls"), Key(key)],
                format!("cannot read {}: {e}", path.display()),
            ));
        }
    }
    let readable = [&c.tls.cert, &c.tls.key, &c.tls.ca]
        .iter()
        .all(|p| std::fs::metadata(p).is_ok());
    if readable
        && let Err(e) = crate::sip::transport::TlsMaterial::load(
            &c.tls.cert,
            &c.tls.key,
            &c.tls.ca,
            c.tls.peer_names.clone(),
        )
    {
        use crate::sip::transport::TlsMaterialError as E;
        let key = match &e {
            E::KeyMismatch { .. } | E::NoKey { .. } | E::BadKey { .. } => "key",
            E::BadCa { .. } | E::NoCa { .. } => "ca",
            E::Unreadable { path, .. }
            | E::BadPem { path, .. }
            | E::BadCertificate { path, .. }
            | E::NoCertificate { path } => {
                if *path == c.tls.key {
                    "key"
                } else if *path == c.tls.ca {
                    "ca"
                } else {
                    "cert"
                }
            }
        };
        out.push(Issue::new(vec![Key("tls"), Key(key)], e.to_string()));
    }
    if c.tls.peer_names.is_empty() {
        out.push(Issue::new(
            vec![Key("tls"), Key("peer_names")],
            "empty: no Teams proxy could connect (list e.g. sip.pstnhub.microsoft.com)",
        ));
    }
    for (i, n) in c.tls.peer_names.iter().enumerate() {
        let bare = n.strip_prefix("*.").unwrap_or(n);
        if !is_dns_name(bare) {
            out.push(Issue::new(
                vec![Key("tls"), Key("peer_names"), Index(i)],
                format!("{n:?} is not a DNS name"),
            ));
        }
    }
    if c.tls.handshake_timeout_ms == 0 {
        out.push(Issue::new(
            vec![Key("tls"), Key("handshake_timeout_ms")],
            "must be greater than 0",
        ));
    }
}

fn sip(c: &Config, out: &mut Vec<Issue>) {
    let s = &c.sip;
    // Teams sends INVITEs well over 1,500 bytes (TDR-SIG-12); below 4 KiB real calls fail.
    if s.max_message_bytes < 4096 || s.max_message_bytes > 1024 * 1024 {
        out.push(Issue::new(
            vec![Key("sip"), Key("max_message_bytes")],
            format!("{} is outside 4096..=1048576", s.max_message_bytes),
        ));
    }
    if let Err(e) = s.timer_config().validate() {
        let key = match &e {
            crate::sip::transaction::TimerConfigError::OutOfRange { name, .. } => match *name {
                "t2_ms" => "t2_ms",
                "t4_ms" => "t4_ms",
                _ => "t1_ms",
            },
            crate::sip::transaction::TimerConfigError::T2BelowT1 { .. } => "t2_ms",
        };
        out.push(Issue::new(vec![Key("sip"), Key(key)], e.to_string()));
    }
    if s.max_transactions == 0 {
        out.push(Issue::new(
            vec![Key("sip"), Key("max_transactions")],
            "must be greater than 0",
        ));
    }
    if s.max_connections == 0 {
        out.push(Issue::new(
            vec![Key("sip"), Key("max_connections")],
            "must be greater than 0",
        ));
    }
    if s.idle_timeout_s == 0 {
        out.push(Issue::new(
            vec![Key("sip"), Key("idle_timeout_s")],
            "must be greater than 0",
        ));
    }
}

fn teams(c: &Config, out: &mut Vec<Issue>) {
    let t = &c.teams;
    // TDR-OPT-02 asks for 60..=180 s; shorter intervals are allowed for labs (a warning is
    // logged at start), longer ones would get the trunk demoted.
    if t.options_interval_s == 0 || t.options_interval_s > 180 {
        out.push(Issue::new(
            vec![Key("teams"), Key("options_interval_s")],
            format!(
                "{} is outside 1..=180 (TDR-OPT-02: at least one OPTIONS every 180 s)",
                t.options_interval_s
            ),
        ));
    }
    if t.options_timeout_ms == 0 {
        out.push(Issue::new(
            vec![Key("teams"), Key("options_timeout_ms")],
            "must be greater than 0",
        ));
    }
    // Teams gives up on an unanswered INVITE after 10 s by default (TDR-INV-13): the next proxy
    // must be tried well before that.
    if t.failover_timeout_ms == 0 || t.failover_timeout_ms > 8000 {
        out.push(Issue::new(
            vec![Key("teams"), Key("failover_timeout_ms")],
            "must be 1 to 8000 (ms); Teams gives up on a call after 10 s (TDR-INV-13)",
        ));
    }
    if t.allow.is_empty() {
        out.push(Issue::new(
            vec![Key("teams"), Key("allow")],
            "empty: no Teams proxy could connect; leave it out for Microsoft's ranges (TDR-SIG-08)",
        ));
    }
    if t.proxies.is_empty() {
        out.push(Issue::new(
            vec![Key("teams")],
            "no [[teams.proxy]]: list the Microsoft SIP proxies (sip, sip2, sip3.pstnhub.microsoft.com)",
        ));
    }
    let mut seen = HashSet::new();
    for (i, p) in t.proxies.iter().enumerate() {
        if !is_dns_name(&p.host) {
            out.push(Issue::new(
                vec![Key("teams"), Key("proxy"), Index(i), Key("host")],
                format!(
                    "{:?} is not a DNS name (TDR-SIG-07: Teams is addressed by FQDN)",
                    p.host
                ),
            ));
        }
        if p.port == 0 {
            out.push(Issue::new(
                vec![Key("teams"), Key("proxy"), Index(i), Key("port")],
                "port 0 is not a port",
            ));
        }
        if !seen.insert((p.host.to_ascii_lowercase(), p.port)) {
            out.push(Issue::new(
                vec![Key("teams"), Key("proxy"), Index(i), Key("host")],
                format!("{}:{} is listed twice", p.host, p.port),
            ));
        }
    }
}

fn trunks(c: &Config, out: &mut Vec<Issue>) {
    let mut names = HashSet::new();
    for (i, t) in c.trunks.iter().enumerate() {
        if t.name.is_empty() {
            out.push(Issue::new(
                vec![Key("trunk"), Index(i), Key("name")],
                "must not be empty",
            ));
        } else if !names.insert(t.name.as_str()) {
            out.push(Issue::new(
                vec![Key("trunk"), Index(i), Key("name")],
                format!("trunk {:?} is defined twice", t.name),
            ));
        }
        if let Err(reason) = super::trunk_uri::check(&t.uri) {
            out.push(Issue::new(vec![Key("trunk"), Index(i), Key("uri")], reason));
        }
        if let Some(auth) = &t.auth {
            for (key, value) in [("username", &auth.username), ("password", &auth.password)] {
                if value.is_empty() {
                    out.push(Issue::new(
                        vec![Key("trunk"), Index(i), Key("auth"), Key(key)],
                        "must not be empty",
                    ));
                }
            }
            // Both go into quoted strings of the digest computation and the challenge.
            let quoted = [("username", auth.username.as_str())]
                .into_iter()
                .chain(auth.realm.as_deref().map(|r| ("realm", r)));
            for (key, value) in quoted {
                if value.contains(['"', '\\', '\r', '\n']) {
                    out.push(Issue::new(
                        vec![Key("trunk"), Index(i), Key("auth"), Key(key)],
                        "must not contain quotes, backslashes or line breaks",
                    ));
                }
            }
        }
        if t.allow.is_empty() {
            out.push(Issue::new(
                vec![Key("trunk"), Index(i), Key("allow")],
                "empty: no source could send as this trunk; list its networks (e.g. \"192.0.2.10/32\")",
            ));
        }
        for (j, codec) in t.codecs.iter().enumerate() {
            if codec.is_empty() || codec.contains(char::is_whitespace) {
                out.push(Issue::new(
                    vec![Key("trunk"), Index(i), Key("codecs"), Index(j)],
                    "an encoding name such as \"PCMU\" or \"G722/8000\"",
                ));
            }
        }
        // Teams gives up on a call after 10 s (TDR-INV-13): the next target must be tried
        // well before that.
        if t.failover_timeout_ms == 0 || t.failover_timeout_ms > 8000 {
            out.push(Issue::new(
                vec![Key("trunk"), Index(i), Key("failover_timeout_ms")],
                "must be 1 to 8000 (ms); Teams gives up on a call after 10 s (TDR-INV-13)",
            ));
        }
        if t.options_interval_s != 0 && !(5..=3600).contains(&t.options_interval_s) {
            out.push(Issue::new(
                vec![Key("trunk"), Index(i), Key("options_interval_s")],
                "0 (no pings) or 5 to 3600 seconds",
            ));
        }
        let mut causes = HashSet::new();
        for (j, rule) in t.q850_rewrite.iter().enumerate() {
            // Q.850 causes are 1..=127; 0 as `to` means "leave the Reason out".
            let problem = if !(1..=127).contains(&rule.cause) {
                Some(("cause", "a Q.850 cause, 1 to 127"))
            } else if rule.to > 127 {
                Some((
                    "to",
                    "a Q.850 cause, 1 to 127, or 0 to leave the Reason out",
                ))
            } else if !causes.insert(rule.cause) {
                Some(("cause", "a second rule for the same cause"))
            } else {
                None
            };
            if let Some((key, reason)) = problem {
                out.push(Issue::new(
                    vec![
                        Key("trunk"),
                        Index(i),
                        Key("q850_rewrite"),
                        Index(j),
                        Key(key),
                    ],
                    reason,
                ));
            }
        }
        for (j, rule) in t.number_rewrite.iter().enumerate() {
            if let Err(e) = crate::trunk_policy::check_rule(rule) {
                out.push(Issue::new(
                    vec![
                        Key("trunk"),
                        Index(i),
                        Key("number_rewrite"),
                        Index(j),
                        Key(e.key()),
                    ],
                    e.to_string(),
                ));
            }
        }
    }
}

fn tenants(c: &Config, out: &mut Vec<Issue>) {
    let base = c.sbc.base_domain.to_ascii_lowercase();
    let mut seen = HashSet::new();
    for (i, t) in c.tenants.iter().enumerate() {
        let fqdn = t.fqdn.to_ascii_lowercase();
        // TDR-MT-02: the carrier's `*.base` certificate covers exactly one label.
        let one_label_under = fqdn
            .strip_suffix(&base)
            .and_then(|head| head.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty() && !label.contains('.'));
        if !is_dns_name(&fqdn) || !one_label_under {
            out.push(Issue::new(
                vec![Key("tenant"), Index(i), Key("fqdn")],
                format!(
                    "{:?} is not a one-label subdomain of base_domain {:?} (TDR-MT-02)",
                    t.fqdn, c.sbc.base_domain
                ),
            ));
        }
        if !seen.insert(fqdn) {
            out.push(Issue::new(
                vec![Key("tenant"), Index(i), Key("fqdn")],
                format!("tenant {:?} appears twice", t.fqdn),
            ));
        }
        if c.trunk(&t.trunk).is_none() {
            out.push(Issue::new(
                vec![Key("tenant"), Index(i), Key("trunk")],
                format!("no trunk {:?}", t.trunk),
            ));
        }
        if t.max_calls == 0 {
            out.push(Issue::new(
                vec![Key("tenant"), Index(i), Key("max_calls")],
                "0 would refuse every call",
            ));
        }
    }
}

/// The CDR file must be appendable when it exists, and its directory must exist when it does
/// not yet: the daemon creates the file, never directories. check-config creates nothing.
fn cdr(c: &Config, out: &mut Vec<Issue>) {
    let Some(path) = &c.cdr.path else {
        return;
    };
    let key = vec![Key("cdr"), Key("path")];
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            out.push(Issue::new(
                key,
                format!("{} is a directory, not a file", path.display()),
            ));
        }
        Ok(_) => {
            if let Err(e) = std::fs::OpenOptions::new().append(true).open(path) {
                out.push(Issue::new(
                    key,
                    format!("cannot append to {}: {e}", path.display()),
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => std::path::Path::new("."),
            };
            if !std::fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
                out.push(Issue::new(
                    key,
                    format!("directory {} does not exist", dir.display()),
                ));
            } else if std::fs::metadata(dir).is_ok_and(|m| m.permissions().readonly()) {
                out.push(Issue::new(
                    key,
                    format!("directory {} is read-only", dir.display()),
                ));
            }
        }
        Err(e) => {
            out.push(Issue::new(
                key,
                format!("cannot read {}: {e}", path.display()),
            ));
        }
    }
}
