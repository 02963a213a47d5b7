//! SIP: messages, transports, transactions.

pub mod method;
pub mod transaction;

pub use method::Method;
