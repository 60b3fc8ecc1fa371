//! Harness for the end-to-end tests: real runc containers on a busybox root filesystem, the real
//! `escape-detector` binary, and the escape techniques it must catch.
//!
//! Everything here needs root, runc and busybox-static; every object a test creates (containers,
//! cgroups, mounts, kernel settings, temp dirs) is owned by a guard that undoes it on drop, also
//! when the test panics.
//!
//! Run as root, naming the binary under test and the static helper the containers run
//! ([`rootfs::ACT`]): `ESCAPE_DETECTOR_BIN=target/release/escape-detector
//! ESCAPE_ACT_BIN=target/release/escape-act cargo test -p escape-detector-e2e` (`cargo xtask
//! test` builds both and does this). Tests take a machine-wide lock, so concurrent runs queue.

pub mod alert;
pub mod capability;
pub mod cgroup;
pub mod container;
pub mod detector;
pub mod evasion;
pub mod host_disk;
pub mod host_process;
pub mod http;
pub mod identity;
pub mod ids;
pub mod kernel_module;
pub mod kernel_setting;
pub mod machine;
pub mod monitoring;
pub mod mounts;
pub mod pod;
pub mod pod_spec;
pub mod podman;
pub mod poll;
pub mod rootfs;
pub mod runc;
pub mod scenario;
pub mod skip;
pub mod spec;
pub mod technique;
pub mod temp_dir;
pub mod tmpfs;
pub mod workload;

pub use alert::alert_matches;
pub use container::{By, Container, RunningContainer};
pub use detector::Detector;
pub use host_disk::HostDisk;
pub use host_process::HostProcess;
pub use kernel_setting::KernelSetting;
pub use machine::{exclusive, require_root};
pub use spec::{CgroupLayout, Profile};
pub use tmpfs::Tmpfs;
