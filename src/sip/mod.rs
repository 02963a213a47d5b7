//! SIP: messages, transports, transactions, and the endpoint that ties them together.

pub mod digest;
pub mod endpoint;
pub mod framing;
pub mod message;
pub mod method;
pub mod transaction;
pub mod transport;
pub mod validate;

pub use method::Method;
