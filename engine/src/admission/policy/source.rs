//! The admission policies and their bindings of one kind (validating: `v1`
//! ValidatingAdmissionPolicies; mutating: `v1beta1` MutatingAdmissionPolicies, see
//! [`Kind`]), as one compiled snapshot of the two `admissionregistration.k8s.io` watch
//! caches: rebuilt when either cache's revision moves, swapped in whole; a policy whose
//! resourceVersion did not change keeps its compiled expressions. Requests never read
//! the store for policies. A kind whose resources are not served has no policies.
//!
//! Invariants: a snapshot is immutable once published; policies are in name order and
//! each one's bindings in name order (upstream's order is its informer's, unordered;
//! name order makes the first refusal deterministic); at most [`MAX_POLICIES`] policies
//! and [`MAX_BINDINGS`] bindings are kept (the rest are logged and skipped).

use super::compile::{Binding, Policy};
use crate::app::App;
use crate::cache::Cache;
use arc_swap::ArcSwap;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

const GROUP: &str = "admissionregistration.k8s.io";

/// A policy compiled from its JSON, and the name its bindings' `policyName` refers to.
pub trait Compile: std::fmt::Debug {
    fn of(obj: &Value) -> Self;
    fn name(&self) -> &str;
}

/// One kind of policy: where its objects are served and how its policies compile (the
/// bindings of both kinds compile alike, [`Binding::of`]).
pub trait Kind: Default {
    type Policy: Compile;
    const VERSION: &'static str;
    const POLICIES: &'static str;
    const BINDINGS: &'static str;
}

/// Declares the kind `$kind` of policy: its policies compile to `$policy` (by its own
/// `of`, named by its field `$name`), served at `$version` as `$policies` with their
/// `$bindings`.
macro_rules! policy_kind {
    ($(#[$doc:meta])* $kind:ident, $policy:ty, $($name:ident).+, $version:literal,
     $policies:literal, $bindings:literal) => {
        $(#[$doc])*
        #[derive(Debug, Default)]
        pub struct $kind;

        impl $crate::admission::policy::source::Kind for $kind {
            type Policy = $policy;
            const VERSION: &'static str = $version;
            const POLICIES: &'static str = $policies;
            const BINDINGS: &'static str = $bindings;
        }

        impl $crate::admission::policy::source::Compile for $policy {
            fn of(obj: &serde_json::Value) -> Self {
                <$policy>::of(obj)
            }
            fn name(&self) -> &str {
                &self.$($name).+
            }
        }
    };
}
pub(super) use policy_kind;

policy_kind!(
    /// ValidatingAdmissionPolicies.
    Validating,
    Policy,
    name,
    "v1",
    "validatingadmissionpolicies",
    "validatingadmissionpolicybindings"
);

/// The most policies one snapshot holds.
pub const MAX_POLICIES: usize = 4096;
/// The most bindings one snapshot holds.
pub const MAX_BINDINGS: usize = 16384;

/// A policy with the bindings that name it.
#[derive(Debug)]
pub struct Hook<K: Kind = Validating> {
    pub policy: Arc<K::Policy>,
    pub bindings: Vec<Arc<Binding>>,
}

/// One published set of policies.
#[derive(Debug)]
pub struct Snapshot<K: Kind = Validating> {
    /// The caches' revisions it was built at (None: never built).
    revisions: Option<(u64, u64)>,
    /// Policies that at least one binding names.
    pub hooks: Vec<Hook<K>>,
    /// Compiled policies by name, with their resourceVersion.
    policies: HashMap<String, (String, Arc<K::Policy>)>,
    /// Compiled bindings by name, with their resourceVersion.
    bindings: HashMap<String, (String, Arc<Binding>)>,
}

impl<K: Kind> Default for Snapshot<K> {
    fn default() -> Self {
        Snapshot {
            revisions: None,
            hooks: Vec::new(),
            policies: HashMap::new(),
            bindings: HashMap::new(),
        }
    }
}

/// Where the plugin's policies come from.
#[derive(Default)]
pub struct Source<K: Kind = Validating> {
    snapshot: ArcSwap<Snapshot<K>>,
}

fn cache(app: &App, version: &str, plural: &str) -> Option<(Arc<Cache>, String)> {
    let reg = app.registry();
    let rt = reg.get(GROUP, version, plural)?;
    let prefix = rt.storage_prefix(app.prefix(), None);
    Some((app.caches.get(app, rt)?, prefix))
}

impl<K: Kind> Source<K> {
    /// Cheap: whether the published snapshot is current and binds nothing.
    pub fn surely_empty(&self, app: &App) -> bool {
        let snap = self.snapshot.load();
        if !snap.hooks.is_empty() {
            return false;
        }
        match (cache(app, K::VERSION, K::POLICIES), cache(app, K::VERSION, K::BINDINGS)) {
            (Some((p, _)), Some((b, _))) => {
                p.is_loaded()
                    && b.is_loaded()
                    && snap.revisions == Some((p.revision(), b.revision()))
            }
            _ => true,
        }
    }

    /// The current policies: the snapshot, rebuilt first when a cache moved. Until both
    /// caches have loaded, the published snapshot (possibly empty) is used.
    pub fn current(&self, app: &App) -> Arc<Snapshot<K>> {
        let snap = self.snapshot.load_full();
        let (Some((p, p_prefix)), Some((b, b_prefix))) =
            (cache(app, K::VERSION, K::POLICIES), cache(app, K::VERSION, K::BINDINGS))
        else {
            return snap;
        };
        if !p.is_loaded() || !b.is_loaded() {
            return snap;
        }
        let revisions = (p.revision(), b.revision());
        if snap.revisions == Some(revisions) {
            return snap;
        }
        let objs = |c: &Cache, prefix: &str| -> Vec<Value> {
            c.list(prefix, None, 0).0.iter().map(|e| e.data.obj()).collect()
        };
        let built = Arc::new(build(&snap, &objs(&p, &p_prefix), &objs(&b, &b_prefix), revisions));
        self.snapshot.store(built.clone());
        built
    }
}

fn meta<'v>(obj: &'v Value, field: &str) -> &'v str {
    obj.get("metadata").and_then(|m| m.get(field)).and_then(Value::as_str).unwrap_or("")
}

/// `objs` compiled by `make`, reusing what `previous` holds for unchanged ones; in name
/// order, at most `max`.
fn compile_all<T>(
    previous: &HashMap<String, (String, Arc<T>)>,
    objs: &[Value],
    max: usize,
    make: impl Fn(&Value) -> T,
) -> (Vec<Arc<T>>, HashMap<String, (String, Arc<T>)>) {
    let mut sorted: Vec<&Value> = objs.iter().collect();
    sorted.sort_by(|a, b| meta(a, "name").cmp(meta(b, "name")));
    if sorted.len() > max {
        tracing::warn!(
            kept = max,
            total = sorted.len(),
            "too many admission policies or bindings; skipped"
        );
        sorted.truncate(max);
    }
    let mut out = Vec::with_capacity(sorted.len());
    let mut by_name = HashMap::with_capacity(sorted.len());
    for obj in sorted {
        let (name, rv) = (meta(obj, "name"), meta(obj, "resourceVersion"));
        let compiled = match previous.get(name) {
            Some((old_rv, c)) if old_rv == rv && !rv.is_empty() => c.clone(),
            _ => Arc::new(make(obj)),
        };
        out.push(compiled.clone());
        by_name.insert(name.to_string(), (rv.to_string(), compiled));
    }
    (out, by_name)
}

/// A snapshot of `policies` and `bindings`.
pub fn build<K: Kind>(
    previous: &Snapshot<K>,
    policies: &[Value],
    bindings: &[Value],
    revisions: (u64, u64),
) -> Snapshot<K> {
    let (policy_list, policy_map) =
        compile_all(&previous.policies, policies, MAX_POLICIES, K::Policy::of);
    let (binding_list, binding_map) =
        compile_all(&previous.bindings, bindings, MAX_BINDINGS, Binding::of);
    let hooks = policy_list
        .into_iter()
        .filter_map(|policy| {
            let name = policy.name();
            let bound: Vec<Arc<Binding>> =
                binding_list.iter().filter(|b| b.policy_name == name).cloned().collect();
            (!bound.is_empty()).then_some(Hook { policy, bindings: bound })
        })
        .collect();
    Snapshot { revisions: Some(revisions), hooks, policies: policy_map, bindings: binding_map }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(name: &str, rv: &str) -> Value {
        json!({"metadata": {"name": name, "resourceVersion": rv}, "spec": {
            "validations": [{"expression": "true"}]}})
    }

    fn binding(name: &str, policy: &str) -> Value {
        json!({"metadata": {"name": name, "resourceVersion": "1"}, "spec": {
            "policyName": policy, "validationActions": ["Deny"]}})
    }

    #[test]
    fn only_bound_policies_apply_with_their_bindings_in_name_order() {
        let snap = build(
            &Snapshot::<Validating>::default(),
            &[policy("b", "1"), policy("a", "1"), policy("unbound", "1")],
            &[binding("y", "a"), binding("x", "a"), binding("z", "b"), binding("w", "missing")],
            (1, 1),
        );
        let seen: Vec<(&str, Vec<&str>)> = snap
            .hooks
            .iter()
            .map(|h| (h.policy.name.as_str(), h.bindings.iter().map(|b| b.name.as_str()).collect()))
            .collect();
        assert_eq!(seen, [("a", vec!["x", "y"]), ("b", vec!["z"])]);
    }

    #[test]
    fn unchanged_policies_keep_their_compiled_expressions() {
        let first = build(
            &Snapshot::<Validating>::default(),
            &[policy("a", "1"), policy("b", "1")],
            &[binding("x", "a"), binding("y", "b")],
            (1, 1),
        );
        let second = build(
            &first,
            &[policy("a", "1"), policy("b", "2")],
            &[binding("x", "a"), binding("y", "b")],
            (2, 1),
        );
        assert!(Arc::ptr_eq(&first.hooks[0].policy, &second.hooks[0].policy));
        assert!(!Arc::ptr_eq(&first.hooks[1].policy, &second.hooks[1].policy));
    }
}
