//! A configuration file's text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| detector_user::fuzz::config_file(data));
