//! Scenarios a kernel (or machine) cannot perform are skipped out loud, never passed in silence.
//! libtest knows no outcome between ok and FAILED at run time, so a skipped test still returns
//! Ok, and says so past libtest's capture of `print!`: a `SKIPPED: TEST: REASON` line on the
//! console, which the VM lane's report (xtask/src/vmtest/report.rs) counts as a skip, not a pass.

use std::io::Write as _;

/// What starts the line; the VM lane's report searches for it.
pub const MARKER: &str = "SKIPPED: ";

/// Says that the running test, or the part of it `reason` names, is skipped and why. Returns
/// Ok, for `return skip::skipped("...")`.
pub fn skipped(reason: &str) -> anyhow::Result<()> {
    // libtest runs each test on a thread named after it.
    let line = skip_line(std::thread::current().name().unwrap_or("?"), reason);
    // Straight to the stream: libtest captures only what print! writes. With one test thread,
    // libtest has just written "test NAME ... " and writes the outcome on the next line.
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(line.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

fn skip_line(test: &str, reason: &str) -> String {
    // One line, whatever the reason holds: the report reads it line by line.
    let reason = reason.replace('\n', " ");
    format!("{MARKER}{test}: {reason}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_test_and_the_reason_on_one_line() {
        assert_eq!(
            skip_line("a_test", "no /dev/mem\non this kernel"),
            "SKIPPED: a_test: no /dev/mem on this kernel\n"
        );
    }

    #[test]
    fn names_the_running_test() {
        assert_eq!(
            std::thread::current().name(),
            Some("skip::tests::names_the_running_test"),
            "libtest names the test's thread after it"
        );
    }
}
