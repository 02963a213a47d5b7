use std::path::Path;

use super::*;

fn with_certs(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    crate::sip::transport::dev_certs::ensure_dev_certs(dir.path(), "sbc.example.test").unwrap();
    let text = text.replace("certs/dev/", "");
    (dir, text)
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    let (dir, text) = with_certs(text);
    from_str(&text, Path::new("test.toml"), dir.path())
}

#[test]
fn default_config_is_valid() {
    let c = parse(default::DEFAULT_TOML).unwrap();
    assert_eq!(c.tenants.len(), 1);
    assert_eq!(c.teams_port(), 5061);
}

#[test]
fn unknown_key_is_refused_with_its_line() {
    let text = default::DEFAULT_TOML.replace("[teams]\n", "[teams]\nbogus = 1\n");
    let err = parse(&text).unwrap_err();
    let line = text.lines().position(|l| l.starts_with("bogus")).unwrap() + 1;
    match &err {
        ConfigError::Syntax {
            line: l, reason, ..
        } => {
            assert_eq!(*l, line);
            assert!(reason.contains("bogus"), "{reason}");
        }
        other => panic!("expected syntax error, got {other}"),
    }
}

#[test]
fn tenant_with_missing_trunk_points_at_its_trunk_key() {
    let text = default::DEFAULT_TOML.replace("trunk = \"cc1\"", "trunk = \"cc-east\"");
    let err = parse(&text).unwrap_err();
    let line = text.lines().position(|l| l.contains("cc-east")).unwrap() + 1;
    let issue = &err.issues()[0];
    assert_eq!(issue.key, "tenant[0].trunk");
    assert_eq!(issue.line, line);
    assert_eq!(issue.col, "trunk = ".len() + 1);
    assert!(issue.reason.contains("no trunk \"cc-east\""));
    assert!(
        err.to_string()
            .starts_with(&format!("test.toml:{line}:9: tenant[0].trunk:"))
    );
}

#[test]
fn tenant_outside_base_domain_or_two_labels_deep_is_refused() {
    for fqdn in [
        "customer1.other.test",
        "a.customer1.sbc.example.test",
        "sbc.example.test",
    ] {
        let text = default::DEFAULT_TOML.replace("customer1.sbc.example.test", fqdn);
        let err = parse(&text).unwrap_err();
        assert_eq!(err.issues()[0].key, "tenant[0].fqdn", "{fqdn}");
    }
}

#[test]
fn duplicate_tenant_is_reported_on_the_second() {
    let text = format!(
        "{}\n[[tenant]]\nfqdn = \"CUSTOMER1.sbc.example.test\"\ntrunk = \"cc1\"\n",
        default::DEFAULT_TOML
    );
    let err = parse(&text).unwrap_err();
    let line = text.lines().position(|l| l.contains("CUSTOMER1")).unwrap() + 1;
    assert_eq!(err.issues()[0].key, "tenant[1].fqdn");
    assert_eq!(err.issues()[0].line, line);
}

#[test]
fn bad_address_is_a_syntax_error_with_line() {
    let text = default::DEFAULT_TOML.replace("127.0.0.1:9090", "127.0.0.1:99999");
    let err = parse(&text).unwrap_err();
    let line = text.lines().position(|l| l.contains("99999")).unwrap() + 1;
    assert!(
        matches!(err, ConfigError::Syntax { line: l, .. } if l == line),
        "{err}"
    );
}

#[test]
fn trunk_without_policy_keys_passes_every_header_and_rewrites_nothing() {
    let c = parse(default::DEFAULT_TOML).unwrap();
    let t = c.trunk("cc1").unwrap();
    assert_eq!(t.headers, TrunkHeaders::default());
    assert_eq!(t.headers.p_asserted_identity, PassOrStrip::Pass);
    assert_eq!(t.headers.history_info, HistoryInfoPolicy::Pass);
    assert!(t.number_rewrite.is_empty());
}

const POLICY: &str = r#"
[trunk.headers]
p_asserted_identity = "strip"
privacy = "pass"
diversion = "to-history-info"
history_info = "to-diversion"
reason = "strip"

[[trunk.q850_rewrite]]
cause = 17
to = 34

[[trunk.q850_rewrite]]
cause = 21
to = 0

[[trunk.number_rewrite]]
toward = "trunk"
fields = ["request-uri", "to"]
match = '\+44(\d+)'
replace = '0$1'

[[trunk.number_rewrite]]
toward = "teams"
match = '^0(\d{9,})$'
replace = '+44$1'
"#;

#[test]
fn trunk_header_policy_and_rewrite_rules_are_read() {
    let text = format!("{}{POLICY}", default::DEFAULT_TOML);
    let c = parse(&text).unwrap();
    let t = c.trunk("cc1").unwrap();
    assert_eq!(
        t.headers,
        TrunkHeaders {
            p_asserted_identity: PassOrStrip::Strip,
            privacy: PassOrStrip::Pass,
            diversion: DiversionPolicy::ToHistoryInfo,
            history_info: HistoryInfoPolicy::ToDiversion,
            reason: PassOrStrip::Strip,
        }
    );
    assert_eq!(
        t.q850_rewrite,
        [
            Q850Rewrite { cause: 17, to: 34 },
            Q850Rewrite { cause: 21, to: 0 }
        ]
    );
    assert_eq!(t.number_rewrite.len(), 2);
    assert_eq!(t.number_rewrite[0].toward, RewriteToward::Trunk);
    assert_eq!(
        t.number_rewrite[0].fields,
        [NumberFieldName::RequestUri, NumberFieldName::To]
    );
    // fields left out: all three.
    assert_eq!(
        t.number_rewrite[1].fields,
        [
            NumberFieldName::RequestUri,
            NumberFieldName::From,
            NumberFieldName::To
        ]
    );
    assert_eq!(t.number_rewrite[1].pattern, r"^0(\d{9,})$");
}

#[test]
fn rewrite_pattern_that_does_not_compile_points_at_its_match_key() {
    let text = format!("{}{POLICY}", default::DEFAULT_TOML).replace(r"^0(\d{9,})$", r"^0(\d{9,$");
    let err = parse(&text).unwrap_err();
    let line = text.lines().position(|l| l.contains(r"(\d{9,$")).unwrap() + 1;
    let issue = &err.issues()[0];
    assert_eq!(
        (issue.key.as_str(), issue.line, issue.col),
        (
            "trunk[0].number_rewrite[1].match",
            line,
            "match = ".len() + 1
        ),
        "{err}"
    );
    assert!(issue.reason.starts_with("does not compile: "), "{err}");
    assert_eq!(
        err.to_string().lines().count(),
        1,
        "one line per problem: {err}"
    );
}

#[test]
fn rewrite_replacement_naming_a_missing_group_points_at_replace() {
    let text = format!("{}{POLICY}", default::DEFAULT_TOML).replace("'+44$1'", "'+44$1x'");
    let err = parse(&text).unwrap_err();
    let line = text.lines().position(|l| l.contains("$1x")).unwrap() + 1;
    let issue = &err.issues()[0];
    assert_eq!(
        (issue.key.as_str(), issue.line),
        ("trunk[0].number_rewrite[1].replace", line),
        "{err}"
    );
    assert!(issue.reason.contains("$1x"), "{err}");
}

#[test]
fn q850_rewrite_outside_the_cause_range_or_twice_for_a_cause_is_refused_on_its_key() {
    for (from, to, key, line_has) in [
        (
            "cause = 21",
            "cause = 0",
            "trunk[0].q850_rewrite[1].cause",
            "cause = 0",
        ),
        (
            "to = 34",
            "to = 128",
            "trunk[0].q850_rewrite[0].to",
            "to = 128",
        ),
        (
            "cause = 21",
            "cause = 17",
            "trunk[0].q850_rewrite[1].cause",
            "cause = 17",
        ),
    ] {
        let text = format!("{}{POLICY}", default::DEFAULT_TOML).replace(from, to);
        let err = parse(&text).unwrap_err();
        let lines: Vec<&str> = text.lines().collect();
        let line = lines.iter().rposition(|l| *l == line_has).unwrap() + 1;
        let issue = &err.issues()[0];
        assert_eq!((issue.key.as_str(), issue.line), (key, line), "{err}");
    }
}

#[test]
fn trunk_failover_timeout_outside_1_to_8000_ms_is_refused_on_its_line() {
    let c = parse(default::DEFAULT_TOML).unwrap();
    assert_eq!(c.trunk("cc1").unwrap().failover_timeout_ms, 2000);
    for bad in ["0", "8001"] {
        let text = default::DEFAULT_TOML.replace(
            "allow = [\"127.0.0.1/32\"]",
            &format!("allow = [\"127.0.0.1/32\"]\nfailover_timeout_ms = {bad}"),
        );
        let err = parse(&text).unwrap_err();
        let line = text
            .lines()
            .position(|l| l.starts_with("failover_timeout_ms"))
            .unwrap()
            + 1;
        let issue = &err.issues()[0];
        assert_eq!(
            (issue.key.as_str(), issue.line),
            ("trunk[0].failover_timeout_ms", line),
            "{err}"
        );
    }
}

#[test]
fn trunk_options_interval_is_off_by_default_and_0_or_5_to_3600_s() {
    let c = parse(default::DEFAULT_TOML).unwrap();
    assert_eq!(c.trunk("cc1").unwrap().options_interval_s, 0);
    for (value, ok) in [
        ("0", true),
        ("5", true),
        ("3600", true),
        ("4", false),
        ("3601", false),
    ] {
        let text = default::DEFAULT_TOML.replace(
            "allow = [\"127.0.0.1/32\"]",
            &format!("allow = [\"127.0.0.1/32\"]\noptions_interval_s = {value}"),
        );
        match parse(&text) {
            Ok(_) => assert!(ok, "{value} accepted"),
            Err(e) => {
                assert!(!ok, "{value} refused: {e}");
                assert_eq!(e.issues()[0].key, "trunk[0].options_interval_s", "{e}");
            }
        }
    }
}

#[test]
fn empty_rewrite_pattern_is_refused() {
    let text = format!("{}{POLICY}", default::DEFAULT_TOML).replace(r"'\+44(\d+)'", "''");
    let err = parse(&text).unwrap_err();
    assert_eq!(
        err.issues()[0].key,
        "trunk[0].number_rewrite[0].match",
        "{err}"
    );
    assert_eq!(err.issues()[0].reason, "must not be empty");
}

#[test]
fn unknown_header_policy_value_or_key_is_a_syntax_error_with_its_line() {
    for (from, to, needle) in [
        (
            "diversion = \"to-history-info\"",
            "diversion = \"drop\"",
            "drop",
        ),
        ("privacy = \"pass\"", "privcy = \"pass\"", "privcy"),
        ("toward = \"teams\"", "toward = \"carrier\"", "carrier"),
        (
            "fields = [\"request-uri\", \"to\"]",
            "fields = [\"ruri\"]",
            "ruri",
        ),
    ] {
        let text = format!("{}{POLICY}", default::DEFAULT_TOML).replace(from, to);
        let err = parse(&text).unwrap_err();
        let line = text.lines().position(|l| l.contains(needle)).unwrap() + 1;
        assert!(
            matches!(&err, ConfigError::Syntax { line: l, .. } if *l == line),
            "{to}: {err}"
        );
    }
}

#[test]
fn missing_certificate_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = from_str(default::DEFAULT_TOML, Path::new("t.toml"), dir.path()).unwrap_err();
    let keys: Vec<_> = err.issues().iter().map(|i| i.key.as_str()).collect();
    assert!(
        keys.contains(&"tls.cert") && keys.contains(&"tls.key"),
        "{keys:?}"
    );
}

#[test]
fn every_problem_is_reported_in_one_pass() {
    let text = default::DEFAULT_TOML
        .replace("trunk = \"cc1\"", "trunk = \"nope\"")
        .replace("options_interval_s = 60", "options_interval_s = 600");
    let err = parse(&text).unwrap_err();
    assert_eq!(err.issues().len(), 2, "{err}");
}

#[test]
fn key_of_another_certificate_is_refused_on_the_key_line() {
    let text = default::DEFAULT_TOML.replace("certs/dev/server.key", "certs/dev/ca.key");
    let err = parse(&text).unwrap_err();
    let line = text.lines().position(|l| l.contains("ca.key")).unwrap() + 1;
    let issue = &err.issues()[0];
    assert_eq!((issue.key.as_str(), issue.line), ("tls.key", line), "{err}");
    assert!(issue.reason.contains("does not match"), "{err}");
}

#[test]
fn cdr_section_is_optional_and_defaults_to_no_records_with_full_numbers() {
    let c = parse(default::DEFAULT_TOML).unwrap();
    assert_eq!(c.cdr, CdrConfig::default());
    assert_eq!(c.cdr.numbers, NumberPolicy::Full);
}

#[test]
fn cdr_relative_path_is_taken_from_the_config_directory() {
    let (dir, text) = with_certs(default::DEFAULT_TOML);
    let text = format!("{text}\n[cdr]\npath = \"cdr.jsonl\"\nnumbers = \"masked\"\n");
    let c = from_str(&text, Path::new("test.toml"), dir.path()).unwrap();
    assert_eq!(
        c.cdr.path.as_deref(),
        Some(dir.path().join("cdr.jsonl").as_path())
    );
    assert_eq!(c.cdr.numbers, NumberPolicy::Masked);
    // check-config creates nothing.
    assert!(!dir.path().join("cdr.jsonl").exists());
}

#[test]
fn cdr_path_in_a_missing_directory_is_refused_on_its_line() {
    let text = format!(
        "{}\n[cdr]\npath = \"no-such-dir/cdr.jsonl\"\n",
        default::DEFAULT_TOML
    );
    let err = parse(&text).unwrap_err();
    let line = text
        .lines()
        .position(|l| l.contains("no-such-dir"))
        .unwrap()
        + 1;
    let issue = &err.issues()[0];
    assert_eq!(
        (issue.key.as_str(), issue.line, issue.col),
        ("cdr.path", line, 8),
        "{err}"
    );
    assert!(issue.reason.contains("does not exist"), "{err}");
}

#[test]
fn cdr_path_naming_a_directory_is_refused() {
    let (dir, text) = with_certs(default::DEFAULT_TOML);
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    let text = format!("{text}\n[cdr]\npath = \"logs\"\n");
    let err = from_str(&text, Path::new("test.toml"), dir.path()).unwrap_err();
    assert_eq!(err.issues()[0].key, "cdr.path", "{err}");
    assert!(err.issues()[0].reason.contains("is a directory"), "{err}");
}

#[test]
fn cdr_numbers_outside_the_three_policies_is_a_syntax_error() {
    let text = format!("{}\n[cdr]\nnumbers = \"hashed\"\n", default::DEFAULT_TOML);
    let err = parse(&text).unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
    assert!(err.to_string().contains("hashed"), "{err}");
}

#[test]
fn teams_sources_default_to_microsofts_ranges_and_an_empty_list_is_refused_tdr_sig_08() {
    let without = default::DEFAULT_TOML.replace("allow = [\"127.0.0.0/8\", \"::1/128\"]\n", "");
    assert_ne!(
        without,
        default::DEFAULT_TOML,
        "the lab config lists its Teams sources"
    );
    let c = parse(&without).unwrap();
    let listed: Vec<String> = c.teams.allow.iter().map(ToString::to_string).collect();
    assert_eq!(listed, ["52.112.0.0/14", "52.120.0.0/14"]);

    let empty =
        default::DEFAULT_TOML.replace("allow = [\"127.0.0.0/8\", \"::1/128\"]", "allow = []");
    let err = parse(&empty).unwrap_err();
    assert_eq!(err.issues()[0].key, "teams.allow", "{err}");
    assert!(err.issues()[0].reason.contains("TDR-SIG-08"), "{err}");
    let line = empty.lines().position(|l| l == "allow = []").unwrap() + 1;
    assert!(
        err.to_string().starts_with(&format!("test.toml:{line}:")),
        "names the line: {err}"
    );
}

#[test]
fn trunk_auth_is_read_checked_and_its_password_never_printed() {
    let with = |auth: &str| {
        default::DEFAULT_TOML.replace(
            "allow = [\"127.0.0.1/32\"]\n",
            &format!("allow = [\"127.0.0.1/32\"]\n[trunk.auth]\n{auth}"),
        )
    };
    let c = parse(&with("username = \"cc1\"\npassword = \"hunter2-secret\"\n")).unwrap();
    let auth = c.trunks[0].auth.as_ref().unwrap();
    assert_eq!(
        (auth.username.as_str(), auth.realm.as_deref()),
        ("cc1", None)
    );
    assert!(
        !format!("{c:?}").contains("hunter2-secret"),
        "Debug printed the password"
    );

    let err = parse(&with("username = \"cc1\"\npassword = \"\"\n")).unwrap_err();
    assert_eq!(err.issues()[0].key, "trunk[0].auth.password", "{err}");
    let err = parse(&with(
        "username = \"c\\\"c\"\npassword = \"hunter2-secret\"\n",
    ))
    .unwrap_err();
    assert_eq!(err.issues()[0].key, "trunk[0].auth.username", "{err}");
    assert!(!err.to_string().contains("hunter2-secret"), "{err}");
}
