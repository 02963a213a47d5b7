//! Profiles and master keys (RFC 3711 §8, RFC 4568 §6.1).

use std::fmt;

use super::SrtpError;

/// The longest MKI we carry. RFC 4568 allows up to 128 octets, but an SDES MKI value is a
/// decimal integer: more than 8 octets would only be leading zeros.
pub const MAX_MKI_LEN: usize = 8;

const KEY_LEN: usize = 16;
const SALT_LEN: usize = 14;

/// The SRTP crypto suites we offer and accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpProfile {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
}

impl SrtpProfile {
    /// The suite named in an SDES `a=crypto:` line (RFC 4568 §6.2), if we support it.
    pub fn from_sdes_name(name: &str) -> Option<Self> {
        match name {
            "AES_CM_128_HMAC_SHA1_80" => Some(Self::AesCm128HmacSha1_80),
            "AES_CM_128_HMAC_SHA1_32" => Some(Self::AesCm128HmacSha1_32),
            _ => None,
        }
    }

    pub fn sdes_name(self) -> &'static str {
        match self {
            Self::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Self::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// Octets of the SRTP authentication tag.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            Self::AesCm128HmacSha1_80 => 10,
            Self::AesCm128HmacSha1_32 => 4,
        }
    }

    /// Octets of the SRTCP authentication tag: RFC 4568 §6.2.2 keeps SRTCP at 80 bits
    /// even for the _32 suite.
    pub fn rtcp_tag_len(self) -> usize {
        10
    }

    pub(crate) fn key_len(self) -> usize {
        KEY_LEN
    }

    pub(crate) fn salt_len(self) -> usize {
        SALT_LEN
    }
}

/// Master Key Identifier (RFC 3711 §3.1): sent between the payload and the tag so the
/// receiver can tell which master key protected a packet.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mki {
    bytes: [u8; MAX_MKI_LEN],
    len: u8,
}

impl Mki {
    /// The SDES form `<value>:<length>` (RFC 4568 §6.1): `value` big-endian in `len` octets.
    pub fn new(value: u64, len: usize) -> Result<Self, SrtpError> {
        if len == 0 || len > MAX_MKI_LEN {
            return Err(SrtpError::BadMkiLength {
                len,
                max: MAX_MKI_LEN,
            });
        }
        if len < 8 && value >> (8 * len) != 0 {
            return Err(SrtpError::MkiValueTooLarge { value, len });
        }
        let mut bytes = [0u8; MAX_MKI_LEN];
        let be = value.to_be_bytes();
        bytes[..len].copy_from_slice(&be[8 - len..]);
        Ok(Self {
            bytes,
            len: len as u8,
        })
    }

    /// The MKI exactly as it appears on the wire.
    pub fn from_bytes(wire: &[u8]) -> Result<Self, SrtpError> {
        if wire.is_empty() || wire.len() > MAX_MKI_LEN {
            return Err(SrtpError::BadMkiLength {
                len: wire.len(),
                max: MAX_MKI_LEN,
            });
        }
        let mut bytes = [0u8; MAX_MKI_LEN];
        bytes[..wire.len()].copy_from_slice(wire);
        Ok(Self {
            bytes,
            len: wire.len() as u8,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The MKI read as a big-endian integer (the SDES `<value>`).
    pub fn value(&self) -> u64 {
        self.as_bytes()
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
    }
}

impl fmt::Debug for Mki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mki({}:{})", self.value(), self.len)
    }
}

/// An SRTP master key and salt with its profile, optional MKI and lifetime.
/// Debug never prints the bytes; they are overwritten on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    profile: SrtpProfile,
    key: [u8; KEY_LEN],
    salt: [u8; SALT_LEN],
    mki: Option<Mki>,
    lifetime: Option<u64>,
}

impl MasterKey {
    pub fn new(
        profile: SrtpProfile,
        key: &[u8],
        salt: &[u8],
        mki: Option<Mki>,
    ) -> Result<Self, SrtpError> {
        let key: [u8; KEY_LEN] = key.try_into().map_err(|_| SrtpError::BadKeyLength {
            expected: profile.key_len(),
            got: key.len(),
        })?;
        let salt: [u8; SALT_LEN] = salt.try_into().map_err(|_| SrtpError::BadSaltLength {
            expected: profile.salt_len(),
            got: salt.len(),
        })?;
        Ok(Self {
            profile,
            key,
            salt,
            mki,
            lifetime: None,
        })
    }

    /// A fresh key and salt from the OS CSPRNG.
    pub fn generate(profile: SrtpProfile) -> Result<Self, SrtpError> {
        let mut bytes = [0u8; KEY_LEN + SALT_LEN];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| SrtpError::Rng)?;
        let made = Self::new(profile, &bytes[..KEY_LEN], &bytes[KEY_LEN..], None);
        wipe(&mut bytes);
        made
    }

    /// The key from `key || salt`, the concatenation an SDES `inline:` carries.
    pub fn from_key_and_salt(
        profile: SrtpProfile,
        key_salt: &[u8],
        mki: Option<Mki>,
    ) -> Result<Self, SrtpError> {
        let want = profile.key_len() + profile.salt_len();
        if key_salt.len() != want {
            return Err(SrtpError::BadKeyLength {
                expected: want,
                got: key_salt.len(),
            });
        }
        let (key, salt) = key_salt.split_at(profile.key_len());
        Self::new(profile, key, salt, mki)
    }

    /// Record the SDES lifetime (packets under this key). Informative: SDES peers
    /// rekey through a new offer long before 2^31 packets.
    pub fn with_lifetime(mut self, packets: u64) -> Self {
        self.lifetime = Some(packets);
        self
    }

    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    pub fn mki(&self) -> Option<Mki> {
        self.mki
    }

    pub fn lifetime(&self) -> Option<u64> {
        self.lifetime
    }

    /// base64(key || salt) for `a=crypto: ... inline:<this>` (RFC 4568 §6.1).
    pub fn inline_key(&self) -> String {
        use base64::Engine as _;
        let mut both = [0u8; KEY_LEN + SALT_LEN];
        both[..KEY_LEN].copy_from_slice(&self.key);
        both[KEY_LEN..].copy_from_slice(&self.salt);
        let text = base64::engine::general_purpose::STANDARD.encode(both);
        wipe(&mut both);
        text
    }

    pub(crate) fn key(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    pub(crate) fn salt(&self) -> &[u8; SALT_LEN] {
        &self.salt
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        wipe(&mut self.key);
        wipe(&mut self.salt);
    }
}

/// Overwrite secret bytes. `black_box` keeps the compiler from dropping the stores to
/// memory that is about to be freed.
pub(crate) fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    std::hint::black_box(bytes);
}
