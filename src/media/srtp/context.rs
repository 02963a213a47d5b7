//! One direction of one SRTP session: the session keys of a master key and the per-SSRC
//! state (RFC 3711 §3.2.1 cryptographic context).

use super::SrtpError;
use super::crypto::HmacSha1;
use super::crypto::{AesCmOnDemand, Keystream};
use super::kdf::{SessionKeys, rtcp_session_keys, session_keys};
use super::key::{MasterKey, Mki, SrtpProfile};
use super::replay::ReplayWindow;

/// SSRCs one context keeps state for. A leg carries one stream at a time (two around an
/// SSRC change), and a key change on re-INVITE starts a fresh context, so four cover a call;
/// each slot costs ~50 bytes twice (RTP and RTCP) in every session. Entries are never
/// evicted: dropping a replay window would let its packets be replayed.
pub const SSRC_CAPACITY: usize = 4;

const RTP_HEADER_LEN: usize = 12;
const RTCP_HEADER_LEN: usize = 8;
const SRTCP_INDEX_LEN: usize = 4;
/// RFC 3711 §3.3.1: the packet index is 48 bits.
const MAX_RTP_INDEX: u64 = (1 << 48) - 1;
/// RFC 3711 §3.4: the SRTCP index is 31 bits.
const MAX_RTCP_INDEX: u32 = 0x7fff_ffff;
const E_FLAG: u32 = 0x8000_0000;

#[derive(Clone, Copy, Default)]
struct RtpStream {
    ssrc: u32,
    /// ROC to assume before the first packet (0 unless signalled otherwise).
    initial_roc: u32,
    /// Highest index sent or received (ROC and s_l of §3.3.1) and, when receiving,
    /// which of the indexes behind it were seen.
    window: ReplayWindow,
}

#[derive(Clone, Copy, Default)]
struct RtcpStream {
    ssrc: u32,
    /// Sending: the SRTCP index of the next packet.
    next_index: u32,
    /// Receiving: the SRTCP indexes seen.
    window: ReplayWindow,
}

/// Fixed-capacity SSRC → state table; a linear scan of a few entries beats hashing.
struct SsrcTable<T> {
    entries: [T; SSRC_CAPACITY],
    len: usize,
}

trait HasSsrc {
    fn ssrc(&self) -> u32;
    fn window_mut(&mut self) -> &mut ReplayWindow;
}
impl HasSsrc for RtpStream {
    fn ssrc(&self) -> u32 {
        self.ssrc
    }
    fn window_mut(&mut self) -> &mut ReplayWindow {
        &mut self.window
    }
}
impl HasSsrc for RtcpStream {
    fn ssrc(&self) -> u32 {
        self.ssrc
    }
    fn window_mut(&mut self) -> &mut ReplayWindow {
        &mut self.window
    }
}

impl<T: HasSsrc + Copy + Default> SsrcTable<T> {
    fn new() -> Self {
        Self {
            entries: [T::default(); SSRC_CAPACITY],
            len: 0,
        }
    }

    fn position(&self, ssrc: u32) -> Option<usize> {
        self.entries[..self.len]
            .iter()
            .position(|e| e.ssrc() == ssrc)
    }

    /// The slot for `ssrc`, claiming a new one (filled by `fresh`) at first sight.
    fn slot(&mut self, ssrc: u32, fresh: impl FnOnce() -> T) -> Result<&mut T, SrtpError> {
        let at = match self.position(ssrc) {
            Some(at) => at,
            None if self.len < SSRC_CAPACITY => {
                self.entries[self.len] = fresh();
                self.len += 1;
                self.len - 1
            }
            None => {
                return Err(SrtpError::SsrcTableFull {
                    capacity: SSRC_CAPACITY,
                });
            }
        };
        Ok(&mut self.entries[at])
    }

    /// Where the state of `ssrc` is (`Some`), or `None` if it is new and there is room,
    /// without claiming a slot: a receiver keeps state only for SSRCs whose packets
    /// authenticated. Read in place rather than copied out: the copy of a stream cost
    /// store-forwarding stalls worth ~10 ns a packet.
    fn find(&self, ssrc: u32) -> Result<Option<usize>, SrtpError> {
        match self.position(ssrc) {
            Some(at) => Ok(Some(at)),
            None if self.len < SSRC_CAPACITY => Ok(None),
            None => Err(SrtpError::SsrcTableFull {
                capacity: SSRC_CAPACITY,
            }),
        }
    }

    /// Records an authenticated `index` in the stream [`Self::find`] gave (`at`), or claims
    /// the next slot for `fresh` when it gave none (nothing was claimed in between: the
    /// context is borrowed mutably for the whole packet).
    fn record(&mut self, at: Option<usize>, mut fresh: T, index: u64) {
        match at {
            Some(i) => self.entries[i].window_mut().record(index),
            None if self.len < SSRC_CAPACITY => {
                fresh.window_mut().record(index);
                self.entries[self.len] = fresh;
                self.len += 1;
            }
            None => {}
        }
    }
}

/// One direction of one SRTP stream set: one master key, several SSRCs, each with its
/// ROC, highest sequence number and replay window. Use one context to protect and
/// another to unprotect.
pub struct SrtpContext {
    profile: SrtpProfile,
    mki: Option<Mki>,
    rtp_keys: SessionKeys,
    rtcp_keys: SessionKeys<AesCmOnDemand>,
    rtp: SsrcTable<RtpStream>,
    rtcp: SsrcTable<RtcpStream>,
}

impl std::fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpContext")
            .field("profile", &self.profile)
            .field("mki", &self.mki)
            .field("rtp_ssrcs", &self.rtp.len)
            .field("rtcp_ssrcs", &self.rtcp.len)
            .finish_non_exhaustive()
    }
}

impl SrtpContext {
    pub fn new(key: &MasterKey) -> Result<Self, SrtpError> {
        Ok(Self {
            profile: key.profile(),
            mki: key.mki(),
            rtp_keys: session_keys(key)?,
            rtcp_keys: rtcp_session_keys(key)?,
            rtp: SsrcTable::new(),
            rtcp: SsrcTable::new(),
        })
    }

    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// Start `ssrc` at rollover counter `roc` instead of 0, as when a stream continues
    /// under a context that was rebuilt mid-call. Only before its first packet.
    pub fn set_rollover_counter(&mut self, ssrc: u32, roc: u32) -> Result<(), SrtpError> {
        let stream = self.rtp.slot(ssrc, || RtpStream {
            ssrc,
            ..RtpStream::default()
        })?;
        if stream.window.is_empty() {
            stream.initial_roc = roc;
        }
        Ok(())
    }

    /// The rollover counter of `ssrc` after the packets seen so far.
    pub fn rollover_counter(&self, ssrc: u32) -> Option<u32> {
        let at = self.rtp.position(ssrc)?;
        let stream = &self.rtp.entries[at];
        Some(match stream.window.max() {
            Some(max) => (max >> 16) as u32,
            None => stream.initial_roc,
        })
    }

    fn mki_len(&self) -> usize {
        self.mki.map_or(0, |m| m.len())
    }

    /// Protect the RTP packet in `buf[..len]`; returns the SRTP length.
    /// `buf` must have `MKI + tag` (at most [`super::MAX_TRAILER`]) bytes beyond `len`.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let tag_len = self.profile.rtp_tag_len();
        let mki_len = self.mki_len();
        let out_len = len + mki_len + tag_len;
        if buf.len() < out_len {
            return Err(SrtpError::NoTailRoom {
                needed: out_len,
                available: buf.len(),
            });
        }
        let header_len = rtp_header_len(&buf[..len])?;
        let (ssrc, seq) = rtp_ssrc_seq(buf);
        let stream = self.rtp.slot(ssrc, || RtpStream {
            ssrc,
            ..RtpStream::default()
        })?;
        let index = estimate_index(stream, seq)?;

        let keys = &self.rtp_keys;
        keys.cipher
            .apply_keystream(rtp_iv(keys.salt, ssrc, index), &mut buf[header_len..len])?;
        // §4.2: the tag covers the packet followed by the ROC; the ROC goes where the
        // trailer will be so one HMAC pass reads it all.
        let roc = ((index >> 16) as u32).to_be_bytes();
        buf[len..len + 4].copy_from_slice(&roc);
        let tag = keys.auth.sign(&buf[..len + 4]);
        if let Some(mki) = self.mki {
            buf[len..len + mki_len].copy_from_slice(mki.as_bytes());
        }
        buf[len + mki_len..out_len].copy_from_slice(&tag[..tag_len]);
        stream.window.record(index);
        Ok(out_len)
    }

    /// Authenticate and decrypt the SRTP packet that fills `buf`; returns the RTP length.
    /// Nothing about the stream changes unless the tag verifies.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.profile.rtp_tag_len();
        let trailer = self.mki_len() + tag_len;
        let min = RTP_HEADER_LEN + trailer;
        if buf.len() < min {
            return Err(SrtpError::TooShort {
                len: buf.len(),
                min,
            });
        }
        let auth_end = buf.len() - trailer;
        let header_len = rtp_header_len(&buf[..auth_end])?;
        self.check_mki(&buf[auth_end..auth_end + self.mki_len()])?;
        let (ssrc, seq) = rtp_ssrc_seq(buf);
        let at = self.rtp.find(ssrc)?;
        let fresh = RtpStream {
            ssrc,
            ..RtpStream::default()
        };
        let stream = at.map_or(&fresh, |i| &self.rtp.entries[i]);
        let index = estimate_index(stream, seq)?;
        stream.window.check(index)?;

        let keys = &self.rtp_keys;
        let roc = ((index >> 16) as u32).to_be_bytes();
        verify_tag(&keys.auth, buf, auth_end, roc, tag_len)?;
        keys.cipher.apply_keystream(
            rtp_iv(keys.salt, ssrc, index),
            &mut buf[header_len..auth_end],
        )?;
        self.rtp.record(at, fresh, index);
        Ok(auth_end)
    }

    /// Protect the RTCP compound packet in `buf[..len]` (RFC 3711 §3.4); returns the
    /// SRTCP length. `buf` must have `4 + MKI + 10` bytes beyond `len`.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let tag_len = self.profile.rtcp_tag_len();
        let mki_len = self.mki_len();
        let auth_end = len + SRTCP_INDEX_LEN;
        let out_len = auth_end + mki_len + tag_len;
        if buf.len() < out_len {
            return Err(SrtpError::NoTailRoom {
                needed: out_len,
                available: buf.len(),
            });
        }
        check_rtcp_header(&buf[..len])?;
        let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let stream = self.rtcp.slot(ssrc, || RtcpStream {
            ssrc,
            // libsrtp sends its first SRTCP packet with index 1; we match it so its
            // published vectors are byte-exact (any start is valid for a receiver).
            next_index: 1,
            ..RtcpStream::default()
        })?;
        let index = stream.next_index;
        if index > MAX_RTCP_INDEX {
            return Err(SrtpError::KeyExhausted);
        }

        let keys = &self.rtcp_keys;
        keys.cipher.apply_keystream(
            rtp_iv(keys.salt, ssrc, u64::from(index)),
            &mut buf[RTCP_HEADER_LEN..len],
        )?;
        buf[len..auth_end].copy_from_slice(&(E_FLAG | index).to_be_bytes());
        let tag = keys.auth.sign(&buf[..auth_end]);
        if let Some(mki) = self.mki {
            buf[auth_end..auth_end + mki_len].copy_from_slice(mki.as_bytes());
        }
        buf[auth_end + mki_len..out_len].copy_from_slice(&tag[..tag_len]);
        stream.next_index = index + 1;
        Ok(out_len)
    }

    /// Authenticate and decrypt the SRTCP packet that fills `buf`; returns the RTCP length.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.profile.rtcp_tag_len();
        let trailer = self.mki_len() + tag_len;
        let min = RTCP_HEADER_LEN + SRTCP_INDEX_LEN + trailer;
        if buf.len() < min {
            return Err(SrtpError::TooShort {
                len: buf.len(),
                min,
            });
        }
        check_rtcp_header(buf)?;
        let auth_end = buf.len() - trailer;
        self.check_mki(&buf[auth_end..auth_end + self.mki_len()])?;
        let rtcp_end = auth_end - SRTCP_INDEX_LEN;
        let word = u32::from_be_bytes([
            buf[rtcp_end],
            buf[rtcp_end + 1],
            buf[rtcp_end + 2],
            buf[rtcp_end + 3],
        ]);
        let index = word & MAX_RTCP_INDEX;
        let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let at = self.rtcp.find(ssrc)?;
        let fresh = RtcpStream {
            ssrc,
            ..RtcpStream::default()
        };
        let stream = at.map_or(&fresh, |i| &self.rtcp.entries[i]);
        stream.window.check(u64::from(index))?;

        let keys = &self.rtcp_keys;
        let tag = keys.auth.sign(&buf[..auth_end]);
        tags_match(&tag[..tag_len], &buf[buf.len() - tag_len..])?;
        // §3.4: E = 0 means the sender did not encrypt, which only UNENCRYPTED_SRTCP
        // (RFC 4568 §6.3.2) allows; we never negotiate it.
        if word & E_FLAG == 0 {
            return Err(SrtpError::UnencryptedSrtcp);
        }
        keys.cipher.apply_keystream(
            rtp_iv(keys.salt, ssrc, u64::from(index)),
            &mut buf[RTCP_HEADER_LEN..rtcp_end],
        )?;
        self.rtcp.record(at, fresh, u64::from(index));
        Ok(rtcp_end)
    }

    fn check_mki(&self, received: &[u8]) -> Result<(), SrtpError> {
        match self.mki {
            Some(mki) if mki.as_bytes() != received => Err(SrtpError::MkiMismatch),
            _ => Ok(()),
        }
    }
}

/// Verify the SRTP tag (the last `tag_len` octets of `buf`): HMAC over `buf[..auth_end]`
/// followed by the ROC (§4.2). The ROC is written over the first trailer octets for the
/// HMAC pass, so the tag is read out first and the trailer put back after.
fn verify_tag(
    auth: &HmacSha1,
    buf: &mut [u8],
    auth_end: usize,
    roc: [u8; 4],
    tag_len: usize,
) -> Result<(), SrtpError> {
    let mut trailer = [0u8; super::MAX_TRAILER];
    let trailer_len = buf.len() - auth_end;
    trailer[..trailer_len].copy_from_slice(&buf[auth_end..]);
    buf[auth_end..auth_end + 4].copy_from_slice(&roc);
    let tag = auth.sign(&buf[..auth_end + 4]);
    buf[auth_end..].copy_from_slice(&trailer[..trailer_len]);
    tags_match(
        &tag[..tag_len],
        &trailer[trailer_len - tag_len..trailer_len],
    )
}

/// Constant-time tag comparison (`constant_time_eq`: word-wide, no early exit). `subtle`
/// hid every byte behind its own optimization barrier, ~15 ns for ten bytes; aws-lc's
/// `CRYPTO_memcmp` cost a call more than the bytes it compares.
fn tags_match(computed: &[u8], received: &[u8]) -> Result<(), SrtpError> {
    if constant_time_eq::constant_time_eq(computed, received) {
        Ok(())
    } else {
        Err(SrtpError::AuthFailed)
    }
}

/// RFC 3550 §5.1 header length: fixed part, CSRCs and (RFC 8285) the extension, all of
/// which stay in clear and are authenticated.
fn rtp_header_len(packet: &[u8]) -> Result<usize, SrtpError> {
    if packet.len() < RTP_HEADER_LEN {
        return Err(SrtpError::TooShort {
            len: packet.len(),
            min: RTP_HEADER_LEN,
        });
    }
    let version = packet[0] >> 6;
    if version != 2 {
        return Err(SrtpError::BadVersion { version });
    }
    let csrc_count = usize::from(packet[0] & 0x0f);
    let mut len = RTP_HEADER_LEN + 4 * csrc_count;
    if packet[0] & 0x10 != 0 {
        let Some(ext) = packet.get(len..len + 4) else {
            return Err(SrtpError::TooShort {
                len: packet.len(),
                min: len + 4,
            });
        };
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    if packet.len() < len {
        return Err(SrtpError::TooShort {
            len: packet.len(),
            min: len,
        });
    }
    Ok(len)
}

fn check_rtcp_header(packet: &[u8]) -> Result<(), SrtpError> {
    if packet.len() < RTCP_HEADER_LEN {
        return Err(SrtpError::TooShort {
            len: packet.len(),
            min: RTCP_HEADER_LEN,
        });
    }
    let version = packet[0] >> 6;
    if version != 2 {
        return Err(SrtpError::BadVersion { version });
    }
    Ok(())
}

fn rtp_ssrc_seq(packet: &[u8]) -> (u32, u16) {
    (
        u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
        u16::from_be_bytes([packet[2], packet[3]]),
    )
}

/// RFC 3711 §3.3.1 / Appendix A: the index whose ROC guess puts `seq` closest to the
/// highest sequence number seen (s_l).
fn estimate_index(stream: &RtpStream, seq: u16) -> Result<u64, SrtpError> {
    let Some(max) = stream.window.max() else {
        return Ok((u64::from(stream.initial_roc) << 16) | u64::from(seq));
    };
    let roc = max >> 16;
    let s_l = (max & 0xffff) as u16;
    let seq_wide = u64::from(seq);
    let guess_roc = if s_l < 0x8000 {
        if seq > s_l && seq - s_l > 0x8000 {
            // A late packet from before the last wrap. Under ROC 0 there was no earlier
            // wrap: take it as a jump forward and let the tag decide.
            roc.saturating_sub(1)
        } else {
            roc
        }
    } else if s_l - 0x8000 > seq {
        roc + 1
    } else {
        roc
    };
    let index = (guess_roc << 16) | seq_wide;
    if index > MAX_RTP_INDEX {
        return Err(SrtpError::KeyExhausted);
    }
    Ok(index)
}

/// §4.1.1 IV: (salt · 2^16) XOR (SSRC · 2^64) XOR (index · 2^16); `salt` comes already
/// multiplied.
fn rtp_iv(salt: u128, ssrc: u32, index: u64) -> [u8; 16] {
    (salt ^ (u128::from(ssrc) << 64) ^ (u128::from(index) << 16)).to_be_bytes()
}
