//! The files the agent asked the kernel to watch (`WATCHED_FILES`).

use detector_common::{FileId, WatchedFile};

use crate::maps::WATCHED_FILES;

#[inline(always)]
pub fn watched_as(file: &FileId, what: WatchedFile) -> bool {
    // SAFETY: plain-data read out of the map.
    unsafe { WATCHED_FILES.get(file) }.is_some_and(|kind| *kind == what as u32)
}
