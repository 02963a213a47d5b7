//! Media plane: SRTP <-> RTP relay on worker threads.

pub mod sdes;
pub mod srtp;
