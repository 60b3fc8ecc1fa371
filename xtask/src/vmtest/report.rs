//! What the guest's console says: the `VMTEST ...` lines init.sh prints, and between a binary's
//! start and end what it printed (crate::testlog reads that). Markers are searched anywhere in a
//! line, since a kernel message can land in front of one on the shared console.

use anyhow::{Result, bail};

use crate::testlog::{Binary, after};

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

/// "N passed, M failed"
fn parse_tally(tally: &str) -> Option<(usize, usize)> {
    let (passed, failed) = tally.split_once(", ")?;
    Some((
        passed.strip_suffix(" passed")?.parse().ok()?,
        failed.strip_suffix(" failed")?.parse().ok()?,
    ))
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
        // (name, exit, seconds, (test, outcome) of each test)
        type Row<'a> = (&'a str, Option<i32>, Option<u64>, Vec<(&'a str, &'a str)>);
        let binaries: Vec<Row> = report
            .binaries
            .iter()
            .map(|b| {
                let tests = b.tests.iter().map(|(t, o)| (t.as_str(), o.as_str()));
                (b.name.as_str(), b.exit, b.seconds, tests.collect())
            })
            .collect();
        assert_eq!(
            binaries,
            [
                (
                    "benign",
                    Some(101),
                    Some(12),
                    vec![
                        ("an_ordinary_workload_is_silent", "ok"),
                        ("nsenter_from_the_host_into_a_container_is_silent", "FAILED"),
                    ]
                ),
                (
                    "enforce",
                    Some(0),
                    Some(10),
                    vec![
                        ("a_module_load_is_stopped", "skipped"),
                        ("a_core_pattern_write_is_stopped", "ok"),
                    ]
                ),
                (
                    "lifecycle",
                    Some(0),
                    Some(3),
                    vec![("test_result_line_is_not_a_test", "ignored")]
                ),
            ]
        );
        assert_eq!(
            report.binaries[1].skips,
            [(
                "a_module_load_is_stopped".into(),
                "no module support".into()
            )]
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
