//! Decide: what is done about a finding. Nothing when an exception covers the act (counted);
//! else an alert, and where enforcement covers the act (`--enforce`, a critical rule, in
//! `[enforcement]`'s scope), the kill of the process that acted.

use std::sync::Arc;

use detector_common::Header;

use super::emit::Actor;
use crate::{
    alert::Action, enforce, enforcement::Enforcement, exceptions::Exceptions, metrics::Metrics,
    rules::Finding,
};

pub struct Decider {
    enforcement: Enforcement,
    exceptions: Exceptions,
    metrics: Arc<Metrics>,
}

impl Decider {
    pub fn new(enforcement: Enforcement, exceptions: Exceptions, metrics: Arc<Metrics>) -> Self {
        Decider {
            enforcement,
            exceptions,
            metrics,
        }
    }

    /// A reload's exceptions.
    pub fn reconfigure(&mut self, exceptions: Exceptions) {
        self.exceptions = exceptions;
    }

    /// The action for `finding` about `actor` (whose event is `header`); `None` when an
    /// exception covers it. A refused act (`denied`, the BPF LSM's enforcement, which knows no
    /// exceptions) is always told, and left nothing to kill the process for.
    pub fn action(
        &self,
        finding: &Finding,
        actor: &Actor,
        header: &Header,
        denied: bool,
    ) -> Option<Action> {
        if denied {
            return Some(Action::Denied);
        }
        if let Some(exception) =
            self.exceptions
                .covering(finding.rule.id, actor.container.as_ref(), &actor.process)
        {
            self.metrics
                .exceptions_suppressed_total
                .with_label_values(&[exception, finding.rule.id])
                .inc();
            return None;
        }
        if !self
            .enforcement
            .applies(finding.rule, actor.container.as_ref(), &actor.process)
        {
            return Some(Action::Alert);
        }
        Some(match enforce::kill(header.tgid, header.start_ns) {
            Ok(()) => Action::Killed,
            Err(e) => {
                log::error!("enforce: could not kill pid {}: {e}", header.tgid);
                Action::Alert
            }
        })
    }
}
