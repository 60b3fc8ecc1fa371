//! Redaction: a secret on the acting process's command line never reaches an output. The
//! workload's shell carries a password, a token and a URL's password in its argv and signals
//! the detector (agent-tamper), so the alert names that shell and its arguments.

use anyhow::ensure;
use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, Profile, RunningContainer, alert_matches, exclusive,
    scenario::ALERT_TIMEOUT,
};

const SECRETS: [&str; 3] = ["hunter2", "s3cr3t-t0ken", "pw-in-url"];

#[test]
fn secrets_on_the_command_line_are_masked_in_every_output() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    // `kill` is the shell's builtin: the shell, with the secrets in its argv, is the actor.
    container.run(
        By::Workload,
        &format!(
            "sh -c 'kill -CONT {}' sh --db-password {} --api-token={} https://bob:{}@git.example/r",
            detector.pid(),
            SECRETS[0],
            SECRETS[1],
            SECRETS[2]
        ),
    )?;
    let script = format!("kill -CONT {}", detector.pid());
    let alert = detector.wait_for_alert(
        "agent-tamper alert from the shell",
        |a| alert_matches(a, "agent-tamper", container.id()) && a["process"]["args"][2] == script,
        ALERT_TIMEOUT,
    )?;
    let args: Vec<&str> = alert["process"]["args"]
        .as_array()
        .map(|args| args.iter().filter_map(|a| a.as_str()).collect())
        .unwrap_or_default();
    ensure!(
        args.ends_with(&[
            "--db-password",
            "*****",
            "--api-token=*****",
            "https://bob:*****@git.example/r"
        ]),
        "the arguments are not masked as expected: {args:?}"
    );
    // Every output (the alerts file and stdout, all of each) and the log.
    let outputs = [
        ("alerts file", serde_json::to_string(&detector.alerts())?),
        ("stdout", serde_json::to_string(&detector.stdout_alerts())?),
        ("log", detector.log()),
    ];
    for (name, text) in outputs {
        for secret in SECRETS {
            ensure!(!text.contains(secret), "the {name} holds {secret:?}");
        }
    }
    ensure!(
        !detector.stdout_alerts().is_empty(),
        "stdout holds no alert: the check above proves nothing"
    );
    Ok(())
}
