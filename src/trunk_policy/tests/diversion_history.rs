//! Diversion <-> History-Info (TDR-INV-11).

use super::*;

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
