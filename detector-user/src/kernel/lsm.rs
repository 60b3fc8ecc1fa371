//! Whether BPF LSM programs run on this kernel. A kernel built with the BPF LSM but booted
//! without `bpf` in its `lsm=` list (Debian's default) still loads and attaches LSM programs, and
//! never calls them: a sensor on them would look attached and see nothing.

const ACTIVE_LSMS: &str = "/sys/kernel/security/lsm";

/// The active LSMs when `bpf` is among them; otherwise why BPF LSM programs would not run.
pub fn bpf_active() -> Result<String, String> {
    let list = std::fs::read_to_string(ACTIVE_LSMS)
        .map_err(|e| format!("{ACTIVE_LSMS}: {e}"))?
        .trim()
        .to_owned();
    if lists_bpf(&list) {
        Ok(list)
    } else {
        Err(format!(
            "the BPF LSM is not active (booted with lsm={list}; it needs bpf in the list)"
        ))
    }
}

fn lists_bpf(list: &str) -> bool {
    list.split(',').any(|lsm| lsm.trim() == "bpf")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_bpf_only_as_a_whole_entry() {
        assert!(lists_bpf("lockdown,capability,bpf"));
        assert!(lists_bpf("bpf"));
        assert!(!lists_bpf("lockdown,capability,yama,apparmor"));
        assert!(!lists_bpf("lockdown,bpfilter"));
        assert!(!lists_bpf(""));
    }
}
