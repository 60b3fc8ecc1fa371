#!/bin/sh
# The systemd boot's checks (xtask/src/vmtest/systemd_boot.rs): run by vmtest-systemd.service
# once systemd, as PID 1, has started escape-detector.service as deploy/systemd installs it.
# Each check prints `VMTEST SYSTEMD CHECK: ok NAME` or `VMTEST SYSTEMD CHECK: FAILED NAME: why`
# on the console; the host expects every check it knows, ok. Then the guest powers off.

UNIT=escape-detector.service
CONFIG=/etc/escape-detector/escape-detector.toml
METRICS=http://127.0.0.1:9560

say() { echo "VMTEST SYSTEMD $*"; }
ok() { say "CHECK: ok $1"; }
failed() { say "CHECK: FAILED $1: $2"; }
property() { systemctl show --property="$1" --value "$UNIT"; }
get() { curl --silent --fail --max-time 5 "$METRICS$1"; }

# Polls `$2...` every second for up to $1 seconds; true once it succeeds.
within() {
    seconds=$1
    shift
    while [ "$seconds" -gt 0 ]; do
        "$@" && return 0
        sleep 1
        seconds=$((seconds - 1))
    done
    return 1
}

# The JSON alerts the unit wrote to the journal (its stdout, among its log lines) about rule $1
# in container $2.
alerts_about() {
    journalctl --unit "$UNIT" --output cat --no-pager |
        jq -c -R --arg rule "$1" --arg id "$2" \
            'fromjson? | select(type == "object" and .rule == $rule and .container.id == $id)'
}
alerted() { [ -n "$(alerts_about "$1" "$2")" ]; }

# A privileged container (cgroup /docker/ID, as Docker's cgroupfs driver names it) whose own
# process, the container's init, runs `$2`: the workload acting, not an exec session.
run_container() {
    id=$1
    bundle=/var/tmp/bundle-$id
    mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/sys" "$bundle/rootfs/dev"
    cp /bin/busybox "$bundle/rootfs/bin/busybox"
    for applet in sh mount mkdir sleep; do ln -s busybox "$bundle/rootfs/bin/$applet"; done
    (cd "$bundle" && runc spec) || return 1
    caps='["CAP_SYS_ADMIN","CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FOWNER","CAP_SETUID","CAP_SETGID","CAP_KILL"]'
    jq --arg script "$2" --arg cgroup "/docker/$id" --argjson caps "$caps" '
        .process.terminal = false
        | .process.args = ["/bin/sh", "-c", $script]
        | .process.capabilities |= with_entries(.value = $caps)
        | .root.readonly = false
        | .linux.cgroupsPath = $cgroup
        | .linux.maskedPaths = []
        | .linux.readonlyPaths = []
        | del(.linux.seccomp)' "$bundle/config.json" >"$bundle/spec.json" &&
        mv "$bundle/spec.json" "$bundle/config.json" || return 1
    runc run --bundle "$bundle" "$id" </dev/null
    status=$?
    runc delete --force "$id" 2>/dev/null
    rm -rf "$bundle"
    return $status
}

random_id() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }

# 1. systemd started the unit, the agent is ready, and runs as the unit says.
if within 300 get /readyz >/dev/null; then
    ok ready
else
    failed ready "no 200 from /readyz within 300 s; $(property ActiveState), $(property SubState)"
    curl --silent --show-error --max-time 5 "$METRICS/readyz" 2>&1 | tail -n 3
    busybox ip addr show lo 2>&1
    echo "listening (port 9560 is 2558):"
    cat /proc/net/tcp
    journalctl --unit "$UNIT" --no-pager | tail -n 30
fi
# The unit's four capabilities: CAP_DAC_READ_SEARCH (2), CAP_SYS_PTRACE (19), CAP_PERFMON (38)
# and CAP_BPF (39), and nothing else; a change to the unit must change this on purpose.
UNIT_CAPABILITIES=000000c000080004
pid=$(property MainPID)
uid=$(awk '/^Uid:/ { print $3 }' "/proc/$pid/status")
effective=$(awk '/^CapEff:/ { print $2 }' "/proc/$pid/status")
if [ -n "$uid" ] && [ "$uid" != 0 ] && [ "$effective" = "$UNIT_CAPABILITIES" ]; then
    ok unprivileged
else
    failed unprivileged "pid $pid runs as uid ${uid:-unknown} with CapEff ${effective:-unknown}"
fi

# 2. A container escape in this guest raises the alert, attributed to its container.
id=$(random_id)
run_container "$id" 'mkdir -p /host-proc && mount -t proc proc /host-proc && sleep 1'
if within 60 alerted sensitive-mount "$id"; then
    # busybox's sh runs its applets through /proc/self/exe: the process is named by its argv.
    alert=$(alerts_about sensitive-mount "$id" | head -n 1)
    program=$(echo "$alert" | jq -r '.process.args[0]')
    fstype=$(echo "$alert" | jq -r .details.fstype)
    cgroup=$(echo "$alert" | jq -r .process.cgroup)
    if [ "$program" = mount ] && [ "$fstype" = proc ] && [ "$cgroup" = "/docker/$id" ]; then
        ok escape-alerted
    else
        failed escape-alerted "program $program, fstype $fstype, cgroup $cgroup: $alert"
        echo "every sensitive-mount alert of the container (pid, program, args):"
        alerts_about sensitive-mount "$id" | jq -c '[.process.pid, .process.comm, .process.args]'
        echo "the agent's log and its attribution counters:"
        journalctl --unit "$UNIT" --output cat --no-pager | grep -v '^{' | tail -n 20
        get /metrics | grep -E '^escape_detector_(unclassified_acts|acts_dropped|events_lost)_total' |
            grep -v ' 0$'
    fi
else
    failed escape-alerted "no sensitive-mount alert for container $id"
    journalctl --unit "$UNIT" --no-pager | tail -n 30
fi

# 3. `systemctl reload` reads the file again in the same process; a file that does not
# validate fails the reload and leaves the agent running.
reloaded() { get /metrics | grep -q 'escape_detector_config_reloads_total{result="ok"} 1'; }
if systemctl reload "$UNIT" && within 30 reloaded &&
    [ "$(property MainPID)" = "$pid" ] && [ "$(property ActiveState)" = active ]; then
    ok reload
else
    failed reload "$(property ActiveState), MainPID $(property MainPID) (was $pid)"
fi
cp "$CONFIG" /var/tmp/config.good
echo 'enforce = "not a boolean"' >>"$CONFIG"
if ! systemctl reload "$UNIT" 2>/dev/null && [ "$(property MainPID)" = "$pid" ] &&
    [ "$(property ActiveState)" = active ]; then
    ok bad-reload-refused
else
    failed bad-reload-refused "$(property ActiveState), MainPID $(property MainPID) (was $pid)"
fi
cp /var/tmp/config.good "$CONFIG"

# 4. `systemctl stop`: SIGTERM, a clean exit, no restart.
if systemctl stop "$UNIT" && [ "$(property ActiveState)" = inactive ] &&
    [ "$(property Result)" = success ] && [ "$(property ExecMainStatus)" = 0 ]; then
    ok stop
else
    failed stop "$(property ActiveState), result $(property Result), status $(property ExecMainStatus)"
fi

say "DONE"
systemctl poweroff --no-block
