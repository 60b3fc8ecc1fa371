//! open-by-handle: a container process called `open_by_handle_at`, which opens a file by its
//! inode on any filesystem the caller holds a descriptor of, past every path and mount: the
//! "shocker" escape reads the host's /etc/shadow through a bind-mounted /etc/hosts. No
//! container workload needs it (it takes CAP_DAC_READ_SEARCH, which runtimes drop), so every
//! call is reported, refused ones too.

use detector_common::OpenByHandleEvent;
use serde_json::json;

use super::{Finding, Repeat, RuleInfo, Severity, Subject, device_name, text};

pub const OPEN_BY_HANDLE: RuleInfo = RuleInfo {
    id: "open-by-handle",
    severity: Severity::High,
    mitre: &["T1611"],
    description: "calls open_by_handle_at (the \"shocker\" technique)",
};

pub fn open_by_handle(e: &OpenByHandleEvent, subject: &Subject) -> Option<Finding> {
    let (outcome, details) = if e.result >= 0 {
        let name = text(&e.name);
        (
            format!(
                "opened {name} (inode {} on device {})",
                e.file.ino,
                device_name(e.file.dev)
            ),
            json!({
                "result": "opened",
                "name": name,
                "inode": e.file.ino,
                "dev": device_name(e.file.dev),
            }),
        )
    } else {
        let error = nix::errno::Errno::from_raw((-e.result) as i32);
        (
            format!("was refused ({error})"),
            json!({ "result": "refused", "errno": -e.result }),
        )
    };
    Some(Finding {
        rule: &OPEN_BY_HANDLE,
        message: format!(
            "{} called open_by_handle_at and {outcome}",
            subject.describe()
        ),
        details,
        // Shocker tries inode after inode: the first call speaks for the process.
        repeat: Repeat::OncePerProcess(String::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        rules::test_support::{buf, header, subject},
        state::filesystems::Filesystems,
    };
    use detector_common::{EventKind, FileId};

    #[test]
    fn says_what_was_opened_or_why_not() {
        let fs = Filesystems::default();
        let opened = OpenByHandleEvent {
            header: header(EventKind::OpenByHandle),
            result: 3,
            file: FileId {
                dev: detector_common::kdev::join(8, 1),
                _pad: 0,
                ino: 1234,
            },
            name: buf("shadow"),
        };
        let f = open_by_handle(&opened, &subject(&fs)).unwrap();
        assert!(
            f.message
                .ends_with("opened shadow (inode 1234 on device 8:1)")
        );
        assert_eq!(f.details["result"], "opened");
        let refused = OpenByHandleEvent {
            result: -1,
            file: FileId::default(),
            name: buf(""),
            ..opened
        };
        let f = open_by_handle(&refused, &subject(&fs)).unwrap();
        assert_eq!(f.details["errno"], 1);
        assert!(
            f.message
                .ends_with("was refused (EPERM: Operation not permitted)")
        );
    }
}
