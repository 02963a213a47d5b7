//! The two primitives SRTP needs: AES-128 in counter mode (RFC 3711 §4.1.1) and
//! HMAC-SHA1 (§4.2.1), from RustCrypto (`aes` with AES-NI, `sha1`'s compression function
//! with SHA-NI, both detected at run time; the HMAC construction around it is ours). Per
//! packet they are at least as fast as aws-lc-rs here (AES-CTR level, HMAC faster):
//! benches/srtp.rs group `srtp_primitives` keeps both side by side. Being pure Rust,
//! the counting allocator of tests/srtp_alloc.rs sees every allocation they could make.

use aes::Aes128Enc;
use aes::cipher::{InnerIvInit, KeyInit, StreamCipher};
use ctr::{CtrCore, flavors::Ctr128BE};
use sha1::Sha1Core;
use sha1::digest::core_api::Block;

use super::SrtpError;

/// AES-128 keystream generator for one session key; the key schedule is expanded once.
pub(crate) struct AesCm {
    cipher: Aes128Enc,
}

impl AesCm {
    pub(crate) fn new(key: &[u8; 16]) -> Result<Self, SrtpError> {
        let cipher = Aes128Enc::new_from_slice(key).map_err(|_| SrtpError::Crypto)?;
        Ok(Self { cipher })
    }

    /// XOR `data` with the AES-CM keystream that starts at counter block `iv`. A full
    /// 128-bit big-endian counter, as §4.1.1 defines it (the IV ends in two zero octets and
    /// a packet is far shorter than 2^16 blocks, so only the low 16 bits ever move).
    pub(crate) fn apply_keystream(&self, iv: [u8; 16], data: &mut [u8]) -> Result<(), SrtpError> {
        // By reference: the expanded schedule is ~720 bytes, too much to copy per packet.
        let core = CtrCore::<&Aes128Enc, Ctr128BE>::inner_iv_init(&self.cipher, &iv.into());
        ctr::Ctr128BE::<&Aes128Enc>::from_core(core)
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

/// HMAC-SHA1 (RFC 2104) on the `sha1` crate's compression function (SHA-NI when the CPU
/// has it). Only the two chaining values after the padded key blocks are kept, 40 bytes,
/// where `hmac::Hmac<Sha1>` keeps ~150 (two hasher cores and a block buffer): four of
/// these are a seventh of a media session. Signing copies nothing but the last partial
/// block, which also makes it faster than the `hmac` crate here (benches/srtp.rs).
pub(crate) struct HmacSha1 {
    inner: [u32; 5],
    outer: [u32; 5],
}

/// SHA-1's initial chaining value (FIPS 180-4 §5.3.1).
const SHA1_IV: [u32; 5] = [
    0x6745_2301,
    0xEFCD_AB89,
    0x98BA_DCFE,
    0x1032_5476,
    0xC3D2_E1F0,
];

const BLOCK: usize = 64;

fn compress_block(state: &mut [u32; 5], block: &[u8]) {
    sha1::compress(
        state,
        std::slice::from_ref(Block::<Sha1Core>::from_slice(block)),
    );
}

impl HmacSha1 {
    pub(crate) fn new(key: &[u8; 20]) -> Self {
        let mut ipad = [0x36u8; BLOCK];
        let mut opad = [0x5cu8; BLOCK];
        for (i, k) in key.iter().enumerate() {
            ipad[i] ^= k;
            opad[i] ^= k;
        }
        let mut inner = SHA1_IV;
        let mut outer = SHA1_IV;
        compress_block(&mut inner, &ipad);
        compress_block(&mut outer, &opad);
        super::key::wipe(&mut ipad);
        super::key::wipe(&mut opad);
        Self { inner, outer }
    }

    pub(crate) fn sign(&self, data: &[u8]) -> [u8; 20] {
        let mut state = self.inner;
        let mut blocks = data.chunks_exact(BLOCK);
        for block in &mut blocks {
            compress_block(&mut state, block);
        }
        // The inner hash covers the key block too: its length counts 64 more bytes.
        finish(&mut state, blocks.remainder(), BLOCK + data.len());
        let digest = digest_bytes(state);
        let mut state = self.outer;
        finish(&mut state, &digest, BLOCK + digest.len());
        digest_bytes(state)
    }
}

fn digest_bytes(state: [u32; 5]) -> [u8; 20] {
    let mut out = [0u8; 20];
    for (bytes, word) in out.chunks_exact_mut(4).zip(state) {
        bytes.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// SHA-1 padding (FIPS 180-4 §5.1.1) of the last `tail` (< 64 bytes) of a message of
/// `total` bytes, compressed into `state`.
fn finish(state: &mut [u32; 5], tail: &[u8], total: usize) {
    let mut block = [0u8; BLOCK];
    block[..tail.len()].copy_from_slice(tail);
    block[tail.len()] = 0x80;
    if tail.len() + 9 > BLOCK {
        // No room for the length: it goes in a block of its own.
        compress_block(state, &block);
        block = [0u8; BLOCK];
    }
    let bits = (total as u64).wrapping_mul(8);
    block[BLOCK - 8..].copy_from_slice(&bits.to_be_bytes());
    compress_block(state, &block);
}

impl Drop for HmacSha1 {
    fn drop(&mut self) {
        // The chaining values stand in for the key: anyone holding them can sign.
        self.inner = [0; 5];
        self.outer = [0; 5];
        std::hint::black_box(&mut self.inner);
        std::hint::black_box(&mut self.outer);
    }
}

#[cfg(test)]
mod tests {
    use super::HmacSha1;
    use hmac::Mac;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc_2202_vectors() {
        let k1 = HmacSha1::new(&[0x0b; 20]);
        assert_eq!(
            k1.sign(b"Hi There").to_vec(),
            hex("b617318655057264e28bc0b6fb378c8ef146be00")
        );
        let k3 = HmacSha1::new(&[0xaa; 20]);
        assert_eq!(
            k3.sign(&[0xdd; 50]).to_vec(),
            hex("125d7342b9ac11cd91a39af48aa17b4f63f175d3")
        );
    }

    /// Every length across the one- and two-block padding cases and several full blocks,
    /// against the `hmac` crate.
    #[test]
    fn same_as_the_hmac_crate_for_every_length() {
        let key: [u8; 20] = std::array::from_fn(|i| i as u8 * 7 + 1);
        let ours = HmacSha1::new(&key);
        let data: Vec<u8> = (0..300u32).map(|i| (i * 31 % 251) as u8).collect();
        for len in 0..data.len() {
            let mut theirs = hmac::Hmac::<sha1::Sha1>::new_from_slice(&key).unwrap();
            theirs.update(&data[..len]);
            let expected: [u8; 20] = theirs.finalize().into_bytes().into();
            assert_eq!(ours.sign(&data[..len]), expected, "length {len}");
        }
    }
}
