//! The Teams side: OPTIONS keepalive toward the Microsoft SIP proxies (TDR-OPT) and proxy health.

pub mod keepalive;
