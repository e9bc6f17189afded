//! The reinvocation of the mutating phase (upstream's admission `ReinvocationContext`):
//! a reinvocable plugin (MutatingAdmissionPolicy, MutatingAdmissionWebhook) that changed
//! the object asks for a second round ([`Rounds::request`]); after the first pass the
//! chain then runs its whole mutating phase once more (upstream's `reinvoker.Admit`:
//! in-tree plugins included), in order, with [`Rounds::is_reinvoke`] set, and each
//! reinvocable plugin decides which of its policies or webhooks run again
//! (reinvocationPolicy `IfNeeded`, the object changed since they ran). What a plugin
//! remembers between its two rounds is kept here under its name.
//!
//! Invariants: one per write attempt (it lives in the attempt's `Attributes`); at most
//! one reinvocation round; a plugin's state is its own (taken and put back by name).

use std::any::Any;
use std::cell::{Cell, RefCell};

/// One write's reinvocation state.
#[derive(Default)]
pub struct Rounds {
    reinvoking: Cell<bool>,
    requested: Cell<bool>,
    states: RefCell<Vec<(&'static str, Box<dyn Any>)>>,
}

impl Rounds {
    /// Whether this is the reinvocation round.
    pub fn is_reinvoke(&self) -> bool {
        self.reinvoking.get()
    }

    /// Ask for a reinvocation round (a plugin changed the object).
    pub fn request(&self) {
        self.requested.set(true);
    }

    /// Whether the chain should run the reinvocation round now (asked for, not run yet);
    /// marks it as running.
    pub fn start_reinvocation(&self) -> bool {
        let start = self.requested.get() && !self.reinvoking.get();
        if start {
            self.reinvoking.set(true);
        }
        start
    }

    /// The state `plugin` kept from its first round (default: none yet).
    pub fn take<T: Default + 'static>(&self, plugin: &'static str) -> T {
        let mut states = self.states.borrow_mut();
        let Some(at) = states.iter().position(|(p, _)| *p == plugin) else { return T::default() };
        let (_, state) = states.swap_remove(at);
        state.downcast::<T>().map(|b| *b).unwrap_or_default()
    }

    /// Keep `plugin`'s state for its next round.
    pub fn put<T: 'static>(&self, plugin: &'static str, state: T) {
        let mut states = self.states.borrow_mut();
        states.retain(|(p, _)| *p != plugin);
        states.push((plugin, Box::new(state)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reinvocation_round_at_most_and_only_when_asked() {
        let r = Rounds::default();
        assert!(!r.start_reinvocation());
        r.request();
        assert!(r.start_reinvocation() && r.is_reinvoke());
        r.request();
        assert!(!r.start_reinvocation(), "a second round is never run");
    }

    #[test]
    fn plugins_keep_their_own_state_between_rounds() {
        let r = Rounds::default();
        assert_eq!(r.take::<u32>("a"), 0);
        r.put("a", 7u32);
        r.put("b", String::from("x"));
        assert_eq!(r.take::<u32>("a"), 7);
        assert_eq!(r.take::<u32>("a"), 0, "taken");
        assert_eq!(r.take::<String>("b"), "x");
    }
}
