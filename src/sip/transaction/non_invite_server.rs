//! Non-INVITE server transaction: RFC 3261 §17.2.2 (Figure 8).

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use super::timer::{Timer, TimerConfig, TimerTable};
use super::{Output, StatusClass, TxError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonInviteServerState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

impl NonInviteServerState {
    pub fn name(self) -> &'static str {
        match self {
            NonInviteServerState::Trying => "Trying",
            NonInviteServerState::Proceeding => "Proceeding",
            NonInviteServerState::Completed => "Completed",
            NonInviteServerState::Terminated => "Terminated",
        }
    }
}

/// The server side of a non-INVITE transaction (§17.2.2).
#[derive(Debug)]
pub struct NonInviteServer {
    state: NonInviteServerState,
    last_response: Option<Bytes>,
    reliable: bool,
    config: TimerConfig,
    timers: TimerTable,
    outputs: VecDeque<Output>,
}

impl NonInviteServer {
    /// Creates the transaction in Trying; the TU has been handed the request.
    pub fn start(reliable: bool, t: &TimerConfig, _now: Instant) -> Self {
        NonInviteServer {
            state: NonInviteServerState::Trying,
            last_response: None,
            reliable,
            config: *t,
            timers: TimerTable::default(),
            outputs: VecDeque::new(),
        }
    }

    /// Sends a response from the TU: 1xx moves to (or stays in) Proceeding, 200-699 to
    /// Completed. §17.2.2: once Completed, further responses from the TU are discarded, which
    /// here means refused with an error.
    pub fn respond(&mut self, status: u16, response: Bytes, now: Instant) -> Result<(), TxError> {
        let class = StatusClass::of(status)?;
        use NonInviteServerState as S;
        match (self.state, class) {
            (S::Trying | S::Proceeding, StatusClass::Provisional) => {
                self.send(response);
                self.state = S::Proceeding;
            }
            (S::Trying | S::Proceeding, StatusClass::Success | StatusClass::Failure) => {
                self.send(response);
                self.state = S::Completed;
                // §17.2.2: timer J absorbs request retransmissions (zero when reliable).
                self.timers
                    .set(Timer::J, now + self.config.timer_j(self.reliable));
            }
            (state, _) => {
                return Err(TxError::ResponseNotAllowed {
                    status,
                    state: state.name(),
                });
            }
        }
        Ok(())
    }

    /// The request arrived again: §17.2.2 resends the last response in Proceeding and
    /// Completed; in Trying there is none yet and the retransmission is discarded.
    pub fn handle_request_retransmission(&mut self, _now: Instant) {
        if matches!(
            self.state,
            NonInviteServerState::Proceeding | NonInviteServerState::Completed
        ) && let Some(response) = &self.last_response
        {
            self.outputs.push_back(Output::Transmit(response.clone()));
        }
    }

    /// The owner failed to send a response (§17.2.4).
    pub fn handle_transport_error(&mut self, _now: Instant) {
        if self.state != NonInviteServerState::Terminated {
            self.outputs.push_back(Output::TransportError);
            self.terminate();
        }
    }

    /// Fires every timer due at `now`; a call before any deadline does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        for _ in 0..Timer::COUNT {
            let Some(timer) = self.timers.take_expired(now) else {
                return;
            };
            if timer == Timer::J {
                self.terminate();
            }
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    /// When `timer` will fire, if it is running.
    pub fn timer_deadline(&self, timer: Timer) -> Option<Instant> {
        self.timers.get(timer)
    }

    pub fn state(&self) -> NonInviteServerState {
        self.state
    }

    pub fn is_terminated(&self) -> bool {
        self.state == NonInviteServerState::Terminated
    }

    pub(crate) fn has_output(&self) -> bool {
        !self.outputs.is_empty()
    }

    fn send(&mut self, response: Bytes) {
        self.outputs.push_back(Output::Transmit(response.clone()));
        self.last_response = Some(response);
    }

    fn terminate(&mut self) {
        self.timers.stop_all();
        self.state = NonInviteServerState::Terminated;
        self.outputs.push_back(Output::Terminated);
    }
}

#[cfg(test)]
mod tests;
