//! Which mutating webhooks (and mutating admission policies, by their invocation key)
//! run a second time (reinvocationPolicy `IfNeeded`), as upstream decides: a webhook
//! that changed the object marks every `IfNeeded` webhook called before it (since the
//! previous change) for reinvocation; a webhook's own change never marks itself; a
//! change by another plugin since the webhooks last ran marks them all
//! ([`Reinvocation::changed_elsewhere`]). There is one reinvocation round at most, in
//! which only the marked webhooks run.

use std::collections::HashSet;

/// The decision state of one request.
#[derive(Debug, Default)]
pub struct Reinvocation {
    /// `IfNeeded` webhooks called since the last change (by uid).
    previously: Vec<String>,
    reinvoke: HashSet<String>,
}

impl Reinvocation {
    /// Record a call of the webhook `uid`: whether it changed the object, and whether
    /// its policy is `IfNeeded`.
    pub fn called(&mut self, uid: &str, changed: bool, if_needed: bool) {
        if changed {
            self.reinvoke.extend(self.previously.drain(..));
        }
        if if_needed && !self.previously.iter().any(|p| p == uid) {
            self.previously.push(uid.to_string());
        }
    }

    /// The object changed since these ran (another plugin changed it): every `IfNeeded`
    /// one called so far runs again.
    pub fn changed_elsewhere(&mut self) {
        self.reinvoke.extend(self.previously.drain(..));
    }

    /// Whether a reinvocation round is due (tests: the chain asks `admission::rounds`).
    #[cfg(test)]
    pub fn any(&self) -> bool {
        !self.reinvoke.is_empty()
    }

    /// Whether the webhook `uid` runs in the reinvocation round.
    pub fn runs_again(&self, uid: &str) -> bool {
        self.reinvoke.contains(uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_change_reinvokes_earlier_if_needed_webhooks() {
        let mut r = Reinvocation::default();
        r.called("a", true, true);
        r.called("b", true, false);
        assert!(r.any() && r.runs_again("a") && !r.runs_again("b"));
    }

    #[test]
    fn a_webhooks_own_change_does_not_reinvoke_it() {
        let mut r = Reinvocation::default();
        r.called("a", false, false);
        r.called("b", true, true);
        assert!(!r.any());
    }

    #[test]
    fn never_policies_and_unchanged_objects_need_no_round() {
        let mut r = Reinvocation::default();
        r.called("a", false, false);
        r.called("b", true, false);
        assert!(!r.any());
        let mut r = Reinvocation::default();
        r.called("a", false, true);
        r.called("b", false, true);
        assert!(!r.any());
    }

    #[test]
    fn a_change_elsewhere_reinvokes_every_if_needed_webhook_called() {
        let mut r = Reinvocation::default();
        r.called("a", true, true);
        r.called("b", false, true);
        r.called("c", false, false);
        r.changed_elsewhere();
        assert!(r.runs_again("a") && r.runs_again("b") && !r.runs_again("c"));
    }

    #[test]
    fn only_webhooks_called_before_the_change_are_marked() {
        let mut r = Reinvocation::default();
        r.called("a", false, true);
        r.called("b", true, false);
        r.called("c", false, true);
        assert!(r.runs_again("a") && !r.runs_again("c"));
    }
}
