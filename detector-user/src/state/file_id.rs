//! Files as the kernel programs name them: device (in the kernel's internal encoding, not
//! `st_dev`'s) and inode.

use std::{os::unix::fs::MetadataExt, path::Path};

use detector_common::{FileId, kdev};
use nix::sys::stat::{major, minor};

/// The file `meta` describes.
pub fn of_metadata(meta: &std::fs::Metadata) -> FileId {
    FileId {
        dev: kdev::join(major(meta.dev()) as u32, minor(meta.dev()) as u32),
        _pad: 0,
        ino: meta.ino(),
    }
}

/// The file at `path`, links followed; `None` when it cannot be stat'ed.
pub fn of_path(path: &Path) -> Option<FileId> {
    std::fs::metadata(path).ok().map(|meta| of_metadata(&meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's own view: /proc/self/mountinfo prints `s_dev` as major:minor.
    #[test]
    fn encodes_devices_as_the_kernel_prints_them() {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let printed = mountinfo
            .lines()
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .find(|f| f[4] == "/proc")
            .map(|f| f[2].to_owned())
            .unwrap();
        let proc = of_path(Path::new("/proc")).unwrap();
        assert_eq!(crate::rules::device_name(proc.dev), printed);
    }
}
