//! What a run of test binaries prints, read back into a table: per binary, each libtest outcome
//! and each `SKIPPED: TEST: WHY` line of the e2e harness (tests/src/skip.rs), which turns the
//! test's "ok" into "skipped". Shared by the host e2e stage and the VM lane, so both end with the
//! same per-binary table.

use escape_detector_e2e::skip::MARKER as SKIPPED;

use crate::table;

#[derive(Debug, PartialEq)]
pub struct Binary {
    pub name: String,
    /// None while the binary had not finished when the output ended.
    pub exit: Option<i32>,
    pub seconds: Option<u64>,
    /// `test NAME ... RESULT` lines: (test, "ok" | "FAILED" | "ignored" | "skipped").
    pub tests: Vec<(String, String)>,
    /// (test, why) of each skip line.
    pub skips: Vec<(String, String)>,
    /// A test whose outcome is still to come on a line of its own: with one test thread,
    /// libtest writes "test NAME ... " before the test runs, and a skip line lands after it.
    pending: Option<String>,
}

impl Binary {
    pub fn new(name: &str) -> Binary {
        Binary {
            name: name.to_owned(),
            exit: None,
            seconds: None,
            tests: Vec::new(),
            skips: Vec::new(),
            pending: None,
        }
    }

    /// A line printed while this binary ran. A marker is searched anywhere in the line, since
    /// a kernel message can land in front of it on a shared console.
    pub fn read_line(&mut self, line: &str) {
        if let Some((test, why)) = after(line, SKIPPED).and_then(|skip| skip.split_once(": ")) {
            self.skips.push((test.to_owned(), why.to_owned()));
        }
        if let Some((name, rest)) = test_start(line) {
            match outcome(rest) {
                Some(outcome) => self.record(name, outcome),
                None => self.pending = Some(name.to_owned()),
            }
        } else if let Some(outcome) = outcome(line)
            && let Some(name) = self.pending.take()
        {
            self.record(&name, outcome);
        }
    }

    fn record(&mut self, name: &str, outcome: &str) {
        let skipped = self.skips.iter().any(|(test, _)| test == name);
        let outcome = if skipped && outcome == "ok" {
            "skipped"
        } else {
            outcome
        };
        self.tests.push((name.to_owned(), outcome.to_owned()));
        self.pending = None;
    }
}

/// The rest of `line` after `marker`, wherever the marker starts.
pub fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker)
        .map(|start| line[start + marker.len()..].trim_end())
}

/// libtest's "test NAME ... " and what follows it on the line.
fn test_start(line: &str) -> Option<(&str, &str)> {
    line.strip_prefix("test ")?.split_once(" ... ")
}

/// libtest's outcome of a test: ok, FAILED, ignored (or "ignored, WHY").
fn outcome(text: &str) -> Option<&str> {
    let text = text.trim();
    let known = ["ok", "FAILED", "ignored"].contains(&text) || text.starts_with("ignored,");
    known.then_some(text)
}

/// A row per binary and a total, then each skip's reason and each failed test.
pub fn print_table(binaries: &[Binary]) {
    let mut rows: Vec<Vec<String>> = binaries
        .iter()
        .map(|binary| {
            let result = match binary.exit {
                Some(0) => "ok".to_owned(),
                Some(code) => format!("FAILED (exit {code})"),
                None => "did not finish".to_owned(),
            };
            let time = binary
                .seconds
                .map_or(String::new(), |seconds| format!("{seconds} s"));
            vec![
                binary.name.clone(),
                result,
                count_tests(&binary.tests),
                time,
            ]
        })
        .collect();
    let every_test: Vec<(String, String)> = binaries
        .iter()
        .flat_map(|binary| binary.tests.iter().cloned())
        .collect();
    rows.push(vec![
        "all".to_owned(),
        String::new(),
        count_tests(&every_test),
        String::new(),
    ]);
    table::print(&["test binary", "result", "tests", "time"], &rows);
    for binary in binaries {
        for (test, why) in &binary.skips {
            println!("skipped: {}::{test}: {why}", binary.name);
        }
        for (test, _) in binary
            .tests
            .iter()
            .filter(|(_, outcome)| outcome == "FAILED")
        {
            println!("failed: {}::{test}", binary.name);
        }
    }
}

/// "12 ok, 1 FAILED, 3 skipped, 2 ignored", leaving out zero counts but for ok.
fn count_tests(tests: &[(String, String)]) -> String {
    let count = |wanted: &str| {
        tests
            .iter()
            .filter(|(_, outcome)| outcome.split(',').next() == Some(wanted))
            .count()
    };
    let mut counts = vec![format!("{} ok", count("ok"))];
    for outcome in ["FAILED", "skipped", "ignored"] {
        let n = count(outcome);
        if n > 0 {
            counts.push(format!("{n} {outcome}"));
        }
    }
    counts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_line_turns_the_test_s_ok_into_skipped() {
        let mut binary = Binary::new("enforce");
        for line in [
            "running 3 tests",
            "test a_module_load_is_stopped ... SKIPPED: a_module_load_is_stopped: no modules",
            "ok",
            "test a_core_pattern_write_is_stopped ... [   33.1] a kernel message",
            "ok",
            "test a_release_agent_write_is_stopped ... FAILED",
            "test result: FAILED. 2 passed; 1 failed; 0 ignored; finished in 9.1s",
        ] {
            binary.read_line(line);
        }
        assert_eq!(
            binary.tests,
            [
                ("a_module_load_is_stopped".into(), "skipped".into()),
                ("a_core_pattern_write_is_stopped".into(), "ok".into()),
                ("a_release_agent_write_is_stopped".into(), "FAILED".into()),
            ]
        );
        assert_eq!(
            binary.skips,
            [("a_module_load_is_stopped".into(), "no modules".into())]
        );
    }

    #[test]
    fn counts_outcomes_leaving_out_zeros() {
        let tests = |outcomes: &[&str]| -> Vec<(String, String)> {
            outcomes
                .iter()
                .map(|outcome| ("t".to_owned(), (*outcome).to_owned()))
                .collect()
        };
        assert_eq!(count_tests(&tests(&[])), "0 ok");
        assert_eq!(
            count_tests(&tests(&[
                "ok",
                "FAILED",
                "skipped",
                "ok",
                "ignored, needs a disk"
            ])),
            "2 ok, 1 FAILED, 1 skipped, 1 ignored"
        );
    }
}
