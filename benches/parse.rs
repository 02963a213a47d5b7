//! SIP message parsing throughput on the Teams-style INVITE with SDES SDP
//! (../shared/testdata/sip/invite-srtp-sdes.sip, 1,237 octets): parse only,
//! parse plus the typed headers a transaction needs, serialisation, and
//! rsip 0.4 beside it as the baseline.

use std::hint::black_box;
use std::path::Path;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use drawbridge::sip::message::Message;

fn invite() -> Bytes {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/sip/invite-srtp-sdes.sip");
    match std::fs::read(&path) {
        Ok(b) => Bytes::from(b),
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

fn bench(c: &mut Criterion) {
    let raw = invite();
    let mut g = c.benchmark_group("sip_invite_1237B");
    g.throughput(Throughput::Elements(1));

    g.bench_function("parse", |b| {
        b.iter(|| black_box(Message::parse(black_box(raw.clone()))).is_ok())
    });

    g.bench_function("parse_typed_via_from_to_cseq_callid", |b| {
        b.iter(|| {
            let Ok(m) = Message::parse(black_box(raw.clone())) else {
                return false;
            };
            let h = m.headers();
            let via = h.top_via();
            let from = h.from();
            let to = h.to();
            let cseq = h.cseq();
            let call_id = h.call_id().map(str::len);
            black_box((via, from, to, cseq, call_id)).0.is_ok()
        })
    });

    let parsed = Message::parse(raw.clone()).ok();
    g.bench_function("to_bytes", |b| {
        b.iter(|| black_box(parsed.as_ref().map(Message::to_bytes)))
    });

    g.bench_function("rsip_0_4_parse_baseline", |b| {
        b.iter(|| black_box(rsip::SipMessage::try_from(black_box(&raw[..]))).is_ok())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
