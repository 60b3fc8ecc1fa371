//! privileged-device-access: a container process opened a device that exposes the host's
//! disks or memory (a block device, `/dev/mem`, `/dev/kmem`, `/dev/port`, `/proc/kcore`), or
//! created a block device node. Known by the kernel's objects: the node's type and device
//! number, whatever the container named it.

use detector_common::{FileOpenEvent, MEMORY_DEVICES, file_open_reason, file_type};
use serde_json::json;

use super::{Finding, Repeat, RuleInfo, Severity, Subject, device_name, opened_file::OpenedFile};

pub const PRIVILEGED_DEVICE_ACCESS: RuleInfo = RuleInfo {
    id: "privileged-device-access",
    severity: Severity::High,
    mitre: &["T1611", "T1006"],
    description: "opens or creates a block device node, /dev/mem, /dev/kmem, /dev/port or \
                  /proc/kcore",
};

const FMODE_READ: u32 = 0x1;

pub fn privileged_device_access(e: &FileOpenEvent, subject: &Subject) -> Option<Finding> {
    let device = device_name(e.rdev);
    let (kind, what) = match e.reason {
        file_open_reason::DEVICE if e.i_mode & file_type::MASK == file_type::BLOCK => {
            ("block", format!("the block device {device}"))
        }
        file_open_reason::DEVICE => ("memory", memory_device(e.rdev)?.to_owned()),
        file_open_reason::KCORE => ("kcore", "/proc/kcore".to_owned()),
        file_open_reason::MKNOD => ("block", format!("a node for the block device {device}")),
        _ => return None,
    };
    let node = OpenedFile::from_event(e).path_in_filesystem();
    let message = if e.reason == file_open_reason::MKNOD {
        format!("{} created {what} ({node})", subject.describe())
    } else {
        format!(
            "{} opened {what} for {} ({node})",
            subject.describe(),
            access(e.f_mode)
        )
    };
    Some(Finding {
        rule: &PRIVILEGED_DEVICE_ACCESS,
        message,
        details: json!({
            "device": device,
            "kind": kind,
            "node": node,
            "access": if e.reason == file_open_reason::MKNOD { "mknod" } else { access(e.f_mode) },
        }),
        // A disk tool opens the device several times: one alert per process and device.
        repeat: Repeat::OncePerProcess(format!("{}:{}", e.reason, e.rdev)),
    })
}

fn memory_device(rdev: u32) -> Option<&'static str> {
    let names = ["/dev/mem", "/dev/kmem", "/dev/port"];
    MEMORY_DEVICES
        .iter()
        .position(|&d| d == rdev)
        .map(|i| names[i])
}

fn access(f_mode: u32) -> &'static str {
    match (
        f_mode & FMODE_READ != 0,
        f_mode & detector_common::FMODE_WRITE != 0,
    ) {
        (true, true) => "reading and writing",
        (false, true) => "writing",
        _ => "reading",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        rules::{opened_file::tests::open_event, test_support::subject},
        state::filesystems::Filesystems,
    };
    use detector_common::kdev;

    fn device(reason: u32, i_mode: u32, rdev: u32, f_mode: u32) -> FileOpenEvent {
        let mut e = open_event(0x0102_1994, &["disk0", "/"]);
        e.reason = reason;
        e.i_mode = i_mode;
        e.rdev = rdev;
        e.f_mode = f_mode;
        e
    }

    #[test]
    fn names_the_device_by_number_and_the_node_by_the_containers_name() {
        let fs = Filesystems::default();
        let s = subject(&fs);
        let disk = device(
            file_open_reason::DEVICE,
            0o060660,
            kdev::join(8, 1),
            FMODE_READ,
        );
        let f = privileged_device_access(&disk, &s).unwrap();
        assert_eq!(f.details["device"], "8:1");
        assert_eq!(f.details["kind"], "block");
        assert_eq!(f.details["node"], "/disk0");
        assert!(
            f.message
                .contains("opened the block device 8:1 for reading (/disk0)")
        );

        let mem = device(file_open_reason::DEVICE, 0o020640, kdev::join(1, 1), 3);
        let f = privileged_device_access(&mem, &s).unwrap();
        assert!(
            f.message
                .contains("opened /dev/mem for reading and writing")
        );
        let null = device(file_open_reason::DEVICE, 0o020666, kdev::join(1, 3), 3);
        assert!(privileged_device_access(&null, &s).is_none());

        let node = device(file_open_reason::MKNOD, 0o060600, kdev::join(8, 0), 0);
        let f = privileged_device_access(&node, &s).unwrap();
        assert_eq!(f.details["access"], "mknod");
        assert!(
            f.message
                .contains("created a node for the block device 8:0")
        );

        let setting = device(file_open_reason::SETTING, 0o100644, 0, 2);
        assert!(privileged_device_access(&setting, &s).is_none());
    }
}
