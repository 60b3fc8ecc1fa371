//! Waiting for a process or the kernel to get somewhere, with errors that say what never came.

use std::time::Duration;

use anyhow::{Result, bail};
use escape_detector_e2e::poll;

/// Polls `check` until it answers true, or fails: with `check`'s own error, or after `limit`
/// naming `what` was awaited.
pub fn until(what: &str, limit: Duration, mut check: impl FnMut() -> Result<bool>) -> Result<()> {
    let mut failure = None;
    let done = poll::eventually(limit, || match check() {
        Ok(done) => done,
        Err(error) => {
            failure = Some(error);
            true
        }
    });
    match failure {
        Some(error) => Err(error),
        None if done => Ok(()),
        None => bail!("{what}: still not after {limit:?}"),
    }
}
