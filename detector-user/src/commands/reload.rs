//! SIGHUP (`systemctl reload`, logrotate's postrotate): the configuration is read again and the
//! alerts file reopened. What the kernel programs were loaded with, or what the agent bound at
//! start, changes only on a restart: the log says which. A file that does not read keeps the
//! running configuration, says why, and counts in `escape_detector_config_reloads_total`.

use std::collections::HashSet;

use anyhow::Context as _;

use crate::{
    config::Settings,
    enforcement::Enforcement,
    exceptions::Exceptions,
    kernel::host::HostReference,
    metrics::Metrics,
    outputs::Outputs,
    pipeline::{Pipeline, PipelineSettings},
    redaction::Redaction,
};

/// The pipeline's share of the settings: everything a reload may change.
pub fn pipeline_settings(
    settings: &Settings,
    host: &HostReference,
) -> anyhow::Result<PipelineSettings> {
    Ok(PipelineSettings {
        hostname: hostname(settings),
        boot_id: boot_id()?,
        host_ns: host.namespaces,
        host_pid: host.pid,
        host_root: host.root,
        enforcement: Enforcement::new(settings.enforce, &settings.enforcement)
            .context("compiling the enforcement's patterns")?,
        disabled_rules: settings
            .disabled_rules
            .iter()
            .cloned()
            .collect::<HashSet<_>>(),
        extra_usermode_helpers: settings.extra_usermode_helpers.clone(),
        exceptions: Exceptions::new(&settings.exceptions)
            .context("compiling the exceptions' patterns")?,
        redaction: Redaction::new(&settings.redaction.patterns)
            .context("compiling the redaction patterns")?,
    })
}

/// The configured name (flag, NODE_NAME or config), else the kernel's hostname.
pub fn hostname(settings: &Settings) -> String {
    settings.hostname.clone().unwrap_or_else(|| {
        nix::unistd::gethostname()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    })
}

/// This boot's id, which makes alert ids unique across reboots.
fn boot_id() -> anyhow::Result<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .context("reading the boot id")?;
    Ok(id.trim().to_owned())
}

/// Applies `read` (the file read again, the flags on top) over `running`, which it updates.
pub fn apply(
    read: Settings,
    running: &mut Settings,
    host: &HostReference,
    pipeline: &mut Pipeline,
    metrics: &Metrics,
    open_outputs: impl FnOnce(&Settings) -> anyhow::Result<Outputs>,
) {
    let mut next = read;
    let kept = keep_restart_only(running, &mut next);
    if !kept.is_empty() {
        log::warn!(
            "reload: {} change only on a restart; keeping the running values",
            kept.join(", ")
        );
    }
    let applied =
        pipeline_settings(&next, host).and_then(|settings| Ok((settings, open_outputs(&next)?)));
    match applied {
        Ok((settings, outputs)) => {
            pipeline.reconfigure(settings, outputs);
            *running = next;
            metrics.config_reloaded(true);
            log::info!("reload: configuration read again, alerts file reopened");
        }
        Err(e) => failed(metrics, &e),
    }
}

/// The file could not be read or validated.
pub fn failed(metrics: &Metrics, why: &dyn std::fmt::Display) {
    metrics.config_reloaded(false);
    log::error!("reload: keeping the running configuration: {why:#}");
}

/// Puts the running values back into `next` where only a restart can change them (the kernel
/// programs' configuration and log level, the HTTP listener, the ring buffer, the identity
/// hierarchy, the log filter, the watched sockets), and names those that differed.
fn keep_restart_only(running: &Settings, next: &mut Settings) -> Vec<&'static str> {
    let mut kept = Vec::new();
    macro_rules! keep {
        ($($field:ident),+) => {$(
            if next.$field != running.$field {
                kept.push(stringify!($field));
                next.$field = running.$field.clone();
            }
        )+};
    }
    keep!(
        metrics_addr,
        enforce,
        enforcement,
        log_level,
        kernel_log,
        host_reference_pid,
        cgroup_identity,
        ring_buffer_bytes,
        extra_runtime_sockets,
        runtime_api_ports
    );
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_only_values_are_kept_and_named() {
        let running = Settings::default();
        let mut next = Settings {
            enforce: true,
            ring_buffer_bytes: 4096,
            hostname: Some("node-9".into()),
            disabled_rules: vec!["userns-creation".into()],
            ..Settings::default()
        };
        assert_eq!(
            keep_restart_only(&running, &mut next),
            ["enforce", "ring_buffer_bytes"]
        );
        assert!(!next.enforce);
        assert_eq!(next.ring_buffer_bytes, running.ring_buffer_bytes);
        assert_eq!(next.hostname.as_deref(), Some("node-9"), "reloadable");
        assert_eq!(next.disabled_rules, ["userns-creation"]);
    }
}
