//! PodSecurity on namespaces (upstream's `ValidateNamespace`): the Pod Security labels
//! must be valid, and tightening the enforce policy warns about the existing pods that
//! would violate it (they are not touched).
//!
//! Invariants:
//! - A create with an invalid label is refused (422); an update only when its invalid
//!   labels differ from the old object's (a namespace already invalid can still be
//!   updated otherwise).
//! - Pods are evaluated only when enforce changes to a non-privileged policy that is not
//!   a mere relaxation at the same version.
//! - At most [`MAX_PODS`] pods are evaluated, within the caller's deadline; pods of a
//!   controller already seen go last (one per controller first), as upstream.

use super::api::{Level, LevelVersion, policy_for};
use super::checks::{Pod, field, items, text};
use super::evaluate::evaluate;
use kapi_codec::error::FieldError;
use serde_json::{Map, Value};
use std::time::Instant;

/// The most existing pods one namespace update evaluates (upstream's default).
pub const MAX_PODS: usize = 3000;

/// The labels of a namespace object.
pub fn labels(ns: &Value) -> Option<&Map<String, Value>> {
    field(ns, "metadata").get("labels").and_then(Value::as_object)
}

/// A namespace create: its labels must be valid.
pub fn on_create(ns: &Value) -> Result<(), Vec<FieldError>> {
    let (_, errs) = policy_for(labels(ns));
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

/// A namespace update: Err when its labels are newly invalid; Ok(Some(enforce)) when the
/// existing pods must be checked against the new enforce policy.
pub fn on_update(new: &Value, old: &Value) -> Result<Option<LevelVersion>, Vec<FieldError>> {
    let (policy, errs) = policy_for(labels(new));
    let (old_policy, old_errs) = policy_for(labels(old));
    if !errs.is_empty() && (old_errs.is_empty() || errs != old_errs) {
        return Err(errs);
    }
    let (now, before) = (policy.enforce, old_policy.enforce);
    let relaxed = now.version == before.version && now.level <= before.level;
    if now == before || now.level == Level::Privileged || relaxed {
        return Ok(None);
    }
    Ok(Some(now))
}

/// The UID of a pod's controller, if any.
fn controller(pod: &Value) -> Option<&str> {
    items(field(pod, "metadata"), "ownerReferences")
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .and_then(|r| text(r, "uid"))
}

/// One pod per controller first, then the other replicas (upstream's prioritizePods).
fn prioritized(pods: Vec<Value>) -> Vec<Value> {
    let mut first = Vec::with_capacity(pods.len());
    let mut rest = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for pod in pods {
        match controller(&pod) {
            Some(uid) if seen.iter().any(|s| s == uid) => rest.push(pod),
            Some(uid) => {
                seen.push(uid.to_string());
                first.push(pod);
            }
            None => first.push(pod),
        }
    }
    first.extend(rest);
    first
}

/// A warning shared by several pods: the lexically first pod's name and the count.
struct Shared {
    reasons: String,
    first: String,
    count: usize,
}

/// The warnings for tightening `ns`'s enforce policy to `enforce`, given its pods.
pub fn existing_pods(
    ns: &str,
    enforce: LevelVersion,
    pods: Vec<Value>,
    deadline: Instant,
) -> Vec<String> {
    let mut pods = prioritized(pods);
    let total = pods.len();
    pods.truncate(MAX_PODS);
    let mut checked = pods.len();
    let mut shared: Vec<Shared> = Vec::new();
    for (i, pod) in pods.iter().enumerate() {
        let verdict = evaluate(enforce, &Pod::of(pod));
        if !verdict.allowed() {
            note(
                &mut shared,
                verdict.reasons(),
                text(field(pod, "metadata"), "name").unwrap_or(""),
            );
        }
        if Instant::now() >= deadline {
            checked = i + 1;
            break;
        }
    }
    let mut out = Vec::new();
    if checked < total {
        out.push(format!(
            "new PodSecurity enforce level only checked against the first {checked} of {total} existing pods"
        ));
    }
    if !shared.is_empty() {
        out.push(format!(
            "existing pods in namespace \"{ns}\" violate the new PodSecurity enforce level \"{enforce}\""
        ));
    }
    let mut per_pod: Vec<String> = shared.iter().map(decorate).collect();
    per_pod.sort();
    out.extend(per_pod);
    out
}

fn note(shared: &mut Vec<Shared>, reasons: String, pod: &str) {
    match shared.iter_mut().find(|s| s.reasons == reasons) {
        Some(s) => {
            if pod < s.first.as_str() {
                s.first = pod.to_string();
            }
            s.count += 1;
        }
        None => shared.push(Shared { reasons, first: pod.to_string(), count: 1 }),
    }
}

fn decorate(s: &Shared) -> String {
    match s.count {
        1 => format!("{}: {}", s.first, s.reasons),
        2 => format!("{} (and 1 other pod): {}", s.first, s.reasons),
        n => format!("{} (and {} other pods): {}", s.first, n - 1, s.reasons),
    }
}

#[cfg(test)]
mod tests {
    use super::super::api::Version;
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn ns(labels: Value) -> Value {
        json!({"metadata": {"name": "team", "labels": labels}})
    }

    fn pod(name: &str, privileged: bool, owner: Option<&str>) -> Value {
        let mut p = json!({"metadata": {"name": name}, "spec": {"containers": [
            {"name": "c", "image": "i", "securityContext": {"privileged": privileged}}]}});
        if let Some(uid) = owner {
            p["metadata"]["ownerReferences"] = json!([{"uid": uid, "controller": true}]);
        }
        p
    }

    const BASELINE: LevelVersion =
        LevelVersion { level: Level::Baseline, version: Version::LATEST };

    #[test]
    fn invalid_labels_are_refused_on_create_and_on_changing_updates() {
        let bad = ns(json!({"pod-security.kubernetes.io/enforce": "bogus"}));
        let errs = on_create(&bad).unwrap_err();
        assert_eq!(errs[0].field, "metadata.labels[pod-security.kubernetes.io/enforce]");
        assert!(on_create(&ns(json!({"pod-security.kubernetes.io/warn": "restricted"}))).is_ok());
        let good = ns(json!({}));
        assert!(on_update(&bad, &good).is_err());
        // Already invalid the same way: other changes still pass.
        assert_eq!(on_update(&bad, &bad), Ok(None));
    }

    #[test]
    fn only_a_tightened_enforce_policy_checks_pods() {
        let none = ns(json!({}));
        let baseline = ns(json!({"pod-security.kubernetes.io/enforce": "baseline"}));
        let restricted = ns(json!({"pod-security.kubernetes.io/enforce": "restricted"}));
        let pinned = ns(json!({
            "pod-security.kubernetes.io/enforce": "baseline",
            "pod-security.kubernetes.io/enforce-version": "v1.20",
        }));
        assert_eq!(on_update(&baseline, &none), Ok(Some(BASELINE)));
        assert_eq!(on_update(&baseline, &baseline), Ok(None));
        assert_eq!(on_update(&baseline, &restricted), Ok(None), "relaxed at the same version");
        assert_eq!(on_update(&none, &restricted), Ok(None), "privileged");
        let v120 = LevelVersion { level: Level::Baseline, version: Version::v1(20) };
        assert_eq!(on_update(&pinned, &baseline), Ok(Some(v120)));
        let warn_only = ns(json!({"pod-security.kubernetes.io/warn": "restricted"}));
        assert_eq!(on_update(&warn_only, &none), Ok(None));
    }

    #[test]
    fn existing_pods_warnings_group_pods_by_reasons() {
        let later = Instant::now() + Duration::from_secs(3600);
        let pods = vec![
            pod("b", true, None),
            pod("a", true, None),
            pod("ok", false, None),
            pod("z", true, None),
        ];
        let w = existing_pods("team", BASELINE, pods, later);
        assert_eq!(
            w,
            [
                "existing pods in namespace \"team\" violate the new PodSecurity enforce level \
                 \"baseline:latest\"",
                "a (and 2 other pods): privileged",
            ]
        );
        let two = existing_pods(
            "team",
            BASELINE,
            vec![pod("x", true, None), pod("y", true, None)],
            later,
        );
        assert_eq!(two[1], "x (and 1 other pod): privileged");
        assert!(existing_pods("team", BASELINE, vec![pod("ok", false, None)], later).is_empty());
    }

    #[test]
    fn a_passed_deadline_reports_how_many_pods_were_checked() {
        let pods = vec![
            pod("a", true, Some("u1")),
            pod("b", true, Some("u1")),
            pod("c", true, Some("u2")),
        ];
        let w = existing_pods("team", BASELINE, pods, Instant::now());
        assert_eq!(
            w[0],
            "new PodSecurity enforce level only checked against the first 1 of 3 existing pods"
        );
        assert_eq!(w[2], "a: privileged");
    }

    #[test]
    fn one_pod_per_controller_goes_first() {
        let pods = vec![
            pod("a", true, Some("u1")),
            pod("b", true, Some("u1")),
            pod("c", true, Some("u2")),
        ];
        let order: Vec<String> = prioritized(pods)
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(order, ["a", "c", "b"]);
    }
}
