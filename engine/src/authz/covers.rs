//! Whether one set of RBAC policy rules covers another, as upstream's RBAC validation
//! decides it: every rule of the covered set is broken down into atomic rules (one API
//! group, resource, verb and resource name, or one non-resource URL and verb), and each
//! atomic rule must be allowed by some rule of the covering set. `*` matches any group,
//! resource or verb; `*/sub` any resource's subresource `sub`; a URL ending in `*` any
//! URL with that prefix; a rule without resourceNames any name.

use serde_json::{Value, json};

fn list<'a>(rule: &'a Value, field: &str) -> Vec<&'a str> {
    rule.get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// The atomic rules `rule` grants, in upstream's order (group, resource, verb, name; then
/// URLs by verb).
pub fn breakdown(rule: &Value) -> Vec<Value> {
    let (verbs, names) = (list(rule, "verbs"), list(rule, "resourceNames"));
    let mut out = Vec::new();
    for group in list(rule, "apiGroups") {
        for resource in list(rule, "resources") {
            for verb in &verbs {
                let base = json!({"apiGroups": [group], "resources": [resource], "verbs": [verb]});
                if names.is_empty() {
                    out.push(base);
                    continue;
                }
                for name in &names {
                    let mut sub = base.clone();
                    sub["resourceNames"] = json!([name]);
                    out.push(sub);
                }
            }
        }
    }
    for url in list(rule, "nonResourceURLs") {
        for verb in &verbs {
            out.push(json!({"nonResourceURLs": [url], "verbs": [verb]}));
        }
    }
    out
}

/// The atomic rules of `servant` that no rule of `owner` allows (empty: covered).
pub fn uncovered(owner: &[Value], servant: &[Value]) -> Vec<Value> {
    servant
        .iter()
        .flat_map(breakdown)
        .filter(|atomic| !owner.iter().any(|o| rule_covers(o, atomic)))
        .collect()
}

fn has_all(set: &[&str], wanted: &[&str]) -> bool {
    wanted.iter().all(|w| set.contains(w))
}

fn resources_covered(set: &[&str], wanted: &[&str]) -> bool {
    if set.contains(&"*") {
        return true;
    }
    wanted.iter().all(|path| {
        set.contains(path)
            || path
                .split_once('/')
                .is_some_and(|(_, sub)| set.contains(&format!("*/{sub}").as_str()))
    })
}

fn urls_covered(set: &[&str], wanted: &[&str]) -> bool {
    wanted.iter().all(|url| {
        set.iter().any(|s| s == url || s.strip_suffix('*').is_some_and(|p| url.starts_with(p)))
    })
}

/// Whether `owner` allows everything `requested` (an atomic rule or any rule) does.
pub fn rule_covers(owner: &Value, requested: &Value) -> bool {
    let (o, q) = (|f| list(owner, f), |f| list(requested, f));
    let verbs = o("verbs").contains(&"*") || has_all(&o("verbs"), &q("verbs"));
    let groups = o("apiGroups").contains(&"*") || has_all(&o("apiGroups"), &q("apiGroups"));
    let resources = resources_covered(&o("resources"), &q("resources"));
    let urls = urls_covered(&o("nonResourceURLs"), &q("nonResourceURLs"));
    let owner_names = o("resourceNames");
    let names = owner_names.is_empty()
        || (!q("resourceNames").is_empty() && has_all(&owner_names, &q("resourceNames")));
    verbs && groups && resources && urls && names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breakdown_is_one_atomic_rule_per_group_resource_verb_and_name() {
        let rule = json!({"apiGroups": ["", "apps"], "resources": ["pods"], "verbs": ["get", "list"], "resourceNames": ["a"]});
        let atoms = breakdown(&rule);
        assert_eq!(atoms.len(), 4);
        assert_eq!(
            atoms[0],
            json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": ["a"]})
        );
        let urls = breakdown(&json!({"nonResourceURLs": ["/a", "/b"], "verbs": ["get"]}));
        assert_eq!(
            urls,
            vec![
                json!({"nonResourceURLs": ["/a"], "verbs": ["get"]}),
                json!({"nonResourceURLs": ["/b"], "verbs": ["get"]})
            ]
        );
    }

    #[test]
    fn wildcards_cover_as_upstream() {
        let star = json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]});
        let any =
            json!({"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch"]});
        assert!(rule_covers(&star, &any));
        let sub = json!({"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["patch"]});
        assert!(rule_covers(&sub, &any));
        let other = json!({"apiGroups": ["apps"], "resources": ["*/status"], "verbs": ["patch"]});
        assert!(!rule_covers(&other, &any));
        let url = json!({"nonResourceURLs": ["/healthz/*"], "verbs": ["get"]});
        assert!(rule_covers(
            &url,
            &json!({"nonResourceURLs": ["/healthz/etcd"], "verbs": ["get"]})
        ));
        assert!(!rule_covers(&url, &json!({"nonResourceURLs": ["/livez"], "verbs": ["get"]})));
    }

    #[test]
    fn resource_names_narrow_a_rule() {
        let named = json!({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["x"], "verbs": ["get"]});
        let unnamed = json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]});
        assert!(!rule_covers(&named, &unnamed));
        assert!(rule_covers(&unnamed, &named));
        assert!(uncovered(&[unnamed], &[named]).is_empty());
    }

    #[test]
    fn uncovered_lists_the_missing_atomic_rules() {
        let owner = [json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]})];
        let servant = [json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]})];
        assert_eq!(
            uncovered(&owner, &servant),
            vec![json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]})]
        );
        // A resource rule never covers a URL and the other way round.
        let url = [json!({"nonResourceURLs": ["*"], "verbs": ["*"]})];
        assert_eq!(uncovered(&url, &servant).len(), 2);
    }
}
