//! Digest authentication of trunks configured with `auth` (RFC 3261 §22.3): a new call from
//! such a trunk carries credentials for a nonce we issued, or gets 407 with a fresh one. The
//! source address check (`allow`) has already passed by then; this is on top of it.

use std::time::SystemTime;

use super::B2bua;
use crate::config::TrunkConfig;
use crate::sip::digest::{self, Credentials, NonceCheck};
use crate::sip::message::{Request, Response};
use crate::sip::transaction::TxId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// No credentials (the usual first INVITE).
    Missing,
    /// Credentials for a nonce that has aged out: challenge again with stale=true.
    Stale,
    /// Wrong credentials, or a nonce we did not issue: counted.
    Wrong,
    /// Good credentials used before (same nonce, no higher count): counted.
    Replayed,
}

impl B2bua {
    /// Whether the INVITE may go on; when it may not, its answer has been sent.
    pub(super) fn trunk_authenticated(
        &mut self,
        tx: TxId,
        req: &Request,
        trunk: &TrunkConfig,
    ) -> bool {
        let Some(auth) = &trunk.auth else {
            return true;
        };
        let Some(nonces) = &mut self.nonces else {
            // No key for nonces (the system's random source failed at start).
            self.reject(tx, req, 500, "Server Internal Error");
            return false;
        };
        let realm = auth
            .realm
            .clone()
            .unwrap_or_else(|| self.config.sbc.base_domain.clone());
        let now = SystemTime::now();
        let credentials = req
            .headers
            .get("Proxy-Authorization")
            .or_else(|| req.headers.get("Authorization"))
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(Credentials::parse);
        let refusal = match &credentials {
            None => Refusal::Missing,
            Some(c) => match nonces.check(&c.nonce, now) {
                NonceCheck::Forged => Refusal::Wrong,
                NonceCheck::Stale => Refusal::Stale,
                NonceCheck::Fresh => {
                    // The digest covers the `uri` the client names, which is not compared
                    // with the Request-URI (RFC 2617 §3.2.2.5 says SHOULD): SIPp, for one,
                    // names the address it sends to. Credentials are good for one INVITE:
                    // a copy carries a nonce count already used.
                    if !(c.username == auth.username
                        && c.realm == realm
                        && c.verify(req.method.as_str(), &auth.password))
                    {
                        Refusal::Wrong
                    } else if nonces.first_use(&c.nonce, c.nc.as_deref(), now) {
                        return true;
                    } else {
                        Refusal::Replayed
                    }
                }
            },
        };
        if matches!(refusal, Refusal::Wrong | Refusal::Replayed) {
            metrics::counter!(crate::metrics::SIP_AUTH_FAILURES, "trunk" => trunk.name.clone())
                .increment(1);
            tracing::debug!(
                trunk = %trunk.name,
                username = credentials.as_ref().map(|c| c.username.as_str()),
                replayed = refusal == Refusal::Replayed,
                "INVITE with wrong or reused digest credentials: challenged again"
            );
        }
        let nonce = nonces.issue(now);
        let tag = self.token(10);
        let mut rsp = Response::for_request(req, 407, "Proxy Authentication Required", Some(&tag));
        rsp.headers.push(
            "Proxy-Authenticate",
            digest::challenge(&realm, &nonce, refusal == Refusal::Stale),
        );
        self.respond(tx, rsp);
        false
    }
}
