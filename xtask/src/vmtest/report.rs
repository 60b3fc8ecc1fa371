//! What the guest's console says: the `VMTEST ...` lines init.sh prints, libtest's own lines
//! for each test, and the e2e harness's `SKIPPED: ` lines. Markers are searched anywhere in a
//! line, since a kernel message can land in front of one on the shared console.

use anyhow::{Result, bail};
use escape_detector_e2e::skip::MARKER as SKIPPED;

pub const BOOTED: &str = "VMTEST BOOTED: ";
const KERNEL: &str = "VMTEST KERNEL: ";
const LSM: &str = "VMTEST LSM: ";
const PROBE: &str = "VMTEST PROBE: exit ";
const RUNNING: &str = "VMTEST RUNNING: ";
const BINARY: &str = "VMTEST BINARY: ";
const RESULT: &str = "VMTEST RESULT: ";
const ABORTED: &str = "VMTEST ABORTED: ";
/// The kernel's own last word.
const PANIC: &str = "Kernel panic - not syncing: ";

#[derive(Debug, Default, PartialEq)]
pub struct Report {
    /// `uname -r` in the guest.
    pub kernel: Option<String>,
    /// The guest's active LSMs, from securityfs.
    pub lsm: Option<String>,
    pub probe_exit: Option<i32>,
    pub binaries: Vec<Binary>,
    /// The guest's own count of test binaries: (passed, failed).
    pub result: Option<(usize, usize)>,
    /// Why the guest gave up before running the tests.
    pub aborted: Option<String>,
    /// Why the guest's kernel panicked, if it did.
    pub panic: Option<String>,
}

#[derive(Debug, PartialEq)]
pub struct Binary {
    pub name: String,
    /// None while the binary had not finished when the console ended.
    pub exit: Option<i32>,
    pub seconds: Option<u64>,
    /// `test NAME ... RESULT` lines: (test, "ok" | "FAILED" | "ignored" | "skipped"). A test
    /// that said it skipped and then passed is "skipped".
    pub tests: Vec<(String, String)>,
    /// (test, why) of each `SKIPPED: TEST: WHY` line.
    pub skips: Vec<(String, String)>,
    /// A test whose outcome is still to come on a line of its own: with one test thread,
    /// libtest writes "test NAME ... " before the test runs, and a skip line lands after it.
    pending: Option<String>,
}

impl Binary {
    fn new(name: &str) -> Binary {
        Binary {
            name: name.to_owned(),
            exit: None,
            seconds: None,
            tests: Vec::new(),
            skips: Vec::new(),
            pending: None,
        }
    }

    /// A line printed while this binary ran.
    fn read_line(&mut self, line: &str) {
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

pub fn parse(console: &str) -> Report {
    let mut report = Report::default();
    for line in console.lines() {
        if let Some(kernel) = after(line, KERNEL) {
            report.kernel = Some(kernel.to_owned());
        } else if let Some(lsm) = after(line, LSM) {
            report.lsm = Some(lsm.to_owned());
        } else if let Some(exit) = after(line, PROBE) {
            report.probe_exit = exit.parse().ok();
        } else if let Some(name) = after(line, RUNNING) {
            report.binaries.push(Binary::new(name));
        } else if let Some(finished) = after(line, BINARY) {
            // "NAME exit STATUS after SECONDS s"
            let words: Vec<&str> = finished.split_whitespace().collect();
            if let (Some(binary), [name, "exit", status, "after", seconds, "s"]) =
                (report.binaries.last_mut(), words.as_slice())
                && binary.name == *name
            {
                binary.exit = status.parse().ok();
                binary.seconds = seconds.parse().ok();
            }
        } else if let Some(tally) = after(line, RESULT) {
            report.result = parse_tally(tally);
        } else if let Some(reason) = after(line, ABORTED) {
            report.aborted = Some(reason.to_owned());
        } else if let Some(reason) = after(line, PANIC) {
            report.panic.get_or_insert_with(|| reason.to_owned());
        } else if let Some(binary) = report.binaries.last_mut() {
            binary.read_line(line);
        }
    }
    report
}

impl Report {
    /// Ok only if the probe ran and every one of `expected` test binaries ran and passed.
    pub fn verdict(&self, expected: usize) -> Result<()> {
        if let Some(reason) = &self.aborted {
            bail!("the guest gave up: {reason}");
        }
        if let Some(reason) = &self.panic {
            let during = self
                .binaries
                .last()
                .filter(|binary| binary.exit.is_none())
                .map(|binary| format!(" during {}", binary.name))
                .unwrap_or_default();
            bail!("the guest's kernel panicked{during}: {reason}");
        }
        let Some((passed, failed)) = self.result else {
            bail!(
                "the guest never printed its result line (`{}`)",
                RESULT.trim()
            );
        };
        if self.probe_exit != Some(0) {
            bail!(
                "`escape-detector probe` failed in the guest (exit {:?})",
                self.probe_exit
            );
        }
        if failed > 0 {
            bail!(
                "{failed} of {} test binaries failed in the guest",
                passed + failed
            );
        }
        if passed != expected {
            bail!("the guest ran {passed} test binaries, {expected} were built");
        }
        Ok(())
    }
}

/// The rest of `line` after `marker`, wherever the marker starts.
fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker)
        .map(|start| line[start + marker.len()..].trim_end())
}

/// "N passed, M failed"
fn parse_tally(tally: &str) -> Option<(usize, usize)> {
    let (passed, failed) = tally.split_once(", ")?;
    Some((
        passed.strip_suffix(" passed")?.parse().ok()?,
        failed.strip_suffix(" failed")?.parse().ok()?,
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    const CONSOLE: &str = "\
[    0.000000] Linux version 6.1.0-56-cloud-amd64
VMTEST BOOTED: 2.91 s after the kernel started
VMTEST KERNEL: 6.1.0-56-cloud-amd64
VMTEST LSM: lockdown,capability,bpf
FEATURE   OK  NOTE
VMTEST PROBE: exit 0
VMTEST RUNNING: benign

running 2 tests
test an_ordinary_workload_is_silent ... ok
test nsenter_from_the_host_into_a_container_is_silent ... FAILED

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 9.1s

VMTEST BINARY: benign exit 101 after 12 s
VMTEST RUNNING: enforce

running 2 tests
test a_module_load_is_stopped ... SKIPPED: a_module_load_is_stopped: no module support
ok
test a_core_pattern_write_is_stopped ... [   33.1] a kernel message
ok

test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 9.1s

VMTEST BINARY: enforce exit 0 after 10 s
VMTEST RUNNING: lifecycle

running 1 test
test test_result_line_is_not_a_test ... ignored
[   40.1] loop: module loaded VMTEST BINARY: lifecycle exit 0 after 3 s
VMTEST RESULT: 2 passed, 1 failed
";

    #[test]
    fn reads_every_marker_and_test_line() {
        let report = parse(CONSOLE);
        assert_eq!(report.kernel.as_deref(), Some("6.1.0-56-cloud-amd64"));
        assert_eq!(report.lsm.as_deref(), Some("lockdown,capability,bpf"));
        assert_eq!(report.probe_exit, Some(0));
        assert_eq!(report.result, Some((2, 1)));
        assert_eq!(report.aborted, None);
        assert_eq!(
            report.binaries,
            [
                Binary {
                    name: "benign".into(),
                    exit: Some(101),
                    seconds: Some(12),
                    tests: vec![
                        ("an_ordinary_workload_is_silent".into(), "ok".into()),
                        (
                            "nsenter_from_the_host_into_a_container_is_silent".into(),
                            "FAILED".into()
                        ),
                    ],
                    skips: Vec::new(),
                    pending: None,
                },
                Binary {
                    name: "enforce".into(),
                    exit: Some(0),
                    seconds: Some(10),
                    tests: vec![
                        ("a_module_load_is_stopped".into(), "skipped".into()),
                        ("a_core_pattern_write_is_stopped".into(), "ok".into()),
                    ],
                    skips: vec![(
                        "a_module_load_is_stopped".into(),
                        "no module support".into()
                    )],
                    pending: None,
                },
                Binary {
                    name: "lifecycle".into(),
                    exit: Some(0),
                    seconds: Some(3),
                    tests: vec![("test_result_line_is_not_a_test".into(), "ignored".into())],
                    skips: Vec::new(),
                    pending: None,
                },
            ]
        );
    }

    #[test]
    fn passes_only_when_every_binary_ran_and_passed() {
        let all_passed = |passed| Report {
            probe_exit: Some(0),
            result: Some((passed, 0)),
            ..Report::default()
        };
        assert!(all_passed(6).verdict(6).is_ok());
        assert!(all_passed(5).verdict(6).is_err(), "a binary did not run");
        assert!(parse(CONSOLE).verdict(3).is_err(), "a binary failed");
        let probe_failed = Report {
            probe_exit: Some(1),
            ..all_passed(6)
        };
        assert!(probe_failed.verdict(6).is_err());
    }

    #[test]
    fn fails_without_a_result_line() {
        let cut_short = parse("VMTEST BOOTED: 3.0 s\nVMTEST RUNNING: harness\ntest a ... ok\n");
        assert_eq!(cut_short.binaries[0].exit, None);
        assert!(cut_short.verdict(1).is_err());
        let aborted = parse("VMTEST ABORTED: mounting cgroup2 at /sys/fs/cgroup\n");
        assert_eq!(
            aborted.aborted.as_deref(),
            Some("mounting cgroup2 at /sys/fs/cgroup")
        );
        assert!(aborted.verdict(0).is_err());
    }

    #[test]
    fn names_a_kernel_panic_and_the_binary_it_cut_short() {
        let panicked = parse(
            "VMTEST RUNNING: harness\n\
             test a ... [  208.6] watchdog: BUG: soft lockup - CPU#1 stuck for 23s!\n\
             [  208.6] Kernel panic - not syncing: softlockup: hung tasks\n",
        );
        assert_eq!(panicked.panic.as_deref(), Some("softlockup: hung tasks"));
        let error = panicked.verdict(1).unwrap_err().to_string();
        assert_eq!(
            error,
            "the guest's kernel panicked during harness: softlockup: hung tasks"
        );
    }

    #[test]
    fn reads_the_tally() {
        assert_eq!(parse_tally("12 passed, 0 failed"), Some((12, 0)));
        assert_eq!(parse_tally("12 passed"), None);
        assert_eq!(parse_tally("x passed, 0 failed"), None);
    }
}
