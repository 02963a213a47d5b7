//! RFC 2782 target selection: priority ascending, weighted random within a priority.
//!
//! hickory returns SRV answers in the order the server sent them; the ordering
//! below is the client's job (RFC 2782, "Usage rules").

use rand::Rng;

/// One SRV answer, reduced to what the ordering and the address step need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SrvEntry {
    pub(crate) priority: u16,
    pub(crate) weight: u16,
    pub(crate) port: u16,
    /// Target host name, fully qualified.
    pub(crate) target: String,
}

/// Orders `entries` in the sequence a client should try them.
///
/// RFC 2782: "A client MUST attempt to contact the target host with the
/// lowest-numbered priority it can reach; target hosts with the same priority
/// SHOULD be tried in an order defined by the weight field."
pub(crate) fn order_srv<R: Rng + ?Sized>(mut entries: Vec<SrvEntry>, rng: &mut R) -> Vec<SrvEntry> {
    // Stable sort keeps the server's order among equal priorities, so the only
    // source of variation below is the RNG.
    entries.sort_by_key(|e| e.priority);
    let mut ordered = Vec::with_capacity(entries.len());
    let mut rest = entries.as_slice();
    while let Some(first) = rest.first() {
        let len = rest
            .iter()
            .take_while(|e| e.priority == first.priority)
            .count();
        let (group, tail) = rest.split_at(len);
        order_by_weight(group.to_vec(), rng, &mut ordered);
        rest = tail;
    }
    ordered
}

/// The weighted selection of RFC 2782 within one priority: put the zero weights
/// first, draw a number in `[0, sum]`, take the first entry whose running sum
/// reaches it, repeat with the remainder. Zero-weight entries thus get "a very
/// small chance of being selected" while heavier entries are picked in
/// proportion to their weight.
fn order_by_weight<R: Rng + ?Sized>(
    mut group: Vec<SrvEntry>,
    rng: &mut R,
    out: &mut Vec<SrvEntry>,
) {
    group.sort_by_key(|e| e.weight != 0);
    while !group.is_empty() {
        let total: u32 = group.iter().map(|e| u32::from(e.weight)).sum();
        let pick = rng.random_range(0..=total);
        let mut running = 0u32;
        let mut chosen = group.len() - 1;
        for (i, e) in group.iter().enumerate() {
            running += u32::from(e.weight);
            if running >= pick {
                chosen = i;
                break;
            }
        }
        out.push(group.remove(chosen));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn entry(priority: u16, weight: u16, target: &str) -> SrvEntry {
        SrvEntry {
            priority,
            weight,
            port: 5060,
            target: target.to_owned(),
        }
    }

    #[test]
    fn lower_priority_always_comes_first() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..100 {
            let ordered = order_srv(
                vec![
                    entry(20, 100, "c"),
                    entry(10, 1, "a"),
                    entry(30, 0, "d"),
                    entry(10, 1, "b"),
                ],
                &mut rng,
            );
            let prio: Vec<u16> = ordered.iter().map(|e| e.priority).collect();
            assert_eq!(prio, [10, 10, 20, 30]);
            assert_eq!(ordered[2].target, "c");
            assert_eq!(ordered[3].target, "d");
        }
    }

    #[test]
    fn first_pick_follows_weights_within_a_priority() {
        // Weights 60/30/10: the first choice should land near 60 %, 30 %, 10 %.
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let mut first = [0u32; 3];
        const ROUNDS: u32 = 20_000;
        for _ in 0..ROUNDS {
            let ordered = order_srv(
                vec![entry(1, 10, "c"), entry(1, 60, "a"), entry(1, 30, "b")],
                &mut rng,
            );
            assert_eq!(ordered.len(), 3);
            let idx = match ordered[0].target.as_str() {
                "a" => 0,
                "b" => 1,
                _ => 2,
            };
            first[idx] += 1;
        }
        let share = |n: u32| f64::from(n) / f64::from(ROUNDS);
        // 20 000 draws: the standard error of a 0.6 share is ~0.0035, so a
        // 0.02 band is over 5 sigma wide yet still rejects an unweighted pick.
        assert!((share(first[0]) - 0.6).abs() < 0.02, "{first:?}");
        assert!((share(first[1]) - 0.3).abs() < 0.02, "{first:?}");
        assert!((share(first[2]) - 0.1).abs() < 0.02, "{first:?}");
    }

    #[test]
    fn zero_weight_is_rarely_first_but_never_lost() {
        let mut rng = StdRng::seed_from_u64(42);
        let mut zero_first = 0u32;
        for _ in 0..10_000 {
            let ordered = order_srv(vec![entry(1, 0, "z"), entry(1, 100, "h")], &mut rng);
            assert_eq!(ordered.len(), 2);
            if ordered[0].target == "z" {
                zero_first += 1;
            }
        }
        // P(zero weight first) = 1/101 per draw: about 99 in 10 000.
        assert!(zero_first > 30 && zero_first < 200, "{zero_first}");
    }

    #[test]
    fn all_zero_weights_keep_server_order() {
        let mut rng = StdRng::seed_from_u64(1);
        let ordered = order_srv(
            vec![entry(5, 0, "x"), entry(5, 0, "y"), entry(5, 0, "z")],
            &mut rng,
        );
        let names: Vec<&str> = ordered.iter().map(|e| e.target.as_str()).collect();
        assert_eq!(names, ["x", "y", "z"]);
    }

    #[test]
    fn same_seed_gives_same_order() {
        let records = vec![entry(1, 5, "a"), entry(1, 5, "b"), entry(1, 5, "c")];
        let a = order_srv(records.clone(), &mut StdRng::seed_from_u64(9));
        let b = order_srv(records, &mut StdRng::seed_from_u64(9));
        assert_eq!(a, b);
    }
}
