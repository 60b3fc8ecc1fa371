//! The representative subset of the e2e suite (`vmtest --representative`, the 5.10 lane of
//! `cargo xtask test`): one scenario per sensor of the probe table, acted by the container's
//! workload, one enforcement, the loss accounting, the kernel programs' log and the whole
//! benign suite. The full suite
//! runs on 6.18 (host) and 6.1; this proves every fallback a 5.10 kernel needs at a third of
//! the guest time.

use anyhow::{Result, bail};

use super::artifacts::TestBinary;

/// (test binary, its tests to run; none for all of them).
const SUBSET: &[(&str, &[&str])] = &[
    ("benign", &[]),
    ("loss_accounting", &[]),
    // the programs still load with their logging code, and log.
    ("kernel_log", &[]),
    // process and cgroup lifecycle, namespace changes: a thread outliving its leader.
    (
        "identity",
        &["a_thread_whose_leader_exited_joining_the_host_is_reported"],
    ),
    (
        "agent_tamper",
        &["a_signal_to_the_detector_from_the_workload_is_reported"],
    ),
    (
        "host_namespace_entry",
        &["nsenter_by_the_workload_of_a_host_pid_container_is_reported"],
    ),
    (
        "namespace_escape",
        &["a_user_namespace_made_by_the_workload_is_reported"],
    ),
    // file opens, and the usermode helper the kernel then runs.
    (
        "cgroup_release_agent",
        &["release_agent_escape_by_a_privileged_pod_workload_is_reported"],
    ),
    (
        "kernel_tunable_write",
        &["a_kernel_sysctl_written_through_a_second_procfs_by_the_workload_is_reported"],
    ),
    (
        "open_by_handle",
        &["opening_by_handle_from_the_workload_is_reported"],
    ),
    (
        "kernel_module_load",
        &["a_module_loaded_by_a_privileged_container_workload_is_reported"],
    ),
    (
        "sensitive_mount",
        &[
            "a_procfs_mount_by_the_workload_is_reported",
            "the_workload_remounting_sysfs_read_write_is_reported",
        ],
    ),
    (
        "bpf_from_container",
        &["creating_a_bpf_map_from_the_workload_is_reported"],
    ),
    (
        "ptrace_outside_container",
        &["ptrace_and_memory_reads_of_a_host_process_by_the_workload_are_reported"],
    ),
    (
        "runtime_socket_access",
        &[
            "the_workload_connecting_to_a_watched_socket_under_another_name_is_reported",
            "the_workload_connecting_to_the_nodes_kubelet_tcp_api_is_reported",
        ],
    ),
    ("enforce", &["a_core_pattern_write_is_stopped"]),
];

/// The subset's binaries out of `built`, each with the tests it runs. Fails when a binary or
/// a test the subset names no longer exists: a rename must not shrink the lane unnoticed.
pub fn select(
    built: Vec<TestBinary>,
    listed: impl Fn(&TestBinary) -> Result<Vec<String>>,
) -> Result<Vec<TestBinary>> {
    let mut selected = Vec::new();
    for (name, tests) in SUBSET {
        let Some(binary) = built.iter().find(|binary| binary.name == *name) else {
            bail!("the representative subset names the test binary {name}, which was not built");
        };
        let known = listed(binary)?;
        if let Some(missing) = tests.iter().find(|test| !known.iter().any(|k| k == *test)) {
            bail!("the representative subset names {name}::{missing}, which {name} does not have");
        }
        selected.push(TestBinary {
            only: tests.iter().map(|test| (*test).to_owned()).collect(),
            ..binary.clone()
        });
    }
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn built() -> Vec<TestBinary> {
        SUBSET
            .iter()
            .map(|(name, _)| TestBinary {
                name: (*name).to_owned(),
                path: PathBuf::from(name),
                only: Vec::new(),
            })
            .chain([TestBinary {
                name: "harness".to_owned(),
                path: PathBuf::from("harness"),
                only: Vec::new(),
            }])
            .collect()
    }

    fn every_named_test(binary: &TestBinary) -> Result<Vec<String>> {
        let (_, tests) = SUBSET
            .iter()
            .find(|(name, _)| *name == binary.name)
            .unwrap();
        Ok(tests.iter().map(|test| (*test).to_owned()).collect())
    }

    #[test]
    fn keeps_the_named_binaries_with_their_tests() {
        let selected = select(built(), every_named_test).unwrap();
        assert_eq!(selected.len(), SUBSET.len());
        assert!(selected.iter().all(|binary| binary.name != "harness"));
        let benign = selected.iter().find(|b| b.name == "benign").unwrap();
        assert!(benign.only.is_empty());
        let enforce = selected.iter().find(|b| b.name == "enforce").unwrap();
        assert_eq!(enforce.only, ["a_core_pattern_write_is_stopped"]);
    }

    #[test]
    fn a_renamed_test_or_binary_fails() {
        let error = select(built(), |_| Ok(Vec::new())).unwrap_err();
        assert!(error.to_string().contains("does not have"), "{error}");
        let without_benign: Vec<_> = built().into_iter().filter(|b| b.name != "benign").collect();
        let error = select(without_benign, every_named_test).unwrap_err();
        assert!(error.to_string().contains("benign"), "{error}");
    }
}
