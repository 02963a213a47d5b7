//! P-Asserted-Identity and Privacy pass/strip (TDR-INV-10), From rebuilt from PAI (TDR-INV-02).

use super::*;

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
