//! SIP: messages, transports, transactions.

pub mod method;

pub use method::Method;
