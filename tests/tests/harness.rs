//! Self-tests of the harness, without the detector: containers of every profile and layout
//! start, run commands and leave nothing behind; kernel settings come back; and every escape
//! technique really escapes on this machine, so that a scenario test's missing alert can only be
//! the detector's fault.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::mpsc,
    thread,
};

use escape_detector_e2e::{
    By, CgroupLayout, Container, HostDisk, HostProcess, KernelSetting, Profile, RunningContainer,
    cgroup, exclusive, mounts, rootfs, runc, technique,
};

const PROFILES: [Profile; 3] = [Profile::Default, Profile::Privileged, Profile::HostPid];
const CAP_SYS_ADMIN: u32 = 21;

#[test]
fn rootfs_holds_static_busybox_and_its_applets() -> anyhow::Result<()> {
    let root = rootfs::template()?;
    assert_eq!(
        fs::read_link(root.join("bin/sh"))?,
        PathBuf::from("busybox")
    );
    assert_eq!(
        fs::read_link(root.join("bin/nsenter"))?,
        PathBuf::from("busybox")
    );
    assert!(fs::read_to_string(root.join("etc/passwd"))?.starts_with("root:x:0:0:"));
    for dir in ["proc", "sys", "dev", "tmp"] {
        assert!(root.join(dir).is_dir(), "{dir} missing");
    }
    Ok(())
}

#[test]
fn every_profile_and_layout_runs_and_leaves_nothing_behind() -> anyhow::Result<()> {
    let _machine = exclusive();
    let parents_before = cgroup_parents();
    for profile in PROFILES {
        for layout in [CgroupLayout::Docker, CgroupLayout::kubepods()] {
            let container = Container::start(profile, layout)?;
            check_running(&container, profile)?;
            let (id, cgroup_path) = (
                container.id().to_owned(),
                container.cgroup_path().to_owned(),
            );
            let bundle = container.rootfs_on_host().parent().unwrap().to_owned();
            drop(container);
            assert_gone(&id, &cgroup_path)?;
            assert!(!bundle.exists(), "bundle {} left behind", bundle.display());
        }
    }
    assert_eq!(
        cgroup_parents(),
        parents_before,
        "cgroup parents left behind"
    );
    Ok(())
}

#[test]
fn a_container_is_removed_when_its_test_panics() -> anyhow::Result<()> {
    let _machine = exclusive();
    let (started, ids) = mpsc::channel();
    let test = thread::spawn(move || {
        let container = Container::start(Profile::Privileged, CgroupLayout::kubepods()).unwrap();
        started
            .send((
                container.id().to_owned(),
                container.cgroup_path().to_owned(),
            ))
            .unwrap();
        panic!("a failing test");
    });
    assert!(test.join().is_err());
    let (id, cgroup_path) = ids.recv()?;
    assert_gone(&id, &cgroup_path)
}

#[test]
fn kernel_setting_is_restored_on_drop() -> anyhow::Result<()> {
    let _machine = exclusive();
    let path = "/proc/sys/kernel/core_pattern";
    let before = fs::read_to_string(path)?;
    {
        let _saved = KernelSetting::save(path)?;
        fs::write(path, "escdet-harness-test")?;
        assert_eq!(fs::read_to_string(path)?.trim_end(), "escdet-harness-test");
    }
    assert_eq!(fs::read_to_string(path)?, before);
    Ok(())
}

#[test]
fn nsenter_from_a_host_pid_container_reaches_the_host_namespaces() -> anyhow::Result<()> {
    let _machine = exclusive();
    let target = HostProcess::sleep()?;
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    technique::enter_host_namespaces(&container, By::ExecSession, &target)
}

#[test]
fn nsenter_from_a_default_container_fails() -> anyhow::Result<()> {
    let _machine = exclusive();
    let target = HostProcess::sleep()?;
    let container = Container::start(Profile::Default, CgroupLayout::kubepods())?;
    assert!(technique::enter_host_namespaces(&container, By::ExecSession, &target).is_err());
    Ok(())
}

#[test]
fn release_agent_runs_on_the_host_and_its_hierarchy_goes_away() -> anyhow::Result<()> {
    let _machine = exclusive();
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    technique::abuse_release_agent(&container, By::Workload)?;
    assert_eq!(cgroup::stray_hierarchies(), Vec::<String>::new());
    Ok(())
}

#[test]
fn core_pattern_is_writable_through_a_second_procfs() -> anyhow::Result<()> {
    let _machine = exclusive();
    let core_pattern = KernelSetting::save("/proc/sys/kernel/core_pattern")?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    technique::write_sysctl_through_second_procfs(
        &container,
        By::Workload,
        "kernel/core_pattern",
        "|/tmp/escdet-harness-handler",
    )?;
    core_pattern.restore_now()
}

#[test]
fn a_kernel_helper_is_writable_directly() -> anyhow::Result<()> {
    let _machine = exclusive();
    let helper = technique::direct_kernel_helper();
    let setting = KernelSetting::save(helper)?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    technique::write_kernel_file(
        &container,
        By::ExecSession,
        helper,
        "/tmp/escdet-harness-helper",
    )?;
    setting.restore_now()
}

#[test]
fn a_privileged_container_mounts_procfs_and_a_host_disk() -> anyhow::Result<()> {
    let _machine = exclusive();
    let disk = HostDisk::attach()?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    technique::mount_procfs(&container, By::Workload)?;
    technique::mount_host_disk(&container, By::ExecSession, &disk)?;
    eprintln!("host disk {} ({})", disk.path().display(), disk.device());
    assert_eq!(mounts::stray_mounts(), Vec::<String>::new());
    let attached = Path::new("/sys/block")
        .join(disk.path().file_name().unwrap())
        .join("loop");
    drop(disk);
    assert!(!attached.exists(), "{} still attached", attached.display());
    Ok(())
}

/// What runc set up matches the profile, and the container is in its cgroup in every hierarchy
/// mounted on the host, the unified one included.
fn check_running(container: &Container, profile: Profile) -> anyhow::Result<()> {
    assert_eq!(container.exec_ok("echo hello")?, "hello\n");
    let pid = container.init_pid();
    let cgroups = fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    assert_eq!(
        cgroups.lines().count(),
        cgroup::hierarchies().len(),
        "{cgroups}"
    );
    for line in cgroups.lines() {
        assert!(line.ends_with(container.cgroup_path()), "{line}");
    }
    let privileged = profile != Profile::Default;
    assert_eq!(
        effective_capabilities(pid)? >> CAP_SYS_ADMIN & 1 == 1,
        privileged
    );
    assert_eq!(same_namespace(pid, "pid")?, profile == Profile::HostPid);
    assert_eq!(same_namespace(pid, "cgroup")?, privileged);
    let proc_sys_mounted = container.exec_ok("grep -c ' /proc/sys ' /proc/mounts || true")?;
    assert_eq!(
        proc_sys_mounted.trim() != "0",
        !privileged,
        "/proc/sys read-only bind"
    );
    Ok(())
}

fn assert_gone(id: &str, cgroup_path: &str) -> anyhow::Result<()> {
    assert!(
        !runc::list_ids()?.iter().any(|known| known == id),
        "runc still lists {id}"
    );
    assert_eq!(cgroup::existing_dirs(cgroup_path), Vec::<PathBuf>::new());
    Ok(())
}

/// The runtimes' parent cgroups (`/docker`, `/kubepods`) that exist now, in any hierarchy.
fn cgroup_parents() -> Vec<PathBuf> {
    cgroup::hierarchies()
        .into_iter()
        .flat_map(|root| [root.join("docker"), root.join("kubepods")])
        .filter(|dir| dir.exists())
        .collect()
}

fn effective_capabilities(pid: u32) -> anyhow::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap_or_default()
        .trim();
    Ok(u64::from_str_radix(hex, 16)?)
}

fn same_namespace(pid: u32, kind: &str) -> anyhow::Result<bool> {
    Ok(fs::read_link(format!("/proc/{pid}/ns/{kind}"))?
        == fs::read_link(format!("/proc/self/ns/{kind}"))?)
}
