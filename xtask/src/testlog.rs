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
    /// (test, what it printed) of each failed test, from libtest's `---- NAME stdout ----`
    /// sections: a VM's console is gone with its run, so the summary keeps why.
    pub failures: Vec<(String, Vec<String>)>,
    /// Whether the lines now read belong to the last of `failures`.
    in_failure: bool,
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
            failures: Vec::new(),
            in_failure: false,
            pending: None,
        }
    }

    /// A line printed while this binary ran. A marker is searched anywhere in the line, since
    /// a kernel message can land in front of it on a shared console.
    pub fn read_line(&mut self, line: &str) {
        if let Some(test) = failure_header(line) {
            self.failures.push((test.to_owned(), Vec::new()));
            self.in_failure = true;
            return;
        }
        if self.in_failure {
            // libtest lists the failed tests' names after their sections, under "failures:".
            match self.failures.last_mut() {
                Some((_, output)) if line.trim_end() != "failures:" => {
                    output.push(line.to_owned());
                    return;
                }
                _ => self.in_failure = false,
            }
        }
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

/// `cargo test`'s output (its own lines and its test binaries'), binary by binary.
#[derive(Default)]
pub struct CargoTestRun {
    pub binaries: Vec<Binary>,
}

impl CargoTestRun {
    pub fn read_line(&mut self, line: &str) {
        // "     Running tests/harness.rs (target/release/deps/harness-1a2b)"
        if let Some(running) = line.trim_start().strip_prefix("Running ") {
            let source = running.split(" (").next().unwrap_or(running);
            let name = match source.strip_prefix("unittests ") {
                Some(source) => format!("unit tests of {source}"),
                None => source
                    .rsplit('/')
                    .next()
                    .unwrap_or(source)
                    .trim_end_matches(".rs")
                    .to_owned(),
            };
            self.binaries.push(Binary::new(&name));
            return;
        }
        let Some(binary) = self.binaries.last_mut() else {
            return;
        };
        // "test result: ok. 4 passed; 0 failed; ...; finished in 77.07s"
        if let Some(result) = line.strip_prefix("test result: ") {
            binary.exit = Some(if result.starts_with("ok.") { 0 } else { 101 });
            binary.seconds = result
                .rsplit_once("finished in ")
                .and_then(|(_, took)| took.trim_end().strip_suffix('s')?.parse::<f64>().ok())
                .map(|took| took.round() as u64);
        } else {
            binary.read_line(line);
        }
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

/// libtest's `---- NAME stdout ----`, which starts what a failed test printed.
fn failure_header(line: &str) -> Option<&str> {
    line.strip_prefix("---- ")?.strip_suffix(" stdout ----")
}

/// Lines of a failed test's output the summary repeats, and characters of each: a VM's
/// console is gone after the run, and CI keeps only part of a long log.
const FAILURE_LINES: usize = 60;
const FAILURE_LINE_CHARS: usize = 300;

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
    for binary in binaries {
        for (test, output) in &binary.failures {
            let shown = why_it_failed(output);
            println!(
                "\nwhy {}::{test} failed ({} of the {} lines it printed):",
                binary.name,
                shown.len(),
                output.len()
            );
            for line in shown {
                let cut = line
                    .char_indices()
                    .nth(FAILURE_LINE_CHARS)
                    .map_or(line.len(), |(i, _)| i);
                println!("    {}", &line[..cut]);
            }
        }
    }
}

/// The lines of a failed test's output that say why: from its error (`Error: ...` of a test
/// that returned one, or the panic), which comes last and is followed by the alerts and log it
/// carries, else the last lines.
fn why_it_failed(output: &[String]) -> &[String] {
    let error = output
        .iter()
        .rposition(|line| line.starts_with("Error: ") || line.contains("' panicked at "));
    match error {
        Some(start) => &output[start..output.len().min(start + FAILURE_LINES)],
        None => &output[output.len().saturating_sub(FAILURE_LINES)..],
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
    fn keeps_what_a_failed_test_printed() {
        let mut binary = Binary::new("evasion_acts");
        for line in "\
test a_bind_is_reported ... FAILED
test a_mount_is_reported ... ok

failures:

---- a_bind_is_reported stdout ----
sensitive-mount by Act: reported
Error: no sensitive-mount alert within 10 s

failures:
    a_bind_is_reported

test result: FAILED. 1 passed; 1 failed; 0 ignored; finished in 9.1s
"
        .lines()
        {
            binary.read_line(line);
        }
        assert_eq!(
            binary.failures,
            [(
                "a_bind_is_reported".to_owned(),
                vec![
                    "sensitive-mount by Act: reported".to_owned(),
                    "Error: no sensitive-mount alert within 10 s".to_owned(),
                    String::new(),
                ]
            )]
        );
        assert_eq!(binary.tests.len(), 2, "the names listed after are no tests");
        let why = why_it_failed(&binary.failures[0].1);
        assert_eq!(why[0], "Error: no sensitive-mount alert within 10 s");
        let no_error: Vec<String> = (0..100).map(|n| n.to_string()).collect();
        assert_eq!(why_it_failed(&no_error).len(), FAILURE_LINES);
        assert_eq!(why_it_failed(&no_error)[0], "40", "the last lines");
    }

    #[test]
    fn reads_cargo_test_binary_by_binary() {
        let mut run = CargoTestRun::default();
        for line in "\
   Compiling escape-detector-e2e v0.1.0 (/w/tests)
     Running unittests src/lib.rs (target/release/deps/escape_detector_e2e-1a)
running 1 test
test skip::tests::a ... ok
test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
     Running tests/kernel_module_load.rs (target/release/deps/kernel_module_load-2b)
running 1 test
test a_module_load_is_reported ... SKIPPED: a_module_load_is_reported: no module support
ok
test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 4.19s
     Running tests/lifecycle.rs (target/release/deps/lifecycle-3c)
running 1 test
test bad_flags_exit_2 ... FAILED
test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 16.76s
"
        .lines()
        {
            run.read_line(line);
        }
        let rows: Vec<(&str, Option<i32>, Option<u64>, usize)> = run
            .binaries
            .iter()
            .map(|b| (b.name.as_str(), b.exit, b.seconds, b.tests.len()))
            .collect();
        assert_eq!(
            rows,
            [
                ("unit tests of src/lib.rs", Some(0), Some(0), 1),
                ("kernel_module_load", Some(0), Some(4), 1),
                ("lifecycle", Some(101), Some(17), 1),
            ]
        );
        assert_eq!(run.binaries[1].tests[0].1, "skipped");
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
