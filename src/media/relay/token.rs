//! mio tokens: slot index and socket role packed into one `usize`, so the
//! session of a ready socket is one index away.

use std::collections::VecDeque;

use mio::Token;

use crate::media::session::Port;

/// Token of the worker's command waker; never a socket (slot indexes stay far
/// below `usize::MAX / 4`).
pub(crate) const WAKER: Token = Token(usize::MAX);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SocketToken {
    pub(crate) slot: usize,
    pub(crate) port: Port,
}

impl SocketToken {
    pub(crate) fn token(self) -> Token {
        Token(self.slot << 2 | self.port as usize)
    }

    /// None for the waker.
    pub(crate) fn from_token(t: Token) -> Option<Self> {
        if t == WAKER {
            return None;
        }
        let port = Port::ALL.get(t.0 & 3).copied()?;
        Some(SocketToken {
            slot: t.0 >> 2,
            port,
        })
    }
}

/// Sockets with data left to read, served round-robin.
#[derive(Debug)]
pub(crate) struct ReadyList(VecDeque<SocketToken>);

impl Default for ReadyList {
    fn default() -> Self {
        // Grows to the largest burst of ready sockets once, then stays.
        ReadyList(VecDeque::with_capacity(1024))
    }
}

impl ReadyList {
    pub(crate) fn push(&mut self, t: SocketToken) {
        self.0.push_back(t);
    }
    pub(crate) fn pop(&mut self) -> Option<SocketToken> {
        self.0.pop_front()
    }
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// A removed session's slot index may be reused: its sockets must not
    /// linger in the list.
    pub(crate) fn forget_slot(&mut self, slot: usize) {
        self.0.retain(|t| t.slot != slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips_slot_and_port() {
        for port in Port::ALL {
            let t = SocketToken { slot: 12345, port };
            assert_eq!(SocketToken::from_token(t.token()), Some(t));
        }
        assert_eq!(SocketToken::from_token(WAKER), None);
    }
}
