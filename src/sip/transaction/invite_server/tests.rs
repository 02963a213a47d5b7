use super::*;
use crate::sip::transaction::testing::{Clock, drain, run_timers, step, transmit_times};

fn rsp(status: u16) -> Bytes {
    Bytes::from(format!("SIP/2.0 {status} X\r\n\r\n"))
}

fn start(reliable: bool, t: &TimerConfig, clock: &Clock) -> InviteServer {
    InviteServer::start(reliable, t, clock.now)
}

#[test]
fn invite_server_resends_final_on_timer_g_until_ack() {
    let mut clock = Clock::new();
    let mut tx = start(false, &TimerConfig::default(), &clock);
    tx.respond(100, rsp(100), clock.now).unwrap();
    tx.respond(486, rsp(486), clock.advance_ms(1_000)).unwrap();
    assert_eq!(
        drain(&mut tx),
        vec![Output::Transmit(rsp(100)), Output::Transmit(rsp(486))]
    );
    assert_eq!(tx.state(), InviteServerState::Completed);
    // G: T1, then doubling: resends at +0.5, +1.5, +3.5 s.
    for at in [1_500, 2_500, 4_500] {
        assert_eq!(
            step(&mut tx, &mut clock),
            Some(vec![Output::Transmit(rsp(486))])
        );
        assert_eq!(clock.ms(), at);
    }
    assert_eq!(tx.handle_ack(clock.advance_ms(100)), AckRouting::Absorbed);
    assert_eq!(tx.state(), InviteServerState::Confirmed);
    assert_eq!(tx.timer_deadline(Timer::G), None);
    assert_eq!(tx.timer_deadline(Timer::H), None);
    // Confirmed lingers for timer I = T4 to absorb ACK retransmissions, then ends.
    assert_eq!(tx.poll_timeout(), Some(clock.at(4_600 + 5_000)));
    assert_eq!(tx.handle_ack(clock.advance_ms(10)), AckRouting::Absorbed);
    tx.handle_request_retransmission(clock.now);
    assert_eq!(drain(&mut tx), vec![]);
    assert_eq!(step(&mut tx, &mut clock), Some(vec![Output::Terminated]));
}

#[test]
fn invite_server_reports_ack_timeout_on_timer_h() {
    // UDP: G doubles up to T2 = 4 s until H = 64*T1 = 32 s gives up.
    let mut clock = Clock::new();
    let mut tx = start(false, &TimerConfig::default(), &clock);
    tx.respond(503, rsp(503), clock.now).unwrap();
    drain(&mut tx);
    let timeline = run_timers(&mut tx, &mut clock);
    assert_eq!(
        transmit_times(&timeline, &rsp(503)),
        vec![
            500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500
        ]
    );
    assert_eq!(
        timeline[timeline.len() - 2..],
        [(32_000, Output::AckTimeout), (32_000, Output::Terminated)]
    );

    // A reliable transport never retransmits, yet still waits H for the ACK.
    let mut clock = Clock::new();
    let mut tx = start(true, &TimerConfig::default(), &clock);
    tx.respond(503, rsp(503), clock.now).unwrap();
    drain(&mut tx);
    assert_eq!(
        run_timers(&mut tx, &mut clock),
        vec![(32_000, Output::AckTimeout), (32_000, Output::Terminated)]
    );
}

#[test]
fn invite_server_on_reliable_transport_ends_at_ack_with_zero_timer_i() {
    let mut clock = Clock::new();
    let mut tx = start(true, &TimerConfig::default(), &clock);
    tx.respond(404, rsp(404), clock.now).unwrap();
    drain(&mut tx);
    assert_eq!(tx.handle_ack(clock.advance_ms(80)), AckRouting::Absorbed);
    assert_eq!(tx.timer_deadline(Timer::I), Some(clock.now));
    tx.handle_timeout(clock.now);
    assert_eq!(drain(&mut tx), vec![Output::Terminated]);
}

#[test]
fn server_absorbs_request_retransmission_with_last_response() {
    let mut clock = Clock::new();
    let mut tx = start(false, &TimerConfig::default(), &clock);
    // Nothing sent yet: nothing to resend.
    tx.handle_request_retransmission(clock.advance_ms(500));
    assert_eq!(drain(&mut tx), vec![]);
    tx.respond(100, rsp(100), clock.now).unwrap();
    tx.respond(180, rsp(180), clock.now).unwrap();
    drain(&mut tx);
    // §17.2.1: the most recent provisional goes out again.
    tx.handle_request_retransmission(clock.advance_ms(500));
    assert_eq!(drain(&mut tx), vec![Output::Transmit(rsp(180))]);
    tx.respond(480, rsp(480), clock.now).unwrap();
    drain(&mut tx);
    tx.handle_request_retransmission(clock.advance_ms(100));
    assert_eq!(drain(&mut tx), vec![Output::Transmit(rsp(480))]);
}

#[test]
fn invite_server_absorbs_invite_retransmissions_in_accepted_until_timer_l() {
    let mut clock = Clock::new();
    let mut tx = start(false, &TimerConfig::default(), &clock);
    tx.respond(180, rsp(180), clock.now).unwrap();
    tx.respond(200, rsp(200), clock.advance_ms(2_000)).unwrap();
    assert_eq!(
        drain(&mut tx),
        vec![Output::Transmit(rsp(180)), Output::Transmit(rsp(200))]
    );
    assert_eq!(tx.state(), InviteServerState::Accepted);
    // RFC 6026 §8.7: INVITE retransmissions are absorbed, not answered and not new requests;
    // the TU retransmits its 2xx itself, through the transaction.
    tx.handle_request_retransmission(clock.advance_ms(300));
    assert_eq!(drain(&mut tx), vec![]);
    tx.respond(200, rsp(200), clock.now).unwrap();
    assert_eq!(drain(&mut tx), vec![Output::Transmit(rsp(200))]);
    assert_eq!(
        tx.respond(486, rsp(486), clock.now),
        Err(TxError::ResponseNotAllowed {
            status: 486,
            state: "Accepted"
        })
    );
    assert_eq!(tx.handle_ack(clock.now), AckRouting::ToTu);
    // The transaction sets no retransmission timer of its own: only L.
    assert_eq!(tx.poll_timeout(), Some(clock.at(2_000 + 32_000)));
    assert_eq!(step(&mut tx, &mut clock), Some(vec![Output::Terminated]));
}

#[test]
fn invite_server_without_rfc6026_terminates_on_2xx() {
    let t = TimerConfig {
        rfc6026_accepted: false,
        ..TimerConfig::default()
    };
    let clock = Clock::new();
    let mut tx = start(false, &t, &clock);
    tx.respond(200, rsp(200), clock.now).unwrap();
    assert_eq!(
        drain(&mut tx),
        vec![Output::Transmit(rsp(200)), Output::Terminated]
    );
    assert!(tx.is_terminated());
}

#[test]
fn invite_server_refuses_responses_after_a_non_2xx_final() {
    let mut clock = Clock::new();
    let mut tx = start(false, &TimerConfig::default(), &clock);
    assert_eq!(
        tx.respond(700, rsp(700), clock.now),
        Err(TxError::InvalidStatus { status: 700 })
    );
    tx.respond(486, rsp(486), clock.now).unwrap();
    drain(&mut tx);
    for status in [180, 200, 486] {
        assert_eq!(
            tx.respond(status, rsp(status), clock.advance_ms(1)),
            Err(TxError::ResponseNotAllowed {
                status,
                state: "Completed"
            })
        );
    }
    assert_eq!(drain(&mut tx), vec![]);
}

#[test]
fn invite_server_transport_error_terminates_except_in_accepted() {
    let mut clock = Clock::new();
    let mut tx = start(false, &TimerConfig::default(), &clock);
    tx.respond(180, rsp(180), clock.now).unwrap();
    drain(&mut tx);
    tx.handle_transport_error(clock.now);
    assert_eq!(
        drain(&mut tx),
        vec![Output::TransportError, Output::Terminated]
    );

    let mut tx = start(false, &TimerConfig::default(), &clock);
    tx.respond(486, rsp(486), clock.advance_ms(1)).unwrap();
    drain(&mut tx);
    tx.handle_transport_error(clock.now);
    assert_eq!(
        drain(&mut tx),
        vec![Output::TransportError, Output::Terminated]
    );
    assert_eq!(tx.poll_timeout(), None);

    let mut tx = start(false, &TimerConfig::default(), &clock);
    tx.respond(200, rsp(200), clock.now).unwrap();
    drain(&mut tx);
    tx.handle_transport_error(clock.now);
    assert_eq!(drain(&mut tx), vec![Output::TransportError]);
    assert_eq!(tx.state(), InviteServerState::Accepted);
}

#[test]
fn invite_server_spurious_timeout_and_early_ack_are_noops() {
    let mut clock = Clock::new();
    let mut tx = start(false, &TimerConfig::default(), &clock);
    tx.handle_timeout(clock.advance_ms(10_000));
    assert_eq!(tx.handle_ack(clock.now), AckRouting::Absorbed);
    assert_eq!(drain(&mut tx), vec![]);
    assert_eq!(tx.state(), InviteServerState::Proceeding);
    tx.respond(486, rsp(486), clock.now).unwrap();
    drain(&mut tx);
    let g = tx.poll_timeout();
    tx.handle_timeout(clock.advance_ms(499));
    assert_eq!(drain(&mut tx), vec![]);
    assert_eq!(tx.poll_timeout(), g);
}
