#![allow(clippy::unwrap_used)]

use super::*;

fn config(extra: &str) -> (tempfile::TempDir, Config) {
    let text = crate::config::default::DEFAULT_TOML.replace(
        "allow = [\"127.0.0.1/32\"]",
        &format!("allow = [\"127.0.0.1/32\"]\n{extra}"),
    );
    crate::config::test_support::with_dev_certs(&text)
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn only_trunks_with_an_interval_are_pinged() {
    let (_d, c) = config("");
    let now = crate::clock::now();
    let mut h = TrunkHealth::new(&c, now);
    assert_eq!(h.poll_round(now), None);
    assert_eq!(h.poll_timeout(), None);
    assert!(!h.is_down("cc1"));
}

#[test]
fn a_trunk_is_up_while_any_target_answers_and_down_when_every_one_fails() {
    let (_d, c) = config("options_interval_s = 30\nfailover_timeout_ms = 1000");
    let t0 = crate::clock::now();
    let mut h = TrunkHealth::new(&c, t0);
    let trunk = h.poll_round(t0).unwrap();
    assert_eq!(h.name(trunk), Some("cc1"));
    assert_eq!(h.poll_round(t0), None, "one round at a time");
    let (pings, tr) = h.resolved(trunk, &[addr(5080), addr(5081)], "", t0);
    assert_eq!((pings.len(), tr), (2, None));
    // Unknown until judged: calls are not refused.
    assert!(!h.is_down("cc1"));

    // The first answers 404 (alive; many peers answer OPTIONS so), the second 503.
    let up = h.on_final(pings[0], 404).unwrap();
    assert_eq!((up.trunk.as_str(), up.to), ("cc1", Health::Up));
    assert!(h.is_up("cc1"));
    assert_eq!(
        h.on_final(pings[1], 503),
        None,
        "still up through the first"
    );
    assert!(h.target_down("cc1", addr(5081)) && !h.target_down("cc1", addr(5080)));
    // A late answer to a ping already judged changes nothing.
    assert_eq!(h.on_final(pings[1], 200), None);
    assert!(h.target_down("cc1", addr(5081)));

    // Next round, 30 s on: both are silent past the timeout.
    assert_eq!(h.poll_timeout(), Some(t0 + Duration::from_secs(30)));
    let t1 = t0 + Duration::from_secs(30);
    let trunk = h.poll_round(t1).unwrap();
    let (pings, _) = h.resolved(trunk, &[addr(5080), addr(5081)], "", t1);
    assert_eq!(h.poll_timeout(), Some(t1 + Duration::from_secs(1)));
    let down = h.handle_timeout(t1 + Duration::from_secs(1));
    assert_eq!(down.len(), 1);
    assert_eq!(down[0].to, Health::Down);
    assert!(
        down[0].why.as_deref().unwrap().contains("did not answer"),
        "{down:?}"
    );
    assert!(h.is_down("cc1") && !h.is_up("cc1"));
    assert_eq!(h.on_final(pings[0], 200), None, "too late");

    // A round whose name does not resolve keeps it down; one answer brings it back.
    let t2 = t1 + Duration::from_secs(30);
    let trunk = h.poll_round(t2).unwrap();
    assert_eq!(h.resolved(trunk, &[], "NXDOMAIN", t2), (Vec::new(), None));
    let t3 = t2 + Duration::from_secs(30);
    let trunk = h.poll_round(t3).unwrap();
    let (pings, _) = h.resolved(trunk, &[addr(5081)], "", t3);
    assert_eq!(pings.len(), 1, "a target no longer listed is forgotten");
    let up = h.on_final(pings[0], 200).unwrap();
    assert_eq!(up.to, Health::Up);
    assert!(!h.is_down("cc1"));
}

#[test]
fn a_name_that_does_not_resolve_takes_a_trunk_down_with_the_reason() {
    let (_d, c) = config("options_interval_s = 30");
    let t0 = crate::clock::now();
    let mut h = TrunkHealth::new(&c, t0);
    let trunk = h.poll_round(t0).unwrap();
    let (pings, _) = h.resolved(trunk, &[addr(5080)], "", t0);
    h.on_final(pings[0], 200);
    let t1 = t0 + Duration::from_secs(30);
    let trunk = h.poll_round(t1).unwrap();
    let (_, tr) = h.resolved(trunk, &[], "cc.example.test: NXDOMAIN", t1);
    let tr = tr.unwrap();
    assert_eq!(
        (tr.to, tr.why.as_deref()),
        (Health::Down, Some("cc.example.test: NXDOMAIN"))
    );
}

#[test]
fn a_reload_that_turns_pings_off_stops_refusing_the_trunk() {
    let (_d, c) = config("options_interval_s = 30");
    let t0 = crate::clock::now();
    let mut h = TrunkHealth::new(&c, t0);
    let trunk = h.poll_round(t0).unwrap();
    let (pings, _) = h.resolved(trunk, &[addr(5080)], "", t0);
    h.on_failure(pings[0], "refused".into());
    assert!(h.is_down("cc1"));
    let (_d2, off) = config("");
    h.reconfigure(&off, t0);
    assert!(!h.is_down("cc1"));
    assert_eq!(h.poll_timeout(), None);
    // Back on: pinged again at once, its index unchanged.
    h.reconfigure(&c, t0);
    assert_eq!(h.poll_round(t0), Some(trunk));
}
