//! Repeat folding: the same act by the same process again and again (an API client that
//! reconnects per request, a retry loop, a flood meant to bury the alert) is alerted once, at
//! once, and its repeats make one more alert with their `count` when the process moves on
//! (exec, exit) or the window ends: never one alert per act.

use std::collections::HashMap;

use crate::alert::Alert;

/// How long repeats are folded into the first alert of an act.
pub const WINDOW_NS: u64 = 10 * 60 * 1_000_000_000;

/// The same act: the rule, and what the rule says makes an act distinct.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Act {
    pub tgid: u32,
    /// The process's start (0 when unknown): a pid reused is another process.
    pub start_ns: u64,
    pub rule: &'static str,
    pub key: String,
}

struct Fold {
    /// The alert raised for the first act.
    first: Alert,
    repeats: u64,
    until_ns: u64,
}

#[derive(Default)]
pub struct Folds {
    open: HashMap<Act, Fold>,
}

impl Folds {
    /// True, and counted, when `act` repeats one alerted within the window.
    pub fn repeat(&mut self, act: &Act, now_ns: u64) -> bool {
        match self.open.get_mut(act) {
            Some(fold) if now_ns <= fold.until_ns => {
                fold.repeats += 1;
                true
            }
            _ => false,
        }
    }

    /// Starts folding the repeats of the act `first` was raised for; a fold it replaces that
    /// had repeats gives their alert.
    pub fn open(&mut self, act: Act, first: Alert, now_ns: u64) -> Option<Alert> {
        let fold = Fold {
            first,
            repeats: 0,
            until_ns: now_ns.saturating_add(WINDOW_NS),
        };
        self.open.insert(act, fold).and_then(summary)
    }

    /// The process ended or replaced its image: the alerts for its repeats.
    pub fn end_process(&mut self, tgid: u32) -> Vec<Alert> {
        self.close(|act, _| act.tgid == tgid)
    }

    /// The alerts for the repeats of windows that ended by `now_ns`.
    pub fn due(&mut self, now_ns: u64) -> Vec<Alert> {
        self.close(|_, fold| fold.until_ns < now_ns)
    }

    /// Every fold's repeats (at shutdown).
    pub fn drain(&mut self) -> Vec<Alert> {
        self.close(|_, _| true)
    }

    fn close(&mut self, ends: impl Fn(&Act, &Fold) -> bool) -> Vec<Alert> {
        let ended: Vec<Act> = self
            .open
            .iter()
            .filter(|(act, fold)| ends(act, fold))
            .map(|(act, _)| act.clone())
            .collect();
        ended
            .into_iter()
            .filter_map(|act| self.open.remove(&act))
            .filter_map(summary)
            .collect()
    }
}

/// The alert that stands for a fold's repeats: the first one's, with their count.
fn summary(fold: Fold) -> Option<Alert> {
    (fold.repeats > 0).then(|| {
        let mut alert = fold.first;
        alert.message = format!(
            "{} (repeated {} more times after the alert of {})",
            alert.message, fold.repeats, alert.time
        );
        alert.count = fold.repeats;
        alert
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        alert::{Action, ProcessInfo},
        rules::Severity,
    };

    fn alert(message: &str) -> Alert {
        Alert {
            id: "a".into(),
            time: "t0".into(),
            rule: "runtime-socket-access",
            severity: Severity::High,
            mitre: &[],
            message: message.into(),
            hostname: "node-1".into(),
            action: Action::Alert,
            container: None,
            process: ProcessInfo {
                pid: 7,
                tid: 7,
                ppid: 1,
                uid: None,
                euid: None,
                comm: "curl".into(),
                exe: None,
                args: vec![],
                cgroup: None,
                ancestors: vec![],
            },
            details: serde_json::json!({}),
            incident: None,
            count: 1,
            truncated: vec![],
        }
    }

    fn act(tgid: u32, key: &str) -> Act {
        Act {
            tgid,
            start_ns: 1,
            rule: "runtime-socket-access",
            key: key.into(),
        }
    }

    #[test]
    fn repeats_are_counted_into_one_alert_when_the_process_moves_on() {
        let mut folds = Folds::default();
        let docker = act(7, "/run/docker.sock");
        assert!(!folds.repeat(&docker, 0), "the first act is alerted");
        assert!(
            folds
                .open(docker.clone(), alert("curl connected"), 0)
                .is_none()
        );
        for i in 1..=41 {
            assert!(folds.repeat(&docker, i));
        }
        // Another socket, another process: acts of their own.
        assert!(!folds.repeat(&act(7, "/run/containerd.sock"), 1));
        assert!(!folds.repeat(&act(8, "/run/docker.sock"), 1));
        let summaries = folds.end_process(7);
        assert_eq!(summaries.len(), 1);
        assert_eq!(summaries[0].count, 41);
        assert_eq!(
            summaries[0].message,
            "curl connected (repeated 41 more times after the alert of t0)"
        );
        assert!(!folds.repeat(&docker, 50), "folding ended with the process");
    }

    #[test]
    fn a_window_ends_with_its_count_and_the_next_act_is_news() {
        let mut folds = Folds::default();
        let docker = act(7, "s");
        folds.open(docker.clone(), alert("m"), 0);
        assert!(folds.repeat(&docker, WINDOW_NS));
        assert!(folds.due(WINDOW_NS).is_empty(), "not over yet");
        assert!(
            !folds.repeat(&docker, WINDOW_NS + 1),
            "a new window: alerted"
        );
        let replaced = folds.open(docker.clone(), alert("m"), WINDOW_NS + 1);
        assert_eq!(replaced.map(|a| a.count), Some(1));
        assert!(folds.repeat(&docker, WINDOW_NS + 2));
        let due = folds.due(2 * WINDOW_NS + 2);
        assert_eq!(due.iter().map(|a| a.count).collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn folds_without_repeats_end_silently() {
        let mut folds = Folds::default();
        folds.open(act(7, "s"), alert("m"), 0);
        folds.open(act(8, "s"), alert("m"), 0);
        assert!(folds.due(WINDOW_NS + 1).is_empty());
        assert!(folds.drain().is_empty());
    }
}
