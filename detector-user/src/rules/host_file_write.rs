//! Write-opens by container processes of files outside their container, as the kernel saw
//! them (see `file_open_reason`):
//!
//! - runtime-binary-overwrite: a container runtime's binary (known by device and inode,
//!   however it was reached), or any executable on a mount outside the container: what
//!   `/proc/PID/exe` of a host process leads to (runc CVE-2019-5736 waits for runc to exit,
//!   then opens the descriptor it kept for writing).
//! - host-fd-leak: another file on a mount outside the container (`/proc/PID/root/...` of a
//!   host process, a directory descriptor leaked by the runtime).
//!
//! "Outside" is a mount of neither the process's mount namespace nor its container's: a
//! sandbox inside a container (a new mount namespace) that writes its parent's files is the
//! container's business.

use detector_common::{FileId, FileOpenEvent, WatchedFile, file_open_reason};
use serde_json::json;

use super::{
    Finding, Repeat, RuleInfo, Severity, Subject, exec_invariants::HOST_FD_LEAK,
    opened_file::OpenedFile,
};

pub const RUNTIME_BINARY_OVERWRITE: RuleInfo = RuleInfo {
    id: "runtime-binary-overwrite",
    severity: Severity::Critical,
    mitre: &["T1611", "T1554"],
    description: "opens the container runtime's binary, or /proc/PID/exe of another process, \
                  for writing (runc CVE-2019-5736)",
};

/// Any execute bit.
const EXECUTABLE: u32 = 0o111;

pub fn runtime_binary_overwrite(e: &FileOpenEvent, subject: &Subject) -> Option<Finding> {
    let file = OpenedFile::from_event(e);
    let (what, path) = match e.reason {
        file_open_reason::WATCHED => {
            let id = FileId {
                dev: e.dev,
                _pad: 0,
                ino: e.ino,
            };
            let path = subject
                .runtime_files
                .path_of(&id, WatchedFile::RuntimeBinary)?;
            ("the container runtime's binary", path.display().to_string())
        }
        file_open_reason::FOREIGN_MOUNT
            if e.i_mode & EXECUTABLE != 0 && outside_container(e, subject) =>
        {
            (
                "an executable outside its container",
                file.path_in_filesystem(),
            )
        }
        _ => return None,
    };
    Some(Finding {
        rule: &RUNTIME_BINARY_OVERWRITE,
        message: format!("{} opened {what} for writing ({path})", subject.describe()),
        details: json!({
            "file": file.details(),
            "path": path,
            "mnt_ns": e.mnt_ns,
            "own_mnt_ns": subject.ns.mnt,
        }),
        repeat: Repeat::OncePerProcess(format!("{}:{}", e.dev, e.ino)),
    })
}

pub fn host_file_write(e: &FileOpenEvent, subject: &Subject) -> Option<Finding> {
    if e.reason != file_open_reason::FOREIGN_MOUNT || !outside_container(e, subject) {
        return None;
    }
    let file = OpenedFile::from_event(e);
    let whose = if e.mnt_ns == subject.host_ns.mnt {
        "the host's"
    } else {
        "another"
    };
    Some(Finding {
        rule: &HOST_FD_LEAK,
        message: format!(
            "{} opened {} on a mount of {whose} mount namespace for writing",
            subject.describe(),
            file.path_in_filesystem()
        ),
        details: json!({
            "file": file.details(),
            "mnt_ns": e.mnt_ns,
            "own_mnt_ns": subject.ns.mnt,
        }),
        repeat: Repeat::OncePerProcess(format!("{}:{}", e.dev, e.ino)),
    })
}

/// The file's mount belongs to neither the process's mount namespace nor its container's.
fn outside_container(e: &FileOpenEvent, subject: &Subject) -> bool {
    e.mnt_ns != 0
        && e.mnt_ns != subject.ns.mnt
        && subject
            .origin
            .is_none_or(|origin| origin.ns.mnt != e.mnt_ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        rules::{
            opened_file::tests::open_event,
            test_support::{HOST_NS, subject},
        },
        state::{container::Origin, filesystems::Filesystems, runtime_files::RuntimeFiles},
    };
    use detector_common::Namespaces;

    const OWN: Namespaces = Namespaces { mnt: 11, ..HOST_NS };

    fn foreign_write(i_mode: u32, mnt_ns: u32) -> FileOpenEvent {
        let mut e = open_event(0xef53, &["crontab", "etc", "/"]);
        e.reason = file_open_reason::FOREIGN_MOUNT;
        e.i_mode = i_mode;
        e.mnt_ns = mnt_ns;
        e
    }

    #[test]
    fn a_host_executable_is_an_overwrite_and_any_other_file_a_leak() {
        let fs = Filesystems::default();
        let mut s = subject(&fs);
        s.ns = OWN;
        let binary = foreign_write(0o100755, HOST_NS.mnt);
        let overwrite = runtime_binary_overwrite(&binary, &s).unwrap();
        assert!(
            overwrite
                .message
                .contains("an executable outside its container")
        );
        assert_eq!(overwrite.details["path"], "/etc/crontab");
        assert!(host_file_write(&binary, &s).is_some(), "named in also");
        let crontab = foreign_write(0o100644, HOST_NS.mnt);
        assert!(runtime_binary_overwrite(&crontab, &s).is_none());
        let leak = host_file_write(&crontab, &s).unwrap();
        assert_eq!(leak.rule.id, "host-fd-leak");
        assert!(
            leak.message
                .contains("/etc/crontab on a mount of the host's mount namespace")
        );
    }

    #[test]
    fn the_containers_own_mounts_are_not_outside() {
        let fs = Filesystems::default();
        let mut s = subject(&fs);
        // A sandbox in the container: a new mount namespace writing the container's files.
        s.ns = Namespaces { mnt: 12, ..OWN };
        s.origin = Some(Origin {
            ns: OWN,
            root: FileId::default(),
            euid: Some(0),
            cap_effective: 0,
        });
        assert!(host_file_write(&foreign_write(0o100644, 11), &s).is_none());
        assert!(runtime_binary_overwrite(&foreign_write(0o100755, 11), &s).is_none());
        assert!(
            host_file_write(&foreign_write(0o100644, 0), &s).is_none(),
            "unknown"
        );
        assert!(host_file_write(&foreign_write(0o100644, HOST_NS.mnt), &s).is_some());
    }

    #[test]
    fn a_watched_binary_is_named_by_its_host_path() {
        let fs = Filesystems::default();
        let runtime =
            RuntimeFiles::with_known(&[(22, 77, "/usr/sbin/runc", WatchedFile::RuntimeBinary)]);
        let mut s = subject(&fs);
        s.runtime_files = &runtime;
        let mut e = open_event(0xef53, &["runc", "sbin", "usr", "/"]);
        e.reason = file_open_reason::WATCHED;
        let finding = runtime_binary_overwrite(&e, &s).unwrap();
        assert_eq!(finding.details["path"], "/usr/sbin/runc");
        e.ino = 78;
        assert!(
            runtime_binary_overwrite(&e, &s).is_none(),
            "no longer watched"
        );
    }
}
