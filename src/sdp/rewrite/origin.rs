//! Our `o=` line per leg (RFC 3264 §5, §8).

use std::net::IpAddr;

use crate::sdp::model::{Origin, SessionDescription, addr_type_of};

/// The SBC's origin on one leg: a session id fixed for the leg's lifetime and a version that
/// RFC 3264 §8 requires to grow by one with every changed SDP and to stay put when the SDP is
/// the same (a 183 and 200 carrying identical SDP, a refresh re-INVITE).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OriginState {
    username: String,
    session_id: u64,
    version: u64,
    address: IpAddr,
    /// A hash of the last SDP sent on this leg (origin included), compared with the next one.
    /// A hash rather than the SDP: a call keeps two of these for its whole life. (std's hasher
    /// may change between Rust releases: a call snapshot read back by another build may bump
    /// the version once for an unchanged SDP, which peers take as a change, not an error.)
    last: Option<u64>,
}

impl OriginState {
    /// Username `drawbridge`; the first SDP on the leg carries version 1.
    pub fn new(session_id: u64, address: IpAddr) -> Self {
        OriginState {
            username: "drawbridge".to_owned(),
            session_id,
            version: 1,
            address,
            last: None,
        }
    }

    /// Another `o=` username (RFC 8866 §5.2: `-` when the host has no user concept).
    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        let username: String = username.into();
        // The username is one token of the o= line; whitespace would shift the other fields.
        if !username.is_empty() && !username.contains(char::is_whitespace) {
            self.username = username;
        }
        self
    }

    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// The version of the last SDP sent (1 before anything was sent).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Put our origin on `sd`, bumping the version if it differs from the last SDP sent.
    pub(crate) fn stamp(&mut self, mut sd: SessionDescription) -> SessionDescription {
        sd.origin = self.origin();
        if let Some(last) = self.last {
            if last == digest(&sd) {
                return sd;
            }
            self.version = self.version.wrapping_add(1);
            sd.origin.session_version = self.version;
        }
        self.last = Some(digest(&sd));
        sd
    }

    fn origin(&self) -> Origin {
        Origin {
            username: self.username.clone(),
            session_id: self.session_id,
            session_version: self.version,
            net_type: "IN".to_owned(),
            addr_type: addr_type_of(self.address).to_owned(),
            address: self.address.to_string(),
        }
    }
}

/// `DefaultHasher::new()` has fixed keys, so equal SDPs give equal digests.
fn digest(sd: &SessionDescription) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    sd.hash(&mut h);
    h.finish()
}
