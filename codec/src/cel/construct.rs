//! Object construction for mutating admission policies (upstream's `Object{...}`
//! apply configurations and `JSONPatch{...}` operations) and the `jsonpatch.escapeKey`
//! function of their JSON patches.
//!
//! Upstream declares a type for each object path (`Object`, `Object.spec`,
//! `Object.spec.template`, ...) and `JSONPatch`; kapi treats the type name as
//! informational: a literal of a declared name builds a map of its fields (a JSON
//! object once converted), which the policy then merges or reads as patch operations.
//!
//! Invariants: only expressions compiled with construction ([`super::Expression::
//! compile_mutation`]) accept these literals; every other compile refuses them as
//! before (`undeclared reference to 'Object'`); construction is metered like a map.

use cel::common::ast::{CallExpr, Expr};

/// Whether `type_name` names a type a mutation may construct.
pub fn declared(type_name: &str) -> bool {
    let name = type_name.strip_prefix('.').unwrap_or(type_name);
    name == "Object" || name.starts_with("Object.") || name == "JSONPatch"
}

/// Whether `call` is `jsonpatch.escapeKey(arg)`.
pub fn is_escape_key(call: &CallExpr) -> bool {
    if call.args.len() != 1 {
        return false;
    }
    match (&call.target, call.func_name.as_str()) {
        (None, "jsonpatch.escapeKey") => true,
        (Some(t), "escapeKey") => matches!(&t.expr, Expr::Ident(n) if n == "jsonpatch"),
        _ => false,
    }
}

/// A map key as one JSON pointer segment (RFC 6901: `~` as `~0`, `/` as `~1`).
pub fn escape_key(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::super::{Expression, Var};
    use serde_json::json;

    fn vars() -> Vec<Var<'static>> {
        vec![Var { name: "object", schema: None }, Var { name: "params", schema: None }]
    }

    fn eval(src: &str) -> Result<serde_json::Value, String> {
        let obj = json!({"metadata": {"name": "d"}, "spec": {"replicas": 2}});
        let e = Expression::compile_mutation(src, &vars())?;
        e.eval(&[("object", &obj), ("params", &json!({"env": "prod"}))])
    }

    #[test]
    fn object_literals_build_nested_json_objects() {
        let got = eval(
            "Object{metadata: Object.metadata{labels: {'env': params.env}}, \
             spec: Object.spec{replicas: object.spec.replicas + 1}}",
        );
        assert_eq!(
            got,
            Ok(json!({"metadata": {"labels": {"env": "prod"}}, "spec": {"replicas": 3}}))
        );
        assert_eq!(eval("Object{}"), Ok(json!({})));
    }

    #[test]
    fn json_patch_literals_and_escaped_keys() {
        let got = eval(
            "[JSONPatch{op: 'add', path: '/metadata/annotations/' + \
             jsonpatch.escapeKey('example.com/a~b'), value: 'x'}]",
        );
        assert_eq!(
            got,
            Ok(
                json!([{"op": "add", "path": "/metadata/annotations/example.com~1a~0b", "value": "x"}])
            )
        );
    }

    #[test]
    fn construction_is_refused_outside_mutations() {
        let e = Expression::compile("Object{spec: 1}", &vars()).unwrap_err();
        assert!(e.contains("undeclared reference to 'Object'"), "{e}");
        let e = Expression::compile("jsonpatch.escapeKey('a')", &vars()).unwrap_err();
        assert!(e.contains("undeclared reference to 'jsonpatch'"), "{e}");
        let e = Expression::compile_mutation("Other{a: 1}", &vars()).unwrap_err();
        assert!(e.contains("undeclared reference to 'Other'"), "{e}");
        let e = Expression::compile_mutation("jsonpatch.escapeKey(1)", &vars()).unwrap_err();
        assert!(e.contains("found no matching overload for 'jsonpatch.escapeKey'"), "{e}");
    }

    #[test]
    fn constructed_objects_are_typed_by_their_names_as_upstream_declares_them() {
        let ty = |src: &str| {
            Expression::compile_mutation(src, &vars()).map(|e| e.output_type().to_string())
        };
        assert_eq!(ty("Object{spec: Object.spec{replicas: 1}}").as_deref(), Ok("Object"));
        assert_eq!(ty("Object.spec{replicas: 1}").as_deref(), Ok("Object.spec"));
        assert_eq!(ty("[JSONPatch{op: 'remove', path: '/a'}]").as_deref(), Ok("list(JSONPatch)"));
        let either = "object.x == 1 ? [] : [JSONPatch{op: 'remove', path: '/a'}]";
        assert_eq!(ty(either).as_deref(), Ok("list(JSONPatch)"));
        assert_eq!(ty("{'spec': 1}").as_deref(), Ok("map(string, int)"));
        assert_eq!(ty("Object{spec: 1}.spec").as_deref(), Ok("dyn"));
    }

    #[test]
    fn repeated_fields_are_an_error_and_construction_is_metered() {
        assert!(eval("Object{spec: 1, spec: 2}").is_err());
        let e = Expression::compile_mutation("[1, 2, 3].map(i, Object{n: i})", &vars())
            .unwrap()
            .with_limit(20);
        let got = e.eval(&[("object", &json!({})), ("params", &json!(null))]);
        assert_eq!(got, Err("operation cancelled: actual cost limit exceeded".into()));
    }
}
