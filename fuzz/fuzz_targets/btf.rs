//! The kernel's BTF, and every lookup the agent makes in it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| detector_user::fuzz::btf(data));
