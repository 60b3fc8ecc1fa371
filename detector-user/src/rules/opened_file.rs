//! A file a container process opened, as the kernel identified it: superblock magic and
//! dentry names, never a path string.

use detector_common::{FileOpenEvent, magic};
use serde_json::{Value, json};

use super::text;

pub struct OpenedFile {
    pub magic: u64,
    /// The file's name first, then its ancestors' up to the filesystem root ("/").
    pub names: Vec<String>,
    pub ino: u64,
    pub dev: u32,
}

impl OpenedFile {
    pub fn from_event(e: &FileOpenEvent) -> OpenedFile {
        let names = e
            .names
            .iter()
            .map(|n| text(n))
            .take_while(|n| !n.is_empty())
            .collect();
        OpenedFile {
            magic: e.magic,
            names,
            ino: e.ino,
            dev: e.dev,
        }
    }

    pub fn name(&self) -> &str {
        self.names.first().map(String::as_str).unwrap_or("")
    }

    /// Whether the file lies below `dir`, a directory right under the filesystem's root.
    pub fn below_root_dir(&self, dir: &str) -> bool {
        self.names
            .windows(2)
            .any(|pair| pair[0] == dir && pair[1] == "/")
    }

    /// The path inside the filesystem, as far as the kernel's dentry names reach; for a node a
    /// syscall tracepoint saw created, the path its caller gave (no dentry name has a '/').
    pub fn path_in_filesystem(&self) -> String {
        if let [given] = self.names.as_slice()
            && given.len() > 1
            && given.contains('/')
        {
            return given.clone();
        }
        let below_root: Vec<&str> = self
            .names
            .iter()
            .rev()
            .filter(|n| n.as_str() != "/")
            .map(String::as_str)
            .collect();
        let reached_root = self.names.last().is_some_and(|n| n == "/");
        format!(
            "{}{}",
            if reached_root { "/" } else { ".../" },
            below_root.join("/")
        )
    }

    pub fn details(&self) -> Value {
        json!({
            "name": self.name(),
            "filesystem": magic::name(self.magic),
            "path_in_filesystem": self.path_in_filesystem(),
            "inode": self.ino,
            "dev": super::device_name(self.dev),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rules::test_support::{buf, header};
    use detector_common::{EventKind, NAME_DEPTH, NAME_LEN};

    /// An open of the file whose dentry names, leaf first, are `names`.
    pub fn open_event(magic: u64, names: &[&str]) -> FileOpenEvent {
        let mut all = [[0u8; NAME_LEN]; NAME_DEPTH];
        for (slot, name) in all.iter_mut().zip(names) {
            *slot = buf(name);
        }
        FileOpenEvent {
            header: header(EventKind::FileOpen),
            f_mode: detector_common::FMODE_WRITE,
            i_mode: 0o100644,
            dev: 22,
            fd: 3,
            magic,
            ino: 77,
            denied: 0,
            reason: detector_common::file_open_reason::SETTING,
            rdev: 0,
            mnt_ns: 0,
            names: all,
        }
    }

    #[test]
    fn describes_the_path_below_the_filesystem_root() {
        let f = OpenedFile::from_event(&open_event(
            magic::PROC_SUPER_MAGIC,
            &["core_pattern", "kernel", "sys", "/"],
        ));
        assert_eq!(f.path_in_filesystem(), "/sys/kernel/core_pattern");
        assert_eq!(f.details()["dev"], "0:22");
    }

    #[test]
    fn a_path_the_caller_gave_is_shown_as_given() {
        let f = OpenedFile::from_event(&open_event(0, &["/tmp/node"]));
        assert_eq!(f.path_in_filesystem(), "/tmp/node");
        let root = OpenedFile::from_event(&open_event(0, &["/"]));
        assert_eq!(root.path_in_filesystem(), "/");
    }

    #[test]
    fn a_chain_cut_short_is_marked_as_partial() {
        let f = OpenedFile::from_event(&open_event(magic::SYSFS_MAGIC, &["d", "c", "b", "a"]));
        assert_eq!(f.path_in_filesystem(), ".../a/b/c/d");
    }
}
