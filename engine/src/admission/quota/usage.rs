//! The quota controller's arithmetic: a quota's usage recalculated from the objects of
//! its namespace (upstream's `CalculateUsage`), the status it should have (`hard` from
//! `spec.hard`, `used` for every hard name), and whether the stored status differs.
//!
//! Invariant: every evaluator that answers for a hard name contributes, each name
//! starting at zero, so `status.used` has an entry for every resource the quota
//! limits that kapi can count; names no evaluator counts keep their last value.

use super::evaluate::{Evaluator, Seconds, scopes};
use crate::admission::resources::{self, ResourceList};
use kapi_codec::pointer::Pointer as _;
use kapi_codec::quantity::Quantity;
use serde_json::Value;

/// Where the objects come from (the watch caches; a map in tests).
pub trait Source {
    /// Every object the evaluator's resource has in `ns`.
    fn objects(&self, ev: &Evaluator, ns: &str) -> Vec<Value>;
    /// How many objects the evaluator's resource has in `ns`.
    fn count(&self, ev: &Evaluator, ns: &str) -> usize;
}

/// The evaluators a quota with `hard` needs: upstream's built-in ones and an object
/// counter for each other `count/<resource>` it names.
pub fn evaluators<'a>(hard: impl IntoIterator<Item = &'a String>) -> Vec<Evaluator> {
    let mut evs = vec![Evaluator::Pods, Evaluator::Services, Evaluator::Claims];
    for plural in ["configmaps", "secrets", "resourcequotas", "replicationcontrollers"] {
        evs.extend(Evaluator::of("", plural));
    }
    for name in hard.into_iter().filter(|n| n.starts_with("count/")) {
        if evs.iter().any(|e| !e.matching([name]).is_empty()) {
            continue;
        }
        let probe = Evaluator::Count { name: name.clone(), alias: None };
        let (group, plural) = probe.resource();
        evs.extend(Evaluator::of(&group, &plural));
    }
    evs
}

/// The observed usage of every resource of `quota` kapi can count.
pub fn calculate(src: &dyn Source, quota: &Value, now: Seconds) -> ResourceList {
    let hard = resources::list(quota.at("/spec/hard"));
    let ns = kapi_codec::meta::namespace(quota).unwrap_or("");
    let sels = scopes(quota);
    let mut usage = ResourceList::new();
    let mut matched = Vec::new();
    for ev in evaluators(hard.keys()) {
        let names = ev.matching(hard.keys());
        if names.is_empty() {
            continue;
        }
        let mut used: ResourceList = names.iter().map(|n| (n.clone(), Quantity::zero())).collect();
        if let Evaluator::Count { .. } = ev {
            // Object counts have no scopes: a scoped quota counts none.
            let n = if sels.is_empty() { src.count(&ev, ns) } else { 0 };
            for q in used.values_mut() {
                *q = Quantity::from_int(n as i64);
            }
        } else {
            for obj in src.objects(&ev, ns).iter().filter(|o| ev.in_scopes(&sels, o)) {
                resources::add(&mut used, &ev.usage(obj, now));
            }
        }
        resources::add(&mut usage, &used);
        matched.extend(names);
    }
    resources::mask(&usage, &matched)
}

/// The status `quota` should have given its observed usage: `hard` is `spec.hard`, and
/// `used` the observed values over the last ones, for the hard names only.
pub fn status(quota: &Value, observed: ResourceList) -> (ResourceList, ResourceList) {
    let hard = resources::list(quota.at("/spec/hard"));
    let mut used = resources::list(quota.at("/status/used"));
    used.extend(observed);
    (hard.clone(), resources::mask(&used, hard.keys()))
}

/// Whether the stored status differs from (`hard`, `used`) (compared by value).
pub fn dirty(quota: &Value, hard: &ResourceList, used: &ResourceList) -> bool {
    let (Some(h), Some(u)) = (quota.at("/status/hard"), quota.at("/status/used")) else {
        return true;
    };
    !resources::equal(&resources::list(Some(h)), hard)
        || !resources::equal(&resources::list(Some(u)), used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    struct Objects(HashMap<String, Vec<Value>>);

    impl Source for Objects {
        fn objects(&self, ev: &Evaluator, _ns: &str) -> Vec<Value> {
            self.0.get(&ev.resource().1).cloned().unwrap_or_default()
        }
        fn count(&self, ev: &Evaluator, ns: &str) -> usize {
            self.objects(ev, ns).len()
        }
    }

    fn src() -> Objects {
        let pod = |cpu: &str| json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}});
        Objects(HashMap::from([
            ("configmaps".to_string(), vec![json!({}), json!({})]),
            (
                "pods".to_string(),
                vec![pod("100m"), pod("250m"), json!({"spec": {"containers": [{"name": "be"}]}})],
            ),
            ("deployments".to_string(), vec![json!({})]),
        ]))
    }

    fn quota(spec: Value) -> Value {
        json!({"metadata": {"name": "q", "namespace": "n"}, "spec": spec})
    }

    #[test]
    fn usage_covers_every_hard_name_kapi_counts() {
        let q = quota(
            json!({"hard": {"count/configmaps": "5", "configmaps": "5", "requests.cpu": "2",
            "pods": "10", "count/deployments.apps": "3", "services": "1", "example.com/other": "1"}}),
        );
        let used = calculate(&src(), &q, 0);
        assert_eq!(
            resources::pretty(&used),
            "configmaps=2,count/configmaps=2,count/deployments.apps=1,pods=3,requests.cpu=350m,services=0"
        );
        let (hard, used) = status(&q, used);
        assert!(dirty(&q, &hard, &used), "no status yet");
        let mut stored = q.clone();
        stored["status"] =
            json!({"hard": resources::to_json(&hard), "used": resources::to_json(&used)});
        assert!(!dirty(&stored, &hard, &used));
    }

    #[test]
    fn scoped_quotas_count_only_pods_in_scope() {
        let q = quota(
            json!({"hard": {"pods": "10", "count/configmaps": "1"}, "scopes": ["BestEffort"]}),
        );
        assert_eq!(resources::pretty(&calculate(&src(), &q, 0)), "count/configmaps=0,pods=1");
        let q = quota(json!({"hard": {"pods": "10"}, "scopes": ["NotBestEffort"]}));
        assert_eq!(resources::pretty(&calculate(&src(), &q, 0)), "pods=2");
    }
}
