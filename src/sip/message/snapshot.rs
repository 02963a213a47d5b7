//! Serde for messages and URIs in their wire form (call snapshots): the printed message is
//! the one representation the parser already checks, and it stays readable in a snapshot.

use bytes::Bytes;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Message, Request, Response, Uri};

/// Text when the message is UTF-8 (always, in practice: SIP headers and SDP bodies); raw
/// bytes otherwise, so a binary body survives too.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Wire {
    Text(String),
    Bytes(Vec<u8>),
}

/// `Bytes` fields of a snapshot (SDP bodies, Route values) as text where they are UTF-8: serde's
/// own form for bytes is a list of numbers. `#[serde(with = "text_bytes::option")]` for an
/// `Option<Bytes>`, `text_bytes::vec` for a `Vec<Bytes>`.
pub(crate) mod text_bytes {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    struct Out<'a>(&'a Bytes);

    impl Serialize for Out<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            super::serialize_wire(self.0.clone(), s)
        }
    }

    struct In(Bytes);

    impl<'de> Deserialize<'de> for In {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<In, D::Error> {
            Ok(In(match super::Wire::deserialize(d)? {
                super::Wire::Text(t) => Bytes::from(t),
                super::Wire::Bytes(b) => Bytes::from(b),
            }))
        }
    }

    pub(crate) mod option {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(b: &Option<Bytes>, s: S) -> Result<S::Ok, S::Error> {
            b.as_ref().map(Out).serialize(s)
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Bytes>, D::Error> {
            Ok(Option::<In>::deserialize(d)?.map(|b| b.0))
        }
    }

    pub(crate) mod vec {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(v: &[Bytes], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(Out))
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Bytes>, D::Error> {
            Ok(Vec::<In>::deserialize(d)?
                .into_iter()
                .map(|b| b.0)
                .collect())
        }
    }
}

fn serialize_wire<S: Serializer>(bytes: Bytes, s: S) -> Result<S::Ok, S::Error> {
    match std::str::from_utf8(&bytes) {
        Ok(text) => s.serialize_str(text),
        Err(_) => s.serialize_bytes(&bytes),
    }
}

fn deserialize_message<'de, D: Deserializer<'de>>(d: D) -> Result<Message, D::Error> {
    let bytes = match Wire::deserialize(d)? {
        Wire::Text(t) => Bytes::from(t),
        Wire::Bytes(b) => Bytes::from(b),
    };
    Message::parse(bytes).map_err(D::Error::custom)
}

impl Serialize for Request {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_wire(self.to_bytes(), s)
    }
}

impl<'de> Deserialize<'de> for Request {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Request, D::Error> {
        match deserialize_message(d)? {
            Message::Request(r) => Ok(r),
            Message::Response(_) => Err(D::Error::custom("a response where a request belongs")),
        }
    }
}

impl Serialize for Response {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_wire(self.to_bytes(), s)
    }
}

impl<'de> Deserialize<'de> for Response {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Response, D::Error> {
        match deserialize_message(d)? {
            Message::Response(r) => Ok(r),
            Message::Request(_) => Err(D::Error::custom("a request where a response belongs")),
        }
    }
}

impl Serialize for Uri {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Uri {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Uri, D::Error> {
        let text = String::deserialize(d)?;
        Uri::parse(&text).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Method;

    #[test]
    fn request_response_and_uri_come_back_equal_from_json() {
        let raw = "INVITE sip:+15551234@tenant.example.com;transport=tls SIP/2.0\r\n\
            Via: SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bK-1\r\n\
            From: <sip:+15550000@sbc.example.com>;tag=a\r\nTo: <sip:+15551234@tenant.example.com>\r\n\
            Call-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n";
        let Ok(Message::Request(req)) = Message::parse(Bytes::from(raw)) else {
            panic!("test request does not parse");
        };
        let json = serde_json::to_string(&req).expect("serializes");
        assert_eq!(serde_json::from_str::<Request>(&json).expect("parses"), req);

        let rsp = Response::for_request(&req, 486, "Busy Here", Some("b"));
        let json = serde_json::to_string(&rsp).expect("serializes");
        // Read back it carries the Content-Length every printed message has: the same on the wire.
        let back = serde_json::from_str::<Response>(&json).expect("parses");
        assert_eq!(back.to_bytes(), rsp.to_bytes());
        assert!(
            serde_json::from_str::<Request>(&json).is_err(),
            "a response is no request"
        );

        // What a call keeps of its INVITE after the answer: the start line only.
        let bare = Request::new(Method::Invite, req.uri.clone());
        let json = serde_json::to_string(&bare).expect("serializes");
        let back = serde_json::from_str::<Request>(&json).expect("parses");
        assert_eq!(back.to_bytes(), bare.to_bytes());

        let json = serde_json::to_string(&req.uri).expect("serializes");
        assert_eq!(json, "\"sip:+15551234@tenant.example.com;transport=tls\"");
        assert_eq!(serde_json::from_str::<Uri>(&json).expect("parses"), req.uri);
    }

    #[test]
    fn a_binary_body_survives_as_bytes() {
        let mut req = Request::new(Method::Info, Uri::parse("sip:a@b").expect("uri"));
        req.body = Bytes::from_static(&[0xff, 0x00, 0x80]);
        let json = serde_json::to_string(&req).expect("serializes");
        let back = serde_json::from_str::<Request>(&json).expect("parses");
        assert_eq!(back.body, req.body);
        assert_eq!(back.to_bytes(), req.to_bytes());
    }
}
