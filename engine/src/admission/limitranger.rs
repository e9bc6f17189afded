//! LimitRanger: the LimitRange objects of a pod's or claim's namespace (from the watch
//! cache) give containers default requests and limits (mutating, annotated
//! `kubernetes.io/limit-ranger`) and bound containers, pods and claims by `min`, `max`
//! and `maxLimitRequestRatio` (validating), with upstream's messages.
//!
//! Invariants: comparisons are exact (`Quantity` order, as upstream's `Cmp`); on an
//! update a value the stored object already holds is not checked again; an object being
//! deleted is left alone; the first LimitRange that refuses ends the check, its errors
//! joined as upstream's error aggregate.

use super::resources::{self, ResourceList};
use super::{Attributes, Operation, Plugin, Step, done, lister};
use crate::status::ApiError;
use kapi_codec::pointer::Pointer as _;
use kapi_codec::quantity::Quantity;
use serde_json::{Map, Value};

const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// Upstream's LimitRanger plugin.
pub struct LimitRanger;

fn is_core(a: &Attributes<'_>, plural: &str) -> bool {
    let rt = a.rt();
    rt.group.is_empty() && &*rt.plural == plural
}

impl Plugin for LimitRanger {
    fn name(&self) -> &'static str {
        "LimitRanger"
    }

    fn handles(&self, a: &Attributes<'_>) -> bool {
        match (a.operation, a.subresource()) {
            (Operation::Create, None) => is_core(a, "pods") || is_core(a, "persistentvolumeclaims"),
            (Operation::Update, None) => is_core(a, "persistentvolumeclaims"),
            (Operation::Update, Some("resize")) => is_core(a, "pods"),
            _ => false,
        }
    }

    fn mutates(&self) -> bool {
        true
    }

    fn validates(&self) -> bool {
        true
    }

    fn admit<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a mut Value) -> Step<'a> {
        if is_core(a, "pods") && !deleting(a) {
            for range in limit_ranges(a) {
                default_pod(&range, obj);
            }
        }
        done(Ok(()))
    }

    fn validate<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a Value) -> Step<'a> {
        if deleting(a) {
            return done(Ok(()));
        }
        let pods = is_core(a, "pods");
        for range in limit_ranges(a) {
            let errors = if pods {
                validate_pod(&range, obj, a.old)
            } else {
                validate_claim(&range, obj, a.old)
            };
            if !errors.is_empty() {
                return done(Err(ApiError::ForbiddenTarget(a.target(), aggregate(&errors))));
            }
        }
        done(Ok(()))
    }
}

/// Whether the object written is being deleted (upstream ignores those).
fn deleting(a: &Attributes<'_>) -> bool {
    a.old.is_some_and(|o| kapi_codec::meta::meta_str(o, "deletionTimestamp").is_some())
}

fn limit_ranges(a: &Attributes<'_>) -> Vec<Value> {
    lister::core(a.scope.app, "limitranges", a.namespace())
}

/// The items of a LimitRange.
fn items(range: &Value) -> impl Iterator<Item = &Value> {
    range.at("/spec/limits").and_then(Value::as_array).into_iter().flatten()
}

/// Upstream's error aggregate: one message alone, several deduplicated in `[a, b]`.
pub fn aggregate(errors: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for e in errors {
        if !seen.contains(&e.as_str()) {
            seen.push(e);
        }
    }
    match seen.as_slice() {
        [one] => (*one).to_string(),
        many => format!("[{}]", many.join(", ")),
    }
}

// ---- defaults (mutating) ----

/// Set the Container-type defaults of `range` on the pod's containers that lack them,
/// and say so in the annotation.
pub fn default_pod(range: &Value, pod: &mut Value) {
    let (mut requests, mut limits) = (ResourceList::new(), ResourceList::new());
    for item in items(range).filter(|i| i["type"] == "Container") {
        requests.extend(resources::list(item.get("defaultRequest")));
        limits.extend(resources::list(item.get("default")));
    }
    if requests.is_empty() && limits.is_empty() {
        return;
    }
    let mut notes = Vec::new();
    for (field, prefix) in [("containers", "container"), ("initContainers", "init container")] {
        let Some(list) = pod.at_mut(&format!("/spec/{field}")).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in list {
            let name = c["name"].as_str().unwrap_or_default().to_string();
            let set_requests = fill(c, "requests", &requests);
            let set_limits = fill(c, "limits", &limits);
            if !set_requests.is_empty() {
                notes.push(format!("{} request for {prefix} {name}", set_requests.join(", ")));
            }
            if !set_limits.is_empty() {
                notes.push(format!("{} limit for {prefix} {name}", set_limits.join(", ")));
            }
        }
    }
    if !notes.is_empty() {
        let value = format!("LimitRanger plugin set: {}", notes.join("; "));
        kapi_codec::meta::metadata_mut(pod)
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .map(|m| m.insert(ANNOTATION.into(), Value::String(value)));
    }
}

/// Add the `defaults` a container's `resources.<field>` lacks; the names set, sorted.
fn fill(container: &mut Value, field: &str, defaults: &ResourceList) -> Vec<String> {
    let has = |k: &str| container.get("resources").and_then(|r| r.get(field)?.get(k)).is_some();
    let missing: Vec<String> = defaults.keys().filter(|k| !has(k)).cloned().collect();
    let Some(c) = container.as_object_mut().filter(|_| !missing.is_empty()) else {
        return Vec::new();
    };
    let res = c.entry("resources").or_insert_with(|| Value::Object(Map::new()));
    let map =
        res.as_object_mut().map(|r| r.entry(field).or_insert_with(|| Value::Object(Map::new())));
    if let Some(map) = map.and_then(Value::as_object_mut) {
        for k in &missing {
            map.insert(k.clone(), defaults[k].to_json());
        }
    }
    missing
}

// ---- constraints (validating) ----

/// The min, max and ratio checks of one item on one (requests, limits) pair; names whose
/// request and limit `unchanged` says the stored object already held are skipped.
fn check_item(
    item: &Value,
    kind: &str,
    requests: &ResourceList,
    limits: &ResourceList,
    unchanged: &dyn Fn(&str) -> bool,
    out: &mut Vec<String>,
) {
    for (name, q) in resources::list(item.get("min")) {
        if !unchanged(&name) {
            out.extend(min_constraint(kind, &name, &q, requests, limits));
        }
    }
    for (name, q) in resources::list(item.get("max")) {
        if !unchanged(&name) {
            out.extend(max_constraint(kind, &name, &q, requests, limits));
        }
    }
    for (name, q) in resources::list(item.get("maxLimitRequestRatio")) {
        if !unchanged(&name) {
            out.extend(ratio_constraint(kind, &name, &q, requests, limits));
        }
    }
}

/// The errors of a pod against one LimitRange (`old`: the stored pod on an update).
pub fn validate_pod(range: &Value, pod: &Value, old: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    for item in items(range) {
        match item["type"].as_str() {
            Some("Container") => {
                for field in ["containers", "initContainers"] {
                    let olds = old.and_then(|o| o["spec"][field].as_array());
                    for c in pod["spec"][field].as_array().into_iter().flatten() {
                        check_container(item, c, olds, &mut out);
                    }
                }
            }
            Some("Pod") => {
                let (req, lim) =
                    (resources::pod_requests(pod, false), resources::pod_limits(pod, false));
                let before = old
                    .map(|o| (resources::pod_requests(o, false), resources::pod_limits(o, false)));
                let unchanged = |name: &str| {
                    before.as_ref().is_some_and(|(r, l)| same(name, &req, r) && same(name, &lim, l))
                };
                check_item(item, "Pod", &req, &lim, &unchanged, &mut out);
            }
            _ => {}
        }
    }
    out
}

fn check_container(item: &Value, c: &Value, olds: Option<&Vec<Value>>, out: &mut Vec<String>) {
    let req = resources::list(c.at("/resources/requests"));
    let lim = resources::list(c.at("/resources/limits"));
    let old = olds.and_then(|list| list.iter().find(|o| o["name"] == c["name"]));
    let before = old.map(|o| {
        (resources::list(o.at("/resources/requests")), resources::list(o.at("/resources/limits")))
    });
    let unchanged = |name: &str| {
        before.as_ref().is_some_and(|(r, l)| same(name, &req, r) && same(name, &lim, l))
    };
    check_item(item, "Container", &req, &lim, &unchanged, out);
}

/// Whether `name` is absent from both lists or equal in both.
fn same(name: &str, a: &ResourceList, b: &ResourceList) -> bool {
    a.get(name) == b.get(name)
}

/// The errors of a claim's requested storage against one LimitRange.
pub fn validate_claim(range: &Value, pvc: &Value, old: Option<&Value>) -> Vec<String> {
    let requests = resources::list(pvc.at("/spec/resources/requests"));
    let before = old.map(|o| resources::list(o.at("/spec/resources/requests")));
    let unchanged = |name: &str| {
        before.as_ref().is_some_and(|b| requests.contains_key(name) && same(name, &requests, b))
    };
    let mut out = Vec::new();
    for item in items(range).filter(|i| i["type"] == "PersistentVolumeClaim") {
        for (name, q) in resources::list(item.get("min")) {
            if !unchanged(&name) {
                let kind = "PersistentVolumeClaim";
                out.extend(min_constraint(kind, &name, &q, &requests, &ResourceList::new()));
            }
        }
        for (name, q) in resources::list(item.get("max")) {
            if !unchanged(&name) {
                out.extend(max_request_constraint("PersistentVolumeClaim", &name, &q, &requests));
            }
        }
    }
    out
}

fn min_constraint(
    kind: &str,
    name: &str,
    enforced: &Quantity,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let head = format!("minimum {name} usage per {kind} is {enforced}");
    let Some(req) = requests.get(name) else {
        return Some(format!("{head}.  No request is specified"));
    };
    if enforced > req {
        return Some(format!("{head}, but request is {req}"));
    }
    match limits.get(name) {
        Some(lim) if enforced > lim => Some(format!("{head}, but limit is {lim}")),
        _ => None,
    }
}

fn max_request_constraint(
    kind: &str,
    name: &str,
    enforced: &Quantity,
    requests: &ResourceList,
) -> Option<String> {
    let head = format!("maximum {name} usage per {kind} is {enforced}");
    match requests.get(name) {
        None => Some(format!("{head}.  No request is specified")),
        Some(req) if req > enforced => Some(format!("{head}, but request is {req}")),
        Some(_) => None,
    }
}

fn max_constraint(
    kind: &str,
    name: &str,
    enforced: &Quantity,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let head = format!("maximum {name} usage per {kind} is {enforced}");
    let Some(lim) = limits.get(name) else {
        return Some(format!("{head}.  No limit is specified"));
    };
    if lim > enforced {
        return Some(format!("{head}, but limit is {lim}"));
    }
    match requests.get(name) {
        Some(req) if req > enforced => Some(format!("{head}, but request is {req}")),
        _ => None,
    }
}

fn ratio_constraint(
    kind: &str,
    name: &str,
    enforced: &Quantity,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let head = format!("{name} max limit to request ratio per {kind} is {enforced}");
    let req = match requests.get(name) {
        Some(r) if !r.is_zero() => r,
        _ => return Some(format!("{head}, but no request is specified or request is 0")),
    };
    let lim = match limits.get(name) {
        Some(l) if !l.is_zero() => l,
        _ => return Some(format!("{head}, but no limit is specified or limit is 0")),
    };
    exceeds_ratio(lim, req, enforced)
        .then(|| format!("{head}, but provided ratio is {}", ratio_text(lim, req)))
}

/// Whether |limit| > |request| x ratio, exactly (nano-units: l*10^9 > r*ratio).
fn exceeds_ratio(limit: &Quantity, request: &Quantity, ratio: &Quantity) -> bool {
    let (l, r, k) = (limit.nano().abs(), request.nano().abs(), ratio.nano());
    match (l.checked_mul(1_000_000_000), r.checked_mul(k)) {
        (Some(a), Some(b)) => a > b,
        _ => (l as f64) * 1e9 > (r as f64) * (k as f64),
    }
}

/// |limit| / |request| to six decimals, rounded half to even (upstream's `QuoRound`).
fn ratio_text(limit: &Quantity, request: &Quantity) -> String {
    let (l, r) = (limit.nano().abs(), request.nano().abs());
    let Some(scaled) = l.checked_mul(1_000_000) else {
        return format!("{:.6}", l as f64 / r as f64);
    };
    let (mut q, rem) = (scaled / r, scaled % r);
    if rem * 2 > r || (rem * 2 == r && q % 2 == 1) {
        q += 1;
    }
    format!("{}.{:06}", q / 1_000_000, q % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn range(items: Value) -> Value {
        json!({"metadata": {"name": "lr"}, "spec": {"limits": items}})
    }

    fn pod(containers: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": containers}})
    }

    #[test]
    fn defaults_fill_what_containers_lack_and_are_annotated() {
        let lr = range(json!([{"type": "Container",
            "default": {"cpu": "500m", "memory": "128Mi"}, "defaultRequest": {"cpu": "100m"}}]));
        let mut p = json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "c", "resources": {"limits": {"memory": "1Gi"}}}],
            "initContainers": [{"name": "i"}]}});
        default_pod(&lr, &mut p);
        let c = &p["spec"]["containers"][0]["resources"];
        assert_eq!(c["limits"], json!({"memory": "1Gi", "cpu": "500m"}));
        assert_eq!(c["requests"], json!({"cpu": "100m"}));
        assert_eq!(p["spec"]["initContainers"][0]["resources"]["limits"]["memory"], "128Mi");
        assert_eq!(
            p["metadata"]["annotations"][ANNOTATION],
            "LimitRanger plugin set: cpu request for container c; cpu limit for container c; \
             cpu request for init container i; cpu, memory limit for init container i"
        );
    }

    #[test]
    fn container_max_is_refused_with_upstreams_message() {
        let lr = range(json!([{"type": "Container", "max": {"cpu": "500m"}}]));
        let p = pod(json!([{"name": "c", "resources": {"limits": {"cpu": "4"}}}]));
        assert_eq!(
            aggregate(&validate_pod(&lr, &p, None)),
            "maximum cpu usage per Container is 500m, but limit is 4"
        );
        let none = pod(json!([{"name": "c"}]));
        assert_eq!(
            validate_pod(&lr, &none, None),
            vec!["maximum cpu usage per Container is 500m.  No limit is specified"]
        );
    }

    #[test]
    fn min_and_ratio_messages_are_upstreams() {
        let lr = range(json!([{"type": "Container", "min": {"memory": "64Mi"},
            "maxLimitRequestRatio": {"cpu": "2"}}]));
        let p = pod(json!([{"name": "c", "resources": {
            "requests": {"cpu": "100m", "memory": "32Mi"}, "limits": {"cpu": "300m"}}}]));
        assert_eq!(
            aggregate(&validate_pod(&lr, &p, None)),
            "[minimum memory usage per Container is 64Mi, but request is 32Mi, \
             cpu max limit to request ratio per Container is 2, but provided ratio is 3.000000]"
        );
    }

    #[test]
    fn comparisons_are_exact_across_formats() {
        let lr = range(json!([{"type": "Container", "max": {"memory": "1Gi"}}]));
        let at = pod(json!([{"name": "c", "resources": {"limits": {"memory": "1073741824"}}}]));
        assert!(validate_pod(&lr, &at, None).is_empty());
        let over = pod(json!([{"name": "c", "resources": {"limits": {"memory": "1073741825"}}}]));
        assert_eq!(validate_pod(&lr, &over, None).len(), 1);
    }

    #[test]
    fn pod_totals_are_bounded_per_pod() {
        let lr = range(json!([{"type": "Pod", "max": {"cpu": "1"}}]));
        let p = pod(json!([
            {"name": "a", "resources": {"limits": {"cpu": "600m"}}},
            {"name": "b", "resources": {"limits": {"cpu": "600m"}}}]));
        assert_eq!(
            validate_pod(&lr, &p, None),
            vec!["maximum cpu usage per Pod is 1, but limit is 1200m"]
        );
    }

    #[test]
    fn an_update_does_not_recheck_what_the_stored_pod_holds() {
        let lr = range(json!([{"type": "Container", "max": {"cpu": "500m"}}]));
        let p = pod(json!([{"name": "c", "resources": {"limits": {"cpu": "4"}}}]));
        assert!(validate_pod(&lr, &p, Some(&p)).is_empty());
    }

    #[test]
    fn claims_are_bounded_by_their_requested_storage() {
        let lr = range(json!([{"type": "PersistentVolumeClaim",
            "min": {"storage": "1Gi"}, "max": {"storage": "10Gi"}}]));
        let pvc = |s: &str| json!({"spec": {"resources": {"requests": {"storage": s}}}});
        assert!(validate_claim(&lr, &pvc("5Gi"), None).is_empty());
        assert_eq!(
            validate_claim(&lr, &pvc("20Gi"), None),
            vec!["maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi"]
        );
        assert_eq!(
            validate_claim(&lr, &pvc("500Mi"), None),
            vec!["minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"]
        );
        // An expansion that keeps the stored (too large) value is not refused.
        assert!(validate_claim(&lr, &pvc("20Gi"), Some(&pvc("20Gi"))).is_empty());
    }

    #[test]
    fn ratios_print_six_decimals_rounded_half_even() {
        let q = |s: &str| Quantity::parse(s).unwrap();
        assert_eq!(ratio_text(&q("1"), &q("3")), "0.333333");
        assert_eq!(ratio_text(&q("2"), &q("3")), "0.666667");
        assert!(exceeds_ratio(&q("301m"), &q("100m"), &q("3")));
        assert!(!exceeds_ratio(&q("300m"), &q("100m"), &q("3")));
    }
}
