//! What containers and operators do every day must not raise alerts. Each test ends with a
//! canary escape, so that silence cannot come from a dead or blind detector.

use std::{
    fs,
    os::unix::{fs::PermissionsExt as _, process::CommandExt as _},
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{Context as _, ensure};
use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, HostDisk, HostProcess, KernelSetting, Profile,
    RunningContainer,
    alert::involves_pid,
    exclusive, rootfs,
    scenario::{self, SETTLE},
    temp_dir::TempDir,
};

#[test]
fn an_ordinary_workload_is_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Default, CgroupLayout::Docker)?;
    // The container's network namespace has only a loopback that is down: wget fails at once.
    container.exec_ok(
        "ls / ; cat /etc/passwd; echo hi > /tmp/f; ps; wget -q -O- http://127.0.0.1:1 || true",
    )?;
    scenario::expect_no_alert_for(&detector, container.id());
    scenario::expect_detector_alerts(&detector)
}

#[test]
fn runc_exec_into_a_running_container_is_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Default, CgroupLayout::kubepods())?;
    for script in [
        "true",
        "cat /proc/self/status",
        "ls /proc",
        "id",
        "hostname",
    ] {
        container.exec_ok(script)?;
    }
    scenario::expect_no_alert_for(&detector, container.id());
    scenario::expect_detector_alerts(&detector)
}

/// An operator entering a container from the host crosses namespaces the other way: the
/// process belongs to the host by its cgroup, so it is no escape.
#[test]
fn nsenter_from_the_host_into_a_container_is_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Default, CgroupLayout::Docker)?;
    let nsenter = Command::new("nsenter")
        .args(["-t", &container.init_pid().to_string()])
        .args(["-m", "-u", "-i", "-n", "-p", "--", "/bin/sh", "-c", "ls /"])
        .stdout(Stdio::piped())
        .spawn()?;
    let nsenter_pid = nsenter.id();
    let nsenter = nsenter.wait_with_output()?;
    ensure!(nsenter.status.success(), "host nsenter failed: {nsenter:?}");
    ensure!(
        String::from_utf8(nsenter.stdout)? == container.exec_ok("ls /")?,
        "nsenter did not land in the container's root"
    );
    detector.assert_no_alert(
        |a| a["container"]["id"] == container.id() || involves_pid(a, nsenter_pid),
        SETTLE,
    );
    scenario::expect_detector_alerts(&detector)
}

/// runc's own set-up mounts proc, sysfs and cgroups and changes namespaces inside the
/// container's cgroup; none of it is the container escaping.
#[test]
fn starting_and_deleting_containers_of_every_profile_is_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let mut ids = Vec::new();
    for profile in [Profile::Default, Profile::Privileged, Profile::HostPid] {
        for layout in [CgroupLayout::Docker, CgroupLayout::kubepods()] {
            let container = Container::start(profile, layout)?;
            ids.push(container.id().to_owned());
        }
    }
    detector.assert_no_alert(|a| ids.iter().any(|id| a["container"]["id"] == *id), SETTLE);
    scenario::expect_detector_alerts(&detector)
}

/// A privileged container mounting tmpfs scratch space, as build and CI containers do.
#[test]
fn tmpfs_mounts_in_a_container_are_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    container.run(
        By::Workload,
        "mkdir -p /mnt/scratch && mount -t tmpfs -o size=1m tmpfs /mnt/scratch \
         && echo x > /mnt/scratch/f && umount /mnt/scratch \
         && mount -t tmpfs tmpfs /tmp && umount /tmp",
    )?;
    scenario::expect_no_alert_for(&detector, container.id());
    scenario::expect_detector_alerts(&detector)
}

/// What a package manager does to a container's files: hundreds of files written, renamed,
/// linked, made executable and removed, hundreds of programs run, /proc and /sys read.
#[test]
fn package_manager_churn_in_a_container_is_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Default, CgroupLayout::kubepods())?;
    container.run(
        By::Workload,
        "mkdir -p /usr/lib/pkg /usr/bin && i=0; while [ $i -lt 300 ]; do \
           echo \"file $i\" > /usr/lib/pkg/f$i.new && mv /usr/lib/pkg/f$i.new /usr/lib/pkg/f$i \
           && ln -sf /usr/lib/pkg/f$i /usr/lib/pkg/l$i && ln -f /usr/lib/pkg/f$i /usr/lib/pkg/h$i; \
           i=$((i + 1)); done \
         && cp /bin/busybox /usr/bin/tool.new && chmod 755 /usr/bin/tool.new \
         && mv /usr/bin/tool.new /usr/bin/tool \
         && i=0; while [ $i -lt 300 ]; do /usr/bin/tool true; i=$((i + 1)); done \
         && cat /proc/self/status /proc/cpuinfo /proc/meminfo /proc/mounts > /dev/null \
         && ls /sys/class /sys/fs/cgroup > /dev/null && cat /proc/sys/kernel/osrelease \
         && rm -rf /usr/lib/pkg",
    )?;
    scenario::expect_no_alert_for(&detector, container.id());
    scenario::expect_detector_alerts(&detector)
}

/// Runs `program args` on the host and fails with its output unless it succeeds.
fn on_host(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .output()?;
    ensure!(
        out.status.success(),
        "{program} {} failed ({}): {}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// Host services the way systemd starts them with PrivateTmp= and ProtectSystem=: a private
/// mount namespace with its own /tmp and a read-only /usr; from there a service reads and
/// writes kernel settings as it always may.
#[test]
fn host_services_in_private_mount_namespaces_are_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let core_pattern = KernelSetting::save("/proc/sys/kernel/core_pattern")?;
    on_host(
        "unshare",
        &[
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &format!(
                "mount -t tmpfs tmpfs /tmp && mount --bind /usr /usr \
                 && mount -o remount,bind,ro /usr && echo x > /tmp/f \
                 && echo '{}' > /proc/sys/kernel/core_pattern && ls /usr/bin > /dev/null",
                core_pattern.saved()
            ),
        ],
    )?;
    detector.assert_no_alert(|_| true, SETTLE);
    scenario::expect_detector_alerts(&detector)?;
    core_pattern.restore_now()
}

/// `nobody`, by number: not every host names it.
const NOBODY: u32 = 65534;

/// Runs `program args` on the host as `nobody` (no supplementary groups) in the temp dir, and
/// fails with its output unless it succeeds.
fn as_nobody(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .uid(NOBODY)
        .gid(NOBODY)
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .output()?;
    ensure!(
        out.status.success(),
        "{program} {} as nobody failed ({}): {}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// Rootless tools on the host make user namespaces as ordinary users.
#[test]
fn a_host_user_namespace_made_by_an_unprivileged_user_is_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let act = rootfs::host_act()?;
    let act = act.to_str().context("escape-act path is not UTF-8")?;
    // Each checks that it reached a new user namespace.
    for call in ["unshare", "clone", "clone3"] {
        as_nobody(act, &["userns", call])?;
    }
    detector.assert_no_alert(|_| true, SETTLE);
    scenario::expect_detector_alerts(&detector)
}

/// su, and a setuid-root program an ordinary user runs, on the host: host privilege changes
/// are not container escapes.
#[test]
fn su_and_setuid_programs_on_the_host_are_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let dir = TempDir::new("setuid")?;
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))?;
    let suid = dir.path().join("suid-act");
    fs::copy(rootfs::host_act()?, &suid)?;
    fs::set_permissions(&suid, fs::Permissions::from_mode(0o4755))?;
    let detector = Detector::start(&[])?;
    // su to nobody where the host names it, else to root: su runs setuid either way. A host
    // without a user database (the VM lane's guest) has nothing su could switch to.
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let user = ["nobody", "root"]
        .into_iter()
        .find(|user| passwd.lines().any(|l| l.starts_with(&format!("{user}:"))));
    match user {
        Some(user) => {
            let su = on_host("su", &["-s", "/bin/sh", user, "-c", "id -un"])?;
            ensure!(su.trim() == user, "su did not become {user}: {su}");
        }
        None => eprintln!("no su: this host has no user database"),
    }
    let ids = as_nobody(suid.to_str().context("temp path is not UTF-8")?, &["ids"])?;
    ensure!(ids.trim() == "uid 65534 euid 0", "no setuid gain: {ids}");
    detector.assert_no_alert(|_| true, SETTLE);
    scenario::expect_detector_alerts(&detector)
}

/// The host itself doing every act the rules watch for in containers: none of it is an escape.
#[test]
fn the_host_doing_every_watched_act_is_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let dir = TempDir::new("host-acts")?;
    let socket = dir.path().join("api.sock");
    let _api = std::os::unix::net::UnixListener::bind(&socket)?;
    let core_pattern = KernelSetting::save("/proc/sys/kernel/core_pattern")?;
    let ksm = KernelSetting::save("/sys/kernel/mm/ksm/pages_to_scan")?;
    let disk = HostDisk::attach()?;
    let program = dir.path().join("tool");
    fs::write(&program, "")?;
    fs::set_permissions(&program, fs::Permissions::from_mode(0o755))?;
    let host = HostProcess::sleep()?;
    let detector = Detector::start_with_config(
        &format!(
            "extra_runtime_sockets = [{:?}]\n",
            socket.display().to_string()
        ),
        &[],
    )?;
    let act = rootfs::host_act()?;
    let act = act.to_str().context("escape-act path is not UTF-8")?;
    let path = |p: &Path| p.to_str().map(str::to_owned).context("path is not UTF-8");
    let (mnt, dir_path) = (path(&dir.path().join("m"))?, path(dir.path())?);
    fs::create_dir(&mnt)?;
    let (host_pid, detector_pid) = (host.pid().to_string(), detector.pid().to_string());
    let acts: Vec<Vec<String>> = [
        vec!["bpf"],
        vec!["open-by-handle", act],
        vec!["signal", &detector_pid, "18"],
        vec!["ptrace", &host_pid],
        vec!["userns", "clone", "/bin/true"],
        vec!["setns-files", &host_pid, "/bin/true"],
        vec!["chroot-exec", "/", "/bin/true"],
        vec![
            "write",
            "/proc/sys/kernel/core_pattern",
            core_pattern.saved(),
        ],
        vec![
            "write-via",
            "creat",
            "writev",
            "opener",
            "/sys/kernel/mm/ksm/pages_to_scan",
            ksm.saved(),
        ],
        vec![
            "write-via",
            "openat",
            "write",
            "opener",
            &path(&program)?,
            "x",
        ],
        vec!["open", &path(disk.path())?, "write"],
        vec!["connect", &path(&socket)?],
    ]
    .into_iter()
    .map(|words| words.into_iter().map(str::to_owned).collect())
    .collect();
    for words in &acts {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        on_host(act, &words)?;
    }
    // Mounts, and a release_agent of a private cgroup hierarchy, undone at once.
    for script in [
        format!("{act} mount proc {mnt} && umount {mnt}"),
        format!("{act} fsmount proc {mnt} && umount {mnt}"),
        format!(
            "mount -t cgroup -o none,name=escdethost{} cgroup {mnt} \
             && {act} write {mnt}/release_agent /escdet-none; status=$?; umount {mnt}; exit $status",
            std::process::id()
        ),
        format!(
            "cd {dir_path} && mknod node b {} {} && {act} open node read",
            disk.device().major,
            disk.device().minor
        ),
    ] {
        on_host("sh", &["-c", &script])?;
    }
    detector.assert_no_alert(|_| true, SETTLE);
    scenario::expect_detector_alerts(&detector)?;
    core_pattern.restore_now()?;
    ksm.restore_now()
}
