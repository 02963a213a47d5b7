use super::*;

fn routes(extra: &str) -> Routes {
    let text = crate::config::default::DEFAULT_TOML.to_owned() + extra;
    Routes::new(&crate::config::test_support::with_dev_certs(&text).1)
}

const TWO_TENANTS: &str = r#"
[[tenant]]
fqdn = "customer2.sbc.example.test"
trunk = "cc2"

[[trunk]]
name = "cc2"
uri = "sip:127.0.0.2:5080"
allow = ["127.0.0.0/8"]
"#;

#[test]
fn tenant_fqdn_maps_to_its_own_trunk_tdr_mt_05() {
    let r = routes(TWO_TENANTS);
    let t1 = r.tenant_by_fqdn("customer1.sbc.example.test").unwrap();
    let t2 = r.tenant_by_fqdn("CUSTOMER2.sbc.example.test.").unwrap();
    assert_eq!(r.trunk_of(t1).unwrap().name, "cc1");
    assert_eq!(r.trunk_of(t2).unwrap().name, "cc2");
    assert!(r.tenant_by_fqdn("customer3.sbc.example.test").is_none());
    assert!(r.tenant_by_fqdn("sbc.example.test").is_none());
}

#[test]
fn trunk_maps_back_to_the_tenants_it_serves() {
    let r = routes(TWO_TENANTS);
    let cc2 = r.trunk_by_source("127.0.0.9".parse().unwrap()).unwrap();
    let fqdns: Vec<_> = r.tenants_of(cc2).map(|t| t.fqdn.as_str()).collect();
    assert_eq!(fqdns, vec!["customer2.sbc.example.test"]);
}

#[test]
fn narrowest_allow_entry_decides_between_overlapping_trunks() {
    let r = routes(TWO_TENANTS);
    // cc1 allows 127.0.0.1/32, cc2 the whole 127.0.0.0/8.
    assert_eq!(
        r.trunk_by_source("127.0.0.1".parse().unwrap())
            .unwrap()
            .name,
        "cc1"
    );
    assert_eq!(
        r.trunk_by_source("127.0.0.2".parse().unwrap())
            .unwrap()
            .name,
        "cc2"
    );
    assert_eq!(
        r.trunk_by_source("::ffff:127.0.0.1".parse().unwrap())
            .unwrap()
            .name,
        "cc1"
    );
    assert!(r.trunk_by_source("192.0.2.1".parse().unwrap()).is_none());
}
