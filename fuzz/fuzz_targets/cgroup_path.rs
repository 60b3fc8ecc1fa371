//! A cgroup path, as /proc/PID/cgroup and the kernel programs name it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| detector_user::fuzz::cgroup_path(data));
