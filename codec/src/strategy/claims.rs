//! PersistentVolumeClaims: upstream's default (`volumeMode: Filesystem`), a new claim's
//! `Pending` status, and upstream's update rules: the spec is immutable after creation
//! except `volumeName` (settable once, by the binder), `resources.requests` of a bound
//! claim (expansion), `volumeAttributesClassName`, and the move of the beta storage-class
//! annotation into `storageClassName`; a request may shrink back no lower than
//! `status.capacity` (recovery from a failed expansion, GA in v1.34).
//!
//! Invariants: pure functions of the objects; quantities compare by value (`1Gi` equals
//! `1024Mi`), as upstream's semantic equality does.

use super::Strategy;
use super::util::{default, obj_at, str_at};
use crate::error::FieldError;
use crate::quantity::Quantity;
use serde_json::{Map, Value, json};

const BETA_CLASS: &str = "volume.beta.kubernetes.io/storage-class";
const IMMUTABLE: &str = "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims";

#[derive(Debug)]
pub struct PersistentVolumeClaims;

impl Strategy for PersistentVolumeClaims {
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj_at(obj, &["spec"]) {
            default(spec, "volumeMode", json!("Filesystem"));
        }
    }

    fn prepare_create(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), json!({"phase": "Pending"}));
        }
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let (new_spec, old_spec) = comparable_specs(new, old, &mut errs);
        if !same(&new_spec, &old_spec) {
            let detail = format!("{IMMUTABLE}\n{}", diff(&old_spec, &new_spec));
            errs.push(FieldError::forbidden("spec", &detail));
        }
        shrink(new, old, &mut errs);
        if new.pointer("/spec/volumeMode") != old.pointer("/spec/volumeMode") {
            let value = new.pointer("/spec/volumeMode").unwrap_or(&Value::Null);
            // Upstream names this field `volumeMode`, without `spec.`.
            errs.push(FieldError::invalid("volumeMode", value, "field is immutable"));
        }
        attributes_class(new, old, &mut errs);
        errs
    }
}

fn spec_of(obj: &Value) -> Map<String, Value> {
    obj.get("spec").and_then(Value::as_object).cloned().unwrap_or_default()
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations").and_then(|a| a.get(key)).and_then(Value::as_str)
}

/// The two specs with what an update may change made equal (upstream's clones).
fn comparable_specs(
    new: &Value,
    old: &Value,
    errs: &mut Vec<FieldError>,
) -> (Map<String, Value>, Map<String, Value>) {
    let (mut n, mut o) = (spec_of(new), spec_of(old));
    if str_at(old, "/spec/volumeName").is_empty() {
        copy(&mut o, &n, "volumeName");
    }
    let old_beta = annotation(old, BETA_CLASS);
    let new_beta = annotation(new, BETA_CLASS);
    let new_class = n.get("storageClassName").and_then(Value::as_str);
    let old_class_unset = o.get("storageClassName").is_none_or(Value::is_null);
    match old_beta {
        Some(beta)
            if old_class_unset && new_class == Some(beta) && new_beta.is_none_or(|b| b == beta) =>
        {
            n.remove("storageClassName");
        }
        _ => {
            if new_beta != old_beta {
                let field = format!("metadata.annotations.{BETA_CLASS}");
                let value = json!(new_beta.unwrap_or(""));
                errs.push(FieldError::invalid(field, &value, "field is immutable"));
            }
            if new_class.is_some()
                && old_class_unset
                && old_beta.is_none_or(|b| Some(b) == new_class)
            {
                n.remove("storageClassName");
            }
        }
    }
    if str_at(new, "/status/phase") == "Bound" && new.pointer("/spec/resources/requests").is_some()
    {
        let old_storage = old.pointer("/spec/resources/requests/storage").cloned();
        if let Some(Value::Object(req)) = n.get_mut("resources").and_then(|r| r.get_mut("requests"))
        {
            match old_storage {
                Some(v) => req.insert("storage".into(), v),
                None => req.remove("storage"),
            };
        }
    }
    copy(&mut n, &o, "volumeAttributesClassName");
    (n, o)
}

fn copy(to: &mut Map<String, Value>, from: &Map<String, Value>, key: &str) {
    match from.get(key) {
        Some(v) => to.insert(key.into(), v.clone()),
        None => to.remove(key),
    };
}

/// Semantic equality: quantities by value, a null as an absent field.
fn same(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    let keys = a.keys().chain(b.keys());
    keys.into_iter().all(|k| same_value(a.get(k), b.get(k)))
}

fn same_value(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None | Some(Value::Null), None | Some(Value::Null)) => true,
        (Some(Value::Object(x)), Some(Value::Object(y))) => same(x, y),
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(Some(p), Some(q)))
        }
        (Some(x), Some(y)) if x == y => true,
        (Some(x @ Value::String(_)), Some(y @ Value::String(_))) => {
            match (Quantity::from_json(x), Quantity::from_json(y)) {
                (Some(p), Some(q)) => p == q,
                _ => false,
            }
        }
        _ => false,
    }
}

/// The spec fields that differ, old then new (upstream prints a Go structural diff here;
/// this is kapi's shorter rendering of the same facts).
fn diff(old: &Map<String, Value>, new: &Map<String, Value>) -> String {
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = String::new();
    for k in keys {
        if !same_value(old.get(k), new.get(k)) {
            let show = |v: Option<&Value>| v.map_or("nil".to_string(), Value::to_string);
            out.push_str(&format!("- {k}: {}\n+ {k}: {}\n", show(old.get(k)), show(new.get(k))));
        }
    }
    out
}

fn storage(obj: &Value, pointer: &str) -> Quantity {
    obj.pointer(pointer).and_then(Quantity::from_json).unwrap_or_else(Quantity::zero)
}

/// A request may go down only to above what the volume already has.
fn shrink(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let new_size = storage(new, "/spec/resources/requests/storage");
    let old_size = storage(old, "/spec/resources/requests/storage");
    let capacity = storage(old, "/status/capacity/storage");
    if new_size < old_size && new_size <= capacity {
        errs.push(FieldError::forbidden(
            "spec.resources.requests.storage",
            "field can not be less than status.capacity",
        ));
    }
}

fn attributes_class(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let field = "spec.volumeAttributesClassName";
    let old_class = old.pointer("/spec/volumeAttributesClassName").filter(|v| !v.is_null());
    let new_class = new.pointer("/spec/volumeAttributesClassName").filter(|v| !v.is_null());
    if old_class.is_none() || old_class == new_class {
        return;
    }
    match new_class.and_then(Value::as_str) {
        None => {
            errs.push(FieldError::forbidden(field, "update from non-nil value to nil is forbidden"))
        }
        Some("") => errs.push(FieldError::forbidden(
            field,
            "update from non-nil value to an empty string is forbidden",
        )),
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(size: &str, phase: &str) -> Value {
        json!({
            "metadata": {"name": "c", "namespace": "d"},
            "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                     "resources": {"requests": {"storage": size}}},
            "status": {"phase": phase},
        })
    }

    fn fields(errs: &[FieldError]) -> Vec<&str> {
        errs.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn the_spec_of_a_claim_is_immutable() {
        let old = claim("1Gi", "Bound");
        let mut new = old.clone();
        new["spec"]["accessModes"] = json!(["ReadOnlyMany"]);
        let errs = PersistentVolumeClaims.validate_update(&new, &old);
        assert_eq!(fields(&errs), ["spec"]);
        assert!(errs[0].message.starts_with(&format!("spec: Forbidden: {IMMUTABLE}\n")));
        assert!(errs[0].message.contains("accessModes"), "{}", errs[0].message);
    }

    #[test]
    fn a_bound_claim_may_grow_an_unbound_one_may_not() {
        let ok =
            PersistentVolumeClaims.validate_update(&claim("2Gi", "Bound"), &claim("1Gi", "Bound"));
        assert!(ok.is_empty(), "{ok:?}");
        let errs = PersistentVolumeClaims
            .validate_update(&claim("2Gi", "Pending"), &claim("1Gi", "Pending"));
        assert_eq!(fields(&errs), ["spec"]);
    }

    #[test]
    fn equal_quantities_in_other_units_are_no_change() {
        let errs = PersistentVolumeClaims
            .validate_update(&claim("1024Mi", "Pending"), &claim("1Gi", "Pending"));
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn the_binder_sets_the_volume_name_once() {
        let old = claim("1Gi", "Pending");
        let mut bound = old.clone();
        bound["spec"]["volumeName"] = json!("pv-1");
        assert!(PersistentVolumeClaims.validate_update(&bound, &old).is_empty());
        let mut moved = bound.clone();
        moved["spec"]["volumeName"] = json!("pv-2");
        assert_eq!(fields(&PersistentVolumeClaims.validate_update(&moved, &bound)), ["spec"]);
    }

    #[test]
    fn a_request_shrinks_back_only_above_the_capacity() {
        let mut old = claim("3Gi", "Bound");
        old["status"]["capacity"] = json!({"storage": "2Gi"});
        let mut to_capacity = claim("2Gi", "Bound");
        to_capacity["status"] = old["status"].clone();
        let errs = PersistentVolumeClaims.validate_update(&to_capacity, &old);
        assert_eq!(fields(&errs), ["spec.resources.requests.storage"]);
        assert!(errs[0].message.ends_with("field can not be less than status.capacity"));
        let mut above = claim("2500Mi", "Bound");
        above["status"] = old["status"].clone();
        assert!(PersistentVolumeClaims.validate_update(&above, &old).is_empty());
    }

    #[test]
    fn the_beta_annotation_moves_into_the_class_name() {
        let mut old = claim("1Gi", "Pending");
        old["metadata"]["annotations"] = json!({BETA_CLASS: "fast"});
        let mut new = old.clone();
        new["spec"]["storageClassName"] = json!("fast");
        assert!(PersistentVolumeClaims.validate_update(&new, &old).is_empty());
        new["spec"]["storageClassName"] = json!("slow");
        assert_eq!(fields(&PersistentVolumeClaims.validate_update(&new, &old)), ["spec"]);
    }

    #[test]
    fn a_set_attributes_class_cannot_be_cleared() {
        let mut old = claim("1Gi", "Bound");
        old["spec"]["volumeAttributesClassName"] = json!("gold");
        let mut new = old.clone();
        new["spec"]["volumeAttributesClassName"] = json!("silver");
        assert!(PersistentVolumeClaims.validate_update(&new, &old).is_empty());
        new["spec"]["volumeAttributesClassName"] = json!("");
        let errs = PersistentVolumeClaims.validate_update(&new, &old);
        assert_eq!(fields(&errs), ["spec.volumeAttributesClassName"]);
    }
}
