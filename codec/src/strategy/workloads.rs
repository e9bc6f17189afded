//! Workload controllers' objects: Deployments, ReplicaSets, StatefulSets, DaemonSets,
//! ReplicationControllers, Jobs, CronJobs — upstream defaults (including the pod
//! template's), generation tracking, status reset on create, selector/template checks
//! and immutable selectors.

use super::Strategy;
use super::pods::{default_template, validate_pod_spec};
use super::util::{default, field_string, obj_at};
use crate::error::FieldError;
use crate::meta;
use crate::selector::LabelSelector;
use crate::validation::immutable;
use serde_json::{Map, Value, json};

fn reset_status(obj: &mut Value) {
    if let Some(m) = obj.as_object_mut() {
        m.insert("status".into(), json!({}));
    }
}

/// `matchLabels` + `matchExpressions` as a selector string.
fn selector_of(sel: &Value) -> Option<LabelSelector> {
    let mut parts: Vec<String> = Vec::new();
    for (k, v) in sel.get("matchLabels").and_then(Value::as_object).into_iter().flatten() {
        parts.push(format!("{k}={}", v.as_str().unwrap_or("")));
    }
    for e in sel.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        let vals: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match e.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" => parts.push(format!("{key} in ({})", vals.join(","))),
            "NotIn" => parts.push(format!("{key} notin ({})", vals.join(","))),
            "Exists" => parts.push(key.to_string()),
            "DoesNotExist" => parts.push(format!("!{key}")),
            _ => return None,
        }
    }
    LabelSelector::parse(&parts.join(",")).ok()
}

/// Checks shared by selector-based workloads: selector present, non-empty, matching the
/// template's labels; the template's pod spec valid.
fn validate_selector_template(
    obj: &Value,
    restart: &[&str],
    template_path: &str,
) -> Vec<FieldError> {
    let mut out = Vec::new();
    let tpl_ptr = format!("/{}", template_path.replace('.', "/"));
    let sel = obj.pointer("/spec/selector");
    match sel {
        None | Some(Value::Null) => out.push(FieldError::required("spec.selector", "")),
        Some(s)
            if s.as_object().is_some_and(|m| {
                m.values().all(|v| {
                    v.as_object().is_some_and(Map::is_empty)
                        || v.as_array().is_some_and(Vec::is_empty)
                })
            }) =>
        {
            out.push(FieldError::invalid(
                "spec.selector",
                s,
                "empty selector is invalid for deployment",
            ));
        }
        Some(s) => {
            let labels =
                obj.pointer(&format!("{tpl_ptr}/metadata/labels")).and_then(Value::as_object);
            if let Some(selector) = selector_of(s)
                && !selector.matches(labels)
            {
                let shown = labels.map(|l| Value::Object(l.clone())).unwrap_or(Value::Null);
                out.push(FieldError::invalid(
                    format!("{template_path}.metadata.labels"),
                    &shown,
                    "`selector` does not match template `labels`",
                ));
            }
        }
    }
    match obj.pointer(&format!("{tpl_ptr}/spec")) {
        Some(spec) => {
            out.extend(validate_pod_spec(spec, &format!("{template_path}.spec"), restart))
        }
        None => out.push(FieldError::required(format!("{template_path}.spec.containers"), "")),
    }
    out
}

fn immutable_selector(new: &Value, old: &Value) -> Vec<FieldError> {
    immutable("spec.selector", new.pointer("/spec/selector"), old.pointer("/spec/selector"))
        .into_iter()
        .collect()
}

#[derive(Debug)]
pub struct Deployments;

impl Strategy for Deployments {
    fn tracks_generation(&self) -> bool {
        true
    }
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj_at(obj, &["spec"]) {
            default(spec, "replicas", json!(1));
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "progressDeadlineSeconds", json!(600));
            default(spec, "strategy", json!({}));
            if let Some(st) = spec.get_mut("strategy").and_then(Value::as_object_mut) {
                default(st, "type", json!("RollingUpdate"));
                if st.get("type") == Some(&json!("RollingUpdate")) {
                    default(st, "rollingUpdate", json!({}));
                    if let Some(ru) = st.get_mut("rollingUpdate").and_then(Value::as_object_mut) {
                        default(ru, "maxUnavailable", json!("25%"));
                        default(ru, "maxSurge", json!("25%"));
                    }
                }
            }
        }
        default_template(obj, &["spec", "template"]);
    }
    fn prepare_create(&self, obj: &mut Value) {
        reset_status(obj);
    }
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        validate_selector_template(obj, &["Always"], "spec.template")
    }
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        immutable_selector(new, old)
    }
}

#[derive(Debug)]
pub struct ReplicaSets;

impl Strategy for ReplicaSets {
    fn tracks_generation(&self) -> bool {
        true
    }
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj_at(obj, &["spec"]) {
            default(spec, "replicas", json!(1));
        }
        default_template(obj, &["spec", "template"]);
    }
    fn prepare_create(&self, obj: &mut Value) {
        reset_status(obj);
        if let Some(s) = obj_at(obj, &["status"]) {
            s.insert("replicas".into(), json!(0));
        }
    }
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        validate_selector_template(obj, &["Always"], "spec.template")
    }
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        immutable_selector(new, old)
    }
    fn selectable_fields(&self) -> &'static [&'static str] {
        &["status.replicas"]
    }
    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        (field == "status.replicas")
            .then(|| field_string(obj.pointer("/status/replicas").or(Some(&json!(0)))))
    }
}

#[derive(Debug)]
pub struct ReplicationControllers;

impl Strategy for ReplicationControllers {
    fn tracks_generation(&self) -> bool {
        true
    }
    fn default(&self, obj: &mut Value) {
        let labels = obj.pointer("/spec/template/metadata/labels").cloned();
        if let Some(spec) = obj_at(obj, &["spec"]) {
            default(spec, "replicas", json!(1));
            if let Some(l) = labels {
                default(spec, "selector", l);
            }
        }
        default_template(obj, &["spec", "template"]);
    }
    fn prepare_create(&self, obj: &mut Value) {
        reset_status(obj);
        if let Some(s) = obj_at(obj, &["status"]) {
            s.insert("replicas".into(), json!(0));
        }
    }
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        match obj.pointer("/spec/template/spec") {
            Some(spec) => validate_pod_spec(spec, "spec.template.spec", &["Always"]),
            None => vec![FieldError::required("spec.template", "")],
        }
    }
    fn selectable_fields(&self) -> &'static [&'static str] {
        &["status.replicas"]
    }
    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        (field == "status.replicas")
            .then(|| field_string(obj.pointer("/status/replicas").or(Some(&json!(0)))))
    }
}

#[derive(Debug)]
pub struct StatefulSets;

impl Strategy for StatefulSets {
    fn tracks_generation(&self) -> bool {
        true
    }
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj_at(obj, &["spec"]) {
            default(spec, "replicas", json!(1));
            default(spec, "podManagementPolicy", json!("OrderedReady"));
            default(spec, "revisionHistoryLimit", json!(10));
            default(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
            default(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
        }
        default_template(obj, &["spec", "template"]);
    }
    fn prepare_create(&self, obj: &mut Value) {
        reset_status(obj);
        if let Some(s) = obj_at(obj, &["status"]) {
            s.insert("replicas".into(), json!(0));
            s.insert("availableReplicas".into(), json!(0));
        }
    }
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        validate_selector_template(obj, &["Always"], "spec.template")
    }
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        immutable_selector(new, old)
    }
}

#[derive(Debug)]
pub struct DaemonSets;

impl Strategy for DaemonSets {
    fn tracks_generation(&self) -> bool {
        true
    }
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj_at(obj, &["spec"]) {
            default(spec, "revisionHistoryLimit", json!(10));
            default(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
            );
        }
        default_template(obj, &["spec", "template"]);
    }
    fn prepare_create(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), json!({"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0}));
        }
    }
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        validate_selector_template(obj, &["Always"], "spec.template")
    }
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        immutable_selector(new, old)
    }
}

#[derive(Debug)]
pub struct Jobs;

/// Job defaults that do not depend on the uid.
fn default_job_spec(spec: &mut Map<String, Value>) {
    let has_completions = spec.get("completions").is_some_and(|v| !v.is_null());
    let has_parallelism = spec.get("parallelism").is_some_and(|v| !v.is_null());
    if !has_completions && !has_parallelism {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    default(spec, "parallelism", json!(1));
    default(spec, "backoffLimit", json!(6));
    default(spec, "completionMode", json!("NonIndexed"));
    default(spec, "suspend", json!(false));
    let replacement = if spec.get("podFailurePolicy").is_some_and(|v| !v.is_null()) {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    default(spec, "podReplacementPolicy", json!(replacement));
}

impl Strategy for Jobs {
    fn tracks_generation(&self) -> bool {
        true
    }
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj_at(obj, &["spec"]) {
            default_job_spec(spec);
        }
        default_template(obj, &["spec", "template"]);
    }
    fn prepare_create(&self, obj: &mut Value) {
        reset_status(obj);
        let manual = obj.pointer("/spec/manualSelector").and_then(Value::as_bool).unwrap_or(false);
        if manual {
            return;
        }
        let uid = meta::meta_str(obj, "uid").unwrap_or("").to_string();
        let name = meta::name(obj).unwrap_or("").to_string();
        if let Some(spec) = obj_at(obj, &["spec"]) {
            spec.insert(
                "selector".into(),
                json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
            );
        }
        if let Some(labels) = obj_at(obj, &["spec", "template", "metadata", "labels"]) {
            for (k, v) in [
                ("batch.kubernetes.io/controller-uid", &uid),
                ("batch.kubernetes.io/job-name", &name),
                ("controller-uid", &uid),
                ("job-name", &name),
            ] {
                labels.insert(k.into(), json!(v));
            }
        }
    }
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        validate_selector_template(obj, &["OnFailure", "Never"], "spec.template")
    }
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut out = immutable_selector(new, old);
        out.extend(immutable(
            "spec.template",
            new.pointer("/spec/template"),
            old.pointer("/spec/template"),
        ));
        out.extend(immutable(
            "spec.completions",
            new.pointer("/spec/completions"),
            old.pointer("/spec/completions"),
        ));
        out
    }
    fn selectable_fields(&self) -> &'static [&'static str] {
        &["status.successful"]
    }
    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        (field == "status.successful")
            .then(|| field_string(obj.pointer("/status/succeeded").or(Some(&json!(0)))))
    }
}

#[derive(Debug)]
pub struct CronJobs;

impl Strategy for CronJobs {
    fn tracks_generation(&self) -> bool {
        true
    }
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj_at(obj, &["spec"]) {
            default(spec, "concurrencyPolicy", json!("Allow"));
            default(spec, "suspend", json!(false));
            default(spec, "successfulJobsHistoryLimit", json!(3));
            default(spec, "failedJobsHistoryLimit", json!(1));
        }
        if let Some(js) = obj_at(obj, &["spec", "jobTemplate", "spec"]) {
            default(js, "backoffLimit", json!(6));
            default(js, "completionMode", json!("NonIndexed"));
            default(js, "suspend", json!(false));
            default(js, "podReplacementPolicy", json!("TerminatingOrFailed"));
        }
        default_template(obj, &["spec", "jobTemplate", "spec", "template"]);
    }
    fn prepare_create(&self, obj: &mut Value) {
        reset_status(obj);
    }
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut out = Vec::new();
        if obj.pointer("/spec/schedule").and_then(Value::as_str).is_none_or(str::is_empty) {
            out.push(FieldError::required("spec.schedule", ""));
        }
        match obj.pointer("/spec/jobTemplate/spec/template/spec") {
            Some(spec) => out.extend(validate_pod_spec(
                spec,
                "spec.jobTemplate.spec.template.spec",
                &["OnFailure", "Never"],
            )),
            None => {
                out.push(FieldError::required("spec.jobTemplate.spec.template.spec.containers", ""))
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(labels: Value) -> Value {
        json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    }

    #[test]
    fn deployment_defaults_and_selector_match() {
        let mut d = deployment(json!({"app": "a"}));
        Deployments.default(&mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert!(Deployments.validate(&d).is_empty());
        let bad = deployment(json!({"app": "b"}));
        let errs = Deployments.validate(&bad);
        assert_eq!(errs[0].field, "spec.template.metadata.labels");
        let mut moved = d.clone();
        moved["spec"]["selector"] = json!({"matchLabels": {"app": "z"}});
        assert_eq!(Deployments.validate_update(&moved, &d)[0].field, "spec.selector");
    }

    #[test]
    fn job_gets_generated_selector() {
        let mut j = json!({"metadata": {"name": "j", "uid": "u1"}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}});
        Jobs.default(&mut j);
        Jobs.prepare_create(&mut j);
        assert_eq!(j["spec"]["completions"], 1);
        assert_eq!(j["spec"]["backoffLimit"], 6);
        assert_eq!(
            j["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
            "u1"
        );
        assert_eq!(j["spec"]["template"]["metadata"]["labels"]["job-name"], "j");
        assert!(Jobs.validate(&j).is_empty(), "{:?}", Jobs.validate(&j));
    }
}
