//! A container's resource requirements (`resources.limits`, `.requests`, `.claims`) and
//! a pod's `overhead`, validated as upstream's `ValidateResourceRequirements`: resource
//! names (standard for containers, or an extended `domain/name`), quantities not
//! negative, integers for extended resources, huge pages in whole pages and only beside
//! cpu or memory, a request no more than its limit (equal to it where overcommit is not
//! allowed), and claims naming the pod's `resourceClaims`.
//!
//! Invariant: only quantities that parse are judged (one that does not was refused with
//! 400 when the body was decoded); names and values are read, never changed.

use crate::error::FieldError;
use crate::quantity::Quantity;
use crate::validation::qualified_name_errors;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

const HUGE_PAGES: &str = "hugepages-";
/// Names without a `/` that upstream knows (`standardResources`): a container may not
/// use most of them, but each is a resource type, so only the container rule fails.
const STANDARD: &[&str] = &[
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
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "storage",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
];
/// Names whose quantities must be whole numbers (besides extended resources).
const INTEGER: &[&str] = &[
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
];

fn is_huge_pages(name: &str) -> bool {
    name.starts_with(HUGE_PAGES)
}

/// A name kubernetes.io owns: no domain, or a `kubernetes.io/` one.
fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// A device plugin's `domain/name` that a quota can name as `requests.domain/name`.
fn is_extended(name: &str) -> bool {
    !is_native(name)
        && !name.starts_with("requests.")
        && qualified_name_errors(&format!("requests.{name}")).is_empty()
}

fn overcommit_allowed(name: &str) -> bool {
    is_native(name) && !is_huge_pages(name)
}

fn is_integer(name: &str) -> bool {
    INTEGER.contains(&name) || is_extended(name)
}

/// Validate `res` (a container's `resources`) at `path`; `claims` are the names in the
/// pod's `spec.resourceClaims`.
pub fn validate_requirements(
    res: &Value,
    path: &str,
    claims: &BTreeSet<&str>,
    out: &mut Vec<FieldError>,
) {
    let empty = Map::new();
    let limits = res.get("limits").and_then(Value::as_object).unwrap_or(&empty);
    let requests = res.get("requests").and_then(Value::as_object).unwrap_or(&empty);
    let mut seen = Seen::default();
    for (name, v) in limits {
        let Some(q) = defaulted(v) else { continue };
        entry(name, v, &q, &format!("{path}.limits[{name}]"), &mut seen, out);
    }
    for (name, v) in requests {
        let Some(q) = defaulted(v) else { continue };
        entry(name, v, &q, &format!("{path}.requests[{name}]"), &mut seen, out);
        let at = format!("{path}.requests");
        match limits.get(name).and_then(defaulted) {
            Some(l) if q != l && !overcommit_allowed(name) => {
                let detail = format!("must be equal to {name} limit of {l}");
                out.push(FieldError::invalid(at, &json!(q.to_string()), &detail));
            }
            Some(l) if q > l => {
                let detail = format!("must be less than or equal to {name} limit of {l}");
                out.push(FieldError::invalid(at, &json!(q.to_string()), &detail));
            }
            Some(_) => {}
            None if !overcommit_allowed(name) => out.push(FieldError::required(
                format!("{path}.limits"),
                "Limit must be set for non overcommitable resources",
            )),
            None => {}
        }
    }
    if seen.huge_pages && !seen.cpu_or_memory {
        out.push(FieldError::forbidden(path, "HugePages require cpu or memory"));
    }
    claim_names(res.get("claims"), &format!("{path}.claims"), claims, out);
}

/// Validate a pod's `overhead` at `path` (as limits without requests).
pub fn validate_overhead(overhead: &Value, path: &str, out: &mut Vec<FieldError>) {
    let Some(m) = overhead.as_object() else { return };
    let mut seen = Seen::default();
    for (name, v) in m {
        let Some(q) = defaulted(v) else { continue };
        entry(name, v, &q, &format!("{path}[{name}]"), &mut seen, out);
    }
    if seen.huge_pages && !seen.cpu_or_memory {
        out.push(FieldError::forbidden(path, "HugePages require cpu or memory"));
    }
}

#[derive(Default)]
struct Seen {
    huge_pages: bool,
    cpu_or_memory: bool,
}

/// A resource list's value as upstream judges it: defaulted (rounded up to thousandths
/// by `SetDefaults_ResourceList`, as kapi stores it).
fn defaulted(v: &Value) -> Option<Quantity> {
    let mut q = Quantity::from_json(v)?;
    q.round_up_milli();
    Some(q)
}

/// The checks of one limit or request (`v` as sent, `q` defaulted): its name, sign,
/// whole units, whole pages.
fn entry(
    name: &str,
    v: &Value,
    q: &Quantity,
    at: &str,
    seen: &mut Seen,
    out: &mut Vec<FieldError>,
) {
    container_resource_name(name, at, out);
    if q.sign() < 0 {
        out.push(FieldError::invalid(
            at,
            &json!(q.to_string()),
            "must be greater than or equal to 0",
        ));
    }
    if is_integer(name) && q.nano() % 1_000_000_000 != 0 {
        out.push(FieldError::invalid_shown(at, &go_quantity(v, q), "must be an integer"));
    }
    if is_huge_pages(name) {
        seen.huge_pages = true;
        if !whole_pages(name, q) {
            let detail = format!("{q} is not positive integer multiple of {name}");
            out.push(FieldError::invalid(at, &json!(q.to_string()), &detail));
        }
    }
    seen.cpu_or_memory |= name == "cpu" || name == "memory";
}

/// Upstream's `validateContainerResourceName`.
fn container_resource_name(name: &str, at: &str, out: &mut Vec<FieldError>) {
    let errors = qualified_name_errors(name);
    let qualified = errors.is_empty();
    out.extend(errors.iter().map(|e| FieldError::invalid(at, &json!(name), e)));
    if !name.contains('/') {
        if qualified && !STANDARD.contains(&name) && !is_huge_pages(name) {
            let detail = "must be a standard resource type or fully qualified";
            out.push(FieldError::invalid(at, &json!(name), detail));
        }
        if !matches!(name, "cpu" | "memory" | "ephemeral-storage") && !is_huge_pages(name) {
            let detail = "must be a standard resource for containers";
            out.push(FieldError::invalid(at, &json!(name), detail));
        }
    } else if !is_native(name) && !is_extended(name) {
        let detail = "doesn't follow extended resource name standard";
        out.push(FieldError::invalid(at, &json!(name), detail));
    }
}

/// Whether `q` is a whole number of `hugepages-SIZE` pages.
fn whole_pages(name: &str, q: &Quantity) -> bool {
    let Some(page) = Quantity::parse(&name[HUGE_PAGES.len()..]) else { return false };
    let unit = 1_000_000_000i128;
    if page.sign() <= 0 || page.nano() % unit != 0 || q.sign() < 0 {
        return false;
    }
    // Upstream compares `Value()`s: the quantity rounded up to whole units.
    let value = (q.nano() + unit - 1) / unit;
    value % (page.nano() / unit) == 0
}

/// Upstream's `validateResourceClaimNames`.
fn claim_names(list: Option<&Value>, path: &str, pod: &BTreeSet<&str>, out: &mut Vec<FieldError>) {
    let mut names = BTreeSet::new();
    for (i, c) in list.and_then(Value::as_array).into_iter().flatten().enumerate() {
        let at = format!("{path}[{i}]");
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            out.push(FieldError::required(at, ""));
            continue;
        }
        if !names.insert(name) {
            out.push(FieldError::duplicate(at.clone(), &json!(name)));
        }
        if !pod.contains(name) {
            let known = if pod.is_empty() {
                " which is empty".to_string()
            } else {
                format!(": {}", pod.iter().copied().collect::<Vec<_>>().join(", "))
            };
            let detail = format!("must be one of the names in pod.spec.resourceClaims{known}");
            out.push(FieldError::not_found(at, &json!(name), &detail));
        }
    }
}

/// A quantity as Go's `%#v` prints a `resource.Quantity` value (upstream passes the
/// struct, not its text, as the bad value of "must be an integer"); its canonical text
/// where upstream's print would hold a pointer.
fn go_quantity(v: &Value, q: &Quantity) -> String {
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    };
    crate::quantity::go_struct(&text, true).unwrap_or_else(|| format!("{:?}", q.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(res: Value) -> Vec<String> {
        let claims = BTreeSet::from(["gpu"]);
        let mut out = Vec::new();
        validate_requirements(&res, "r", &claims, &mut out);
        out.into_iter().map(|e| e.message).collect()
    }

    #[test]
    fn a_request_over_its_limit_is_refused_with_upstreams_message() {
        let got = errors(json!({"limits": {"memory": "2Mi"}, "requests": {"memory": "1Gi"}}));
        assert_eq!(
            got,
            [
                "r.requests: Invalid value: \"1Gi\": must be less than or equal to memory limit of 2Mi"
            ]
        );
        assert!(errors(json!({"limits": {"cpu": "1"}, "requests": {"cpu": "500m"}})).is_empty());
    }

    #[test]
    fn negative_quantities_and_unknown_names_are_refused() {
        let got = errors(json!({"requests": {"cpu": "-1", "foo": "1", "pods": "1"}}));
        assert_eq!(
            got,
            [
                "r.requests[cpu]: Invalid value: \"-1\": must be greater than or equal to 0",
                "r.requests[foo]: Invalid value: \"foo\": must be a standard resource type or fully qualified",
                "r.requests[foo]: Invalid value: \"foo\": must be a standard resource for containers",
                "r.requests[pods]: Invalid value: \"pods\": must be a standard resource for containers",
            ]
        );
    }

    #[test]
    fn extended_resources_are_whole_and_their_request_equals_the_limit() {
        let got = errors(json!({
            "limits": {"example.com/dongle": "2"},
            "requests": {"example.com/dongle": "1", "example.com/fan": "1"},
        }));
        assert_eq!(
            got,
            [
                "r.requests: Invalid value: \"1\": must be equal to example.com/dongle limit of 2",
                "r.limits: Required value: Limit must be set for non overcommitable resources",
            ]
        );
        let half = errors(json!({"limits": {"example.com/dongle": "500m"}}));
        assert_eq!(half.len(), 1);
        assert!(half[0].ends_with(": must be an integer"), "{half:?}");
        // kubernetes.io names are native: overcommit allowed, fractions too.
        assert!(errors(json!({"requests": {"kubernetes.io/x": "1500m"}})).is_empty());
    }

    #[test]
    fn huge_pages_come_in_whole_pages_beside_cpu_or_memory() {
        let got = errors(
            json!({"limits": {"hugepages-2Mi": "3Mi"}, "requests": {"hugepages-2Mi": "3Mi"}}),
        );
        assert_eq!(
            got,
            [
                "r.limits[hugepages-2Mi]: Invalid value: \"3Mi\": 3Mi is not positive integer multiple of hugepages-2Mi",
                "r.requests[hugepages-2Mi]: Invalid value: \"3Mi\": 3Mi is not positive integer multiple of hugepages-2Mi",
                "r: Forbidden: HugePages require cpu or memory",
            ]
        );
        let ok = json!({"limits": {"hugepages-2Mi": "4Mi", "memory": "1Gi"}, "requests": {"hugepages-2Mi": "4Mi"}});
        assert!(errors(ok).is_empty());
    }

    #[test]
    fn claims_name_the_pods_resource_claims() {
        let got =
            errors(json!({"claims": [{"name": "gpu"}, {"name": "gpu"}, {"name": "tpu"}, {}]}));
        assert_eq!(
            got,
            [
                "r.claims[1]: Duplicate value: \"gpu\"",
                "r.claims[2]: Not found: \"tpu\": must be one of the names in pod.spec.resourceClaims: gpu",
                "r.claims[3]: Required value",
            ]
        );
    }
}
