//! Priority: a new pod's `spec.priority` and `spec.preemptionPolicy` come from its
//! PriorityClass (`priorityClassName`; without one, the `globalDefault` class with the
//! lowest value, else priority 0 and `PreemptLowerPriority`), read from the
//! PriorityClass cache. A pod naming a missing class, or giving a priority or policy
//! other than its class's, is refused with upstream's messages. An update keeps the
//! values the create set. In the validating phase, at most one PriorityClass may be
//! `globalDefault`. Subresources are left alone, as upstream.
//!
//! The default class is worked out once per revision of the PriorityClass cache and
//! kept (a create without a class name costs a revision check, no list scan).

use super::cached::{self, PRIORITY_CLASSES};
use super::{Attributes, Operation, Plugin, Step};
use crate::status::ApiError;
use kapi_codec::pointer::Pointer as _;
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::sync::Arc;

/// Upstream's PriorityClass-less priority (`DefaultPriorityWhenNoDefaultClassExists`).
const NO_CLASS_PRIORITY: i64 = 0;

/// Upstream's Priority plugin.
#[derive(Default)]
pub struct Priority {
    /// The default class's resolution and the cache revision it was worked out at.
    default: Mutex<Option<(u64, Arc<Resolved>)>>,
}

impl Priority {
    /// What a pod naming no class gets: the default class, from the kept value while
    /// the PriorityClass cache's revision is the one it was worked out at.
    async fn default_resolved(&self, a: &Attributes<'_>) -> Arc<Resolved> {
        let app = a.scope.app;
        let at = cached::revision(app, PRIORITY_CLASSES).await;
        if let (Some(at), Some((kept_at, kept))) = (at, &*self.default.lock())
            && at == *kept_at
        {
            return kept.clone();
        }
        let classes = cached::list_holding(app, PRIORITY_CLASSES, DEFAULT_MARK).await;
        let resolved = Arc::new(default_class(&classes).map_or_else(Resolved::none, Resolved::of));
        if let Some(at) = at {
            *self.default.lock() = Some((at, resolved.clone()));
        }
        resolved
    }
}

impl Plugin for Priority {
    fn name(&self) -> &'static str {
        "Priority"
    }

    fn handles(&self, a: &Attributes<'_>) -> bool {
        matches!(a.operation, Operation::Create | Operation::Update)
            && (a.is("", "pods") || a.is("scheduling.k8s.io", "priorityclasses"))
    }

    fn mutates(&self) -> bool {
        true
    }

    fn validates(&self) -> bool {
        true
    }

    fn admit<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a mut Value) -> Step<'a> {
        if a.rt().group.is_empty() {
            return Box::pin(admit_pod(self, a, obj));
        }
        super::done(Ok(()))
    }

    fn validate<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a Value) -> Step<'a> {
        if a.rt().group.is_empty() {
            return super::done(Ok(()));
        }
        Box::pin(validate_class(a, obj))
    }
}

/// What a pod's priority resolves to.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The class name the pod gets (the default class's when it named none).
    pub class: String,
    pub value: i64,
    pub policy: Option<String>,
}

impl Resolved {
    fn of(class: &Value) -> Resolved {
        Resolved {
            class: kapi_codec::meta::name(class).unwrap_or("").to_string(),
            value: class.get("value").and_then(Value::as_i64).unwrap_or(0),
            policy: class.get("preemptionPolicy").and_then(Value::as_str).map(String::from),
        }
    }

    /// No class at all: upstream's defaults.
    fn none() -> Resolved {
        Resolved {
            class: String::new(),
            value: NO_CLASS_PRIORITY,
            policy: Some("PreemptLowerPriority".into()),
        }
    }
}

async fn admit_pod(p: &Priority, a: &Attributes<'_>, pod: &mut Value) -> Result<(), ApiError> {
    if a.operation == Operation::Update {
        if let Some(old) = a.old {
            keep_on_update(pod, old);
        }
        return Ok(());
    }
    let named = pod.at("/spec/priorityClassName").and_then(Value::as_str).unwrap_or("");
    let resolved = if named.is_empty() {
        p.default_resolved(a).await
    } else {
        match cached::get_shared(a.scope.app, PRIORITY_CLASSES, None, named).await {
            Some(class) => Arc::new(Resolved::of(&class)),
            None => {
                let why = format!("no PriorityClass with name {named} was found");
                return Err(a.forbid(pod, why));
            }
        }
    };
    apply(pod, &resolved).map_err(|why| a.forbid(pod, why))
}

/// The bytes every `globalDefault` class's JSON holds (the others need no parsing).
const DEFAULT_MARK: &[u8] = b"\"globalDefault\":true";

/// The global default class: of those marked, the one with the lowest value.
pub fn default_class(classes: &[Value]) -> Option<&Value> {
    classes
        .iter()
        .filter(|c| c.get("globalDefault").and_then(Value::as_bool) == Some(true))
        .min_by_key(|c| c.get("value").and_then(Value::as_i64).unwrap_or(0))
}

/// Set the resolved priority and policy on a new pod; a different value the client
/// gave is refused (the message is upstream's).
pub fn apply(pod: &mut Value, r: &Resolved) -> Result<(), String> {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else { return Ok(()) };
    if let Some(given) = spec.get("priority").and_then(Value::as_i64)
        && given != r.value
    {
        return Err(format!(
            "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {} from the given PriorityClass name",
            r.value
        ));
    }
    if let Some(policy) = &r.policy {
        if let Some(given) = spec.get("preemptionPolicy").and_then(Value::as_str)
            && given != policy
        {
            return Err(format!(
                "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
            ));
        }
        spec.insert("preemptionPolicy".into(), json!(policy));
    }
    if r.class.is_empty() {
        spec.remove("priorityClassName");
    } else {
        spec.insert("priorityClassName".into(), json!(r.class));
    }
    spec.insert("priority".into(), json!(r.value));
    Ok(())
}

/// An update without the priority fields keeps the ones the create set.
pub fn keep_on_update(pod: &mut Value, old: &Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else { return };
    for field in ["priority", "preemptionPolicy"] {
        let given = spec.get(field).is_some_and(|v| !v.is_null());
        if let Some(v) = old.at(&format!("/spec/{field}")).filter(|_| !given) {
            spec.insert(field.into(), v.clone());
        }
    }
}

/// A second `globalDefault` class is refused.
async fn validate_class(a: &Attributes<'_>, class: &Value) -> Result<(), ApiError> {
    if class.get("globalDefault").and_then(Value::as_bool) != Some(true) {
        return Ok(());
    }
    let classes = cached::list_holding(a.scope.app, PRIORITY_CLASSES, DEFAULT_MARK).await;
    let name = kapi_codec::meta::name(class).unwrap_or("");
    match second_default(&classes, a.operation, name) {
        Some(existing) => Err(a.forbid(
            class,
            format!(
                "PriorityClass {existing} is already marked as default. Only one default can exist"
            ),
        )),
        None => Ok(()),
    }
}

/// The existing default class a new or changed default `name` would be a second of.
pub fn second_default<'c>(classes: &'c [Value], op: Operation, name: &str) -> Option<&'c str> {
    let existing = kapi_codec::meta::name(default_class(classes)?).unwrap_or("");
    (op == Operation::Create || existing != name).then_some(existing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, value: i64, default: bool) -> Value {
        json!({"metadata": {"name": name}, "value": value, "globalDefault": default,
            "preemptionPolicy": "PreemptLowerPriority"})
    }

    #[test]
    fn a_named_class_sets_priority_and_policy() {
        let mut pod = json!({"spec": {"priorityClassName": "high"}});
        let r = Resolved::of(&json!({"metadata": {"name": "high"}, "value": 1000,
            "preemptionPolicy": "Never"}));
        apply(&mut pod, &r).unwrap();
        assert_eq!(pod["spec"]["priority"], 1000);
        assert_eq!(pod["spec"]["preemptionPolicy"], "Never");
        assert_eq!(pod["spec"]["priorityClassName"], "high");
    }

    #[test]
    fn without_a_class_the_lowest_global_default_wins_else_zero() {
        let classes = [class("a", 10, true), class("b", 5, true), class("c", 1, false)];
        let d = default_class(&classes).unwrap();
        assert_eq!(d["metadata"]["name"], "b");
        let mut pod = json!({"spec": {}});
        apply(&mut pod, &Resolved::of(d)).unwrap();
        assert_eq!(
            (pod["spec"]["priority"].as_i64(), pod["spec"]["priorityClassName"].as_str()),
            (Some(5), Some("b"))
        );
        let mut pod = json!({"spec": {}});
        apply(&mut pod, &Resolved::none()).unwrap();
        assert_eq!(pod["spec"], json!({"priority": 0, "preemptionPolicy": "PreemptLowerPriority"}));
    }

    #[test]
    fn a_priority_other_than_the_classes_is_refused_with_upstreams_message() {
        let mut pod = json!({"spec": {"priority": 7}});
        let err = apply(&mut pod, &Resolved::none()).unwrap_err();
        assert_eq!(
            err,
            "the integer value of priority (7) must not be provided in pod spec; priority admission controller computed 0 from the given PriorityClass name"
        );
        let mut pod = json!({"spec": {"preemptionPolicy": "Never"}});
        let err = apply(&mut pod, &Resolved::none()).unwrap_err();
        assert!(
            err.starts_with("the string value of PreemptionPolicy (Never) must not be provided"),
            "{err}"
        );
        // the same values are fine
        let mut pod = json!({"spec": {"priority": 0, "preemptionPolicy": "PreemptLowerPriority"}});
        apply(&mut pod, &Resolved::none()).unwrap();
    }

    #[test]
    fn updates_keep_the_priority_the_create_set() {
        let old = json!({"spec": {"priority": 100, "preemptionPolicy": "Never"}});
        let mut pod = json!({"spec": {"containers": []}});
        keep_on_update(&mut pod, &old);
        assert_eq!(pod["spec"]["priority"], 100);
        assert_eq!(pod["spec"]["preemptionPolicy"], "Never");
    }

    #[test]
    fn only_one_global_default_class() {
        let classes = [class("first", 1, true)];
        assert_eq!(second_default(&classes, Operation::Create, "second"), Some("first"));
        assert_eq!(second_default(&classes, Operation::Update, "second"), Some("first"));
        assert_eq!(second_default(&classes, Operation::Update, "first"), None);
        assert_eq!(second_default(&[], Operation::Create, "first"), None);
    }
}
