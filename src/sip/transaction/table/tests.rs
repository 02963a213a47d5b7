use super::*;
use crate::sip::transaction::key::RequestFields;
use crate::sip::transaction::testing::{Clock, Driven, drain, run_timers};

fn rsp(status: u16) -> Bytes {
    Bytes::from(format!("SIP/2.0 {status} X\r\n\r\n"))
}

fn fields<'a>(method: &'a Method, branch: Option<&'a str>) -> RequestFields<'a> {
    RequestFields {
        method,
        branch,
        sent_by: "192.0.2.10:5060",
        request_uri: "sip:+15551234@sbc.example.com",
        to_tag: None,
        from_tag: Some("from-1"),
        call_id: "call-1@192.0.2.10",
        cseq: 7,
        top_via: "SIP/2.0/UDP 192.0.2.10:5060",
    }
}

fn key(method: &Method, branch: &str) -> TransactionKey {
    TransactionKey::server(&fields(method, Some(branch)))
}

type Table = Transactions<&'static str>;

fn table() -> Table {
    Transactions::new(TimerConfig::default())
}

#[test]
fn server_absorbs_request_retransmission_with_last_response() {
    let clock = Clock::new();
    let mut t = table();
    let bye = Method::Bye;
    let ServerDisposition::New(id) =
        t.on_request(key(&bye, "z9hG4bK1"), &bye, false, "a", clock.now)
    else {
        panic!("expected a new transaction");
    };
    t.respond(id, 200, rsp(200), clock.now).unwrap();
    assert_eq!(drain(&mut t), vec![(id, Output::Transmit(rsp(200)))]);
    assert_eq!(
        t.on_request(key(&bye, "z9hG4bK1"), &bye, false, "b", clock.now),
        ServerDisposition::Retransmission(id)
    );
    assert_eq!(drain(&mut t), vec![(id, Output::Transmit(rsp(200)))]);
    // The context of the first arrival is kept, the retransmission's dropped.
    assert_eq!(t.context(id), Some(&"a"));
    assert_eq!(t.len(), 1);
}

#[test]
fn table_removes_terminated_transactions() {
    let mut clock = Clock::new();
    let mut t = table();
    let options = Method::Options;
    let k = key(&options, "z9hG4bK2");
    let ServerDisposition::New(id) = t.on_request(k.clone(), &options, true, "tcp", clock.now)
    else {
        panic!("expected a new transaction");
    };
    t.respond(id, 200, rsp(200), clock.advance_ms(5)).unwrap();
    // Timer J is zero over TCP: due now.
    assert_eq!(t.poll_timeout(), Some(clock.now));
    t.handle_timeouts(clock.now);
    assert_eq!(
        drain(&mut t),
        vec![(id, Output::Transmit(rsp(200))), (id, Output::Terminated)]
    );
    assert!(t.is_empty());
    assert_eq!(t.poll_timeout(), None);
    assert_eq!(t.context(id), None);
    // The id is dead for good even though the slot is reused, and the key is free again.
    let ServerDisposition::New(again) = t.on_request(k, &options, true, "tcp2", clock.now) else {
        panic!("expected a new transaction");
    };
    assert_ne!(again, id);
    assert_eq!(
        t.respond(id, 200, rsp(200), clock.now),
        Err(TxError::UnknownTransaction { id })
    );
    assert_eq!(t.context(again), Some(&"tcp2"));
}

#[test]
fn cancel_matches_invite_server_transaction() {
    let clock = Clock::new();
    let mut t = table();
    let (invite, cancel) = (Method::Invite, Method::Cancel);
    let ServerDisposition::New(inv) =
        t.on_request(key(&invite, "z9hG4bK3"), &invite, false, "", clock.now)
    else {
        panic!("expected a new transaction");
    };
    let cancel_key = key(&cancel, "z9hG4bK3");
    assert_eq!(t.find_cancel_target(&cancel_key), Some(inv));
    assert_eq!(t.find_cancel_target(&key(&cancel, "z9hG4bKother")), None);
    assert_eq!(t.find_cancel_target(&key(&invite, "z9hG4bK3")), None);
    // The CANCEL is its own non-INVITE transaction (§9.2).
    let ServerDisposition::New(can) = t.on_request(cancel_key, &cancel, false, "", clock.now)
    else {
        panic!("expected a new transaction");
    };
    assert_ne!(can, inv);
    assert_eq!(t.kind(can), Some(TransactionKind::NonInviteServer));
    assert_eq!(t.kind(inv), Some(TransactionKind::InviteServer));
}

#[test]
fn rfc2543_request_matches_by_fallback_key() {
    let clock = Clock::new();
    let mut t = table();
    let (invite, ack) = (Method::Invite, Method::Ack);
    // No magic cookie: matched on Request-URI, tags, Call-ID, CSeq and top Via (§17.2.3).
    let invite_key = TransactionKey::server(&fields(&invite, Some("old-branch")));
    let ServerDisposition::New(id) =
        t.on_request(invite_key.clone(), &invite, false, "", clock.now)
    else {
        panic!("expected a new transaction");
    };
    assert_eq!(
        t.on_request(invite_key, &invite, false, "", clock.now),
        ServerDisposition::Retransmission(id)
    );
    let mut other_cseq = fields(&invite, Some("old-branch"));
    other_cseq.cseq = 8;
    assert!(matches!(
        t.on_request(
            TransactionKey::server(&other_cseq),
            &invite,
            false,
            "",
            clock.now
        ),
        ServerDisposition::New(_)
    ));
    t.respond(id, 486, rsp(486), clock.now).unwrap();
    // The ACK carries the To tag of our 486, which the INVITE lacked.
    let mut ack_fields = fields(&ack, Some("old-branch"));
    ack_fields.to_tag = Some("our-tag");
    assert_eq!(
        t.on_request(
            TransactionKey::server(&ack_fields),
            &ack,
            false,
            "",
            clock.now
        ),
        ServerDisposition::AckForFinal(id)
    );
}

#[test]
fn ack_without_transaction_or_for_2xx_goes_to_the_tu() {
    let clock = Clock::new();
    let mut t = table();
    let (invite, ack) = (Method::Invite, Method::Ack);
    assert_eq!(
        t.on_request(key(&ack, "z9hG4bKnone"), &ack, false, "", clock.now),
        ServerDisposition::AckNoTransaction
    );
    let ServerDisposition::New(id) =
        t.on_request(key(&invite, "z9hG4bK4"), &invite, false, "", clock.now)
    else {
        panic!("expected a new transaction");
    };
    t.respond(id, 200, rsp(200), clock.now).unwrap();
    // RFC 6026 Accepted: an ACK on the INVITE's branch belongs to the TU; an INVITE
    // retransmission is absorbed rather than taken for a new call.
    assert_eq!(
        t.on_request(key(&ack, "z9hG4bK4"), &ack, false, "", clock.now),
        ServerDisposition::AckNoTransaction
    );
    assert_eq!(
        t.on_request(key(&invite, "z9hG4bK4"), &invite, false, "", clock.now),
        ServerDisposition::Retransmission(id)
    );
    assert_eq!(drain(&mut t), vec![(id, Output::Transmit(rsp(200)))]);
    assert_eq!(t.len(), 1);
}

#[test]
fn client_transactions_match_responses_and_count_strays() {
    let mut clock = Clock::new();
    let mut t = table();
    let invite = Method::Invite;
    let k = TransactionKey::client("z9hG4bKc1", &invite);
    let id = t
        .start_client(
            k.clone(),
            &invite,
            Bytes::from_static(b"INVITE"),
            false,
            "peer",
            clock.now,
        )
        .unwrap();
    assert_eq!(
        drain(&mut t),
        vec![(id, Output::Transmit(Bytes::from_static(b"INVITE")))]
    );
    assert!(!t.cancel_allowed(id));
    assert_eq!(t.on_response(&k, 180, clock.advance_ms(100)), Some(id));
    assert!(t.cancel_allowed(id));
    assert_eq!(
        t.on_response(
            &TransactionKey::client("z9hG4bKc1", &Method::Cancel),
            200,
            clock.now
        ),
        None
    );
    assert_eq!(t.stray_responses(), 1);
    assert_eq!(
        t.start_client(k.clone(), &invite, Bytes::new(), false, "", clock.now),
        Err(TxError::DuplicateKey { existing: id })
    );
    assert_eq!(
        t.start_client(k.clone(), &Method::Ack, Bytes::new(), false, "", clock.now),
        Err(TxError::AckIsNotATransaction)
    );
    assert!(matches!(
        t.respond(id, 200, rsp(200), clock.now),
        Err(TxError::WrongKind { .. })
    ));
    assert_eq!(t.on_response(&k, 486, clock.now), Some(id));
    t.set_ack(id, Bytes::from_static(b"ACK")).unwrap();
    assert_eq!(
        drain(&mut t),
        vec![
            (id, Output::Deliver { status: 180 }),
            (id, Output::Deliver { status: 486 }),
            (id, Output::NeedAck { status: 486 }),
            (id, Output::Transmit(Bytes::from_static(b"ACK"))),
        ]
    );
}

#[test]
fn transport_error_reaches_the_transaction_and_removes_it() {
    let clock = Clock::new();
    let mut t = table();
    let k = TransactionKey::client("z9hG4bKc2", &Method::Options);
    let id = t
        .start_client(k, &Method::Options, Bytes::new(), true, "", clock.now)
        .unwrap();
    drain(&mut t);
    t.handle_transport_error(id, clock.now).unwrap();
    assert_eq!(
        drain(&mut t),
        vec![(id, Output::TransportError), (id, Output::Terminated)]
    );
    assert!(t.is_empty());
    assert_eq!(
        t.handle_transport_error(id, clock.now),
        Err(TxError::UnknownTransaction { id })
    );
}

#[test]
fn table_wakes_at_the_earliest_deadline_of_all_transactions() {
    let mut clock = Clock::new();
    let mut t = table();
    let options = Method::Options;
    // One UDP client (E at 500 ms, F at 32 s) and one TCP client (F only, at 32.1 s).
    let udp = t
        .start_client(
            TransactionKey::client("z9hG4bKu", &options),
            &options,
            Bytes::from_static(b"U"),
            false,
            "",
            clock.now,
        )
        .unwrap();
    clock.advance_ms(100);
    let tcp = t
        .start_client(
            TransactionKey::client("z9hG4bKt", &options),
            &options,
            Bytes::from_static(b"T"),
            true,
            "",
            clock.now,
        )
        .unwrap();
    drain(&mut t);
    assert_eq!(t.poll_timeout(), Some(clock.at(500)));
    let timeline = run_timers(&mut t, &mut clock);
    let ends: Vec<_> = timeline
        .iter()
        .filter(|(_, (_, o))| *o == Output::Timeout)
        .map(|(at, (id, _))| (*at, *id))
        .collect();
    assert_eq!(ends, vec![(32_000, udp), (32_100, tcp)]);
    let udp_sends = timeline
        .iter()
        .filter(|(_, (id, o))| *id == udp && matches!(o, Output::Transmit(_)))
        .count();
    assert_eq!(udp_sends, 10);
    assert!(t.is_empty());
    assert_eq!(t.heap_len(), 0);
}

#[test]
fn spurious_timeout_is_noop() {
    let mut clock = Clock::new();
    let mut t = table();
    let options = Method::Options;
    t.start_client(
        TransactionKey::client("z9hG4bKs", &options),
        &options,
        Bytes::new(),
        false,
        "",
        clock.now,
    )
    .unwrap();
    drain(&mut t);
    let deadline = t.poll_timeout();
    t.handle_timeouts(clock.advance_ms(499));
    assert_eq!(drain(&mut t), vec![]);
    assert_eq!(t.poll_timeout(), deadline);
}

#[test]
fn stale_deadlines_do_not_pile_up() {
    let mut clock = Clock::new();
    let mut t = table();
    let invite = Method::Invite;
    // Each 1xx on a fresh INVITE client replaces its deadlines; the heap must not keep every
    // superseded one.
    for i in 0..1_000 {
        let k = TransactionKey::client(&format!("z9hG4bK{i}"), &invite);
        t.start_client(k.clone(), &invite, Bytes::new(), false, "", clock.now)
            .unwrap();
        t.on_response(&k, 200, clock.advance_ms(1));
        assert!(t.heap_len() <= 2 * t.len() + 65, "heap {}", t.heap_len());
    }
    drain(&mut t);
    // Timer M of the first 2xx: 64*T1 after it.
    assert_eq!(t.poll_timeout(), Some(clock.at(1 + 32_000)));
}

/// Two tables talking over a lossy, instantaneous "UDP" on one virtual clock
/// (quinn-proto's `Pair::drive`).
struct Pair {
    clock: Clock,
    uac: Table,
    uas: Table,
    invite_key: TransactionKey,
    server_invite: TransactionKey,
    server_ack: TransactionKey,
    /// Drop this many of the UAC's first INVITE transmissions and of the UAS's first finals.
    drop_invites: usize,
    drop_finals: usize,
    invites_seen_by_tu: usize,
    finals_sent: usize,
}

impl Pair {
    fn deliver(&mut self) -> bool {
        let mut moved = false;
        while let Some((id, out)) = self.uac.poll_output() {
            moved = true;
            match out {
                Output::Transmit(bytes) if bytes.starts_with(b"INVITE") => {
                    if self.drop_invites > 0 {
                        self.drop_invites -= 1;
                        continue;
                    }
                    let key = self.server_invite.clone();
                    let now = self.clock.now;
                    if let ServerDisposition::New(sid) =
                        self.uas.on_request(key, &Method::Invite, false, "", now)
                    {
                        self.invites_seen_by_tu += 1;
                        self.uas.respond(sid, 100, rsp(100), now).unwrap();
                        self.uas.respond(sid, 486, rsp(486), now).unwrap();
                    }
                }
                Output::Transmit(_) => {
                    let key = self.server_ack.clone();
                    let disposition =
                        self.uas
                            .on_request(key, &Method::Ack, false, "", self.clock.now);
                    assert!(matches!(disposition, ServerDisposition::AckForFinal(_)));
                }
                Output::NeedAck { .. } => self.uac.set_ack(id, Bytes::from_static(b"ACK")).unwrap(),
                _ => {}
            }
        }
        while let Some((_, out)) = self.uas.poll_output() {
            moved = true;
            if let Output::Transmit(bytes) = out {
                let status: u16 = std::str::from_utf8(&bytes[8..11]).unwrap().parse().unwrap();
                if status >= 300 {
                    self.finals_sent += 1;
                    if self.drop_finals > 0 {
                        self.drop_finals -= 1;
                        continue;
                    }
                }
                self.uac
                    .on_response(&self.invite_key, status, self.clock.now);
            }
        }
        moved
    }

    fn drive(&mut self) {
        for _ in 0..1_000 {
            if self.deliver() {
                continue;
            }
            let next = [self.uac.poll_timeout(), self.uas.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else { return };
            self.clock.now = next;
            self.uac.handle_timeout(next);
            self.uas.handle_timeout(next);
        }
        panic!("pair did not settle");
    }
}

#[test]
fn invite_rejected_over_lossy_udp_is_acked_and_both_sides_clean_up() {
    let clock = Clock::new();
    let branch = "z9hG4bKpair";
    let mut pair = Pair {
        clock,
        uac: table(),
        uas: table(),
        invite_key: TransactionKey::client(branch, &Method::Invite),
        server_invite: key(&Method::Invite, branch),
        server_ack: key(&Method::Ack, branch),
        drop_invites: 2,
        drop_finals: 2,
        invites_seen_by_tu: 0,
        finals_sent: 0,
    };
    let invite_key = pair.invite_key.clone();
    pair.uac
        .start_client(
            invite_key,
            &Method::Invite,
            Bytes::from_static(b"INVITE"),
            false,
            "",
            clock.now,
        )
        .unwrap();
    pair.drive();
    // The INVITE got through on the third try (at 1.5 s); the UAS's TU saw it once; the 486
    // was resent by timer G until one arrived and was ACKed; then D (32 s) and I (5 s) ran out.
    assert_eq!(pair.invites_seen_by_tu, 1);
    assert_eq!(pair.finals_sent, 3);
    assert!(pair.uac.is_empty() && pair.uas.is_empty());
    assert!(
        pair.clock.ms() >= 1_500 + 32_000,
        "ended at {}",
        pair.clock.ms()
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        StartClient {
            invite: bool,
            reliable: bool,
            branch: u8,
        },
        Request {
            method: u8,
            branch: u8,
            reliable: bool,
        },
        Response {
            invite: bool,
            branch: u8,
            status: u16,
        },
        Respond {
            pick: usize,
            status: u16,
        },
        TransportError {
            pick: usize,
        },
        Advance {
            ms: u64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        let status = prop::sample::select(vec![100u16, 180, 200, 202, 486, 603, 0, 900]);
        prop_oneof![
            (any::<bool>(), any::<bool>(), 0u8..4).prop_map(|(invite, reliable, branch)| {
                Op::StartClient {
                    invite,
                    reliable,
                    branch,
                }
            }),
            (0u8..4, 0u8..4, any::<bool>()).prop_map(|(method, branch, reliable)| Op::Request {
                method,
                branch,
                reliable
            }),
            (any::<bool>(), 0u8..4, status.clone()).prop_map(|(invite, branch, status)| {
                Op::Response {
                    invite,
                    branch,
                    status,
                }
            }),
            (any::<usize>(), status).prop_map(|(pick, status)| Op::Respond { pick, status }),
            any::<usize>().prop_map(|pick| Op::TransportError { pick }),
            (0u64..40_000).prop_map(|ms| Op::Advance { ms }),
        ]
    }

    fn ids(t: &Table) -> Vec<TxId> {
        t.entries
            .iter()
            .map(|(slot, e)| TxId {
                slot,
                generation: e.generation,
            })
            .collect()
    }

    /// The heap's answer must equal a scan of every machine, and indexes must point at live
    /// entries of the right side.
    fn check_invariants(t: &Table) {
        let scanned = t
            .entries
            .iter()
            .filter_map(|(_, e)| e.machine.poll_timeout())
            .min();
        assert_eq!(t.poll_timeout(), scanned);
        for (key, id) in &t.servers {
            let entry = t.live(*id).expect("server index points at a live entry");
            assert!(!entry.machine.is_client());
            assert_eq!(&entry.key, key);
        }
        for id in t.clients.values() {
            assert!(
                t.live(*id)
                    .expect("client index is live")
                    .machine
                    .is_client()
            );
        }
        assert!(t.heap_len() <= 2 * t.len() + 65);
    }

    proptest! {
        #[test]
        fn random_traffic_keeps_the_deadline_heap_exact_and_never_panics(
            ops in prop::collection::vec(op(), 1..120)
        ) {
            let mut clock = Clock::new();
            let mut t = table();
            let methods = [Method::Invite, Method::Ack, Method::Bye, Method::Cancel];
            for op in ops {
                match op {
                    Op::StartClient { invite, reliable, branch } => {
                        let m = if invite { Method::Invite } else { Method::Options };
                        let k = TransactionKey::client(&format!("z9hG4bK{branch}"), &m);
                        let _ = t.start_client(k, &m, Bytes::new(), reliable, "", clock.now);
                    }
                    Op::Request { method, branch, reliable } => {
                        let m = &methods[usize::from(method)];
                        let k = key(m, &format!("z9hG4bK{branch}"));
                        t.on_request(k, m, reliable, "", clock.now);
                    }
                    Op::Response { invite, branch, status } => {
                        let m = if invite { Method::Invite } else { Method::Options };
                        let k = TransactionKey::client(&format!("z9hG4bK{branch}"), &m);
                        t.on_response(&k, status, clock.now);
                    }
                    Op::Respond { pick, status } => {
                        let all = ids(&t);
                        if !all.is_empty() {
                            let _ = t.respond(all[pick % all.len()], status, rsp(status), clock.now);
                        }
                    }
                    Op::TransportError { pick } => {
                        let all = ids(&t);
                        if !all.is_empty() {
                            t.handle_transport_error(all[pick % all.len()], clock.now).unwrap();
                        }
                    }
                    Op::Advance { ms } => {
                        t.handle_timeouts(clock.advance_ms(ms));
                    }
                }
                while let Some((id, out)) = t.poll_output() {
                    if let Output::NeedAck { .. } = out {
                        t.set_ack(id, Bytes::from_static(b"ACK")).unwrap();
                    }
                }
                check_invariants(&t);
            }
            // With no more input every transaction that has a timer ends; what is left waits on
            // the TU (a server without a final, an INVITE client in Proceeding).
            run_timers(&mut t, &mut clock);
            for (_, e) in &t.entries {
                prop_assert!(e.machine.poll_timeout().is_none());
            }
            check_invariants(&t);
        }
    }
}
