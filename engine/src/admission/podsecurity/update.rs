//! Which pod updates PodSecurity evaluates (upstream's `isSignificantPodUpdate`): only
//! those that can change what the checks see. Most of a pod's spec is immutable; what
//! can change is container images, the seccomp annotations, and ephemeral containers
//! (added through their subresource). Metadata-only and status updates pass unevaluated.

use super::checks::{field, items, name, text};
use serde_json::Value;

const SECCOMP_POD: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER: &str = "container.seccomp.security.alpha.kubernetes.io/";

fn annotation<'a>(pod: &'a Value, key: &str) -> Option<&'a str> {
    field(field(pod, "metadata"), "annotations").get(key).and_then(Value::as_str)
}

/// Whether updating `old` to `new` (both pods) needs a policy evaluation.
pub fn significant(new: &Value, old: &Value) -> bool {
    if annotation(new, SECCOMP_POD) != annotation(old, SECCOMP_POD) {
        return true;
    }
    let (spec, old_spec) = (field(new, "spec"), field(old, "spec"));
    for key in ["containers", "initContainers"] {
        let (now, before) = (items(spec, key), items(old_spec, key));
        if now.len() != before.len() {
            return true;
        }
        if now.zip(before).any(|(c, o)| container_changed(c, o, new, old)) {
            return true;
        }
    }
    items(spec, "ephemeralContainers").any(|c| {
        match items(old_spec, "ephemeralContainers").find(|o| name(o) == name(c)) {
            None => true,
            Some(o) => container_changed(c, o, new, old),
        }
    })
}

fn container_changed(c: &Value, o: &Value, new: &Value, old: &Value) -> bool {
    if text(c, "image") != text(o, "image") {
        return true;
    }
    let key = format!("{SECCOMP_CONTAINER}{}", name(c));
    annotation(new, &key) != annotation(old, &key)
}

#[cfg(test)]
mod tests {
    use super::super::checks::fixtures::{restricted_pod, set};
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_and_status_updates_are_not_significant() {
        let old = restricted_pod();
        let mut new = old.clone();
        set(&mut new, "/metadata/labels", json!({"a": "b"}));
        set(&mut new, "/status/phase", json!("Running"));
        set(&mut new, "/spec/activeDeadlineSeconds", json!(5));
        assert!(!significant(&new, &old));
    }

    #[test]
    fn image_changes_seccomp_annotations_and_new_ephemeral_containers_are() {
        let old = restricted_pod();
        let mut image = old.clone();
        set(&mut image, "/spec/initContainers/0/image", json!("other"));
        assert!(significant(&image, &old));
        let mut ann = old.clone();
        set(
            &mut ann,
            "/metadata/annotations",
            json!({"container.seccomp.security.alpha.kubernetes.io/container1": "unconfined"}),
        );
        assert!(significant(&ann, &old));
        let mut eph = old.clone();
        set(&mut eph, "/spec/ephemeralContainers", json!([{"name": "dbg", "image": "busybox"}]));
        assert!(significant(&eph, &old));
        assert!(!significant(&eph, &eph.clone()));
    }
}
