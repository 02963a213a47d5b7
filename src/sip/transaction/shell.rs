//! What the four machines share besides their rules: the current state, the timer table and
//! the outputs queued for the owner, with the accessors every machine exposes.

use std::collections::VecDeque;
use std::time::Instant;

use super::Output;
use super::timer::{Timer, TimerTable};

/// A machine's state enum, which has a terminal state.
pub(crate) trait MachineState: Copy + PartialEq {
    const TERMINATED: Self;
}

#[derive(Debug)]
pub(crate) struct Shell<S> {
    pub(crate) state: S,
    pub(crate) timers: TimerTable,
    pub(crate) outputs: VecDeque<Output>,
}

impl<S: MachineState> Shell<S> {
    pub(crate) fn new(state: S, timers: TimerTable, outputs: VecDeque<Output>) -> Self {
        Shell {
            state,
            timers,
            outputs,
        }
    }

    pub(crate) fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    pub(crate) fn timer_deadline(&self, timer: Timer) -> Option<Instant> {
        self.timers.get(timer)
    }

    pub(crate) fn is_terminated(&self) -> bool {
        self.state == S::TERMINATED
    }

    pub(crate) fn has_output(&self) -> bool {
        !self.outputs.is_empty()
    }

    /// Stops every timer and tells the owner the transaction is over.
    pub(crate) fn terminate(&mut self) {
        self.timers.stop_all();
        self.state = S::TERMINATED;
        self.outputs.push_back(Output::Terminated);
    }
}
