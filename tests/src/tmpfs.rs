//! A tmpfs of a few pages: a disk that fills up, for an output to run out of space on.

use std::{path::Path, process::Command};

use anyhow::{Context, ensure};

use crate::temp_dir::TempDir;

pub struct Tmpfs {
    // Unmounted in `Drop::drop`, before the directory is removed.
    dir: TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` (rounded up to pages by the kernel) on a new temp dir.
    pub fn mount(bytes: u64) -> anyhow::Result<Tmpfs> {
        let dir = TempDir::new("tmpfs")?;
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={bytes}"),
                "escdet-tmpfs",
            ])
            .arg(dir.path())
            .status()
            .context("running mount")?;
        ensure!(status.success(), "mounting a tmpfs: {status}");
        Ok(Tmpfs { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        match Command::new("umount").arg(self.dir.path()).status() {
            Ok(status) if status.success() => {}
            other => eprintln!("unmounting {}: {other:?}", self.dir.path().display()),
        }
    }
}
