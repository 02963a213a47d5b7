//! One leg's dialog (RFC 3261 §12): what the SBC needs to build requests inside it and to
//! recognise the requests and responses that belong to it.

use bytes::Bytes;

use crate::sip::Method;
use crate::sip::message::{NameAddr, Request, Response, Uri};

/// Dialog state of one leg. Both roles use it: on the leg that sent us the INVITE we are the
/// UAS (local = To, remote = From), on the leg we created we are the UAC (local = From).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Dialog {
    pub(crate) call_id: String,
    pub(crate) local_tag: String,
    /// `None` until the peer's first tagged response (UAC role).
    pub(crate) remote_tag: Option<String>,
    /// Our From/To, printed without tag. Kept printed: they are only ever printed again,
    /// and parsed they took 200 bytes each inline, four per call, for the call's life.
    pub(crate) local: Box<str>,
    pub(crate) remote: Box<str>,
    /// The CSeq of the last request we sent inside the dialog.
    pub(crate) local_cseq: u32,
    /// The highest CSeq the peer used (§12.2.2: lower ones are out of order).
    pub(crate) remote_cseq: u32,
    /// Where requests go: the peer's Contact.
    pub(crate) remote_target: Uri,
    /// Route headers for requests inside the dialog, in order.
    #[serde(with = "crate::sip::message::text_bytes::vec")]
    pub(crate) route_set: Vec<Bytes>,
    /// Our Contact header value on this leg.
    pub(crate) contact: String,
}

impl Dialog {
    /// The UAS side of a dialog created by `invite` (§12.1.1).
    pub(crate) fn as_uas(invite: &Request, local_tag: String, contact: String) -> Option<Dialog> {
        let from = invite.headers.from().ok()?;
        let to = invite.headers.to().ok()?;
        let remote_target = invite
            .headers
            .contacts()
            .ok()
            .and_then(|c| c.into_iter().next())
            .map(|c| c.uri)?;
        let remote_tag = from.tag().map(str::to_owned);
        let mut dialog = Dialog {
            call_id: invite.headers.call_id().ok()?.to_owned(),
            local_tag,
            remote_tag,
            local: printed_without_tag(to),
            remote: printed_without_tag(from),
            local_cseq: 0,
            remote_cseq: invite.headers.cseq().ok()?.seq,
            remote_target,
            // §12.1.1: the Record-Route values in order.
            route_set: record_routes(&invite.headers),
            contact,
        };
        dialog.shrink_to_fit();
        Some(dialog)
    }

    /// The UAC side of the dialog a 2xx to one of our INVITEs set up, from that 2xx alone
    /// (§12.1.2): for ending a dialog whose call is gone. None without the headers it needs.
    pub(crate) fn from_2xx(rsp: &Response) -> Option<Dialog> {
        let from = rsp.headers.from().ok()?;
        let to = rsp.headers.to().ok()?;
        let remote_target = rsp
            .headers
            .contacts()
            .ok()
            .and_then(|c| c.into_iter().next())
            .map(|c| c.uri)?;
        let mut route_set = record_routes(&rsp.headers);
        route_set.reverse();
        Some(Dialog {
            call_id: rsp.headers.call_id().ok()?.to_owned(),
            local_tag: from.tag()?.to_owned(),
            remote_tag: to.tag().map(str::to_owned),
            local: printed_without_tag(from),
            remote: printed_without_tag(to),
            local_cseq: rsp.headers.cseq().ok()?.seq,
            remote_cseq: 0,
            remote_target,
            route_set,
            contact: String::new(),
        })
    }

    /// Kept for the whole call: no spare capacity from parsing.
    fn shrink_to_fit(&mut self) {
        self.remote_target.shrink_to_fit();
    }

    /// The UAC side of a dialog we start with an INVITE to `target`.
    pub(crate) fn as_uac(
        call_id: String,
        local_tag: String,
        local: NameAddr,
        remote: NameAddr,
        target: Uri,
        contact: String,
    ) -> Dialog {
        let mut dialog = Dialog {
            call_id,
            local_tag,
            remote_tag: None,
            local: printed_without_tag(local),
            remote: printed_without_tag(remote),
            local_cseq: 0,
            remote_cseq: 0,
            remote_target: target,
            route_set: Vec::new(),
            contact,
        };
        dialog.shrink_to_fit();
        dialog
    }

    /// §12.1.2: a tagged response to our INVITE fixes the remote tag, the remote target (its
    /// Contact) and the route set (its Record-Route, reversed). A 2xx after an early dialog
    /// with another tag (forking) moves the dialog to the 2xx's tag.
    pub(crate) fn update_from_response(&mut self, rsp: &Response) {
        if let Some(tag) = rsp
            .headers
            .to()
            .ok()
            .and_then(|t| t.tag().map(str::to_owned))
        {
            self.remote_tag = Some(tag);
        }
        if let Some(c) = rsp
            .headers
            .contacts()
            .ok()
            .and_then(|c| c.into_iter().next())
        {
            self.remote_target = c.uri;
        }
        let mut routes = record_routes(&rsp.headers);
        if !routes.is_empty() || rsp.status >= 200 {
            routes.reverse();
            self.route_set = routes;
        }
        self.shrink_to_fit();
    }

    /// A request inside the dialog (§12.2.1.1). ACK and CANCEL reuse a CSeq number and are
    /// built elsewhere; every other method takes the next one.
    pub(crate) fn request(&mut self, method: Method) -> Request {
        self.local_cseq = self.local_cseq.wrapping_add(1);
        let cseq = self.local_cseq;
        self.request_with_cseq(method.clone(), cseq, &method)
    }

    /// The ACK for a 2xx to our INVITE with CSeq `cseq` (§13.2.2.4).
    pub(crate) fn ack(&self, cseq: u32) -> Request {
        self.request_with_cseq(Method::Ack, cseq, &Method::Ack)
    }

    fn request_with_cseq(&self, method: Method, cseq: u32, cseq_method: &Method) -> Request {
        let mut req = Request::new(method, self.remote_target.clone());
        for r in &self.route_set {
            req.headers.push("Route", r.clone());
        }
        req.headers
            .push("From", with_tag(&self.local, Some(&self.local_tag)));
        req.headers
            .push("To", with_tag(&self.remote, self.remote_tag.as_deref()));
        req.headers.push("Call-ID", self.call_id.clone());
        req.headers.push("CSeq", format!("{cseq} {cseq_method}"));
        req.headers.push("Max-Forwards", "70");
        if !matches!(req.method, Method::Ack | Method::Bye | Method::Cancel) {
            req.headers.push("Contact", self.contact.clone());
        }
        req
    }

    /// Where the next request goes: the first Route (loose routing, RFC 3261 §16.12) or the
    /// remote target.
    pub(crate) fn next_hop(&self) -> Uri {
        self.route_set
            .first()
            .and_then(|r| std::str::from_utf8(r).ok())
            .and_then(|r| NameAddr::parse(r, "Route").ok())
            .map(|n| n.uri)
            .unwrap_or_else(|| self.remote_target.clone())
    }

    /// §12.2.2: a request with a lower CSeq than one already seen is out of order (500).
    pub(crate) fn accept_remote_cseq(&mut self, cseq: u32) -> bool {
        if cseq < self.remote_cseq {
            return false;
        }
        self.remote_cseq = cseq;
        true
    }
}

fn printed_without_tag(mut n: NameAddr) -> Box<str> {
    n.params.retain(|(k, _)| !k.eq_ignore_ascii_case("tag"));
    n.to_string().into_boxed_str()
}

fn with_tag(n: &str, tag: Option<&str>) -> String {
    match tag {
        Some(t) => format!("{n};tag={t}"),
        None => n.to_string(),
    }
}

fn record_routes(h: &crate::sip::message::Headers) -> Vec<Bytes> {
    h.values("Record-Route").collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::sip::message::Message;

    fn invite() -> Request {
        let raw = "INVITE sip:+15550100@customer1.sbc.example.test SIP/2.0\r\n\
            Via: SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bKa\r\n\
            Record-Route: <sip:p1.example.test;lr>\r\n\
            Record-Route: <sip:p2.example.test;lr>\r\n\
            From: \"Alice\" <sip:+15550199@pstnhub.example.test>;tag=ms1\r\n\
            To: <sip:+15550100@customer1.sbc.example.test>\r\n\
            Call-ID: c1@x\r\nCSeq: 7 INVITE\r\n\
            Contact: <sip:10.0.0.1:5061;transport=tls>\r\nContent-Length: 0\r\n\r\n";
        match Message::parse(Bytes::from(raw)).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    #[test]
    fn uas_dialog_requests_go_to_the_contact_with_swapped_tags_and_record_route_order() {
        let mut d = Dialog::as_uas(&invite(), "sbc1".into(), "<sip:sbc>".into()).unwrap();
        let bye = d.request(Method::Bye);
        assert_eq!(bye.uri.to_string(), "sip:10.0.0.1:5061;transport=tls");
        let s = String::from_utf8(bye.to_bytes().to_vec()).unwrap();
        assert!(
            s.contains("From: <sip:+15550100@customer1.sbc.example.test>;tag=sbc1\r\n"),
            "{s}"
        );
        assert!(
            s.contains("To: \"Alice\" <sip:+15550199@pstnhub.example.test>;tag=ms1\r\n"),
            "{s}"
        );
        assert!(s.contains("CSeq: 1 BYE\r\n"), "{s}");
        let routes: Vec<_> = bye.headers.values("Route").collect();
        assert_eq!(routes[0].as_ref(), b"<sip:p1.example.test;lr>");
        assert_eq!(d.next_hop().to_string(), "sip:p1.example.test;lr");
    }

    #[test]
    fn out_of_order_cseq_is_refused() {
        let mut d = Dialog::as_uas(&invite(), "sbc1".into(), "<sip:sbc>".into()).unwrap();
        assert!(d.accept_remote_cseq(8));
        assert!(!d.accept_remote_cseq(7));
    }
}
