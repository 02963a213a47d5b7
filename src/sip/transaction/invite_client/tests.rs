use super::*;
use crate::sip::transaction::testing::{Clock, drain, run_timers, step, transmit_times};

const INVITE: &[u8] = b"INVITE sip:+15551234@sbc.example.com SIP/2.0\r\n\r\n";
const ACK: &[u8] = b"ACK sip:+15551234@sbc.example.com SIP/2.0\r\n\r\n";

fn start(reliable: bool, t: &TimerConfig, clock: &Clock) -> InviteClient {
    InviteClient::start(Bytes::from_static(INVITE), reliable, t, clock.now)
}

fn invite() -> Bytes {
    Bytes::from_static(INVITE)
}

fn ack() -> Bytes {
    Bytes::from_static(ACK)
}

#[test]
fn invite_client_doubles_timer_a_without_t2_cap_on_udp() {
    // §17.1.1.2: unlike timers E and G, timer A is not capped at T2; with the defaults the
    // INVITE goes out 7 times: at 0, 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s.
    let mut clock = Clock::new();
    let mut tx = start(false, &TimerConfig::default(), &clock);
    assert_eq!(drain(&mut tx), vec![Output::Transmit(invite())]);
    let timeline = run_timers(&mut tx, &mut clock);
    assert_eq!(
        transmit_times(&timeline, &invite()),
        vec![500, 1_500, 3_500, 7_500, 15_500, 31_500]
    );
    assert_eq!(
        timeline[timeline.len() - 2..],
        [(32_000, Output::Timeout), (32_000, Output::Terminated)]
    );
    assert!(tx.is_terminated());
}

#[test]
fn invite_client_times_out_with_timer_b_after_64_t1() {
    for reliable in [false, true] {
        let t = TimerConfig {
            t1_ms: 100,
            ..TimerConfig::default()
        };
        let mut clock = Clock::new();
        let mut tx = start(reliable, &t, &clock);
        drain(&mut tx);
        assert_eq!(tx.timer_deadline(Timer::B), Some(clock.at(6_400)));
        let timeline = run_timers(&mut tx, &mut clock);
        let (end, last) = timeline.split_at(timeline.len() - 2);
        assert_eq!(
            last,
            [(6_400, Output::Timeout), (6_400, Output::Terminated)],
            "reliable={reliable}"
        );
        // Over a reliable transport the transport retransmits, so timer A never runs.
        assert_eq!(end.is_empty(), reliable);
    }
}

#[test]
fn invite_client_stops_resending_on_1xx() {
    let mut clock = Clock::new();
    let mut tx = start(false, &TimerConfig::default(), &clock);
    drain(&mut tx);
    assert_eq!(
        step(&mut tx, &mut clock),
        Some(vec![Output::Transmit(invite())])
    );
    tx.handle_response(180, clock.advance_ms(200));
    assert_eq!(drain(&mut tx), vec![Output::Deliver { status: 180 }]);
    assert_eq!(tx.state(), InviteClientState::Proceeding);
    // Neither A nor B run in Proceeding: only a final response (or the TU's CANCEL) ends it.
    assert_eq!(tx.poll_timeout(), None);
    tx.handle_response(183, clock.advance_ms(1_000));
    assert_eq!(drain(&mut tx), vec![Output::Deliver { status: 183 }]);
}

/// A reliable INVITE that rang at 100 ms and was CANCELled at 1.1 s.
fn cancelled_after_ringing() -> (Clock, InviteClient) {
    let mut clock = Clock::new();
    let mut tx = start(true, &TimerConfig::default(), &clock);
    drain(&mut tx);
    tx.handle_response(180, clock.advance_ms(100));
    drain(&mut tx);
    tx.cancelled(clock.advance_ms(1_000));
    (clock, tx)
}

#[test]
fn a_cancelled_invite_without_a_final_answer_times_out_after_64_t1() {
    // §9.1: a peer that takes the CANCEL but never ends the INVITE does not hold it for good.
    let (mut clock, mut tx) = cancelled_after_ringing();
    // A provisional after the CANCEL changes nothing.
    tx.handle_response(183, clock.advance_ms(1_000));
    assert_eq!(drain(&mut tx), vec![Output::Deliver { status: 183 }]);
    let timeline = run_timers(&mut tx, &mut clock);
    assert_eq!(
        timeline,
        [(33_100, Output::Timeout), (33_100, Output::Terminated)]
    );
}

#[test]
fn a_cancelled_invite_that_gets_its_487_ends_as_usual() {
    let (mut clock, mut tx) = cancelled_after_ringing();
    tx.handle_response(487, clock.advance_ms(50));
    assert_eq!(
        drain(&mut tx),
        vec![
            Output::Deliver { status: 487 },
            Output::NeedAck { status: 487 }
        ]
    );
    assert_eq!(tx.state(), InviteClientState::Completed);
    assert_eq!(tx.timer_deadline(Timer::B), None);
}

#[test]
fn invite_client_acks_every_retransmitted_non_2xx_final() {
    let mut clock = Clock::new();
    let mut tx = start(false, &TimerConfig::default(), &clock);
    drain(&mut tx);
    tx.handle_response(100, clock.advance_ms(50));
    tx.handle_response(486, clock.advance_ms(2_000));
    assert_eq!(
        drain(&mut tx),
        vec![
            Output::Deliver { status: 100 },
            Output::Deliver { status: 486 },
            Output::NeedAck { status: 486 }
        ]
    );
    assert_eq!(tx.state(), InviteClientState::Completed);
    tx.set_ack(ack());
    assert_eq!(drain(&mut tx), vec![Output::Transmit(ack())]);
    for _ in 0..3 {
        // The server resends its final when our ACK is lost: ACK again, don't deliver again.
        tx.handle_response(486, clock.advance_ms(1_000));
        assert_eq!(drain(&mut tx), vec![Output::Transmit(ack())]);
    }
    // Other responses in Completed are absorbed.
    tx.handle_response(200, clock.now);
    tx.handle_response(180, clock.now);
    assert_eq!(drain(&mut tx), vec![]);
    // Timer D: 32 s after the first final on UDP.
    assert_eq!(tx.poll_timeout(), Some(clock.at(2_050 + 32_000)));
    assert_eq!(step(&mut tx, &mut clock), Some(vec![Output::Terminated]));
}

#[test]
fn invite_client_on_reliable_transport_sends_ack_once_and_ends_with_zero_timer_d() {
    let mut clock = Clock::new();
    let mut tx = start(true, &TimerConfig::default(), &clock);
    drain(&mut tx);
    tx.handle_response(603, clock.advance_ms(300));
    assert_eq!(tx.timer_deadline(Timer::D), Some(clock.now));
    tx.set_ack(ack());
    assert_eq!(
        drain(&mut tx),
        vec![
            Output::Deliver { status: 603 },
            Output::NeedAck { status: 603 },
            Output::Transmit(ack())
        ]
    );
    tx.handle_timeout(clock.now);
    assert_eq!(drain(&mut tx), vec![Output::Terminated]);
}

#[test]
fn invite_client_passes_every_2xx_to_tu_in_accepted_until_timer_m() {
    let mut clock = Clock::new();
    let mut tx = start(false, &TimerConfig::default(), &clock);
    drain(&mut tx);
    tx.handle_response(200, clock.advance_ms(400));
    assert_eq!(drain(&mut tx), vec![Output::Deliver { status: 200 }]);
    assert_eq!(tx.state(), InviteClientState::Accepted);
    // RFC 6026 §8.4: retransmitted (or forked) 2xx reach the TU, which ACKs each.
    tx.handle_response(200, clock.advance_ms(500));
    tx.handle_response(180, clock.now);
    tx.handle_response(486, clock.now);
    assert_eq!(drain(&mut tx), vec![Output::Deliver { status: 200 }]);
    assert!(!tx.cancel_allowed());
    // Timer A stopped with the 2xx: the only deadline left is M = 64*T1 after it.
    assert_eq!(tx.poll_timeout(), Some(clock.at(400 + 32_000)));
    assert_eq!(step(&mut tx, &mut clock), Some(vec![Output::Terminated]));
}

#[test]
fn invite_client_without_rfc6026_terminates_on_2xx() {
    let t = TimerConfig {
        rfc6026_accepted: false,
        ..TimerConfig::default()
    };
    let mut clock = Clock::new();
    let mut tx = start(false, &t, &clock);
    drain(&mut tx);
    tx.handle_response(180, clock.advance_ms(100));
    tx.handle_response(200, clock.advance_ms(100));
    assert_eq!(
        drain(&mut tx),
        vec![
            Output::Deliver { status: 180 },
            Output::Deliver { status: 200 },
            Output::Terminated
        ]
    );
    assert_eq!(tx.poll_timeout(), None);
}

#[test]
fn invite_client_cancel_allowed_only_after_provisional_and_before_final() {
    let mut clock = Clock::new();
    let mut tx = start(false, &TimerConfig::default(), &clock);
    assert!(!tx.cancel_allowed());
    tx.handle_response(100, clock.advance_ms(10));
    assert!(tx.cancel_allowed());
    tx.handle_response(487, clock.advance_ms(10));
    assert!(!tx.cancel_allowed());
}

#[test]
fn invite_client_reports_transport_error_and_terminates() {
    for responses in [&[][..], &[180][..], &[486][..]] {
        let mut clock = Clock::new();
        let mut tx = start(false, &TimerConfig::default(), &clock);
        for &status in responses {
            tx.handle_response(status, clock.advance_ms(10));
        }
        drain(&mut tx);
        tx.handle_transport_error(clock.now);
        assert_eq!(
            drain(&mut tx),
            vec![Output::TransportError, Output::Terminated],
            "after {responses:?}"
        );
        assert_eq!(tx.poll_timeout(), None);
        tx.handle_transport_error(clock.now);
        assert_eq!(drain(&mut tx), vec![]);
    }
}

#[test]
fn invite_client_ignores_transport_error_in_accepted() {
    let mut clock = Clock::new();
    let mut tx = start(false, &TimerConfig::default(), &clock);
    tx.handle_response(200, clock.advance_ms(10));
    drain(&mut tx);
    tx.handle_transport_error(clock.now);
    assert_eq!(drain(&mut tx), vec![]);
    assert_eq!(tx.state(), InviteClientState::Accepted);
}

#[test]
fn invite_client_ignores_invalid_status_and_early_ack() {
    let clock = Clock::new();
    let mut tx = start(false, &TimerConfig::default(), &clock);
    drain(&mut tx);
    tx.handle_response(99, clock.now);
    tx.handle_response(700, clock.now);
    tx.set_ack(ack());
    assert_eq!(drain(&mut tx), vec![]);
    assert_eq!(tx.state(), InviteClientState::Calling);
}

#[test]
fn spurious_timeout_is_noop() {
    let mut clock = Clock::new();
    let mut tx = start(false, &TimerConfig::default(), &clock);
    drain(&mut tx);
    let deadline = tx.poll_timeout();
    tx.handle_timeout(clock.advance_ms(499));
    assert_eq!(drain(&mut tx), vec![]);
    assert_eq!(tx.poll_timeout(), deadline);
    assert_eq!(tx.state(), InviteClientState::Calling);
}

#[test]
fn overdue_timers_fire_in_deadline_order_when_the_owner_wakes_late() {
    let mut clock = Clock::new();
    let mut tx = start(false, &TimerConfig::default(), &clock);
    drain(&mut tx);
    // Woken 40 s late: A (due at 0.5 s) fires before B (due at 32 s), then B ends it.
    tx.handle_timeout(clock.advance_ms(40_000));
    assert_eq!(
        drain(&mut tx),
        vec![
            Output::Transmit(invite()),
            Output::Timeout,
            Output::Terminated
        ]
    );
}
