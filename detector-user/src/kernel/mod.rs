//! Everything that touches the kernel: BTF offsets, loading and attaching the programs, the
//! maps the agent reads and writes, and feature probing.

pub mod btf;
pub mod container_cgroups;
pub mod fdinfo;
pub mod host;
pub mod kernel_log;
pub mod loader;
pub mod loss;
pub mod lsm;
pub mod offsets;
pub mod own_bpf_objects;
pub mod probes;
pub mod program_runs;
pub mod tracefs;
pub mod watched_files;
