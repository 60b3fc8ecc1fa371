//! Incidents: an escape usually takes several acts (mount a cgroup v1 hierarchy, write its
//! release_agent, and the kernel runs the payload on the host). The alerts of one container
//! that follow each other within a window carry one incident id, and each lists the chain so
//! far, so the last one tells the whole story.
//!
//! The kernel's usermode helper runs outside every container: its alert joins the incident of
//! the container that last armed a helper (release_agent, core_pattern, modprobe, ...) within
//! the window, since that is the act it pays off.

use std::collections::HashMap;

use serde::Serialize;

/// Acts of one container further apart than this start a new incident.
pub const WINDOW_NS: u64 = 10 * 60 * 1_000_000_000;

/// Links an incident lists at most: the first ones, which tell how it began.
const CHAIN_LIMIT: usize = 32;

/// Rules whose act arms a program the kernel runs as a usermode helper.
const ARMING_RULES: [&str; 2] = ["cgroup-release-agent", "kernel-helper-hijack"];
const HELPER_RULE: &str = "usermode-helper-exec";

/// The alert's `incident` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncidentRef {
    pub id: String,
    /// Every alert of the incident so far, this one last.
    pub chain: Vec<Link>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub rule: &'static str,
    pub pid: u32,
    pub time: String,
}

/// One alert, as incidents need to know it.
pub struct Raised<'a> {
    pub container_id: Option<&'a str>,
    pub rule: &'static str,
    pub pid: u32,
    /// When the kernel saw the act (`CLOCK_BOOTTIME`).
    pub seen_ns: u64,
    pub time: &'a str,
}

struct Incident {
    id: String,
    last_ns: u64,
    chain: Vec<Link>,
}

#[derive(Default)]
pub struct Incidents {
    /// By container id.
    open: HashMap<String, Incident>,
    /// The container that last armed a usermode helper, and when.
    armed: Option<(String, u64)>,
}

impl Incidents {
    /// The incident `alert` belongs to; `None` for an alert of no container that no armed
    /// helper explains.
    pub fn link(&mut self, alert: &Raised<'_>) -> Option<IncidentRef> {
        self.open
            .retain(|_, i| alert.seen_ns.saturating_sub(i.last_ns) <= WINDOW_NS);
        let container = match alert.container_id.filter(|id| !id.is_empty()) {
            Some(id) => id.to_owned(),
            None if alert.rule == HELPER_RULE => self.armed_container(alert.seen_ns)?,
            None => return None,
        };
        if ARMING_RULES.contains(&alert.rule) {
            self.armed = Some((container.clone(), alert.seen_ns));
        }
        let incident = self
            .open
            .entry(container.clone())
            .or_insert_with(|| Incident {
                id: incident_id(&container, alert.seen_ns),
                last_ns: alert.seen_ns,
                chain: Vec::new(),
            });
        incident.last_ns = incident.last_ns.max(alert.seen_ns);
        if incident.chain.len() < CHAIN_LIMIT {
            incident.chain.push(Link {
                rule: alert.rule,
                pid: alert.pid,
                time: alert.time.to_owned(),
            });
        }
        Some(IncidentRef {
            id: incident.id.clone(),
            chain: incident.chain.clone(),
        })
    }

    fn armed_container(&self, now_ns: u64) -> Option<String> {
        let (container, at) = self.armed.as_ref()?;
        (now_ns.saturating_sub(*at) <= WINDOW_NS && self.open.contains_key(container))
            .then(|| container.clone())
    }
}

/// Unique per container and first act: a container id never repeats, nor does a nanosecond
/// of one boot.
fn incident_id(container_id: &str, first_ns: u64) -> String {
    let short = container_id.get(..12).unwrap_or(container_id);
    format!("{short}-{first_ns:x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn raised<'a>(container: Option<&'a str>, rule: &'static str, seen_ns: u64) -> Raised<'a> {
        Raised {
            container_id: container,
            rule,
            pid: 42,
            seen_ns,
            time: "t",
        }
    }

    fn rules(incident: &IncidentRef) -> Vec<&'static str> {
        incident.chain.iter().map(|l| l.rule).collect()
    }

    #[test]
    fn a_containers_acts_within_the_window_are_one_incident() {
        let mut incidents = Incidents::default();
        let a = Some("aaaaaaaaaaaaaaaa");
        let first = incidents
            .link(&raised(a, "sensitive-mount", SECOND))
            .unwrap();
        let second = incidents
            .link(&raised(a, "cgroup-release-agent", 2 * SECOND))
            .unwrap();
        assert_eq!(first.id, second.id);
        assert_eq!(first.id, "aaaaaaaaaaaa-3b9aca00");
        assert_eq!(rules(&second), ["sensitive-mount", "cgroup-release-agent"]);
        // Another container's act is its own incident.
        let other = incidents
            .link(&raised(Some("bbbb"), "sensitive-mount", 3 * SECOND))
            .unwrap();
        assert_ne!(other.id, first.id);
        assert_eq!(rules(&other), ["sensitive-mount"]);
    }

    #[test]
    fn a_gap_longer_than_the_window_starts_a_new_incident() {
        let mut incidents = Incidents::default();
        let a = Some("aaaa");
        let first = incidents.link(&raised(a, "bpf-from-container", 0)).unwrap();
        // Each act extends the window.
        let near = incidents
            .link(&raised(a, "bpf-from-container", WINDOW_NS))
            .unwrap();
        assert_eq!(near.id, first.id);
        let late = incidents
            .link(&raised(a, "bpf-from-container", 2 * WINDOW_NS + 1))
            .unwrap();
        assert_ne!(late.id, first.id);
        assert_eq!(late.chain.len(), 1);
    }

    #[test]
    fn the_kernels_helper_joins_the_container_that_armed_it() {
        let mut incidents = Incidents::default();
        let a = Some("aaaa");
        let mount = incidents.link(&raised(a, "sensitive-mount", 0)).unwrap();
        incidents.link(&raised(a, "cgroup-release-agent", SECOND));
        let helper = incidents
            .link(&raised(None, HELPER_RULE, 2 * SECOND))
            .unwrap();
        assert_eq!(helper.id, mount.id);
        assert_eq!(
            rules(&helper),
            ["sensitive-mount", "cgroup-release-agent", HELPER_RULE]
        );
    }

    #[test]
    fn a_helper_nothing_armed_and_host_alerts_are_no_incident() {
        let mut incidents = Incidents::default();
        assert!(incidents.link(&raised(None, HELPER_RULE, 0)).is_none());
        assert!(
            incidents
                .link(&raised(Some(""), "agent-tamper", 0))
                .is_none()
        );
        let a = Some("aaaa");
        incidents.link(&raised(a, "kernel-helper-hijack", 0));
        assert!(
            incidents
                .link(&raised(None, HELPER_RULE, 2 * WINDOW_NS))
                .is_none(),
            "armed too long ago"
        );
    }

    #[test]
    fn the_chain_keeps_its_beginning() {
        let mut incidents = Incidents::default();
        let mut last = None;
        for i in 0..CHAIN_LIMIT as u64 + 5 {
            last = incidents.link(&raised(Some("aaaa"), "sensitive-mount", i));
        }
        assert_eq!(last.unwrap().chain.len(), CHAIN_LIMIT);
    }
}
