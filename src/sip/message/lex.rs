//! Lexical pieces of RFC 3261 §25.1 shared by the header parsers: tokens,
//! linear white space, quoted strings, comma lists and generic parameters.

const fn token_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
}

static TOKEN: [bool; 256] = token_table();

/// `token` characters (RFC 3261 §25.1): alphanum and `-.!%*_+` `` ` `` `'~`.
#[inline]
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

#[inline]
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token_byte(b))
}

/// Position of the first `needle` in `hay`, eight octets at a time: the
/// parser's inner loop is the search for the end of each line.
#[inline]
pub(crate) fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(needle);
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for chunk in chunks.by_ref() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ pattern;
        // A zero byte in x is a match (the classic has-zero-byte test).
        let found = x.wrapping_sub(LO) & !x & HI;
        if found != 0 {
            return Some(base + (found.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|p| base + p)
}

/// White space as it may remain inside a header value. Folding has been
/// replaced by a single SP when the header was read, but a value built by
/// hand may still carry CR or LF, so they count as white space too.
pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

pub(crate) fn trim_ws(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii() && is_ws(c as u8))
}

pub(crate) fn trim_ws_bytes(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_ws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_ws(b)).map_or(start, |p| p + 1);
    &s[start..end]
}

pub(crate) fn skip_ws(s: &str) -> &str {
    s.trim_start_matches(|c: char| c.is_ascii() && is_ws(c as u8))
}

/// Splits a leading `quoted-string` off `s` (which starts with `"`): returns
/// the text between the quotes with its quoted-pairs kept as written, and the
/// rest after the closing quote. `None` if the quote is never closed.
pub(crate) fn split_quoted(s: &str) -> Option<(&str, &str)> {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F): one ASCII octet follows.
            b'\\' => i += 2,
            b'"' => return Some((&s[1..i], &s[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

/// Byte ranges of the comma-separated elements of a header value
/// (RFC 3261 §7.3.1), ignoring commas inside quoted strings and `<...>`.
/// Elements are trimmed of white space; empty elements are kept so that a
/// typed parser can reject `a,,b`.
pub(crate) fn comma_ranges(v: &[u8]) -> CommaRanges<'_> {
    CommaRanges {
        v,
        pos: 0,
        done: v.is_empty(),
    }
}

pub(crate) struct CommaRanges<'a> {
    v: &'a [u8],
    pos: usize,
    done: bool,
}

impl Iterator for CommaRanges<'_> {
    type Item = std::ops::Range<usize>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let start = self.pos;
        let mut i = start;
        let mut in_quotes = false;
        let mut in_angle = false;
        while i < self.v.len() {
            let b = self.v[i];
            if in_quotes {
                match b {
                    b'\\' => i += 1,
                    b'"' => in_quotes = false,
                    _ => {}
                }
            } else {
                match b {
                    b'"' => in_quotes = true,
                    b'<' => in_angle = true,
                    b'>' => in_angle = false,
                    b',' if !in_angle => break,
                    _ => {}
                }
            }
            i += 1;
        }
        let end = i.min(self.v.len());
        if end >= self.v.len() {
            self.done = true;
        } else {
            self.pos = end + 1;
        }
        let elem = &self.v[start..end];
        let lead = elem.iter().position(|&b| !is_ws(b)).unwrap_or(elem.len());
        let trail = elem
            .iter()
            .rposition(|&b| !is_ws(b))
            .map_or(lead, |p| p + 1);
        Some(start + lead..start + trail)
    }
}

/// Why a parameter list did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamDefect {
    /// Text after the main part that does not start with `;`.
    Junk,
    /// `;;` or a `;` at the end: a parameter without a name.
    EmptyName,
    /// `name=` with nothing after it.
    EmptyValue,
    /// A quoted value that never closes.
    UnterminatedQuote,
}

/// Parameters after the main part of a header value:
/// `*( SEMI generic-param )` with `SEMI = SWS ";" SWS` and
/// `generic-param = token [ EQUAL gen-value ]` (RFC 3261 §25.1). Quoted
/// values keep their quotes so that printing them back is exact. Host values
/// such as `received=2001:db8::9:255` may carry colons and brackets (RFC 5118 §4.5).
pub(crate) fn parse_params(mut s: &str) -> Result<Vec<(String, Option<String>)>, ParamDefect> {
    let mut out = Vec::new();
    loop {
        s = skip_ws(s);
        if s.is_empty() {
            return Ok(out);
        }
        let Some(rest) = s.strip_prefix(';') else {
            return Err(ParamDefect::Junk);
        };
        s = skip_ws(rest);
        let name_len = s.bytes().take_while(|&b| is_token_byte(b)).count();
        if name_len == 0 {
            return Err(ParamDefect::EmptyName);
        }
        let name = &s[..name_len];
        s = skip_ws(&s[name_len..]);
        let value = if let Some(rest) = s.strip_prefix('=') {
            s = skip_ws(rest);
            if s.starts_with('"') {
                let (inner, rest) = split_quoted(s).ok_or(ParamDefect::UnterminatedQuote)?;
                let v = &s[..inner.len() + 2];
                s = rest;
                Some(v.to_owned())
            } else {
                let len = s
                    .bytes()
                    .take_while(|&b| !is_ws(b) && !matches!(b, b';' | b',' | b'"' | b'<' | b'>'))
                    .count();
                if len == 0 {
                    return Err(ParamDefect::EmptyValue);
                }
                let v = &s[..len];
                s = &s[len..];
                Some(v.to_owned())
            }
        } else {
            None
        };
        out.push((name.to_owned(), value));
    }
}

/// Prints `;name[=value]` for each parameter.
pub(crate) fn write_params(
    f: &mut std::fmt::Formatter<'_>,
    params: &[(String, Option<String>)],
) -> std::fmt::Result {
    for (name, value) in params {
        match value {
            Some(v) => write!(f, ";{name}={v}")?,
            None => write!(f, ";{name}")?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_byte_agrees_with_a_plain_search() {
        let hay: Vec<u8> = (0..200u16).map(|i| (i * 7 % 251) as u8).collect();
        for start in 0..20 {
            for len in 0..hay.len() - start {
                let h = &hay[start..start + len];
                for needle in [0u8, 10, 13, 58, 250, 255] {
                    assert_eq!(find_byte(h, needle), h.iter().position(|&b| b == needle));
                }
            }
        }
    }

    #[test]
    fn comma_ranges_respect_quotes_and_angle_brackets() {
        let v = br#""a, b" <sip:x@y;p=1,2>;q=1 , <sip:z> ,, last"#;
        let parts: Vec<&[u8]> = comma_ranges(v).map(|r| &v[r]).collect();
        assert_eq!(
            parts,
            vec![
                &br#""a, b" <sip:x@y;p=1,2>;q=1"#[..],
                b"<sip:z>",
                b"",
                b"last"
            ]
        );
    }

    #[test]
    fn quoted_string_keeps_quoted_pairs_and_finds_the_real_end() {
        let (inner, rest) = split_quoted(r#""J Rosenberg \\\"" <sip:a@b>"#).unwrap();
        assert_eq!(inner, r#"J Rosenberg \\\""#);
        assert_eq!(rest, " <sip:a@b>");
        assert!(split_quoted(r#""Mr. J. User <sip:j@example.com>"#).is_none());
    }

    #[test]
    fn params_tolerate_lws_and_keep_quotes() {
        let p = parse_params(" ;   tag    = 1918181833n ; x=\"a;b\" ;lr").unwrap();
        assert_eq!(
            p,
            vec![
                ("tag".into(), Some("1918181833n".into())),
                ("x".into(), Some("\"a;b\"".into())),
                ("lr".into(), None)
            ]
        );
        assert_eq!(parse_params(";;"), Err(ParamDefect::EmptyName));
        assert_eq!(parse_params(";a="), Err(ParamDefect::EmptyValue));
        assert_eq!(parse_params(" junk"), Err(ParamDefect::Junk));
        let p = parse_params(";received=2001:db8::9:255;branch=z9hG4bKas3").unwrap();
        assert_eq!(p[0].1.as_deref(), Some("2001:db8::9:255"));
    }
}
