//! Random identifiers, so that concurrent runs and leftovers of earlier runs never collide.

use std::{fs::File, io::Read};

/// `bytes` random bytes from the kernel, as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut buf))
        .expect("reading /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A container id as Docker and containerd make them: 64 lowercase hex digits.
pub fn container_id() -> String {
    random_hex(32)
}

/// A pod UID in the UUID form the kubelet uses in cgroup names.
pub fn pod_uid() -> String {
    let h = random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_are_64_lowercase_hex_and_differ() {
        let (a, b) = (container_id(), container_id());
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
        assert_ne!(a, b);
    }

    #[test]
    fn pod_uids_have_the_uuid_shape() {
        let groups: Vec<usize> = pod_uid().split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
    }
}
