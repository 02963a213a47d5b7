//! INVITE server transaction: RFC 3261 §17.2.1 (Figure 7), with RFC 6026's Accepted state.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::shell::{MachineState, Shell};
use super::timer::{Timer, TimerConfig, TimerTable};
use super::{Output, StatusClass, TxError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteServerState {
    Proceeding,
    Completed,
    Confirmed,
    /// RFC 6026 §8.7: after a 2xx, absorb INVITE retransmissions for 64*T1 (timer L).
    Accepted,
    Terminated,
}

impl InviteServerState {
    pub fn name(self) -> &'static str {
        match self {
            InviteServerState::Proceeding => "Proceeding",
            InviteServerState::Completed => "Completed",
            InviteServerState::Confirmed => "Confirmed",
            InviteServerState::Accepted => "Accepted",
            InviteServerState::Terminated => "Terminated",
        }
    }
}

/// Where an ACK that matched an INVITE server transaction goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckRouting {
    /// The ACK of our non-2xx final (or a retransmission of it): the transaction keeps it.
    Absorbed,
    /// RFC 6026 §8.7: an ACK in Accepted acknowledges a 2xx and belongs to the TU.
    ToTu,
}

/// The server side of an INVITE transaction (receiving an INVITE, §17.2.1).
#[derive(Debug)]
pub struct InviteServer {
    shell: Shell<InviteServerState>,
    last_response: Option<Bytes>,
    reliable: bool,
    config: TimerConfig,
    timer_g_interval: Duration,
}

impl MachineState for InviteServerState {
    const TERMINATED: Self = InviteServerState::Terminated;
}

impl InviteServer {
    /// Creates the transaction in Proceeding; the TU has been handed the INVITE.
    pub fn start(reliable: bool, t: &TimerConfig, _now: Instant) -> Self {
        InviteServer {
            shell: Shell::new(
                InviteServerState::Proceeding,
                TimerTable::default(),
                VecDeque::new(),
            ),
            last_response: None,
            reliable,
            config: *t,
            timer_g_interval: t.t1(),
        }
    }

    /// Sends a response from the TU. 1xx keeps Proceeding; 2xx moves to Accepted (RFC 6026) or
    /// Terminated (RFC 3261, `rfc6026_accepted = false`); 300-699 moves to Completed. In Accepted
    /// only further 2xx (the TU's own retransmissions, §13.3.1.4) are allowed.
    pub fn respond(&mut self, status: u16, response: Bytes, now: Instant) -> Result<(), TxError> {
        let class = StatusClass::of(status)?;
        use InviteServerState as S;
        match (self.shell.state, class) {
            (S::Proceeding, StatusClass::Provisional) => self.send(response),
            (S::Proceeding, StatusClass::Success) => {
                // Accepted absorbs INVITE retransmissions without answering them (RFC 6026
                // §8.7), so the 2xx is not kept: a call holds no copy of it for timer L.
                self.shell.outputs.push_back(Output::Transmit(response));
                self.last_response = None;
                if self.config.rfc6026_accepted {
                    self.shell.state = S::Accepted;
                    self.shell
                        .timers
                        .set(Timer::L, now + self.config.transaction_timeout());
                } else {
                    // RFC 3261 §17.2.1: the 2xx ends the transaction; the TU retransmits it.
                    self.terminate();
                }
            }
            (S::Proceeding, StatusClass::Failure) => {
                self.send(response);
                self.shell.state = S::Completed;
                // §17.2.1: G retransmits the final over unreliable transports; H bounds the wait
                // for the ACK on all of them.
                if !self.reliable {
                    self.shell.timers.set(Timer::G, now + self.timer_g_interval);
                }
                self.shell
                    .timers
                    .set(Timer::H, now + self.config.transaction_timeout());
            }
            // RFC 6026 §8.7: 2xx retransmissions from the TU pass to the transport; the
            // transaction never generates them itself.
            (S::Accepted, StatusClass::Success) => {
                self.shell.outputs.push_back(Output::Transmit(response));
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

    /// The INVITE arrived again. In Proceeding and Completed the last response is resent
    /// (§17.2.1); in Accepted (RFC 6026) and Confirmed it is absorbed silently.
    pub fn handle_request_retransmission(&mut self, _now: Instant) {
        if matches!(
            self.shell.state,
            InviteServerState::Proceeding | InviteServerState::Completed
        ) && let Some(response) = &self.last_response
        {
            self.shell
                .outputs
                .push_back(Output::Transmit(response.clone()));
        }
    }

    /// An ACK matched this transaction.
    pub fn handle_ack(&mut self, now: Instant) -> AckRouting {
        match self.shell.state {
            InviteServerState::Completed => {
                // §17.2.1: stop retransmitting the final; linger for timer I to absorb ACK
                // retransmissions.
                self.shell.timers.stop_all();
                self.shell.state = InviteServerState::Confirmed;
                self.shell
                    .timers
                    .set(Timer::I, now + self.config.timer_i(self.reliable));
                AckRouting::Absorbed
            }
            InviteServerState::Accepted => AckRouting::ToTu,
            // Confirmed absorbs ACK retransmissions; an ACK before any final is bogus.
            _ => AckRouting::Absorbed,
        }
    }

    /// The owner failed to send a response (§17.2.4).
    pub fn handle_transport_error(&mut self, _now: Instant) {
        match self.shell.state {
            InviteServerState::Terminated => {}
            // RFC 6026: a failed 2xx send is reported, but the transaction stays to keep
            // absorbing INVITE retransmissions until timer L.
            InviteServerState::Accepted => self.shell.outputs.push_back(Output::TransportError),
            _ => {
                self.shell.outputs.push_back(Output::TransportError);
                self.terminate();
            }
        }
    }

    /// Fires every timer due at `now`; a call before any deadline does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        for _ in 0..Timer::COUNT {
            let Some(timer) = self.shell.timers.take_expired(now) else {
                return;
            };
            match timer {
                Timer::G => {
                    // §17.2.1: resend the final, doubling the interval up to T2.
                    if let Some(response) = &self.last_response {
                        self.shell
                            .outputs
                            .push_back(Output::Transmit(response.clone()));
                    }
                    self.timer_g_interval = self
                        .timer_g_interval
                        .saturating_mul(2)
                        .min(self.config.t2());
                    self.shell.timers.set(Timer::G, now + self.timer_g_interval);
                }
                Timer::H => {
                    self.shell.outputs.push_back(Output::AckTimeout);
                    self.terminate();
                }
                Timer::I | Timer::L => self.terminate(),
                _ => {}
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

    pub fn state(&self) -> InviteServerState {
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
