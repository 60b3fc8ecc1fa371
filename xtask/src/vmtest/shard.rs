//! Sharing a suite out among the VM stage's queues so that they end about together. TCG runs a
//! guest on one host thread and a test costs about the same guest time on either kernel (11 to
//! 12 s), so a queue's time follows the number of tests it runs.

/// Which queue runs each item (a test binary and the number of tests it runs), given the tests
/// the queues run already (`loads`): per queue, the items' indexes in ascending order. Greedy
/// longest-first: the heaviest item goes first, each to the least loaded queue, so no queue that
/// got an item ends more than one item's weight after another. Ties go by name, then to the
/// first queue, so the split never depends on the order cargo listed the binaries in.
pub fn partition(loads: &[usize], items: &[(&str, usize)]) -> Vec<Vec<usize>> {
    let mut loads = loads.to_vec();
    let mut shares = vec![Vec::new(); loads.len()];
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| {
        let ((a_name, a_weight), (b_name, b_weight)) = (items[a], items[b]);
        b_weight.cmp(&a_weight).then(a_name.cmp(b_name))
    });
    for item in order {
        let lightest = (0..loads.len())
            .min_by_key(|&queue| loads[queue])
            .expect("a partition needs a queue");
        loads[lightest] += items[item].1;
        shares[lightest].push(item);
    }
    for share in &mut shares {
        share.sort_unstable();
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names each queue got.
    fn named<'a>(items: &[(&'a str, usize)], shares: &[Vec<usize>]) -> Vec<Vec<&'a str>> {
        shares
            .iter()
            .map(|share| {
                let mut names: Vec<_> = share.iter().map(|&item| items[item].0).collect();
                names.sort_unstable();
                names
            })
            .collect()
    }

    fn final_loads(loads: &[usize], items: &[(&str, usize)], shares: &[Vec<usize>]) -> Vec<usize> {
        loads
            .iter()
            .zip(shares)
            .map(|(load, share)| load + share.iter().map(|&item| items[item].1).sum::<usize>())
            .collect()
    }

    /// Pseudo-random suites, the same every run.
    fn suites() -> impl Iterator<Item = Vec<(String, usize)>> {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |below: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below) as usize
        };
        (0..200).map(move |_| {
            let binaries = next(40);
            (0..binaries)
                .map(|binary| (format!("binary{binary}"), 1 + next(15)))
                .collect()
        })
    }

    #[test]
    fn every_item_goes_to_exactly_one_queue() {
        for suite in suites() {
            let items: Vec<(&str, usize)> = suite.iter().map(|(n, w)| (n.as_str(), *w)).collect();
            let shares = partition(&[0, 27], &items);
            let mut given: Vec<usize> = shares.concat();
            given.sort_unstable();
            assert_eq!(given, (0..items.len()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn queues_end_within_the_heaviest_item_of_each_other() {
        for suite in suites() {
            let items: Vec<(&str, usize)> = suite.iter().map(|(n, w)| (n.as_str(), *w)).collect();
            for loads in [[0, 0], [0, 27], [10, 0]] {
                let ended = final_loads(&loads, &items, &partition(&loads, &items));
                let total: usize =
                    loads.iter().sum::<usize>() + items.iter().map(|i| i.1).sum::<usize>();
                let heaviest = items.iter().map(|item| item.1).max().unwrap_or(0);
                // A queue ahead at the start may stay ahead, by no more than it started.
                let allowed = heaviest.max(loads[0].abs_diff(loads[1]));
                assert!(
                    ended[0].abs_diff(ended[1]) <= allowed,
                    "{loads:?} {items:?}: {ended:?}"
                );
                assert_eq!(ended.iter().sum::<usize>(), total);
            }
        }
    }

    #[test]
    fn the_loaded_queue_gets_less() {
        let items = [("a", 5), ("b", 5), ("c", 5), ("d", 5)];
        let shares = partition(&[0, 10], &items);
        assert_eq!(final_loads(&[0, 10], &items, &shares), [15, 15]);
        // a, b, then c on the tie to the first queue; d to the second.
        assert_eq!(named(&items, &shares), [vec!["a", "b", "c"], vec!["d"]]);
    }

    #[test]
    fn the_split_does_not_depend_on_the_input_order() {
        let items = [("d", 2), ("a", 3), ("c", 2), ("b", 3), ("e", 1), ("f", 7)];
        let expected = named(&items, &partition(&[0, 4], &items));
        let mut reversed = items;
        reversed.reverse();
        assert_eq!(named(&reversed, &partition(&[0, 4], &reversed)), expected);
        // f to the first queue, a to the second (7 each), b to the first on the tie, c and d
        // to the second, e to the first: 11 each.
        assert_eq!(expected, [vec!["b", "e", "f"], vec!["a", "c", "d"]]);
    }

    #[test]
    fn each_share_keeps_the_input_order() {
        let items = [("a", 1), ("b", 9), ("c", 1), ("d", 1)];
        assert_eq!(partition(&[0, 0], &items), [vec![1], vec![0, 2, 3]]);
    }
}
