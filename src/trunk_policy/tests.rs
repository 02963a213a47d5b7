use std::borrow::Cow;

use super::*;
use crate::config::TrunkConfig;

/// A trunk from its TOML text, so the tests also prove the file format.
fn trunk(extra: &str) -> TrunkConfig {
    let text = format!(
        "name = \"cc1\"\nuri = \"sip:127.0.0.1:5080\"\nallow = [\"127.0.0.1/32\"]\n{extra}"
    );
    toml::from_str(&text).unwrap()
}

fn policy(extra: &str) -> TrunkPolicy {
    TrunkPolicy::from_config(&trunk(extra)).unwrap()
}

fn headers(lines: &[(&str, &str)]) -> Headers {
    let mut h = Headers::new();
    for (n, v) in lines {
        h.push(n, v.to_string());
    }
    h
}

fn all(h: &Headers, name: &str) -> Vec<String> {
    h.get_all(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

fn carried(p: &TrunkPolicy, toward: Toward, incoming: &Headers) -> Headers {
    let mut out = Headers::new();
    p.carry_identity(toward, incoming, &mut out);
    out
}

const PAI_TEAMS: &str = "<sip:+12065550100@sip.pstnhub.microsoft.com;user=phone>";
const PAI_TEL: &str = "<tel:+12065550100>";

// ---- P-Asserted-Identity and Privacy (TDR-INV-10) ----

#[test]
fn tdr_inv_10_pai_and_privacy_pass_by_default_in_both_directions_byte_for_byte() {
    let p = policy("");
    let incoming = headers(&[
        ("P-Asserted-Identity", PAI_TEAMS),
        ("P-Asserted-Identity", PAI_TEL),
        ("Privacy", "id"),
        ("X-Other", "not ours"),
    ]);
    for toward in [Toward::Trunk, Toward::Teams] {
        let out = carried(&p, toward, &incoming);
        assert_eq!(all(&out, "P-Asserted-Identity"), [PAI_TEAMS, PAI_TEL]);
        assert_eq!(all(&out, "Privacy"), ["id"]);
        assert_eq!(out.len(), 3, "only identity headers are carried");
    }
}

#[test]
fn tdr_inv_10_pai_strip_drops_pai_and_keeps_privacy() {
    let p = policy("[headers]\np_asserted_identity = \"strip\"\n");
    let incoming = headers(&[("P-Asserted-Identity", PAI_TEAMS), ("Privacy", "id")]);
    for toward in [Toward::Trunk, Toward::Teams] {
        let out = carried(&p, toward, &incoming);
        assert!(out.get("P-Asserted-Identity").is_none());
        assert_eq!(all(&out, "Privacy"), ["id"]);
    }
}

#[test]
fn privacy_strip_drops_privacy_and_keeps_pai() {
    let p = policy("[headers]\nprivacy = \"strip\"\n");
    let incoming = headers(&[("P-Asserted-Identity", PAI_TEAMS), ("Privacy", "id")]);
    let out = carried(&p, Toward::Trunk, &incoming);
    assert!(out.get("Privacy").is_none());
    assert_eq!(all(&out, "P-Asserted-Identity"), [PAI_TEAMS]);
}

#[test]
fn carry_identity_leaves_headers_already_in_the_outgoing_request() {
    let p = policy("[headers]\np_asserted_identity = \"strip\"\n");
    let mut out = headers(&[("P-Asserted-Identity", "<sip:+15550001111@sbc.example.test>")]);
    p.carry_identity(
        Toward::Trunk,
        &headers(&[("P-Asserted-Identity", PAI_TEAMS)]),
        &mut out,
    );
    assert_eq!(
        all(&out, "P-Asserted-Identity"),
        ["<sip:+15550001111@sbc.example.test>"]
    );
}

#[test]
fn malformed_identity_headers_are_passed_as_received() {
    let p = policy("");
    let mut incoming = Headers::new();
    incoming.push("P-Asserted-Identity", &b"<sip:\xff\xfe@x"[..]);
    incoming.push("History-Info", "<<<;index=");
    let out = carried(&p, Toward::Teams, &incoming);
    assert_eq!(
        out.get("P-Asserted-Identity").map(|v| &v[..]),
        Some(&b"<sip:\xff\xfe@x"[..])
    );
    assert_eq!(all(&out, "History-Info"), ["<<<;index="]);
}

// ---- Diversion and History-Info (TDR-INV-11) ----

const TEAMS_HI: [&str; 2] = [
    "<sip:+12065550100@sip.pstnhub.microsoft.com:5061;user=phone?Reason=SIP%3Bcause%3D302%3Btext%3D%22Call%20Forward%22>;index=1",
    "<sip:+12065550199@sip.pstnhub.microsoft.com;user=phone>;index=1.1;mp=1",
];

#[test]
fn diversion_and_history_info_pass_by_default() {
    let p = policy("");
    let incoming = headers(&[
        (
            "Diversion",
            "<sip:+442071234567@cc.example>;reason=no-answer;counter=1",
        ),
        ("History-Info", TEAMS_HI[0]),
        ("History-Info", TEAMS_HI[1]),
    ]);
    for toward in [Toward::Trunk, Toward::Teams] {
        let out = carried(&p, toward, &incoming);
        assert_eq!(
            all(&out, "Diversion"),
            ["<sip:+442071234567@cc.example>;reason=no-answer;counter=1"]
        );
        assert_eq!(all(&out, "History-Info"), TEAMS_HI);
    }
}

#[test]
fn diversion_and_history_info_strip_in_both_directions() {
    let p = policy("[headers]\ndiversion = \"strip\"\nhistory_info = \"strip\"\n");
    let incoming = headers(&[
        (
            "Diversion",
            "<sip:+442071234567@cc.example>;reason=no-answer",
        ),
        ("History-Info", TEAMS_HI[0]),
    ]);
    for toward in [Toward::Trunk, Toward::Teams] {
        let out = carried(&p, toward, &incoming);
        assert!(out.is_empty(), "{out:?}");
    }
}

#[test]
fn tdr_inv_11_teams_history_info_becomes_diversion_toward_the_trunk() {
    let p = policy("[headers]\nhistory_info = \"to-diversion\"\n");
    let incoming = headers(&[("History-Info", TEAMS_HI[0]), ("History-Info", TEAMS_HI[1])]);
    let out = carried(&p, Toward::Trunk, &incoming);
    assert!(
        out.get("History-Info").is_none(),
        "History-Info becomes Diversion"
    );
    assert_eq!(
        all(&out, "Diversion"),
        [
            "<sip:+12065550100@sip.pstnhub.microsoft.com:5061;user=phone>;reason=unconditional;counter=1;privacy=off"
        ]
    );
}

#[test]
fn tdr_inv_11_to_diversion_passes_history_info_toward_teams() {
    let p = policy("[headers]\nhistory_info = \"to-diversion\"\n");
    let incoming = headers(&[("History-Info", TEAMS_HI[0]), ("History-Info", TEAMS_HI[1])]);
    let out = carried(&p, Toward::Teams, &incoming);
    assert_eq!(all(&out, "History-Info"), TEAMS_HI);
    assert!(out.get("Diversion").is_none());
}

/// RFC 7544's three-diversion example: user1 did not answer, user2 was busy (and private),
/// user3 forwards unconditionally to the target.
const DIVERSION_LIST: &str = "<sip:+15550000003@cc.example>;reason=unconditional;counter=1;privacy=off, \
     <sip:+15550000002@cc.example>;reason=user-busy;counter=1;privacy=full, \
     <sip:+15550000001@cc.example>;reason=no-answer;counter=1;privacy=off";

#[test]
fn tdr_inv_11_trunk_diversion_becomes_history_info_toward_teams() {
    let p = policy("[headers]\ndiversion = \"to-history-info\"\n");
    let incoming = headers(&[
        ("To", "<sip:+15550000009@cc.example>"),
        ("Diversion", DIVERSION_LIST),
    ]);
    let mut out = headers(&[(
        "To",
        "<sip:+15550000009@sip.pstnhub.microsoft.com;user=phone>",
    )]);
    p.carry_identity(Toward::Teams, &incoming, &mut out);
    assert!(
        out.get("Diversion").is_none(),
        "Diversion becomes History-Info"
    );
    assert_eq!(
        all(&out, "History-Info"),
        [
            "<sip:+15550000001@cc.example?Reason=SIP%3Bcause%3D408>;index=1",
            "<sip:+15550000002@cc.example?Reason=SIP%3Bcause%3D486&Privacy=history>;index=1.1;mp=1",
            "<sip:+15550000003@cc.example?Reason=SIP%3Bcause%3D302>;index=1.1.1;mp=1.1",
            // The last entry is the target: the To built for the Teams leg.
            "<sip:+15550000009@sip.pstnhub.microsoft.com;user=phone>;index=1.1.1.1;mp=1.1.1",
        ]
    );
}

#[test]
fn tdr_inv_11_diversion_to_history_info_and_back_gives_the_same_diversions() {
    let to_hi = policy("[headers]\ndiversion = \"to-history-info\"\n");
    let to_div = policy("[headers]\nhistory_info = \"to-diversion\"\n");
    let incoming = headers(&[
        ("To", "<sip:+15550000009@cc.example>"),
        ("Diversion", DIVERSION_LIST),
    ]);
    let hi = carried(&to_hi, Toward::Teams, &incoming);
    let back = carried(&to_div, Toward::Trunk, &hi);
    let want: Vec<String> = DIVERSION_LIST.split(", ").map(str::to_owned).collect();
    assert_eq!(all(&back, "Diversion"), want);
}

#[test]
fn to_history_info_passes_diversion_toward_the_trunk() {
    let p = policy("[headers]\ndiversion = \"to-history-info\"\n");
    let incoming = headers(&[("Diversion", DIVERSION_LIST)]);
    let out = carried(&p, Toward::Trunk, &incoming);
    assert_eq!(all(&out, "Diversion"), [DIVERSION_LIST]);
    assert!(out.get("History-Info").is_none());
}

#[test]
fn history_info_already_present_wins_over_mapped_diversion() {
    let p = policy("[headers]\ndiversion = \"to-history-info\"\n");
    let incoming = headers(&[
        ("To", "<sip:+15550000009@cc.example>"),
        ("Diversion", DIVERSION_LIST),
        ("History-Info", TEAMS_HI[0]),
    ]);
    let out = carried(&p, Toward::Teams, &incoming);
    assert_eq!(all(&out, "History-Info"), [TEAMS_HI[0]]);
    assert!(out.get("Diversion").is_none());
}

#[test]
fn diversion_unknown_reason_maps_to_404_and_target_falls_back_to_incoming_to() {
    let p = policy("[headers]\ndiversion = \"to-history-info\"\n");
    let incoming = headers(&[
        ("To", "<sip:+15550000009@cc.example>;tag=x"),
        (
            "Diversion",
            "<sip:+15550000001@cc.example>;reason=\"time-of-day\"",
        ),
    ]);
    let out = carried(&p, Toward::Teams, &incoming);
    assert_eq!(
        all(&out, "History-Info"),
        [
            "<sip:+15550000001@cc.example?Reason=SIP%3Bcause%3D404>;index=1",
            "<sip:+15550000009@cc.example>;index=1.1;mp=1",
        ]
    );
}

#[test]
fn history_info_follows_the_index_branch_and_skips_registered_contact_hops() {
    let p = policy("[headers]\nhistory_info = \"to-diversion\"\n");
    let incoming = headers(&[
        (
            "History-Info",
            "<sip:+15550000001@a.example?Reason=SIP%3Bcause%3D408>;index=1",
        ),
        // A forked branch that lost: not on the way to the last entry.
        (
            "History-Info",
            "<sip:+15550000002@a.example?Reason=SIP%3Bcause%3D486>;index=1.1;mp=1",
        ),
        (
            "History-Info",
            "<sip:+15550000003@a.example>;index=1.2;mp=1",
        ),
        // The registered contact of 1.2: a change of address, not a diversion.
        ("History-Info", "<sip:phone3@10.0.0.3>;index=1.2.1;rc=1.2"),
    ]);
    let out = carried(&p, Toward::Trunk, &incoming);
    assert_eq!(
        all(&out, "Diversion"),
        ["<sip:+15550000001@a.example>;reason=no-answer;counter=1;privacy=off"]
    );
}

#[test]
fn history_info_cause_uri_parameter_and_request_privacy_are_mapped() {
    let p = policy("[headers]\nhistory_info = \"to-diversion\"\n");
    let incoming = headers(&[
        ("Privacy", "history"),
        ("History-Info", "<sip:+15550000001@a.example>;index=1"),
        // RFC 4458: a voicemail target carries the cause as a URI parameter.
        (
            "History-Info",
            "<sip:vm@a.example;cause=486>;index=1.1;mp=1",
        ),
    ]);
    let out = carried(&p, Toward::Trunk, &incoming);
    assert_eq!(
        all(&out, "Diversion"),
        ["<sip:+15550000001@a.example>;reason=user-busy;counter=1;privacy=full"]
    );
}

#[test]
fn history_info_without_indexes_is_taken_in_order_and_q850_reason_is_unknown() {
    let p = policy("[headers]\nhistory_info = \"to-diversion\"\n");
    let incoming = headers(&[
        (
            "History-Info",
            "<sip:a@x.example?Reason=Q.850%3Bcause%3D17>",
        ),
        ("History-Info", "<sip:b@x.example?Reason=SIP%3Bcause%3D487>"),
        ("History-Info", "<sip:c@x.example>"),
    ]);
    let out = carried(&p, Toward::Trunk, &incoming);
    assert_eq!(
        all(&out, "Diversion"),
        [
            "<sip:b@x.example>;reason=deflection;counter=1;privacy=off",
            "<sip:a@x.example>;reason=unknown;counter=1;privacy=off",
        ]
    );
}

#[test]
fn unparsable_diversion_and_history_entries_are_skipped_not_fatal() {
    let to_hi = policy("[headers]\ndiversion = \"to-history-info\"\n");
    let mut incoming = headers(&[
        (
            "Diversion",
            "<sip:+15550000001@cc.example>;reason=user-busy, <broken;;, \"unterminated",
        ),
        ("Diversion", "sip:bad host@;reason=no-answer"),
    ]);
    incoming.push("Diversion", &b"<sip:\xff@x>"[..]);
    let out = carried(&to_hi, Toward::Teams, &incoming);
    // No To anywhere: only the diversion entry, no target entry.
    assert_eq!(
        all(&out, "History-Info"),
        ["<sip:+15550000001@cc.example?Reason=SIP%3Bcause%3D486>;index=1"]
    );

    let to_div = policy("[headers]\nhistory_info = \"to-diversion\"\n");
    for junk in [
        vec!["<sip:a@x?Reason=%ZZ%3>;index=1", "<sip:b@x>;index=1.1"],
        vec!["garbage", "<sip:b@x>;index=1.1"],
        vec!["<sip:a@x>;index=1.a", "<sip:b@x>;index=7"],
        vec!["<sip:only@x>;index=1"],
        vec![],
    ] {
        let lines: Vec<(&str, &str)> = junk.iter().map(|v| ("History-Info", *v)).collect();
        let out = carried(&to_div, Toward::Trunk, &headers(&lines));
        assert!(out.get("History-Info").is_none());
        assert!(out.get_all("Diversion").count() <= 1, "{junk:?}: {out:?}");
    }
}

#[test]
fn a_long_diversion_list_maps_only_the_most_recent_entries() {
    let p = policy("[headers]\ndiversion = \"to-history-info\"\n");
    let list: Vec<String> = (0..200)
        .map(|i| format!("<sip:+1555{i:07}@cc.example>;reason=unconditional"))
        .collect();
    let line = list.join(",");
    let incoming = headers(&[("Diversion", line.as_str())]);
    let out = carried(&p, Toward::Teams, &incoming);
    let hi = all(&out, "History-Info");
    assert_eq!(hi.len(), history::MAX_ENTRIES);
    // The top-most (most recent) Diversion is the last hi-entry.
    assert!(hi[hi.len() - 1].starts_with("<sip:+15550000000@"), "{hi:?}");
}

// ---- From rebuilt from PAI (TDR-INV-02) ----

#[test]
fn tdr_inv_02_from_is_rebuilt_from_a_sip_user_phone_pai() {
    let incoming = headers(&[
        ("From", "<sip:02071234567@cc.example>;tag=1"),
        (
            "P-Asserted-Identity",
            "<sip:+442071234567@cc.example;user=phone>",
        ),
    ]);
    assert_eq!(caller_from_pai(&incoming).as_deref(), Some("+442071234567"));
}

#[test]
fn tdr_inv_02_tel_pai_with_visual_separators_gives_plain_e164() {
    let incoming = headers(&[
        ("From", "\"Reception\" <sip:reception@cc.example>;tag=1"),
        (
            "P-Asserted-Identity",
            "\"Reception\" <sip:reception@cc.example>, <tel:+1-206-555-0100;npdi>",
        ),
    ]);
    assert_eq!(caller_from_pai(&incoming).as_deref(), Some("+12065550100"));
}

#[test]
fn tdr_inv_02_sip_pai_without_user_phone_or_national_number_is_not_used() {
    let incoming = headers(&[
        ("From", "<sip:1000@cc.example>;tag=1"),
        ("P-Asserted-Identity", "<sip:+442071234567@cc.example>"),
        ("P-Asserted-Identity", "<tel:02071234567>"),
    ]);
    assert_eq!(caller_from_pai(&incoming), None);
    let mut with_tel = incoming.clone();
    with_tel.push("P-Asserted-Identity", "<tel:+442071234568>");
    assert_eq!(caller_from_pai(&with_tel).as_deref(), Some("+442071234568"));
}

#[test]
fn tdr_inv_02_from_already_e164_is_kept() {
    let incoming = headers(&[
        ("From", "<sip:+442071234567@cc.example;user=phone>;tag=1"),
        ("P-Asserted-Identity", "<tel:+442079999999>"),
    ]);
    assert_eq!(caller_from_pai(&incoming), None);
}

#[test]
fn tdr_inv_02_anonymous_from_stays_anonymous() {
    for from in [
        "\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=1",
        "<sip:Anonymous@cc.example>;tag=1",
        "<sip:restricted@anonymous.invalid>;tag=1",
    ] {
        let incoming = headers(&[("From", from), ("P-Asserted-Identity", PAI_TEL)]);
        assert_eq!(caller_from_pai(&incoming), None, "{from}");
    }
}

#[test]
fn tdr_inv_02_privacy_id_keeps_the_pai_number_out_of_from() {
    let incoming = headers(&[
        ("From", "<sip:1000@cc.example>;tag=1"),
        ("P-Asserted-Identity", PAI_TEL),
        ("Privacy", "none;id"),
    ]);
    assert_eq!(caller_from_pai(&incoming), None);
}

#[test]
fn tdr_inv_02_malformed_pai_entries_are_skipped_and_broken_from_is_rebuilt() {
    let mut incoming = headers(&[("From", "<<not a from")]);
    incoming.push("P-Asserted-Identity", &b"<tel:\xff>"[..]);
    incoming.push(
        "P-Asserted-Identity",
        "<sip:;;;>, <tel:+>, <tel:+12065550100>",
    );
    assert_eq!(caller_from_pai(&incoming).as_deref(), Some("+12065550100"));
    assert_eq!(caller_from_pai(&headers(&[("From", "<sip:1@x>")])), None);
}

#[test]
fn is_e164_accepts_plus_and_1_to_15_digits_not_starting_with_0() {
    for ok in ["+1", "+12065550100", "+442071234567", "+123456789012345"] {
        assert!(is_e164(ok), "{ok}");
    }
    for bad in [
        "",
        "+",
        "12065550100",
        "+02065550100",
        "+1234567890123456",
        "+1-206-555-0100",
        "+1206555010a",
        "00442071234567",
        "anonymous",
    ] {
        assert!(!is_e164(bad), "{bad}");
    }
}

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

// ---- Never panic on what the network sends ----

mod arbitrary_input {
    use proptest::prelude::*;

    use super::*;

    const NAMES: [&str; 6] = [
        "P-Asserted-Identity",
        "Privacy",
        "Diversion",
        "History-Info",
        "From",
        "To",
    ];

    /// Bytes biased toward SIP syntax so that parsers get past their first check.
    fn value() -> impl Strategy<Value = Vec<u8>> {
        let sip = prop::sample::select(
            b"<>;=,.?&%\"@:+-()123sipteluser=phoneindexmpcauseReasonSIP%3B \xff".to_vec(),
        );
        prop::collection::vec(sip, 0..80)
    }

    proptest! {
        #[test]
        fn carry_identity_and_caller_from_pai_never_panic(
            lines in prop::collection::vec((0..NAMES.len(), value()), 0..12),
        ) {
            let mut incoming = Headers::new();
            for (n, v) in lines {
                incoming.push(NAMES[n], v);
            }
            let mapping = policy(
                "[headers]\ndiversion = \"to-history-info\"\nhistory_info = \"to-diversion\"\n",
            );
            for p in [policy(""), mapping] {
                for toward in [Toward::Trunk, Toward::Teams] {
                    let out = carried(&p, toward, &incoming);
                    // Whatever was mapped is one History-Info or Diversion per entry, bounded.
                    prop_assert!(out.len() <= incoming.len() + history::MAX_ENTRIES + 1);
                }
            }
            if let Some(n) = caller_from_pai(&incoming) {
                prop_assert!(is_e164(&n));
            }
        }
    }
}
