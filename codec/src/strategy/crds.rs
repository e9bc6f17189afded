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
        crate::crd::validate_crd(obj, None)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        crate::crd::validate_crd(new, Some(old))
    }
}
