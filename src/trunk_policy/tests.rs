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

mod diversion_history;
mod identity_headers;
mod number_rules;

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
