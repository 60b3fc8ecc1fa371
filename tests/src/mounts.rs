//! The host's mount table, as this process sees it in /proc/self/mountinfo.

use std::{
    fs,
    path::{Path, PathBuf},
};

pub struct Mount {
    pub mount_point: PathBuf,
    pub fstype: String,
}

/// Every mount in this process's mount namespace (the host's: tests run there).
pub fn host_mounts() -> Vec<Mount> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("reading mountinfo");
    mountinfo.lines().filter_map(parse_mountinfo_line).collect()
}

/// Mount points at or below `dir`: a directory with one of these must not be deleted
/// recursively, or the deletion would reach into the mounted filesystem.
pub fn mount_points_under(dir: &Path) -> Vec<PathBuf> {
    host_mounts()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// Lines of /proc/mounts that name an e2e test object (every temp dir and private cgroup
/// hierarchy of the harness contains "escdet"); none should outlive a test.
pub fn stray_mounts() -> Vec<String> {
    fs::read_to_string("/proc/mounts")
        .expect("reading /proc/mounts")
        .lines()
        .filter(|l| l.contains("escdet"))
        .map(str::to_owned)
        .collect()
}

/// `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS`
fn parse_mountinfo_line(line: &str) -> Option<Mount> {
    let (mount_part, fs_part) = line.split_once(" - ")?;
    let mount_point = mount_part.split(' ').nth(4)?;
    let fstype = fs_part.split(' ').next()?;
    Some(Mount {
        mount_point: PathBuf::from(unescape_octal(mount_point)),
        fstype: fstype.to_owned(),
    })
}

/// The kernel writes space, tab, newline and backslash in mount points as `\ooo`.
fn unescape_octal(field: &str) -> String {
    let mut out = Vec::with_capacity(field.len());
    let mut bytes = field.bytes();
    while let Some(b) = bytes.next() {
        if b == b'\\' {
            let digits: Vec<u8> = bytes.by_ref().take(3).collect();
            let value = digits.iter().fold(0u8, |acc, d| acc * 8 + (d - b'0'));
            out.push(value);
        } else {
            out.push(b);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mount_point_and_fstype_with_optional_fields() {
        let m = parse_mountinfo_line(
            "40 31 0:37 / /sys/fs/cgroup/with\\040space rw,relatime shared:5 - cgroup cgroup rw,name=systemd",
        )
        .unwrap();
        assert_eq!(m.mount_point, Path::new("/sys/fs/cgroup/with space"));
        assert_eq!(m.fstype, "cgroup");
    }
}
