//! RuntimeClass: a new pod naming a `runtimeClassName` takes what its RuntimeClass
//! (read from the RuntimeClass cache, else from the store, as upstream's live lookup)
//! says: `overhead.podFixed` becomes the pod's `spec.overhead`, and
//! `scheduling.nodeSelector` and `scheduling.tolerations` are merged into the pod's.
//! A missing class, an overhead the pod set that differs from the class's, an overhead
//! without a class that defines one, and a node selector key with another value than
//! the class's are refused with upstream's 403 messages.
//!
//! As upstream: creates of pods only, no subresource; mutating (overhead, scheduling)
//! and validating (the overhead once more, after the other plugins). Overheads compare
//! as quantities; tolerations merge as upstream's `MergeTolerations` (a toleration
//! another one covers is dropped, the first of equal ones kept).

use super::cached::{self, RUNTIME_CLASSES};
use super::resources;
use super::{Attributes, Operation, Plugin, Step};
use crate::status::{ApiError, Target};
use kapi_codec::pointer::Pointer as _;
use serde_json::{Map, Value};
use std::sync::Arc;

const OVERHEAD_MISMATCH: &str =
    "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead";
const OVERHEAD_WITHOUT_CLASS: &str =
    "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead";

/// Upstream's RuntimeClass plugin.
pub struct RuntimeClass;

impl Plugin for RuntimeClass {
    fn name(&self) -> &'static str {
        "RuntimeClass"
    }

    fn handles(&self, a: &Attributes<'_>) -> bool {
        a.operation == Operation::Create && a.is("", "pods")
    }

    fn mutates(&self) -> bool {
        true
    }

    fn validates(&self) -> bool {
        true
    }

    fn admit<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a mut Value) -> Step<'a> {
        if class_name(obj).is_none() {
            return super::done(Ok(()));
        }
        Box::pin(admit(a, obj))
    }

    fn validate<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a Value) -> Step<'a> {
        if class_name(obj).is_none() {
            // No class to read: decided here, without a task.
            let checked = validate_overhead(obj, None).map_err(|why| a.forbid(obj, why));
            return super::done(checked);
        }
        Box::pin(validate(a, obj))
    }
}

async fn admit(a: &Attributes<'_>, pod: &mut Value) -> Result<(), ApiError> {
    let Some(class) = lookup(a, pod).await? else { return Ok(()) };
    set_overhead(pod, &class).map_err(|why| a.forbid(pod, why))?;
    set_scheduling(pod, &class).map_err(|why| a.forbid(pod, why))
}

async fn validate(a: &Attributes<'_>, pod: &Value) -> Result<(), ApiError> {
    let class = lookup(a, pod).await?;
    validate_overhead(pod, class.as_ref()).map_err(|why| a.forbid(pod, why))
}

/// The RuntimeClass the pod names, if any.
fn class_name(pod: &Value) -> Option<&str> {
    pod.at("/spec/runtimeClassName").and_then(Value::as_str)
}

/// The pod's RuntimeClass (None: the pod names none); a missing class is refused.
async fn lookup(a: &Attributes<'_>, pod: &Value) -> Result<Option<Value>, ApiError> {
    let Some(name) = class_name(pod) else { return Ok(None) };
    let target = Target {
        group: "node.k8s.io".into(),
        resource: "runtimeclasses".into(),
        kind: "RuntimeClass".into(),
        name: name.into(),
    };
    let found = cached::get_or_store(a.scope.app, RUNTIME_CLASSES, None, name).await;
    match found.map_err(|e| ApiError::from_storage(e, &target))? {
        Some(class) => Ok(Some(Arc::unwrap_or_clone(class))),
        None => Err(a.forbid(pod, format!("pod rejected: RuntimeClass {name:?} not found"))),
    }
}

/// The class's `overhead.podFixed`, if it defines an overhead.
fn class_overhead(class: &Value) -> Option<&Value> {
    class.get("overhead").filter(|o| !o.is_null())?.get("podFixed").filter(|p| !p.is_null())
}

/// The pod's `spec.overhead`, if set and not empty.
fn pod_overhead(pod: &Value) -> Option<&Value> {
    pod.at("/spec/overhead").filter(|o| o.as_object().is_some_and(|m| !m.is_empty()))
}

/// Whether two resource lists hold the same quantities (`None`: no list).
fn same_overhead(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            resources::equal(&resources::list(Some(a)), &resources::list(Some(b)))
        }
        (None, None) => true,
        _ => false,
    }
}

/// Set the pod's overhead to the class's; a different one the pod set is refused.
pub fn set_overhead(pod: &mut Value, class: &Value) -> Result<(), &'static str> {
    if class.get("overhead").is_none_or(Value::is_null) {
        return Ok(());
    }
    let fixed = class_overhead(class).cloned();
    if pod_overhead(pod).is_some() && !same_overhead(fixed.as_ref(), pod_overhead(pod)) {
        return Err(OVERHEAD_MISMATCH);
    }
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else { return Ok(()) };
    match fixed {
        Some(f) => spec.insert("overhead".into(), f),
        None => spec.remove("overhead"),
    };
    Ok(())
}

/// Merge the class's node selector (a key the pod gives another value is refused) and
/// tolerations into the pod's.
pub fn set_scheduling(pod: &mut Value, class: &Value) -> Result<(), String> {
    let Some(scheduling) = class.get("scheduling").filter(|s| !s.is_null()) else { return Ok(()) };
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else { return Ok(()) };
    let wanted = scheduling.get("nodeSelector").and_then(Value::as_object);
    let mut selector: Map<String, Value> =
        spec.get("nodeSelector").and_then(Value::as_object).cloned().unwrap_or_default();
    for (key, value) in wanted.into_iter().flatten() {
        if let Some(given) = selector.get(key).filter(|v| *v != value) {
            let text = |v: &Value| v.as_str().unwrap_or("").to_string();
            return Err(format!(
                "conflict: runtimeClass.scheduling.nodeSelector[{key}] = {}; pod.spec.nodeSelector[{key}] = {}",
                text(value),
                text(given)
            ));
        }
        selector.insert(key.clone(), value.clone());
    }
    if !selector.is_empty() {
        spec.insert("nodeSelector".into(), Value::Object(selector));
    }
    let ours = spec.get("tolerations").and_then(Value::as_array).cloned().unwrap_or_default();
    let theirs = scheduling.get("tolerations").and_then(Value::as_array);
    let merged = merge_tolerations(ours, theirs.map_or(&[][..], Vec::as_slice));
    if merged.is_empty() {
        spec.remove("tolerations");
    } else {
        spec.insert("tolerations".into(), Value::Array(merged));
    }
    Ok(())
}

/// A toleration's fields as upstream compares them (absent and empty are the same).
#[derive(PartialEq)]
struct Toleration<'v> {
    key: &'v str,
    operator: &'v str,
    value: &'v str,
    effect: &'v str,
    seconds: Option<i64>,
}

impl<'v> Toleration<'v> {
    fn of(t: &'v Value) -> Toleration<'v> {
        let s = |f: &str| t.get(f).and_then(Value::as_str).unwrap_or("");
        Toleration {
            key: s("key"),
            operator: s("operator"),
            value: s("value"),
            effect: s("effect"),
            seconds: t.get("tolerationSeconds").and_then(Value::as_i64),
        }
    }

    /// Whether `self` tolerates everything `t` does (upstream's `isSuperset`).
    fn covers(&self, t: &Toleration<'_>) -> bool {
        if self == t {
            return true;
        }
        if t.key != self.key && (!self.key.is_empty() || self.operator != "Exists") {
            return false;
        }
        if t.effect != self.effect && !self.effect.is_empty() {
            return false;
        }
        if self.effect == "NoExecute"
            && let Some(max) = self.seconds
            && t.seconds.is_none_or(|s| s > max)
        {
            return false;
        }
        match self.operator {
            "Equal" | "" => t.operator == "Equal" && t.value == self.value,
            "Exists" => true,
            _ => false,
        }
    }
}

/// Upstream's `MergeTolerations`: `first` then `second`, without a toleration that an
/// earlier kept one covers or a later different one covers.
pub fn merge_tolerations(first: Vec<Value>, second: &[Value]) -> Vec<Value> {
    let mut all = first;
    all.extend(second.iter().cloned());
    let parsed: Vec<Toleration<'_>> = all.iter().map(Toleration::of).collect();
    let mut kept: Vec<usize> = Vec::new();
    for (i, t) in parsed.iter().enumerate() {
        let covered_before = kept.iter().any(|&k| parsed[k].covers(t));
        let covered_after = parsed[i + 1..].iter().any(|later| later != t && later.covers(t));
        if !covered_before && !covered_after {
            kept.push(i);
        }
    }
    kept.iter().map(|&k| all[k].clone()).collect()
}

/// The validating phase's check of the pod's overhead against its class's.
pub fn validate_overhead(pod: &Value, class: Option<&Value>) -> Result<(), &'static str> {
    let Some(given) = pod_overhead(pod) else { return Ok(()) };
    match class.filter(|c| c.get("overhead").is_some_and(|o| !o.is_null())) {
        Some(c) if same_overhead(class_overhead(c), Some(given)) => Ok(()),
        Some(_) => Err(OVERHEAD_MISMATCH),
        None => Err(OVERHEAD_WITHOUT_CLASS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn class(v: Value) -> Value {
        let mut c = json!({"metadata": {"name": "gvisor"}, "handler": "runsc"});
        if let (Some(c), Some(v)) = (c.as_object_mut(), v.as_object()) {
            c.extend(v.clone());
        }
        c
    }

    #[test]
    fn the_class_overhead_is_set_and_a_different_one_refused() {
        let c = class(json!({"overhead": {"podFixed": {"cpu": "250m", "memory": "64Mi"}}}));
        let mut pod = json!({"spec": {"containers": []}});
        set_overhead(&mut pod, &c).unwrap();
        assert_eq!(pod["spec"]["overhead"], json!({"cpu": "250m", "memory": "64Mi"}));
        validate_overhead(&pod, Some(&c)).unwrap();
        // the same quantities written otherwise are the same overhead
        let mut same = json!({"spec": {"overhead": {"cpu": "0.25", "memory": "64Mi"}}});
        set_overhead(&mut same, &c).unwrap();
        let mut other = json!({"spec": {"overhead": {"cpu": "1"}}});
        assert_eq!(set_overhead(&mut other, &c), Err(OVERHEAD_MISMATCH));
        assert_eq!(validate_overhead(&other, Some(&c)), Err(OVERHEAD_MISMATCH));
    }

    #[test]
    fn an_overhead_without_a_class_that_defines_one_is_refused() {
        let pod = json!({"spec": {"overhead": {"cpu": "1"}}});
        assert_eq!(validate_overhead(&pod, None), Err(OVERHEAD_WITHOUT_CLASS));
        assert_eq!(validate_overhead(&pod, Some(&class(json!({})))), Err(OVERHEAD_WITHOUT_CLASS));
        validate_overhead(&json!({"spec": {}}), None).unwrap();
    }

    #[test]
    fn the_node_selector_merges_and_a_conflict_is_refused_with_upstreams_message() {
        let c = class(json!({"scheduling": {"nodeSelector": {"sandbox": "true", "zone": "a"}}}));
        let mut pod = json!({"spec": {"nodeSelector": {"disk": "ssd", "zone": "a"}}});
        set_scheduling(&mut pod, &c).unwrap();
        assert_eq!(
            pod["spec"]["nodeSelector"],
            json!({"disk": "ssd", "zone": "a", "sandbox": "true"})
        );
        let mut pod = json!({"spec": {"nodeSelector": {"zone": "b"}}});
        assert_eq!(
            set_scheduling(&mut pod, &c).unwrap_err(),
            "conflict: runtimeClass.scheduling.nodeSelector[zone] = a; pod.spec.nodeSelector[zone] = b"
        );
    }

    #[test]
    fn tolerations_merge_keeping_only_what_is_not_covered() {
        let c = class(json!({"scheduling": {"tolerations": [
            {"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "gpu", "operator": "Equal", "value": "x"}]}}));
        let mut pod = json!({"spec": {"tolerations": [
            {"key": "gpu", "operator": "Exists"},
            {"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"}]}});
        set_scheduling(&mut pod, &c).unwrap();
        assert_eq!(
            pod["spec"]["tolerations"],
            json!([{"key": "gpu", "operator": "Exists"},
                {"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"}])
        );
        // a later wider toleration replaces an earlier narrower one
        let merged = merge_tolerations(
            vec![json!({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"})],
            &[json!({"operator": "Exists"})],
        );
        assert_eq!(merged, [json!({"operator": "Exists"})]);
    }

    #[test]
    fn a_no_execute_toleration_covers_only_shorter_or_equal_seconds() {
        let long = json!({"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60});
        let short = json!({"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30});
        let merged = merge_tolerations(vec![short], std::slice::from_ref(&long));
        assert_eq!(merged, std::slice::from_ref(&long), "the longer one covers the shorter");
        let forever = json!({"key": "k", "operator": "Exists", "effect": "NoExecute"});
        assert_eq!(
            merge_tolerations(vec![forever.clone()], &[long]),
            [forever],
            "no limit covers all"
        );
    }
}
