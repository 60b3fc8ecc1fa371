//! `--enforce`: a critical act is refused by the kernel where BPF LSM is available (action
//! `denied`, nothing changed), and its process is killed right after the act otherwise (action
//! `killed`). Each act is followed by `sleep` so that a kill has a live process to stop.

use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, HostProcess, KernelSetting, Profile, RunningContainer,
    alert_matches, exclusive, ids, kernel_module, runc, scenario::ALERT_TIMEOUT, skip, technique,
    temp_dir::TempDir,
};

const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";
/// What `runc exec` returns for a process killed by SIGKILL.
const KILLED: i32 = 128 + 9;

/// Starts an enforcing detector and a privileged container; says which action to expect.
fn enforcing() -> anyhow::Result<(Detector, Container, &'static str)> {
    let detector = Detector::start(&["--enforce"])?;
    let action = refusal_or_kill(&detector)?;
    let container = Container::start(Profile::Privileged, CgroupLayout::kubepods())?;
    Ok((detector, container, action))
}

/// The action for an act an LSM hook can refuse: refused on the LSM backend, else killed.
fn refusal_or_kill(detector: &Detector) -> anyhow::Result<&'static str> {
    let backend = detector.backend()?;
    let action = match backend.as_str() {
        "lsm" => "denied",
        _ => "killed",
    };
    eprintln!("backend {backend}: expecting action {action}");
    Ok(action)
}

/// Waits for `rule` about the container with the expected action, and checks the fate of the
/// process that acted from its exit `status`: refused, it fails at once (a shell's `&&` stops
/// at the failed write, status 1; busybox says 1 or 2), killed, it died by SIGKILL.
fn expect_enforced(
    detector: &Detector,
    container: &Container,
    rule: &str,
    action: &str,
    status: Option<i32>,
) -> anyhow::Result<()> {
    let alert = detector.wait_for_alert(
        &format!("{rule} alert with action {action}"),
        |a| alert_matches(a, rule, container.id()) && a["action"] == action,
        ALERT_TIMEOUT,
    )?;
    match action {
        "denied" => anyhow::ensure!(
            status.is_some_and(|code| code != 0 && code != KILLED),
            "a denied act should fail at once: exit {status:?}"
        ),
        _ => anyhow::ensure!(
            status == Some(KILLED),
            "the process should have been killed: exit {status:?}"
        ),
    }
    eprintln!("{rule}: {} ({})", alert["action"], alert["message"]);
    Ok(())
}

#[test]
fn a_core_pattern_write_is_stopped() -> anyhow::Result<()> {
    let _machine = exclusive();
    let core_pattern = KernelSetting::save(CORE_PATTERN)?;
    let (detector, container, action) = enforcing()?;
    let act = container.exec(&format!(
        "echo '|/tmp/escdet-enforced' > {CORE_PATTERN} && sleep 5"
    ))?;
    expect_enforced(
        &detector,
        &container,
        "kernel-helper-hijack",
        action,
        act.status.code(),
    )?;
    if action == "denied" {
        assert_eq!(core_pattern.current()?, core_pattern.saved());
    }
    core_pattern.restore_now()
}

#[test]
fn a_release_agent_write_is_stopped() -> anyhow::Result<()> {
    let _machine = exclusive();
    let (detector, container, action) = enforcing()?;
    release_agent_write_is_stopped(&detector, &container, action)
}

fn release_agent_write_is_stopped(
    detector: &Detector,
    container: &Container,
    action: &str,
) -> anyhow::Result<()> {
    let act = technique::with_private_hierarchy(container, By::ExecSession, |cg, _| {
        container.exec(&format!(
            "echo /escdet-agent > {cg}/release_agent && sleep 5"
        ))
    })??;
    expect_enforced(
        detector,
        container,
        "cgroup-release-agent",
        action,
        act.status.code(),
    )
}

/// The workload of `container` writes core_pattern, which enforcement does not cover here: the
/// alert says `alert`, the write happened and nothing was killed.
fn core_pattern_write_is_let_through(
    detector: &Detector,
    container: &Container,
    core_pattern: &KernelSetting,
) -> anyhow::Result<()> {
    let value = format!("|/tmp/escdet-{}", ids::random_hex(4));
    let (status, output) = workload_act(
        container,
        &format!("echo \"{value}\" > {CORE_PATTERN} && sleep 1"),
    )?;
    detector.wait_for_alert(
        "kernel-helper-hijack alert with action alert",
        |a| alert_matches(a, "kernel-helper-hijack", container.id()) && a["action"] == "alert",
        ALERT_TIMEOUT,
    )?;
    anyhow::ensure!(status == 0, "the act was stopped: {output:?}");
    anyhow::ensure!(
        core_pattern.current()? == value,
        "the write did not happen: core_pattern is {:?}",
        core_pattern.current()?
    );
    core_pattern.restore_now()
}

/// `[enforcement] rules`: the named rule's act is stopped (refused by the kernel on the LSM
/// backend, whose refusals are per rule), another critical rule's is only reported.
#[test]
fn enforcement_limited_to_named_rules_stops_their_acts_alone() -> anyhow::Result<()> {
    let _machine = exclusive();
    let core_pattern = KernelSetting::save(CORE_PATTERN)?;
    let detector = Detector::start_with_config(
        "enforce = true\n[enforcement]\nrules = [\"cgroup-release-agent\"]\n",
        &[],
    )?;
    let action = refusal_or_kill(&detector)?;
    let container = Container::start(Profile::Privileged, CgroupLayout::kubepods())?;
    core_pattern_write_is_let_through(&detector, &container, &core_pattern)?;
    release_agent_write_is_stopped(&detector, &container, action)
}

/// `[enforcement] pod_namespaces`: a container of a pod in a named namespace is stopped (by a
/// kill: the kernel cannot tell a container's pod at the act), one in another namespace is
/// only reported.
#[test]
fn enforcement_scoped_to_pod_namespaces_stops_their_containers_alone() -> anyhow::Result<()> {
    let _machine = exclusive();
    let core_pattern = KernelSetting::save(CORE_PATTERN)?;
    let detector = Detector::start_with_config(
        "enforce = true\n[enforcement]\npod_namespaces = [\"staging-*\"]\n",
        &[],
    )?;
    let production =
        Container::start(Profile::Privileged, CgroupLayout::kubepods_in("production"))?;
    core_pattern_write_is_let_through(&detector, &production, &core_pattern)?;
    let staging = Container::start(
        Profile::Privileged,
        CgroupLayout::kubepods_in("staging-web"),
    )?;
    let (status, _) = workload_act(
        &staging,
        &format!("echo \"|/tmp/escdet-staged\" > {CORE_PATTERN} && sleep 5"),
    )?;
    let result = expect_enforced(
        &detector,
        &staging,
        "kernel-helper-hijack",
        "killed",
        Some(status),
    );
    core_pattern.restore_now()?;
    result?;
    let alert = detector.wait_for_alert(
        "the staging container's alert",
        |a| alert_matches(a, "kernel-helper-hijack", staging.id()),
        ALERT_TIMEOUT,
    )?;
    anyhow::ensure!(
        alert["container"]["pod"]["namespace"] == "staging-web",
        "the alert names another pod namespace: {alert}"
    );
    Ok(())
}

#[test]
fn a_module_load_is_stopped() -> anyhow::Result<()> {
    let _machine = exclusive();
    if !kernel_module::supported() {
        return skip::skipped("this kernel has no module support: no module load to stop");
    }
    let module = kernel_module::file(kernel_module::DUMMY_FILE)?;
    let _unload = kernel_module::UnloadOnDrop::new(kernel_module::DUMMY)?;
    let (detector, container, action) = enforcing()?;
    if detector.sensor_backend("module loads")?.as_deref() != Some("lsm") {
        // The module_load tracepoint fires once the module is in the kernel, and the loading
        // process exits at once: there is nothing left to stop.
        return skip::skipped("module loads are seen after the fact without the BPF LSM");
    }
    std::fs::copy(&module, container.rootfs_on_host().join("module.ko"))?;
    let act = container.exec("insmod /module.ko && sleep 5")?;
    expect_enforced(
        &detector,
        &container,
        "kernel-module-load",
        action,
        act.status.code(),
    )?;
    if action == "denied" {
        assert!(
            !kernel_module::is_loaded(kernel_module::DUMMY),
            "a denied module was loaded"
        );
    }
    Ok(())
}

/// Joining the host's namespaces has no LSM hook to refuse it: the process that joined is
/// killed, through a pidfd, once /proc shows the pid is still the one that acted.
#[test]
fn a_host_namespace_entry_is_killed() -> anyhow::Result<()> {
    let _machine = exclusive();
    let target = HostProcess::sleep()?;
    let detector = Detector::start(&["--enforce"])?;
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    let act = container.exec(&format!(
        "nsenter -t {} -m -u -i -n -- sleep 5",
        target.pid()
    ))?;
    let alert = detector.wait_for_alert(
        "host-namespace-entry alert with action killed",
        |a| alert_matches(a, "host-namespace-entry", container.id()) && a["action"] == "killed",
        ALERT_TIMEOUT,
    )?;
    anyhow::ensure!(
        act.status.code() == Some(KILLED),
        "nsenter should have died by SIGKILL: {act:?}"
    );
    eprintln!("{}", alert["message"]);
    Ok(())
}

/// The workload runs `act` in a shell of its own (the process that acts, so the one a kill
/// stops); returns that shell's exit status and the output.
fn workload_act(container: &Container, act: &str) -> anyhow::Result<(i32, String)> {
    let output = container.run(
        By::Workload,
        &format!("sh -c '{act}'; echo \"act exit $?\""),
    )?;
    let status = output
        .lines()
        .find_map(|line| line.strip_prefix("act exit ")?.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("the act's status is missing: {output:?}"))?;
    Ok((status, output))
}

/// runc's binary opened for writing through a host process's root (CVE-2019-5736 waits for
/// runc to exit, then writes): refused before the write, or killed while it holds the
/// descriptor. Either way the write that follows never happens; nothing is ever written to
/// runc itself (an empty append), the marker stands in for the payload.
#[test]
fn a_runtime_binary_overwrite_is_stopped() -> anyhow::Result<()> {
    let _machine = exclusive();
    let runc = runc::binary()?;
    let host = HostProcess::sleep()?;
    let detector = Detector::start(&["--enforce"])?;
    let action = refusal_or_kill(&detector)?;
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    let marker = "/escdet-overwritten";
    let (status, _) = workload_act(
        &container,
        &format!(
            "echo -n >> /proc/{}/root{} && sleep 5 && touch {marker}",
            host.pid(),
            runc.display()
        ),
    )?;
    expect_enforced(
        &detector,
        &container,
        "runtime-binary-overwrite",
        action,
        Some(status),
    )?;
    let payload = container
        .rootfs_on_host()
        .join(marker.trim_start_matches('/'));
    anyhow::ensure!(!payload.exists(), "the act went on after the open");
    Ok(())
}

/// A chroot into the host's root through a host process: the shell it starts there is killed
/// before it reads the host's file (there is no LSM hook on chroot to refuse it, so the action
/// is a kill on every backend).
#[test]
fn a_host_root_chroot_is_killed() -> anyhow::Result<()> {
    let _machine = exclusive();
    let host_only = TempDir::new("host-only")?;
    let secret = ids::random_hex(8);
    let file = host_only.path().join("secret");
    std::fs::write(&file, &secret)?;
    let host = HostProcess::sleep()?;
    let detector = Detector::start(&["--enforce"])?;
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    let (status, output) = workload_act(
        &container,
        &format!(
            "chroot /proc/{}/root /bin/sh -c \"sleep 5; cat {}\"",
            host.pid(),
            file.display()
        ),
    )?;
    anyhow::ensure!(
        !output.contains(&secret),
        "the shell in the host's root read the host's file: {output:?}"
    );
    expect_enforced(
        &detector,
        &container,
        "host-root-chroot",
        "killed",
        Some(status),
    )
}
