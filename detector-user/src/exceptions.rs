//! Exceptions: a legitimate workload quieted where it acts (a CI runner that mounts the docker
//! socket, a CNI agent that uses bpf), without turning a rule off for the whole node. Matched
//! against the alert the act would make, so every scope is what the alert would say.

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::{
    alert::{ContainerInfo, ProcessInfo},
    config::ExceptionSpec,
};

pub struct Exceptions {
    list: Vec<Exception>,
}

struct Exception {
    name: String,
    /// Empty: every rule.
    rules: Vec<String>,
    scopes: Scopes,
}

/// Where a setting applies: every scope given must match (none given: everywhere), each by
/// any of its glob patterns. Exceptions and enforcement share it.
pub struct Scopes(Vec<(Scope, GlobSet)>);

#[derive(Clone, Copy)]
pub enum Scope {
    Image,
    PodNamespace,
    Pod,
    Container,
    Exe,
    AncestorExe,
}

impl Scope {
    /// In the order of `ExceptionSpec::scopes`.
    const OF_EXCEPTIONS: [Scope; 6] = [
        Scope::Image,
        Scope::PodNamespace,
        Scope::Pod,
        Scope::Container,
        Scope::Exe,
        Scope::AncestorExe,
    ];
}

impl Exceptions {
    /// From the configuration, whose patterns were checked when it was read.
    pub fn new(specs: &[ExceptionSpec]) -> Result<Exceptions, globset::Error> {
        let list = specs
            .iter()
            .map(|spec| {
                let scopes = spec
                    .scopes()
                    .into_iter()
                    .zip(Scope::OF_EXCEPTIONS)
                    .map(|((_, patterns), scope)| (scope, patterns));
                Ok(Exception {
                    name: spec.name.clone(),
                    rules: spec.rules.clone(),
                    scopes: Scopes::new(scopes)?,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Exceptions { list })
    }

    /// The name of the first exception that covers `rule` for this process, if any.
    pub fn covering(
        &self,
        rule: &str,
        container: Option<&ContainerInfo>,
        process: &ProcessInfo,
    ) -> Option<&str> {
        self.list
            .iter()
            .find(|e| {
                (e.rules.is_empty() || e.rules.iter().any(|r| r == rule))
                    && e.scopes.matches(container, process)
            })
            .map(|e| e.name.as_str())
    }
}

impl Scopes {
    /// From (scope, its patterns); a scope without patterns is left out.
    pub fn new<'a>(
        scopes: impl IntoIterator<Item = (Scope, &'a [String])>,
    ) -> Result<Scopes, globset::Error> {
        let scopes = scopes
            .into_iter()
            .filter(|(_, patterns)| !patterns.is_empty())
            .map(|(scope, patterns)| Ok((scope, glob_set(patterns)?)))
            .collect::<Result<_, globset::Error>>()?;
        Ok(Scopes(scopes))
    }

    /// Whether no scope narrows it: it applies everywhere.
    pub fn is_everywhere(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, container: Option<&ContainerInfo>, process: &ProcessInfo) -> bool {
        self.0
            .iter()
            .all(|(scope, set)| scope.matches(set, container, process))
    }
}

impl Scope {
    /// An unknown value (a container without a pod, a process whose exe could not be read)
    /// matches no pattern: neither an exception nor enforcement reaches what it cannot see.
    fn matches(
        self,
        set: &GlobSet,
        container: Option<&ContainerInfo>,
        process: &ProcessInfo,
    ) -> bool {
        let known = |value: Option<&String>| value.is_some_and(|v| set.is_match(v));
        match self {
            Scope::Image => known(container.and_then(|c| c.image.as_ref())),
            Scope::PodNamespace => known(container.and_then(|c| c.pod.namespace.as_ref())),
            Scope::Pod => known(container.and_then(|c| c.pod.name.as_ref())),
            Scope::Container => known(container.and_then(|c| c.name.as_ref())),
            Scope::Exe => known(process.exe.as_ref()),
            Scope::AncestorExe => process.ancestors.iter().any(|a| known(a.exe.as_ref())),
        }
    }
}

fn glob_set(patterns: &[String]) -> Result<GlobSet, globset::Error> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        // `*` crosses `/`, as users of image names and paths expect (`docker.io/ci/*`).
        builder.add(Glob::new(pattern)?);
    }
    builder.build()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::alert::{Ancestor, PodInfo};

    pub(crate) fn container(image: &str, namespace: Option<&str>) -> ContainerInfo {
        ContainerInfo {
            id: "c".into(),
            runtime: "containerd",
            name: Some("runner".into()),
            image: Some(image.into()),
            pod: PodInfo {
                name: Some("runner-7d9".into()),
                namespace: namespace.map(str::to_owned),
                uid: None,
            },
        }
    }

    pub(crate) fn process(exe: &str, ancestors: &[&str]) -> ProcessInfo {
        ProcessInfo {
            pid: 2,
            tid: 2,
            ppid: 1,
            uid: None,
            euid: None,
            comm: "p".into(),
            exe: Some(exe.into()),
            args: vec![],
            cgroup: None,
            ancestors: ancestors
                .iter()
                .map(|exe| Ancestor {
                    pid: 1,
                    comm: "a".into(),
                    exe: Some((*exe).into()),
                })
                .collect(),
        }
    }

    fn exceptions(specs: &[ExceptionSpec]) -> Exceptions {
        Exceptions::new(specs).unwrap()
    }

    #[test]
    fn every_scope_given_must_match_for_the_rules_listed() {
        let e = exceptions(&[ExceptionSpec {
            name: "ci-docker".into(),
            rules: vec!["runtime-socket-access".into()],
            images: vec!["registry.gitlab.com/*/runner:*".into()],
            pod_namespaces: vec!["ci".into(), "ci-*".into()],
            ..ExceptionSpec::default()
        }]);
        let runner = container("registry.gitlab.com/org/runner:v17", Some("ci-main"));
        let docker = process("/usr/bin/docker", &[]);
        assert_eq!(
            e.covering("runtime-socket-access", Some(&runner), &docker),
            Some("ci-docker")
        );
        assert_eq!(e.covering("sensitive-mount", Some(&runner), &docker), None);
        let elsewhere = container("registry.gitlab.com/org/runner:v17", Some("prod"));
        assert_eq!(
            e.covering("runtime-socket-access", Some(&elsewhere), &docker),
            None
        );
        let no_pod = container("registry.gitlab.com/org/runner:v17", None);
        assert_eq!(
            e.covering("runtime-socket-access", Some(&no_pod), &docker),
            None,
            "an unknown namespace matches nothing"
        );
        assert_eq!(e.covering("runtime-socket-access", None, &docker), None);
    }

    #[test]
    fn executables_and_ancestors_for_every_rule_when_none_is_listed() {
        let e = exceptions(&[ExceptionSpec {
            name: "cni".into(),
            ancestor_exes: vec!["/opt/cni/bin/*".into()],
            ..ExceptionSpec::default()
        }]);
        let under_cni = process("/bin/sh", &["/bin/sh", "/opt/cni/bin/cilium-agent"]);
        assert_eq!(
            e.covering("bpf-from-container", None, &under_cni),
            Some("cni")
        );
        assert_eq!(e.covering("sensitive-mount", None, &under_cni), Some("cni"));
        let other = process("/opt/cni/bin/cilium-agent", &["/bin/sh"]);
        assert_eq!(
            e.covering("bpf-from-container", None, &other),
            None,
            "the process itself is no ancestor"
        );
    }
}
