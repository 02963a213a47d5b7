//! Non-INVITE server transaction: RFC 3261 §17.2.2 (Figure 8).

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use super::shell::{MachineState, Shell};
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
    shell: Shell<NonInviteServerState>,
    last_response: Option<Bytes>,
    reliable: bool,
    config: TimerConfig,
}

impl MachineState for NonInviteServerState {
    const TERMINATED: Self = NonInviteServerState::Terminated;
}

impl NonInviteServer {
    /// Creates the transaction in Trying; the TU has been handed the request.
    pub fn start(reliable: bool, t: &TimerConfig, _now: Instant) -> Self {
        NonInviteServer {
            shell: Shell::new(
                NonInviteServerState::Trying,
                TimerTable::default(),
                VecDeque::new(),
            ),
            last_response: None,
            reliable,
            config: *t,
        }
    }

    /// Sends a response from the TU: 1xx moves to (or stays in) Proceeding, 200-699 to
    /// Completed. §17.2.2: once Completed, further responses from the TU are discarded, which
    /// here means refused with an error.
    pub fn respond(&mut self, status: u16, response: Bytes, now: Instant) -> Result<(), TxError> {
        let class = StatusClass::of(status)?;
        use NonInviteServerState as S;
        match (self.shell.state, class) {
            (S::Trying | S::Proceeding, StatusClass::Provisional) => {
                self.send(response);
                self.shell.state = S::Proceeding;
            }
            (S::Trying | S::Proceeding, StatusClass::Success | StatusClass::Failure) => {
                self.send(response);
                self.shell.state = S::Completed;
                // §17.2.2: timer J absorbs request retransmissions (zero when reliable).
                self.shell
                    .timers
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
            self.shell.state,
            NonInviteServerState::Proceeding | NonInviteServerState::Completed
        ) && let Some(response) = &self.last_response
        {
            self.shell
                .outputs
                .push_back(Output::Transmit(response.clone()));
        }
    }

    /// The owner failed to send a response (§17.2.4).
    pub fn handle_transport_error(&mut self, _now: Instant) {
        if self.shell.state != NonInviteServerState::Terminated {
            self.shell.outputs.push_back(Output::TransportError);
            self.terminate();
        }
    }

    /// Fires every timer due at `now`; a call before any deadline does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        for _ in 0..Timer::COUNT {
            let Some(timer) = self.shell.timers.take_expired(now) else {
                return;
            };
            if timer == Timer::J {
                self.terminate();
            }
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.shell.poll_output()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.shell.poll_timeout()
    }

    /// When `timer` will fire, if it is running.
    pub fn timer_deadline(&self, timer: Timer) -> Option<Instant> {
        self.shell.timer_deadline(timer)
    }

    pub fn state(&self) -> NonInviteServerState {
        self.shell.state
    }

    pub fn is_terminated(&self) -> bool {
        self.shell.is_terminated()
    }

    pub(crate) fn has_output(&self) -> bool {
        self.shell.has_output()
    }

    fn send(&mut self, response: Bytes) {
        self.shell
            .outputs
            .push_back(Output::Transmit(response.clone()));
        self.last_response = Some(response);
    }

    fn terminate(&mut self) {
        self.shell.terminate();
    }
}

#[cfg(test)]
mod tests;
