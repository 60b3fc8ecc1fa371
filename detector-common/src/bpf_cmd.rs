//! `enum bpf_cmd` (include/uapi/linux/bpf.h): the commands of the `bpf()` system call.

pub const MAP_CREATE: u32 = 0;
pub const MAP_LOOKUP_ELEM: u32 = 1;
pub const MAP_UPDATE_ELEM: u32 = 2;
pub const MAP_DELETE_ELEM: u32 = 3;
pub const MAP_GET_NEXT_KEY: u32 = 4;
pub const PROG_LOAD: u32 = 5;
pub const MAP_LOOKUP_AND_DELETE_ELEM: u32 = 21;
pub const MAP_LOOKUP_BATCH: u32 = 24;
pub const MAP_LOOKUP_AND_DELETE_BATCH: u32 = 25;
pub const MAP_UPDATE_BATCH: u32 = 26;
pub const MAP_DELETE_BATCH: u32 = 27;
pub const PROG_GET_FD_BY_ID: u32 = 13;
pub const MAP_GET_FD_BY_ID: u32 = 14;
pub const BTF_GET_FD_BY_ID: u32 = 19;
pub const LINK_CREATE: u32 = 28;
pub const LINK_GET_FD_BY_ID: u32 = 30;

/// Commands that take hold of a loaded object by its id (the first field of their `bpf_attr`):
/// how a process reaches programs, maps and links it did not create, to read, rewrite or
/// detach them.
pub const BY_ID_COMMANDS: [u32; 4] = [
    PROG_GET_FD_BY_ID,
    MAP_GET_FD_BY_ID,
    BTF_GET_FD_BY_ID,
    LINK_GET_FD_BY_ID,
];

/// Map element operations: the hot path of every BPF user, and harmless without a map
/// descriptor, which only another (reported) command can produce.
pub const ELEMENT_COMMANDS: [u32; 9] = [
    MAP_LOOKUP_ELEM,
    MAP_UPDATE_ELEM,
    MAP_DELETE_ELEM,
    MAP_GET_NEXT_KEY,
    MAP_LOOKUP_AND_DELETE_ELEM,
    MAP_LOOKUP_BATCH,
    MAP_LOOKUP_AND_DELETE_BATCH,
    MAP_UPDATE_BATCH,
    MAP_DELETE_BATCH,
];

pub const fn name(cmd: u32) -> &'static str {
    match cmd {
        MAP_CREATE => "BPF_MAP_CREATE",
        MAP_LOOKUP_ELEM => "BPF_MAP_LOOKUP_ELEM",
        MAP_UPDATE_ELEM => "BPF_MAP_UPDATE_ELEM",
        MAP_DELETE_ELEM => "BPF_MAP_DELETE_ELEM",
        MAP_GET_NEXT_KEY => "BPF_MAP_GET_NEXT_KEY",
        PROG_LOAD => "BPF_PROG_LOAD",
        6 => "BPF_OBJ_PIN",
        7 => "BPF_OBJ_GET",
        8 => "BPF_PROG_ATTACH",
        9 => "BPF_PROG_DETACH",
        10 => "BPF_PROG_TEST_RUN",
        11 => "BPF_PROG_GET_NEXT_ID",
        12 => "BPF_MAP_GET_NEXT_ID",
        PROG_GET_FD_BY_ID => "BPF_PROG_GET_FD_BY_ID",
        MAP_GET_FD_BY_ID => "BPF_MAP_GET_FD_BY_ID",
        15 => "BPF_OBJ_GET_INFO_BY_FD",
        16 => "BPF_PROG_QUERY",
        17 => "BPF_RAW_TRACEPOINT_OPEN",
        18 => "BPF_BTF_LOAD",
        BTF_GET_FD_BY_ID => "BPF_BTF_GET_FD_BY_ID",
        20 => "BPF_TASK_FD_QUERY",
        MAP_LOOKUP_AND_DELETE_ELEM => "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
        22 => "BPF_MAP_FREEZE",
        23 => "BPF_BTF_GET_NEXT_ID",
        MAP_LOOKUP_BATCH => "BPF_MAP_LOOKUP_BATCH",
        MAP_LOOKUP_AND_DELETE_BATCH => "BPF_MAP_LOOKUP_AND_DELETE_BATCH",
        MAP_UPDATE_BATCH => "BPF_MAP_UPDATE_BATCH",
        MAP_DELETE_BATCH => "BPF_MAP_DELETE_BATCH",
        LINK_CREATE => "BPF_LINK_CREATE",
        29 => "BPF_LINK_UPDATE",
        LINK_GET_FD_BY_ID => "BPF_LINK_GET_FD_BY_ID",
        31 => "BPF_LINK_GET_NEXT_ID",
        32 => "BPF_ENABLE_STATS",
        33 => "BPF_ITER_CREATE",
        34 => "BPF_LINK_DETACH",
        35 => "BPF_PROG_BIND_MAP",
        36 => "BPF_TOKEN_CREATE",
        _ => "unknown",
    }
}
