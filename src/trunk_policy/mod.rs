//! Per-trunk policy the B2BUA applies when it builds the request for the other leg: what
//! becomes of the identity and call-history headers (P-Asserted-Identity, Privacy, Diversion,
//! History-Info: pass, strip or map one to the other) and how numbers are rewritten (a regular
//! expression on the user part of Request-URI, From and To, for E.164 normalisation).
//!
//! Built once per trunk from `[[trunk]]` (`[trunk.headers]`, `[[trunk.number_rewrite]]`), then
//! shared by every call on it. Pure: no I/O, no clock. Policies are per trunk, and each tenant
//! has its trunk, so the same number can be rewritten differently per tenant (TDR-MT-07).

mod headers;
mod history;
mod numbers;
mod reason;

use std::borrow::Cow;

use crate::config::{TrunkConfig, TrunkHeaders};
use crate::sip::message::Headers;

pub use headers::caller_from_pai;
pub use numbers::{RuleError, is_e164};

/// The side a request is being built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toward {
    /// The contact-center trunk (the call came from Teams).
    Trunk,
    /// Microsoft Teams (the call came from the trunk).
    Teams,
}

/// A URI whose user part a rewrite rule may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberField {
    RequestUri = 0,
    From = 1,
    To = 2,
}

/// Why a trunk's policy could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("trunk {trunk:?}: number_rewrite[{index}].{}: {source}", .source.key())]
    Rule {
        trunk: String,
        index: usize,
        #[source]
        source: RuleError,
    },
}

/// One trunk's header policy and number rewrite rules. Cheap to clone (the compiled patterns
/// are shared).
#[derive(Debug, Clone)]
pub struct TrunkPolicy {
    trunk: String,
    headers: TrunkHeaders,
    rules: Vec<numbers::Rule>,
    q850: Vec<crate::config::Q850Rewrite>,
}

impl TrunkPolicy {
    pub fn from_config(trunk: &TrunkConfig) -> Result<TrunkPolicy, PolicyError> {
        let rules = trunk
            .number_rewrite
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                numbers::Rule::compile(rule).map_err(|source| PolicyError::Rule {
                    trunk: trunk.name.clone(),
                    index,
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(TrunkPolicy {
            trunk: trunk.name.clone(),
            headers: trunk.headers,
            rules,
            q850: trunk.q850_rewrite.clone(),
        })
    }

    /// The user part to write in `field` of the request sent `toward` that side: rewritten by
    /// the first rule for that direction and field whose pattern matches all of `user`, else
    /// `user` unchanged (borrowed, no allocation).
    pub fn rewrite_number<'a>(
        &self,
        toward: Toward,
        field: NumberField,
        user: &'a str,
    ) -> Cow<'a, str> {
        numbers::rewrite(&self.trunk, &self.rules, toward, field, user)
    }

    /// Copies the identity/history headers of the request arriving on the other leg
    /// (`incoming`) into the request being built for `toward` (`outgoing`) as the policy says:
    /// pass, strip, or map. Only adds headers: what `outgoing` already holds is left alone.
    /// Set `outgoing`'s To first: a History-Info mapped from Diversion ends with the target the
    /// request goes to, taken from that To (else from `incoming`'s To).
    pub fn carry_identity(&self, toward: Toward, incoming: &Headers, outgoing: &mut Headers) {
        headers::carry(&self.headers, toward, incoming, outgoing);
    }

    /// The Reason value for a refusal, CANCEL or BYE built for `toward` from the message that
    /// arrived with `incoming`: as received, rewritten (Q.850 toward the trunk, TDR-INV-07),
    /// or none when the trunk strips it or there was none.
    pub fn carry_reason(&self, toward: Toward, incoming: &Headers) -> Option<bytes::Bytes> {
        reason::carry(self.headers.reason, &self.q850, toward, incoming)
    }
}

/// Checks one rewrite rule as [`TrunkPolicy::from_config`] would, for config validation.
pub(crate) fn check_rule(rule: &crate::config::NumberRewriteConfig) -> Result<(), RuleError> {
    numbers::Rule::compile(rule).map(|_| ())
}

#[cfg(test)]
mod tests;
