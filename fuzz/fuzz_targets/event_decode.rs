//! A ring-buffer record, however the kernel side (or a bug in it) laid it out.
#![no_main]

use detector_common::user::Event;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = Event::decode(data) {
        let _ = (event.kind(), event.header().tgid, event.denied());
    }
});
