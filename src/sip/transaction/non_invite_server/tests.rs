use super::*;
use crate::sip::transaction::testing::{Clock, drain, step};

fn rsp(status: u16) -> Bytes {
    Bytes::from(format!("SIP/2.0 {status} X\r\n\r\n"))
}

fn start(reliable: bool, clock: &Clock) -> NonInviteServer {
    NonInviteServer::start(reliable, &TimerConfig::default(), clock.now)
}

#[test]
fn non_invite_server_absorbs_retransmissions_with_last_response_until_timer_j() {
    let mut clock = Clock::new();
    let mut tx = start(false, &clock);
    // Trying: no response yet, the retransmission is dropped (§17.2.2).
    tx.handle_request_retransmission(clock.advance_ms(500));
    assert_eq!(drain(&mut tx), vec![]);
    tx.respond(100, rsp(100), clock.now).unwrap();
    assert_eq!(tx.state(), NonInviteServerState::Proceeding);
    tx.handle_request_retransmission(clock.advance_ms(1_000));
    assert_eq!(
        drain(&mut tx),
        vec![Output::Transmit(rsp(100)), Output::Transmit(rsp(100))]
    );
    tx.respond(200, rsp(200), clock.advance_ms(500)).unwrap();
    assert_eq!(tx.state(), NonInviteServerState::Completed);
    tx.handle_request_retransmission(clock.advance_ms(2_000));
    assert_eq!(
        drain(&mut tx),
        vec![Output::Transmit(rsp(200)), Output::Transmit(rsp(200))]
    );
    // J = 64*T1 after the final on UDP.
    assert_eq!(tx.poll_timeout(), Some(clock.at(2_000 + 32_000)));
    assert_eq!(step(&mut tx, &mut clock), Some(vec![Output::Terminated]));
}

#[test]
fn non_invite_server_discards_responses_once_completed() {
    let mut clock = Clock::new();
    let mut tx = start(false, &clock);
    tx.respond(200, rsp(200), clock.now).unwrap();
    drain(&mut tx);
    assert_eq!(
        tx.respond(500, rsp(500), clock.advance_ms(1)),
        Err(TxError::ResponseNotAllowed {
            status: 500,
            state: "Completed"
        })
    );
    assert_eq!(
        tx.respond(42, rsp(42), clock.now),
        Err(TxError::InvalidStatus { status: 42 })
    );
    assert_eq!(drain(&mut tx), vec![]);
}

#[test]
fn non_invite_server_on_reliable_transport_has_zero_timer_j() {
    let mut clock = Clock::new();
    let mut tx = start(true, &clock);
    tx.respond(481, rsp(481), clock.advance_ms(3)).unwrap();
    assert_eq!(tx.timer_deadline(Timer::J), Some(clock.now));
    tx.handle_timeout(clock.now);
    assert_eq!(
        drain(&mut tx),
        vec![Output::Transmit(rsp(481)), Output::Terminated]
    );
}

#[test]
fn non_invite_server_transport_error_terminates() {
    let mut clock = Clock::new();
    let mut tx = start(false, &clock);
    tx.respond(200, rsp(200), clock.now).unwrap();
    drain(&mut tx);
    tx.handle_transport_error(clock.advance_ms(1));
    assert_eq!(
        drain(&mut tx),
        vec![Output::TransportError, Output::Terminated]
    );
    assert_eq!(tx.poll_timeout(), None);
}

#[test]
fn non_invite_server_spurious_timeout_is_noop() {
    let mut clock = Clock::new();
    let mut tx = start(false, &clock);
    tx.handle_timeout(clock.advance_ms(100_000));
    assert_eq!(drain(&mut tx), vec![]);
    assert_eq!(tx.state(), NonInviteServerState::Trying);
}
