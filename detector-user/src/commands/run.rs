//! `escape-detector run`: the daemon. Order matters: the reader starts before any probe is
//! attached and /proc is read after, so no process falls between the two.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use aya::{
    Ebpf,
    maps::{HashMap, PerCpuArray, RingBuf},
};
use detector_common::{Config, FIELD_MISSING, MAX_RUNTIME_API_PORTS, user::Event};
use nix::sys::signal::{self, SigHandler, SigSet, Signal};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::{mpsc, oneshot},
};

use super::{exit, reload};
use crate::webhook::Webhook;
use crate::{
    cli::RunArgs,
    config::{self, Settings},
    enforcement::Enforcement,
    health::Health,
    http::{self, Endpoints},
    ingest,
    kernel::{
        btf::Btf,
        container_cgroups::KernelContainerCgroups,
        host::{HostReference, host_reference},
        kernel_log, loader,
        loss::LossCounters,
        offsets, own_bpf_objects,
        probes::{self, SENSORS, Sensor, SensorOutcome},
        program_runs::ProgramRuns,
        tracefs,
        watched_files::KernelFileWatch,
    },
    metrics::Metrics,
    outputs::{Output, Outputs},
    pipeline::{KernelFilters, Pipeline},
    state::{
        cgroup_table::CgroupTable, container::ContainerTable, filesystems::Filesystems,
        identity_hierarchy::IdentityHierarchy, procfs, runtime_files::RuntimeFiles, runtime_state,
    },
};

/// Periodic work: sweeps, folds whose window ended, loss counters, the health beat. A held
/// namespace change wakes the loop when its merge window ends instead, so an idle agent wakes
/// once a second (a fixed 20 ms tick cost it 50 wake-ups a second, measurable in a small VM).
const SWEEP: Duration = Duration::from_secs(1);

pub fn run(args: &RunArgs) -> u8 {
    if let Err(e) = hold_stop_signals() {
        eprintln!("cannot hold SIGTERM and SIGINT: {e}");
        return exit::PROBES_FAILED;
    }
    let settings = match settings(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return exit::BAD_INPUT;
        }
    };
    init_logging(&settings);
    let outputs = match open_outputs(&settings) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e:#}");
            return exit::BAD_INPUT;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return exit::PROBES_FAILED;
        }
    };
    match runtime.block_on(daemon(args, settings, outputs)) {
        Ok(()) => exit::OK,
        Err(e) => {
            log::error!("{e:#}");
            exit::PROBES_FAILED
        }
    }
}

/// SIGTERM and SIGINT wait, blocked, until the daemon's handlers are in place (every thread
/// started before inherits the mask), so that a stop at any moment is a clean exit, never the
/// default action's kill. A file-size limit makes writes fail (EFBIG, counted by the output)
/// instead of killing the agent with SIGXFSZ.
fn hold_stop_signals() -> nix::Result<()> {
    stop_signals().thread_block()?;
    // SAFETY: ignoring a signal installs no handler code.
    unsafe { signal::signal(Signal::SIGXFSZ, SigHandler::SigIgn) }.map(drop)
}

/// SIGHUP too: its default action would end the agent before the reload handler is in place.
fn stop_signals() -> SigSet {
    [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP]
        .into_iter()
        .collect()
}

/// The config file (or defaults) with the flags (and NODE_NAME, the `--hostname` flag's
/// fallback) on top.
fn settings(args: &RunArgs) -> Result<Settings, config::ConfigError> {
    let mut settings = match &args.config {
        Some(path) => config::load(path)?,
        None => Settings::default(),
    };
    if let Some(file) = &args.alerts_file {
        settings.alerts_file = Some(file.clone());
    }
    if let Some(addr) = args.metrics_addr {
        settings.metrics_addr = addr;
    }
    settings.enforce |= args.enforce;
    if let Some(name) = &args.hostname {
        settings.hostname = Some(name.clone());
    }
    Ok(settings)
}

/// The kernel programs' records pass at their own level, whatever the agent's is.
fn init_logging(settings: &Settings) {
    let mut filter = settings.log_level.as_str().to_owned();
    if let Some(level) = settings.kernel_log {
        filter = format!("{filter},{}={}", kernel_log::TARGET, level.as_str());
    }
    let env = env_logger::Env::default().default_filter_or(filter);
    env_logger::Builder::from_env(env)
        .format_timestamp_millis()
        .init();
}

/// Raw stdout output is the contract; the file is appended to when configured.
fn open_outputs(settings: &Settings) -> anyhow::Result<Vec<Output>> {
    let mut outputs = vec![Output::stdout()];
    if let Some(path) = &settings.alerts_file {
        outputs
            .push(Output::file(path).with_context(|| format!("--alerts-file {}", path.display()))?);
    }
    if let Some(webhook) = &settings.webhook {
        outputs.push(Output::webhook(Webhook::new(&webhook.url, webhook.format)));
    }
    Ok(outputs)
}

/// The hierarchy whose cgroups name containers, as the agent sees its mounts and cgroups.
fn identity_hierarchy(settings: &Settings) -> anyhow::Result<IdentityHierarchy> {
    let hierarchy = IdentityHierarchy::of_this_process(&settings.cgroup_identity)
        .map_err(|e| anyhow::anyhow!("choosing the cgroup hierarchy that names containers: {e}"))?;
    log::info!("containers are known by their cgroup in {hierarchy}");
    Ok(hierarchy)
}

/// The kernel object with its configuration (offsets from BTF, the host's namespaces, our pid,
/// the identity hierarchy), and the host's namespaces.
fn load_kernel_object(
    settings: &Settings,
    hierarchy: &IdentityHierarchy,
) -> anyhow::Result<(Ebpf, HostReference)> {
    let btf = Btf::from_sys_fs().context("reading the kernel's BTF")?;
    let resolved = offsets::resolve(&btf);
    for missing in &resolved.missing {
        log::warn!(
            "kernel field {} not found ({}); what needs it is skipped",
            missing.field,
            missing.reason
        );
    }
    let host = host_reference(settings.host_reference_pid).context("host namespaces")?;
    log::info!(
        "host reference: pid {} (mnt ns {})",
        host.pid,
        host.namespaces.mnt
    );
    if tracefs::ensure_mounted().context("mounting tracefs")? {
        log::info!("mounted tracefs at /sys/kernel/tracing for the syscall tracepoints");
    }
    let identity_subsys = match hierarchy.subsys_enumerator() {
        None => FIELD_MISSING,
        Some(name) => match kernel_enum(&btf, &name) {
            FIELD_MISSING => bail!("the kernel's BTF has no {name}: cannot key on {hierarchy}"),
            index => index,
        },
    };
    let enforcement = Enforcement::new(settings.enforce, &settings.enforcement)
        .context("compiling the enforcement's patterns")?;
    log::info!("enforce: {}", enforcement.describe());
    let config = Config {
        host_ns: host.namespaces,
        agent_tgid: std::process::id(),
        enforce: enforcement.kernel_refusals(),
        reading_module: kernel_enum(&btf, "READING_MODULE"),
        loading_module: kernel_enum(&btf, "LOADING_MODULE"),
        identity_hierarchy: hierarchy.hierarchy_id,
        identity_subsys,
        offsets: resolved.offsets,
        runtime_api_ports: kernel_ports(&settings.runtime_api_ports),
    };
    // Parsed BTF is the agent's largest allocation, and aya's loader parses its own: one at
    // a time.
    drop(btf);
    let ebpf = loader::load(
        &config,
        settings.ring_buffer_bytes,
        kernel_log::level(settings.kernel_log),
    )?;
    Ok((ebpf, host))
}

/// Gives the heap glibc keeps after start-up (the parsed BTF, some 20 MiB) back to the system:
/// the steady RSS is then what the agent holds.
fn release_free_heap() {
    // SAFETY: malloc_trim only walks glibc's own arenas.
    unsafe { libc::malloc_trim(0) };
}

/// The configured ports in the kernel filter's slots (the config holds no more than fit).
fn kernel_ports(ports: &[u16]) -> [u16; MAX_RUNTIME_API_PORTS] {
    let mut slots = [0; MAX_RUNTIME_API_PORTS];
    for (slot, port) in slots.iter_mut().zip(ports) {
        *slot = *port;
    }
    slots
}

/// An enumerator the programs compare with, from BTF; never matching when absent.
fn kernel_enum(btf: &Btf, name: &str) -> u32 {
    match btf.enumerator(name).and_then(|v| u32::try_from(v).ok()) {
        Some(value) => value,
        None => {
            log::warn!("kernel enumerator {name} not found; what needs it is skipped");
            FIELD_MISSING
        }
    }
}

fn take_map(ebpf: &mut Ebpf, name: &str) -> anyhow::Result<aya::maps::Map> {
    ebpf.take_map(name)
        .with_context(|| format!("map {name} missing from the kernel object"))
}

/// Attaches every sensor with the best implementation this kernel accepts, exports and logs
/// the result, and returns the backend label; fails when a required sensor cannot attach.
fn attach_sensors(
    ebpf: &mut Ebpf,
    btf: Option<&aya::Btf>,
    sensors: impl IntoIterator<Item = &'static Sensor>,
    metrics: &Metrics,
) -> anyhow::Result<Vec<SensorOutcome>> {
    let outcomes = probes::attach_all(ebpf, btf, sensors);
    for outcome in &outcomes {
        let sensor = outcome.sensor;
        if !outcome.applies {
            log::info!(
                "{} not needed: {}",
                sensor.name,
                sensor.needs.unmet_reason()
            );
            continue;
        }
        for why in &outcome.passed_over {
            log::info!("{} ({}): passed over {why}", sensor.name, sensor.feeds);
        }
        let Some(chosen) = outcome.chosen else {
            if sensor.required {
                bail!("required sensor {}: {:?}", sensor.name, outcome.passed_over);
            }
            log::warn!("{} not attached: {} degraded", sensor.name, sensor.feeds);
            // A degraded sensor shows as 0 on the probes of its last resort.
            if let Some(last) = sensor.implementations.last() {
                for probe in last.probes {
                    metrics
                        .probe_attached
                        .with_label_values(&[probe.program])
                        .set(0);
                }
            }
            continue;
        };
        for probe in chosen.probes {
            let missing = outcome
                .missing_optional
                .iter()
                .find(|(p, _)| *p == probe.program);
            match missing {
                // What the kernel lacks (a syscall, /proc/kcore) leaves nothing to watch: no
                // gauge at 0 for the probe-detached alert to fire on.
                Some((_, e)) => log::info!("optional probe {} not attached: {e}", probe.program),
                None => metrics
                    .probe_attached
                    .with_label_values(&[probe.program])
                    .set(1),
            }
        }
        log::info!(
            "{} ({}): {} backend",
            sensor.name,
            sensor.feeds,
            chosen.backend.as_str()
        );
    }
    Ok(outcomes)
}

async fn daemon(args: &RunArgs, settings: Settings, outputs: Vec<Output>) -> anyhow::Result<()> {
    // A stop held since the start is delivered now; it ends the loop below as soon as it runs.
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    stop_signals().thread_unblock()?;
    let metrics = Arc::new(Metrics::new()?);
    let health = Arc::new(Health::default());
    let listener = http::bind(settings.metrics_addr)
        .await
        .with_context(|| format!("listening on {}", settings.metrics_addr))?;

    let hierarchy = identity_hierarchy(&settings)?;
    let (mut ebpf, host) = load_kernel_object(&settings, &hierarchy)?;
    if settings.kernel_log.is_some() {
        kernel_log::forward(&mut ebpf).context("reading the kernel programs' log")?;
    }
    let ring = RingBuf::try_from(take_map(&mut ebpf, "EVENTS")?)?;
    let loss = Arc::new(Mutex::new(LossCounters::new(PerCpuArray::try_from(
        take_map(&mut ebpf, "LOST")?,
    )?)));
    let container_cgroups = KernelContainerCgroups::new(
        HashMap::try_from(take_map(&mut ebpf, "CONTAINER_CGROUPS")?)?,
        metrics.clone(),
    );
    let snapshot_hierarchy = hierarchy.clone();
    let kernel_filters = KernelFilters {
        cgroups: CgroupTable::new(hierarchy, Box::new(container_cgroups)),
        runtime_files: RuntimeFiles::new(&settings.extra_runtime_sockets),
        file_watch: Box::new(KernelFileWatch::new(HashMap::try_from(take_map(
            &mut ebpf,
            "WATCHED_FILES",
        )?)?)),
    };

    let refresh_loss = {
        let (loss, metrics) = (loss.clone(), metrics.clone());
        Arc::new(move || {
            if let Ok(mut loss) = loss.lock() {
                loss.refresh(&metrics);
            }
        })
    };
    // Known once the programs are attached.
    let program_runs: Arc<Mutex<Option<ProgramRuns>>> = Arc::default();
    let before_scrape = {
        let (refresh_loss, program_runs, metrics) =
            (refresh_loss.clone(), program_runs.clone(), metrics.clone());
        Arc::new(move || {
            refresh_loss();
            if let Ok(mut runs) = program_runs.lock()
                && let Some(runs) = runs.as_mut()
            {
                runs.refresh(&metrics);
            }
        })
    };
    let endpoints = Arc::new(Endpoints {
        health: health.clone(),
        metrics: metrics.clone(),
        before_scrape,
    });
    tokio::spawn(http::serve(listener, endpoints));
    health.beat();

    let (events_tx, mut events) = mpsc::channel::<Event>(ingest::QUEUE_DEPTH);
    let (stop_reader, reader_stop) = oneshot::channel();
    let mut reader = tokio::spawn(ingest::read_events(
        ring,
        events_tx,
        metrics.clone(),
        reader_stop,
    ));
    let btf = aya::Btf::from_sys_fs()
        .map_err(|e| log::warn!("kernel BTF unusable for LSM and fentry programs: {e}"))
        .ok();
    // The process and cgroup lifecycle first: from then on the kernel records every new
    // cgroup, so the walk of the existing ones below leaves no gap.
    let (lifecycle, acts): (Vec<&'static Sensor>, Vec<&'static Sensor>) =
        SENSORS.iter().partition(|s| s.required);
    let mut outcomes = attach_sensors(&mut ebpf, btf.as_ref(), lifecycle, &metrics)?;

    let mut pipeline = Pipeline::new(
        ContainerTable::new(runtime_state::default_roots()),
        Filesystems::read().context("reading /proc/filesystems")?,
        kernel_filters,
        metrics.clone(),
        Outputs::new(outputs, &metrics).context("starting the alert outputs")?,
        reload::pipeline_settings(&settings, &host)?,
    );
    pipeline.load_cgroups();
    outcomes.extend(attach_sensors(&mut ebpf, btf.as_ref(), acts, &metrics)?);
    // The parsed BTF has served.
    drop(btf);
    release_free_heap();
    pipeline.know_own_bpf_objects(own_bpf_objects::collect(&ebpf));
    if let Ok(mut runs) = program_runs.lock() {
        *runs = Some(ProgramRuns::new(&ebpf, &metrics));
    }
    let backend = probes::backend_label(&outcomes);
    metrics
        .build_info
        .with_label_values(&[env!("CARGO_PKG_VERSION"), backend])
        .set(1);
    pipeline.load_snapshot(procfs::snapshot(&snapshot_hierarchy));
    let sensors: Vec<String> = outcomes.iter().map(SensorOutcome::state).collect();
    health.set_ready(sensors.join("\n"));
    log::info!(
        "ready: backend {backend}, metrics on http://{}",
        settings.metrics_addr,
    );

    let mut running = settings;
    let mut sweep = tokio::time::interval(SWEEP);
    loop {
        let held_until = pipeline.held_until();
        let held_due = tokio::time::Instant::from_std(held_until.unwrap_or_else(Instant::now));
        tokio::select! {
            Some(event) = events.recv() => pipeline.handle(&event, Instant::now()),
            _ = tokio::time::sleep_until(held_due), if held_until.is_some() => {
                pipeline.tick(Instant::now());
            }
            _ = sweep.tick() => {
                pipeline.tick(Instant::now());
                pipeline.sweep(Instant::now());
                refresh_loss();
                health.beat();
            }
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = sighup.recv() => match self::settings(args) {
                Ok(read) => reload::apply(read, &mut running, &host, &mut pipeline, &metrics, |s| {
                    Ok(Outputs::new(open_outputs(s)?, &metrics)?)
                }),
                Err(e) => reload::failed(&metrics, &e),
            },
            ended = &mut reader => bail!("the ring-buffer reader stopped: {ended:?}"),
        }
    }
    // Detached first, so that what is queued is all there is; every event the kernel queued is
    // judged, and every alert written, before the exit.
    log::info!("signal received: detaching, then draining the queued events");
    probes::detach_all(&mut ebpf);
    drop(ebpf);
    let _ = stop_reader.send(());
    while let Some(event) = events.recv().await {
        pipeline.handle(&event, Instant::now());
    }
    match reader.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => log::warn!("the ring-buffer reader failed while draining: {e:#}"),
        Err(e) => log::warn!("the ring-buffer reader failed while draining: {e}"),
    }
    pipeline.flush();
    // The outputs write what is queued when dropped.
    drop(pipeline);
    log::info!("drained: exiting");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn args(config: Option<PathBuf>, hostname: Option<&str>) -> RunArgs {
        RunArgs {
            config,
            alerts_file: None,
            metrics_addr: None,
            enforce: false,
            hostname: hostname.map(str::to_owned),
        }
    }

    #[test]
    fn the_hostname_flag_beats_the_config_which_beats_the_kernel() {
        let dir = std::env::temp_dir().join(format!("escdet-run-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("escape-detector.toml");
        std::fs::write(&config, "hostname = \"from-config\"\n").unwrap();

        let flagged = settings(&args(Some(config.clone()), Some("node-7"))).unwrap();
        assert_eq!(reload::hostname(&flagged), "node-7");
        let configured = settings(&args(Some(config), None)).unwrap();
        assert_eq!(reload::hostname(&configured), "from-config");
        let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(
            reload::hostname(&settings(&args(None, None)).unwrap()),
            kernel.trim()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
