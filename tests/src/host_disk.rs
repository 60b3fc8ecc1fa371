//! A disk of the host for a container to mount: a loop device over a small ext2 image.
//!
//! The host's real root disk is not used: on the development VMs nobody, not even host root, may
//! open it (EPERM), and mounting a disk that is in use, even read-only, is needlessly risky. For
//! the container the technique is the same: `mknod` a block device by number, then mount it.

use std::{
    fmt,
    fs::File,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::temp_dir::TempDir;

const IMAGE_BYTES: u64 = 8 << 20;

/// A block device number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockDevice {
    pub major: u32,
    pub minor: u32,
}

impl BlockDevice {
    pub fn dev_t(self) -> u64 {
        libc::makedev(self.major, self.minor)
    }
}

impl fmt::Display for BlockDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

pub struct HostDisk {
    loop_device: PathBuf,
    device: BlockDevice,
    // Dropped after the loop device is detached in `Drop::drop`.
    _image_dir: TempDir,
}

impl HostDisk {
    /// Formats an image and attaches it to a free loop device.
    pub fn attach() -> anyhow::Result<HostDisk> {
        let image_dir = TempDir::new("disk")?;
        let image = image_dir.path().join("disk.ext2");
        File::create(&image)?.set_len(IMAGE_BYTES)?;
        run(Command::new("mkfs.ext2").args(["-q", "-F"]).arg(&image))?;
        let loop_device = run(Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&image))?;
        let loop_device = PathBuf::from(loop_device.trim());
        let rdev = loop_device.metadata()?.rdev();
        Ok(HostDisk {
            device: BlockDevice {
                major: libc::major(rdev),
                minor: libc::minor(rdev),
            },
            loop_device,
            _image_dir: image_dir,
        })
    }

    pub fn device(&self) -> BlockDevice {
        self.device
    }

    pub fn path(&self) -> &Path {
        &self.loop_device
    }
}

impl Drop for HostDisk {
    fn drop(&mut self) {
        if let Err(e) = run(Command::new("losetup")
            .arg("--detach")
            .arg(&self.loop_device))
        {
            eprintln!("{e:#}");
        }
    }
}

fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}
