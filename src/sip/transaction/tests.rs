//! Behaviour shared by the four machines.

use std::time::Duration;

use bytes::Bytes;

use super::testing::{Clock, drain};
use super::*;

#[test]
fn reliable_transport_sets_timers_d_i_j_k_to_zero() {
    let t = TimerConfig::default();
    for reliable in [true, false] {
        let mut clock = Clock::new();
        let expect =
            |unreliable: Duration, now| Some(if reliable { now } else { now + unreliable });

        let mut ict = InviteClient::start(Bytes::new(), reliable, &t, clock.now);
        ict.handle_response(486, clock.advance_ms(10));
        assert_eq!(
            ict.timer_deadline(Timer::D),
            expect(Duration::from_secs(32), clock.now)
        );

        let mut ist = InviteServer::start(reliable, &t, clock.now);
        ist.respond(486, Bytes::new(), clock.now).unwrap();
        ist.handle_ack(clock.advance_ms(10));
        assert_eq!(ist.timer_deadline(Timer::I), expect(t.t4(), clock.now));

        let mut nist = NonInviteServer::start(reliable, &t, clock.now);
        nist.respond(200, Bytes::new(), clock.advance_ms(10))
            .unwrap();
        assert_eq!(
            nist.timer_deadline(Timer::J),
            expect(t.t1() * 64, clock.now)
        );

        let mut nict = NonInviteClient::start(Bytes::new(), reliable, &t, clock.now);
        nict.handle_response(200, clock.advance_ms(10));
        assert_eq!(nict.timer_deadline(Timer::K), expect(t.t4(), clock.now));

        if reliable {
            // Zero means due at once: one timeout call ends all four.
            ict.set_ack(Bytes::new());
            for out in [
                {
                    ict.handle_timeout(clock.now);
                    drain(&mut ict)
                },
                {
                    ist.handle_timeout(clock.now);
                    drain(&mut ist)
                },
                {
                    nist.handle_timeout(clock.now);
                    drain(&mut nist)
                },
                {
                    nict.handle_timeout(clock.now);
                    drain(&mut nict)
                },
            ] {
                assert_eq!(out.last(), Some(&Output::Terminated));
            }
        }
    }
}

#[test]
fn retransmission_timers_run_only_on_unreliable_transports() {
    let t = TimerConfig::default();
    let clock = Clock::new();
    for reliable in [true, false] {
        let ict = InviteClient::start(Bytes::new(), reliable, &t, clock.now);
        let nict = NonInviteClient::start(Bytes::new(), reliable, &t, clock.now);
        let mut ist = InviteServer::start(reliable, &t, clock.now);
        ist.respond(500, Bytes::new(), clock.now).unwrap();
        assert_eq!(ict.timer_deadline(Timer::A).is_some(), !reliable);
        assert_eq!(nict.timer_deadline(Timer::E).is_some(), !reliable);
        assert_eq!(ist.timer_deadline(Timer::G).is_some(), !reliable);
        // The transaction timeouts run on every transport.
        assert!(ict.timer_deadline(Timer::B).is_some());
        assert!(nict.timer_deadline(Timer::F).is_some());
        assert!(ist.timer_deadline(Timer::H).is_some());
    }
}

#[test]
fn table_without_rfc6026_takes_an_invite_retransmission_after_2xx_for_a_new_request() {
    // The RFC 3261 flaw RFC 6026 fixes, kept selectable: documents why Accepted is the default.
    let t = TimerConfig {
        rfc6026_accepted: false,
        ..TimerConfig::default()
    };
    let clock = Clock::new();
    let mut table: Transactions<()> = Transactions::new(t);
    let invite = crate::sip::Method::Invite;
    let key = TransactionKey::server(&RequestFields {
        method: &invite,
        branch: Some("z9hG4bKstrict"),
        sent_by: "192.0.2.1",
        request_uri: "sip:a@192.0.2.2",
        to_tag: None,
        from_tag: Some("f"),
        call_id: "c",
        cseq: 1,
        top_via: "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKstrict",
    });
    let ServerDisposition::New(id) = table.on_request(key.clone(), &invite, false, (), clock.now)
    else {
        panic!("expected a new transaction");
    };
    table.respond(id, 200, Bytes::new(), clock.now).unwrap();
    assert_eq!(drain(&mut table).last(), Some(&(id, Output::Terminated)));
    assert!(matches!(
        table.on_request(key, &invite, false, (), clock.now),
        ServerDisposition::New(_)
    ));
}
