//! Number rewrite rules (E.164 normalisation, TDR-MT-07).

use std::borrow::Cow;

use super::*;

// ---- Number rewrite rules ----

const RULES: &str = r#"
[[number_rewrite]]
toward = "trunk"
fields = ["request-uri", "to"]
match = '\+44(\d+)'
replace = '0$1'

[[number_rewrite]]
toward = "teams"
match = '0(\d{9,})'
replace = '+44$1'

[[number_rewrite]]
toward = "both"
fields = ["from"]
match = '(?P<ext>\d{4})'
replace = '+4420712${ext}'

[[number_rewrite]]
toward = "teams"
match = '0(\d+)'
replace = '+99$1'
"#;

#[test]
fn rewrite_applies_the_first_matching_rule_for_the_direction_and_field() {
    let p = policy(RULES);
    use NumberField::{From, RequestUri, To};
    let cases = [
        (Toward::Trunk, RequestUri, "+442071234567", "02071234567"),
        (Toward::Trunk, To, "+442071234567", "02071234567"),
        // Rule 1 does not list From; rule 3 is for From but needs four digits.
        (Toward::Trunk, From, "+442071234567", "+442071234567"),
        (Toward::Trunk, From, "4567", "+44207124567"),
        (Toward::Teams, From, "4567", "+44207124567"),
        // Rule 2 comes before rule 4, which would also match.
        (Toward::Teams, RequestUri, "02071234567", "+442071234567"),
        (Toward::Teams, To, "02071234567", "+442071234567"),
        // Too short for rule 2: rule 4 is the first that matches.
        (Toward::Teams, To, "0123", "+99123"),
        // Rule 1 is toward the trunk only.
        (Toward::Teams, To, "+442071234567", "+442071234567"),
    ];
    for (toward, field, user, want) in cases {
        assert_eq!(
            p.rewrite_number(toward, field, user),
            want,
            "{toward:?} {field:?} {user}"
        );
    }
}

#[test]
fn rewrite_without_a_match_borrows_the_input() {
    let p = policy(RULES);
    assert!(matches!(
        p.rewrite_number(Toward::Teams, NumberField::To, "alice"),
        Cow::Borrowed("alice")
    ));
    assert!(matches!(
        policy("").rewrite_number(Toward::Trunk, NumberField::From, "0123"),
        Cow::Borrowed("0123")
    ));
}

#[test]
fn rewrite_patterns_must_match_the_whole_user_part() {
    let p = policy(
        "[[number_rewrite]]\ntoward = \"both\"\nmatch = '0(\\d+)'\nreplace = '+44$1'\n\
         [[number_rewrite]]\ntoward = \"both\"\nmatch = '\\d{3}|\\d{5}'\nreplace = 'five'\n",
    );
    // `0` in the middle is not a national prefix.
    assert_eq!(
        p.rewrite_number(Toward::Trunk, NumberField::To, "9012345;npdi"),
        "9012345;npdi"
    );
    // Leftmost-first would stop at three digits; the anchored pattern takes the alternative
    // that covers all five.
    assert_eq!(
        p.rewrite_number(Toward::Trunk, NumberField::To, "12345"),
        "five"
    );
}

#[test]
fn rewrite_that_would_break_the_uri_leaves_the_number_alone() {
    let p = policy("[[number_rewrite]]\ntoward = \"both\"\nmatch = '(x?)\\d+'\nreplace = '$1'\n");
    assert_eq!(
        p.rewrite_number(Toward::Trunk, NumberField::To, "123"),
        "123"
    );
    assert_eq!(
        p.rewrite_number(Toward::Trunk, NumberField::To, "x123"),
        "x"
    );
}

#[test]
fn tdr_mt_07_same_number_is_rewritten_per_trunk() {
    let uk =
        policy("[[number_rewrite]]\ntoward = \"teams\"\nmatch = '0(\\d+)'\nreplace = '+44$1'\n");
    let de =
        policy("[[number_rewrite]]\ntoward = \"teams\"\nmatch = '0(\\d+)'\nreplace = '+49$1'\n");
    assert_eq!(
        uk.rewrite_number(Toward::Teams, NumberField::From, "0301234567"),
        "+44301234567"
    );
    assert_eq!(
        de.rewrite_number(Toward::Teams, NumberField::From, "0301234567"),
        "+49301234567"
    );
}

#[test]
fn bad_rules_are_refused_with_the_rule_and_key() {
    let cases = [
        ("match = ''\nreplace = 'x'", "match", RuleError::EmptyMatch),
        (
            "match = '0(\\d{9,'\nreplace = 'x'",
            "match",
            RuleError::BadRegex {
                reason: String::new(),
            },
        ),
        (
            "match = '0(\\d+)'\nreplace = '+44$1x'",
            "replace",
            RuleError::UnknownGroup { group: "1x".into() },
        ),
        (
            "match = '0(\\d+)'\nreplace = '+44$2'",
            "replace",
            RuleError::UnknownGroup { group: "2".into() },
        ),
        (
            "match = '0(?P<n>\\d+)'\nreplace = '+44${num}'",
            "replace",
            RuleError::UnknownGroup {
                group: "num".into(),
            },
        ),
        (
            "match = '0(\\d+)'\nreplace = '+44 $1'",
            "replace",
            RuleError::BadReplaceChar { ch: ' ' },
        ),
        (
            "match = '0(\\d+)'\nreplace = '<$1>'",
            "replace",
            RuleError::BadReplaceChar { ch: '<' },
        ),
        (
            "fields = []\nmatch = '0'\nreplace = '1'",
            "fields",
            RuleError::NoFields,
        ),
    ];
    for (rule, key, want) in cases {
        let text = format!(
            "[[number_rewrite]]\ntoward = \"both\"\nmatch = '1'\nreplace = '1'\n\
             [[number_rewrite]]\ntoward = \"both\"\n{rule}\n"
        );
        let err = TrunkPolicy::from_config(&trunk(&text)).unwrap_err();
        let PolicyError::Rule {
            trunk,
            index,
            source,
        } = &err;
        assert_eq!(
            (trunk.as_str(), *index, source.key()),
            ("cc1", 1, key),
            "{rule}"
        );
        match (source, &want) {
            (RuleError::BadRegex { reason }, RuleError::BadRegex { .. }) => {
                assert!(!reason.is_empty() && !reason.contains('\n'), "{reason:?}");
            }
            _ => assert_eq!(source, &want, "{rule}"),
        }
        assert!(
            err.to_string()
                .starts_with(&format!("trunk \"cc1\": number_rewrite[1].{key}: ")),
            "{err}"
        );
    }
}

#[test]
fn replacement_with_escaped_dollar_and_braced_groups_is_accepted() {
    let p = policy(
        "[[number_rewrite]]\ntoward = \"both\"\nmatch = '(\\d)(\\d+)'\nreplace = '${1}0$$$2'\n",
    );
    assert_eq!(
        p.rewrite_number(Toward::Trunk, NumberField::To, "123"),
        "10$23"
    );
}
