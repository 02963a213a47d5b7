//! The per-trunk policy keys: `[trunk.headers]` (identity and call-history headers) and
//! `[[trunk.number_rewrite]]` (number rewrite rules). `crate::trunk_policy` compiles them.

use serde::Deserialize;

/// `[trunk.headers]`: each key says what becomes of that header when a request crosses the SBC
/// on a call with this trunk. Every key defaults to `pass`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrunkHeaders {
    /// P-Asserted-Identity (RFC 3325), both directions (TDR-INV-10: strip it for a carrier
    /// that ranks PAI above From).
    pub p_asserted_identity: PassOrStrip,
    /// Privacy (RFC 3323), both directions.
    pub privacy: PassOrStrip,
    /// Diversion (RFC 5806); `to-history-info` turns it into History-Info (RFC 7544 / RFC 6044).
    pub diversion: DiversionPolicy,
    /// History-Info (RFC 7044); `to-diversion` turns it into Diversion (TDR-INV-11).
    pub history_info: HistoryInfoPolicy,
    /// Reason (RFC 3326, in responses RFC 6432): the cause of a refusal, CANCEL or BYE, both
    /// directions; toward the trunk after `[[trunk.q850_rewrite]]` (TDR-INV-07).
    pub reason: PassOrStrip,
}

/// One `[[trunk.q850_rewrite]]` rule: a Q.850 cause in a Reason from Teams becomes another on
/// its way to this trunk (TDR-INV-07: Teams says 17 for a busy user where some carriers retry
/// on what they read as 34), or, with `to = 0`, that Reason is left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Q850Rewrite {
    pub cause: u8,
    pub to: u8,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PassOrStrip {
    #[default]
    Pass,
    Strip,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiversionPolicy {
    #[default]
    Pass,
    Strip,
    ToHistoryInfo,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HistoryInfoPolicy {
    #[default]
    Pass,
    Strip,
    ToDiversion,
}

/// One `[[trunk.number_rewrite]]` rule. Rules are tried in file order; per field the first
/// rule whose `match` matches the whole user part is applied, the rest are skipped.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberRewriteConfig {
    /// Requests sent toward which side the rule applies to.
    pub toward: RewriteToward,
    /// Which URIs' user parts the rule looks at.
    #[serde(default = "all_number_fields")]
    pub fields: Vec<NumberFieldName>,
    /// Regular expression (Rust `regex` syntax) that must match the whole user part: it is
    /// anchored as `^(?:MATCH)$`.
    #[serde(rename = "match")]
    pub pattern: String,
    /// Replacement for the whole user part; `$1`, `${1}` and `${name}` insert groups.
    pub replace: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RewriteToward {
    Trunk,
    Teams,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NumberFieldName {
    RequestUri,
    From,
    To,
}

fn all_number_fields() -> Vec<NumberFieldName> {
    vec![
        NumberFieldName::RequestUri,
        NumberFieldName::From,
        NumberFieldName::To,
    ]
}
