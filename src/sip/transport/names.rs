//! Which DNS names a peer certificate proves, and whether one of them is a
//! name we expect.
//!
//! webpki hands us the SAN dNSNames. RFC 2818 §3.1 (and RFC 6125 §6.4.4) fall
//! back to the subject CN only when the certificate has no SAN dNSName, so the
//! CN is read from the subject DER here; webpki deliberately does not expose it.

use std::sync::Arc;

use rustls_pki_types::CertificateDer;

/// The DNS names `cert` is issued for: its SAN dNSNames, or failing those its
/// subject CN. Empty when the certificate cannot be parsed.
pub(crate) fn certificate_names(cert: &CertificateDer<'_>) -> Vec<String> {
    let Ok(parsed) = webpki::EndEntityCert::try_from(cert) else {
        return Vec::new();
    };
    let sans: Vec<String> = parsed
        .valid_dns_names()
        .map(|name| name.to_ascii_lowercase())
        .collect();
    if !sans.is_empty() {
        return sans;
    }
    subject_common_name(parsed.subject())
        .map(|cn| vec![cn.to_ascii_lowercase()])
        .unwrap_or_default()
}

/// The first of `expected` that one of `presented` covers. When the expected
/// name is itself a wildcard, the presented name it matched is returned, so the
/// caller always gets a concrete host name where there is one.
pub(crate) fn matching_name(presented: &[String], expected: &[String]) -> Option<Arc<str>> {
    for reference in expected {
        for name in presented {
            if name_matches(name, reference) {
                let proven = if reference.starts_with("*.") {
                    name
                } else {
                    reference
                };
                return Some(Arc::from(proven.to_ascii_lowercase()));
            }
        }
    }
    None
}

/// RFC 2818 §3.1: `*.a.com` matches `foo.a.com` but not `bar.foo.a.com` nor
/// `a.com`. Only a whole leftmost-label wildcard is honoured (RFC 6125 §6.4.3
/// lets us refuse `f*.com` partial-label forms). Either side may carry it: a
/// certificate for `*.pstnhub.microsoft.com`, or a configured peer name
/// `*.pstnhub.microsoft.com`.
pub(crate) fn name_matches(presented: &str, reference: &str) -> bool {
    let presented = presented.trim_end_matches('.');
    let reference = reference.trim_end_matches('.');
    if presented.eq_ignore_ascii_case(reference) {
        return true;
    }
    wildcard_covers(presented, reference) || wildcard_covers(reference, presented)
}

fn wildcard_covers(pattern: &str, host: &str) -> bool {
    let Some(suffix) = pattern.strip_prefix("*.") else {
        return false;
    };
    let Some((label, rest)) = host.split_once('.') else {
        return false;
    };
    // A wildcard never stands for another wildcard, nor for an empty label;
    // and `*.com`-style patterns (a single label after the star) are refused.
    !label.is_empty() && label != "*" && suffix.contains('.') && rest.eq_ignore_ascii_case(suffix)
}

/// id-at-commonName, 2.5.4.3, as DER OID content bytes.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

const TAG_SET: u8 = 0x31;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_OID: u8 = 0x06;
const TAG_UTF8_STRING: u8 = 0x0c;
const TAG_PRINTABLE_STRING: u8 = 0x13;
const TAG_IA5_STRING: u8 = 0x16;

/// The first CN of an X.501 Name, given the content of its RDNSequence.
fn subject_common_name(mut rdns: &[u8]) -> Option<String> {
    while !rdns.is_empty() {
        let (tag, mut set, rest) = read_tlv(rdns)?;
        rdns = rest;
        if tag != TAG_SET {
            return None;
        }
        while !set.is_empty() {
            let (tag, attribute, rest) = read_tlv(set)?;
            set = rest;
            if tag != TAG_SEQUENCE {
                return None;
            }
            let (tag, oid, value) = read_tlv(attribute)?;
            if tag != TAG_OID || oid != OID_COMMON_NAME {
                continue;
            }
            let (tag, text, _) = read_tlv(value)?;
            if matches!(tag, TAG_UTF8_STRING | TAG_PRINTABLE_STRING | TAG_IA5_STRING) {
                return std::str::from_utf8(text).ok().map(str::to_owned);
            }
        }
    }
    None
}

/// One DER tag-length-value: (tag, value, remainder). Single-byte tags only,
/// which is all a Name uses; lengths up to four bytes.
fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    if rest.len() < len {
        return None;
    }
    let (value, rest) = rest.split_at(len);
    Some((tag, value, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_names_match_case_insensitively() {
        assert!(name_matches(
            "SIP.pstnhub.microsoft.com",
            "sip.pstnhub.microsoft.com"
        ));
        assert!(!name_matches(
            "sip4.pstnhub.microsoft.com",
            "sip.pstnhub.microsoft.com"
        ));
    }

    #[test]
    fn wildcard_covers_exactly_one_label_rfc2818() {
        assert!(name_matches(
            "*.pstnhub.microsoft.com",
            "sip2.pstnhub.microsoft.com"
        ));
        assert!(name_matches(
            "sip2.pstnhub.microsoft.com",
            "*.pstnhub.microsoft.com"
        ));
        assert!(!name_matches(
            "*.microsoft.com",
            "sip.pstnhub.microsoft.com"
        ));
        assert!(!name_matches(
            "*.pstnhub.microsoft.com",
            "pstnhub.microsoft.com"
        ));
        assert!(!name_matches("*.com", "example.com"));
        assert!(!name_matches("f*.example.com", "foo.example.com"));
    }

    #[test]
    fn matching_name_returns_concrete_host() {
        let presented = vec!["*.pstnhub.microsoft.com".to_owned()];
        let expected = vec!["sip3.pstnhub.microsoft.com".to_owned()];
        assert_eq!(
            matching_name(&presented, &expected).as_deref(),
            Some("sip3.pstnhub.microsoft.com")
        );
        let presented = vec!["sip.pstnhub.microsoft.com".to_owned()];
        let expected = vec!["*.pstnhub.microsoft.com".to_owned()];
        assert_eq!(
            matching_name(&presented, &expected).as_deref(),
            Some("sip.pstnhub.microsoft.com")
        );
        assert_eq!(
            matching_name(&presented, &["other.example".to_owned()]),
            None
        );
    }

    #[test]
    fn common_name_is_used_only_without_san() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "sip.pstnhub.microsoft.com");
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            certificate_names(cert.der()),
            vec!["sip.pstnhub.microsoft.com"]
        );

        let mut params = rcgen::CertificateParams::new(vec!["san.example.com".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cn.example.com");
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(certificate_names(cert.der()), vec!["san.example.com"]);
    }

    #[test]
    fn truncated_der_is_not_a_name() {
        assert_eq!(subject_common_name(&[0x31, 0x05, 0x30]), None);
        assert_eq!(
            subject_common_name(&[0x31, 0x84, 0xff, 0xff, 0xff, 0xff]),
            None
        );
        assert_eq!(read_tlv(&[]), None);
    }
}
