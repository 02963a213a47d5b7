//! SDES key exchange (RFC 4568): the value of an SDP `a=crypto:` attribute.
//!
//! `<tag> <suite> inline:<base64 key||salt>[|<lifetime>][|<MKI value>:<MKI length>] [params]`
//!
//! Teams (TDR-MED-02) sends several lines per m-line, MKI `|1:1` and the _32 suite; a line
//! with a suite we do not know is kept as unsupported rather than failing the SDP.

use std::fmt;

use base64::Engine as _;

use crate::media::srtp::{MasterKey, Mki, SrtpError, SrtpProfile};

/// Why an `a=crypto:` value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdesError {
    #[error("a=crypto: missing {field}")]
    Missing { field: &'static str },
    #[error("a=crypto: tag {text:?} is not 1 to 9 digits")]
    BadTag { text: String },
    #[error("a=crypto: key method {method:?}, only inline is defined for SRTP")]
    NotInline { method: String },
    #[error("a=crypto: inline key is not base64")]
    BadBase64,
    #[error("a=crypto: lifetime {text:?} is neither a number nor 2^N")]
    BadLifetime { text: String },
    #[error("a=crypto: MKI {text:?} is not <value>:<length>")]
    BadMki { text: String },
    #[error("a=crypto: more than {max} key parameters")]
    TooManyKeys { max: usize },
    #[error("a=crypto: {0}")]
    Key(#[from] SrtpError),
}

/// The crypto suite of a line: one we can run, or one we only carry along.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CryptoSuite {
    Supported(SrtpProfile),
    Unsupported(String),
}

impl CryptoSuite {
    pub fn name(&self) -> &str {
        match self {
            Self::Supported(p) => p.sdes_name(),
            Self::Unsupported(name) => name,
        }
    }
}

/// The key parameters of a line: parsed keys for a supported suite, the text as received
/// for an unsupported one (its key lengths are unknown to us).
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyParams {
    Keys(Vec<MasterKey>),
    Opaque(String),
}

/// One `a=crypto:` attribute value. Debug redacts keys; Display prints the SDP text,
/// key included, and is only for the SDP body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoAttribute {
    tag: u32,
    suite: CryptoSuite,
    key_params: KeyParams,
    session_params: Vec<String>,
}

/// RFC 4568 §6.1 allows several key parameters (each with its MKI); more than a few is
/// no offer we need to honour.
const MAX_KEYS: usize = 8;

impl CryptoAttribute {
    /// Parse the attribute value (a leading `a=crypto:` or `crypto:` is accepted too).
    pub fn parse(text: &str) -> Result<Self, SdesError> {
        let text = text.trim();
        let text = text
            .strip_prefix("a=crypto:")
            .or_else(|| text.strip_prefix("crypto:"))
            .unwrap_or(text);
        let mut fields = text.split_ascii_whitespace();
        let tag_text = fields.next().ok_or(SdesError::Missing { field: "tag" })?;
        let tag = parse_tag(tag_text)?;
        let suite_name = fields.next().ok_or(SdesError::Missing { field: "suite" })?;
        let key_text = fields.next().ok_or(SdesError::Missing {
            field: "key-params",
        })?;
        let session_params: Vec<String> = fields.map(str::to_owned).collect();

        let (suite, key_params) = match SrtpProfile::from_sdes_name(suite_name) {
            Some(profile) => {
                let mut keys = Vec::new();
                for one in key_text.split(';') {
                    if keys.len() == MAX_KEYS {
                        return Err(SdesError::TooManyKeys { max: MAX_KEYS });
                    }
                    keys.push(parse_key_param(profile, one)?);
                }
                (CryptoSuite::Supported(profile), KeyParams::Keys(keys))
            }
            None => (
                CryptoSuite::Unsupported(suite_name.to_owned()),
                KeyParams::Opaque(key_text.to_owned()),
            ),
        };
        Ok(Self {
            tag,
            suite,
            key_params,
            session_params,
        })
    }

    /// Our own line for `key`: tag, suite, inline key (and its MKI and lifetime if set).
    pub fn new(tag: u32, key: MasterKey) -> Self {
        Self {
            tag,
            suite: CryptoSuite::Supported(key.profile()),
            key_params: KeyParams::Keys(vec![key]),
            session_params: Vec::new(),
        }
    }

    /// A line with a fresh key from the OS CSPRNG and no MKI (TDR-MED-02: our offers
    /// need none).
    pub fn generate(tag: u32, profile: SrtpProfile) -> Result<Self, SdesError> {
        Ok(Self::new(tag, MasterKey::generate(profile)?))
    }

    pub fn tag(&self) -> u32 {
        self.tag
    }

    pub fn suite(&self) -> &CryptoSuite {
        &self.suite
    }

    pub fn profile(&self) -> Option<SrtpProfile> {
        match self.suite {
            CryptoSuite::Supported(p) => Some(p),
            CryptoSuite::Unsupported(_) => None,
        }
    }

    /// The first master key of a supported line.
    pub fn master_key(&self) -> Option<&MasterKey> {
        self.master_keys().first()
    }

    /// All master keys of a supported line (several only when they carry MKIs).
    pub fn master_keys(&self) -> &[MasterKey] {
        match &self.key_params {
            KeyParams::Keys(keys) => keys,
            KeyParams::Opaque(_) => &[],
        }
    }

    pub fn session_params(&self) -> &[String] {
        &self.session_params
    }

    /// A line we can run as is: a supported suite and no session parameter that changes
    /// the transform (RFC 4568 §6.3: KDR, UNENCRYPTED_*, UNAUTHENTICATED_SRTP, FEC_KEY).
    /// WSH only hints a window size and FEC_ORDER only matters with FEC; both are fine.
    pub fn is_usable(&self) -> bool {
        self.master_key().is_some()
            && self.session_params.iter().all(|p| {
                let name = p.split('=').next().unwrap_or(p);
                matches!(name, "WSH" | "FEC_ORDER") || (name == "KDR" && p == "KDR=0")
            })
    }

    /// The line to answer with (RFC 4568 §7.1.2: the first usable one of the offer).
    pub fn select<'a>(
        lines: impl IntoIterator<Item = &'a CryptoAttribute>,
    ) -> Option<&'a CryptoAttribute> {
        lines.into_iter().find(|line| line.is_usable())
    }
}

/// A snapshot keeps the attribute as its SDP text, key included: a call snapshot holds the
/// SRTP key toward Teams and is stored as a secret.
impl serde::Serialize for CryptoAttribute {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CryptoAttribute {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<CryptoAttribute, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        // The error names the field at fault, never the key.
        CryptoAttribute::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for CryptoAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.tag, self.suite.name())?;
        match &self.key_params {
            KeyParams::Opaque(text) => f.write_str(text)?,
            KeyParams::Keys(keys) => {
                for (i, key) in keys.iter().enumerate() {
                    if i > 0 {
                        f.write_str(";")?;
                    }
                    write!(f, "inline:{}", key.inline_key())?;
                    if let Some(lifetime) = key.lifetime() {
                        if lifetime.is_power_of_two() {
                            write!(f, "|2^{}", lifetime.trailing_zeros())?;
                        } else {
                            write!(f, "|{lifetime}")?;
                        }
                    }
                    if let Some(mki) = key.mki() {
                        write!(f, "|{}:{}", mki.value(), mki.len())?;
                    }
                }
            }
        }
        for param in &self.session_params {
            write!(f, " {param}")?;
        }
        Ok(())
    }
}

fn parse_tag(text: &str) -> Result<u32, SdesError> {
    // RFC 4568 §9.1: tag = 1*9DIGIT
    if text.is_empty() || text.len() > 9 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SdesError::BadTag {
            text: text.to_owned(),
        });
    }
    text.parse().map_err(|_| SdesError::BadTag {
        text: text.to_owned(),
    })
}

/// `inline:<key||salt>[|lifetime][|mki:length]` (RFC 4568 §6.1).
fn parse_key_param(profile: SrtpProfile, text: &str) -> Result<MasterKey, SdesError> {
    let Some((method, info)) = text.split_once(':') else {
        return Err(SdesError::Missing {
            field: "inline key",
        });
    };
    if method != "inline" {
        return Err(SdesError::NotInline {
            method: method.to_owned(),
        });
    }
    let mut parts = info.split('|');
    let key_b64 = parts.next().unwrap_or_default();
    let mut lifetime = None;
    let mut mki = None;
    for part in parts {
        // The lifetime, if present, comes first; the MKI is the part with a colon.
        if let Some((value, len)) = part.split_once(':') {
            if mki.is_some() {
                return Err(SdesError::BadMki {
                    text: part.to_owned(),
                });
            }
            mki = Some(parse_mki(value, len).ok_or_else(|| SdesError::BadMki {
                text: part.to_owned(),
            })??);
        } else if lifetime.is_none() && mki.is_none() {
            lifetime = Some(parse_lifetime(part)?);
        } else {
            return Err(SdesError::BadLifetime {
                text: part.to_owned(),
            });
        }
    }
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(key_b64)
        .map_err(|_| SdesError::BadBase64)?;
    let key = MasterKey::from_key_and_salt(profile, &bytes, mki);
    bytes.fill(0);
    std::hint::black_box(&mut bytes);
    let key = key?;
    Ok(match lifetime {
        Some(packets) => key.with_lifetime(packets),
        None => key,
    })
}

fn parse_lifetime(text: &str) -> Result<u64, SdesError> {
    let bad = || SdesError::BadLifetime {
        text: text.to_owned(),
    };
    if let Some(exp) = text.strip_prefix("2^") {
        let exp: u32 = exp.parse().map_err(|_| bad())?;
        return 1u64.checked_shl(exp).filter(|_| exp < 64).ok_or_else(bad);
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    text.parse().map_err(|_| bad())
}

/// `None` if the numbers do not parse; `Some(Err)` if they do not make an MKI we carry.
fn parse_mki(value: &str, len: &str) -> Option<Result<Mki, SdesError>> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(value) || !digits(len) {
        return None;
    }
    let value: u64 = value.parse().ok()?;
    let len: usize = len.parse().ok()?;
    Some(Mki::new(value, len).map_err(SdesError::from))
}

#[cfg(test)]
mod tests;
