//! The variables admission expressions (policies' validations, mutations, variables,
//! match conditions and audit annotations) are compiled with, typed as upstream's
//! admission CEL compiler declares them: `request` is a `kubernetes.AdmissionRequest`
//! and `namespaceObject` a `kubernetes.Namespace` (upstream's `BuildRequestType` and
//! `BuildNamespaceType`, here as the OpenAPI schemas kapi's checker types variables
//! by), so that a field neither declares (`request.nmae`) is a compile error, as it is
//! upstream; every other variable is `dyn`.
//!
//! Invariants: the schemas are built once and never change; the fields are upstream's
//! exactly, its quirks included (a namespace's uid is `metadata.UID`; `request.options`
//! is `dyn`; `request` has no `uid`, `object` or `oldObject`).

use std::sync::LazyLock;

use serde_json::{Value, json};

use super::Var;

/// The name of the admission request variable.
pub const REQUEST: &str = "request";
/// The name of the request's namespace variable.
pub const NAMESPACE_OBJECT: &str = "namespaceObject";

fn string() -> Value {
    json!({"type": "string"})
}

fn strings() -> Value {
    json!({"type": "array", "items": string()})
}

fn timestamp() -> Value {
    json!({"type": "string", "format": "date-time"})
}

fn object(fields: &[(&str, Value)]) -> Value {
    let props: serde_json::Map<String, Value> =
        fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    json!({"type": "object", "properties": props})
}

static REQUEST_SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    let gvk = object(&[("group", string()), ("version", string()), ("kind", string())]);
    let gvr = object(&[("group", string()), ("version", string()), ("resource", string())]);
    let user = object(&[
        ("username", string()),
        ("uid", string()),
        ("groups", strings()),
        ("extra", json!({"type": "object", "additionalProperties": strings()})),
    ]);
    object(&[
        ("kind", gvk.clone()),
        ("resource", gvr.clone()),
        ("subResource", string()),
        ("requestKind", gvk),
        ("requestResource", gvr),
        ("requestSubResource", string()),
        ("name", string()),
        ("namespace", string()),
        ("operation", string()),
        ("userInfo", user),
        ("dryRun", json!({"type": "boolean"})),
        ("options", json!({})),
    ])
});

static NAMESPACE_SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    let string_map = json!({"type": "object", "additionalProperties": string()});
    let int = json!({"type": "integer"});
    let metadata = object(&[
        ("name", string()),
        ("generateName", string()),
        ("namespace", string()),
        ("labels", string_map.clone()),
        ("annotations", string_map),
        ("UID", string()),
        ("creationTimestamp", timestamp()),
        ("deletionGracePeriodSeconds", int.clone()),
        ("deletionTimestamp", timestamp()),
        ("generation", int),
        ("resourceVersion", string()),
        ("finalizers", strings()),
    ]);
    let condition = object(&[
        ("status", string()),
        ("type", string()),
        ("lastTransitionTime", timestamp()),
        ("message", string()),
        ("reason", string()),
    ]);
    let status = object(&[
        ("conditions", json!({"type": "array", "items": condition})),
        ("phase", string()),
    ]);
    object(&[
        ("metadata", metadata),
        ("spec", object(&[("finalizers", strings())])),
        ("status", status),
    ])
});

/// `kubernetes.AdmissionRequest` as a schema.
pub fn request_schema() -> &'static Value {
    &REQUEST_SCHEMA
}

/// `kubernetes.Namespace` as a schema.
pub fn namespace_schema() -> &'static Value {
    &NAMESPACE_SCHEMA
}

/// `names` declared for an admission expression: `request` and `namespaceObject` typed
/// as upstream types them, the others `dyn`.
pub fn vars<'s>(names: &[&'s str]) -> Vec<Var<'s>> {
    names.iter().map(|&name| Var { name, schema: typed(name) }).collect()
}

/// The schema upstream types an admission variable `name` by (None: `dyn`).
pub fn typed(name: &str) -> Option<&'static Value> {
    match name {
        REQUEST => Some(request_schema()),
        NAMESPACE_OBJECT => Some(namespace_schema()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cel::Expression;

    fn compile(src: &str) -> Result<Expression, String> {
        Expression::compile_with_authorizer(src, &vars(&["object", REQUEST, NAMESPACE_OBJECT]))
    }

    #[test]
    fn request_fields_are_typed_and_a_typo_is_a_compile_error() {
        let e = compile("request.nmae == 'x'").unwrap_err();
        assert!(e.starts_with("ERROR: <input>:1:8: undefined field 'nmae'"), "{e}");
        let e = compile("request.uid").unwrap_err();
        assert!(e.contains("undefined field 'uid'"), "{e}");
        let ok = compile(
            "request.userInfo.username == 'bob' && request.kind.kind == 'Pod' && !request.dryRun \
             && request.userInfo.extra['k'].exists(v, v == 'x') && request.options.anything",
        )
        .unwrap();
        assert_eq!(ok.output_type(), "bool");
        let e = compile("request.userInfo.groups + 1").unwrap_err();
        assert!(e.contains("found no matching overload for '_+_'"), "{e}");
    }

    #[test]
    fn namespace_fields_are_upstreams_with_uid_spelled_upper_case() {
        assert!(compile("namespaceObject.metadata.labels['team'] == 'a'").is_ok());
        assert!(compile("namespaceObject.status.phase == 'Active'").is_ok());
        assert!(compile("namespaceObject.metadata.UID != ''").is_ok());
        let e = compile("namespaceObject.metadata.uid").unwrap_err();
        assert!(e.contains("undefined field 'uid'"), "{e}");
        let e = compile("namespaceObject.spec.nope").unwrap_err();
        assert!(e.contains("undefined field 'nope'"), "{e}");
    }

    #[test]
    fn typed_variables_evaluate_their_json() {
        let e = compile("namespaceObject.metadata.creationTimestamp < timestamp('2030-01-01T00:00:00Z') && request.name == 'p'")
            .unwrap();
        let ns = json!({"metadata": {"name": "n", "creationTimestamp": "2024-01-01T00:00:00Z"}});
        let req = json!({"name": "p", "operation": "CREATE"});
        let obj = json!({});
        let out = e.eval(&[("object", &obj), (REQUEST, &req), (NAMESPACE_OBJECT, &ns)]);
        assert_eq!(out, Ok(json!(true)));
    }
}
