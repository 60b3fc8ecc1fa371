//! The kernel programs' diagnostics (aya-log), off unless `kernel_log` names a level. The level
//! is written into the object before load as a read-only global, so the verifier knows every
//! log call below it is never taken and removes it: with logging off, the programs the kernel
//! runs hold no logging code at all.

use aya::Ebpf;
use aya_log::{EbpfLogger, Level};
use tokio::io::{Interest, unix::AsyncFd};

use crate::config::LogLevel;

/// The log target prefix of every kernel record: aya-log names the eBPF crate's module.
pub const TARGET: &str = "detector_ebpf";

/// The programs' `AYA_LOG_LEVEL`: records of this level and more severe ones are sent; 0, below
/// every level, sends none.
pub fn level(setting: Option<LogLevel>) -> u8 {
    let level = match setting {
        None => return 0,
        Some(LogLevel::Error) => Level::Error,
        Some(LogLevel::Warn) => Level::Warn,
        Some(LogLevel::Info) => Level::Info,
        Some(LogLevel::Debug) => Level::Debug,
        Some(LogLevel::Trace) => Level::Trace,
    };
    level as u8
}

/// Writes the programs' records to the agent's log, from a task of its own. Records the log's
/// ring buffer has no room for are lost: they are diagnostics; every lost event is counted
/// elsewhere.
pub fn forward(ebpf: &mut Ebpf) -> anyhow::Result<()> {
    let logger = EbpfLogger::init(ebpf)?;
    // SAFETY: the logger owns its ring buffer's fd, which stays open and the same for as long
    // as the AsyncFd owns the logger.
    let mut records = unsafe { AsyncFd::register_with_interest(logger, Interest::READABLE) }?;
    tokio::spawn(async move {
        while let Ok(mut ready) = records.readable_mut().await {
            ready.get_inner_mut().flush();
            ready.clear_ready();
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_is_below_every_level_and_levels_keep_their_order() {
        assert_eq!(level(None), 0);
        let levels = LogLevel::ALL.map(|l| level(Some(l)));
        assert!(levels.windows(2).all(|w| 0 < w[0] && w[0] < w[1]));
    }
}
