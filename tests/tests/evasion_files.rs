//! Evasion variants of every file rule: the container's workload writes the rule's file by
//! every road of [`evasion::VARIANTS`] (a second mount of its filesystem at an odd path, a
//! symlink, a hard link; `openat`, `openat2`, `open`, `creat`; `write`, `pwrite`, `writev`; a
//! descriptor kept across a drop of root or passed over a unix socket; a renamed program; a
//! thread whose leader has exited) and each write must be reported as the same act.

use std::{fs, io::Read as _, os::unix::fs::PermissionsExt as _, path::Path};

use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, HostDisk, HostProcess, KernelSetting, Profile,
    evasion::{self, SECOND_MOUNT, Target, first_line},
    exclusive, technique,
    temp_dir::TempDir,
};

const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";
/// A sysfs knob below /sys/kernel that takes any number and does nothing while KSM is off.
const KSM_PAGES_TO_SCAN: &str = "/sys/kernel/mm/ksm/pages_to_scan";

fn read_first_line(path: impl AsRef<Path>) -> anyhow::Result<String> {
    Ok(first_line(&fs::read_to_string(path)?))
}

#[test]
fn every_road_to_core_pattern_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let core_pattern = KernelSetting::save(CORE_PATTERN)?;
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    let target = Target {
        rule: "kernel-helper-hijack",
        path: CORE_PATTERN.into(),
        second_mount: (
            "-t proc proc".into(),
            format!("{SECOND_MOUNT}/sys/kernel/core_pattern"),
        ),
        hard_link: false,
        checks_writer: true,
        // A pipe to a handler that does not exist: a crash meanwhile runs nothing.
        value: Box::new(|n| format!("|/tmp/escdet-handler-{n}")),
        read: Box::new(|| read_first_line(CORE_PATTERN)),
    };
    evasion::expect_every_variant_reported(&detector, &container, &target)?;
    core_pattern.restore_now()
}

#[test]
fn every_road_to_a_sys_kernel_tunable_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let knob = KernelSetting::save(KSM_PAGES_TO_SCAN)?;
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::kubepods())?;
    let target = Target {
        rule: "kernel-tunable-write",
        path: KSM_PAGES_TO_SCAN.into(),
        second_mount: (
            "-t sysfs sysfs".into(),
            format!("{SECOND_MOUNT}/kernel/mm/ksm/pages_to_scan"),
        ),
        hard_link: false,
        // Sysfs checks the opener only.
        checks_writer: false,
        value: Box::new(|n| (1000 + n).to_string()),
        read: Box::new(|| read_first_line(KSM_PAGES_TO_SCAN)),
    };
    evasion::expect_every_variant_reported(&detector, &container, &target)?;
    knob.restore_now()
}

/// In a private named cgroup v1 hierarchy the container mounts: its release_agent is its own,
/// and without notify_on_release the kernel never runs it.
#[test]
fn every_road_to_release_agent_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    technique::with_private_hierarchy(&container, By::Workload, |dir, name| {
        let agent = format!("{dir}/release_agent");
        let target = Target {
            rule: "cgroup-release-agent",
            path: agent.clone(),
            second_mount: (
                format!("-t cgroup -o none,name={name} cgroup"),
                format!("{SECOND_MOUNT}/release_agent"),
            ),
            hard_link: false,
            // The kernel checks CAP_SYS_ADMIN of the descriptor's opener, not of the writer:
            // a descriptor leaked to an unprivileged process still sets the agent.
            checks_writer: false,
            value: Box::new(|n| format!("/escdet-agent-{n}")),
            read: Box::new(|| Ok(first_line(&container.exec_ok(&format!("cat {agent}"))?))),
        };
        evasion::expect_every_variant_reported(&detector, &container, &target)
    })?
}

/// A file of the host (`name`, with `mode`) that a host-pid container reaches through
/// `/proc/PID/root` of a host process, and its second procfs.
fn host_file_target(
    rule: &'static str,
    dir: &TempDir,
    host: &HostProcess,
    name: &str,
    mode: u32,
) -> anyhow::Result<Target<'static>> {
    let file = dir.path().join(name);
    fs::write(&file, "original\n")?;
    fs::set_permissions(&file, fs::Permissions::from_mode(mode))?;
    let via = |proc: &str| format!("{proc}/{}/root{}", host.pid(), file.display());
    Ok(Target {
        rule,
        path: via("/proc"),
        second_mount: ("-t proc proc".into(), via(SECOND_MOUNT)),
        hard_link: true,
        checks_writer: false,
        value: Box::new(move |n| format!("escdet-{rule}-{n}")),
        read: Box::new(move || read_first_line(&file)),
    })
}

/// An executable of the host, like a runtime binary (runc CVE-2019-5736).
#[test]
fn every_road_to_a_host_executable_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let dir = TempDir::new("host-executable")?;
    let host = HostProcess::sleep()?;
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    let target = host_file_target("runtime-binary-overwrite", &dir, &host, "tool", 0o755)?;
    evasion::expect_every_variant_reported(&detector, &container, &target)
}

/// A file of the host that is no program, like a crontab.
#[test]
fn every_road_to_a_host_file_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let dir = TempDir::new("host-file")?;
    let host = HostProcess::sleep()?;
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::HostPid, CgroupLayout::kubepods())?;
    let target = host_file_target("host-fd-leak", &dir, &host, "crontab", 0o644)?;
    evasion::expect_every_variant_reported(&detector, &container, &target)
}

/// A host disk (a loop device of the test's) through a node the container makes; its second
/// mount is a devtmpfs, which holds every device of the host.
#[test]
fn every_road_to_a_host_disk_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let disk = HostDisk::attach()?;
    let device = disk.device();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    let node = "/tmp/disk";
    technique::make_block_node(&container, By::Workload, device, node)?;
    let name = disk
        .path()
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let target = Target {
        rule: "privileged-device-access",
        path: node.into(),
        second_mount: (
            "-t devtmpfs devtmpfs".into(),
            format!("{SECOND_MOUNT}/{name}"),
        ),
        hard_link: true,
        checks_writer: false,
        value: Box::new(|n| format!("escdet-disk-{n}")),
        read: Box::new(|| {
            let mut start = [0; 64];
            fs::File::open(disk.path())?.read_exact(&mut start)?;
            Ok(first_line(&String::from_utf8_lossy(&start)))
        }),
    };
    evasion::expect_every_variant_reported(&detector, &container, &target)
}
