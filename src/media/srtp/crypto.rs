//! The two primitives SRTP needs: AES-128 in counter mode (RFC 3711 §4.1.1) and
//! HMAC-SHA1 (§4.2.1), from RustCrypto (`aes` with AES-NI, `sha1` with SHA-NI, both
//! detected at run time). Per packet they beat aws-lc-rs here: benches/srtp.rs group
//! `srtp_primitives` keeps both side by side. Being pure Rust, the counting allocator of
//! tests/srtp_alloc.rs sees every allocation they could make.

use aes::Aes128;
use aes::cipher::{InnerIvInit, KeyInit, StreamCipher};
use ctr::{CtrCore, flavors::Ctr128BE};
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::SrtpError;

/// AES-128 keystream generator for one session key; the key schedule is expanded once.
pub(crate) struct AesCm {
    cipher: Aes128,
}

impl AesCm {
    pub(crate) fn new(key: &[u8; 16]) -> Result<Self, SrtpError> {
        let cipher = Aes128::new_from_slice(key).map_err(|_| SrtpError::Crypto)?;
        Ok(Self { cipher })
    }

    /// XOR `data` with the AES-CM keystream that starts at counter block `iv`. A full
    /// 128-bit big-endian counter, as §4.1.1 defines it (the IV ends in two zero octets and
    /// a packet is far shorter than 2^16 blocks, so only the low 16 bits ever move).
    pub(crate) fn apply_keystream(&self, iv: [u8; 16], data: &mut [u8]) -> Result<(), SrtpError> {
        let core = CtrCore::<Aes128, Ctr128BE>::inner_iv_init(self.cipher.clone(), &iv.into());
        ctr::Ctr128BE::<Aes128>::from_core(core)
            .try_apply_keystream(data)
            .map_err(|_| SrtpError::Crypto)
    }
}

/// The same keystream for SRTCP, with the key schedule expanded per packet rather than kept:
/// an expanded AES key is 704 bytes (the run-time-detected backend keeps the software
/// schedule), and RTCP comes once every few seconds, so keeping only the 16-byte key saves
/// most of a session's memory for ~50 ns per RTCP packet.
pub(crate) struct AesCmOnDemand {
    key: [u8; 16],
}

impl AesCmOnDemand {
    pub(crate) fn new(key: &[u8; 16]) -> Result<Self, SrtpError> {
        Ok(Self { key: *key })
    }
}

impl Drop for AesCmOnDemand {
    fn drop(&mut self) {
        super::key::wipe(&mut self.key);
    }
}

/// AES-CM keystream, however the key schedule is kept.
pub(crate) trait Keystream {
    fn apply_keystream(&self, iv: [u8; 16], data: &mut [u8]) -> Result<(), SrtpError>;
}

impl Keystream for AesCm {
    fn apply_keystream(&self, iv: [u8; 16], data: &mut [u8]) -> Result<(), SrtpError> {
        AesCm::apply_keystream(self, iv, data)
    }
}

impl Keystream for AesCmOnDemand {
    fn apply_keystream(&self, iv: [u8; 16], data: &mut [u8]) -> Result<(), SrtpError> {
        AesCm::new(&self.key)?.apply_keystream(iv, data)
    }
}

/// HMAC-SHA1 with the key schedule (inner and outer padded states) computed once per
/// session key; each packet starts from a copy of the prepared state.
pub(crate) struct HmacSha1 {
    prepared: Hmac<Sha1>,
}

impl HmacSha1 {
    pub(crate) fn new(key: &[u8; 20]) -> Result<Self, SrtpError> {
        let prepared = <Hmac<Sha1> as Mac>::new_from_slice(key).map_err(|_| SrtpError::Crypto)?;
        Ok(Self { prepared })
    }

    pub(crate) fn sign(&self, data: &[u8]) -> [u8; 20] {
        let mut mac = self.prepared.clone();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}
