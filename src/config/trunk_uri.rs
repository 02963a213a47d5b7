//! Checks a trunk's `uri` key: a `sip:` URI with a host and, if given, a transport we speak.

pub(crate) fn check(uri: &str) -> Result<(), String> {
    let rest = uri
        .strip_prefix("sip:")
        .ok_or_else(|| format!("{uri:?} is not a sip: URI (sips: is not used on trunks)"))?;
    let (hostport, params) = rest.split_once(';').unwrap_or((rest, ""));
    let hostport = hostport
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(hostport);
    if hostport.is_empty() {
        return Err(format!("{uri:?} has no host"));
    }
    for p in params.split(';').filter(|p| !p.is_empty()) {
        if let Some(t) = p.strip_prefix("transport=")
            && !matches!(t.to_ascii_lowercase().as_str(), "udp" | "tcp" | "tls")
        {
            return Err(format!("transport {t:?} is not one of udp, tcp, tls"));
        }
    }
    Ok(())
}
