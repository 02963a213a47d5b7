//! SIP: messages, transports, transactions.

pub mod framing;
pub mod message;
pub mod method;
pub mod transport;
pub mod validate;

pub use method::Method;
