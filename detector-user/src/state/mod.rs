//! What the agent knows about the host: processes, containers, filesystem types.

pub mod agent_self;
pub mod cgroup;
pub mod cgroup_table;
pub mod container;
pub mod file_id;
pub mod filesystems;
pub mod host_addresses;
pub mod identity_hierarchy;
pub mod process;
pub mod procfs;
pub mod runtime_files;
pub mod runtime_state;
