//! Full SIP messages for debug logs, with secrets taken out: SDES master keys in `a=crypto`
//! (anyone holding them can decrypt the call) and credentials in Authorization headers.

/// The message as text for a debug log line, secrets redacted.
pub(super) fn redacted(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let lower = line.trim_start().to_ascii_lowercase();
        if lower.starts_with("authorization:") || lower.starts_with("proxy-authorization:") {
            let name = line.split(':').next().unwrap_or("Authorization");
            out.push_str(name);
            out.push_str(": <redacted>\r\n");
        } else if let Some(at) = line.find("inline:") {
            out.push_str(&line[..at + "inline:".len()]);
            out.push_str("<redacted>");
            // Keep what follows the key: |lifetime|MKI and session parameters are not secret.
            let rest = &line[at + "inline:".len()..];
            let end = rest.find(['|', ' ', '\r', '\n']).unwrap_or(rest.len());
            out.push_str(&rest[end..]);
        } else {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn sdes_keys_and_credentials_never_reach_the_log() {
        let msg = "INVITE sip:a@b SIP/2.0\r\nAuthorization: Digest username=\"u\", response=\"abc\"\r\n\r\nv=0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:4fl6DT4Bi+DWT6MsBt5BOQ7Gda1Jiv7rtpYLOqvm|2^31|1:1\r\n";
        let r = redacted(msg.as_bytes());
        assert!(!r.contains("4fl6DT4Bi"), "{r}");
        assert!(!r.contains("response=\"abc\""), "{r}");
        assert!(r.contains("inline:<redacted>|2^31|1:1\r\n"), "{r}");
        assert!(r.starts_with("INVITE sip:a@b SIP/2.0\r\n"), "{r}");
    }
}
