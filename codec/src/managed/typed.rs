//! Checks an applied configuration the way upstream's conversion to a typed value does
//! before server-side apply merges it: every list-map item has its key fields (or their
//! defaults), and no key (or set value) appears twice in one list. Errors read as
//! upstream's: `.spec.ports: duplicate entries for key [port=80,protocol="TCP"]`.

use super::Ty;
use crate::fieldset;
use crate::topology::ListType;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// The problems of `applied` (an object of type `ty`), upstream's way, or Ok.
pub fn check(applied: &Value, ty: Ty<'_>) -> Result<(), String> {
    let mut errs = Vec::new();
    if let Value::Object(m) = applied {
        for (k, v) in m.iter().filter(|(k, _)| *k != "apiVersion" && *k != "kind") {
            walk(v, ty, k, &mut vec![format!("f:{k}")], &mut errs);
        }
    }
    match errs.len() {
        0 => Ok(()),
        1 => Err(errs.remove(0)),
        _ => Err(format!("errors:\n  {}", errs.join("\n  "))),
    }
}

/// Check the value of `field` (in an object of type `ty`) found at `path`.
fn walk(v: &Value, ty: Ty<'_>, field: &str, path: &mut Vec<String>, errs: &mut Vec<String>) {
    match v {
        Value::Object(m) if !ty.atomic_map(field) => {
            if ty.is_map(field) {
                let item = ty.item(field);
                for (k, c) in m {
                    path.push(format!("f:{k}"));
                    if let Value::Object(o) = c {
                        members(o, item, path, errs);
                    }
                    path.pop();
                }
            } else {
                members(m, ty.child(field), path, errs);
            }
        }
        Value::Array(items) => list(items, ty, field, path, errs),
        _ => {}
    }
}

fn members(m: &Map<String, Value>, ty: Ty<'_>, path: &mut Vec<String>, errs: &mut Vec<String>) {
    for (k, c) in m {
        path.push(format!("f:{k}"));
        walk(c, ty, k, path, errs);
        path.pop();
    }
}

fn list(items: &[Value], ty: Ty<'_>, field: &str, path: &mut Vec<String>, errs: &mut Vec<String>) {
    let kind = ty.list_type(field);
    let item_ty = ty.item(field);
    let mut seen = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let element = match kind {
            ListType::Atomic => continue,
            ListType::Set => format!("v:{item}"),
            ListType::Map(_) => match fieldset::item_key(item, kind) {
                Some(k) => k,
                None => {
                    errs.push(format!("{}: element {i}: {}", at(path), missing_key(item, kind)));
                    return;
                }
            },
        };
        if !seen.insert(element.clone()) {
            let shown = fieldset::path_string(std::slice::from_ref(&element));
            errs.push(format!("{}: duplicate entries for key {shown}", at(path)));
        }
        if let Value::Object(o) = item {
            path.push(element);
            members(o, item_ty, path, errs);
            path.pop();
        }
    }
}

fn at(path: &[String]) -> String {
    fieldset::path_string(path)
}

/// Why a list-map item has no key.
fn missing_key(item: &Value, kind: ListType<'_>) -> String {
    let Some(o) = item.as_object() else {
        return "associative list with keys may not have non-map elements".into();
    };
    let field =
        kind.keys().find(|k| !o.contains_key(*k) && kind.key_default(k).is_none()).unwrap_or("");
    format!(
        "associative list with keys has an element that omits key field {field:?} (and doesn't have default value)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn duplicate_keys_and_missing_keys_are_reported_as_upstream() {
        let svc = Ty::builtin("io.k8s.api.core.v1.Service");
        let ok = json!({"spec": {"ports": [{"port": 80}, {"port": 80, "protocol": "UDP"}]}});
        assert_eq!(check(&ok, svc), Ok(()));
        let dup = json!({"spec": {"ports": [{"port": 80}, {"port": 80, "protocol": "TCP"}]}});
        assert_eq!(
            check(&dup, svc).unwrap_err(),
            ".spec.ports: duplicate entries for key [port=80,protocol=\"TCP\"]"
        );
        let defaulted = json!({"spec": {"ports": [{"name": "http"}]}});
        assert_eq!(check(&defaulted, svc), Ok(()), "port defaults to 0, as upstream's schema says");
        let missing = json!({"secrets": [{"namespace": "n"}]});
        assert_eq!(
            check(&missing, Ty::builtin("io.k8s.api.core.v1.ServiceAccount")).unwrap_err(),
            ".secrets: element 0: associative list with keys has an element that omits key field \"name\" (and doesn't have default value)"
        );
        let env = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "c", "env": [{"name": "A"}, {"name": "A", "value": "2"}]}]}},
            "selector": {"matchExpressions": [{"key": "a"}, {"key": "a"}]}}});
        assert_eq!(
            check(&env, Ty::builtin("io.k8s.api.apps.v1.Deployment")).unwrap_err(),
            ".spec.template.spec.containers[name=\"c\"].env: duplicate entries for key [name=\"A\"]"
        );
        let fins = json!({"metadata": {"finalizers": ["a", "a"]}});
        assert_eq!(
            check(&fins, svc).unwrap_err(),
            ".metadata.finalizers: duplicate entries for key [=\"a\"]"
        );
    }
}
