//! Conversion between served versions that share one storage version, as upstream:
//! `events.k8s.io/v1` Event is stored as core `v1` Event, and `autoscaling/v1`
//! HorizontalPodAutoscaler as `autoscaling/v2`; a custom resource served in several
//! versions with conversion `None` is stored in its CRD's storage version, only
//! `apiVersion` changing, and so is a beta or alpha built-in version that names a
//! `storage_version` (`resource.k8s.io/v1beta2` DeviceClass is stored as `v1`). Every
//! other type is stored in the version it is served in (identity).
//!
//! Invariant: `from_storage(to_storage(x))` keeps every field the served version has.

use crate::registry::ResourceType;
use serde_json::{Value, json};

/// The conversion webhook of `rt` (a custom resource whose CRD's conversion strategy is
/// `Webhook`): its objects are converted by the engine through the webhook, not here.
pub fn webhook(rt: &ResourceType) -> Option<&std::sync::Arc<crate::webhook_conversion::Webhook>> {
    rt.custom.as_ref()?.webhook.as_ref()
}

/// `GROUP/VERSION` of the version `rt`'s objects are stored in.
pub fn storage_api_version(rt: &ResourceType) -> String {
    match (&rt.custom, &rt.storage_version) {
        (Some(c), _) => format!("{}/{}", rt.group, c.storage_version),
        (None, Some(v)) if rt.group.is_empty() => v.to_string(),
        (None, Some(v)) => format!("{}/{v}", rt.group),
        (None, None) => rt.api_version(),
    }
}

/// Whether objects of `rt` are stored exactly as served (no conversion).
pub fn is_identity(rt: &ResourceType) -> bool {
    match &rt.custom {
        Some(c) => c.storage_version == *rt.version,
        None if rt.storage_version.is_some() => false,
        None => !matches!(
            (&*rt.group, &*rt.version, &*rt.kind),
            ("events.k8s.io", "v1", "Event") | ("autoscaling", "v1", "HorizontalPodAutoscaler")
        ),
    }
}

/// Convert an object of `rt`'s version into the storage version.
pub fn to_storage(rt: &ResourceType, obj: Value) -> Value {
    if let Some(c) = &rt.custom {
        return with_api_version(obj, &format!("{}/{}", rt.group, c.storage_version));
    }
    if let Some(v) = &rt.storage_version {
        return with_api_version(obj, &format!("{}/{v}", rt.group));
    }
    match (&*rt.group, &*rt.version, &*rt.kind) {
        ("events.k8s.io", "v1", "Event") => rename(obj, EVENT_FIELDS, true, "v1"),
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => hpa_v1_to_v2(obj),
        _ => obj,
    }
}

/// Convert a stored object into `rt`'s version.
pub fn from_storage(rt: &ResourceType, obj: Value) -> Value {
    if rt.custom.is_some() || rt.storage_version.is_some() {
        return with_api_version(obj, &rt.api_version());
    }
    match (&*rt.group, &*rt.version, &*rt.kind) {
        ("events.k8s.io", "v1", "Event") => rename(obj, EVENT_FIELDS, false, "events.k8s.io/v1"),
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => hpa_v2_to_v1(obj),
        _ => obj,
    }
}

/// An object in another version of its type when only `apiVersion` changes (custom
/// conversion `None`, built-in versions with a `storage_version`).
fn with_api_version(mut obj: Value, api_version: &str) -> Value {
    if let Some(o) = obj.as_object_mut()
        && o.get("apiVersion").and_then(Value::as_str) != Some(api_version)
    {
        o.insert("apiVersion".into(), json!(api_version));
    }
    obj
}

/// (events.k8s.io/v1 name, core/v1 name).
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename(mut obj: Value, fields: &[(&str, &str)], forward: bool, api_version: &str) -> Value {
    if let Some(m) = obj.as_object_mut() {
        for (a, b) in fields {
            let (from, to) = if forward { (a, b) } else { (b, a) };
            if let Some(v) = m.remove(*from) {
                m.insert((*to).to_string(), v);
            }
        }
        m.insert("apiVersion".into(), json!(api_version));
    }
    obj
}

fn cpu_metric(percent: &Value) -> Value {
    json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": percent}}})
}

fn hpa_v1_to_v2(mut obj: Value) -> Value {
    let Some(m) = obj.as_object_mut() else { return obj };
    m.insert("apiVersion".into(), json!("autoscaling/v2"));
    if let Some(spec) = m.get_mut("spec").and_then(Value::as_object_mut)
        && let Some(p) = spec.remove("targetCPUUtilizationPercentage")
    {
        spec.insert("metrics".into(), json!([cpu_metric(&p)]));
    }
    if let Some(status) = m.get_mut("status").and_then(Value::as_object_mut)
        && let Some(p) = status.remove("currentCPUUtilizationPercentage")
    {
        let current = json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": p}}});
        status.insert("currentMetrics".into(), json!([current]));
    }
    obj
}

fn cpu_utilization(metrics: Option<&Value>, key: &str) -> Option<Value> {
    metrics?.as_array()?.iter().find_map(|m| {
        let r = m.get("resource")?;
        (r.get("name")? == "cpu").then(|| r.get(key)?.get("averageUtilization").cloned())?
    })
}

fn hpa_v2_to_v1(mut obj: Value) -> Value {
    let Some(m) = obj.as_object_mut() else { return obj };
    m.insert("apiVersion".into(), json!("autoscaling/v1"));
    if let Some(spec) = m.get_mut("spec").and_then(Value::as_object_mut) {
        let target = cpu_utilization(spec.get("metrics"), "target");
        spec.remove("metrics");
        spec.remove("behavior");
        if let Some(p) = target {
            spec.insert("targetCPUUtilizationPercentage".into(), p);
        }
    }
    if let Some(status) = m.get_mut("status").and_then(Value::as_object_mut) {
        let current = cpu_utilization(status.get("currentMetrics"), "current");
        status.remove("currentMetrics");
        status.remove("conditions");
        if let Some(p) = current {
            status.insert("currentCPUUtilizationPercentage".into(), p);
        }
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(group: &str, version: &str, kind: &str) -> std::sync::Arc<ResourceType> {
        crate::Registry::builtin().by_kind(group, version, kind).unwrap().clone()
    }

    #[test]
    fn events_v1_round_trip_through_core_storage() {
        let t = rt("events.k8s.io", "v1", "Event");
        let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "note": "hi", "regarding": {"name": "p"}, "reason": "X"});
        let stored = to_storage(&t, ev.clone());
        assert_eq!(stored["message"], "hi");
        assert_eq!(stored["involvedObject"]["name"], "p");
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(from_storage(&t, stored), ev);
    }

    #[test]
    fn hpa_v1_cpu_target_round_trips_through_v2() {
        let t = rt("autoscaling", "v1", "HorizontalPodAutoscaler");
        let h = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "spec": {"maxReplicas": 3, "targetCPUUtilizationPercentage": 50}});
        let stored = to_storage(&t, h.clone());
        assert_eq!(stored["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 50);
        assert_eq!(from_storage(&t, stored), h);
    }
}
