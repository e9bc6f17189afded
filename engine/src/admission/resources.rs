//! Resource lists (`requests`, `limits`, a quota's `hard` and `used`) as upstream's
//! `ResourceList` helpers see them: sorted name -> [`Quantity`] maps with add, max,
//! mask and compare, and a pod's total requests and limits as upstream's
//! `PodRequests`/`PodLimits` compute them (sidecar init containers add up, other init
//! containers count by their maximum; pod-level resources override; overhead optional).
//!
//! Invariant: a quantity that does not parse is left out of a list (validation refuses
//! such objects before they are stored), never a panic.

use kapi_codec::pointer::Pointer as _;
use kapi_codec::quantity::Quantity;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Resource name -> quantity, in name order (upstream prints lists sorted).
pub type ResourceList = BTreeMap<String, Quantity>;

/// The list a JSON map holds (None or not a map: empty).
pub fn list(v: Option<&Value>) -> ResourceList {
    let Some(map) = v.and_then(Value::as_object) else { return ResourceList::new() };
    map.iter().filter_map(|(k, q)| Some((k.clone(), Quantity::from_json(q)?))).collect()
}

/// The list as a JSON map of canonical quantities.
pub fn to_json(l: &ResourceList) -> Value {
    Value::Object(l.iter().map(|(k, q)| (k.clone(), q.to_json())).collect::<Map<_, _>>())
}

/// `into += other`, name by name (upstream's `quota.Add`).
pub fn add(into: &mut ResourceList, other: &ResourceList) {
    for (k, q) in other {
        into.entry(k.clone()).or_insert_with(Quantity::zero).add(q);
    }
}

/// `into = max(into, other)`, name by name.
pub fn max(into: &mut ResourceList, other: &ResourceList) {
    for (k, q) in other {
        match into.get_mut(k) {
            Some(cur) if *cur >= *q => {}
            Some(cur) => *cur = q.clone(),
            None => {
                into.insert(k.clone(), q.clone());
            }
        }
    }
}

/// `a - b`, never below zero, for the names of `a` (upstream's
/// `SubtractWithNonNegativeResult`).
pub fn subtract_non_negative(a: &ResourceList, b: &ResourceList) -> ResourceList {
    a.iter()
        .map(|(k, q)| {
            let mut d = q.clone();
            if let Some(s) = b.get(k) {
                d.sub(s);
            }
            if d.sign() < 0 {
                d = Quantity::zero();
            }
            (k.clone(), d)
        })
        .collect()
}

/// Only the names in `names` (upstream's `quota.Mask`).
pub fn mask<'a>(l: &ResourceList, names: impl IntoIterator<Item = &'a String>) -> ResourceList {
    names.into_iter().filter_map(|k| Some((k.clone(), l.get(k)?.clone()))).collect()
}

/// Without zero quantities (upstream's `RemoveZeros`).
pub fn remove_zeros(mut l: ResourceList) -> ResourceList {
    l.retain(|_, q| !q.is_zero());
    l
}

/// Whether every name of `a` is at most its value in `b` (names `b` lacks pass), and
/// the names that exceed (upstream's `LessThanOrEqual`).
pub fn exceeded(a: &ResourceList, b: &ResourceList) -> Vec<String> {
    a.iter()
        .filter(|(k, q)| b.get(*k).is_some_and(|limit| *q > limit))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Whether both lists have the same names with equal values (upstream's `quota.Equals`).
pub fn equal(a: &ResourceList, b: &ResourceList) -> bool {
    a.len() == b.len() && a.iter().all(|(k, q)| b.get(k) == Some(q))
}

/// `a=1,b=2` in name order (upstream's `prettyPrint`).
pub fn pretty(l: &ResourceList) -> String {
    l.iter().map(|(k, q)| format!("{k}={q}")).collect::<Vec<_>>().join(",")
}

/// Whether `name` is a resource pod-level `resources` may set.
fn pod_level(name: &str) -> bool {
    name == "cpu" || name == "memory" || name.starts_with("hugepages-")
}

/// What a pod's containers ask for in `field` (`requests` or `limits`): the sum of the
/// containers and sidecars, at least each other init container with the sidecars
/// started before it, overridden by pod-level resources.
fn pod_total(pod: &Value, field: &str) -> ResourceList {
    let spec = &pod["spec"];
    let resources = |c: &Value| list(c.at(&format!("/resources/{field}")));
    let mut total = ResourceList::new();
    for c in spec["containers"].as_array().into_iter().flatten() {
        add(&mut total, &resources(c));
    }
    let mut sidecars = ResourceList::new();
    let mut init_max = ResourceList::new();
    for c in spec["initContainers"].as_array().into_iter().flatten() {
        let own = resources(c);
        if c["restartPolicy"] == "Always" {
            add(&mut total, &own);
            add(&mut sidecars, &own);
            max(&mut init_max, &sidecars);
        } else {
            let mut with_sidecars = own;
            add(&mut with_sidecars, &sidecars);
            max(&mut init_max, &with_sidecars);
        }
    }
    max(&mut total, &init_max);
    for (k, q) in list(spec.at(&format!("/resources/{field}"))) {
        if pod_level(&k) {
            total.insert(k, q);
        }
    }
    total
}

/// A pod's requests (upstream's `PodRequests`); `overhead` adds `spec.overhead`.
pub fn pod_requests(pod: &Value, overhead: bool) -> ResourceList {
    let mut total = pod_total(pod, "requests");
    if overhead {
        add(&mut total, &list(pod.at("/spec/overhead")));
    }
    total
}

/// A pod's limits (upstream's `PodLimits`); `overhead` adds `spec.overhead` to the
/// limits that are set.
pub fn pod_limits(pod: &Value, overhead: bool) -> ResourceList {
    let mut total = pod_total(pod, "limits");
    if overhead {
        for (k, q) in list(pod.at("/spec/overhead")) {
            if let Some(cur) = total.get_mut(&k) {
                cur.add(&q);
            }
        }
    }
    total
}

/// Whether the pod is BestEffort (upstream's QoS: no container and no pod-level
/// resources ask for or limit cpu or memory above zero).
pub fn best_effort(pod: &Value) -> bool {
    let spec = &pod["spec"];
    let sets = |res: &Value| {
        ["requests", "limits"].iter().any(|f| {
            list(res.get(*f)).iter().any(|(k, q)| (k == "cpu" || k == "memory") && q.sign() > 0)
        })
    };
    let containers = ["containers", "initContainers"]
        .iter()
        .flat_map(|f| spec[*f].as_array().into_iter().flatten());
    !sets(&spec["resources"]) && !containers.into_iter().any(|c| sets(&c["resources"]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn l(v: Value) -> ResourceList {
        list(Some(&v))
    }

    #[test]
    fn pod_totals_add_containers_and_take_the_largest_init_container() {
        let pod = json!({"spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m"}}},
                {"name": "b", "resources": {"requests": {"cpu": "200m", "memory": "1Gi"}}}
            ],
            "initContainers": [
                {"name": "i", "resources": {"requests": {"cpu": "1"}}},
                {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "50m"}}}
            ],
            "overhead": {"cpu": "10m"}
        }});
        let r = pod_requests(&pod, false);
        assert_eq!(pretty(&r), "cpu=1,memory=1Gi");
        let r = pod_requests(&pod, true);
        assert_eq!(pretty(&r), "cpu=1010m,memory=1Gi");
    }

    #[test]
    fn sidecars_add_to_the_init_containers_started_after_them() {
        let pod = json!({"spec": {
            "containers": [{"name": "a", "resources": {"limits": {"cpu": "100m"}}}],
            "initContainers": [
                {"name": "s", "restartPolicy": "Always", "resources": {"limits": {"cpu": "500m"}}},
                {"name": "i", "resources": {"limits": {"cpu": "700m"}}}
            ]
        }});
        assert_eq!(pretty(&pod_limits(&pod, false)), "cpu=1200m");
    }

    #[test]
    fn list_helpers_behave_as_upstreams() {
        let a = l(json!({"cpu": "1", "pods": "2"}));
        let b = l(json!({"cpu": "1500m"}));
        assert_eq!(pretty(&subtract_non_negative(&a, &b)), "cpu=0,pods=2");
        assert_eq!(exceeded(&b, &a), vec!["cpu".to_string()]);
        assert!(equal(&l(json!({"cpu": "1000m"})), &l(json!({"cpu": "1"}))));
        assert_eq!(pretty(&remove_zeros(l(json!({"a": "0", "b": "1"})))), "b=1");
    }

    #[test]
    fn best_effort_is_no_cpu_or_memory_anywhere() {
        assert!(best_effort(&json!({"spec": {"containers": [{"name": "a"}]}})));
        let burst = json!({"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"memory": "1Mi"}}}]}});
        assert!(!best_effort(&burst));
        let other = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"ephemeral-storage": "1Mi", "cpu": "0"}}}]}});
        assert!(best_effort(&other));
    }
}
