//! The I/O side of trunk health (`crate::trunk_health`): each round resolves the trunk's URI
//! and sends every target an OPTIONS; answers, silence and failed sends come back to the
//! schedule, and changes reach the log, `drawbridge_trunk_up` and the calls.

use std::time::Instant;

use super::{Endpoint, Feedback, TxContext, policy, token};
use crate::config::Config;
use crate::sip::Method;
use crate::sip::message::{Request, Uri};
use crate::sip::transaction::TransactionKey;
use crate::sip::transport::{Target, TransportKind};
use crate::trunk_health::{Health, Ping, Transition, TrunkHealth};

/// The schedule for the config's trunks; each pinged trunk's gauge starts at 0 (as the Teams
/// proxies' do) until its first answer.
pub(super) fn health_for(config: &Config, now: Instant) -> TrunkHealth {
    let health = TrunkHealth::new(config, now);
    publish_unanswered(config, &health);
    health
}

/// Sets the gauge of each pinged trunk not seen up to 0: at start, and for a trunk a reload
/// turns pings on for.
pub(super) fn publish_unanswered(config: &Config, health: &TrunkHealth) {
    for t in config.trunks.iter().filter(|t| t.options_interval_s > 0) {
        if !health.is_up(&t.name) {
            metrics::gauge!(crate::metrics::TRUNK_UP, "trunk" => t.name.clone()).set(0.0);
        }
    }
}

impl Endpoint {
    /// A round is due: the trunk's targets, from its URI (RFC 3263 when it names a host).
    pub(super) fn start_trunk_round(&mut self, trunk: usize, now: Instant) {
        let Some(cfg) = self
            .trunk_health
            .name(trunk)
            .and_then(|name| self.config.trunk(name))
        else {
            return;
        };
        let hop = crate::b2bua::trunk_hop(&cfg.uri);
        match hop.dest {
            Some(crate::b2bua::Dest::Target(t)) => self.on_trunk_resolved(trunk, vec![t], ""),
            Some(crate::b2bua::Dest::Lookup {
                side,
                transport,
                host,
                port,
                server_name,
            }) => {
                let resolver = self.resolver.clone();
                let feedback = self.feedback_tx.clone();
                tokio::spawn(async move {
                    let found =
                        super::calls::lookup(&resolver, side, transport, &host, port, server_name);
                    let (targets, why) = match found.await {
                        Ok(targets) => (targets, format!("{host}: no address")),
                        Err(e) => (Vec::new(), e.to_string()),
                    };
                    let _ = feedback
                        .send(Feedback::TrunkResolved {
                            trunk,
                            targets,
                            why,
                        })
                        .await;
                });
            }
            None => {
                let (_, tr) = self
                    .trunk_health
                    .resolved(trunk, &[], "no host in uri", now);
                if let Some(tr) = tr {
                    self.trunk_transition(tr);
                }
            }
        }
    }

    /// The round's targets are known: one OPTIONS each.
    pub(super) fn on_trunk_resolved(&mut self, trunk: usize, targets: Vec<Target>, why: &str) {
        let now = crate::clock::now();
        let addrs: Vec<_> = targets.iter().map(|t| t.addr).collect();
        let (pings, tr) = self.trunk_health.resolved(trunk, &addrs, why, now);
        if let Some(tr) = tr {
            self.trunk_transition(tr);
        }
        for ping in pings {
            if let Some(dest) = targets.iter().find(|t| t.addr == ping.addr) {
                self.send_trunk_ping(ping, dest.clone(), now);
            }
        }
    }

    fn send_trunk_ping(&mut self, ping: Ping, dest: Target, now: Instant) {
        let Some(cfg) = self
            .trunk_health
            .name(ping.trunk)
            .and_then(|name| self.config.trunk(name))
        else {
            return;
        };
        let Ok(uri) = Uri::parse(&cfg.uri) else {
            return;
        };
        let (host, port) = self.b2bua.trunk_sent_by(dest.transport);
        let branch = format!("z9hG4bK{}", token(&mut self.rng, 16));
        let domain = self.config.sbc.base_domain.clone();
        let mut req = Request::new(Method::Options, uri.clone());
        let h = &mut req.headers;
        h.push(
            "Via",
            format!("SIP/2.0/{} {host}:{port};branch={branch}", dest.transport),
        );
        h.push("Max-Forwards", "70");
        h.push(
            "From",
            format!("<sip:{domain}>;tag={}", token(&mut self.rng, 10)),
        );
        h.push("To", format!("<{uri}>"));
        h.push("Call-ID", format!("{}@{domain}", token(&mut self.rng, 20)));
        // CSeq must fit 2^31 (RFC 3261 §8.1.1.5).
        h.push("CSeq", format!("{} OPTIONS", ping.seq % (1 << 31)));
        h.push("Accept", policy::ACCEPT);
        h.push("User-Agent", self.config.sbc.product.clone());
        let key = TransactionKey::client(&branch, &Method::Options);
        self.counters.message(
            crate::metrics::Direction::Out,
            dest.transport,
            &Method::Options,
            None,
        );
        let reliable = dest.transport != TransportKind::Udp;
        let ctx = TxContext::TrunkPing { dest, ping };
        if let Err(e) =
            self.txns
                .start_client(key, &Method::Options, req.to_bytes(), reliable, ctx, now)
        {
            tracing::warn!(trunk = %cfg.name, error = %e, "cannot start a trunk OPTIONS");
        }
    }

    /// A trunk changed health: one log line, its gauge, and the calls' view of it.
    pub(super) fn trunk_transition(&mut self, tr: Transition) {
        let up = tr.to == Health::Up;
        metrics::gauge!(crate::metrics::TRUNK_UP, "trunk" => tr.trunk.clone()).set(if up {
            1.0
        } else {
            0.0
        });
        if up {
            tracing::info!(trunk = %tr.trunk, "trunk answers OPTIONS: up");
        } else {
            tracing::warn!(
                trunk = %tr.trunk,
                reason = tr.why.as_deref().unwrap_or("no answer"),
                "trunk down: no target answers OPTIONS; calls from Teams for it get 503"
            );
        }
        self.b2bua.set_trunks_down(self.trunk_health.down_trunks());
    }
}
