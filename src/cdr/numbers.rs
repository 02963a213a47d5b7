//! Calling and called numbers as the `[cdr] numbers` policy allows them into a
//! record: billing wants them whole, some deployments may only keep enough to
//! recognise a carrier and a line.

use crate::config::NumberPolicy;

/// Characters kept as they are when masking: number formatting, not digits.
fn is_separator(c: char) -> bool {
    matches!(c, '+' | '-' | '.' | ' ' | '(' | ')')
}

/// How many leading and trailing symbols `masked` keeps.
const KEEP_FIRST: usize = 4;
const KEEP_LAST: usize = 2;

/// Applies `policy` to one number.
pub(crate) fn apply(policy: NumberPolicy, number: Option<String>) -> Option<String> {
    match policy {
        NumberPolicy::Full => number,
        NumberPolicy::Omit => None,
        NumberPolicy::Masked => number.map(|n| mask(&n)),
    }
}

/// Keeps the first four and last two symbols (digits, or letters of a user
/// name) and replaces the others with `*`; separators stay. A number of six
/// symbols or fewer (an extension) would come out whole, so it keeps only its
/// last two.
pub(crate) fn mask(number: &str) -> String {
    let symbols = number.chars().filter(|&c| !is_separator(c)).count();
    let keep_first = if symbols > KEEP_FIRST + KEEP_LAST {
        KEEP_FIRST
    } else {
        0
    };
    let mut seen = 0usize;
    number
        .chars()
        .map(|c| {
            if is_separator(c) {
                return c;
            }
            let i = seen;
            seen += 1;
            if i < keep_first || i + KEEP_LAST >= symbols {
                c
            } else {
                '*'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_keeps_first_four_and_last_two_digits() {
        assert_eq!(mask("+14255550123"), "+1425*****23");
        assert_eq!(mask("0049 30 1234567"), "0049 ** *****67");
        assert_eq!(mask("1234567"), "1234*67");
    }

    #[test]
    fn masked_short_number_keeps_only_its_last_two() {
        assert_eq!(mask("123456"), "****56");
        assert_eq!(mask("+12"), "+12");
        assert_eq!(mask("7"), "7");
        assert_eq!(mask(""), "");
    }

    #[test]
    fn masked_user_name_hides_letters_too() {
        assert_eq!(mask("alice.smith"), "alic*.***th");
    }

    #[test]
    fn policy_full_keeps_omit_drops_masked_masks() {
        let n = || Some("+14255550123".to_owned());
        assert_eq!(
            apply(NumberPolicy::Full, n()).as_deref(),
            Some("+14255550123")
        );
        assert_eq!(apply(NumberPolicy::Omit, n()), None);
        assert_eq!(
            apply(NumberPolicy::Masked, n()).as_deref(),
            Some("+1425*****23")
        );
        assert_eq!(apply(NumberPolicy::Masked, None), None);
    }
}
