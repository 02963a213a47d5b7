//! Test driver for the machines: a hand-held clock that jumps to the next deadline and drains
//! outputs (quinn-proto's `Pair::drive` style), so a test reads as a timeline.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{InviteClient, InviteServer, NonInviteClient, NonInviteServer, Output, Transactions};
use crate::clock;

/// What the driver needs of a machine (or of the whole table).
pub(crate) trait Driven {
    type Out;
    fn poll_timeout(&self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
    fn poll_output(&mut self) -> Option<Self::Out>;
}

macro_rules! driven_machine {
    ($($machine:ty),*) => {$(
        impl Driven for $machine {
            type Out = Output;
            fn poll_timeout(&self) -> Option<Instant> {
                <$machine>::poll_timeout(self)
            }
            fn handle_timeout(&mut self, now: Instant) {
                <$machine>::handle_timeout(self, now)
            }
            fn poll_output(&mut self) -> Option<Output> {
                <$machine>::poll_output(self)
            }
        }
    )*};
}

driven_machine!(InviteClient, InviteServer, NonInviteClient, NonInviteServer);

impl<T> Driven for Transactions<T> {
    type Out = (super::TxId, Output);
    fn poll_timeout(&self) -> Option<Instant> {
        Transactions::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.handle_timeouts(now)
    }
    fn poll_output(&mut self) -> Option<Self::Out> {
        Transactions::poll_output(self)
    }
}

/// A virtual clock: `start` is time zero of the test's timeline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    pub(crate) start: Instant,
    pub(crate) now: Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        let start = clock::now();
        Clock { start, now: start }
    }

    pub(crate) fn advance_ms(&mut self, ms: u64) -> Instant {
        self.now += Duration::from_millis(ms);
        self.now
    }

    /// Milliseconds since `start`.
    pub(crate) fn ms(&self) -> u64 {
        u64::try_from((self.now - self.start).as_millis()).unwrap()
    }

    /// The instant `ms` after `start`.
    pub(crate) fn at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }
}

/// Every output queued right now.
pub(crate) fn drain<M: Driven>(machine: &mut M) -> Vec<M::Out> {
    std::iter::from_fn(|| machine.poll_output()).collect()
}

/// Jumps the clock to the machine's next deadline, fires it and drains the outputs. `None`
/// when no timer is running.
pub(crate) fn step<M: Driven>(machine: &mut M, clock: &mut Clock) -> Option<Vec<M::Out>> {
    let deadline = machine.poll_timeout()?;
    assert!(deadline >= clock.now, "deadline in the past");
    clock.now = deadline;
    machine.handle_timeout(clock.now);
    Some(drain(machine))
}

/// Steps until no timer runs (bounded), returning each output with its time in ms.
pub(crate) fn run_timers<M: Driven>(machine: &mut M, clock: &mut Clock) -> Vec<(u64, M::Out)> {
    let mut timeline = Vec::new();
    for _ in 0..1_000 {
        let Some(outputs) = step(machine, clock) else {
            return timeline;
        };
        timeline.extend(outputs.into_iter().map(|o| (clock.ms(), o)));
    }
    panic!("machine still has timers after 1000 steps");
}

/// Times (ms) at which `msg` was transmitted in a timeline.
pub(crate) fn transmit_times(timeline: &[(u64, Output)], msg: &Bytes) -> Vec<u64> {
    timeline
        .iter()
        .filter(|(_, o)| *o == Output::Transmit(msg.clone()))
        .map(|(t, _)| *t)
        .collect()
}
