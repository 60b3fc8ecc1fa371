//! The kernel hooks, as data. Each sensor lists its implementations, best first; the first
//! whose hooks all attach on this kernel is used, so a kernel without BPF LSM falls back to
//! tracepoints and a kernel without a hook is reported while the agent runs with the rest.

use aya::{
    Btf, Ebpf,
    programs::{FEntry, FExit, Lsm, Program, ProgramError, ProgramInfo, RawTracePoint, TracePoint},
};

use super::{lsm, tracefs};

#[derive(Debug, Clone, Copy)]
pub enum Hook {
    RawTracepoint(&'static str),
    Tracepoint(&'static str, &'static str),
    Lsm(&'static str),
    FEntry(&'static str),
    FExit(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Tracepoints and raw tracepoints: every kernel since 4.17.
    Tracepoint,
    /// BPF LSM: exact objects, before the act, and able to refuse it.
    Lsm,
    /// fentry/fexit on the kernel's security hooks: exact objects and the kernel's verdict,
    /// for acts that are reported and never refused.
    Fentry,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Tracepoint => "tracepoint",
            Backend::Lsm => "lsm",
            Backend::Fentry => "fentry",
        }
    }
}

pub struct Probe {
    /// The program's name in the kernel object (and the `probe` metric label).
    pub program: &'static str,
    pub hook: Hook,
    /// The implementation works without it (e.g. a syscall this architecture lacks).
    pub optional: bool,
}

impl Probe {
    /// Whether its absence is what `optional` excuses: the kernel lacks the hook. A syscall
    /// tracepoint the kernel has but that did not attach is a failure, not an absence: its
    /// acts would go unseen with nothing to show for it.
    fn may_be_missing(&self) -> bool {
        match self.hook {
            Hook::Tracepoint(category, name) => {
                self.optional && !tracefs::has_tracepoint(category, name)
            }
            Hook::RawTracepoint(_) | Hook::Lsm(_) | Hook::FEntry(_) | Hook::FExit(_) => {
                self.optional
            }
        }
    }
}

pub struct Implementation {
    pub backend: Backend,
    pub probes: &'static [Probe],
}

/// What a sensor needs of the kernel to make sense at all.
#[derive(Debug, Clone, Copy)]
pub enum Needs {
    Nothing,
    /// A kernel built without modules loads none: there is nothing to watch.
    ModuleSupport,
}

impl Needs {
    pub fn met(self) -> bool {
        match self {
            Needs::Nothing => true,
            Needs::ModuleSupport => std::path::Path::new("/proc/modules").exists(),
        }
    }

    pub fn unmet_reason(self) -> &'static str {
        match self {
            Needs::Nothing => "",
            Needs::ModuleSupport => "the kernel has no module support (no /proc/modules)",
        }
    }
}

pub struct Sensor {
    pub name: &'static str,
    pub needs: Needs,
    /// What depends on it, for the log and `escape-detector probe`.
    pub feeds: &'static str,
    /// Without it the process table cannot be kept, so the agent refuses to run.
    pub required: bool,
    /// Best first.
    pub implementations: &'static [Implementation],
}

const fn raw(program: &'static str) -> Probe {
    Probe {
        program,
        hook: Hook::RawTracepoint(program),
        optional: false,
    }
}

const fn syscall(program: &'static str, optional: bool) -> Probe {
    Probe {
        program,
        hook: Hook::Tracepoint("syscalls", program),
        optional,
    }
}

const fn lsm(program: &'static str) -> Probe {
    Probe {
        program,
        hook: Hook::Lsm(program),
        optional: false,
    }
}

/// A function hook named after the program (the kernel function it attaches to).
const fn fentry(program: &'static str) -> Probe {
    Probe {
        program,
        hook: Hook::FEntry(program),
        optional: false,
    }
}

const fn fexit(program: &'static str) -> Probe {
    Probe {
        program,
        hook: Hook::FExit(program),
        optional: false,
    }
}

const fn optional(probe: Probe) -> Probe {
    Probe {
        optional: true,
        ..probe
    }
}

const fn tracepoints(probes: &'static [Probe]) -> Implementation {
    Implementation {
        backend: Backend::Tracepoint,
        probes,
    }
}

pub const SENSORS: &[Sensor] = &[
    Sensor {
        name: "process and cgroup lifecycle",
        needs: Needs::Nothing,
        feeds: "container identity, process table, cgroup-escape, userns-creation by clone",
        required: true,
        implementations: &[tracepoints(&[
            raw("sched_process_exec"),
            raw("sched_process_fork"),
            raw("sched_process_exit"),
            raw("cgroup_mkdir"),
            raw("cgroup_rmdir"),
            raw("cgroup_attach_task"),
        ])],
    },
    Sensor {
        name: "signals to the agent",
        needs: Needs::Nothing,
        feeds: "agent-tamper",
        required: false,
        // The kernel's signal tracepoint, whichever call sent the signal.
        implementations: &[tracepoints(&[raw("signal_generate")])],
    },
    Sensor {
        name: "namespace changes",
        needs: Needs::Nothing,
        feeds: "host-namespace-entry",
        required: false,
        // No LSM hook sees setns; the function that switches namespaces does.
        implementations: &[
            Implementation {
                backend: Backend::Fentry,
                probes: &[fentry("switch_task_namespaces")],
            },
            tracepoints(&[
                syscall("sys_enter_setns", false),
                syscall("sys_exit_setns", false),
            ]),
        ],
    },
    Sensor {
        name: "user namespaces by unshare",
        needs: Needs::Nothing,
        feeds: "userns-creation (clone and clone3 are seen at fork)",
        required: false,
        // No LSM hook is needed for a rule never enforced. The call's entry and exit, as with
        // the tracepoints: `unshare_userns`, narrower, hands its result through a pointer 6.1's
        // verifier does not let a program read.
        implementations: &[
            Implementation {
                backend: Backend::Fentry,
                probes: &[
                    Probe {
                        hook: Hook::FEntry("ksys_unshare"),
                        ..fentry("ksys_unshare_entry")
                    },
                    fexit("ksys_unshare"),
                ],
            },
            tracepoints(&[
                syscall("sys_enter_unshare", false),
                syscall("sys_exit_unshare", false),
            ]),
        ],
    },
    Sensor {
        name: "file opens",
        needs: Needs::Nothing,
        feeds: "cgroup-release-agent, kernel-helper-hijack, kernel-tunable-write, \
                runtime-binary-overwrite, host-fd-leak, privileged-device-access",
        required: false,
        // Block devices and /proc/kcore are seen where they are opened (and block nodes where
        // they are made), which no ordinary open reaches; the memory devices at file_open, by
        // their inode. Kernels without /proc/kcore have no open_kcore.
        implementations: &[
            Implementation {
                backend: Backend::Lsm,
                probes: &[
                    lsm("file_open"),
                    fentry("blkdev_open"),
                    optional(fentry("open_kcore")),
                    fentry("security_inode_mknod"),
                ],
            },
            Implementation {
                backend: Backend::Fentry,
                probes: &[
                    fexit("security_file_open"),
                    fentry("blkdev_open"),
                    optional(fentry("open_kcore")),
                    fentry("security_inode_mknod"),
                ],
            },
            tracepoints(&[
                syscall("sys_exit_openat", false),
                syscall("sys_exit_openat2", true),
                syscall("sys_exit_open", true),
                syscall("sys_exit_creat", true),
                syscall("sys_enter_mknodat", false),
                syscall("sys_exit_mknodat", false),
                syscall("sys_enter_mknod", true),
                syscall("sys_exit_mknod", true),
            ]),
        ],
    },
    Sensor {
        name: "opens by handle",
        needs: Needs::Nothing,
        feeds: "open-by-handle",
        required: false,
        // No LSM hook tells an open by handle from any other open.
        implementations: &[
            Implementation {
                backend: Backend::Fentry,
                probes: &[fexit("do_handle_open")],
            },
            tracepoints(&[syscall("sys_exit_open_by_handle_at", false)]),
        ],
    },
    Sensor {
        name: "module loads",
        needs: Needs::ModuleSupport,
        feeds: "kernel-module-load",
        required: false,
        implementations: &[
            Implementation {
                backend: Backend::Lsm,
                probes: &[
                    lsm("kernel_read_file"),
                    lsm("kernel_load_data"),
                    lsm("kernel_module_request"),
                ],
            },
            // Not syscall tracepoints: the kernel's own module events.
            tracepoints(&[raw("module_load"), raw("module_request")]),
        ],
    },
    Sensor {
        name: "mounts",
        needs: Needs::Nothing,
        feeds: "sensitive-mount",
        required: false,
        implementations: &[
            Implementation {
                backend: Backend::Fentry,
                probes: &[
                    fexit("vfs_get_tree"),
                    Probe {
                        hook: Hook::FExit("__do_loopback"),
                        ..fexit("do_loopback")
                    },
                    // 5.9+: remounts.
                    optional(fexit("path_mount")),
                ],
            },
            tracepoints(&[
                syscall("sys_enter_mount", false),
                syscall("sys_exit_mount", false),
                // The new mount API (5.2+).
                syscall("sys_enter_fsconfig", true),
                syscall("sys_exit_fsconfig", true),
            ]),
        ],
    },
    Sensor {
        name: "bpf calls",
        needs: Needs::Nothing,
        feeds: "bpf-from-container",
        required: false,
        implementations: &[
            Implementation {
                backend: Backend::Fentry,
                probes: &[fentry("security_bpf")],
            },
            tracepoints(&[syscall("sys_enter_bpf", false)]),
        ],
    },
    Sensor {
        name: "process access",
        needs: Needs::Nothing,
        feeds: "ptrace-outside-container",
        required: false,
        implementations: &[
            Implementation {
                backend: Backend::Fentry,
                probes: &[
                    fexit("security_ptrace_access_check"),
                    optional(fexit("proc_mem_open")),
                ],
            },
            tracepoints(&[
                syscall("sys_enter_ptrace", false),
                syscall("sys_exit_ptrace", false),
                syscall("sys_enter_process_vm_readv", true),
                syscall("sys_exit_process_vm_readv", true),
                syscall("sys_enter_process_vm_writev", true),
                syscall("sys_exit_process_vm_writev", true),
                // 5.6+.
                syscall("sys_enter_pidfd_getfd", true),
                syscall("sys_exit_pidfd_getfd", true),
            ]),
        ],
    },
    Sensor {
        name: "unix connects",
        needs: Needs::Nothing,
        feeds: "runtime-socket-access",
        required: false,
        implementations: &[
            Implementation {
                backend: Backend::Fentry,
                probes: &[fexit("security_unix_stream_connect")],
            },
            tracepoints(&[
                syscall("sys_enter_connect", false),
                syscall("sys_exit_connect", false),
            ]),
        ],
    },
    Sensor {
        name: "tcp connects",
        needs: Needs::Nothing,
        feeds: "runtime-socket-access (kubelet and docker TCP APIs)",
        required: false,
        // A TCP state change, not a syscall: every backend uses it, at no cost to other calls.
        implementations: &[tracepoints(&[raw("inet_sock_set_state")])],
    },
];

/// What became of one sensor on this kernel.
pub struct SensorOutcome {
    pub sensor: &'static Sensor,
    /// False when the kernel has nothing for the sensor to watch; nothing was attached.
    pub applies: bool,
    /// The implementation in use, or `None` when none attached.
    pub chosen: Option<&'static Implementation>,
    /// Why better implementations (or, with none chosen, every one) were passed over.
    pub passed_over: Vec<String>,
    /// Probes of the chosen implementation that did not attach (optional ones).
    pub missing_optional: Vec<(&'static str, String)>,
}

impl SensorOutcome {
    /// One line for /readyz: the backend in use, or plainly why there is none.
    pub fn state(&self) -> String {
        let sensor = self.sensor;
        if !self.applies {
            return format!(
                "{}: not needed: {}",
                sensor.name,
                sensor.needs.unmet_reason()
            );
        }
        let Some(chosen) = self.chosen else {
            return format!(
                "{}: not attached, {} blind: {}",
                sensor.name,
                sensor.feeds,
                self.passed_over.join("; ")
            );
        };
        let mut line = format!("{}: {}", sensor.name, chosen.backend.as_str());
        if !self.missing_optional.is_empty() {
            let missing: Vec<&str> = self.missing_optional.iter().map(|(p, _)| *p).collect();
            line.push_str(&format!(" (without {})", missing.join(", ")));
        }
        line
    }
}

/// Attaches each sensor with the best implementation this kernel accepts.
pub fn attach_all(
    ebpf: &mut Ebpf,
    btf: Option<&Btf>,
    sensors: impl IntoIterator<Item = &'static Sensor>,
) -> Vec<SensorOutcome> {
    sensors
        .into_iter()
        .map(|sensor| attach_sensor(ebpf, btf, sensor))
        .collect()
}

fn attach_sensor(ebpf: &mut Ebpf, btf: Option<&Btf>, sensor: &'static Sensor) -> SensorOutcome {
    let mut passed_over = Vec::new();
    if !sensor.needs.met() {
        return SensorOutcome {
            sensor,
            applies: false,
            chosen: None,
            passed_over,
            missing_optional: Vec::new(),
        };
    }
    for implementation in sensor.implementations {
        match attach_implementation(ebpf, btf, implementation) {
            Ok(missing_optional) => {
                return SensorOutcome {
                    sensor,
                    applies: true,
                    chosen: Some(implementation),
                    passed_over,
                    missing_optional,
                };
            }
            Err(e) => passed_over.push(format!("{}: {e:#}", implementation.backend.as_str())),
        }
    }
    SensorOutcome {
        sensor,
        applies: true,
        chosen: None,
        passed_over,
        missing_optional: Vec::new(),
    }
}

/// Attaches every probe of the implementation, or none: a half-attached one is unloaded.
fn attach_implementation(
    ebpf: &mut Ebpf,
    btf: Option<&Btf>,
    implementation: &Implementation,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let mut attached = Vec::new();
    let mut missing_optional = Vec::new();
    for probe in implementation.probes {
        match attach(ebpf, btf, probe) {
            Ok(()) => attached.push(probe.program),
            Err(e) if probe.may_be_missing() => {
                missing_optional.push((probe.program, format!("{e:#}")));
            }
            Err(e) => {
                for program in attached {
                    unload(ebpf, program);
                }
                return Err(e.context(probe.program));
            }
        }
    }
    Ok(missing_optional)
}

/// Detaches and unloads a program of a half-attached implementation.
fn unload(ebpf: &mut Ebpf, program: &str) {
    if let Some(p) = ebpf.program_mut(program) {
        unload_program(program, p);
    }
}

/// Detaches and unloads every program at once. Each detach waits for an RCU grace period
/// (20 to 120 ms on 6.18), so one after the other they held a stop for 1.7 s; waited for
/// together, they share one.
pub fn detach_all(ebpf: &mut Ebpf) {
    std::thread::scope(|scope| {
        for (name, program) in ebpf.programs_mut() {
            scope.spawn(move || unload_program(name, program));
        }
    });
}

fn unload_program(name: &str, program: &mut Program) {
    let result = match program {
        Program::RawTracePoint(p) => p.unload(),
        Program::TracePoint(p) => p.unload(),
        Program::Lsm(p) => p.unload(),
        Program::FEntry(p) => p.unload(),
        Program::FExit(p) => p.unload(),
        _ => Ok(()),
    };
    match result {
        // A sensor's passed-over implementations were never loaded.
        Ok(()) | Err(ProgramError::NotLoaded) => {}
        Err(e) => log::warn!("unloading {name}: {e}"),
    }
}

fn attach(ebpf: &mut Ebpf, btf: Option<&Btf>, probe: &Probe) -> anyhow::Result<()> {
    let program = ebpf
        .program_mut(probe.program)
        .ok_or_else(|| anyhow::anyhow!("program {} missing from the object", probe.program))?;
    match probe.hook {
        Hook::RawTracepoint(name) => {
            let p: &mut RawTracePoint = program.try_into()?;
            p.load()?;
            log_verified(probe, p.info());
            p.attach(name)?;
        }
        Hook::Tracepoint(category, name) => {
            let p: &mut TracePoint = program.try_into()?;
            p.load()?;
            log_verified(probe, p.info());
            p.attach(category, name)?;
        }
        Hook::Lsm(hook) => {
            lsm::bpf_active().map_err(anyhow::Error::msg)?;
            let p: &mut Lsm = program.try_into()?;
            p.load(hook, need_btf(btf)?)?;
            log_verified(probe, p.info());
            p.attach()?;
        }
        Hook::FEntry(function) => {
            let p: &mut FEntry = program.try_into()?;
            p.load(function, need_btf(btf)?)?;
            log_verified(probe, p.info());
            p.attach()?;
        }
        Hook::FExit(function) => {
            let p: &mut FExit = program.try_into()?;
            p.load(function, need_btf(btf)?)?;
            log_verified(probe, p.info());
            p.attach()?;
        }
    }
    Ok(())
}

/// The verifier's work on a loaded program: what grows when a change makes older kernels'
/// verifiers slow.
fn log_verified(probe: &Probe, info: Result<ProgramInfo, ProgramError>) {
    if let Some(count) = info.ok().and_then(|i| i.verified_instruction_count()) {
        log::debug!("{}: {count} instructions verified", probe.program);
    }
}

fn need_btf(btf: Option<&Btf>) -> anyhow::Result<&Btf> {
    btf.ok_or_else(|| anyhow::anyhow!("no kernel BTF for LSM and fentry programs"))
}

/// The backend label of `build_info`: the best backend any sensor runs on (LSM, then fentry,
/// then tracepoints).
pub fn backend_label(outcomes: &[SensorOutcome]) -> &'static str {
    let uses = |backend| {
        outcomes
            .iter()
            .any(|o| o.chosen.is_some_and(|i| i.backend == backend))
    };
    [Backend::Lsm, Backend::Fentry]
        .into_iter()
        .find(|b| uses(*b))
        .unwrap_or(Backend::Tracepoint)
        .as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sensor(name: &str) -> &'static Sensor {
        SENSORS.iter().find(|s| s.name == name).unwrap()
    }

    #[test]
    fn states_say_the_backend_or_why_there_is_none() {
        let files = sensor("file opens");
        let attached = SensorOutcome {
            sensor: files,
            applies: true,
            chosen: Some(&files.implementations[1]),
            passed_over: vec!["lsm: the BPF LSM is not active".to_owned()],
            missing_optional: vec![("open_kcore", "no such function".to_owned())],
        };
        assert_eq!(attached.state(), "file opens: fentry (without open_kcore)");
        let mounts = sensor("mounts");
        let blind = SensorOutcome {
            sensor: mounts,
            applies: true,
            chosen: None,
            passed_over: vec!["fentry: EPERM".to_owned(), "tracepoint: ENOENT".to_owned()],
            missing_optional: Vec::new(),
        };
        assert_eq!(
            blind.state(),
            "mounts: not attached, sensitive-mount blind: fentry: EPERM; tracepoint: ENOENT"
        );
        let modules = SensorOutcome {
            sensor: sensor("module loads"),
            applies: false,
            chosen: None,
            passed_over: Vec::new(),
            missing_optional: Vec::new(),
        };
        assert_eq!(
            modules.state(),
            "module loads: not needed: the kernel has no module support (no /proc/modules)"
        );
    }

    #[test]
    fn an_optional_syscall_tracepoint_excuses_only_its_absence() {
        assert!(syscall("sys_enter_no_such_call", true).may_be_missing());
        assert!(!syscall("sys_enter_no_such_call", false).may_be_missing());
        if tracefs::has_tracepoint("syscalls", "sys_enter_process_vm_readv") {
            assert!(!syscall("sys_enter_process_vm_readv", true).may_be_missing());
        }
    }
}
