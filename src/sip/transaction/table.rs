//! The transaction table: owns every machine of one owner task, matches messages to them by
//! key, and aggregates their deadlines so the owner sleeps on one instant.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use slab::Slab;

use super::invite_server::AckRouting;
use super::key::TransactionKey;
use super::timer::TimerConfig;
use super::{InviteClient, InviteServer, NonInviteClient, NonInviteServer, Output, TxError};
use crate::sip::Method;

/// Handle of a transaction in a [`Transactions`] table. It carries a generation, so a handle
/// kept after its transaction ended never reaches the transaction that reuses its slot.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct TxId {
    slot: usize,
    generation: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionKind {
    InviteClient,
    NonInviteClient,
    InviteServer,
    NonInviteServer,
}

/// What the table made of a received request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerDisposition {
    /// A new server transaction: pass the request to the TU, which answers via `respond`
    /// (for an INVITE, with a 100 at once unless it answers within 200 ms, §17.2.1).
    New(TxId),
    /// A retransmission of a request with a live transaction: the TU does not see it. Any
    /// response to resend is queued as output of that transaction (§17.2.1, §17.2.2).
    Retransmission(TxId),
    /// An ACK absorbed by an INVITE server transaction in Completed or Confirmed (the ACK of
    /// our non-2xx final).
    AckForFinal(TxId),
    /// An ACK that belongs to the TU: the ACK of a 2xx is not part of any transaction
    /// (§17.1.1.3); it goes to the dialog. Also given for an ACK that matched an INVITE server
    /// transaction in RFC 6026's Accepted state, which passes it up (RFC 6026 §8.7).
    AckNoTransaction,
}

#[derive(Debug)]
enum Machine {
    InviteClient(InviteClient),
    NonInviteClient(NonInviteClient),
    InviteServer(InviteServer),
    NonInviteServer(NonInviteServer),
}

impl Machine {
    fn kind(&self) -> TransactionKind {
        match self {
            Machine::InviteClient(_) => TransactionKind::InviteClient,
            Machine::NonInviteClient(_) => TransactionKind::NonInviteClient,
            Machine::InviteServer(_) => TransactionKind::InviteServer,
            Machine::NonInviteServer(_) => TransactionKind::NonInviteServer,
        }
    }

    fn is_client(&self) -> bool {
        matches!(self, Machine::InviteClient(_) | Machine::NonInviteClient(_))
    }

    fn poll_output(&mut self) -> Option<Output> {
        match self {
            Machine::InviteClient(m) => m.poll_output(),
            Machine::NonInviteClient(m) => m.poll_output(),
            Machine::InviteServer(m) => m.poll_output(),
            Machine::NonInviteServer(m) => m.poll_output(),
        }
    }

    fn has_output(&self) -> bool {
        match self {
            Machine::InviteClient(m) => m.has_output(),
            Machine::NonInviteClient(m) => m.has_output(),
            Machine::InviteServer(m) => m.has_output(),
            Machine::NonInviteServer(m) => m.has_output(),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Machine::InviteClient(m) => m.poll_timeout(),
            Machine::NonInviteClient(m) => m.poll_timeout(),
            Machine::InviteServer(m) => m.poll_timeout(),
            Machine::NonInviteServer(m) => m.poll_timeout(),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Machine::InviteClient(m) => m.handle_timeout(now),
            Machine::NonInviteClient(m) => m.handle_timeout(now),
            Machine::InviteServer(m) => m.handle_timeout(now),
            Machine::NonInviteServer(m) => m.handle_timeout(now),
        }
    }

    fn handle_transport_error(&mut self, now: Instant) {
        match self {
            Machine::InviteClient(m) => m.handle_transport_error(now),
            Machine::NonInviteClient(m) => m.handle_transport_error(now),
            Machine::InviteServer(m) => m.handle_transport_error(now),
            Machine::NonInviteServer(m) => m.handle_transport_error(now),
        }
    }
}

#[derive(Debug)]
struct Entry<T> {
    generation: u64,
    key: TransactionKey,
    machine: Machine,
    context: T,
    /// The deadline this entry has in the heap; heap items that disagree are stale.
    scheduled: Option<Instant>,
    /// Whether the id is in the ready queue.
    queued: bool,
}

/// All transactions of one owner, addressed by [`TxId`].
///
/// Each transaction carries a `T` chosen by the owner (for example the peer address and
/// connection to send on), given when it is created and read back with [`Transactions::context`]
/// while handling its outputs. Keeping it here rather than in a side map means it cannot
/// outlive its transaction or be missing for one.
///
/// Deadlines live in a min-heap of `(Instant, TxId)` with lazy deletion: a change of a
/// machine's deadline pushes a new item and leaves the old one, which is skipped when it
/// surfaces. The top is pruned after every operation, so [`Transactions::poll_timeout`] is exact,
/// and the heap is rebuilt when stale items outnumber live ones.
#[derive(Debug)]
pub struct Transactions<T> {
    config: TimerConfig,
    entries: Slab<Entry<T>>,
    next_generation: u64,
    servers: HashMap<TransactionKey, TxId>,
    clients: HashMap<TransactionKey, TxId>,
    deadlines: BinaryHeap<Reverse<(Instant, TxId)>>,
    ready: VecDeque<TxId>,
    stray_responses: u64,
}

impl<T> Transactions<T> {
    pub fn new(config: TimerConfig) -> Self {
        Transactions {
            config,
            entries: Slab::new(),
            next_generation: 0,
            servers: HashMap::new(),
            clients: HashMap::new(),
            deadlines: BinaryHeap::new(),
            ready: VecDeque::new(),
            stray_responses: 0,
        }
    }

    /// Matches a received request (§17.2.3). `key` comes from [`TransactionKey::server`];
    /// `context` is stored only when a transaction is created.
    pub fn on_request(
        &mut self,
        key: TransactionKey,
        method: &Method,
        reliable: bool,
        context: T,
        now: Instant,
    ) -> ServerDisposition {
        if *method == Method::Ack {
            return self.on_ack(&key, now);
        }
        if let Some(&id) = self.servers.get(&key) {
            if let Some(entry) = self.live_mut(id) {
                match &mut entry.machine {
                    Machine::InviteServer(m) => m.handle_request_retransmission(now),
                    Machine::NonInviteServer(m) => m.handle_request_retransmission(now),
                    Machine::InviteClient(_) | Machine::NonInviteClient(_) => {}
                }
                self.refresh(id);
            }
            return ServerDisposition::Retransmission(id);
        }
        let machine = if *method == Method::Invite {
            Machine::InviteServer(InviteServer::start(reliable, &self.config, now))
        } else {
            Machine::NonInviteServer(NonInviteServer::start(reliable, &self.config, now))
        };
        let id = self.insert(key.clone(), machine, context);
        self.servers.insert(key, id);
        ServerDisposition::New(id)
    }

    fn on_ack(&mut self, key: &TransactionKey, now: Instant) -> ServerDisposition {
        let found = self.servers.get(key).copied().or_else(|| {
            key.rfc2543_ack_fallback()
                .and_then(|initial| self.servers.get(&initial).copied())
        });
        let Some(id) = found else {
            return ServerDisposition::AckNoTransaction;
        };
        let routing = match self.live_mut(id).map(|e| &mut e.machine) {
            Some(Machine::InviteServer(m)) => m.handle_ack(now),
            _ => return ServerDisposition::AckNoTransaction,
        };
        self.refresh(id);
        match routing {
            AckRouting::Absorbed => ServerDisposition::AckForFinal(id),
            AckRouting::ToTu => ServerDisposition::AckNoTransaction,
        }
    }

    /// The INVITE server transaction a CANCEL with this key targets (§9.2). The CANCEL itself
    /// gets its own transaction from [`Transactions::on_request`].
    pub fn find_cancel_target(&self, cancel_key: &TransactionKey) -> Option<TxId> {
        let target = cancel_key.for_cancel_target()?;
        let id = *self.servers.get(&target)?;
        match self.live(id)?.machine {
            Machine::InviteServer(_) => Some(id),
            _ => None,
        }
    }

    /// Sends a response from the TU through server transaction `id`.
    pub fn respond(
        &mut self,
        id: TxId,
        status: u16,
        response: Bytes,
        now: Instant,
    ) -> Result<(), TxError> {
        let entry = self
            .live_mut(id)
            .ok_or(TxError::UnknownTransaction { id })?;
        let result = match &mut entry.machine {
            Machine::InviteServer(m) => m.respond(status, response, now),
            Machine::NonInviteServer(m) => m.respond(status, response, now),
            other => {
                return Err(TxError::WrongKind {
                    id,
                    actual: other.kind(),
                    expected: TransactionKind::NonInviteServer,
                });
            }
        };
        self.refresh(id);
        result
    }

    /// Starts a client transaction for `request` (already serialised, with our branch in the
    /// top Via); its first transmission is queued as output. `key` is
    /// [`TransactionKey::client`] of that branch and `method`.
    pub fn start_client(
        &mut self,
        key: TransactionKey,
        method: &Method,
        request: Bytes,
        reliable: bool,
        context: T,
        now: Instant,
    ) -> Result<TxId, TxError> {
        if *method == Method::Ack {
            return Err(TxError::AckIsNotATransaction);
        }
        if let Some(&existing) = self.clients.get(&key) {
            return Err(TxError::DuplicateKey { existing });
        }
        let machine = if *method == Method::Invite {
            Machine::InviteClient(InviteClient::start(request, reliable, &self.config, now))
        } else {
            Machine::NonInviteClient(NonInviteClient::start(request, reliable, &self.config, now))
        };
        let id = self.insert(key.clone(), machine, context);
        self.clients.insert(key, id);
        Ok(id)
    }

    /// Matches a received response (§17.1.3). `None` is a stray response: RFC 6026 §7.2 has a
    /// UA drop it; the table counts it in [`Transactions::stray_responses`].
    pub fn on_response(&mut self, key: &TransactionKey, status: u16, now: Instant) -> Option<TxId> {
        let Some(id) = self.clients.get(key).copied() else {
            self.stray_responses += 1;
            return None;
        };
        match self.live_mut(id).map(|e| &mut e.machine) {
            Some(Machine::InviteClient(m)) => m.handle_response(status, now),
            Some(Machine::NonInviteClient(m)) => m.handle_response(status, now),
            _ => return None,
        }
        self.refresh(id);
        Some(id)
    }

    /// Hands the ACK for a non-2xx final to INVITE client transaction `id` (after
    /// `Output::NeedAck`, before the next `handle_timeouts`).
    pub fn set_ack(&mut self, id: TxId, ack: Bytes) -> Result<(), TxError> {
        let entry = self
            .live_mut(id)
            .ok_or(TxError::UnknownTransaction { id })?;
        match &mut entry.machine {
            Machine::InviteClient(m) => m.set_ack(ack),
            other => {
                return Err(TxError::WrongKind {
                    id,
                    actual: other.kind(),
                    expected: TransactionKind::InviteClient,
                });
            }
        }
        self.refresh(id);
        Ok(())
    }

    /// Whether the TU may CANCEL INVITE client transaction `id` now (§9.1).
    pub fn cancel_allowed(&self, id: TxId) -> bool {
        match self.live(id).map(|e| &e.machine) {
            Some(Machine::InviteClient(m)) => m.cancel_allowed(),
            _ => false,
        }
    }

    /// The TU sent a CANCEL for INVITE client transaction `id` (see `InviteClient::cancelled`).
    pub fn cancelled(&mut self, id: TxId, now: Instant) {
        if let Some(Machine::InviteClient(m)) = self.live_mut(id).map(|e| &mut e.machine) {
            m.cancelled(now);
            self.refresh(id);
        }
    }

    /// The owner failed to send something for transaction `id` (§17.1.4, §17.2.4).
    pub fn handle_transport_error(&mut self, id: TxId, now: Instant) -> Result<(), TxError> {
        let entry = self
            .live_mut(id)
            .ok_or(TxError::UnknownTransaction { id })?;
        entry.machine.handle_transport_error(now);
        self.refresh(id);
        Ok(())
    }

    /// Fires every deadline at or before `now`. Spurious calls do nothing. Each call handles at
    /// most the items in the heap when it starts, so it always returns.
    pub fn handle_timeouts(&mut self, now: Instant) {
        for _ in 0..self.deadlines.len() {
            let Some(&Reverse((at, id))) = self.deadlines.peek() else {
                break;
            };
            if at > now {
                break;
            }
            self.deadlines.pop();
            let Some(entry) = self.live_mut(id) else {
                continue;
            };
            if entry.scheduled != Some(at) {
                continue;
            }
            entry.scheduled = None;
            entry.machine.handle_timeout(now);
            self.refresh(id);
        }
        self.prune_deadlines();
    }

    /// The earliest deadline of any transaction.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }

    /// The next output of any transaction. After a transaction's `Output::Terminated` it is
    /// removed: its id, key and context are gone.
    pub fn poll_output(&mut self) -> Option<(TxId, Output)> {
        while let Some(&id) = self.ready.front() {
            let Some(entry) = self.live_mut(id) else {
                self.ready.pop_front();
                continue;
            };
            match entry.machine.poll_output() {
                Some(Output::Terminated) => {
                    self.ready.pop_front();
                    self.remove(id);
                    return Some((id, Output::Terminated));
                }
                Some(output) => return Some((id, output)),
                None => {
                    entry.queued = false;
                    self.ready.pop_front();
                }
            }
        }
        None
    }

    /// The owner's context of transaction `id`.
    pub fn context(&self, id: TxId) -> Option<&T> {
        self.live(id).map(|e| &e.context)
    }

    pub fn context_mut(&mut self, id: TxId) -> Option<&mut T> {
        self.live_mut(id).map(|e| &mut e.context)
    }

    pub fn kind(&self, id: TxId) -> Option<TransactionKind> {
        self.live(id).map(|e| e.machine.kind())
    }

    pub fn key(&self, id: TxId) -> Option<&TransactionKey> {
        self.live(id).map(|e| &e.key)
    }

    /// Responses that matched no client transaction since the table was created.
    pub fn stray_responses(&self) -> u64 {
        self.stray_responses
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn live(&self, id: TxId) -> Option<&Entry<T>> {
        self.entries
            .get(id.slot)
            .filter(|e| e.generation == id.generation)
    }

    fn live_mut(&mut self, id: TxId) -> Option<&mut Entry<T>> {
        self.entries
            .get_mut(id.slot)
            .filter(|e| e.generation == id.generation)
    }

    fn insert(&mut self, key: TransactionKey, machine: Machine, context: T) -> TxId {
        let generation = self.next_generation;
        self.next_generation += 1;
        let slot = self.entries.insert(Entry {
            generation,
            key,
            machine,
            context,
            scheduled: None,
            queued: false,
        });
        let id = TxId { slot, generation };
        self.refresh(id);
        id
    }

    fn remove(&mut self, id: TxId) {
        if self.live(id).is_none() {
            return;
        }
        let entry = self.entries.remove(id.slot);
        let index = if entry.machine.is_client() {
            &mut self.clients
        } else {
            &mut self.servers
        };
        if index.get(&entry.key) == Some(&id) {
            index.remove(&entry.key);
        }
        self.prune_deadlines();
    }

    /// Re-reads a machine after it was fed: queue it if it has output, push its deadline if
    /// that changed.
    fn refresh(&mut self, id: TxId) {
        let Some(entry) = self
            .entries
            .get_mut(id.slot)
            .filter(|e| e.generation == id.generation)
        else {
            return;
        };
        if entry.machine.has_output() && !entry.queued {
            entry.queued = true;
            self.ready.push_back(id);
        }
        let next = entry.machine.poll_timeout();
        if next != entry.scheduled {
            entry.scheduled = next;
            if let Some(at) = next {
                self.deadlines.push(Reverse((at, id)));
            }
        }
        self.prune_deadlines();
    }

    fn is_current(&self, at: Instant, id: TxId) -> bool {
        self.live(id).is_some_and(|e| e.scheduled == Some(at))
    }

    /// Drops stale items from the top of the heap, and rebuilds it when stale items dominate
    /// (each transaction has at most one current item).
    fn prune_deadlines(&mut self) {
        if self.deadlines.len() > 2 * self.entries.len() + 64 {
            let current: Vec<_> = self
                .entries
                .iter()
                .filter_map(|(slot, e)| {
                    let id = TxId {
                        slot,
                        generation: e.generation,
                    };
                    e.scheduled.map(|at| Reverse((at, id)))
                })
                .collect();
            self.deadlines = BinaryHeap::from(current);
            return;
        }
        while let Some(&Reverse((at, id))) = self.deadlines.peek() {
            if self.is_current(at, id) {
                break;
            }
            self.deadlines.pop();
        }
    }

    #[cfg(test)]
    pub(crate) fn heap_len(&self) -> usize {
        self.deadlines.len()
    }
}

#[cfg(test)]
mod tests;
