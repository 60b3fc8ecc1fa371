//! Which filesystem types need a block device, from the kernel's own list
//! (`/proc/filesystems`: types without the `nodev` flag).

use std::collections::HashSet;

#[derive(Debug, Default, Clone)]
pub struct Filesystems {
    block_backed: HashSet<String>,
}

impl Filesystems {
    pub fn read() -> std::io::Result<Filesystems> {
        Ok(Filesystems::parse(&std::fs::read_to_string(
            "/proc/filesystems",
        )?))
    }

    pub fn parse(text: &str) -> Filesystems {
        let block_backed = text
            .lines()
            .filter(|line| !line.starts_with("nodev"))
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect();
        Filesystems { block_backed }
    }

    pub fn needs_block_device(&self, fstype: &str) -> bool {
        self.block_backed.contains(fstype)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodev_types_do_not_need_a_device() {
        let fs = Filesystems::parse("nodev\tsysfs\nnodev\tproc\n\text4\n\txfs\nnodev\toverlay\n");
        assert!(fs.needs_block_device("ext4"));
        assert!(fs.needs_block_device("xfs"));
        assert!(!fs.needs_block_device("proc"));
        assert!(!fs.needs_block_device("overlay"));
        assert!(!fs.needs_block_device("nosuchfs"));
    }
}
