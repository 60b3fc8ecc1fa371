//! Running a check several times in a row, as flakes are hunted: stop at the first failing
//! round and show every round's time.

use std::time::Instant;

use anyhow::{Context as _, Result};

use crate::table::{self, seconds};

/// Runs `round` `count` times, stopping at the first failure; `what` names the check in the
/// output ("e2e", "vmtest 6.1"). One round prints nothing of its own.
pub fn in_a_row(count: u32, what: &str, mut round: impl FnMut() -> Result<()>) -> Result<()> {
    if count == 1 {
        return round();
    }
    let mut rows = Vec::new();
    for number in 1..=count {
        println!("\n--- {what} round {number}/{count}");
        let started = Instant::now();
        let result = round();
        let verdict = if result.is_ok() { "ok" } else { "FAILED" };
        rows.push(vec![
            number.to_string(),
            verdict.to_owned(),
            seconds(started.elapsed()),
        ]);
        if result.is_err() {
            table::print(&["round", "result", "time"], &rows);
            return result.with_context(|| {
                format!("{what} round {number} of {count} (the ones before passed)")
            });
        }
    }
    table::print(&["round", "result", "time"], &rows);
    println!("{what}: {count} rounds in a row passed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use anyhow::bail;

    use super::*;

    #[test]
    fn stops_at_the_first_failing_round_and_names_it() {
        let mut ran = 0;
        let error = in_a_row(5, "check", || {
            ran += 1;
            if ran == 3 {
                bail!("boom");
            }
            Ok(())
        })
        .unwrap_err();
        assert_eq!(ran, 3);
        assert_eq!(
            format!("{error:#}"),
            "check round 3 of 5 (the ones before passed): boom"
        );
    }

    #[test]
    fn runs_every_round_when_all_pass() {
        let mut ran = 0;
        in_a_row(4, "check", || {
            ran += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(ran, 4);
    }
}
