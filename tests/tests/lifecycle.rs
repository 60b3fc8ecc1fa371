//! The daemon's contract outside alerts: health endpoints, metric names, exit codes.

use std::fs;

use anyhow::Context;

use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, KernelSetting, Profile, RunningContainer, alert,
    alert_matches, detector, exclusive,
    scenario::{self, SETTLE},
    technique,
};

/// CONTRACT.md, "Metrics": each must have at least one sample from the start, so that
/// dashboards and alert rules see a zero rather than nothing.
const CONTRACT_METRICS: [&str; 9] = [
    "escape_detector_alerts_total",
    "escape_detector_events_total",
    "escape_detector_events_lost_total",
    "escape_detector_probe_attached",
    "escape_detector_tracked_processes",
    "escape_detector_tracked_containers",
    "escape_detector_process_cache_misses_total",
    "escape_detector_output_errors_total",
    "escape_detector_build_info",
];

#[test]
fn serves_health_and_contract_metrics_then_exits_0_on_sigterm() -> anyhow::Result<()> {
    let _machine = exclusive();
    let mut detector = Detector::start(&[])?;
    assert_eq!(detector.http_get("/healthz")?.0, 200);
    let (status, ready) = detector.http_get("/readyz")?;
    assert_eq!(status, 200);
    // Every sensor's state, the required one first.
    assert!(
        ready.starts_with("ready\nprocess and cgroup lifecycle: tracepoint\n"),
        "{ready}"
    );
    let metrics = detector.metrics()?;
    let missing: Vec<&str> = CONTRACT_METRICS
        .into_iter()
        .filter(|name| !has_sample(&metrics, name))
        .collect();
    assert!(
        missing.is_empty(),
        "no samples of {missing:?} in\n{metrics}"
    );
    promtool_accepts(&metrics)?;
    detector.terminate()?;
    // Nothing in a clean stop is worth a warning: the programs of passed-over implementations
    // were never loaded, and the rest detach.
    let log = detector.log();
    let (_, stop) = log
        .split_once("signal received")
        .context("the detector did not log the signal")?;
    assert!(!stop.contains(" WARN "), "{stop}");
    Ok(())
}

/// Each BPF program's runs and run time, as the kernel counts them while bpf_stats_enabled is 1
/// (the setting is restored after): the exec program runs for a container's exec, and its time
/// grows with it.
#[test]
fn each_bpf_program_s_runs_and_time_are_counted_while_the_kernel_keeps_them() -> anyhow::Result<()>
{
    const RUNS: &str = "escape_detector_bpf_program_runs_total";
    const SECONDS: &str = "escape_detector_bpf_program_run_seconds_total";
    let _machine = exclusive();
    let stats = KernelSetting::save("/proc/sys/kernel/bpf_stats_enabled")?;
    fs::write("/proc/sys/kernel/bpf_stats_enabled", "1")?;
    let detector = Detector::start(&[])?;
    let exec = [("program", "sched_process_exec")];
    let before = detector.metrics()?;
    let container = Container::start(Profile::Default, CgroupLayout::Docker)?;
    container.run(By::Workload, "/bin/true && /bin/true")?;
    let after = detector.metrics()?;
    let (runs, seconds) = (
        sample(&after, RUNS, &exec) - sample(&before, RUNS, &exec),
        sample(&after, SECONDS, &exec) - sample(&before, SECONDS, &exec),
    );
    // runc's own execs and the container's: the host's count as well.
    assert!(
        runs >= 2.0,
        "{runs} exec program runs for two execs and more\n{after}"
    );
    assert!(
        seconds > 0.0,
        "no exec program time over {runs} runs\n{after}"
    );
    let programs = after.lines().filter(|l| l.starts_with(RUNS)).count();
    assert!(
        programs > 5,
        "{programs} programs with a runs series\n{after}"
    );
    drop(stats);
    Ok(())
}

/// The value of `name`'s sample with exactly `labels`; 0 when there is none.
fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    let series = format!("{name}{{{}}} ", labels.join(","));
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// `escape-detector probe` predicts, per sensor, the implementation `run` will attach; the
/// running detector must have attached exactly that one. Prints the choices, so the test
/// output shows which hooks each kernel gave each sensor.
#[test]
fn the_running_detector_uses_what_probe_predicts() -> anyhow::Result<()> {
    let _machine = exclusive();
    let probe = detector::command()?.arg("probe").output()?;
    anyhow::ensure!(probe.status.success(), "probe failed: {probe:?}");
    let table = String::from_utf8(probe.stdout)?;
    let predicted: Vec<(&str, &str)> = table
        .lines()
        .filter(|line| line.contains("<- will use;"))
        .filter_map(|line| line.split("  ").next()?.trim().rsplit_once(" via "))
        .collect();
    anyhow::ensure!(!predicted.is_empty(), "no sensor marked in\n{table}");
    let detector = Detector::start(&[])?;
    let log = detector.log();
    for (sensor, backend) in &predicted {
        eprintln!("{sensor}: {backend}");
        let attached = log.lines().any(|line| {
            line.contains(&format!("] {sensor} ("))
                && line.ends_with(&format!(": {backend} backend"))
        });
        assert!(
            attached,
            "probe predicted {backend} for {sensor}; the detector's log says otherwise\n{log}"
        );
    }
    Ok(())
}

#[test]
fn bad_flags_exit_2() -> anyhow::Result<()> {
    let _machine = exclusive();
    let status = detector::command()?
        .args(["run", "--no-such-flag"])
        .output()?
        .status;
    assert_eq!(status.code(), Some(2));
    Ok(())
}

/// Prometheus' own linter must accept the exposition (names, help, types, suffixes).
fn promtool_accepts(metrics: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    promtool
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(metrics.as_bytes())?;
    let out = promtool.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn has_sample(metrics: &str, name: &str) -> bool {
    metrics.lines().any(|line| {
        line.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
    })
}

/// A reader that has gone (`| head -1`, `| grep -q`) ends a one-shot sub-command's output
/// quietly, as it does for Unix tools. The pipe's read end is closed before the command runs,
/// so every write meets EPIPE.
#[test]
fn one_shot_commands_end_quietly_when_their_reader_has_gone() -> anyhow::Result<()> {
    let config = escape_detector_e2e::temp_dir::TempDir::new("closed-pipe")?;
    let file = config.path().join("escape-detector.toml");
    std::fs::write(&file, "enforce = false\n")?;
    let file = file.to_str().unwrap_or_default().to_owned();
    for args in [
        vec!["rules"],
        vec!["probe"],
        vec!["check-config", "--config", &file],
        vec!["--help"],
        vec!["--version"],
    ] {
        let expected = detector::command()?.args(&args).output()?.status.code();
        let (reader, writer) = std::io::pipe()?;
        drop(reader);
        let out = detector::command()?.args(&args).stdout(writer).output()?;
        assert_eq!(out.status.code(), expected, "escape-detector {args:?}");
        assert!(
            out.stderr.is_empty(),
            "escape-detector {args:?} said: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The pipelines, 20 times each: a reader that stops after one line (`head -1`) or at
/// the first match (`grep -q`) may close the pipe at any moment of the output, and the command
/// still exits 0 without a word on stderr (never 101, a panic).
#[test]
fn one_shot_commands_piped_into_head_or_grep_exit_0_every_time() -> anyhow::Result<()> {
    use std::process::{Command, Stdio};
    // `probe`, which reads the kernel's BTF, has its closed-pipe case above: 20 rounds of it
    // would cost the VM lane (TCG) minutes.
    let pipelines: [(&[&str], &[&str]); 4] = [
        (&["rules"], &["head", "-1"]),
        (&["rules"], &["grep", "-q", "cgroup-release"]),
        (&["--help"], &["head", "-1"]),
        (&["--version"], &["head", "-c", "1"]),
    ];
    for (args, reader) in pipelines {
        for run in 1..=20 {
            let mut detector = detector::command()?
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()?;
            let output = detector.stdout.take().expect("piped stdout");
            let read = Command::new(reader[0])
                .args(&reader[1..])
                .stdin(output)
                .stdout(Stdio::null())
                .status()?;
            let out = detector.wait_with_output()?;
            assert!(
                read.success() && out.status.success() && out.stderr.is_empty(),
                "run {run} of `escape-detector {args:?} | {reader:?}`: {} ({read})\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}

/// SIGHUP (`systemctl reload`, logrotate's postrotate) reads the configuration again and reopens
/// the alerts file; a file that does not read keeps the running configuration.
#[test]
fn sighup_reloads_the_config_and_reopens_the_alerts_file() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start_with_config("", &[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    let mount = |detector: &Detector| {
        scenario::expect_alert(
            detector,
            "sensitive-mount",
            &container,
            Some("mount"),
            By::Workload,
            || technique::mount_procfs(&container, By::Workload),
        )
    };
    mount(&detector)?;
    // logrotate's default mode: the file is renamed, then the agent is told.
    let rotated = detector.alerts_file().with_extension("jsonl.1");
    fs::rename(detector.alerts_file(), &rotated)?;
    detector.reload("[rules]\ndisabled = [\"bpf-from-container\"]\n", "ok")?;
    technique::create_bpf_map(&container, By::Workload)?;
    mount(&detector)?;
    detector.assert_no_alert(
        |a| alert_matches(a, "bpf-from-container", container.id()),
        SETTLE,
    );
    let before_rotation = alert::parse_lines(&fs::read_to_string(&rotated)?);
    assert_eq!(before_rotation.len(), 1, "{before_rotation:#?}");
    assert_eq!(
        detector.alerts().len(),
        1,
        "the reopened file has the later alert"
    );
    // An unknown rule id: the running configuration stays, the agent too.
    detector.reload("[rules]\ndisabled = [\"no-such-rule\"]\n", "failed")?;
    assert!(
        detector
            .log()
            .contains("reload: keeping the running configuration"),
        "{}",
        detector.log()
    );
    assert_eq!(detector.http_get("/healthz")?.0, 200);
    technique::create_bpf_map(&container, By::Workload)?;
    detector.assert_no_alert(
        |a| alert_matches(a, "bpf-from-container", container.id()),
        SETTLE,
    );
    detector.stop()?;
    Ok(())
}
