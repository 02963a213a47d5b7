//! Tenant routing: tenant FQDN ⇄ contact-center trunk, both ways, and which trunk a source
//! address speaks for. Built once from a validated config; a reload builds a new one.
//!
//! TDR-MT-05 asks for a two-way map (tenant FQDN ↔ customer ↔ trunk) and TDR-MT-07 for routing
//! on the tenant, never on a number alone: Teams → trunk goes by the Request-URI host, trunk →
//! Teams by the trunk the source address belongs to.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::{Config, TenantConfig, TrunkConfig};

/// The routing table.
#[derive(Debug, Clone)]
pub struct Routes {
    tenants: Vec<TenantConfig>,
    trunks: Vec<TrunkConfig>,
    /// Lower-cased tenant FQDN → index into `tenants` (FQDNs are case-insensitive, RFC 4343).
    by_fqdn: HashMap<String, usize>,
    /// Trunk index → indexes of the tenants it serves.
    tenants_of_trunk: Vec<Vec<usize>>,
    /// (network, trunk index), most specific network first, so the narrowest `allow` entry
    /// decides when two trunks' networks overlap.
    acl: Vec<(IpNet, usize)>,
}

impl Routes {
    /// Builds the table from a config that passed validation (every tenant names a trunk).
    pub fn new(config: &Config) -> Routes {
        let trunks = config.trunks.clone();
        let tenants = config.tenants.clone();
        let trunk_index: HashMap<&str, usize> = trunks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.as_str(), i))
            .collect();
        let mut tenants_of_trunk = vec![Vec::new(); trunks.len()];
        let mut by_fqdn = HashMap::new();
        for (i, t) in tenants.iter().enumerate() {
            by_fqdn.insert(t.fqdn.to_ascii_lowercase(), i);
            if let Some(&k) = trunk_index.get(t.trunk.as_str()) {
                tenants_of_trunk[k].push(i);
            }
        }
        let mut acl: Vec<(IpNet, usize)> = trunks
            .iter()
            .enumerate()
            .flat_map(|(k, t)| t.allow.iter().map(move |net| (*net, k)))
            .collect();
        acl.sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
        Routes {
            tenants,
            trunks,
            by_fqdn,
            tenants_of_trunk,
            acl,
        }
    }

    /// The tenant whose FQDN this is (a Request-URI host from Teams, TDR-INV-09).
    pub fn tenant_by_fqdn(&self, host: &str) -> Option<&TenantConfig> {
        let host = host.trim_end_matches('.');
        let i = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            self.by_fqdn.get(&host.to_ascii_lowercase())
        } else {
            self.by_fqdn.get(host)
        }?;
        self.tenants.get(*i)
    }

    /// The trunk a tenant's calls go to.
    pub fn trunk_of(&self, tenant: &TenantConfig) -> Option<&TrunkConfig> {
        self.trunks.iter().find(|t| t.name == tenant.trunk)
    }

    /// The trunk a source address may speak for (the trunk-side ACL), if any.
    pub fn trunk_by_source(&self, ip: IpAddr) -> Option<&TrunkConfig> {
        // An IPv4-mapped IPv6 source (dual-stack socket) is the IPv4 address it carries.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.acl
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .and_then(|(_, k)| self.trunks.get(*k))
    }

    /// The tenants a trunk serves (the reverse map, for calls from the trunk toward Teams).
    pub fn tenants_of(&self, trunk: &TrunkConfig) -> impl Iterator<Item = &TenantConfig> {
        self.trunks
            .iter()
            .position(|t| t.name == trunk.name)
            .and_then(|k| self.tenants_of_trunk.get(k))
            .into_iter()
            .flatten()
            .filter_map(|i| self.tenants.get(*i))
    }
}

#[cfg(test)]
mod tests;
