#!/bin/sh
# /init of the vmtest guest, PID 1 (/bin/sh is dash, as on the development VMs). It mounts what
# the detector and the e2e tests need, runs `escape-detector probe` and every test binary in
# /vmtest/tests, and powers the machine off. Lines starting with "VMTEST " are for the host
# (xtask/src/vmtest/report.rs); the last one is the verdict. Arguments (the kernel command line
# after "--") go to every test binary, e.g. the name of one test. The kernel passes
# vmtest_cgroups=hybrid|unified (the cgroup layout to mount) in the environment, and
# vmtest_mode=bench to run `xtask bench` (with those arguments) instead of the tests.

export PATH=/usr/sbin:/usr/bin:/sbin:/bin

power_off() {
    # The serial console may still hold the last lines; give it a moment before the machine goes.
    sleep 1
    poweroff -f
    echo o >/proc/sysrq-trigger
}

abort() {
    echo "VMTEST ABORTED: $*"
    power_off
    exit 1
}

# runc's pivot_root refuses the initramfs (rootfs can never be unmounted) and the tests do not
# ask runc for --no-pivot, so the first run copies everything onto a tmpfs and starts this
# script again with the tmpfs as the root.
if [ -z "${VMTEST_ON_TMPFS:-}" ]; then
    mount -t tmpfs -o mode=0755 tmpfs /newroot || abort "mounting a tmpfs at /newroot"
    for entry in /*; do
        if [ "$entry" != /newroot ]; then
            cp -a "$entry" /newroot/ || abort "copying $entry to the tmpfs"
        fi
    done
    export VMTEST_ON_TMPFS=1
    exec switch_root /newroot /init "$@"
fi

mount -t proc proc /proc || abort "mounting proc at /proc"
read -r uptime _ </proc/uptime
echo "VMTEST BOOTED: ${uptime} s after the kernel started"

mount_fs() {
    mount -t "$1" "$1" "$2" || abort "mounting $1 at $2"
}
mount_fs sysfs /sys
mount_fs devtmpfs /dev
mount_fs tmpfs /run
mount_fs tmpfs /tmp
case "${vmtest_cgroups:-}" in
hybrid)
    # The development VMs' layout, which the e2e harness is written for: v1 controllers, a
    # named systemd hierarchy, and cgroup2 at unified.
    mount -t tmpfs -o mode=0755 cgroups /sys/fs/cgroup || abort "mounting a tmpfs at /sys/fs/cgroup"
    for hierarchy in cpu cpuacct cpuset memory devices freezer blkio pids none,name=systemd; do
        dir=/sys/fs/cgroup/${hierarchy#none,name=}
        mkdir "$dir" && mount -t cgroup -o "$hierarchy" cgroup "$dir" || abort "mounting cgroup $hierarchy"
    done
    mkdir /sys/fs/cgroup/unified && mount_fs cgroup2 /sys/fs/cgroup/unified
    ;;
unified)
    mount_fs cgroup2 /sys/fs/cgroup
    ;;
*)
    abort "vmtest_cgroups=${vmtest_cgroups:-} on the kernel command line: hybrid or unified"
    ;;
esac
mount_fs securityfs /sys/kernel/security
mount_fs tracefs /sys/kernel/tracing
# Nothing pins BPF objects yet: a missing bpffs is worth a line, not a failed run.
mount -t bpf bpf /sys/fs/bpf || echo "vmtest: no bpffs at /sys/fs/bpf"
# The e2e tests' machine-wide lock file, and runc's state.
mkdir -p /run/lock /run/runc
# The tests talk to the detector's HTTP endpoints on 127.0.0.1. Loopback only: the machine has
# no network card.
ip link set lo up || abort "bringing up the loopback interface"

release=$(uname -r)
while read -r module; do
    insmod "/lib/modules/$release/$module" || abort "loading $module"
done </vmtest/modules

echo "VMTEST KERNEL: $release"
echo "VMTEST LSM: $(cat /sys/kernel/security/lsm)"

escape-detector probe
echo "VMTEST PROBE: exit $?"

if [ "${vmtest_mode:-tests}" = bench ]; then
    echo "VMTEST RUNNING: bench"
    started=$(date +%s)
    /bin/xtask bench "$@" </dev/null
    status=$?
    echo "VMTEST BINARY: bench exit $status after $(($(date +%s) - started)) s"
    if [ "$status" = 0 ]; then
        echo "VMTEST RESULT: 1 passed, 0 failed"
    else
        echo "VMTEST RESULT: 0 passed, 1 failed"
    fi
    power_off
fi

passed=0
failed=0
for test in /vmtest/tests/*; do
    name=${test##*/}
    echo "VMTEST RUNNING: $name"
    started=$(date +%s)
    # The representative subset names the tests to run of some binaries (one name per line,
    # split into words here on purpose).
    only=
    [ -f "/vmtest/only/$name" ] && only="--exact $(cat "/vmtest/only/$name")"
    # shellcheck disable=SC2086
    ESCAPE_DETECTOR_BIN=/bin/escape-detector ESCAPE_ACT_BIN=/bin/escape-act \
        "$test" --test-threads=1 $only "$@" </dev/null
    status=$?
    echo "VMTEST BINARY: $name exit $status after $(($(date +%s) - started)) s"
    if [ "$status" = 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
done
echo "VMTEST RESULT: $passed passed, $failed failed"
power_off
