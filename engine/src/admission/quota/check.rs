//! The quota arithmetic of one write, as upstream's quota admission controller does it:
//! which quotas of the namespace concern the object (their `status.hard` names a
//! resource its evaluator answers for and the object is in their scopes), the
//! constraints they impose, the usage the write adds (on an update only what grows),
//! and the new `status.used` of a quota or upstream's `exceeded quota` refusal.
//!
//! Invariant: a quota is judged by its `status` (`hard` as the controller copied it from
//! `spec`, `used` as last charged or recalculated), never by its `spec` directly.

use super::evaluate::{Evaluator, Seconds, scopes};
use crate::admission::resources::{self, ResourceList};
use kapi_codec::pointer::Pointer as _;
use serde_json::Value;

fn name(quota: &Value) -> &str {
    kapi_codec::meta::name(quota).unwrap_or("")
}

fn hard(quota: &Value) -> ResourceList {
    resources::list(quota.at("/status/hard"))
}

fn used(quota: &Value) -> ResourceList {
    resources::list(quota.at("/status/used"))
}

/// The resources of `quota` the object's evaluator answers for, when the object is in
/// the quota's scopes (empty: the quota does not concern it).
pub fn restricted(ev: &Evaluator, quota: &Value, obj: &Value) -> Vec<String> {
    let hard = hard(quota);
    let matching = ev.matching(hard.keys());
    if matching.is_empty() || !ev.in_scopes(&scopes(quota), obj) {
        return Vec::new();
    }
    matching
}

/// The quotas (by index) that concern `obj`, or the refusal of the first whose
/// constraints it fails or whose usage is not known yet.
pub fn interesting(ev: &Evaluator, quotas: &[Value], obj: &Value) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for (i, q) in quotas.iter().enumerate() {
        let restricted = restricted(ev, q, obj);
        if restricted.is_empty() {
            continue;
        }
        ev.constraints(&restricted, obj).map_err(|e| format!("failed quota: {}: {e}", name(q)))?;
        let used = used(q);
        if restricted.iter().any(|r| !used.contains_key(r)) {
            let mut names = restricted.clone();
            names.sort();
            return Err(format!(
                "status unknown for quota: {}, resources: {}",
                name(q),
                names.join(",")
            ));
        }
        out.push(i);
    }
    Ok(out)
}

/// What the write adds: the object's usage, less what the stored object already used
/// on an update (never below zero), without zeros.
pub fn delta(ev: &Evaluator, obj: &Value, old: Option<&Value>, now: Seconds) -> ResourceList {
    let mut d = resources::remove_zeros(ev.usage(obj, now));
    let stored = old.filter(|o| {
        kapi_codec::meta::meta_str(o, "resourceVersion").is_some_and(|rv| !rv.is_empty())
    });
    if let Some(old) = stored.filter(|_| !d.is_empty()) {
        d = resources::subtract_non_negative(&d, &ev.usage(old, now));
    }
    resources::remove_zeros(d)
}

/// The quota's `status.used` once `delta` is charged (None: the quota no longer concerns
/// the object, or nothing it limits grows), or upstream's refusal.
pub fn charge(
    ev: &Evaluator,
    quota: &Value,
    obj: &Value,
    delta: &ResourceList,
) -> Result<Option<ResourceList>, String> {
    if restricted(ev, quota, obj).is_empty() {
        return Ok(None);
    }
    let (hard, used) = (hard(quota), used(quota));
    let requested = resources::mask(delta, hard.keys());
    if requested.is_empty() {
        return Ok(None);
    }
    let mut new_usage = used.clone();
    resources::add(&mut new_usage, &requested);
    let exceeded = resources::exceeded(&resources::mask(&new_usage, requested.keys()), &hard);
    if !exceeded.is_empty() {
        return Err(format!(
            "exceeded quota: {}, requested: {}, used: {}, limited: {}",
            name(quota),
            resources::pretty(&resources::mask(&requested, &exceeded)),
            resources::pretty(&resources::mask(&used, &exceeded)),
            resources::pretty(&resources::mask(&hard, &exceeded)),
        ));
    }
    Ok(Some(new_usage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn quota(hard: Value, used: Value) -> Value {
        json!({"metadata": {"name": "q", "resourceVersion": "5"},
            "spec": {"hard": hard.clone()}, "status": {"hard": hard, "used": used}})
    }

    fn cm() -> Value {
        json!({"metadata": {"name": "c3"}, "data": {}})
    }

    #[test]
    fn the_last_slot_is_refused_with_upstreams_message() {
        let ev = Evaluator::of("", "configmaps").unwrap();
        let q = quota(json!({"count/configmaps": "2"}), json!({"count/configmaps": "2"}));
        let d = delta(&ev, &cm(), None, 0);
        assert_eq!(
            charge(&ev, &q, &cm(), &d).unwrap_err(),
            "exceeded quota: q, requested: count/configmaps=1, used: count/configmaps=2, \
             limited: count/configmaps=2"
        );
        let q = quota(json!({"count/configmaps": "2"}), json!({"count/configmaps": "1"}));
        let used = charge(&ev, &q, &cm(), &d).unwrap().unwrap();
        assert_eq!(resources::pretty(&used), "count/configmaps=2");
    }

    #[test]
    fn a_quota_without_usage_yet_refuses_as_upstream() {
        let ev = Evaluator::of("", "configmaps").unwrap();
        let q = json!({"metadata": {"name": "q"}, "status": {"hard": {"configmaps": "1", "count/configmaps": "1"}}});
        assert_eq!(
            interesting(&ev, &[q], &cm()).unwrap_err(),
            "status unknown for quota: q, resources: configmaps,count/configmaps"
        );
    }

    #[test]
    fn pods_under_a_cpu_quota_must_ask_for_cpu() {
        let q = quota(json!({"requests.cpu": "1"}), json!({"requests.cpu": "0"}));
        let pod = json!({"spec": {"containers": [{"name": "c"}]}});
        assert_eq!(
            interesting(&Evaluator::Pods, &[q], &pod).unwrap_err(),
            "failed quota: q: must specify requests.cpu for: c"
        );
    }

    #[test]
    fn compute_resources_are_charged_and_limited() {
        let q = quota(
            json!({"requests.cpu": "1", "pods": "10"}),
            json!({"requests.cpu": "800m", "pods": "1"}),
        );
        let pod = json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "300m"}}}]}});
        let d = delta(&Evaluator::Pods, &pod, None, 0);
        assert_eq!(
            charge(&Evaluator::Pods, &q, &pod, &d).unwrap_err(),
            "exceeded quota: q, requested: requests.cpu=300m, used: requests.cpu=800m, limited: requests.cpu=1"
        );
        let small = json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "200m"}}}]}});
        let d = delta(&Evaluator::Pods, &small, None, 0);
        let used = charge(&Evaluator::Pods, &q, &small, &d).unwrap().unwrap();
        assert_eq!(resources::pretty(&used), "pods=2,requests.cpu=1");
    }

    #[test]
    fn scoped_quotas_concern_only_objects_in_scope() {
        let mut q = quota(json!({"pods": "1"}), json!({"pods": "1"}));
        q["spec"]["scopes"] = json!(["BestEffort"]);
        let burstable = json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}});
        assert_eq!(interesting(&Evaluator::Pods, std::slice::from_ref(&q), &burstable), Ok(vec![]));
        let be = json!({"spec": {"containers": [{"name": "c"}]}});
        assert_eq!(interesting(&Evaluator::Pods, &[q], &be), Ok(vec![0]));
    }

    #[test]
    fn an_update_is_charged_only_what_grows() {
        let old = json!({"metadata": {"resourceVersion": "3"},
            "spec": {"type": "NodePort", "ports": [{"port": 1}]}});
        let new = json!({"metadata": {"resourceVersion": "3"},
            "spec": {"type": "NodePort", "ports": [{"port": 1}, {"port": 2}]}});
        let d = delta(&Evaluator::Services, &new, Some(&old), 0);
        assert_eq!(resources::pretty(&d), "services.nodeports=1");
        let q = quota(json!({"services.nodeports": "1"}), json!({"services.nodeports": "1"}));
        assert!(
            charge(&Evaluator::Services, &q, &new, &d)
                .unwrap_err()
                .contains("services.nodeports=1")
        );
        // A shrinking update charges nothing.
        assert!(delta(&Evaluator::Services, &old, Some(&new), 0).is_empty());
    }
}
