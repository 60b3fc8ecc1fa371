//! `escape-detector probe`: what this kernel offers, and what the detector will use.

use aya::{
    maps::MapType,
    programs::{LsmAttachType, ProgramType},
    sys::{BpfHelper, is_helper_supported, is_map_supported, is_program_supported},
};

use super::{exit, stdout};
use crate::{
    kernel::{
        btf::Btf,
        offsets,
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
    match std::fs::read_to_string("/sys/kernel/security/lsm") {
        Ok(list) => row(
            "BPF LSM in lsm=",
            list.split(',').any(|l| l.trim() == "bpf"),
            list.trim().to_string(),
        ),
        Err(e) => row(
            "BPF LSM in lsm=",
            false,
            format!("/sys/kernel/security/lsm: {e}"),
        ),
    }
}

fn btf_rows() -> (Row, bool) {
    match Btf::from_sys_fs() {
        Ok(btf) => {
            let resolved = offsets::resolve(&btf);
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

/// What the kernel accepts, as far as it can be told without loading anything.
struct Offers {
    tracefs: bool,
    lsm: bool,
    fentry: bool,
}

/// The cgroup hierarchy `run` would know containers by, with the default `cgroup_identity`.
fn identity_row() -> Row {
    const FEATURE: &str = "container identity (cgroup hierarchy)";
    match IdentityHierarchy::of_this_process(&Choice::Auto) {
        Err(e) => row(FEATURE, false, e),
        Ok(hierarchy) => {
            let known = hierarchy.subsys_enumerator().is_none_or(|name| {
                Btf::from_sys_fs().is_ok_and(|btf| btf.enumerator(&name).is_some())
            });
            let note = if known {
                hierarchy.to_string()
            } else {
                format!("{hierarchy}: the kernel's BTF does not name the controller")
            };
            row(FEATURE, known, note)
        }
    }
}

/// Whether this kernel looks able to attach `hook`.
fn hook_available(hook: Hook, offers: &Offers) -> bool {
    match hook {
        // Raw tracepoints are found by name at attach time.
        Hook::RawTracepoint(_) => true,
        Hook::Tracepoint(category, name) => {
            offers.tracefs && tracefs::has_tracepoint(category, name)
        }
        Hook::Lsm(_) => offers.lsm,
        Hook::FEntry(_) | Hook::FExit(_) => offers.fentry,
    }
}

/// One row per sensor implementation; the first usable one of each sensor is marked.
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
            let usable = implementation
                .probes
                .iter()
                .all(|p| p.optional || hook_available(p.hook, offers));
            let hooks: Vec<&str> = implementation.probes.iter().map(|p| p.program).collect();
            let mark = if usable && !chosen {
                "<- will use; "
            } else {
                ""
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
    let (btf, offsets_complete) = btf_rows();
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
        lsm: lsm_type.available && lsm_enabled.available,
        fentry: tracing.available && btf.available,
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
    let identity = identity_row();
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
        let backend = match (offers.lsm, offers.fentry) {
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
