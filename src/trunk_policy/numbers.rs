//! Number rewrite rules: a regular expression on the user part of Request-URI, From or To,
//! tried in configuration order, first match wins per field.
//!
//! A rule's `match` is anchored (`^(?:MATCH)$`): it must match the whole user part. Partial
//! matches replacing a piece of a number are a classic source of mangled numbers, and a pattern
//! already written with `^...$` means the same either way. The pattern sees the user part as
//! written on the wire: percent escapes are not decoded and `;` parameters of a
//! telephone-subscriber (`+4420...;npdi`) are part of it.

use std::borrow::Cow;

use regex::{Regex, RegexBuilder};

use super::{NumberField, Toward};
use crate::config::{NumberFieldName, NumberRewriteConfig, RewriteToward};

/// Compiled patterns larger than this are refused: a number pattern is tiny, a huge one is a
/// mistake (or a `{1000}` typo) that would cost memory per trunk.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Why one `[[trunk.number_rewrite]]` rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("must not be empty")]
    EmptyMatch,
    #[error("does not compile: {reason}")]
    BadRegex { reason: String },
    #[error(
        "refers to group ${group}, which match does not define (write ${{N}} when letters or digits follow a group)"
    )]
    UnknownGroup { group: String },
    #[error("{ch:?} cannot appear in a URI user part (RFC 3261 §25.1)")]
    BadReplaceChar { ch: char },
    #[error(
        "empty: list any of \"request-uri\", \"from\", \"to\", or leave the key out for all three"
    )]
    NoFields,
}

impl RuleError {
    /// The key of the rule the problem is in, for `check-config`'s `FILE:LINE:COL: key`.
    pub(crate) fn key(&self) -> &'static str {
        match self {
            RuleError::EmptyMatch | RuleError::BadRegex { .. } => "match",
            RuleError::UnknownGroup { .. } | RuleError::BadReplaceChar { .. } => "replace",
            RuleError::NoFields => "fields",
        }
    }
}

/// A rule ready to run.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    toward: RewriteToward,
    /// Indexed by [`NumberField`] as usize.
    fields: [bool; 3],
    regex: Regex,
    replace: String,
}

impl Rule {
    pub(crate) fn compile(cfg: &NumberRewriteConfig) -> Result<Rule, RuleError> {
        if cfg.pattern.is_empty() {
            return Err(RuleError::EmptyMatch);
        }
        if cfg.fields.is_empty() {
            return Err(RuleError::NoFields);
        }
        let regex = RegexBuilder::new(&format!("^(?:{})$", cfg.pattern))
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| RuleError::BadRegex {
                reason: one_line(&e),
            })?;
        check_replace(&cfg.replace, &regex)?;
        let mut fields = [false; 3];
        for f in &cfg.fields {
            fields[field_slot(*f)] = true;
        }
        Ok(Rule {
            toward: cfg.toward,
            fields,
            regex,
            replace: cfg.replace.clone(),
        })
    }

    fn applies(&self, toward: Toward, field: NumberField) -> bool {
        let direction = match (self.toward, toward) {
            (RewriteToward::Both, _)
            | (RewriteToward::Trunk, Toward::Trunk)
            | (RewriteToward::Teams, Toward::Teams) => true,
            (RewriteToward::Trunk, Toward::Teams) | (RewriteToward::Teams, Toward::Trunk) => false,
        };
        direction && self.fields[field as usize]
    }
}

fn field_slot(f: NumberFieldName) -> usize {
    let field = match f {
        NumberFieldName::RequestUri => NumberField::RequestUri,
        NumberFieldName::From => NumberField::From,
        NumberFieldName::To => NumberField::To,
    };
    field as usize
}

/// The first rule for this direction and field whose pattern matches rewrites `user`; without
/// one `user` comes back borrowed.
pub(crate) fn rewrite<'a>(
    trunk: &str,
    rules: &[Rule],
    toward: Toward,
    field: NumberField,
    user: &'a str,
) -> Cow<'a, str> {
    for (i, rule) in rules.iter().enumerate() {
        if !rule.applies(toward, field) {
            continue;
        }
        let Some(caps) = rule.regex.captures(user) else {
            continue;
        };
        let mut out = String::with_capacity(user.len() + rule.replace.len());
        caps.expand(&rule.replace, &mut out);
        // The literal parts of `replace` were checked at load; an empty group or a group cut
        // through a `%HH` escape can still give a user part that would break the URI, and a
        // broken request is worse than an unnormalised number.
        if !is_user_part(&out) {
            tracing::warn!(
                trunk,
                rule = i,
                "number rewrite gave an invalid URI user part; number left as received"
            );
            return Cow::Borrowed(user);
        }
        return Cow::Owned(out);
    }
    Cow::Borrowed(user)
}

/// `+` and 1 to 15 digits, the first not 0 (ITU-T E.164: at most 15 digits, country codes
/// never start with 0). Visual separators are not allowed here: callers strip them first.
pub fn is_e164(user: &str) -> bool {
    let Some(digits) = user.strip_prefix('+') else {
        return false;
    };
    (1..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// `user = 1*( unreserved / escaped / user-unreserved )` (RFC 3261 §25.1).
pub(crate) fn is_user_part(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
        } else if is_user_byte(b[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

fn is_user_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_'
                | b'.'
                | b'!'
                | b'~'
                | b'*'
                | b'\''
                | b'('
                | b')'
                | b'&'
                | b'='
                | b'+'
                | b'$'
                | b','
                | b';'
                | b'?'
                | b'/'
        )
}

/// Checks `replace` the way `regex::Captures::expand` reads it: `$$` is a `$`, `${name}` and
/// `$name` (the longest run of `[0-9A-Za-z_]`) name a group. `expand` silently inserts nothing
/// for a group that does not exist, so `$1x` (group "1x") would drop digits without a word.
fn check_replace(replace: &str, regex: &Regex) -> Result<(), RuleError> {
    let known = |name: &str| -> bool {
        match name.parse::<usize>() {
            Ok(n) => n < regex.captures_len(),
            Err(_) => regex.capture_names().flatten().any(|n| n == name),
        }
    };
    let mut rest = replace;
    while let Some(pos) = rest.find('$') {
        if let Some(ch) = bad_literal(&rest[..pos]) {
            return Err(RuleError::BadReplaceChar { ch });
        }
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            rest = tail;
            continue;
        }
        let (name, tail) = if let Some(braced) = after.strip_prefix('{') {
            match braced.split_once('}') {
                Some((name, tail)) => (name, tail),
                // `expand` prints an unclosed `${` literally; `{` cannot be in a user part.
                None => return Err(RuleError::BadReplaceChar { ch: '{' }),
            }
        } else {
            let len = after
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            after.split_at(len)
        };
        if name.is_empty() {
            // A lone `$` is printed literally by `expand`; `$` is a legal user-part character.
            rest = after;
            continue;
        }
        if !known(name) {
            return Err(RuleError::UnknownGroup {
                group: name.to_owned(),
            });
        }
        rest = tail;
    }
    match bad_literal(rest) {
        Some(ch) => Err(RuleError::BadReplaceChar { ch }),
        None => Ok(()),
    }
}

/// The first character of literal replacement text that no user part may hold (`%` passes:
/// it starts an escape).
fn bad_literal(s: &str) -> Option<char> {
    s.chars()
        .find(|&c| c != '%' && !(c.is_ascii() && is_user_byte(c as u8)))
}

/// regex's syntax errors span several lines (the pattern, a caret, the message); a config
/// error is one line, so keep the message.
fn one_line(e: &regex::Error) -> String {
    match e {
        regex::Error::CompiledTooBig(limit) => {
            format!("compiled pattern exceeds the {limit}-byte limit")
        }
        _ => {
            let text = e.to_string();
            text.lines()
                .find_map(|l| l.trim().strip_prefix("error: "))
                .or_else(|| text.lines().next())
                .unwrap_or("invalid pattern")
                .to_owned()
        }
    }
}
