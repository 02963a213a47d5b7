//! The two primitives SRTP needs, from aws-lc-rs: AES-128 in counter mode (RFC 3711
//! §4.1.1) and HMAC-SHA1 (§4.2.1).

use aws_lc_rs::cipher::{AES_128, EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;

use super::SrtpError;

/// AES-128 keystream generator for one session key.
pub(crate) struct AesCm {
    key: EncryptingKey,
}

impl AesCm {
    pub(crate) fn new(key: &[u8; 16]) -> Result<Self, SrtpError> {
        let unbound = UnboundCipherKey::new(&AES_128, key).map_err(|_| SrtpError::Crypto)?;
        let key = EncryptingKey::ctr(unbound).map_err(|_| SrtpError::Crypto)?;
        Ok(Self { key })
    }

    /// XOR `data` with the AES-CM keystream that starts at counter block `iv`.
    /// The 128-bit counter only ever moves in its low 16 bits (the IV ends in two zero
    /// octets and a packet is far shorter than 2^16 blocks), so a 32-bit counter
    /// implementation gives the same stream.
    pub(crate) fn apply_keystream(&self, iv: [u8; 16], data: &mut [u8]) -> Result<(), SrtpError> {
        if data.is_empty() {
            return Ok(());
        }
        self.key
            .less_safe_encrypt(data, EncryptionContext::Iv128(FixedLength::from(iv)))
            .map(|_| ())
            .map_err(|_| SrtpError::Crypto)
    }
}

/// HMAC-SHA1 with the key schedule (inner and outer padded states) computed once per
/// session key; each packet starts from a copy of the prepared state.
pub(crate) struct HmacSha1 {
    key: hmac::Key,
}

impl HmacSha1 {
    pub(crate) fn new(key: &[u8; 20]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key),
        }
    }

    pub(crate) fn sign(&self, data: &[u8]) -> [u8; 20] {
        let tag = hmac::sign(&self.key, data);
        let mut out = [0u8; 20];
        let bytes = tag.as_ref();
        let n = bytes.len().min(20);
        out[..n].copy_from_slice(&bytes[..n]);
        out
    }
}
