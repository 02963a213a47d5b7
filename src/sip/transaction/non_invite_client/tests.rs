use super::*;
use crate::sip::transaction::testing::{Clock, drain, run_timers, step, transmit_times};

const OPTIONS: &[u8] = b"OPTIONS sip:sip.pstnhub.microsoft.com SIP/2.0\r\n\r\n";

fn request() -> Bytes {
    Bytes::from_static(OPTIONS)
}

fn start(reliable: bool, t: &TimerConfig, clock: &Clock) -> NonInviteClient {
    NonInviteClient::start(request(), reliable, t, clock.now)
}

#[test]
fn non_invite_client_doubles_timer_e_up_to_t2_in_trying_on_udp() {
    let mut clock = Clock::new();
    let mut tx = start(false, &TimerConfig::default(), &clock);
    assert_eq!(drain(&mut tx), vec![Output::Transmit(request())]);
    let timeline = run_timers(&mut tx, &mut clock);
    // Intervals 0.5, 1, 2, 4, 4, 4 ... s (§17.1.2.2), until F = 64*T1.
    assert_eq!(
        transmit_times(&timeline, &request()),
        vec![
            500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500
        ]
    );
    assert_eq!(
        timeline[timeline.len() - 2..],
        [(32_000, Output::Timeout), (32_000, Output::Terminated)]
    );
}

#[test]
fn non_invite_client_resends_at_t2_in_proceeding() {
    let mut clock = Clock::new();
    let mut tx = start(false, &TimerConfig::default(), &clock);
    drain(&mut tx);
    step(&mut tx, &mut clock); // 500 ms; next E at 1500 ms
    tx.handle_response(100, clock.advance_ms(100));
    assert_eq!(drain(&mut tx), vec![Output::Deliver { status: 100 }]);
    assert_eq!(tx.state(), NonInviteClientState::Proceeding);
    let timeline = run_timers(&mut tx, &mut clock);
    // E keeps its deadline, then every firing in Proceeding resets it to T2.
    assert_eq!(
        transmit_times(&timeline, &request()),
        vec![1_500, 5_500, 9_500, 13_500, 17_500, 21_500, 25_500, 29_500]
    );
    assert_eq!(
        timeline[timeline.len() - 2..],
        [(32_000, Output::Timeout), (32_000, Output::Terminated)]
    );
}

#[test]
fn non_invite_client_absorbs_final_retransmissions_until_timer_k() {
    let mut clock = Clock::new();
    let mut tx = start(false, &TimerConfig::default(), &clock);
    drain(&mut tx);
    tx.handle_response(200, clock.advance_ms(40));
    assert_eq!(drain(&mut tx), vec![Output::Deliver { status: 200 }]);
    assert_eq!(tx.state(), NonInviteClientState::Completed);
    tx.handle_response(200, clock.advance_ms(500));
    tx.handle_response(100, clock.now);
    assert_eq!(drain(&mut tx), vec![]);
    // E and F stopped; K = T4 after the final.
    assert_eq!(tx.poll_timeout(), Some(clock.at(40 + 5_000)));
    assert_eq!(step(&mut tx, &mut clock), Some(vec![Output::Terminated]));
}

#[test]
fn non_invite_client_on_reliable_transport_never_retransmits_and_has_zero_timer_k() {
    let mut clock = Clock::new();
    let mut tx = start(true, &TimerConfig::default(), &clock);
    drain(&mut tx);
    assert_eq!(tx.timer_deadline(Timer::E), None);
    assert_eq!(tx.poll_timeout(), Some(clock.at(32_000)));
    tx.handle_response(404, clock.advance_ms(20));
    assert_eq!(tx.timer_deadline(Timer::K), Some(clock.now));
    tx.handle_timeout(clock.now);
    assert_eq!(
        drain(&mut tx),
        vec![Output::Deliver { status: 404 }, Output::Terminated]
    );

    let mut clock = Clock::new();
    let mut tx = start(true, &TimerConfig::default(), &clock);
    drain(&mut tx);
    assert_eq!(
        run_timers(&mut tx, &mut clock),
        vec![(32_000, Output::Timeout), (32_000, Output::Terminated)]
    );
}

#[test]
fn non_invite_client_transport_error_terminates_before_final_only() {
    let mut clock = Clock::new();
    let mut tx = start(false, &TimerConfig::default(), &clock);
    tx.handle_response(100, clock.advance_ms(5));
    drain(&mut tx);
    tx.handle_transport_error(clock.now);
    assert_eq!(
        drain(&mut tx),
        vec![Output::TransportError, Output::Terminated]
    );

    let mut tx = start(false, &TimerConfig::default(), &clock);
    tx.handle_response(200, clock.advance_ms(5));
    drain(&mut tx);
    tx.handle_transport_error(clock.now);
    assert_eq!(drain(&mut tx), vec![]);
    assert_eq!(tx.state(), NonInviteClientState::Completed);
}

#[test]
fn non_invite_client_spurious_timeout_is_noop() {
    let mut clock = Clock::new();
    let mut tx = start(false, &TimerConfig::default(), &clock);
    drain(&mut tx);
    tx.handle_timeout(clock.advance_ms(499));
    tx.handle_response(0, clock.now);
    assert_eq!(drain(&mut tx), vec![]);
    assert_eq!(tx.poll_timeout(), Some(clock.at(500)));
}
