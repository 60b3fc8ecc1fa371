//! The VM stage of `cargo xtask test`: one queue of boots per host CPU, each queue on a thread
//! of its own, since TCG runs a guest on one thread. A queue boots its own lanes one after
//! another, then its shard of a suite split among the queues by test count, so that the
//! queues end about together rather than one CPU idling while the other runs the whole suite.

use std::thread;

use anyhow::{Result, anyhow, bail};

use super::{Boot, Booted, Options, Share, artifacts, selected, shard};

/// The `queues` at once, each its lanes then its shard of the tests `split` selects. The consoles
/// go to their logs only; the summaries follow one another once every queue has ended, and the
/// stage fails if any boot did, naming each.
pub fn queues_side_by_side(queues: &[Vec<Options>], split: &Options) -> Result<()> {
    let artifacts = artifacts::build()?;
    let planned = plan(queues, split, &artifacts)?;
    let ended = run(&planned);
    let mut failed = Vec::new();
    for (boot, booted) in planned.iter().flatten().zip(ended.into_iter().flatten()) {
        if let Err(error) = booted.and_then(Booted::finish) {
            eprintln!("error: the {} boot: {error:#}", boot.name);
            failed.push(boot.name.as_str());
        }
    }
    if !failed.is_empty() {
        bail!("the VM boots failed: {}", failed.join(", "));
    }
    Ok(())
}

/// Every queue's boots, prepared (each shard in a directory of its own: two guests of one kernel
/// may run at once), and printed with the queue's test count, so a CI log shows the balance.
fn plan<'a>(
    queues: &'a [Vec<Options>],
    split: &'a Options,
    artifacts: &artifacts::Artifacts,
) -> Result<Vec<Vec<Boot<'a>>>> {
    let mut planned = Vec::new();
    let mut loads = Vec::new();
    for lanes in queues {
        let mut boots = Vec::new();
        let mut load = 0;
        for options in lanes {
            let tests = selected(options, artifacts)?;
            for binary in &tests {
                load += binary.tests_run()?;
            }
            boots.push(Boot::tests(options, artifacts, tests, Share::All, false)?);
        }
        planned.push(boots);
        loads.push(load);
    }
    let suite = selected(split, artifacts)?;
    let weights = suite
        .iter()
        .map(|binary| Ok((binary.name.as_str(), binary.tests_run()?)))
        .collect::<Result<Vec<_>>>()?;
    let shares = shard::partition(&loads, &weights);
    for (number, (boots, share)) in planned.iter_mut().zip(shares).enumerate() {
        let load = loads[number] + share.iter().map(|&item| weights[item].1).sum::<usize>();
        let tests = share.into_iter().map(|item| suite[item].clone()).collect();
        let part = Share::Shard(number + 1, queues.len());
        boots.push(Boot::tests(split, artifacts, tests, part, false)?);
        let names: Vec<_> = boots.iter().map(|boot| boot.name.as_str()).collect();
        println!(
            "vmtest queue {}, {load} tests: {}",
            number + 1,
            names.join(", then ")
        );
    }
    Ok(planned)
}

/// Boots every queue, the queues at once; per queue, how each boot ended. A queue goes on
/// after a failed boot: the next boot's tests do not depend on it.
fn run(planned: &[Vec<Boot>]) -> Vec<Vec<Result<Booted>>> {
    thread::scope(|scope| {
        let running: Vec<_> = planned
            .iter()
            .map(|boots| scope.spawn(|| boots.iter().map(Boot::run).collect::<Vec<_>>()))
            .collect();
        running
            .into_iter()
            .zip(planned)
            .map(|(queue, boots)| {
                queue.join().unwrap_or_else(|_| {
                    let panicked = || Err(anyhow!("its queue's thread panicked"));
                    boots.iter().map(|_| panicked()).collect()
                })
            })
            .collect()
    })
}
