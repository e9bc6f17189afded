//! Type checking of a ValidatingAdmissionPolicy (upstream's `TypeChecker`, run by its
//! status controller; upstream v1.35 has none for MutatingAdmissionPolicy, whose
//! v1beta1 API has no `status`): each validation's `expression` and `messageExpression` is
//! compiled once per kind the policy's `matchConstraints` name, with `object` and
//! `oldObject` typed by that kind's schema, `params` by the `paramKind`'s (declared
//! only when the policy has one), `variables` by the variables' result types, `request`
//! and `namespaceObject` as upstream's compiler types them (`kubernetes.AdmissionRequest`,
//! `kubernetes.Namespace`: `kapi_codec::cel::admission_vars`) and the `authorizer`
//! library declared. A compile error is an expression warning:
//! `fieldRef` `spec.validations[i].expression` (or `.messageExpression`), the warning
//! one `<group>/<version>, Kind=<kind>: <cel-go error>` line block per kind that failed.
//!
//! Upstream's rules for the kinds: resource rules whose groups or versions contain `*`
//! are skipped, as are resources with `*` or `/` (subresources); kinds come from the
//! served registry, at most [`MAX_TYPES`], sorted by group, version, kind. A kind without
//! a schema is not checked.
//!
//! Approximations: a variable is typed only when its result is a scalar (`bool`, `int`, `double`,
//! `string`), else `dyn`. Type checking never changes what the policy does.

use kapi_codec::ResourceType;
use kapi_codec::cel::{Expression, Var, admission_vars, type_schema};
use kapi_codec::registry::Registry;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Upstream's `maxTypesToCheck`.
pub const MAX_TYPES: usize = 10;

/// One `status.typeChecking.expressionWarnings[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub field_ref: String,
    pub warning: String,
}

impl Warning {
    pub fn to_json(&self) -> Value {
        json!({"fieldRef": self.field_ref, "warning": self.warning})
    }
}

/// A kind to check against, with its inlined schema.
struct Target {
    gvk: String,
    schema: Value,
}

/// The warnings of `policy` (a ValidatingAdmissionPolicy's JSON) against the kinds
/// `registry` serves.
pub fn check(registry: &Registry, policy: &Value) -> Vec<Warning> {
    let spec = policy.get("spec").unwrap_or(&Value::Null);
    let targets: Vec<Target> = kinds(registry, spec)
        .into_iter()
        .filter_map(|rt| Some(Target { gvk: gvk(&rt), schema: type_schema::of(&rt)? }))
        .collect();
    if targets.is_empty() {
        return Vec::new();
    }
    let params = params_schema(registry, spec);
    let mut out = Vec::new();
    let validations = spec.get("validations").and_then(Value::as_array);
    for (i, v) in validations.into_iter().flatten().enumerate() {
        for field in ["expression", "messageExpression"] {
            let Some(src) = v.get(field).and_then(Value::as_str) else { continue };
            if field == "messageExpression" && src.is_empty() {
                continue;
            }
            let results: Vec<String> = targets
                .iter()
                .filter_map(|t| {
                    let e = compile(src, &t.schema, params.as_ref(), spec).err()?;
                    Some(format!("{}: {e}\n", t.gvk))
                })
                .collect();
            if !results.is_empty() {
                out.push(Warning {
                    field_ref: format!("spec.validations[{i}].{field}"),
                    warning: results.join("\n"),
                });
            }
        }
    }
    out
}

/// `<group>/<version>, Kind=<kind>` as Go prints a GroupVersionKind.
fn gvk(rt: &ResourceType) -> String {
    format!("{}/{}, Kind={}", rt.group, rt.version, rt.kind)
}

/// `params`: None when the policy has no paramKind (then `params` is not declared);
/// Some(None) when its kind has no schema here (`dyn`).
type Params = Option<Option<Value>>;

fn params_schema(registry: &Registry, spec: &Value) -> Params {
    let pk = spec.get("paramKind").filter(|p| p.is_object())?;
    let api_version = pk.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = pk.get("kind").and_then(Value::as_str).unwrap_or("");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    Some(registry.by_kind(group, version, kind).and_then(|rt| type_schema::of(rt)))
}

/// One expression compiled as the type checker does.
fn compile(
    src: &str,
    object: &Value,
    params: Option<&Option<Value>>,
    spec: &Value,
) -> Result<(), String> {
    let variables = variables_schema(object, params, spec);
    Expression::compile_with_authorizer(src, &vars(object, &variables, params)).map(|_| ())
}

/// The variables an expression is checked with: `object` and `oldObject` of the kind,
/// `variables` as far as known, `request` and `namespaceObject` as upstream types them,
/// `params` when the policy has a paramKind.
fn vars<'s>(
    object: &'s Value,
    variables: &'s Value,
    params: Option<&'s Option<Value>>,
) -> Vec<Var<'s>> {
    let mut vars = vec![
        Var { name: "object", schema: Some(object) },
        Var { name: "oldObject", schema: Some(object) },
        Var { name: "variables", schema: Some(variables) },
    ];
    vars.extend(admission_vars::vars(&[admission_vars::REQUEST, admission_vars::NAMESPACE_OBJECT]));
    if let Some(p) = params {
        vars.push(Var { name: "params", schema: p.as_ref() });
    }
    vars
}

/// `variables` as an object whose fields are the variables, each typed by its result
/// when that is a scalar; each variable sees those before it.
fn variables_schema(object: &Value, params: Option<&Option<Value>>, spec: &Value) -> Value {
    let mut props = serde_json::Map::new();
    let list = spec.get("variables").and_then(Value::as_array);
    for v in list.into_iter().flatten().take(super::compile::MAX_ITEMS) {
        let name = v.get("name").and_then(Value::as_str).unwrap_or("");
        let src = v.get("expression").and_then(Value::as_str).unwrap_or("");
        let so_far = json!({"type": "object", "properties": props.clone()});
        let ty = match Expression::compile_with_authorizer(src, &vars(object, &so_far, params)) {
            Ok(e) => match e.output_type() {
                "bool" => json!({"type": "boolean"}),
                "int" => json!({"type": "integer"}),
                "double" => json!({"type": "number"}),
                "string" => json!({"type": "string"}),
                _ => json!({}),
            },
            Err(_) => json!({}),
        };
        props.insert(name.to_string(), ty);
    }
    json!({"type": "object", "properties": props})
}

/// The kinds the policy's resource rules name, as upstream's `typesToCheck`.
fn kinds(registry: &Registry, spec: &Value) -> Vec<Arc<ResourceType>> {
    let rules = spec.pointer("/matchConstraints/resourceRules").and_then(Value::as_array);
    let mut out = Vec::new();
    let strings = |r: &Value, k: &str| -> Vec<String> {
        let mut v: Vec<String> = r
            .get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from))
            .collect();
        v.sort();
        v
    };
    'rules: for rule in rules.into_iter().flatten() {
        let (groups, versions) = (strings(rule, "apiGroups"), strings(rule, "apiVersions"));
        if groups.iter().chain(&versions).any(|s| s.contains('*')) {
            continue;
        }
        let resources: Vec<String> =
            strings(rule, "resources").into_iter().filter(|r| !r.contains(['*', '/'])).collect();
        for g in &groups {
            for v in &versions {
                for r in &resources {
                    let Some(rt) = registry.get(g, v, r) else { continue };
                    out.push(rt.clone());
                    if out.len() == MAX_TYPES {
                        break 'rules;
                    }
                }
            }
        }
    }
    let mut seen = BTreeSet::new();
    out.retain(|rt| seen.insert((rt.group.clone(), rt.version.clone(), rt.kind.clone())));
    out.sort_by(|a, b| (&a.group, &a.version, &a.kind).cmp(&(&b.group, &b.version, &b.kind)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(validations: Value) -> Value {
        json!({"spec": {
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["apps"], "apiVersions": ["v1"],
                "operations": ["CREATE"], "resources": ["deployments", "replicasets"]}]},
            "validations": validations}})
    }

    fn reg() -> &'static Registry {
        Registry::known()
    }

    #[test]
    fn an_undefined_field_is_reported_per_kind_in_upstreams_format() {
        let w = check(reg(), &policy(json!([{"expression": "object.replicas > 1"}])));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].field_ref, "spec.validations[0].expression");
        let want = "apps/v1, Kind=Deployment: ERROR: <input>:1:7: undefined field 'replicas'\n | object.replicas > 1\n | ......^\n\napps/v1, Kind=ReplicaSet: ERROR: <input>:1:7: undefined field 'replicas'\n | object.replicas > 1\n | ......^\n";
        assert_eq!(w[0].warning, want);
    }

    #[test]
    fn a_well_typed_policy_has_no_warnings() {
        let p = policy(json!([
            {"expression": "object.spec.replicas > 1 && object.metadata.name != ''",
             "messageExpression": "'replicas: ' + string(object.spec.replicas)"},
            {"expression": "object.spec.template.spec.containers.all(c, c.image.startsWith('r/'))"},
            {"expression": "authorizer.requestResource.check('get').allowed()"},
        ]));
        assert_eq!(check(reg(), &p), []);
    }

    #[test]
    fn message_expressions_and_later_validations_have_their_own_field_refs() {
        let p = policy(json!([
            {"expression": "true", "messageExpression": "object.nope"},
            {"expression": "object.spec.replicas == 'three'"},
            {"expression": "authorizer.allowed()"},
        ]));
        let w = check(reg(), &p);
        let refs: Vec<&str> = w.iter().map(|w| w.field_ref.as_str()).collect();
        assert_eq!(
            refs,
            [
                "spec.validations[0].messageExpression",
                "spec.validations[1].expression",
                "spec.validations[2].expression"
            ]
        );
        assert!(
            w[1].warning
                .contains("found no matching overload for '_==_' applied to '(int, string)'"),
            "{}",
            w[1].warning
        );
        assert!(
            w[2].warning.contains(
                "found no matching overload for 'allowed' applied to 'kubernetes.authorization.Authorizer"
            ),
            "{}",
            w[2].warning
        );
    }

    #[test]
    fn variables_are_typed_by_their_results_and_params_need_a_param_kind() {
        let mut p = policy(json!([
            {"expression": "variables.nonExisting"},
            {"expression": "variables.name == object.spec.replicas"},
            {"expression": "params.x == 1"},
        ]));
        p["spec"]["variables"] = json!([{"name": "name", "expression": "'something'"}]);
        let w = check(reg(), &p);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].warning.contains("undefined field 'nonExisting'"));
        assert!(w[1].warning.contains("'_==_' applied to '(string, int)'"), "{}", w[1].warning);
        assert!(w[2].warning.contains("undeclared reference to 'params'"));
        p["spec"]["paramKind"] = json!({"apiVersion": "v1", "kind": "ConfigMap"});
        p["spec"]["validations"] =
            json!([{"expression": "params.data.x == 'y'"}, {"expression": "params.nope"}]);
        let w = check(reg(), &p);
        let refs: Vec<&str> = w.iter().map(|w| w.field_ref.as_str()).collect();
        assert_eq!(refs, ["spec.validations[1].expression"]);
    }

    /// Regression: `request` and `namespaceObject` were `dyn`, so a typo in their
    /// fields was no warning; upstream types them.
    #[test]
    fn request_and_namespace_object_fields_are_checked() {
        let p = policy(json!([
            {"expression": "request.nmae == 'x'"},
            {"expression": "request.userInfo.username == 'bob' && namespaceObject.metadata.labels['a'] == 'b'"},
            {"expression": "namespaceObject.spec.nope", "messageExpression": "request.operation"},
        ]));
        let w = check(reg(), &p);
        let refs: Vec<&str> = w.iter().map(|w| w.field_ref.as_str()).collect();
        assert_eq!(refs, ["spec.validations[0].expression", "spec.validations[2].expression"]);
        assert!(
            w[0].warning.starts_with(
                "apps/v1, Kind=Deployment: ERROR: <input>:1:8: undefined field 'nmae'"
            ),
            "{}",
            w[0].warning
        );
        assert!(w[1].warning.contains("undefined field 'nope'"), "{}", w[1].warning);
    }

    #[test]
    fn wildcards_subresources_and_unknown_resources_are_not_checked() {
        let mut p = policy(json!([{"expression": "object.nope"}]));
        p["spec"]["matchConstraints"]["resourceRules"] = json!([
            {"apiGroups": ["*"], "apiVersions": ["v1"], "resources": ["deployments"]},
            {"apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["*", "deployments/scale", "nothings"]},
        ]);
        assert_eq!(check(reg(), &p), []);
        p["spec"]["matchConstraints"]["resourceRules"] =
            json!([{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}]);
        let w = check(reg(), &p);
        assert!(
            w[0].warning
                .starts_with("/v1, Kind=ConfigMap: ERROR: <input>:1:7: undefined field 'nope'")
        );
    }
}
