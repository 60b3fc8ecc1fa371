//! Boots the guest under QEMU's TCG (KVM is present on the development VMs but does not boot
//! guests), streams its serial console to stdout and a log file, and stops it at a deadline.

use std::{
    fs::File,
    io::{self, Read as _, Write as _},
    path::Path,
    process::{ChildStdout, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};

use crate::cmd;

const MEMORY_MIB: &str = "2048";
const CPUS: &str = "2";
/// Only the BPF LSM matters to the detector; lockdown and capability are what Debian's kernel
/// keeps first anyway. panic=-1 turns a panic into a reboot, which -no-reboot turns into an exit.
/// quiet keeps the kernel's boot messages (all of them are in the log file) off the test output.
const KERNEL_ARGS: &str = "console=ttyS0 lsm=lockdown,capability,bpf panic=-1 quiet";

pub struct Guest<'a> {
    pub kernel: &'a Path,
    pub initramfs: &'a Path,
    /// For the guest's /init, after `--` on the kernel command line.
    pub init_args: &'a [String],
}

pub struct Console {
    /// Everything the guest printed, without carriage returns.
    pub text: String,
    /// From starting QEMU to the first line containing the boot marker.
    pub booted_after: Option<Duration>,
    pub ran_for: Duration,
    pub timed_out: bool,
}

/// Runs `guest` until it powers off or `timeout` passes, and returns its console. `boot_marker`
/// is the text whose first appearance marks the end of booting.
pub fn run(guest: &Guest, log: &Path, timeout: Duration, boot_marker: &str) -> Result<Console> {
    let log_file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut qemu = cmd::new("qemu-system-x86_64");
    qemu.args([
        "-accel", "tcg", "-cpu", "max", "-m", MEMORY_MIB, "-smp", CPUS,
    ])
    .args(["-nographic", "-no-reboot", "-nic", "none"])
    .arg("-kernel")
    .arg(guest.kernel)
    .arg("-initrd")
    .arg(guest.initramfs)
    .arg("-append")
    .arg(kernel_command_line(guest.init_args))
    // The guest reads nothing; a terminal's keys must not reach QEMU's monitor either.
    .stdin(Stdio::null())
    .stdout(Stdio::piped());
    let shown = cmd::display(&qemu);
    println!("$ {shown}");
    let started = Instant::now();
    let mut child = qemu
        .spawn()
        .with_context(|| format!("could not start `{shown}`"))?;
    let stdout = child.stdout.take().context("QEMU's stdout is not piped")?;
    let marker = boot_marker.to_owned();
    let streamer = thread::spawn(move || stream(stdout, log_file, &marker, started));

    let mut timed_out = false;
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if started.elapsed() > timeout {
            // Our own child, not yet reaped: its pid cannot name another process.
            child.kill().context("stopping QEMU")?;
            child.wait()?;
            timed_out = true;
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }
    let ran_for = started.elapsed();
    let (text, booted_after) = streamer
        .join()
        .map_err(|_| anyhow::anyhow!("the console reader panicked"))?
        .with_context(|| format!("copying the console to {}", log.display()))?;
    Ok(Console {
        text,
        booted_after,
        ran_for,
        timed_out,
    })
}

fn kernel_command_line(init_args: &[String]) -> String {
    if init_args.is_empty() {
        KERNEL_ARGS.to_owned()
    } else {
        format!("{KERNEL_ARGS} -- {}", init_args.join(" "))
    }
}

/// Copies the console as it comes, chunk by chunk so that a line in progress shows at once.
fn stream(
    mut from: ChildStdout,
    mut log: File,
    marker: &str,
    started: Instant,
) -> io::Result<(String, Option<Duration>)> {
    let mut text = Vec::new();
    let mut booted_after = None;
    // Where the search for the marker resumes: it may straddle two chunks.
    let mut unsearched = 0;
    let mut chunk = [0; 4096];
    loop {
        let read = from.read(&mut chunk)?;
        if read == 0 {
            break;
        }
        let cleaned: Vec<u8> = chunk[..read]
            .iter()
            .copied()
            .filter(|&b| b != b'\r')
            .collect();
        let mut stdout = io::stdout().lock();
        stdout.write_all(&cleaned)?;
        stdout.flush()?;
        log.write_all(&cleaned)?;
        text.extend_from_slice(&cleaned);
        if booted_after.is_none() {
            if contains(&text[unsearched..], marker.as_bytes()) {
                booted_after = Some(started.elapsed());
            }
            unsearched = text.len().saturating_sub(marker.len());
        }
    }
    Ok((String::from_utf8_lossy(&text).into_owned(), booted_after))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_init_arguments_after_a_double_dash() {
        assert_eq!(kernel_command_line(&[]), KERNEL_ARGS);
        assert_eq!(
            kernel_command_line(&["--exact".into(), "a_test".into()]),
            format!("{KERNEL_ARGS} -- --exact a_test")
        );
    }
}
