//! `escape-detector probe`: what this kernel offers, and what the detector will use.

use aya::{
    maps::MapType,
    programs::{LsmAttachType, ProgramType},
    sys::{BpfHelper, is_helper_supported, is_map_supported, is_program_supported},
};

use super::{exit, stdout};
use crate::{
    kernel::{
        btf::{Btf, BtfError},
        lsm, offsets,
        probes::{Backend, Hook, SENSORS},
        tracefs,
    },
    state::identity_hierarchy::{Choice, IdentityHierarchy},
};

struct Row {
    feature: String,
    available: bool,
    note: String,
}

fn row(feature: impl Into<String>, available: bool, note: impl Into<String>) -> Row {
    Row {
        feature: feature.into(),
        available,
        note: note.into(),
    }
}

fn program_type(name: &str, t: ProgramType) -> Row {
    match is_program_supported(t) {
        Ok(ok) => row(format!("program type {name}"), ok, ""),
        Err(e) => row(format!("program type {name}"), false, e.to_string()),
    }
}

fn lsm_enabled() -> Row {
    match lsm::bpf_active() {
        Ok(list) => row("BPF LSM in lsm=", true, list),
        Err(why) => row("BPF LSM in lsm=", false, why),
    }
}

fn btf_rows(btf: Result<&Btf, &BtfError>) -> (Row, bool) {
    match btf {
        Ok(btf) => {
            let resolved = offsets::resolve(btf);
            let missing: Vec<&str> = resolved.missing.iter().map(|m| m.field).collect();
            let note = if resolved.is_complete() {
                "all kernel fields located".to_string()
            } else {
                format!("missing: {}", missing.join(", "))
            };
            (
                row("BTF (/sys/kernel/btf/vmlinux)", true, note),
                resolved.is_complete(),
            )
        }
        Err(e) => (
            row("BTF (/sys/kernel/btf/vmlinux)", false, e.to_string()),
            false,
        ),
    }
}

/// What the kernel accepts, as far as it can be told without loading anything: each kind of
/// hook is there, or why not.
struct Offers<'a> {
    tracefs: bool,
    lsm: Result<(), String>,
    fentry: Result<(), String>,
    /// For the functions fentry, fexit and LSM programs attach to.
    btf: Option<&'a Btf>,
}

/// The cgroup hierarchy `run` would know containers by, with the default `cgroup_identity`.
fn identity_row(btf: Option<&Btf>) -> Row {
    const FEATURE: &str = "container identity (cgroup hierarchy)";
    match IdentityHierarchy::of_this_process(&Choice::Auto) {
        Err(e) => row(FEATURE, false, e),
        Ok(hierarchy) => {
            let known = hierarchy
                .subsys_enumerator()
                .is_none_or(|name| btf.is_some_and(|btf| btf.enumerator(&name).is_some()));
            let note = if known {
                hierarchy.to_string()
            } else {
                format!("{hierarchy}: the kernel's BTF does not name the controller")
            };
            row(FEATURE, known, note)
        }
    }
}

/// Why this kernel cannot attach `hook`, or `None` when it looks able to.
fn hook_missing(hook: Hook, offers: &Offers) -> Option<String> {
    let function_missing = |function: &str| {
        let described = offers.btf.is_some_and(|btf| btf.has_function(function));
        (!described).then(|| format!("no function {function} in the kernel's BTF"))
    };
    match hook {
        // Raw tracepoints are found by name at attach time.
        Hook::RawTracepoint(_) => None,
        Hook::Tracepoint(category, name) => {
            if !offers.tracefs {
                Some("tracefs is not mounted".to_owned())
            } else if !tracefs::has_tracepoint(category, name) {
                Some(format!("no tracepoint {category}:{name}"))
            } else {
                None
            }
        }
        // Every LSM hook has a BPF stub of its name for the programs to attach to.
        Hook::Lsm(name) => offers
            .lsm
            .clone()
            .err()
            .or_else(|| function_missing(&format!("bpf_lsm_{name}"))),
        Hook::FEntry(function) | Hook::FExit(function) => offers
            .fentry
            .clone()
            .err()
            .or_else(|| function_missing(function)),
    }
}

/// One row per sensor implementation; the first usable one of each sensor is marked, and an
/// unusable one says which hook this kernel lacks.
fn sensor_rows(offers: &Offers) -> Vec<Row> {
    let mut rows = Vec::new();
    for sensor in SENSORS {
        if !sensor.needs.met() {
            rows.push(row(
                format!("{} (not needed)", sensor.name),
                true,
                sensor.needs.unmet_reason(),
            ));
            continue;
        }
        let mut chosen = false;
        for implementation in sensor.implementations {
            let missing = implementation
                .probes
                .iter()
                .filter(|p| !p.optional)
                .find_map(|p| Some((p.program, hook_missing(p.hook, offers)?)));
            let usable = missing.is_none();
            let hooks: Vec<&str> = implementation.probes.iter().map(|p| p.program).collect();
            let mark = match &missing {
                None if !chosen => "<- will use; ".to_owned(),
                None => String::new(),
                Some((program, why)) => format!("{program}: {why}; "),
            };
            chosen |= usable;
            rows.push(row(
                format!("{} via {}", sensor.name, implementation.backend.as_str()),
                usable,
                format!("{mark}{} ({})", hooks.join(", "), sensor.feeds),
            ));
        }
    }
    rows
}

pub fn report() -> u8 {
    let kernel_btf = Btf::from_sys_fs();
    let (btf, offsets_complete) = btf_rows(kernel_btf.as_ref());
    let ringbuf = is_map_supported(MapType::RingBuf).unwrap_or(false);
    let tracepoint = is_program_supported(ProgramType::TracePoint).unwrap_or(false);
    let raw_tp = is_program_supported(ProgramType::RawTracePoint).unwrap_or(false);
    // Probing changes nothing on the host: `run` mounts tracefs when it is missing.
    let tracefs_ok = tracefs::is_mounted();
    let send_signal = is_helper_supported(ProgramType::TracePoint, BpfHelper::BPF_FUNC_send_signal)
        .unwrap_or(false);

    let tracing = program_type("tracing (fentry, tp_btf)", ProgramType::Tracing);
    let lsm_type = program_type("lsm", ProgramType::Lsm(LsmAttachType::Mac));
    let lsm_enabled = lsm_enabled();
    let offers = Offers {
        tracefs: tracefs_ok,
        lsm: if !lsm_type.available {
            Err("the kernel refuses LSM programs".to_owned())
        } else if !lsm_enabled.available {
            Err(lsm_enabled.note.clone())
        } else {
            Ok(())
        },
        fentry: if !tracing.available {
            Err("the kernel refuses tracing programs (fentry, fexit)".to_owned())
        } else if !btf.available {
            Err("the kernel has no BTF".to_owned())
        } else {
            Ok(())
        },
        btf: kernel_btf.as_ref().ok(),
    };
    let mut rows = vec![
        btf,
        row("ring buffer map", ringbuf, "event transport"),
        row("program type tracepoint", tracepoint, "syscall hooks"),
        row("program type raw_tracepoint", raw_tp, "lifecycle hooks"),
        tracing,
        lsm_type,
        lsm_enabled,
        row("helper bpf_send_signal", send_signal, "in-kernel kill"),
        row(
            "tracefs",
            tracefs_ok,
            if tracefs_ok {
                "/sys/kernel/tracing"
            } else {
                "not mounted: `run` mounts it; syscall tracepoints not listed"
            },
        ),
    ];
    let identity = identity_row(offers.btf);
    let identity_ok = identity.available;
    rows.push(identity);
    rows.extend(sensor_rows(&offers));

    let usable = offsets_complete && ringbuf && tracepoint && raw_tp && identity_ok;
    let mut out = format!("{:<44} {:<6} NOTE\n", "FEATURE", "OK");
    for r in &rows {
        let ok = if r.available { "yes" } else { "no" };
        out.push_str(&format!("{:<44} {:<6} {}\n", r.feature, ok, r.note));
    }
    out.push('\n');
    let code = if usable {
        let backend = match (offers.lsm.is_ok(), offers.fentry.is_ok()) {
            (true, _) => Backend::Lsm,
            (false, true) => Backend::Fentry,
            (false, false) => Backend::Tracepoint,
        }
        .as_str();
        out.push_str(&format!(
            "backend: {backend} (per sensor: the rows marked \"will use\")\n"
        ));
        exit::OK
    } else {
        out.push_str(
            "backend: none usable (needs BTF, ring buffers, tracepoints and raw tracepoints)\n",
        );
        exit::PROBES_FAILED
    };
    stdout::write(&out, code)
}
