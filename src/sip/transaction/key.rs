//! Transaction keys: how a message finds its transaction (RFC 3261 §17.1.3, §17.2.3, §9.2).

use crate::sip::Method;

/// The branch prefix that marks an RFC 3261 branch as globally unique (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// The key a transaction is stored under and a message is looked up by.
///
/// ACK is folded into INVITE in server keys (its transaction is the INVITE's), while CANCEL is
/// its own method and so its own transaction (§9.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransactionKey {
    /// A branch with the magic cookie: branch + sent-by + method (§17.2.3). Client keys
    /// (§17.1.3) compare only branch and CSeq method, so their `sent_by` is empty.
    Rfc3261 {
        branch: String,
        sent_by: String,
        method: Method,
    },
    /// A peer without the magic cookie (RFC 2543), matched as §17.2.3's last paragraph says.
    /// Boxed: such peers are rare, and inline these fields would almost double every key, of
    /// which each transaction keeps two (its table entry and the lookup map).
    Rfc2543(Box<Rfc2543Key>),
}

/// The fields an RFC 2543 request is matched by (§17.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rfc2543Key {
    pub request_uri: String,
    pub to_tag: Option<String>,
    pub from_tag: Option<String>,
    pub call_id: String,
    pub cseq: u32,
    pub top_via: String,
    pub method: Method,
}

/// The parts of a received request a server key is built from, as the owner parsed them.
#[derive(Debug, Clone, Copy)]
pub struct RequestFields<'a> {
    pub method: &'a Method,
    /// `branch` parameter of the top Via, if any.
    pub branch: Option<&'a str>,
    /// sent-by (`host[:port]`) of the top Via.
    pub sent_by: &'a str,
    pub request_uri: &'a str,
    pub to_tag: Option<&'a str>,
    pub from_tag: Option<&'a str>,
    pub call_id: &'a str,
    /// The CSeq number (not its method).
    pub cseq: u32,
    /// The whole top Via header value, for RFC 2543 matching.
    pub top_via: &'a str,
}

/// §17.2.3: "the ACK ... matches the INVITE", so both are stored as INVITE.
fn server_method(method: &Method) -> Method {
    match method {
        Method::Ack => Method::Invite,
        other => other.clone(),
    }
}

impl TransactionKey {
    /// The key of a received request (§17.2.3). A top-Via branch starting with the magic cookie
    /// gives an RFC 3261 key; anything else falls back to RFC 2543 matching.
    pub fn server(fields: &RequestFields<'_>) -> Self {
        if let Some(key) = Self::server_rfc3261(fields.method, fields.branch, fields.sent_by) {
            return key;
        }
        TransactionKey::Rfc2543(Box::new(Rfc2543Key {
            request_uri: fields.request_uri.to_owned(),
            to_tag: fields.to_tag.map(str::to_owned),
            from_tag: fields.from_tag.map(str::to_owned),
            call_id: fields.call_id.to_owned(),
            cseq: fields.cseq,
            top_via: fields.top_via.to_owned(),
            method: server_method(fields.method),
        }))
    }

    /// The server key of a request whose top-Via branch has the magic cookie, from the
    /// three fields it takes; None for any other branch, which needs [`Self::server`] and
    /// the RFC 2543 fields (an owner can skip building those for RFC 3261 peers).
    pub fn server_rfc3261(method: &Method, branch: Option<&str>, sent_by: &str) -> Option<Self> {
        let branch = branch.filter(|b| b.starts_with(MAGIC_COOKIE))?;
        Some(TransactionKey::Rfc3261 {
            branch: branch.to_owned(),
            // Host names compare case-insensitively (§19.1.4); ports and IPs are unaffected.
            sent_by: sent_by.to_ascii_lowercase(),
            method: server_method(method),
        })
    }

    /// The key of a client transaction: the branch we put in the top Via and the method in
    /// CSeq. A response matches with its top-Via branch and CSeq method (§17.1.3).
    pub fn client(branch: &str, cseq_method: &Method) -> Self {
        TransactionKey::Rfc3261 {
            branch: branch.to_owned(),
            sent_by: String::new(),
            method: cseq_method.clone(),
        }
    }

    /// For a CANCEL's key, the key of the INVITE it cancels (§9.2): the same fields with method
    /// INVITE. `None` when this is not a CANCEL key.
    pub fn for_cancel_target(&self) -> Option<TransactionKey> {
        if *self.method() != Method::Cancel {
            return None;
        }
        let mut target = self.clone();
        match &mut target {
            TransactionKey::Rfc3261 { method, .. } => *method = Method::Invite,
            TransactionKey::Rfc2543(key) => key.method = Method::Invite,
        }
        Some(target)
    }

    /// The transaction's method (INVITE for an ACK's server key).
    pub fn method(&self) -> &Method {
        match self {
            TransactionKey::Rfc3261 { method, .. } => method,
            TransactionKey::Rfc2543(key) => &key.method,
        }
    }

    /// RFC 2543 only: the key of the INVITE an ACK with this key may acknowledge when the ACK
    /// carries the To tag of our response and the INVITE carried none (§17.2.3: the ACK's To
    /// tag must match the response's). The table tries the exact key first, which covers
    /// re-INVITEs, then this one. We do not record which tag each response carried, so an ACK
    /// with any To tag matches an initial INVITE; a UAS answers with one tag, so this only
    /// widens matching for a peer that invents tags.
    pub(crate) fn rfc2543_ack_fallback(&self) -> Option<TransactionKey> {
        match self {
            TransactionKey::Rfc2543(key) if key.to_tag.is_some() => {
                Some(TransactionKey::Rfc2543(Box::new(Rfc2543Key {
                    to_tag: None,
                    ..(**key).clone()
                })))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(method: &'a Method, branch: Option<&'a str>) -> RequestFields<'a> {
        RequestFields {
            method,
            branch,
            sent_by: "Trunk.Example.com:5060",
            request_uri: "sip:+15551234@sbc.example.com",
            to_tag: None,
            from_tag: Some("f1"),
            call_id: "c1@trunk",
            cseq: 1,
            top_via: "SIP/2.0/UDP trunk.example.com:5060",
        }
    }

    #[test]
    fn magic_cookie_branch_gives_rfc3261_key_with_lowercased_sent_by() {
        let key = TransactionKey::server(&fields(&Method::Invite, Some("z9hG4bKabc")));
        assert_eq!(
            key,
            TransactionKey::Rfc3261 {
                branch: "z9hG4bKabc".into(),
                sent_by: "trunk.example.com:5060".into(),
                method: Method::Invite,
            }
        );
    }

    #[test]
    fn branch_without_cookie_or_missing_falls_back_to_rfc2543() {
        for branch in [None, Some("1234abcd"), Some("z9hg4bkabc")] {
            let key = TransactionKey::server(&fields(&Method::Options, branch));
            assert!(
                matches!(&key, TransactionKey::Rfc2543(k) if k.cseq == 1),
                "{branch:?} gave {key:?}"
            );
        }
    }

    #[test]
    fn ack_keys_as_invite_and_cancel_keys_as_itself() {
        let invite = TransactionKey::server(&fields(&Method::Invite, Some("z9hG4bK1")));
        let ack = TransactionKey::server(&fields(&Method::Ack, Some("z9hG4bK1")));
        let cancel = TransactionKey::server(&fields(&Method::Cancel, Some("z9hG4bK1")));
        assert_eq!(ack, invite);
        assert_ne!(cancel, invite);
        assert_eq!(cancel.for_cancel_target(), Some(invite.clone()));
        assert_eq!(invite.for_cancel_target(), None);

        let invite_2543 = TransactionKey::server(&fields(&Method::Invite, None));
        let cancel_2543 = TransactionKey::server(&fields(&Method::Cancel, None));
        assert_eq!(cancel_2543.for_cancel_target(), Some(invite_2543));
    }

    #[test]
    fn branches_from_different_sent_by_are_different_transactions() {
        let a = TransactionKey::server(&fields(&Method::Invite, Some("z9hG4bK1")));
        let mut other = fields(&Method::Invite, Some("z9hG4bK1"));
        other.sent_by = "other.example.com";
        assert_ne!(a, TransactionKey::server(&other));
    }

    #[test]
    fn client_key_matches_branch_and_cseq_method_only() {
        let invite = TransactionKey::client("z9hG4bKx", &Method::Invite);
        assert_eq!(invite, TransactionKey::client("z9hG4bKx", &Method::Invite));
        assert_ne!(invite, TransactionKey::client("z9hG4bKx", &Method::Cancel));
        assert_ne!(invite, TransactionKey::client("z9hG4bKy", &Method::Invite));
    }

    #[test]
    fn rfc2543_ack_with_to_tag_falls_back_to_initial_invite_key() {
        let invite = TransactionKey::server(&fields(&Method::Invite, None));
        let mut ack_fields = fields(&Method::Ack, None);
        ack_fields.to_tag = Some("our-tag");
        let ack = TransactionKey::server(&ack_fields);
        assert_ne!(ack, invite);
        assert_eq!(ack.rfc2543_ack_fallback(), Some(invite.clone()));
        assert_eq!(invite.rfc2543_ack_fallback(), None);
    }
}
