//! A writer of cpio archives in the "newc" format, the one the kernel unpacks as an initramfs.
//!
//! Every entry is owned by root and dated 1970, so that an archive depends only on its contents.
//! The kernel creates no parent directories: callers add a directory before what it holds.

use std::io::{self, Write};

const MAGIC: &str = "070701";
const TRAILER: &str = "TRAILER!!!";

const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

pub struct Writer<W: Write> {
    out: W,
    next_inode: u32,
    written: u64,
}

/// What [`Writer::entry`] writes after the header and the name.
struct Entry<'a> {
    mode: u32,
    data: &'a [u8],
    rdev: (u32, u32),
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Writer<W> {
        Writer {
            out,
            // Inode 0 is the trailer's.
            next_inode: 1,
            written: 0,
        }
    }

    pub fn dir(&mut self, path: &str, permissions: u32) -> io::Result<()> {
        self.entry(path, S_IFDIR | permissions, &[], (0, 0))
    }

    pub fn file(&mut self, path: &str, permissions: u32, data: &[u8]) -> io::Result<()> {
        self.entry(path, S_IFREG | permissions, data, (0, 0))
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.entry(path, S_IFLNK | 0o777, target.as_bytes(), (0, 0))
    }

    pub fn char_device(
        &mut self,
        path: &str,
        permissions: u32,
        (major, minor): (u32, u32),
    ) -> io::Result<()> {
        self.entry(path, S_IFCHR | permissions, &[], (major, minor))
    }

    /// Writes the trailer and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_entry(
            TRAILER,
            0,
            &Entry {
                mode: 0,
                data: &[],
                rdev: (0, 0),
            },
        )?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn entry(&mut self, path: &str, mode: u32, data: &[u8], rdev: (u32, u32)) -> io::Result<()> {
        // Names in an initramfs are relative to its root.
        let name = path.trim_start_matches('/');
        if name.is_empty() || name == TRAILER {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{path:?} cannot be named in a cpio archive"),
            ));
        }
        let inode = self.next_inode;
        self.next_inode += 1;
        self.write_entry(name, inode, &Entry { mode, data, rdev })
    }

    fn write_entry(&mut self, name: &str, inode: u32, entry: &Entry) -> io::Result<()> {
        let name_size = name.len() + 1;
        let data_size = u32::try_from(entry.data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file larger than 4 GiB"))?;
        let is_dir = entry.mode & S_IFMT == S_IFDIR;
        let fields = [
            inode,
            entry.mode,
            0, // uid
            0, // gid
            if is_dir { 2 } else { 1 },
            0, // mtime
            data_size,
            0, // devmajor of the archive's own filesystem: meaningless here
            0, // devminor
            entry.rdev.0,
            entry.rdev.1,
            name_size as u32,
            0, // check: newc without CRC
        ];
        let mut header = String::with_capacity(110);
        header.push_str(MAGIC);
        for field in fields {
            header.push_str(&format!("{field:08x}"));
        }
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(entry.data)?;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Headers and data start on 4-byte boundaries.
    fn pad(&mut self) -> io::Result<()> {
        let padding = (4 - self.written % 4) % 4;
        self.put(&[0; 3][..padding as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header field (0 = magic aside, the inode is field 0) of the entry at `at`.
    fn field(archive: &[u8], at: usize, index: usize) -> u32 {
        let start = at + 6 + index * 8;
        let hex = std::str::from_utf8(&archive[start..start + 8]).unwrap();
        u32::from_str_radix(hex, 16).unwrap()
    }

    /// (name, mode, data, offset of the next entry) of the entry at `at`.
    fn read_entry(archive: &[u8], at: usize) -> (String, u32, Vec<u8>, usize) {
        assert_eq!(&archive[at..at + 6], MAGIC.as_bytes());
        let name_size = field(archive, at, 11) as usize;
        let data_size = field(archive, at, 6) as usize;
        let name_start = at + 110;
        let name = String::from_utf8(archive[name_start..name_start + name_size - 1].to_vec());
        assert_eq!(
            archive[name_start + name_size - 1],
            0,
            "name not NUL-terminated"
        );
        let data_start = (name_start + name_size).next_multiple_of(4);
        let data = archive[data_start..data_start + data_size].to_vec();
        let next = (data_start + data_size).next_multiple_of(4);
        (name.unwrap(), field(archive, at, 1), data, next)
    }

    #[test]
    fn writes_newc_entries_aligned_and_terminated() {
        let mut writer = Writer::new(Vec::new());
        writer.dir("/bin", 0o755).unwrap();
        writer.file("/bin/hello", 0o755, b"#!/bin/sh\n").unwrap();
        writer.symlink("/bin/sh", "busybox").unwrap();
        writer.char_device("/dev/console", 0o600, (5, 1)).unwrap();
        let archive = writer.finish().unwrap();
        assert_eq!(archive.len() % 4, 0);

        let (name, mode, data, at) = read_entry(&archive, 0);
        assert_eq!((name.as_str(), mode, data.len()), ("bin", 0o040755, 0));
        assert_eq!(field(&archive, 0, 4), 2, "a directory has two links");
        let (name, mode, data, next) = read_entry(&archive, at);
        assert_eq!((name.as_str(), mode), ("bin/hello", 0o100755));
        assert_eq!(data, b"#!/bin/sh\n");
        assert_eq!(at % 4, 0);
        let at = next;
        let (name, mode, data, next) = read_entry(&archive, at);
        assert_eq!((name.as_str(), mode), ("bin/sh", 0o120777));
        assert_eq!(data, b"busybox");
        let at = next;
        let (name, mode, _, next) = read_entry(&archive, at);
        assert_eq!((name.as_str(), mode), ("dev/console", 0o020600));
        assert_eq!((field(&archive, at, 9), field(&archive, at, 10)), (5, 1));
        let at = next;
        let (name, _, _, end) = read_entry(&archive, at);
        assert_eq!(name, TRAILER);
        assert_eq!(end, archive.len());
    }

    #[test]
    fn numbers_inodes_from_one() {
        let mut writer = Writer::new(Vec::new());
        writer.file("a", 0o644, b"x").unwrap();
        writer.file("b", 0o644, b"").unwrap();
        let archive = writer.finish().unwrap();
        let (_, _, _, second) = read_entry(&archive, 0);
        assert_eq!(field(&archive, 0, 0), 1);
        assert_eq!(field(&archive, second, 0), 2);
    }

    #[test]
    fn refuses_names_the_kernel_would_misread() {
        let mut writer = Writer::new(Vec::new());
        assert!(writer.file("/", 0o644, b"").is_err());
        assert!(writer.file("TRAILER!!!", 0o644, b"").is_err());
    }
}
