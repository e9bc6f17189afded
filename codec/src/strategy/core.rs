//! Strategies of core and other built-in types with small, specific behaviour:
//! namespaces, nodes, services, secrets, configmaps, events, PVs, RBAC, CSRs,
//! PriorityClasses, StorageClasses, and types that only track generation.

use super::util::{default, each, field_string, obj_at, str_at};
use super::{NameRule, Strategy};
use crate::error::FieldError;
use crate::meta;
use crate::validation::immutable;
use serde_json::{Value, json};

fn pointer_field(obj: &Value, field: &str) -> String {
    field_string(obj.pointer(&format!("/{}", field.replace('.', "/"))))
}

#[derive(Debug)]
pub struct Namespaces;

impl Strategy for Namespaces {
    fn name_rule(&self) -> NameRule {
        NameRule::Label
    }
    fn default(&self, obj: &mut Value) {
        let name = meta::name(obj).unwrap_or("").to_string();
        if !name.is_empty()
            && let Some(labels) = obj_at(obj, &["metadata", "labels"])
        {
            labels.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }
    fn prepare_create(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), json!({"phase": "Active"}));
            m.insert("spec".into(), json!({"finalizers": ["kubernetes"]}));
        }
    }
    fn prepare_update(&self, new: &mut Value, old: &Value) {
        if let Some(m) = new.as_object_mut() {
            match old.get("spec") {
                Some(s) => m.insert("spec".into(), s.clone()),
                None => m.remove("spec"),
            };
        }
    }
    fn selectable_fields(&self) -> &'static [&'static str] {
        &["status.phase"]
    }
    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        (field == "status.phase").then(|| pointer_field(obj, field))
    }
}

#[derive(Debug)]
pub struct Nodes;

impl Strategy for Nodes {
    fn selectable_fields(&self) -> &'static [&'static str] {
        &["spec.unschedulable"]
    }
    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        (field == "spec.unschedulable").then(|| {
            obj.pointer("/spec/unschedulable").and_then(Value::as_bool).unwrap_or(false).to_string()
        })
    }
}

#[derive(Debug)]
pub struct Services;

impl Strategy for Services {
    fn name_rule(&self) -> NameRule {
        NameRule::Label
    }
    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj_at(obj, &["spec"]) else { return };
        default(spec, "type", json!("ClusterIP"));
        default(spec, "sessionAffinity", json!("None"));
        let svc_type = spec.get("type").and_then(Value::as_str).unwrap_or("ClusterIP").to_string();
        if svc_type != "ExternalName" {
            default(spec, "internalTrafficPolicy", json!("Cluster"));
        }
        if matches!(svc_type.as_str(), "NodePort" | "LoadBalancer") {
            default(spec, "externalTrafficPolicy", json!("Cluster"));
        }
        if svc_type == "LoadBalancer" {
            default(spec, "allocateLoadBalancerNodePorts", json!(true));
        }
        for p in each(spec, "ports") {
            default(p, "protocol", json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                default(p, "targetPort", port);
            }
        }
    }
    fn prepare_create(&self, obj: &mut Value) {
        ip_families(obj, None);
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), json!({"loadBalancer": {}}));
        }
    }
    fn prepare_update(&self, new: &mut Value, old: &Value) {
        ip_families(new, Some(old));
    }
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut out = Vec::new();
        let svc_type = str_at(obj, "/spec/type");
        let ok = ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];
        if !ok.contains(&svc_type) {
            out.push(FieldError::not_supported("spec.type", &json!(svc_type), &ok));
        }
        let ports = obj.pointer("/spec/ports").and_then(Value::as_array);
        let headless = str_at(obj, "/spec/clusterIP") == "None";
        if svc_type != "ExternalName" && !headless && ports.is_none_or(Vec::is_empty) {
            out.push(FieldError::required("spec.ports", ""));
        }
        if svc_type == "ExternalName" && str_at(obj, "/spec/externalName").is_empty() {
            out.push(FieldError::required("spec.externalName", ""));
        }
        let many = ports.is_some_and(|p| p.len() > 1);
        let mut names = std::collections::HashSet::new();
        for (i, p) in ports.into_iter().flatten().enumerate() {
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            if !(1..=65535).contains(&port) {
                out.push(FieldError::invalid(
                    format!("spec.ports[{i}].port"),
                    &json!(port),
                    "must be between 1 and 65535, inclusive",
                ));
            }
            let name = p.get("name").and_then(Value::as_str).unwrap_or("");
            if many && name.is_empty() {
                out.push(FieldError::required(format!("spec.ports[{i}].name"), ""));
            } else if !name.is_empty() && !names.insert(name.to_string()) {
                out.push(FieldError::duplicate(format!("spec.ports[{i}].name"), &json!(name)));
            }
        }
        out
    }
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let old_ip = old.pointer("/spec/clusterIP");
        let changing_type = str_at(new, "/spec/type") == "ExternalName"
            || str_at(old, "/spec/type") == "ExternalName";
        if changing_type || old_ip.is_none_or(|v| v == "") {
            return Vec::new();
        }
        immutable("spec.clusterIPs[0]", new.pointer("/spec/clusterIP"), old_ip)
            .into_iter()
            .collect()
    }
    fn selectable_fields(&self) -> &'static [&'static str] {
        &["spec.clusterIP", "spec.type"]
    }
    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        self.selectable_fields().contains(&field).then(|| pointer_field(obj, field))
    }
}

/// A service's IP families, as upstream's service storage sets them when it allocates
/// (after defaulting, so not the creator's managedFields): the old object's on update,
/// else IPv4 single-stack.
fn ip_families(obj: &mut Value, old: Option<&Value>) {
    let Some(spec) = obj_at(obj, &["spec"]) else { return };
    if spec.get("type").and_then(Value::as_str) == Some("ExternalName") {
        return;
    }
    for (field, zero) in [("ipFamilies", json!(["IPv4"])), ("ipFamilyPolicy", json!("SingleStack"))]
    {
        let was = old.and_then(|o| o.get("spec")).and_then(|s| s.get(field)).cloned();
        default(spec, field, was.unwrap_or(zero));
    }
}

/// `immutable: true` freezes `data` (and `binaryData`, `stringData`).
fn immutable_data(new: &Value, old: &Value) -> Vec<FieldError> {
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for f in ["data", "binaryData"] {
        if new.get(f) != old.get(f) {
            out.push(FieldError::forbidden(f, "field is immutable when `immutable` is set"));
        }
    }
    if new.get("immutable") != old.get("immutable") {
        out.push(FieldError::forbidden("immutable", "field is immutable when `immutable` is set"));
    }
    out
}

#[derive(Debug)]
pub struct Secrets;

impl Strategy for Secrets {
    fn default(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            default(m, "type", json!("Opaque"));
            if let Some(Value::Object(sd)) = m.remove("stringData") {
                let data = m.entry("data").or_insert_with(|| json!({}));
                if let Some(d) = data.as_object_mut() {
                    for (k, v) in sd {
                        let s = v.as_str().unwrap_or("").as_bytes().to_vec();
                        d.insert(k, json!(base64_encode(&s)));
                    }
                }
            }
        }
    }
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        data_keys(obj, "data", None)
    }
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut out = immutable_data(new, old);
        out.extend(immutable("type", new.get("type"), old.get("type")));
        out
    }
    fn selectable_fields(&self) -> &'static [&'static str] {
        &["type"]
    }
    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        (field == "type").then(|| pointer_field(obj, field))
    }
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The keys of the map at `field` (`data`, `binaryData`) as upstream validates them:
/// each a valid config key, and none also in `other` (ConfigMap data vs binaryData).
fn data_keys(obj: &Value, field: &str, other: Option<&Value>) -> Vec<FieldError> {
    let Some(map) = obj.get(field).and_then(Value::as_object) else { return Vec::new() };
    let mut out = Vec::new();
    for key in map.keys() {
        let path = format!("{field}[{key}]");
        for msg in crate::validation::config_map_key_errors(key) {
            out.push(FieldError::invalid(path.as_str(), &json!(key), &msg));
        }
        if other.and_then(|o| o.get(key)).is_some() {
            let msg = "duplicate of key present in binaryData";
            out.push(FieldError::invalid(path.as_str(), &json!(key), msg));
        }
    }
    out
}

#[derive(Debug)]
pub struct ConfigMaps;

impl Strategy for ConfigMaps {
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut out = data_keys(obj, "data", obj.get("binaryData"));
        out.extend(data_keys(obj, "binaryData", None));
        out
    }
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        immutable_data(new, old)
    }
}

#[derive(Debug)]
pub struct Events;

const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

impl Strategy for Events {
    fn selectable_fields(&self) -> &'static [&'static str] {
        EVENT_FIELDS
    }
    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        match field {
            "source" => Some(str_at(obj, "/source/component").to_string()),
            f if EVENT_FIELDS.contains(&f) => Some(pointer_field(obj, f)),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub struct PersistentVolumes;

impl Strategy for PersistentVolumes {
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj_at(obj, &["spec"]) {
            default(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
            default(spec, "volumeMode", json!("Filesystem"));
        }
    }
    fn prepare_create(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), json!({"phase": "Pending"}));
        }
    }
}

#[derive(Debug)]
pub struct Rbac;

impl Strategy for Rbac {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }
}

#[derive(Debug)]
pub struct Csrs;

impl Strategy for Csrs {
    fn selectable_fields(&self) -> &'static [&'static str] {
        &["spec.signerName"]
    }
    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        (field == "spec.signerName").then(|| pointer_field(obj, field))
    }
}

#[derive(Debug)]
pub struct PriorityClasses;

impl Strategy for PriorityClasses {
    fn default(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            default(m, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
    }
}

#[derive(Debug)]
pub struct StorageClasses;

impl Strategy for StorageClasses {
    fn default(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            default(m, "reclaimPolicy", json!("Delete"));
            default(m, "volumeBindingMode", json!("Immediate"));
        }
    }
}

/// Types whose only special behaviour is tracking `metadata.generation`.
#[derive(Debug)]
pub struct Generational;

impl Strategy for Generational {
    fn tracks_generation(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_become_active_with_their_name_label() {
        let mut ns = json!({"metadata": {"name": "team"}});
        Namespaces.default(&mut ns);
        Namespaces.prepare_create(&mut ns);
        assert_eq!(ns["status"]["phase"], "Active");
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(ns["metadata"]["labels"]["kubernetes.io/metadata.name"], "team");
    }

    #[test]
    fn service_defaults_and_checks() {
        let mut svc = json!({"spec": {"ports": [{"port": 80}]}});
        Services.default(&mut svc);
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert_eq!(
            svc["spec"]["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert!(Services.validate(&svc).is_empty());
        let none = json!({"spec": {"type": "ClusterIP"}});
        assert_eq!(Services.validate(&none)[0].field, "spec.ports");
        let old = json!({"spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10"}});
        let new = json!({"spec": {"type": "ClusterIP", "clusterIP": "10.96.0.11"}});
        assert_eq!(Services.validate_update(&new, &old).len(), 1);
    }

    /// Regression (issue #14): keys such as `a b/c` were stored, which clients cannot
    /// turn into files or env vars; upstream refuses them with IsConfigMapKey's message.
    #[test]
    fn config_map_and_secret_keys_are_validated() {
        let cm = json!({"data": {"a b/c": "x", "ok": "y"},
            "binaryData": {"ok": "eA==", "..": "eA=="}});
        let fields: Vec<(String, String)> =
            ConfigMaps.validate(&cm).into_iter().map(|e| (e.field, e.message)).collect();
        let config_key = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
        assert_eq!(
            fields,
            [
                (
                    "data[a b/c]".into(),
                    format!("data[a b/c]: Invalid value: \"a b/c\": {config_key}")
                ),
                (
                    "data[ok]".into(),
                    "data[ok]: Invalid value: \"ok\": duplicate of key present in binaryData"
                        .into()
                ),
                (
                    "binaryData[..]".into(),
                    "binaryData[..]: Invalid value: \"..\": must not be '..'".into()
                ),
            ]
        );
        let mut secret = json!({"stringData": {"x y": "z"}, "data": {"..a": "eA=="}});
        Secrets.default(&mut secret);
        let errs = Secrets.validate(&secret);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].message.ends_with("must not start with '..'"));
        assert_eq!(errs[1].field, "data[x y]");
    }

    #[test]
    fn secrets_default_type_and_string_data() {
        let mut s = json!({"stringData": {"a": "hello"}});
        Secrets.default(&mut s);
        assert_eq!(s["type"], "Opaque");
        assert_eq!(s["data"]["a"], "aGVsbG8=");
        let old = json!({"immutable": true, "data": {"a": "x"}});
        let new = json!({"immutable": true, "data": {"a": "y"}});
        assert_eq!(Secrets.validate_update(&new, &old).len(), 1);
    }
}
