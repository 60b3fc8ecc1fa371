//! bpftrace as a system under comparison: the hooks escape-detector attaches on this kernel,
//! each with a trivial body (count into a map), so that it shows what the hooks alone cost.

mod hooks;

use std::{fs, path::Path, process::Command, time::Duration};

use anyhow::{Context as _, Result};
use escape_detector_e2e::temp_dir::TempDir;

use super::{System, Watcher};
use crate::bench::{daemon::Daemon, wait};

/// bpftrace prints this on stderr once every probe is attached, when the variable is set (its
/// own runtime tests rely on it).
const ATTACHED: &str = "__BPFTRACE_NOTIFY_PROBES_ATTACHED";
/// Compiling the script with LLVM and loading it takes seconds; this only bounds a hang.
const READY_LIMIT: Duration = Duration::from_secs(60);

pub struct Bpftrace {
    /// Holds the script.
    dir: TempDir,
}

const SCRIPT: &str = "hooks.bt";

impl Bpftrace {
    pub fn new(detector: &Path) -> Result<Bpftrace> {
        let probes = hooks::bpftrace_probes(detector)?;
        let script = format!("{} {{ @hits = count(); }}\n", probes.join(",\n"));
        let dir = TempDir::new("bpftrace")?;
        fs::write(dir.path().join(SCRIPT), &script)?;
        println!("bpftrace script, on the hooks escape-detector uses here:\n{script}");
        Ok(Bpftrace { dir })
    }
}

impl System for Bpftrace {
    fn name(&self) -> &'static str {
        "bpftrace"
    }

    /// Its probes count every hit, whoever the process.
    fn sees_host_processes(&self) -> bool {
        true
    }

    fn start(&self) -> Result<Box<dyn Watcher>> {
        let mut daemon = Daemon::spawn(
            "bpftrace",
            Command::new("bpftrace")
                .env(ATTACHED, "1")
                .arg(self.dir.path().join(SCRIPT)),
            // bpftrace prints its maps when interrupted.
            libc::SIGINT,
        )?;
        wait::until("bpftrace attaching its probes", READY_LIMIT, || {
            daemon.ensure_running()?;
            Ok(daemon.stderr().contains(ATTACHED))
        })?;
        Ok(Box::new(RunningBpftrace { daemon }))
    }
}

struct RunningBpftrace {
    daemon: Daemon,
}

impl Watcher for RunningBpftrace {
    fn pid(&self) -> Option<u32> {
        Some(self.daemon.pid())
    }

    fn stop(mut self: Box<Self>) -> Result<Option<u64>> {
        self.daemon.stop()?;
        let printed = self.daemon.stdout();
        let hits = hits(&printed).with_context(|| {
            format!(
                "bpftrace printed no hit count:\n{printed}\n{}",
                self.daemon.stderr_tail()
            )
        })?;
        Ok(Some(hits))
    }
}

/// The count bpftrace prints at exit (`@hits: 1234`); none when no probe ever fired.
fn hits(printed: &str) -> Option<u64> {
    printed
        .lines()
        .find_map(|line| line.strip_prefix("@hits: "))
        .map_or(Some(0), |count| count.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_hit_count_printed_at_exit() {
        assert_eq!(hits("Attaching 3 probes...\n\n\n@hits: 6226\n"), Some(6226));
        assert_eq!(hits("Attaching 3 probes...\n"), Some(0));
        assert_eq!(hits("@hits: lots\n"), None);
    }
}
