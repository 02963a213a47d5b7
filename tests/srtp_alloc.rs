//! Steady-state SRTP protect and unprotect allocate nothing: a counting global allocator
//! watches a loop of packets after the first ones (which claim the SSRC slots).
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The only unsafe in the crate's tests: forwarding GlobalAlloc to the system allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use drawbridge::media::srtp::{MAX_TRAILER, MasterKey, Mki, SrtpContext, SrtpProfile};

struct Counting;

thread_local! {
    // Counted per thread so the test harness's own threads do not disturb the count.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn rtp(buf: &mut [u8], seq: u16, ssrc: u32) {
    buf[..12].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    buf[12..172].fill(0xd5);
}

fn rtcp(buf: &mut [u8], ssrc: u32) {
    buf[..8].copy_from_slice(&[0x80, 200, 0, 6, 0, 0, 0, 0]);
    buf[4..8].copy_from_slice(&ssrc.to_be_bytes());
    buf[8..28].fill(0x11);
}

fn run(key: &MasterKey) {
    let mut tx = SrtpContext::new(key).unwrap();
    let mut rx = SrtpContext::new(key).unwrap();
    let mut buf = [0u8; 172 + MAX_TRAILER];
    let ssrcs = [0x1111_1111u32, 0x2222_2222];
    // Warm-up: first sight of each SSRC, first use of the crypto library.
    for (i, &ssrc) in ssrcs.iter().enumerate() {
        rtp(&mut buf, i as u16, ssrc);
        let n = tx.protect_rtp(&mut buf, 172).unwrap();
        rx.unprotect_rtp(&mut buf[..n]).unwrap();
        rtcp(&mut buf, ssrc);
        let n = tx.protect_rtcp(&mut buf, 28).unwrap();
        rx.unprotect_rtcp(&mut buf[..n]).unwrap();
    }

    let before = allocations();
    // 70,000 packets: across a sequence number wrap (ROC 0 -> 1).
    for i in 0..70_000u32 {
        let ssrc = ssrcs[(i % 2) as usize];
        rtp(&mut buf, (i + 2) as u16, ssrc);
        let n = tx.protect_rtp(&mut buf, 172).unwrap();
        let m = rx.unprotect_rtp(&mut buf[..n]).unwrap();
        assert_eq!(m, 172);
        if i % 100 == 0 {
            rtcp(&mut buf, ssrc);
            let n = tx.protect_rtcp(&mut buf, 28).unwrap();
            assert_eq!(rx.unprotect_rtcp(&mut buf[..n]).unwrap(), 28);
        }
    }
    // Rejections allocate nothing either (an error value, no message string).
    rtp(&mut buf, 5, ssrcs[0]);
    let n = tx.protect_rtp(&mut buf, 172).unwrap();
    buf[20] ^= 1;
    assert!(rx.unprotect_rtp(&mut buf[..n]).is_err());
    let after = allocations();
    assert_eq!(after - before, 0, "allocations in steady state");
    assert_eq!(rx.rollover_counter(ssrcs[0]), Some(1));
    // The counter does count: one boxed value is one allocation.
    let boxed = std::hint::black_box(Box::new(after));
    assert_eq!(allocations() - after, 1, "{boxed}");
}

#[test]
fn protect_and_unprotect_allocate_nothing_per_packet_80() {
    run(&MasterKey::new(SrtpProfile::AesCm128HmacSha1_80, &[1; 16], &[2; 14], None).unwrap());
}

#[test]
fn protect_and_unprotect_allocate_nothing_per_packet_32_with_mki() {
    let mki = Some(Mki::new(1, 1).unwrap());
    run(&MasterKey::new(SrtpProfile::AesCm128HmacSha1_32, &[3; 16], &[4; 14], mki).unwrap());
}
