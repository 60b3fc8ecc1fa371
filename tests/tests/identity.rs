//! Who is a container process: the container's cgroup decides, for the kernel's filters and
//! the agent alike. A process stays one as long as any of its threads lives, through an exec
//! from any thread and a thousand quick forks; a host process never becomes one by reusing a
//! pid or by living in a private mount namespace; and a container's first act, before the
//! agent has classified its new cgroup, is not missed.

use std::{fs, process::Command};

use anyhow::{Context, ensure};
use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, HostProcess, KernelSetting, Profile, RunningContainer,
    alert, alert_matches,
    cgroup::{self, CgroupDirs},
    exclusive, ids, kernel_module,
    rootfs::{self, ACT},
    scenario::{self, SETTLE},
    skip,
    temp_dir::TempDir,
};
use serde_json::Value;

const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";

/// `escape-act ARGS` on the host; fails with its output unless it exits 0.
fn act_on_host(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(rootfs::host_act()?).args(args).output()?;
    ensure!(
        out.status.success(),
        "escape-act {} failed ({}): {}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// Raises `rule` about `container` for its workload running `script`, and returns the alert.
fn workload_alert(
    detector: &Detector,
    container: &Container,
    rule: &str,
    script: &str,
) -> anyhow::Result<Value> {
    scenario::expect_alert(
        detector,
        rule,
        container,
        Some("escape-act"),
        By::Workload,
        || container.run(By::Workload, script).map(drop),
    )
}

/// The leader of a host-pid container's process ends with exit(2); its surviving thread joins
/// the host's namespaces through a pidfd and reads a file only the host has.
#[test]
fn a_thread_whose_leader_exited_joining_the_host_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let host_only = TempDir::new("host-only")?;
    let secret = ids::random_hex(8);
    let file = host_only.path().join("secret");
    fs::write(&file, &secret)?;
    let host_process = HostProcess::sleep()?;
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    let script = format!(
        "{ACT} orphan-thread setns-exec {} /bin/cat {}",
        host_process.pid(),
        file.display()
    );
    let mut read = String::new();
    let alert = scenario::expect_alert(
        &detector,
        "host-namespace-entry",
        &container,
        Some("escape-act"),
        By::Workload,
        || {
            read = container.run(By::Workload, &script)?;
            Ok(())
        },
    )?;
    ensure!(
        read.trim() == secret,
        "the thread did not read the host's file: {read:?}"
    );
    assert_ne!(
        alert["process"]["tid"], alert["process"]["pid"],
        "{alert:#}"
    );
    assert!(
        alert["details"]["namespaces"].to_string().contains("mnt"),
        "{alert:#}"
    );
    Ok(())
}

#[test]
fn a_thread_whose_leader_exited_writing_core_pattern_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let core_pattern = KernelSetting::save(CORE_PATTERN)?;
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    let value = "|/tmp/escdet-orphan-handler";
    workload_alert(
        &detector,
        &container,
        "kernel-helper-hijack",
        &format!("{ACT} orphan-thread write {CORE_PATTERN} '{value}'"),
    )?;
    assert_eq!(core_pattern.current()?, value, "the write did not happen");
    core_pattern.restore_now()
}

#[test]
fn a_thread_whose_leader_exited_mounting_procfs_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    workload_alert(
        &detector,
        &container,
        "sensitive-mount",
        &format!(
            "mkdir -p /mnt/o && {ACT} orphan-thread mount proc /mnt/o \
             && grep -q ' /mnt/o proc ' /proc/mounts; status=$?; umount /mnt/o; exit $status"
        ),
    )?;
    Ok(())
}

/// An exec from a thread other than the leader keeps the process's pid and start time.
#[test]
fn a_process_that_exec_d_from_a_thread_is_still_the_container_s() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::kubepods())?;
    let alert = workload_alert(
        &detector,
        &container,
        "bpf-from-container",
        &format!("{ACT} thread-exec {ACT} bpf"),
    )?;
    assert_eq!(alert["process"]["args"][1], "bpf", "{alert:#}");
    Ok(())
}

#[test]
fn the_last_of_a_thousand_quick_forks_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    // Host pids inside, so that the container's output names the acting process.
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    let mut out = String::new();
    let alert = scenario::expect_alert(
        &detector,
        "bpf-from-container",
        &container,
        Some("escape-act"),
        By::Workload,
        || {
            out = container.run(By::Workload, &format!("{ACT} fork-storm 1000 bpf"))?;
            Ok(())
        },
    )?;
    let last: u32 = out
        .split("(PID ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .context("fork-storm names the last child")?
        .parse()?;
    assert_eq!(alert["process"]["pid"], last, "{alert:#}");
    let metrics = detector.metrics()?;
    let lost: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("escape_detector_events_lost_total") && !l.ends_with(" 0"))
        .collect();
    assert!(lost.is_empty(), "events lost: {lost:?}");
    Ok(())
}

/// A container process exits; a host process gets its pid (clone3 with set_tid) and does what
/// would be an escape in a container. It is the host's: silent, and not killed under
/// --enforce.
#[test]
fn a_host_process_reusing_a_container_process_pid_stays_a_host_process() -> anyhow::Result<()> {
    let _machine = exclusive();
    let core_pattern = KernelSetting::save(CORE_PATTERN)?;
    let detector = Detector::start(&["--enforce"])?;
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    // A process the container's workload forks, which the kernel marks as the container's,
    // prints its pid and exits.
    let pid = container.run(By::Workload, "sh -c 'echo $$'")?;
    let pid = pid.trim();
    let act = rootfs::host_act()?;
    let act = act.to_str().context("escape-act path is not UTF-8")?;
    act_on_host(&[
        "spawn-with-pid",
        pid,
        act,
        "write",
        CORE_PATTERN,
        core_pattern.saved(),
    ])?;
    act_on_host(&["spawn-with-pid", pid, act, "bpf"])?;
    detector.assert_no_alert(|_| true, SETTLE);
    scenario::expect_detector_alerts(&detector)?;
    core_pattern.restore_now()
}

/// systemd starts many host services in private mount namespaces (ProtectSystem=, PrivateTmp=):
/// they are host processes, silent and not refused under --enforce.
#[test]
fn host_services_in_private_mount_namespaces_are_host_processes() -> anyhow::Result<()> {
    let _machine = exclusive();
    let core_pattern = KernelSetting::save(CORE_PATTERN)?;
    let detector = Detector::start(&["--enforce"])?;
    let act = rootfs::host_act()?;
    let act = act.to_str().context("escape-act path is not UTF-8")?;
    act_on_host(&[
        "private-mounts",
        act,
        "write",
        CORE_PATTERN,
        core_pattern.saved(),
    ])?;
    if kernel_module::supported() {
        let module = kernel_module::file(kernel_module::DUMMY_FILE)?;
        let _unload = kernel_module::UnloadOnDrop::new(kernel_module::DUMMY)?;
        let module = module.to_str().context("module path is not UTF-8")?;
        act_on_host(&["private-mounts", act, "load-module", module])?;
        ensure!(
            kernel_module::is_loaded(kernel_module::DUMMY),
            "the module load was refused"
        );
    } else {
        skip::skipped("the module load: this kernel has no module support")?;
    }
    detector.assert_no_alert(|_| true, SETTLE);
    scenario::expect_detector_alerts(&detector)?;
    core_pattern.restore_now()
}

/// A cgroup made and joined, and the act done, while the agent is stopped, so before it can
/// have classified the cgroup. The kernel records a new cgroup as pending at mkdir, so the act
/// reaches the agent, which classifies the cgroup then.
#[test]
fn an_act_before_the_agent_classified_the_new_cgroup_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let id = ids::container_id();
    let path = format!("/docker/{id}");
    let dirs = CgroupDirs::prepare(&path);
    // A cpuset needs cpus and mems before a process may join; the act needs none.
    let joined: Vec<String> = cgroup::hierarchies()
        .into_iter()
        .filter(|h| !h.join("cpuset.cpus").exists())
        .map(|h| h.join(path.trim_start_matches('/')).display().to_string())
        .collect();
    let act = rootfs::host_act()?;
    let act = act.to_str().context("escape-act path is not UTF-8")?;
    let mut args = vec!["enter-cgroup"];
    args.extend(joined.iter().map(String::as_str));
    args.extend(["--", act, "bpf"]);
    let outcome = detector.while_stopped(|| act_on_host(&args)).and_then(|_| {
        detector.wait_for_alert(
            &format!("bpf-from-container alert for the new cgroup's container {id}"),
            |a| alert_matches(a, "bpf-from-container", &id),
            scenario::ALERT_TIMEOUT,
        )
    });
    dirs.remove();
    let alert = outcome?;
    alert::check_contract(&alert)?;
    let metrics = detector.metrics()?;
    let forwarded = metrics
        .lines()
        .find_map(|l| l.strip_prefix("escape_detector_unclassified_acts_total "))
        .context("no unclassified_acts_total in /metrics")?;
    ensure!(
        forwarded.trim() != "0",
        "the act was not the one forwarded from a pending cgroup (unclassified acts: {forwarded})"
    );
    Ok(())
}
