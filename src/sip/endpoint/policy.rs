//! What this SBC supports, as advertised in Allow/Supported/Accept and enforced on requests.

use crate::sip::Method;

/// Methods we handle. REFER and NOTIFY are listed as TDR-XFR-01 requires; PRACK and UPDATE as
/// TDR-INV-18 recommends.
pub(crate) const ALLOW: &str =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, REFER, PRACK, UPDATE";

pub(crate) fn allowed_methods() -> Vec<Method> {
    vec![
        Method::Invite,
        Method::Ack,
        Method::Cancel,
        Method::Bye,
        Method::Options,
        Method::Info,
        Method::Notify,
        Method::Refer,
        Method::Prack,
        Method::Update,
    ]
}

/// Option tags we understand in Require (anything else gets 420, RFC 3261 §8.2.2.3).
pub(crate) const SUPPORTED_TAGS: &[&str] = &["replaces", "timer", "100rel"];
pub(crate) const SUPPORTED: &str = "replaces, timer";

/// Body types we read. multipart/mixed carries SDP + PIDF-LO from Teams (TDR-INV-12).
pub(crate) const ACCEPTED_BODIES: &[&str] = &[
    "application/sdp",
    "multipart/mixed",
    "application/pidf+xml",
    "message/sipfrag",
];
pub(crate) const ACCEPT: &str = "application/sdp";
