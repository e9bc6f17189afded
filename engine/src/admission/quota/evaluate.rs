//! What an object costs under a ResourceQuota, per resource kind, as upstream's quota
//! evaluators (`pkg/quota/v1/evaluator/core` and the generic object counter): which
//! quota resource names a kind answers for, an object's usage, the constraints a quota
//! puts on it (`must specify requests.cpu ...`) and whether it falls in a quota scope.
//!
//! Invariants: usage is computed from the object alone (and the clock, for pods past
//! their deletion grace period); every kind counts itself as `count/<plural>[.<group>]`.

use crate::admission::resources::{self, ResourceList};
use kapi_codec::pointer::Pointer as _;
use kapi_codec::quantity::Quantity;
use serde_json::Value;

/// `<class>.storageclass.storage.k8s.io/<resource>`.
const STORAGE_CLASS: &str = ".storageclass.storage.k8s.io/";

/// The pod resources a quota may name (upstream's `podResources`).
const POD_RESOURCES: &[&str] = &[
    "count/pods",
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
];

/// The resources every pod container must ask for once a quota names them.
const MUST_SPECIFY: &[&str] =
    &["cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"];

const SERVICE_RESOURCES: &[&str] =
    &["count/services", "services", "services.loadbalancers", "services.nodeports"];

/// Which evaluator a resource has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evaluator {
    Pods,
    Services,
    Claims,
    /// Any other resource: its object count, and the legacy alias some core ones have.
    Count {
        name: String,
        alias: Option<&'static str>,
    },
}

/// One scope a quota selects by (`spec.scopes` entries are `Exists`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeSelector {
    pub scope: String,
    pub operator: String,
    pub values: Vec<String>,
}

/// The scope selectors of a quota: `spec.scopes`, then `spec.scopeSelector`.
pub fn scopes(quota: &Value) -> Vec<ScopeSelector> {
    let spec = &quota["spec"];
    let plain =
        spec["scopes"].as_array().into_iter().flatten().filter_map(Value::as_str).map(|s| {
            ScopeSelector { scope: s.into(), operator: "Exists".into(), values: Vec::new() }
        });
    let exprs = spec.at("/scopeSelector/matchExpressions").and_then(Value::as_array);
    let selected = exprs.into_iter().flatten().map(|e| ScopeSelector {
        scope: e["scopeName"].as_str().unwrap_or_default().into(),
        operator: e["operator"].as_str().unwrap_or_default().into(),
        values: e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
    });
    plain.chain(selected).collect()
}

/// `count/<plural>` for the core group, `count/<plural>.<group>` otherwise.
pub fn count_name(group: &str, plural: &str) -> String {
    if group.is_empty() { format!("count/{plural}") } else { format!("count/{plural}.{group}") }
}

impl Evaluator {
    /// The evaluator of `group`/`plural`; None for what quota ignores (events).
    pub fn of(group: &str, plural: &str) -> Option<Evaluator> {
        if group.is_empty() {
            match plural {
                "events" => return None,
                "pods" => return Some(Evaluator::Pods),
                "services" => return Some(Evaluator::Services),
                "persistentvolumeclaims" => return Some(Evaluator::Claims),
                _ => {}
            }
        }
        let alias = match (group, plural) {
            ("", "configmaps") => Some("configmaps"),
            ("", "secrets") => Some("secrets"),
            ("", "resourcequotas") => Some("resourcequotas"),
            ("", "replicationcontrollers") => Some("replicationcontrollers"),
            _ => None,
        };
        Some(Evaluator::Count { name: count_name(group, plural), alias })
    }

    /// The (group, plural) whose objects this evaluator counts.
    pub fn resource(&self) -> (String, String) {
        let core = |p: &str| (String::new(), p.to_string());
        match self {
            Evaluator::Pods => core("pods"),
            Evaluator::Services => core("services"),
            Evaluator::Claims => core("persistentvolumeclaims"),
            Evaluator::Count { name, .. } => {
                let rest = name.strip_prefix("count/").unwrap_or(name);
                match rest.split_once('.') {
                    Some((plural, group)) => (group.to_string(), plural.to_string()),
                    None => core(rest),
                }
            }
        }
    }

    /// Whether a write with this operation (and subresource) can change usage.
    pub fn handles(&self, op: crate::admission::Operation, sub: Option<&str>) -> bool {
        use crate::admission::Operation::{Create, Update};
        match (self, sub) {
            (Evaluator::Pods, None) => op == Create,
            (Evaluator::Pods, Some("resize")) => op == Update,
            (Evaluator::Services | Evaluator::Claims, None) => matches!(op, Create | Update),
            (Evaluator::Count { .. }, None) => op == Create,
            _ => false,
        }
    }

    /// The names among `names` this evaluator answers for.
    pub fn matching<'a>(&self, names: impl IntoIterator<Item = &'a String>) -> Vec<String> {
        names.into_iter().filter(|n| self.answers(n)).cloned().collect()
    }

    fn answers(&self, n: &str) -> bool {
        match self {
            Evaluator::Pods => {
                POD_RESOURCES.contains(&n)
                    || n.starts_with("hugepages-")
                    || n.starts_with("requests.hugepages-")
                    || n.strip_prefix("requests.").is_some_and(extended)
            }
            Evaluator::Services => SERVICE_RESOURCES.contains(&n),
            Evaluator::Claims => {
                matches!(
                    n,
                    "count/persistentvolumeclaims" | "persistentvolumeclaims" | "requests.storage"
                ) || n.ends_with(".storageclass.storage.k8s.io/persistentvolumeclaims")
                    || n.ends_with(".storageclass.storage.k8s.io/requests.storage")
            }
            Evaluator::Count { name, alias } => n == name || Some(n) == *alias,
        }
    }

    /// What `obj` uses (`now`: for pods past their deletion grace period).
    pub fn usage(&self, obj: &Value, now: Seconds) -> ResourceList {
        match self {
            Evaluator::Pods => pod_usage(obj, now),
            Evaluator::Services => service_usage(obj),
            Evaluator::Claims => claim_usage(obj),
            Evaluator::Count { name, alias } => {
                let mut u = ResourceList::from([(name.clone(), Quantity::from_int(1))]);
                if let Some(a) = alias {
                    u.insert((*a).to_string(), Quantity::from_int(1));
                }
                u
            }
        }
    }

    /// Refuse an object a quota naming `required` cannot count (upstream's
    /// `Constraints`: pods must ask for cpu and memory once a quota names them).
    pub fn constraints(&self, required: &[String], obj: &Value) -> Result<(), String> {
        if *self != Evaluator::Pods {
            return Ok(());
        }
        let required: Vec<&String> =
            required.iter().filter(|r| MUST_SPECIFY.contains(&r.as_str())).collect();
        let mut missing: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> =
            Default::default();
        for field in ["containers", "initContainers"] {
            for c in obj["spec"][field].as_array().into_iter().flatten() {
                let own = compute_usage(
                    &resources::list(c.at("/resources/requests")),
                    &resources::list(c.at("/resources/limits")),
                );
                for r in required.iter().filter(|r| !own.contains_key(r.as_str())) {
                    missing.entry(r.as_str()).or_default().insert(c["name"].as_str().unwrap_or(""));
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let parts: Vec<String> = missing
            .iter()
            .map(|(r, names)| {
                format!("{r} for: {}", names.iter().copied().collect::<Vec<_>>().join(","))
            })
            .collect();
        Err(format!("must specify {}", parts.join("; ")))
    }

    /// Whether `obj` falls in the scope `sel` (kinds without scopes fall in none).
    pub fn in_scope(&self, sel: &ScopeSelector, obj: &Value) -> bool {
        match self {
            Evaluator::Pods => pod_in_scope(sel, obj),
            _ => false,
        }
    }

    /// Whether `obj` falls in every scope of the quota.
    pub fn in_scopes(&self, sels: &[ScopeSelector], obj: &Value) -> bool {
        sels.iter().all(|s| self.in_scope(s, obj))
    }
}

/// Whether a resource name is an extended resource (a domain-prefixed name outside
/// `kubernetes.io/`, quota-able as `requests.<name>`).
fn extended(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/") && !name.starts_with("requests.")
}

/// Seconds since the Unix epoch (the clock pod usage reads, passed in so tests fix it).
pub type Seconds = i64;

/// The current time in [`Seconds`].
pub fn now_seconds() -> Seconds {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A pod's or container's usage from its requests and limits (upstream's
/// `podComputeUsageHelper`).
fn compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut out = ResourceList::from([("pods".to_string(), Quantity::from_int(1))]);
    for (res, names) in [
        ("cpu", ["cpu", "requests.cpu"]),
        ("memory", ["memory", "requests.memory"]),
        ("ephemeral-storage", ["ephemeral-storage", "requests.ephemeral-storage"]),
    ] {
        if let Some(q) = requests.get(res) {
            for n in names {
                out.insert(n.into(), q.clone());
            }
        }
        if let Some(q) = limits.get(res) {
            out.insert(format!("limits.{res}"), q.clone());
        }
    }
    for (res, q) in requests {
        if res.starts_with("hugepages-") {
            out.insert(res.clone(), q.clone());
            out.insert(format!("requests.{res}"), q.clone());
        }
        if extended(res) {
            out.insert(format!("requests.{res}"), q.clone());
        }
    }
    out
}

/// Whether a pod still counts against compute quota: not Succeeded or Failed, and not
/// past its deletion grace period (upstream's `QuotaV1Pod`).
fn counts_for_compute(pod: &Value, now: Seconds) -> bool {
    if matches!(pod.at("/status/phase").and_then(Value::as_str), Some("Succeeded" | "Failed")) {
        return false;
    }
    let deleted = kapi_codec::meta::meta_str(pod, "deletionTimestamp")
        .and_then(kapi_codec::time::parse_rfc3339)
        .map(|(secs, _)| secs);
    let grace = pod.at("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64);
    match (deleted, grace) {
        (Some(at), Some(grace)) => now <= at + grace,
        _ => true,
    }
}

fn pod_usage(pod: &Value, now: Seconds) -> ResourceList {
    let mut out = ResourceList::from([("count/pods".to_string(), Quantity::from_int(1))]);
    if counts_for_compute(pod, now) {
        let compute =
            compute_usage(&resources::pod_requests(pod, true), &resources::pod_limits(pod, true));
        resources::add(&mut out, &compute);
    }
    out
}

fn pod_in_scope(sel: &ScopeSelector, pod: &Value) -> bool {
    let spec = &pod["spec"];
    let terminating = spec["activeDeadlineSeconds"].as_i64().is_some_and(|s| s >= 0);
    let class = spec["priorityClassName"].as_str().unwrap_or("");
    match sel.scope.as_str() {
        "Terminating" => terminating,
        "NotTerminating" => !terminating,
        "BestEffort" => resources::best_effort(pod),
        "NotBestEffort" => !resources::best_effort(pod),
        "PriorityClass" => match sel.operator.as_str() {
            "Exists" => !class.is_empty(),
            "In" => sel.values.iter().any(|v| v == class),
            "NotIn" => !sel.values.iter().any(|v| v == class),
            // The class is always a key of the set upstream matches against.
            _ => false,
        },
        "CrossNamespacePodAffinity" => cross_namespace_affinity(spec),
        _ => false,
    }
}

/// Whether a pod's (anti-)affinity terms name other namespaces.
fn cross_namespace_affinity(spec: &Value) -> bool {
    let terms = |kind: &str| {
        let a = &spec["affinity"][kind];
        let required =
            a["requiredDuringSchedulingIgnoredDuringExecution"].as_array().into_iter().flatten();
        let preferred = a["preferredDuringSchedulingIgnoredDuringExecution"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| &w["podAffinityTerm"]);
        required.chain(preferred).cloned().collect::<Vec<_>>()
    };
    let mut all = terms("podAffinity");
    all.extend(terms("podAntiAffinity"));
    all.iter().any(|t| {
        t["namespaces"].as_array().is_some_and(|n| !n.is_empty())
            || t.get("namespaceSelector").is_some()
    })
}

fn service_usage(svc: &Value) -> ResourceList {
    let one = Quantity::from_int(1);
    let ports = svc.at("/spec/ports").and_then(Value::as_array).map_or(0, Vec::len) as i64;
    let mut out = ResourceList::from([
        ("count/services".to_string(), one.clone()),
        ("services".to_string(), one.clone()),
        ("services.loadbalancers".to_string(), Quantity::zero()),
        ("services.nodeports".to_string(), Quantity::zero()),
    ]);
    match svc.at("/spec/type").and_then(Value::as_str) {
        Some("NodePort") => {
            out.insert("services.nodeports".into(), Quantity::from_int(ports));
        }
        Some("LoadBalancer") => {
            let node_ports =
                if svc.at("/spec/allocateLoadBalancerNodePorts") == Some(&Value::Bool(false)) {
                    let all = svc.at("/spec/ports").and_then(Value::as_array);
                    all.into_iter()
                        .flatten()
                        .filter(|p| p["nodePort"].as_i64().is_some_and(|n| n != 0))
                        .count() as i64
                } else {
                    ports
                };
            out.insert("services.nodeports".into(), Quantity::from_int(node_ports));
            out.insert("services.loadbalancers".into(), one);
        }
        _ => {}
    }
    out
}

/// The storage class a claim is charged to (the beta annotation wins).
fn claim_class(pvc: &Value) -> Option<&str> {
    let annotated = pvc.at("/metadata/annotations/volume.beta.kubernetes.io~1storage-class");
    annotated
        .or_else(|| pvc.at("/spec/storageClassName"))
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
}

fn claim_usage(pvc: &Value) -> ResourceList {
    let one = Quantity::from_int(1);
    let mut out = ResourceList::from([
        ("persistentvolumeclaims".to_string(), one.clone()),
        ("count/persistentvolumeclaims".to_string(), one.clone()),
    ]);
    let class = claim_class(pvc);
    if let Some(class) = class {
        out.insert(format!("{class}{STORAGE_CLASS}persistentvolumeclaims"), one);
    }
    let requested = resources::list(pvc.at("/spec/resources/requests")).remove("storage");
    let allocated = resources::list(pvc.at("/status/allocatedResources")).remove("storage");
    let storage = match (requested, allocated) {
        (Some(r), Some(a)) => Some(if a > r { a } else { r }),
        (r, a) => r.or(a),
    };
    if let Some(mut s) = storage {
        s.round_up_units();
        if let Some(class) = class {
            out.insert(format!("{class}{STORAGE_CLASS}requests.storage"), s.clone());
        }
        out.insert("requests.storage".into(), s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn count_names_and_aliases_are_upstreams() {
        assert_eq!(
            Evaluator::of("", "configmaps"),
            Some(Evaluator::Count { name: "count/configmaps".into(), alias: Some("configmaps") })
        );
        assert_eq!(
            Evaluator::of("apps", "deployments"),
            Some(Evaluator::Count { name: "count/deployments.apps".into(), alias: None })
        );
        assert_eq!(Evaluator::of("", "events"), None);
        let cm = Evaluator::of("", "configmaps").unwrap();
        let hard = names(&["count/configmaps", "cpu", "configmaps"]);
        assert_eq!(cm.matching(&hard), names(&["count/configmaps", "configmaps"]));
    }

    #[test]
    fn pod_usage_counts_requests_limits_and_extended_resources() {
        let pod = json!({"spec": {"containers": [{"name": "c", "resources": {
            "requests": {"cpu": "250m", "memory": "64Mi", "example.com/gpu": "1"},
            "limits": {"cpu": "500m"}}}]}});
        let u = Evaluator::Pods.usage(&pod, 0);
        assert_eq!(
            resources::pretty(&u),
            "count/pods=1,cpu=250m,limits.cpu=500m,memory=64Mi,pods=1,requests.cpu=250m,\
             requests.example.com/gpu=1,requests.memory=64Mi"
        );
        let done = json!({"spec": {"containers": []}, "status": {"phase": "Succeeded"}});
        assert_eq!(resources::pretty(&Evaluator::Pods.usage(&done, 0)), "count/pods=1");
    }

    #[test]
    fn pods_past_their_grace_period_stop_counting_compute() {
        let pod = json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z",
            "deletionGracePeriodSeconds": 30}, "spec": {"containers": []}});
        let at = kapi_codec::time::parse_rfc3339("2026-01-01T00:00:00Z").unwrap().0;
        assert!(Evaluator::Pods.usage(&pod, at + 10).contains_key("pods"));
        assert!(!Evaluator::Pods.usage(&pod, at + 31).contains_key("pods"));
    }

    #[test]
    fn a_pod_without_a_cpu_request_is_refused_under_a_cpu_quota() {
        let pod = json!({"spec": {"containers": [{"name": "b"}, {"name": "a"}],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1"}}}]}});
        let err = Evaluator::Pods.constraints(&names(&["requests.cpu", "pods"]), &pod).unwrap_err();
        assert_eq!(err, "must specify requests.cpu for: a,b");
        let err = Evaluator::Pods.constraints(&names(&["memory", "limits.cpu"]), &pod).unwrap_err();
        assert_eq!(err, "must specify limits.cpu for: a,b,i; memory for: a,b,i");
    }

    #[test]
    fn pod_scopes_are_upstreams() {
        let sel = |scope: &str, op: &str, values: &[&str]| ScopeSelector {
            scope: scope.into(),
            operator: op.into(),
            values: names(values),
        };
        let be = json!({"spec": {"containers": [{"name": "a"}], "priorityClassName": "high"}});
        let term = json!({"spec": {"activeDeadlineSeconds": 5, "containers": [
            {"name": "a", "resources": {"requests": {"cpu": "1"}}}]}});
        let p = Evaluator::Pods;
        assert!(p.in_scope(&sel("BestEffort", "Exists", &[]), &be));
        assert!(!p.in_scope(&sel("BestEffort", "Exists", &[]), &term));
        assert!(p.in_scope(&sel("NotBestEffort", "Exists", &[]), &term));
        assert!(p.in_scope(&sel("Terminating", "Exists", &[]), &term));
        assert!(p.in_scope(&sel("NotTerminating", "Exists", &[]), &be));
        assert!(p.in_scope(&sel("PriorityClass", "In", &["high"]), &be));
        assert!(!p.in_scope(&sel("PriorityClass", "NotIn", &["high"]), &be));
        assert!(p.in_scope(&sel("PriorityClass", "NotIn", &["high"]), &term));
        assert!(!p.in_scope(&sel("PriorityClass", "Exists", &[]), &term));
        // Object counts have no scopes: a scoped quota counts none of them.
        let cm = Evaluator::of("", "configmaps").unwrap();
        assert!(!cm.in_scope(&sel("BestEffort", "Exists", &[]), &be));
    }

    #[test]
    fn services_count_load_balancers_and_node_ports() {
        let lb = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443}]}});
        assert_eq!(
            resources::pretty(&Evaluator::Services.usage(&lb, 0)),
            "count/services=1,services=1,services.loadbalancers=1,services.nodeports=2"
        );
        let ip = json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80}]}});
        assert_eq!(
            resources::pretty(&Evaluator::Services.usage(&ip, 0)),
            "count/services=1,services=1,services.loadbalancers=0,services.nodeports=0"
        );
    }

    #[test]
    fn claims_are_charged_to_their_storage_class() {
        let pvc = json!({"spec": {"storageClassName": "gold",
            "resources": {"requests": {"storage": "1500m"}}}});
        let u = Evaluator::Claims.usage(&pvc, 0);
        assert_eq!(u["requests.storage"].to_string(), "2");
        assert_eq!(u["gold.storageclass.storage.k8s.io/requests.storage"].to_string(), "2");
        assert_eq!(u["gold.storageclass.storage.k8s.io/persistentvolumeclaims"].to_string(), "1");
        let hard = names(&["gold.storageclass.storage.k8s.io/requests.storage", "pods"]);
        assert_eq!(Evaluator::Claims.matching(&hard).len(), 1);
    }
}
