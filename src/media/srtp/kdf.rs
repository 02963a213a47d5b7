//! RFC 3711 §4.3 key derivation with key derivation rate 0: every session key is
//! derived once, at index 0, from the master key.

use super::SrtpError;
use super::crypto::{AesCm, AesCmOnDemand, HmacSha1};
use super::key::{MasterKey, wipe};

/// §4.3.2 labels.
#[derive(Clone, Copy)]
pub(crate) enum Label {
    RtpCipher = 0,
    RtpAuth = 1,
    RtpSalt = 2,
    RtcpCipher = 3,
    RtcpAuth = 4,
    RtcpSalt = 5,
}

/// §4.3.3 AES-CM PRF: the keystream for IV = (label · 2^48 XOR master_salt) · 2^16.
/// With r = 0 the label lands in octet 7 of the 14-octet salt.
pub(crate) fn derive(
    prf: &AesCm,
    master_salt: &[u8; 14],
    label: Label,
    out: &mut [u8],
) -> Result<(), SrtpError> {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(master_salt);
    iv[7] ^= label as u8;
    out.fill(0);
    prf.apply_keystream(iv, out)
}

/// The session keys of one direction-kind: SRTP keeps its AES schedule expanded, SRTCP
/// (rare packets) expands it per packet.
pub(crate) struct SessionKeys<C = AesCm> {
    pub(crate) cipher: C,
    pub(crate) auth: HmacSha1,
    /// The session salt times 2^16 (§4.1.1), as a number: the per-packet IV is then built
    /// in registers. Built byte by byte in memory, its 16-byte load waited for the byte
    /// stores to retire (~8 ns a packet).
    pub(crate) salt: u128,
}

fn salt_times_2_16(salt: &[u8; 14]) -> u128 {
    let mut block = [0u8; 16];
    block[..14].copy_from_slice(salt);
    let value = u128::from_be_bytes(block);
    wipe(&mut block);
    value
}

impl<C> Drop for SessionKeys<C> {
    fn drop(&mut self) {
        self.salt = 0;
        std::hint::black_box(&mut self.salt);
    }
}

/// Derive the three session keys of SRTP.
pub(crate) fn session_keys(master: &MasterKey) -> Result<SessionKeys, SrtpError> {
    let derived = derive_session_keys(master, false)?;
    Ok(SessionKeys {
        cipher: AesCm::new(&derived.cipher_key)?,
        auth: HmacSha1::new(&derived.auth_key),
        salt: salt_times_2_16(&derived.salt),
    })
}

/// Derive the three session keys of SRTCP.
pub(crate) fn rtcp_session_keys(
    master: &MasterKey,
) -> Result<SessionKeys<AesCmOnDemand>, SrtpError> {
    let derived = derive_session_keys(master, true)?;
    Ok(SessionKeys {
        cipher: AesCmOnDemand::new(&derived.cipher_key)?,
        auth: HmacSha1::new(&derived.auth_key),
        salt: salt_times_2_16(&derived.salt),
    })
}

/// The derived key material, for known-answer tests of the KDF alone.
#[derive(Clone, PartialEq, Eq)]
pub struct DerivedKeys {
    pub cipher_key: [u8; 16],
    pub auth_key: [u8; 20],
    pub salt: [u8; 14],
}

impl std::fmt::Debug for DerivedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DerivedKeys(<redacted>)")
    }
}

impl Drop for DerivedKeys {
    fn drop(&mut self) {
        wipe(&mut self.cipher_key);
        wipe(&mut self.auth_key);
        wipe(&mut self.salt);
    }
}

/// Run the KDF and hand back the session keys themselves: only for tests that must tell
/// a KDF bug from a packet bug.
pub fn derive_session_keys(master: &MasterKey, rtcp: bool) -> Result<DerivedKeys, SrtpError> {
    let prf = AesCm::new(master.key())?;
    let (lc, la, ls) = if rtcp {
        (Label::RtcpCipher, Label::RtcpAuth, Label::RtcpSalt)
    } else {
        (Label::RtpCipher, Label::RtpAuth, Label::RtpSalt)
    };
    let mut keys = DerivedKeys {
        cipher_key: [0; 16],
        auth_key: [0; 20],
        salt: [0; 14],
    };
    derive(&prf, master.salt(), lc, &mut keys.cipher_key)?;
    derive(&prf, master.salt(), la, &mut keys.auth_key)?;
    derive(&prf, master.salt(), ls, &mut keys.salt)?;
    Ok(keys)
}

/// AES-CM keystream for a raw session key and IV: for the RFC 3711 B.2 known-answer test.
pub fn aes_cm_keystream(
    session_key: &[u8; 16],
    iv: [u8; 16],
    out: &mut [u8],
) -> Result<(), SrtpError> {
    let cm = AesCm::new(session_key)?;
    out.fill(0);
    cm.apply_keystream(iv, out)
}
