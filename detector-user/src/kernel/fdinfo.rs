//! The agent's own descriptors as the kernel describes them in `/proc/self/fdinfo`: a BPF map's
//! `map_id`, a link's `link_id`, a program's `prog_id` with its run counters. Reading one's own
//! descriptors needs no capability, where the kernel's by-id calls need CAP_SYS_ADMIN.

use std::{fs, io};

/// The text of every open descriptor's fdinfo; a descriptor closed meanwhile is left out.
pub fn own() -> io::Result<Vec<String>> {
    Ok(fs::read_dir("/proc/self/fdinfo")?
        .flatten()
        .filter_map(|entry| fs::read_to_string(entry.path()).ok())
        .collect())
}

/// The number an fdinfo gives after `key` (`map_id:`, `link_id:`, `run_cnt:`, ...).
pub fn field(fdinfo: &str, key: &str) -> Option<u64> {
    fdinfo
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|value| value.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_map_link_and_program_fdinfo() {
        let map = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1057\nmap_type:\t1\n\
                   key_size:\t8\nvalue_size:\t4\nmax_entries:\t65536\nmap_flags:\t0x0\n\
                   map_extra:\t0x0\nmemlock:\t524288\nmap_id:\t42\nfrozen:\t0\n";
        assert_eq!(field(map, "map_id:"), Some(42));
        assert_eq!(field(map, "link_id:"), None);
        let link = "pos:\t0\nflags:\t02000000\nlink_type:\ttracing\nlink_id:\t7\n\
                    prog_tag:\ta04f5eef06a7f555\nprog_id:\t31\n";
        assert_eq!(field(link, "link_id:"), Some(7));
        assert_eq!(field(link, "map_id:"), None);
        let program = "pos:\t0\nflags:\t02000002\nprog_type:\t26\nprog_jited:\t1\n\
                       prog_tag:\t1b2c3d4e5f607182\nmemlock:\t4096\nprog_id:\t31\n\
                       run_time_ns:\t123456\nrun_cnt:\t789\nrecursion_misses:\t0\n";
        assert_eq!(field(program, "prog_id:"), Some(31));
        assert_eq!(field(program, "run_time_ns:"), Some(123456));
        assert_eq!(field(program, "run_cnt:"), Some(789));
        assert_eq!(field("pos:\t0\nflags:\t02\n", "map_id:"), None);
    }
}
