//! deploy/kubernetes: every resource the kustomization lists is valid against the Kubernetes API
//! schemas (kubernetes-validate, strict) and passes checkov's policies (each finding is fixed, or
//! skipped in the manifest with its reason, which this prints); and the resources agree with
//! each other and with the rest of deploy/, which no schema checks.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::Value;

use crate::{
    build::{self, Profile},
    cmd, image, setup,
};

const DIR: &str = "deploy/kubernetes";
const DOCKERFILE: &str = "deploy/image/Dockerfile";
const ALERT_RULES: &str = "deploy/prometheus/escape-detector.rules.yml";
/// The Prometheus Operator's kinds, which kubernetes-validate has no schema for; the checks
/// below cover what they say.
const OPERATOR_KINDS: &[&str] = &["ServiceMonitor", "PrometheusRule"];
const CONFIG_FILE: &str = "escape-detector.toml";

struct Resource {
    file: PathBuf,
    value: Value,
}

pub fn check() -> Result<()> {
    let resources = read_resources()?;
    validate_schemas(&resources)?;
    scan(&resources)?;
    alert_rules_match(&resources)?;
    agree(&resources)?;
    println!("{DIR}: the resources agree with each other and with deploy/");
    Ok(())
}

/// The resources `kubectl apply -k` would apply.
fn read_resources() -> Result<Vec<Resource>> {
    let dir = Path::new(DIR);
    let kustomization = read_yaml(&dir.join("kustomization.yaml"))?;
    let files = kustomization["resources"]
        .as_array()
        .context("kustomization.yaml lists no resources")?;
    files
        .iter()
        .map(|file| {
            let file = dir.join(file.as_str().context("a resource is not a path")?);
            Ok(Resource {
                value: read_yaml(&file)?,
                file,
            })
        })
        .collect()
}

fn read_yaml(path: &Path) -> Result<Value> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn validate_schemas(resources: &[Resource]) -> Result<()> {
    let mut validate = cmd::new(setup::python_tool("kubernetes-validate"));
    validate
        .arg("--strict")
        .args(resources.iter().map(|r| &r.file));
    println!("$ {}", cmd::display(&validate));
    let output = validate.output().context("running kubernetes-validate")?;
    let printed = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    print!("{printed}");
    ensure!(output.status.success(), "kubernetes-validate failed");
    // Without a schema it only warns; that is acceptable for the operator's kinds alone.
    for line in printed
        .lines()
        .filter(|l| l.contains("Couldn't find schema"))
    {
        let kind = line
            .split("for kind ")
            .nth(1)
            .and_then(|k| k.split(' ').next());
        ensure!(
            kind.is_some_and(|k| OPERATOR_KINDS.contains(&k)),
            "no schema to validate against: {line}"
        );
    }
    Ok(())
}

/// checkov on the manifests and the image's Dockerfile: any failed check fails; skipped ones
/// are listed with the reason the manifest gives.
fn scan(resources: &[Resource]) -> Result<()> {
    let mut checkov = cmd::new(setup::python_tool("checkov"));
    checkov
        // Never ask checkov's vendor for policy updates or guidelines: everything stays here.
        .args(["--skip-download", "--output", "json"])
        .args(["--framework", "kubernetes", "dockerfile"])
        .args(
            resources
                .iter()
                .flat_map(|r| [Path::new("--file"), &r.file]),
        )
        .args(["--file", DOCKERFILE]);
    println!("$ {}", cmd::display(&checkov));
    // checkov exits 1 on a failed check; the report says which.
    let output = checkov.output().context("running checkov")?;
    let report: Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "checkov printed no JSON report ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })?;
    let reports = match report {
        Value::Array(reports) => reports,
        single => vec![single],
    };
    let mut failed = Vec::new();
    for report in &reports {
        let summary = &report["summary"];
        println!(
            "checkov {}: {} passed, {} failed, {} skipped",
            report["check_type"].as_str().unwrap_or("?"),
            summary["passed"],
            summary["failed"],
            summary["skipped"]
        );
        let results = &report["results"];
        for skipped in results["skipped_checks"].as_array().into_iter().flatten() {
            let id = skipped["check_id"].as_str().unwrap_or("?");
            let reason = skipped["check_result"]["suppress_comment"]
                .as_str()
                .unwrap_or_default();
            ensure!(
                !reason.trim().is_empty(),
                "checkov's {id} is skipped without a reason"
            );
            println!(
                "  skipped {id} ({}): {reason}",
                skipped["check_name"].as_str().unwrap_or("?")
            );
        }
        for check in results["failed_checks"].as_array().into_iter().flatten() {
            failed.push(format!(
                "{} {} in {} ({})",
                check["check_id"].as_str().unwrap_or("?"),
                check["check_name"].as_str().unwrap_or("?"),
                check["file_path"].as_str().unwrap_or("?"),
                check["resource"].as_str().unwrap_or("?")
            ));
        }
    }
    ensure!(
        reports.len() == 2,
        "checkov ran {} frameworks, not 2",
        reports.len()
    );
    if !failed.is_empty() {
        bail!(
            "checkov findings (fix them, or skip them in the manifest with the reason):\n  {}",
            failed.join("\n  ")
        );
    }
    Ok(())
}

/// The PrometheusRule carries exactly the groups promtool checks and unit-tests.
fn alert_rules_match(resources: &[Resource]) -> Result<()> {
    let rule = the(resources, "PrometheusRule")?;
    let shipped = read_yaml(Path::new(ALERT_RULES))?;
    ensure!(
        rule.value["spec"]["groups"] == shipped["groups"],
        "{}'s groups differ from {ALERT_RULES}: change both together",
        rule.file.display()
    );
    Ok(())
}

/// What ties the resources together: names, labels, ports, the image and the configuration.
fn agree(resources: &[Resource]) -> Result<()> {
    let namespace = the(resources, "Namespace")?.value["metadata"]["name"].clone();
    for resource in resources.iter().filter(|r| r.value["kind"] != "Namespace") {
        ensure!(
            resource.value["metadata"]["namespace"] == namespace,
            "{} is not in namespace {namespace}",
            resource.file.display()
        );
    }
    let daemonset = &the(resources, "DaemonSet")?.value;
    let pod = &daemonset["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    let image = image::reference();
    ensure!(
        container["image"] == image.as_str(),
        "the DaemonSet runs {}, `cargo xtask image` builds {image}",
        container["image"]
    );
    let pod_labels = &pod["metadata"]["labels"];
    let ports: BTreeSet<&str> = container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    let service = &the(resources, "Service")?.value;
    ensure!(
        subset(&service["spec"]["selector"], pod_labels),
        "the Service selects no agent pod"
    );
    let service_ports: BTreeSet<&str> = service["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            ensure!(
                p["targetPort"].as_str().is_some_and(|t| ports.contains(t)),
                "the Service's targetPort {} is no port of the agent",
                p["targetPort"]
            );
            p["name"].as_str().context("a Service port without a name")
        })
        .collect::<Result<_>>()?;
    let monitor = &the(resources, "ServiceMonitor")?.value["spec"];
    ensure!(
        subset(
            &monitor["selector"]["matchLabels"],
            &service["metadata"]["labels"]
        ),
        "the ServiceMonitor selects no Service"
    );
    ensure!(
        monitor["namespaceSelector"]["matchNames"]
            .as_array()
            .is_some_and(|names| names.contains(&namespace)),
        "the ServiceMonitor does not look in namespace {namespace}"
    );
    for endpoint in monitor["endpoints"].as_array().into_iter().flatten() {
        ensure!(
            endpoint["port"]
                .as_str()
                .is_some_and(|p| service_ports.contains(p)),
            "the ServiceMonitor scrapes port {}, which the Service lacks",
            endpoint["port"]
        );
    }
    let policy = &the(resources, "NetworkPolicy")?.value["spec"];
    ensure!(
        subset(&policy["podSelector"]["matchLabels"], pod_labels),
        "the NetworkPolicy selects no agent pod"
    );
    config_agrees(the(resources, "ConfigMap")?, container)
}

/// The ConfigMap's configuration passes the agent's own `check-config`, and serves metrics on
/// the container's metrics port.
fn config_agrees(config_map: &Resource, container: &Value) -> Result<()> {
    let text = config_map.value["data"][CONFIG_FILE]
        .as_str()
        .with_context(|| format!("the ConfigMap has no {CONFIG_FILE}"))?;
    let dir = build::target_dir().join("xtask").join("deploy-check");
    fs::create_dir_all(&dir)?;
    let file = dir.join(CONFIG_FILE);
    fs::write(&file, text)?;
    cmd::run(
        cmd::new(build::agent_path(Profile::Release))
            .args(["check-config", "--config"])
            .arg(&file),
    )?;
    let config: toml::Table = text.parse()?;
    let port = config["metrics_addr"]
        .as_str()
        .and_then(|addr| addr.rsplit(':').next()?.parse::<u64>().ok())
        .context("metrics_addr has no port")?;
    let metrics = container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "metrics")
        .context("the agent has no port named metrics")?;
    ensure!(
        metrics["containerPort"] == port,
        "the ConfigMap serves metrics on port {port}, the container declares {}",
        metrics["containerPort"]
    );
    Ok(())
}

/// The one resource of `kind`.
fn the<'a>(resources: &'a [Resource], kind: &str) -> Result<&'a Resource> {
    let mut found = resources.iter().filter(|r| r.value["kind"] == kind);
    match (found.next(), found.next()) {
        (Some(resource), None) => Ok(resource),
        (None, _) => bail!("the kustomization has no {kind}"),
        (Some(_), Some(_)) => bail!("the kustomization has more than one {kind}"),
    }
}

/// Every label of `selector` is in `labels`, with the same value.
fn subset(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| labels.get(k) == Some(v)))
}
