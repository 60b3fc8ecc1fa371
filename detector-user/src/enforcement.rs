//! What `--enforce` stops: the acts of every critical rule, or of those `[enforcement] rules`
//! names, in every container or only in those of the pod namespaces `[enforcement]
//! pod_namespaces` names, so a rollout can be staged. The kernel refuses an act (BPF LSM) only
//! where it can tell at the act that it is in scope: it knows the rule, one bit each, but not a
//! container's pod, so enforcement scoped to pod namespaces kills instead of refusing.

use crate::{
    alert::{ContainerInfo, ProcessInfo},
    config::EnforcementSettings,
    exceptions::{Scope, Scopes},
    rules::{KERNEL_REFUSABLE, RuleInfo, Severity},
};

pub struct Enforcement {
    on: bool,
    /// `None`: every critical rule.
    rules: Option<Vec<String>>,
    /// Empty: everywhere.
    pod_namespaces: Vec<String>,
    scopes: Scopes,
}

impl Enforcement {
    /// From `enforce` and `[enforcement]`, whose patterns were checked when it was read.
    pub fn new(on: bool, settings: &EnforcementSettings) -> Result<Enforcement, globset::Error> {
        Ok(Enforcement {
            on,
            rules: settings.rules.clone(),
            pod_namespaces: settings.pod_namespaces.clone(),
            scopes: Scopes::new([(Scope::PodNamespace, settings.pod_namespaces.as_slice())])?,
        })
    }

    /// Whether the acts of `rule` are stopped in some container.
    fn covers(&self, rule: &RuleInfo) -> bool {
        self.on
            && rule.severity == Severity::Critical
            && self
                .rules
                .as_ref()
                .is_none_or(|rules| rules.iter().any(|id| id == rule.id))
    }

    /// Whether an act of `rule` by this process is stopped.
    pub fn applies(
        &self,
        rule: &RuleInfo,
        container: Option<&ContainerInfo>,
        process: &ProcessInfo,
    ) -> bool {
        self.covers(rule) && self.scopes.matches(container, process)
    }

    /// The kernel's `Config::enforce`: the refusal bits of the rules it covers everywhere.
    pub fn kernel_refusals(&self) -> u32 {
        if !self.scopes.is_everywhere() {
            return 0;
        }
        KERNEL_REFUSABLE
            .iter()
            .filter(|(rule, _)| self.covers(rule))
            .fold(0, |bits, (_, bit)| bits | bit)
    }

    /// For the log at start.
    pub fn describe(&self) -> String {
        if !self.on {
            return "off".to_owned();
        }
        let rules = match &self.rules {
            None => "every critical rule".to_owned(),
            Some(rules) => rules.join(", "),
        };
        let scope = if self.pod_namespaces.is_empty() {
            "in every container".to_owned()
        } else {
            format!(
                "in pod namespaces {} (killed, never refused by the kernel)",
                self.pod_namespaces.join(", ")
            )
        };
        format!("{rules} {scope}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exceptions::{self, tests::container};
    use detector_common::refusal;

    fn enforcement(on: bool, rules: Option<&[&str]>, namespaces: &[&str]) -> Enforcement {
        let settings = EnforcementSettings {
            rules: rules.map(|ids| ids.iter().map(|id| (*id).to_owned()).collect()),
            pod_namespaces: namespaces.iter().map(|ns| (*ns).to_owned()).collect(),
        };
        Enforcement::new(on, &settings).unwrap()
    }

    fn rule(id: &str) -> &'static RuleInfo {
        crate::rules::CATALOGUE
            .iter()
            .copied()
            .find(|rule| rule.id == id)
            .unwrap()
    }

    fn in_namespace(namespace: Option<&str>) -> ContainerInfo {
        container("registry.example/app:1", namespace)
    }

    fn process() -> ProcessInfo {
        exceptions::tests::process("/bin/sh", &[])
    }

    #[test]
    fn off_stops_nothing_and_the_kernel_refuses_nothing() {
        let off = enforcement(false, None, &[]);
        let c = in_namespace(None);
        assert!(!off.applies(rule("kernel-helper-hijack"), Some(&c), &process()));
        assert_eq!(off.kernel_refusals(), 0);
    }

    #[test]
    fn by_default_every_critical_rule_is_stopped_everywhere_and_refused_by_the_kernel() {
        let all = enforcement(true, None, &[]);
        assert!(all.applies(rule("host-namespace-entry"), None, &process()));
        assert!(
            !all.applies(rule("userns-creation"), None, &process()),
            "not critical"
        );
        assert_eq!(
            all.kernel_refusals(),
            refusal::RELEASE_AGENT
                | refusal::KERNEL_HELPER
                | refusal::RUNTIME_BINARY
                | refusal::MODULE_LOAD
        );
    }

    #[test]
    fn named_rules_only_and_the_kernel_refuses_their_acts_alone() {
        let some = enforcement(
            true,
            Some(&["kernel-helper-hijack", "host-namespace-entry"]),
            &[],
        );
        assert!(some.applies(rule("kernel-helper-hijack"), None, &process()));
        assert!(some.applies(rule("host-namespace-entry"), None, &process()));
        assert!(!some.applies(rule("cgroup-release-agent"), None, &process()));
        assert_eq!(some.kernel_refusals(), refusal::KERNEL_HELPER);
    }

    #[test]
    fn pod_namespaces_scope_the_kill_and_leave_the_kernel_out() {
        let staged = enforcement(true, None, &["staging-*"]);
        let helper = rule("kernel-helper-hijack");
        let staging = in_namespace(Some("staging-web"));
        let production = in_namespace(Some("production"));
        let no_pod = in_namespace(None);
        assert!(staged.applies(helper, Some(&staging), &process()));
        assert!(!staged.applies(helper, Some(&production), &process()));
        assert!(!staged.applies(helper, Some(&no_pod), &process()));
        assert!(!staged.applies(helper, None, &process()));
        assert_eq!(staged.kernel_refusals(), 0);
    }
}
