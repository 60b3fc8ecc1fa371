//! Decide: what is done about a finding. An alert; under `--enforce`, for a critical rule, the
//! kill of the process that acted.

use detector_common::Header;

use crate::{
    alert::Action,
    enforce,
    rules::{Finding, Severity},
};

pub struct Decider {
    enforce: bool,
}

impl Decider {
    pub fn new(enforce: bool) -> Self {
        Decider { enforce }
    }

    /// The action for `finding` about the process of `actor`. A refused act (`denied`) left
    /// nothing to kill the process for.
    pub fn action(&self, finding: &Finding, actor: &Header, denied: bool) -> Action {
        if denied {
            return Action::Denied;
        }
        if !self.enforce || finding.rule.severity != Severity::Critical {
            return Action::Alert;
        }
        match enforce::kill(actor.tgid, actor.start_ns) {
            Ok(()) => Action::Killed,
            Err(e) => {
                log::error!("enforce: could not kill pid {}: {e}", actor.tgid);
                Action::Alert
            }
        }
    }
}
