//! SIP: messages, transports, transactions.

pub mod method;
pub mod transport;

pub use method::Method;
