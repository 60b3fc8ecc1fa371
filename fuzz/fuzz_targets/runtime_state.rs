//! A container runtime's state file under /run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| detector_user::fuzz::runtime_state(data));
