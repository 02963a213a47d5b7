//! The Reason header (RFC 3326; in responses RFC 6432) across the legs: why a call was
//! refused, cancelled or hung up, e.g. `Q.850;cause=17;text="User busy"` or
//! `SIP;cause=200;text="Call completed elsewhere"` (which keeps a Teams client from showing a
//! missed call when a contact center rang several agents). Passed or stripped per trunk; on
//! the way to the trunk, Q.850 causes may be rewritten (TDR-INV-07).
//!
//! Nothing here fails: a value that is not UTF-8 is passed untouched when no rule applies, or
//! skipped when one would have to read it.

use bytes::Bytes;

use super::Toward;
use crate::config::{PassOrStrip, Q850Rewrite};
use crate::sip::message::Headers;

const REASON: &str = "Reason";

/// The Reason value to put on the message built for `toward` from the one that arrived with
/// `incoming`, or `None` when there is none to carry. Several Reason headers (one per
/// protocol, RFC 3326 §2) become one comma-separated value.
pub(super) fn carry(
    policy: PassOrStrip,
    rewrites: &[Q850Rewrite],
    toward: Toward,
    incoming: &Headers,
) -> Option<Bytes> {
    if policy == PassOrStrip::Strip {
        return None;
    }
    let rewrites = if toward == Toward::Trunk {
        rewrites
    } else {
        &[]
    };
    let mut out: Vec<u8> = Vec::new();
    let mut push = |v: &[u8]| {
        if !out.is_empty() {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(v);
    };
    for value in incoming.get_all(REASON) {
        if rewrites.is_empty() {
            push(value);
            continue;
        }
        let Ok(text) = std::str::from_utf8(value) else {
            continue;
        };
        for element in split_outside_quotes(text, ',') {
            match rewrite(element.trim(), rewrites) {
                Some(v) => push(v.as_bytes()),
                None => continue,
            }
        }
    }
    (!out.is_empty()).then(|| Bytes::from(out))
}

/// One reason-value after the rules: unchanged, with its cause replaced (its `text`, which
/// described the old cause, left out), or `None` when a rule drops it.
fn rewrite(element: &str, rewrites: &[Q850Rewrite]) -> Option<String> {
    let mut parts = split_outside_quotes(element, ';')
        .into_iter()
        .map(str::trim);
    let protocol = parts.next().unwrap_or_default();
    if !protocol.eq_ignore_ascii_case("Q.850") {
        return Some(element.to_owned());
    }
    let params: Vec<&str> = parts.collect();
    let cause = params.iter().find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("cause")
            .then(|| value.trim().parse::<u8>().ok())
            .flatten()
    });
    let Some(rule) = cause.and_then(|c| rewrites.iter().find(|r| r.cause == c)) else {
        return Some(element.to_owned());
    };
    if rule.to == 0 {
        return None;
    }
    let mut v = format!("{protocol};cause={}", rule.to);
    for p in params {
        let name = p.split('=').next().unwrap_or_default().trim();
        if !name.eq_ignore_ascii_case("cause") && !name.eq_ignore_ascii_case("text") {
            v.push(';');
            v.push_str(p);
        }
    }
    Some(v)
}

/// `s` split at each `sep` that is not inside a quoted string (backslash escapes honoured).
fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(values: &[&str]) -> Headers {
        let mut h = Headers::default();
        for v in values {
            h.push(REASON, v.to_string());
        }
        h
    }

    fn rules(pairs: &[(u8, u8)]) -> Vec<Q850Rewrite> {
        pairs
            .iter()
            .map(|&(cause, to)| Q850Rewrite { cause, to })
            .collect()
    }

    fn carried(
        policy: PassOrStrip,
        r: &[(u8, u8)],
        toward: Toward,
        values: &[&str],
    ) -> Option<String> {
        carry(policy, &rules(r), toward, &headers(values))
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
    }

    #[test]
    fn reasons_pass_byte_for_byte_when_no_rule_applies() {
        let busy = r#"Q.850;cause=17;text="User busy""#;
        let elsewhere = r#"SIP;cause=200;text="Call completed elsewhere""#;
        assert_eq!(
            carried(PassOrStrip::Pass, &[], Toward::Trunk, &[busy, elsewhere]).as_deref(),
            Some(format!("{busy}, {elsewhere}").as_str())
        );
        assert_eq!(carried(PassOrStrip::Pass, &[], Toward::Trunk, &[]), None);
        assert_eq!(
            carried(PassOrStrip::Strip, &[], Toward::Trunk, &[busy]),
            None
        );
    }

    #[test]
    fn a_q850_cause_from_teams_is_rewritten_or_dropped_toward_the_trunk_tdr_inv_07() {
        let busy = r#"Q.850;cause=17;text="User busy, try; later""#;
        assert_eq!(
            carried(PassOrStrip::Pass, &[(17, 34)], Toward::Trunk, &[busy]).as_deref(),
            Some("Q.850;cause=34")
        );
        // Only toward the trunk: what the trunk says reaches Teams as it said it.
        assert_eq!(
            carried(PassOrStrip::Pass, &[(17, 34)], Toward::Teams, &[busy]).as_deref(),
            Some(busy)
        );
        // Dropped, while the SIP reason beside it (same header, comma-separated) stays.
        let both = r#"Q.850 ;cause=17 ;text="User busy", SIP;cause=486"#;
        assert_eq!(
            carried(PassOrStrip::Pass, &[(17, 0)], Toward::Trunk, &[both]).as_deref(),
            Some("SIP;cause=486")
        );
        // Other causes and other parameters are kept.
        assert_eq!(
            carried(
                PassOrStrip::Pass,
                &[(17, 34)],
                Toward::Trunk,
                &["Q.850;cause=16;location=LN"]
            )
            .as_deref(),
            Some("Q.850;cause=16;location=LN")
        );
        assert_eq!(
            carried(
                PassOrStrip::Pass,
                &[(16, 31)],
                Toward::Trunk,
                &["q.850;location=LN;CAUSE=16"]
            )
            .as_deref(),
            Some("q.850;cause=31;location=LN")
        );
    }
}
