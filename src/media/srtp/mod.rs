//! SRTP and SRTCP (RFC 3711) in place, behind our own type.
//!
//! The framing (header parsing, packet index and ROC, replay window, SRTCP index, MKI,
//! tags) is ours; AES and HMAC-SHA1 come from RustCrypto (see crypto.rs for why). Packets are transformed in the
//! caller's buffer with no allocation: the caller keeps [`MAX_TRAILER`] bytes of tail room
//! for what protection appends.

mod context;
mod crypto;
mod kdf;
mod key;
mod replay;

pub use context::{SSRC_CAPACITY, SrtpContext};
pub use kdf::{DerivedKeys, aes_cm_keystream, derive_session_keys};
pub use key::{MAX_MKI_LEN, MasterKey, Mki, SrtpProfile};

/// The most bytes protection appends to a packet: the SRTCP E flag and index (4), the
/// longest MKI we accept and the 80-bit tag. Callers keep this much tail room.
pub const MAX_TRAILER: usize = 4 + MAX_MKI_LEN + 10;

/// Why a packet could not be protected or unprotected, or a key not built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    #[error("packet of {len} bytes is shorter than the {min} its header and trailer need")]
    TooShort { len: usize, min: usize },
    #[error("RTP/RTCP version {version}, expected 2")]
    BadVersion { version: u8 },
    #[error("authentication tag does not verify")]
    AuthFailed,
    #[error("packet index {index} was already received")]
    Replayed { index: u64 },
    #[error("packet index {index} is behind the replay window")]
    TooOld { index: u64 },
    #[error("MKI of the packet does not name our master key")]
    MkiMismatch,
    #[error("more than {capacity} SSRCs on one SRTP context")]
    SsrcTableFull { capacity: usize },
    #[error("master key of {got} bytes, the profile needs {expected}")]
    BadKeyLength { expected: usize, got: usize },
    #[error("master salt of {got} bytes, the profile needs {expected}")]
    BadSaltLength { expected: usize, got: usize },
    #[error("MKI of {len} bytes: between 1 and {max} supported")]
    BadMkiLength { len: usize, max: usize },
    #[error("MKI value {value} does not fit in {len} bytes")]
    MkiValueTooLarge { value: u64, len: usize },
    #[error("buffer of {available} bytes has no room for the {needed} protection needs")]
    NoTailRoom { needed: usize, available: usize },
    #[error("SRTCP packet with the E flag cleared; unencrypted SRTCP is not negotiated")]
    UnencryptedSrtcp,
    #[error("packet index space of the master key is used up; rekey")]
    KeyExhausted,
    #[error("the OS random number generator failed")]
    Rng,
    #[error("the crypto library refused a key or an operation")]
    Crypto,
}

impl SrtpError {
    /// A bounded label for drop counters.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooShort { .. } => "too_short",
            Self::BadVersion { .. } => "bad_version",
            Self::AuthFailed => "auth",
            Self::Replayed { .. } => "replay",
            Self::TooOld { .. } => "too_old",
            Self::MkiMismatch => "mki",
            Self::SsrcTableFull { .. } => "ssrc_table_full",
            Self::BadKeyLength { .. }
            | Self::BadSaltLength { .. }
            | Self::BadMkiLength { .. }
            | Self::MkiValueTooLarge { .. } => "bad_key",
            Self::NoTailRoom { .. } => "no_tail_room",
            Self::UnencryptedSrtcp => "unencrypted",
            Self::KeyExhausted => "key_exhausted",
            Self::Rng => "rng",
            Self::Crypto => "crypto",
        }
    }
}

/// RFC 5761 §4: with RTP and RTCP on one port, the second octet tells them apart: RTCP
/// packet types 192..=223 read as marker + payload type 64..=95, which RTP must not use.
pub fn is_rtcp(packet: &[u8]) -> bool {
    packet
        .get(1)
        .is_some_and(|b| (64..=95).contains(&(b & 0x7f)))
}

#[cfg(test)]
mod tests;
