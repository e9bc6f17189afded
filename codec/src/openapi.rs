//! OpenAPI v2 and v3 documents generated from the registry and the types' schemas.

use crate::registry::Registry;
use serde_json::{Value, json};

/// The whole OpenAPI v2 document (`/openapi/v2`).
pub fn v2(_registry: &Registry) -> Value {
    json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.35.0"}, "paths": {}, "definitions": {}})
}

/// The `/openapi/v3` index: `{"paths": {"api/v1": {"serverRelativeURL": ...}, ...}}`.
pub fn v3_index(_registry: &Registry) -> Value {
    json!({"paths": {}})
}

/// The OpenAPI v3 document of one group/version (`/openapi/v3/apis/apps/v1`).
pub fn v3_group_version(_registry: &Registry, _group: &str, _version: &str) -> Option<Value> {
    None
}
