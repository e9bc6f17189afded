//! Checks an applied configuration the way upstream's conversion to a typed value does
//! before server-side apply merges it: every list-map item has its key fields (or their
//! defaults), and no key (or set value) appears twice in one list. Errors read as
//! upstream's: `.spec.ports: duplicate entries for key [port=80,protocol="TCP"]`.

use crate::fieldset::{self, is_atomic_map, list_type};
use crate::topology::ListType;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// The problems of `applied` (an object of type `definition`), upstream's way, or Ok.
pub fn check(applied: &Value, definition: &str) -> Result<(), String> {
    let mut errs = Vec::new();
    if let Value::Object(m) = applied {
        for (k, v) in m.iter().filter(|(k, _)| *k != "apiVersion" && *k != "kind") {
            walk(v, Some(definition), k, &mut vec![format!("f:{k}")], &mut errs);
        }
    }
    match errs.len() {
        0 => Ok(()),
        1 => Err(errs.remove(0)),
        _ => Err(format!("errors:\n  {}", errs.join("\n  "))),
    }
}

/// Check the value of `field` (in an object of type `definition`) found at `path`.
fn walk(
    v: &Value,
    definition: Option<&str>,
    field: &str,
    path: &mut Vec<String>,
    errs: &mut Vec<String>,
) {
    match v {
        Value::Object(m) if !is_atomic_map(definition, field) => {
            let def = fieldset::child_definition(definition, field, false);
            match def {
                Some(d) => members(m, Some(&d), path, errs),
                None => {
                    let item_def = fieldset::child_definition(definition, field, true);
                    for (k, c) in m {
                        path.push(format!("f:{k}"));
                        if let Value::Object(o) = c {
                            members(o, item_def.as_deref(), path, errs);
                        }
                        path.pop();
                    }
                }
            }
        }
        Value::Array(items) => list(items, definition, field, path, errs),
        _ => {}
    }
}

fn members(
    m: &Map<String, Value>,
    def: Option<&str>,
    path: &mut Vec<String>,
    errs: &mut Vec<String>,
) {
    for (k, c) in m {
        path.push(format!("f:{k}"));
        walk(c, def, k, path, errs);
        path.pop();
    }
}

fn list(
    items: &[Value],
    definition: Option<&str>,
    field: &str,
    path: &mut Vec<String>,
    errs: &mut Vec<String>,
) {
    let kind = list_type(definition, field);
    let item_def = fieldset::child_definition(definition, field, true);
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
            members(o, item_def.as_deref(), path, errs);
            path.pop();
        }
    }
}

fn at(path: &[String]) -> String {
    fieldset::path_string(path)
}

/// Why a list-map item has no key.
fn missing_key(item: &Value, kind: ListType) -> String {
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
        const SVC: &str = "io.k8s.api.core.v1.Service";
        let ok = json!({"spec": {"ports": [{"port": 80}, {"port": 80, "protocol": "UDP"}]}});
        assert_eq!(check(&ok, SVC), Ok(()));
        let dup = json!({"spec": {"ports": [{"port": 80}, {"port": 80, "protocol": "TCP"}]}});
        assert_eq!(
            check(&dup, SVC).unwrap_err(),
            ".spec.ports: duplicate entries for key [port=80,protocol=\"TCP\"]"
        );
        let defaulted = json!({"spec": {"ports": [{"name": "http"}]}});
        assert_eq!(check(&defaulted, SVC), Ok(()), "port defaults to 0, as upstream's schema says");
        let missing = json!({"secrets": [{"namespace": "n"}]});
        assert_eq!(
            check(&missing, "io.k8s.api.core.v1.ServiceAccount").unwrap_err(),
            ".secrets: element 0: associative list with keys has an element that omits key field \"name\" (and doesn't have default value)"
        );
        let env = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "c", "env": [{"name": "A"}, {"name": "A", "value": "2"}]}]}},
            "selector": {"matchExpressions": [{"key": "a"}, {"key": "a"}]}}});
        assert_eq!(
            check(&env, "io.k8s.api.apps.v1.Deployment").unwrap_err(),
            ".spec.template.spec.containers[name=\"c\"].env: duplicate entries for key [name=\"A\"]"
        );
        let fins = json!({"metadata": {"finalizers": ["a", "a"]}});
        assert_eq!(
            check(&fins, SVC).unwrap_err(),
            ".metadata.finalizers: duplicate entries for key [=\"a\"]"
        );
    }
}
