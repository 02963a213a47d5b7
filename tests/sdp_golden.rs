//! Golden SDP rewrite tests in the rtpengine style (`t/auto-daemon-tests-*.pl`): each
//! `tests/sdp/*.txt` file is a small call script, written by hand.
//!
//! File format:
//! ```text
//! # comment (anywhere; SDP lines never start with '#')
//! key: value            defaults for every step, before the first `==`
//! == <operation>        a step: offer_to_trunk | answer_to_teams | offer_to_teams | answer_to_trunk
//! key: value            parameters for this step only
//! -- <input name>       SDP text until the next `--`/`==`; `-- name @path` reads the body of a
//!                       SIP message file (relative to the package root, e.g. ../shared/testdata)
//! -- expect             the SDP the step must print (LF here, CRLF compared), or
//! -- error              the `Debug` form of the expected RewriteError
//! ```
//! Parameters: `leg: <ip> <port> [rtcp=<port>]`, `origin: <sess-id> <ip> [username]` (steps with
//! the same origin value share one OriginState, so versions carry across steps), `policy:
//! <names...> [+te] [+cn]` (`*` alone keeps every codec), `trunk-mux: yes|no`, `crypto: <value>`
//! (`\r`, `\n` escapes allowed).
//! Addresses are RFC 5737: Teams media 203.0.113.x, SBC 198.51.100.x, trunk 192.0.2.x.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::IpAddr;

use drawbridge::sdp::{
    CodecPolicy, LegMedia, OriginState, SessionDescription, answer_to_teams, answer_to_trunk,
    offer_to_teams, offer_to_trunk,
};

struct Step {
    op: String,
    line: usize,
    params: HashMap<String, String>,
    sections: Vec<(String, String)>,
}

fn body_of_message(path: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (_, body) = text.split_once("\r\n\r\n").unwrap_or(("", &text));
    body.to_owned()
}

fn load(name: &str) -> Vec<Step> {
    let path = format!("tests/sdp/{name}.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut defaults = HashMap::new();
    let mut steps: Vec<Step> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.starts_with('#') || (line.trim().is_empty() && steps.is_empty()) {
            continue;
        }
        if let Some(op) = line.strip_prefix("== ") {
            steps.push(Step {
                op: op.trim().to_owned(),
                line: index + 1,
                params: defaults.clone(),
                sections: Vec::new(),
            });
        } else if let Some(section) = line.strip_prefix("-- ") {
            let step = steps.last_mut().expect("section before the first step");
            let (name, source) = match section.split_once(" @") {
                Some((name, file)) => (name.trim(), body_of_message(file.trim())),
                None => (section.trim(), String::new()),
            };
            step.sections.push((name.to_owned(), source));
        } else if let Some(step) = steps.last_mut() {
            match step.sections.last_mut() {
                Some((_, body)) => {
                    if !line.trim().is_empty() {
                        body.push_str(line);
                        body.push_str("\r\n");
                    }
                }
                None => {
                    let (key, value) = line.split_once(':').expect("key: value");
                    step.params
                        .insert(key.trim().to_owned(), value.trim().to_owned());
                }
            }
        } else {
            let (key, value) = line.split_once(':').expect("key: value");
            defaults.insert(key.trim().to_owned(), value.trim().to_owned());
        }
    }
    assert!(!steps.is_empty(), "{path}: no steps");
    steps
}

impl Step {
    fn param(&self, key: &str) -> &str {
        self.params
            .get(key)
            .unwrap_or_else(|| panic!("step at line {}: missing parameter {key}", self.line))
    }

    fn section(&self, name: &str) -> Option<&str> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, text)| text.as_str())
    }

    fn sdp(&self, name: &str) -> Option<SessionDescription> {
        self.section(name).map(|text| {
            SessionDescription::parse(text)
                .unwrap_or_else(|e| panic!("step at line {}: {name}: {e}", self.line))
        })
    }

    fn required_sdp(&self, name: &str) -> SessionDescription {
        self.sdp(name)
            .unwrap_or_else(|| panic!("step at line {}: missing section {name}", self.line))
    }

    fn leg(&self) -> LegMedia {
        let mut parts = self.param("leg").split_whitespace();
        let address: IpAddr = parts.next().unwrap().parse().unwrap();
        let port = parts.next().unwrap().parse().unwrap();
        let rtcp_port = parts.next().map(|p| {
            p.strip_prefix("rtcp=")
                .expect("rtcp=<port>")
                .parse()
                .unwrap()
        });
        LegMedia {
            address,
            port,
            rtcp_port,
        }
    }

    fn policy(&self) -> CodecPolicy {
        let words: Vec<&str> = self.param("policy").split_whitespace().collect();
        CodecPolicy {
            allow: words
                .iter()
                .filter(|w| !w.starts_with('+') && **w != "*")
                .map(|w| (*w).to_owned())
                .collect(),
            keep_telephone_event: words.contains(&"+te"),
            keep_cn: words.contains(&"+cn"),
        }
    }

    /// The SBC's a=crypto value; `\r` and `\n` escapes let a file try line injection.
    fn crypto(&self) -> String {
        self.param("crypto")
            .replace("\\r", "\r")
            .replace("\\n", "\n")
    }

    fn trunk_mux(&self) -> bool {
        match self.param("trunk-mux") {
            "yes" => true,
            "no" => false,
            other => panic!("trunk-mux: {other}"),
        }
    }
}

fn new_origin(value: &str) -> OriginState {
    let mut parts = value.split_whitespace();
    let session_id = parts.next().unwrap().parse().unwrap();
    let address = parts.next().unwrap().parse().unwrap();
    let state = OriginState::new(session_id, address);
    match parts.next() {
        Some(username) => state.with_username(username),
        None => state,
    }
}

fn golden(name: &str) {
    let mut origins: HashMap<String, OriginState> = HashMap::new();
    for step in load(name) {
        let origin_key = step.param("origin").to_owned();
        let origin = origins
            .entry(origin_key.clone())
            .or_insert_with(|| new_origin(&origin_key));
        let result = match step.op.as_str() {
            "offer_to_trunk" => offer_to_trunk(
                &step.required_sdp("teams_offer"),
                &step.leg(),
                &step.policy(),
                step.trunk_mux(),
                origin,
            ),
            "answer_to_teams" => answer_to_teams(
                &step.required_sdp("trunk_answer"),
                &step.required_sdp("teams_offer"),
                &step.leg(),
                &step.crypto(),
                origin,
            ),
            "offer_to_teams" => offer_to_teams(
                step.sdp("trunk_offer").as_ref(),
                &step.leg(),
                &step.policy(),
                &step.crypto(),
                origin,
            ),
            "answer_to_trunk" => answer_to_trunk(
                &step.required_sdp("teams_answer"),
                step.sdp("trunk_offer").as_ref(),
                &step.leg(),
                step.trunk_mux(),
                origin,
            ),
            other => panic!("{name}.txt line {}: unknown operation {other}", step.line),
        };
        let at = format!("{name}.txt, step `{}` at line {}", step.op, step.line);
        match (result, step.section("expect"), step.section("error")) {
            (Ok(sd), Some(expected), None) => {
                let printed = sd.to_string();
                if printed != expected {
                    panic!("{at}: output differs\n--- expected\n{expected}--- got\n{printed}");
                }
                // What the SBC sends must read back as itself.
                assert_eq!(
                    SessionDescription::parse(&printed).as_ref(),
                    Ok(&sd),
                    "{at}"
                );
            }
            (Err(e), None, Some(expected)) => {
                assert_eq!(format!("{e:?}"), expected.trim_end(), "{at}");
            }
            (result, _, _) => panic!("{at}: got {result:?}; the step needs one of expect/error"),
        }
    }
}

macro_rules! golden_tests {
    ($($name:ident),* $(,)?) => {
        $( #[test] fn $name() { golden(stringify!($name)); } )*

        #[test]
        fn every_golden_file_has_a_test() {
            let known = [$(stringify!($name)),*];
            for entry in std::fs::read_dir("tests/sdp").unwrap() {
                let path = entry.unwrap().path();
                let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
                assert!(known.contains(&stem.as_str()), "tests/sdp/{stem}.txt has no test");
            }
        }
    };
}

golden_tests! {
    shared_testdata_teams_offer_becomes_the_trunk_invite_sdp,
    shared_testdata_trunk_answer_becomes_the_teams_200_sdp,
    example_b_teams_offer_to_trunk_and_answer_back_tdr_sig_12_tdr_med_05,
    example_c_trunk_offer_to_teams_and_answer_back_tdr_med_01_tdr_med_04,
    delayed_offer_trunk_gets_built_offer_tdr_inv_05,
    codec_policy_drops_silk_keeps_telephone_event_and_cn_tdr_med_05_06_07,
    teams_offer_without_srtp_is_refused_tdr_med_01,
    trunk_hold_and_resume_become_inactive_and_sendrecv_tdr_inv_16,
    unknown_attributes_pass_through_ice_and_dtls_do_not_tdr_sig_12,
    ipv6_leg_addresses,
    session_version_grows_only_on_change_rfc3264_tdr_inv_14,
    video_m_line_rejected_with_port_0_in_answers_rfc3264,
    rtcp_mux_toward_trunk_only_when_configured_tdr_med_04,
}
