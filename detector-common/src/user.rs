//! The agent's half: `aya::Pod` for the config types, and decoding of ring-buffer records.

use crate::{config::*, event::*};

// SAFETY: all of these are `#[repr(C)]`, `Copy`, made only of integers and byte arrays, and have
// no implicit padding (checked by the size tests below).
unsafe impl aya::Pod for Config {}
unsafe impl aya::Pod for Namespaces {}
unsafe impl aya::Pod for Offsets {}
unsafe impl aya::Pod for FileId {}
unsafe impl aya::Pod for TaskMark {}

/// One decoded ring-buffer record.
#[derive(Clone, Copy)]
#[expect(
    clippy::large_enum_variant,
    reason = "events are copied once into a queue; boxing exec events would allocate per exec"
)]
pub enum Event {
    Exec(ExecEvent),
    Fork(ForkEvent),
    Exit(ExitEvent),
    CgroupAttach(CgroupAttachEvent),
    Namespace(NamespaceEvent),
    FileOpen(FileOpenEvent),
    Mount(MountEvent),
    Module(ModuleEvent),
    Bpf(BpfEvent),
    Ptrace(PtraceEvent),
    UnixConnect(UnixConnectEvent),
    CgroupMkdir(CgroupEvent),
    CgroupRmdir(CgroupEvent),
    Signal(SignalEvent),
    OpenByHandle(OpenByHandleEvent),
    TcpConnect(TcpConnectEvent),
}

#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    Short { kind: u32, len: usize, want: usize },
    UnknownKind(u32),
}

impl DecodeError {
    /// The kind the record's header named, when it is one.
    pub fn kind(&self) -> Option<EventKind> {
        match self {
            DecodeError::Short { kind, .. } => EventKind::from_u32(*kind),
            DecodeError::UnknownKind(_) => None,
        }
    }
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::Short { kind, len, want } => {
                write!(f, "record of kind {kind} has {len} bytes, needs {want}")
            }
            DecodeError::UnknownKind(k) => write!(f, "unknown event kind {k}"),
        }
    }
}

fn read<T: Copy>(bytes: &[u8], kind: u32) -> Result<T, DecodeError> {
    let want = core::mem::size_of::<T>();
    if bytes.len() < want {
        return Err(DecodeError::Short {
            kind,
            len: bytes.len(),
            want,
        });
    }
    // SAFETY: length checked above; every bit pattern is valid for these plain-data types, and
    // ring-buffer records are only 8-byte aligned by convention, so read unaligned.
    Ok(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

impl Event {
    pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
        let header: Header = read(bytes, 0)?;
        let kind = EventKind::from_u32(header.kind).ok_or(DecodeError::UnknownKind(header.kind))?;
        let k = header.kind;
        Ok(match kind {
            EventKind::Exec => Event::Exec(read(bytes, k)?),
            EventKind::Fork => Event::Fork(read(bytes, k)?),
            EventKind::Exit => Event::Exit(read(bytes, k)?),
            EventKind::CgroupAttach => Event::CgroupAttach(read(bytes, k)?),
            EventKind::Namespace => Event::Namespace(read(bytes, k)?),
            EventKind::FileOpen => Event::FileOpen(read(bytes, k)?),
            EventKind::Mount => Event::Mount(read(bytes, k)?),
            EventKind::Module => Event::Module(read(bytes, k)?),
            EventKind::Bpf => Event::Bpf(read(bytes, k)?),
            EventKind::Ptrace => Event::Ptrace(read(bytes, k)?),
            EventKind::UnixConnect => Event::UnixConnect(read(bytes, k)?),
            EventKind::CgroupMkdir => Event::CgroupMkdir(read(bytes, k)?),
            EventKind::CgroupRmdir => Event::CgroupRmdir(read(bytes, k)?),
            EventKind::Signal => Event::Signal(read(bytes, k)?),
            EventKind::OpenByHandle => Event::OpenByHandle(read(bytes, k)?),
            EventKind::TcpConnect => Event::TcpConnect(read(bytes, k)?),
        })
    }

    pub fn header(&self) -> &Header {
        match self {
            Event::Exec(e) => &e.header,
            Event::Fork(e) => &e.header,
            Event::Exit(e) => &e.header,
            Event::CgroupAttach(e) => &e.header,
            Event::Namespace(e) => &e.header,
            Event::FileOpen(e) => &e.header,
            Event::Mount(e) => &e.header,
            Event::Module(e) => &e.header,
            Event::Bpf(e) => &e.header,
            Event::Ptrace(e) => &e.header,
            Event::UnixConnect(e) => &e.header,
            Event::CgroupMkdir(e) | Event::CgroupRmdir(e) => &e.header,
            Event::Signal(e) => &e.header,
            Event::OpenByHandle(e) => &e.header,
            Event::TcpConnect(e) => &e.header,
        }
    }

    /// True when an LSM hook refused the act (enforcement): the process did nothing that
    /// still needs stopping.
    pub fn denied(&self) -> bool {
        match self {
            Event::FileOpen(e) => e.denied != 0,
            Event::Module(e) => e.denied != 0,
            _ => false,
        }
    }

    pub fn kind(&self) -> EventKind {
        match self {
            Event::Exec(_) => EventKind::Exec,
            Event::Fork(_) => EventKind::Fork,
            Event::Exit(_) => EventKind::Exit,
            Event::CgroupAttach(_) => EventKind::CgroupAttach,
            Event::Namespace(_) => EventKind::Namespace,
            Event::FileOpen(_) => EventKind::FileOpen,
            Event::Mount(_) => EventKind::Mount,
            Event::Module(_) => EventKind::Module,
            Event::Bpf(_) => EventKind::Bpf,
            Event::Ptrace(_) => EventKind::Ptrace,
            Event::UnixConnect(_) => EventKind::UnixConnect,
            Event::CgroupMkdir(_) => EventKind::CgroupMkdir,
            Event::CgroupRmdir(_) => EventKind::CgroupRmdir,
            Event::Signal(_) => EventKind::Signal,
            Event::OpenByHandle(_) => EventKind::OpenByHandle,
            Event::TcpConnect(_) => EventKind::TcpConnect,
        }
    }
}

/// The bytes of a NUL-terminated (or full) buffer, up to the first NUL.
pub fn c_bytes(buf: &[u8]) -> &[u8] {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    &buf[..end]
}

/// Whether a string the kernel copied into `buf` filled it: the kernel's string reads stop
/// one byte short of the end, for the NUL, so a full buffer may hold a cut string.
pub fn c_full(buf: &[u8]) -> bool {
    c_bytes(buf).len() + 1 >= buf.len()
}

impl ExecEvent {
    /// The NUL-separated argv the kernel copied.
    pub fn argv(&self) -> &[u8] {
        &self.args[..(self.args_len as usize).min(self.args.len())]
    }

    /// Whether argv was longer than the event holds.
    pub fn argv_cut(&self) -> bool {
        self.args_len as usize > self.args.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn layouts_have_no_implicit_padding() {
        assert_eq!(size_of::<Identity>(), 16);
        assert_eq!(size_of::<Header>(), 48);
        assert_eq!(offset_of!(Header, identity), 24);
        assert_eq!(size_of::<Namespaces>(), 32);
        assert_eq!(size_of::<ExecEvent>(), 920);
        assert_eq!(offset_of!(ExecEvent, start_ns), 64);
        assert_eq!(offset_of!(ExecEvent, ns), 72);
        assert_eq!(offset_of!(ExecEvent, root), 112);
        assert_eq!(offset_of!(ExecEvent, comm), 136);
        assert_eq!(size_of::<ForkEvent>(), 64);
        assert_eq!(size_of::<ExitEvent>(), 56);
        assert_eq!(size_of::<CgroupAttachEvent>(), 328);
        assert_eq!(offset_of!(CgroupAttachEvent, cgroup_id), 64);
        assert_eq!(size_of::<CgroupEvent>(), 328);
        assert_eq!(size_of::<NamespaceEvent>(), 120);
        assert_eq!(size_of::<FileOpenEvent>(), 480);
        assert_eq!(offset_of!(FileOpenEvent, magic), 64);
        assert_eq!(size_of::<MountEvent>(), 360);
        assert_eq!(size_of::<ModuleEvent>(), 120);
        assert_eq!(size_of::<BpfEvent>(), 56);
        assert_eq!(size_of::<PtraceEvent>(), 64);
        assert_eq!(size_of::<UnixConnectEvent>(), 64 + 107 + 1 + 4);
        assert_eq!(size_of::<TcpConnectEvent>(), 48 + 4 + 2 + 2 + 16);
        assert_eq!(size_of::<FileId>(), 16);
        assert_eq!(size_of::<SignalEvent>(), 56);
        assert_eq!(size_of::<OpenByHandleEvent>(), 48 + 8 + 16 + 64);
        assert_eq!(size_of::<TaskMark>(), 24);
        assert_eq!(size_of::<Offsets>(), 96 * 4);
        assert_eq!(
            size_of::<Config>(),
            32 + 24 + 96 * 4 + 2 * crate::event::MAX_RUNTIME_API_PORTS
        );
    }

    fn bytes_of<T>(v: &T) -> &[u8] {
        // SAFETY: test-only view of a plain-data value.
        unsafe { core::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }
    }

    #[test]
    fn decodes_by_kind_and_rejects_short_or_unknown_records() {
        let fork = ForkEvent {
            header: Header::new(EventKind::Fork, 42, 42, 7),
            ppid: 1,
            creator_tgid: 1,
            start_ns: 9,
        };
        let bytes = bytes_of(&fork);
        match Event::decode(bytes).unwrap() {
            Event::Fork(f) => assert_eq!((f.header.tgid, f.ppid), (42, 1)),
            _ => panic!("decoded to the wrong kind"),
        }
        assert_eq!(
            Event::decode(&bytes[..20]).err(),
            Some(DecodeError::Short {
                kind: 0,
                len: 20,
                want: 48
            })
        );
        let mut exec_kind_short = bytes.to_vec();
        exec_kind_short[0] = EventKind::Exec as u8;
        assert!(matches!(
            Event::decode(&exec_kind_short),
            Err(DecodeError::Short { want: 920, .. })
        ));
        let mut unknown = bytes.to_vec();
        unknown[0] = 99;
        assert_eq!(
            Event::decode(&unknown).err(),
            Some(DecodeError::UnknownKind(99))
        );
    }

    #[test]
    fn namespace_entry_mask_names_only_namespaces_that_became_the_hosts() {
        let host = Namespaces {
            mnt: 1,
            pid_for_children: 2,
            net: 3,
            ipc: 4,
            uts: 5,
            cgroup: 6,
            user: 7,
            time: 8,
        };
        let container = Namespaces {
            mnt: 11,
            pid_for_children: 12,
            net: 13,
            ipc: 14,
            uts: 15,
            cgroup: 16,
            user: 7,
            time: 8,
        };
        let mut after = container;
        after.mnt = 1;
        after.net = 3;
        assert_eq!(after.entered(&container, &host), ns_bit::MNT | ns_bit::NET);
        assert_eq!(container.entered(&container, &host), 0);
        // A namespace the host reference could not be read for is never matched.
        let unknown_host = Namespaces { mnt: 0, ..host };
        let zero_mnt = Namespaces {
            mnt: 0,
            ..container
        };
        assert_eq!(zero_mnt.entered(&container, &unknown_host), 0);
    }

    #[test]
    fn c_bytes_stops_at_nul() {
        assert_eq!(c_bytes(b"abc\0def"), b"abc");
        assert_eq!(c_bytes(b"abc"), b"abc");
    }

    #[test]
    fn a_full_string_buffer_may_be_cut() {
        assert!(!c_full(b"ab\0\0"));
        assert!(c_full(b"abc\0"));
        assert!(c_full(b"abcd"));
    }
}
