//! Media plane: SRTP <-> RTP relay on worker threads.
