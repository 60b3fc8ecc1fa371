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

use anyhow::{Context as _, Result, bail};

use crate::cmd;

const MEMORY_MIB: &str = "2048";
const CPUS: &str = "2";
/// panic=-1 turns a panic into a reboot, which -no-reboot turns into an exit,
/// and softlockup_panic=1 turns a stuck CPU into a panic: a hung guest fails at once, with the
/// stack on the console, instead of at the timeout. loglevel=5 shows warnings (stack dumps among
/// them) but not the routine boot messages.
const KERNEL_ARGS: &str = "console=ttyS0 panic=-1 softlockup_panic=1 loglevel=5";

pub struct Guest<'a> {
    pub kernel: &'a Path,
    pub initramfs: &'a Path,
    /// The kernel's `lsm=` list; `None` keeps the one it was built with.
    pub lsm: Option<&'a str>,
    /// For the environment of the guest's /init: the kernel passes it parameters it does not
    /// know (names without a dot).
    pub init_env: &'a [(&'a str, &'a str)],
    /// For the guest's /init, after `--` on the kernel command line.
    pub init_args: &'a [String],
    /// The console goes to stdout as it comes, besides the log (not when guests run side by
    /// side).
    pub echo: bool,
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
    // One host thread for both vCPUs: with multi-threaded TCG (QEMU 7.2), a vCPU entering a
    // syscall while the other patches a jump label in the syscall path (a tracepoint being
    // attached or detached) can spin there forever; the guest then dies of a soft lockup at
    // syscall_trace_enter, in 2 of 5 full runs and within 5 detector restarts under load.
    qemu.args(["-accel", "tcg,thread=single", "-cpu", "max"])
        .args(["-m", MEMORY_MIB, "-smp", CPUS])
        // The serial port on stdout, and nothing else: -nographic would also have SeaBIOS
        // write to it, starting with codes that clear the terminal.
        .args(["-display", "none", "-vga", "none", "-serial", "stdio"])
        .args(["-no-reboot", "-nic", "none"])
        .arg("-kernel")
        .arg(guest.kernel)
        .arg("-initrd")
        .arg(guest.initramfs)
        .arg("-append")
        .arg(kernel_command_line(guest)?)
        // Keys typed in the terminal must not reach the guest's console.
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
    let echo = guest.echo;
    let streamer = thread::spawn(move || stream(stdout, log_file, echo, &marker, started));

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

fn kernel_command_line(guest: &Guest) -> Result<String> {
    let mut line = KERNEL_ARGS.to_owned();
    if let Some(lsm) = guest.lsm {
        line.push_str(&format!(" lsm={lsm}"));
    }
    for (name, value) in guest.init_env {
        line.push_str(&format!(" {name}={value}"));
    }
    if !guest.init_args.is_empty() {
        line.push_str(" --");
    }
    for arg in guest.init_args {
        // The kernel splits its command line at spaces and gives quotes a meaning.
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == '"') {
            bail!("{arg:?} cannot be passed on the kernel command line");
        }
        line.push(' ');
        line.push_str(arg);
    }
    Ok(line)
}

/// Copies the console as it comes, chunk by chunk so that a line in progress shows at once.
fn stream(
    mut from: ChildStdout,
    mut log: File,
    echo: bool,
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
        if echo {
            let mut stdout = io::stdout().lock();
            stdout.write_all(&cleaned)?;
            stdout.flush()?;
        }
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

    fn guest<'a>(
        lsm: Option<&'a str>,
        init_env: &'a [(&'a str, &'a str)],
        init_args: &'a [String],
    ) -> Guest<'a> {
        Guest {
            kernel: Path::new("/k"),
            initramfs: Path::new("/i"),
            lsm,
            init_env,
            init_args,
            echo: false,
        }
    }

    #[test]
    fn passes_the_lsm_list_init_environment_then_arguments_after_a_double_dash() {
        assert_eq!(
            kernel_command_line(&guest(None, &[], &[])).unwrap(),
            KERNEL_ARGS
        );
        assert_eq!(
            kernel_command_line(&guest(
                Some("lockdown,bpf"),
                &[("vmtest_cgroups", "hybrid")],
                &["--exact".into(), "a_test".into()]
            ))
            .unwrap(),
            format!("{KERNEL_ARGS} lsm=lockdown,bpf vmtest_cgroups=hybrid -- --exact a_test")
        );
    }

    #[test]
    fn refuses_arguments_the_kernel_would_split() {
        for arg in ["two words", "\"quoted\"", ""] {
            let args = [arg.to_owned()];
            assert!(kernel_command_line(&guest(None, &[], &args)).is_err());
        }
    }
}
