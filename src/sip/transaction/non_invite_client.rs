//! Non-INVITE client transaction: RFC 3261 §17.1.2 (Figure 6).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::shell::{MachineState, Shell};
use super::timer::{Timer, TimerConfig, TimerTable};
use super::{Output, StatusClass};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonInviteClientState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

/// The client side of a non-INVITE transaction (BYE, CANCEL, OPTIONS, ... §17.1.2).
#[derive(Debug)]
pub struct NonInviteClient {
    shell: Shell<NonInviteClientState>,
    request: Bytes,
    reliable: bool,
    config: TimerConfig,
    timer_e_interval: Duration,
}

impl MachineState for NonInviteClientState {
    const TERMINATED: Self = NonInviteClientState::Terminated;
}

impl NonInviteClient {
    /// Creates the transaction in Trying with the request queued as the first `Transmit`.
    pub fn start(request: Bytes, reliable: bool, t: &TimerConfig, now: Instant) -> Self {
        let mut timers = TimerTable::default();
        // §17.1.2.2: timer E retransmits only over unreliable transports; F bounds the
        // transaction on all of them.
        if !reliable {
            timers.set(Timer::E, now + t.t1());
        }
        timers.set(Timer::F, now + t.transaction_timeout());
        NonInviteClient {
            shell: Shell::new(
                NonInviteClientState::Trying,
                timers,
                VecDeque::from([Output::Transmit(request.clone())]),
            ),
            request,
            reliable,
            config: *t,
            timer_e_interval: t.t1(),
        }
    }

    /// Feeds a response matched to this transaction. Status codes outside 100..=699 are ignored.
    pub fn handle_response(&mut self, status: u16, now: Instant) {
        let Ok(class) = StatusClass::of(status) else {
            return;
        };
        use NonInviteClientState as S;
        match (self.shell.state, class) {
            (S::Trying | S::Proceeding, StatusClass::Provisional) => {
                // Timer E keeps running; from its next firing on it uses T2 (§17.1.2.2).
                self.shell.state = S::Proceeding;
                self.shell.outputs.push_back(Output::Deliver { status });
            }
            (S::Trying | S::Proceeding, StatusClass::Success | StatusClass::Failure) => {
                self.shell.outputs.push_back(Output::Deliver { status });
                self.shell.timers.stop_all();
                self.shell.state = S::Completed;
                // §17.1.2.2: timer K absorbs response retransmissions (zero when reliable).
                self.shell
                    .timers
                    .set(Timer::K, now + self.config.timer_k(self.reliable));
            }
            // Completed absorbs retransmitted finals; late provisionals mean nothing.
            _ => {}
        }
    }

    /// The owner failed to send the request (§17.1.4).
    pub fn handle_transport_error(&mut self, _now: Instant) {
        use NonInviteClientState as S;
        if matches!(self.shell.state, S::Trying | S::Proceeding) {
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
            match timer {
                Timer::E => {
                    self.shell
                        .outputs
                        .push_back(Output::Transmit(self.request.clone()));
                    // §17.1.2.2: in Trying the interval doubles up to T2; in Proceeding it is T2,
                    // since the server has shown it is alive and only the final is awaited.
                    self.timer_e_interval = if self.shell.state == NonInviteClientState::Proceeding
                    {
                        self.config.t2()
                    } else {
                        self.timer_e_interval
                            .saturating_mul(2)
                            .min(self.config.t2())
                    };
                    self.shell.timers.set(Timer::E, now + self.timer_e_interval);
                }
                Timer::F => {
                    self.shell.outputs.push_back(Output::Timeout);
                    self.terminate();
                }
                Timer::K => self.terminate(),
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

    pub fn state(&self) -> NonInviteClientState {
        self.shell.state
    }

    pub fn is_terminated(&self) -> bool {
        self.shell.is_terminated()
    }

    pub(crate) fn has_output(&self) -> bool {
        self.shell.has_output()
    }

    fn terminate(&mut self) {
        self.shell.terminate();
    }
}

#[cfg(test)]
mod tests;
