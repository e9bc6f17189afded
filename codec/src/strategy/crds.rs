//! The strategy of CustomResourceDefinitions: generation tracking, status reset on
//! create (with the storage version recorded in `storedVersions`, as upstream), and
//! validation of the CRD itself (`crate::crd::validate_crd`, upstream's messages).

use super::Strategy;
use crate::error::FieldError;
use serde_json::{Value, json};

#[derive(Debug)]
pub struct CustomResourceDefinitions;

impl Strategy for CustomResourceDefinitions {
    fn tracks_generation(&self) -> bool {
        true
    }

    /// Upstream's v1 defaults: singular and listKind from the kind, conversion `None`,
    /// webhook service port 443.
    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else { return };
        if let Some(names) = spec.get_mut("names").and_then(Value::as_object_mut) {
            let kind = names.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
            if !kind.is_empty() {
                names.entry("singular").or_insert_with(|| json!(kind.to_lowercase()));
                names.entry("listKind").or_insert_with(|| json!(format!("{kind}List")));
            }
        }
        let conversion = spec.entry("conversion").or_insert_with(|| json!({"strategy": "None"}));
        if let Some(svc) = conversion.pointer_mut("/webhook/clientConfig/service")
            && let Some(svc) = svc.as_object_mut()
        {
            svc.entry("port").or_insert(json!(443));
        }
    }

    fn prepare_create(&self, obj: &mut Value) {
        let storage = obj
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|v| v["storage"] == true)
            .map(|v| v["name"].clone());
        if let Some(o) = obj.as_object_mut() {
            let stored: Vec<Value> = storage.into_iter().collect();
            o.insert("status".into(), json!({"storedVersions": stored}));
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        with_rules(obj, crate::crd::validate_crd(obj, None))
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        with_rules(new, crate::crd::validate_crd(new, Some(old)))
    }
}

/// The CRD's structural errors, else its CEL rules' compile and cost errors, under the
/// paths upstream reports them at: `spec.validation.openAPIV3Schema` when every version
/// has the same schema (upstream validates the internal form, where a shared schema
/// moves up to the spec), else each version's own.
fn with_rules(crd: &Value, mut errs: Vec<FieldError>) -> Vec<FieldError> {
    if !errs.is_empty() {
        return errs;
    }
    let versions = crd.pointer("/spec/versions").and_then(Value::as_array);
    let versions: Vec<&Value> = versions.into_iter().flatten().collect();
    let schema_of = |v: &Value| v.pointer("/schema/openAPIV3Schema").cloned();
    let shared = versions.windows(2).all(|w| schema_of(w[0]) == schema_of(w[1]));
    for (i, v) in versions.iter().enumerate() {
        let Some(schema) = schema_of(v) else { continue };
        let prefix = if shared {
            "spec.validation.openAPIV3Schema".to_string()
        } else {
            format!("spec.versions[{i}].schema.openAPIV3Schema")
        };
        if let Err(e) = crate::cel::compile(&schema, &prefix) {
            errs.extend(e);
        }
        if shared {
            break;
        }
    }
    errs
}
