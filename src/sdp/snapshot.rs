//! Serde for a session description in its printed form (call snapshots): parsing is lossless,
//! so printing and parsing again gives the same description.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::SessionDescription;

impl Serialize for SessionDescription {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SessionDescription {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SessionDescription, D::Error> {
        let text = String::deserialize(d)?;
        SessionDescription::parse(&text).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_comes_back_equal_from_json() {
        let text = "v=0\r\no=- 7 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
            m=audio 4000 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=x-unknown:kept\r\n\
            a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n";
        let sd = SessionDescription::parse(text).expect("test SDP parses");
        let json = serde_json::to_string(&sd).expect("serializes");
        assert_eq!(
            serde_json::from_str::<SessionDescription>(&json).expect("parses"),
            sd
        );
        assert!(serde_json::from_str::<SessionDescription>("\"not sdp\"").is_err());
    }
}
