//! RFC 3263 §4.1 NAPTR filtering: keep the SIP services we speak, in order.

use super::SipTransport;

/// One NAPTR answer, reduced to the fields RFC 3263 uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NaptrEntry {
    pub(crate) order: u16,
    pub(crate) preference: u16,
    pub(crate) flags: String,
    pub(crate) services: String,
    /// SRV owner name to query next, fully qualified.
    pub(crate) replacement: String,
}

/// Maps a NAPTR service field to the transport it names (RFC 3263 §4.1, RFC 3263 §10).
fn service_transport(services: &str) -> Option<SipTransport> {
    // Service fields are case-insensitive like every DDDS field.
    match services.to_ascii_uppercase().as_str() {
        "SIPS+D2T" => Some(SipTransport::Tls),
        "SIP+D2T" => Some(SipTransport::Tcp),
        "SIP+D2U" => Some(SipTransport::Udp),
        _ => None,
    }
}

/// The NAPTR records a client may follow, best first, each with its transport
/// and the SRV name to query.
///
/// RFC 3263 §4.1: discard records whose services the client does not support;
/// for a SIPS URI only `SIPS+D2T` qualifies; order by `order` then
/// `preference`. Only the "S" flag (next lookup is SRV) is meaningful for SIP;
/// records with regexps are discarded since SIP NAPTRs use replacement only.
pub(crate) fn sip_services(
    mut records: Vec<NaptrEntry>,
    secure: bool,
) -> Vec<(SipTransport, String)> {
    records.sort_by_key(|r| (r.order, r.preference));
    records
        .into_iter()
        .filter(|r| r.flags.eq_ignore_ascii_case("s"))
        .filter_map(|r| {
            let transport = service_transport(&r.services)?;
            if secure && transport != SipTransport::Tls {
                return None;
            }
            Some((transport, r.replacement))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naptr(
        order: u16,
        preference: u16,
        flags: &str,
        services: &str,
        replacement: &str,
    ) -> NaptrEntry {
        NaptrEntry {
            order,
            preference,
            flags: flags.to_owned(),
            services: services.to_owned(),
            replacement: replacement.to_owned(),
        }
    }

    #[test]
    fn orders_by_order_then_preference_and_drops_unknown_services() {
        let got = sip_services(
            vec![
                naptr(20, 10, "s", "SIP+D2U", "_sip._udp.x."),
                naptr(10, 20, "S", "sip+d2t", "_sip._tcp.x."),
                naptr(10, 10, "s", "SIPS+D2T", "_sips._tcp.x."),
                naptr(5, 10, "s", "SIP+D2S", "_sip._sctp.x."),
                naptr(5, 10, "u", "E2U+sip", "!^.*$!sip:a@x!"),
            ],
            false,
        );
        assert_eq!(
            got,
            [
                (SipTransport::Tls, "_sips._tcp.x.".to_owned()),
                (SipTransport::Tcp, "_sip._tcp.x.".to_owned()),
                (SipTransport::Udp, "_sip._udp.x.".to_owned()),
            ]
        );
    }

    #[test]
    fn sips_uri_keeps_only_sips_d2t() {
        let got = sip_services(
            vec![
                naptr(10, 10, "s", "SIP+D2U", "_sip._udp.x."),
                naptr(20, 10, "s", "SIPS+D2T", "_sips._tcp.x."),
            ],
            true,
        );
        assert_eq!(got, [(SipTransport::Tls, "_sips._tcp.x.".to_owned())]);
    }
}
