//! Which values of an alert the kernel cut at its buffers' sizes: the alert's `truncated` list
//! names them, so a consumer never takes a cut path or argv for the whole one.

use detector_common::{
    ExecEvent,
    user::{Event, c_full},
};

/// The process's argv, cut at `ARGS_LEN`.
pub const ARGS: &str = "process.args";
/// The program's path, cut at `PATH_LEN`.
pub const EXE: &str = "process.exe";
/// A string of the act itself (a path, a name) that the rule's details report.
pub const DETAILS: &str = "details";

/// The values of a process that its exec event cut.
pub fn of_exec(e: &ExecEvent) -> Vec<&'static str> {
    let mut cut = Vec::new();
    if e.argv_cut() {
        cut.push(ARGS);
    }
    if c_full(&e.filename) {
        cut.push(EXE);
    }
    cut
}

/// Whether a string the kernel copied for the act filled its buffer.
pub fn act_cut(event: &Event) -> bool {
    match event {
        Event::FileOpen(e) => e.names.iter().any(|name| c_full(name)),
        Event::Mount(e) => c_full(&e.fstype) || c_full(&e.source) || c_full(&e.target),
        Event::CgroupAttach(e) => c_full(&e.path),
        Event::Module(e) => c_full(&e.name),
        Event::OpenByHandle(e) => c_full(&e.name),
        Event::Exec(_)
        | Event::Fork(_)
        | Event::Exit(_)
        | Event::Namespace(_)
        | Event::Bpf(_)
        | Event::Ptrace(_)
        | Event::UnixConnect(_)
        | Event::TcpConnect(_)
        | Event::CgroupMkdir(_)
        | Event::CgroupRmdir(_)
        | Event::Signal(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use detector_common::{EventKind, Header, NAME_LEN, OpenByHandleEvent};

    #[test]
    fn a_name_that_fills_its_buffer_is_cut() {
        let mut e = OpenByHandleEvent {
            header: Header::new(EventKind::OpenByHandle, 1, 1, 0),
            result: 3,
            file: Default::default(),
            name: [0; NAME_LEN],
        };
        e.name[..4].copy_from_slice(b"etc\0");
        assert!(!act_cut(&Event::OpenByHandle(e)));
        e.name = [b'a'; NAME_LEN];
        e.name[NAME_LEN - 1] = 0;
        assert!(act_cut(&Event::OpenByHandle(e)));
    }
}
