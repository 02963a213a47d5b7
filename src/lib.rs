//! drawbridge: a multi-tenant Session Border Controller between Microsoft Teams Direct Routing
//! (SIP/TLS + SRTP) and contact-center trunks (SIP + RTP).
//!
//! Two planes in one process: the signaling plane on tokio (SIP transports, transactions,
//! OPTIONS keepalive, metrics) and the media plane on dedicated worker threads (SRTP <-> RTP
//! relay). Protocol cores are sans-I/O.
#![forbid(unsafe_code)]

pub mod admin;
mod b2bua;
pub mod cdr;
pub mod clock;
pub mod config;
pub mod dns;
pub mod media;
pub mod metrics;
pub mod routing;
pub mod sdp;
mod server;
pub mod sip;
pub mod teams;
pub mod trunk_health;
pub mod trunk_policy;

pub use server::{
    ConfigReloadError, LocalAddrs, ReloadError, Server, StartError, listeners_summary,
};
