//! The alerting stack end to end, on loopback: a real Prometheus scrapes the real detector with
//! the rules shipped in deploy/prometheus and sends to a real Alertmanager; a real escape in a
//! container fires the shipped rule and the alert reaches Alertmanager. The Grafana dashboard's
//! queries run on the same Prometheus against the detector's real series.

use std::{fs, path::PathBuf, time::Duration};

use anyhow::{Context, ensure};
use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, KernelSetting, Profile, RunningContainer,
    detector::free_loopback_addr,
    exclusive,
    monitoring::{Alertmanager, Prometheus},
    poll, scenario, technique,
};
use serde_json::Value;

const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";
/// Scrape, rule evaluation and notification each take a second here; this is generous.
const STACK_TIMEOUT: Duration = Duration::from_secs(60);

fn deploy_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(path)
}

/// Waits until `find` returns something, failing with `what` and the servers' logs.
fn wait_for(
    what: &str,
    logs: impl Fn() -> String,
    mut find: impl FnMut() -> anyhow::Result<Option<Value>>,
) -> anyhow::Result<Value> {
    let mut found = None;
    let mut last_error = None;
    poll::eventually(STACK_TIMEOUT, || match find() {
        Ok(value) => {
            found = value;
            found.is_some()
        }
        Err(error) => {
            last_error = Some(error);
            false
        }
    });
    found.with_context(|| {
        format!(
            "{what} after {STACK_TIMEOUT:?} ({last_error:?})\n{}",
            logs()
        )
    })
}

#[test]
fn an_escape_fires_the_shipped_rule_in_prometheus_and_reaches_alertmanager() -> anyhow::Result<()> {
    let _machine = exclusive();
    let core_pattern = KernelSetting::save(CORE_PATTERN)?;
    let detector = Detector::start(&[])?;
    let alertmanager = Alertmanager::start()?;
    let rules = deploy_file("prometheus/escape-detector.rules.yml");
    let prometheus = Prometheus::start(detector.addr(), &rules, &alertmanager)?;
    let logs = &|| format!("{}\n{}", prometheus.log(), alertmanager.log());
    // increase() sees a rise only from a sample before it: wait until the zero is scraped.
    wait_for("no zero sample of the rule's counter", logs, || {
        let zero = r#"escape_detector_alerts_total{rule="kernel-helper-hijack"} == 0"#;
        Ok(prometheus.query(zero)?.into_iter().next())
    })?;

    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    scenario::expect_core_pattern_hijack(&detector, &container, By::ExecSession)?;
    core_pattern.restore_now()?;

    let is_ours = |labels: &Value| {
        labels["alertname"] == "ContainerEscapeDetected"
            && labels["rule"] == "kernel-helper-hijack"
            && labels["severity"] == "critical"
            && labels["instance"] == detector.addr().to_string()
    };
    wait_for(
        "no firing ContainerEscapeDetected in Prometheus",
        logs,
        || {
            let alerts = prometheus.alerts()?;
            Ok(alerts
                .into_iter()
                .find(|a| is_ours(&a["labels"]) && a["state"] == "firing"))
        },
    )?;
    let received = wait_for("no ContainerEscapeDetected in Alertmanager", logs, || {
        Ok(alertmanager
            .alerts()?
            .into_iter()
            .find(|a| is_ours(&a["labels"])))
    })?;
    assert_eq!(
        received["annotations"]["summary"],
        format!(
            "Container escape (kernel-helper-hijack) on {}",
            detector.addr()
        ),
        "{received:#}"
    );
    assert_eq!(received["status"]["state"], "active", "{received:#}");
    Ok(())
}

/// Every query of every panel finds the detector's series: the dashboard names metrics and
/// labels the agent exports, in PromQL that Prometheus accepts.
#[test]
fn every_dashboard_query_finds_the_detectors_series() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let alertmanager = Alertmanager::start()?;
    let rules = deploy_file("prometheus/escape-detector.rules.yml");
    let prometheus = Prometheus::start(detector.addr(), &rules, &alertmanager)?;
    let logs = &|| prometheus.log();
    // rate() and increase() need two samples in their window.
    wait_for("fewer than two scrapes of the detector", logs, || {
        let scrapes = r#"count_over_time(up{job="escape-detector"}[1m]) >= 2"#;
        Ok(prometheus.query(scrapes)?.into_iter().next())
    })?;

    let dashboard: Value = serde_json::from_str(&fs::read_to_string(deploy_file(
        "grafana/escape-detector.json",
    ))?)?;
    let panels = dashboard["panels"].as_array().context("no panels")?;
    let mut queries = 0;
    for panel in panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = grafana_to_promql(target["expr"].as_str().context("target without expr")?);
            let series = prometheus.query(&expr)?;
            ensure!(
                !series.is_empty(),
                "panel {:?}: {expr} finds no series",
                panel["title"]
            );
            queries += 1;
        }
    }
    ensure!(queries > 10, "only {queries} queries in the dashboard");
    Ok(())
}

/// Grafana's variables and interval macros, as Grafana would fill them in for this Prometheus.
fn grafana_to_promql(expr: &str) -> String {
    let filled = expr
        .replace("$__rate_interval", "1m")
        .replace("$__range", "1m")
        .replace("$job", "escape-detector")
        .replace("$instance", ".+");
    assert!(!filled.contains('$'), "unknown variable in {expr}");
    filled
}

/// The webhook output speaks Alertmanager's API. The receiver is down when the escape happens
/// and comes up seconds later: the alert, retried with backoff, reaches it all the same.
#[test]
fn the_webhook_delivers_to_alertmanager_once_it_comes_up() -> anyhow::Result<()> {
    let _machine = exclusive();
    let addr = free_loopback_addr()?;
    let detector = Detector::start_with_config(
        &format!("[webhook]\nurl = \"http://{addr}/api/v2/alerts\"\nformat = \"alertmanager\"\n"),
        &[],
    )?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    scenario::expect_alert(
        &detector,
        "bpf-from-container",
        &container,
        Some("escape-act"),
        By::Workload,
        || technique::create_bpf_map(&container, By::Workload),
    )?;
    std::thread::sleep(Duration::from_secs(2));
    let alertmanager = Alertmanager::start_at(addr)?;
    let alert = wait_for(
        "the escape in Alertmanager through the webhook",
        || format!("{}\n{}", alertmanager.log(), detector.log()),
        || {
            Ok(alertmanager.alerts()?.into_iter().find(|a| {
                a["labels"]["rule"] == "bpf-from-container"
                    && a["labels"]["container_id"] == container.id()
            }))
        },
    )?;
    assert_eq!(alert["labels"]["alertname"], "ContainerEscape", "{alert:#}");
    assert_eq!(alert["labels"]["severity"], "high", "{alert:#}");
    let delivered =
        "escape_detector_alerts_dropped_total{output=\"webhook\",reason=\"output_failed\"}";
    assert_eq!(
        detector.metric(delivered)?,
        0.0,
        "the retried alert counted as lost"
    );
    Ok(())
}
