//! INVITE client transaction: RFC 3261 §17.1.1 (Figure 5), with RFC 6026's Accepted state.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::shell::{MachineState, Shell};
use super::timer::{Timer, TimerConfig, TimerTable};
use super::{Output, StatusClass};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteClientState {
    Calling,
    Proceeding,
    Completed,
    /// RFC 6026 §8.4: after a 2xx, wait 64*T1 (timer M) for retransmitted or forked 2xx.
    Accepted,
    Terminated,
}

/// The client side of an INVITE transaction (sending an INVITE, §17.1.1).
#[derive(Debug)]
pub struct InviteClient {
    shell: Shell<InviteClientState>,
    request: Bytes,
    ack: Option<Bytes>,
    reliable: bool,
    config: TimerConfig,
    timer_a_interval: Duration,
    /// A CANCEL went out: timer B guards Proceeding from then on (§9.1).
    cancelled: bool,
}

impl MachineState for InviteClientState {
    const TERMINATED: Self = InviteClientState::Terminated;
}

impl InviteClient {
    /// Creates the transaction in Calling with the INVITE queued as the first `Transmit`.
    pub fn start(request: Bytes, reliable: bool, t: &TimerConfig, now: Instant) -> Self {
        let mut timers = TimerTable::default();
        // §17.1.1.2: timer A retransmits only over unreliable transports; timer B bounds the
        // wait for any response on all of them.
        if !reliable {
            timers.set(Timer::A, now + t.t1());
        }
        timers.set(Timer::B, now + t.transaction_timeout());
        InviteClient {
            shell: Shell::new(
                InviteClientState::Calling,
                timers,
                VecDeque::from([Output::Transmit(request.clone())]),
            ),
            request,
            ack: None,
            reliable,
            config: *t,
            timer_a_interval: t.t1(),
            cancelled: false,
        }
    }

    /// Feeds a response matched to this transaction. Status codes outside 100..=699 are ignored.
    pub fn handle_response(&mut self, status: u16, now: Instant) {
        let Ok(class) = StatusClass::of(status) else {
            return;
        };
        use InviteClientState as S;
        match (self.shell.state, class) {
            (S::Calling | S::Proceeding, StatusClass::Provisional) => {
                // §17.1.1.2: in Proceeding the request is no longer retransmitted, and timer B
                // only guards Calling. How long to ring is the TU's call (it sends CANCEL).
                // Once cancelled, B stays: a provisional does not answer a CANCEL.
                if !self.cancelled {
                    self.shell.timers.stop_all();
                }
                self.shell.state = S::Proceeding;
                self.shell.outputs.push_back(Output::Deliver { status });
            }
            (S::Calling | S::Proceeding, StatusClass::Success) => {
                self.shell.outputs.push_back(Output::Deliver { status });
                self.shell.timers.stop_all();
                // Never retransmitted again: not worth holding for timer M.
                self.request = Bytes::new();
                if self.config.rfc6026_accepted {
                    // RFC 6026 §8.4: stay to pass retransmitted and forked 2xx to the TU.
                    self.shell.state = S::Accepted;
                    self.shell
                        .timers
                        .set(Timer::M, now + self.config.transaction_timeout());
                } else {
                    self.terminate();
                }
            }
            (S::Calling | S::Proceeding, StatusClass::Failure) => {
                // §17.1.1.3: the transaction ACKs a non-2xx final; the TU builds the ACK.
                self.shell.outputs.push_back(Output::Deliver { status });
                self.shell.outputs.push_back(Output::NeedAck { status });
                self.shell.timers.stop_all();
                self.shell.state = S::Completed;
                self.shell
                    .timers
                    .set(Timer::D, now + self.config.timer_d(self.reliable));
            }
            (S::Completed, StatusClass::Failure) => {
                // §17.1.1.2: a retransmitted final means our ACK was lost; resend, don't deliver.
                if let Some(ack) = &self.ack {
                    self.shell.outputs.push_back(Output::Transmit(ack.clone()));
                }
            }
            (S::Accepted, StatusClass::Success) => {
                // RFC 6026 §8.4: every 2xx goes to the TU, which ACKs it per dialog.
                self.shell.outputs.push_back(Output::Deliver { status });
            }
            // Provisionals after a final and 2xx after a non-2xx are absorbed (Figure 5).
            _ => {}
        }
    }

    /// Hands over the ACK the TU built after `Output::NeedAck`. It is sent now and again for
    /// every retransmitted final while in Completed. Ignored in any other state.
    pub fn set_ack(&mut self, ack: Bytes) {
        if self.shell.state == InviteClientState::Completed {
            self.shell.outputs.push_back(Output::Transmit(ack.clone()));
            self.ack = Some(ack);
        }
    }

    /// §9.1: a CANCEL may be sent only once a provisional response has arrived and no final yet.
    pub fn cancel_allowed(&self) -> bool {
        self.shell.state == InviteClientState::Proceeding
    }

    /// The TU sent a CANCEL for this INVITE. §9.1: a peer that never sends the final response
    /// must not hold the transaction for good, so it times out after 64 × T1 (timer B again)
    /// unless a final response comes first.
    pub fn cancelled(&mut self, now: Instant) {
        if self.shell.state == InviteClientState::Proceeding && !self.cancelled {
            self.cancelled = true;
            self.shell
                .timers
                .set(Timer::B, now + self.config.transaction_timeout());
        }
    }

    /// The owner failed to send the INVITE or the ACK (§17.1.4).
    pub fn handle_transport_error(&mut self, _now: Instant) {
        use InviteClientState as S;
        // Accepted sends nothing of its own: a failed ACK for a 2xx is the TU's business.
        if matches!(self.shell.state, S::Calling | S::Proceeding | S::Completed) {
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
                Timer::A => {
                    // §17.1.1.2: the interval doubles after each transmission, with no T2 cap
                    // (that cap is for non-INVITE requests and INVITE finals); B ends it.
                    self.shell
                        .outputs
                        .push_back(Output::Transmit(self.request.clone()));
                    self.timer_a_interval = self.timer_a_interval.saturating_mul(2);
                    self.shell.timers.set(Timer::A, now + self.timer_a_interval);
                }
                Timer::B => {
                    self.shell.outputs.push_back(Output::Timeout);
                    self.terminate();
                }
                Timer::D | Timer::M => self.terminate(),
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

    pub fn state(&self) -> InviteClientState {
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
