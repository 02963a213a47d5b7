//! Maps a key path (`tenant[3].trunk`) back to a line and column of the file, so validation
//! errors point where the operator must edit.

use toml::de::{DeTable, DeValue};

use super::validate::Seg;

/// 1-based line and column of byte offset `pos`.
pub(crate) fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(text.len());
    let before = text.get(..pos).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = before
        .get(line_start..)
        .map(|s| s.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// The place of the deepest part of `path` that exists in the file: the value of the key when
/// it is there, else the table that should hold it, else the top of the file.
pub(crate) fn locate(text: &str, path: &[Seg]) -> (usize, usize) {
    let Ok(root) = DeTable::parse(text) else {
        return (1, 1);
    };
    let mut best = 0usize;
    let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
    let mut value: Option<&DeValue<'_>> = None;
    for seg in path {
        match seg {
            Seg::Key(k) => {
                let Some(t) = table.or(match value {
                    Some(DeValue::Table(t)) => Some(t),
                    _ => None,
                }) else {
                    break;
                };
                let Some((key, v)) = t.iter().find(|(key, _)| key.get_ref().as_ref() == *k) else {
                    break;
                };
                // Point at the value for scalars, at the key for tables (their span starts at
                // the header line for `[section]` tables).
                best = match v.get_ref() {
                    DeValue::Table(_) | DeValue::Array(_) => key.span().start,
                    _ => v.span().start,
                };
                table = None;
                value = Some(v.get_ref());
            }
            Seg::Index(i) => {
                let Some(DeValue::Array(items)) = value else {
                    break;
                };
                let Some(item) = items.get(*i) else {
                    break;
                };
                best = item.span().start;
                table = None;
                value = Some(item.get_ref());
            }
        }
    }
    line_col(text, best)
}
