//! What a CustomResourceDefinition says of one served version of its type, beyond the
//! names and scope every registry entry has: the schema, printer columns, selectable
//! fields and the scale subresource's paths. Built from the CRD by the engine's CRD
//! controller; immutable (a changed CRD makes new facts and a new registry snapshot).

use crate::crd::Structural;
use crate::error::FieldError;
use crate::registry::{Name, Persistence, ResourceType, SchemaSource, Subresource};
use crate::strategy::Strategy;
use serde_json::Value;
use std::sync::Arc;

/// One `additionalPrinterColumns` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    pub name: String,
    /// `integer`, `number`, `string`, `boolean` or `date`.
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    /// A simple JSONPath such as `.spec.replicas`.
    pub json_path: String,
}

/// The scale subresource's paths (`.spec.replicas` and friends).
#[derive(Debug, Clone, PartialEq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// The facts of one served version of a custom resource.
#[derive(Debug, Clone)]
pub struct CustomFacts {
    /// The CRD's `metadata.name` (`widgets.example.com`).
    pub crd_name: String,
    /// The version's `openAPIV3Schema` (None when the CRD gives none).
    pub schema: Option<Arc<Value>>,
    /// The same, parsed as a structural schema (validation, pruning, defaulting).
    pub structural: Option<Arc<Structural>>,
    /// Its `x-kubernetes-validations` rules, compiled (None when it has none).
    pub rules: Option<Arc<crate::cel::Rules>>,
    /// Its list, map and struct types as server-side apply merges and owns them.
    pub apply_types: Arc<crate::managed::CustomTypes>,
    pub printer_columns: Vec<PrinterColumn>,
    /// `selectableFields[*].jsonPath` without the leading `.`.
    pub selectable_fields: Vec<String>,
    pub scale: Option<ScalePaths>,
    /// The storage version's name (objects are stored in it).
    pub storage_version: String,
    /// Whether this version is deprecated, and the warning to send.
    pub deprecation_warning: Option<String>,
    /// The conversion webhook (conversion strategy `Webhook`); None: strategy `None`
    /// (only `apiVersion` changes between versions).
    pub webhook: Option<Arc<crate::webhook_conversion::Webhook>>,
}

/// The verbs of every custom resource.
const VERBS: &[&str] =
    &["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"];
const SUB_VERBS: &[&str] = &["get", "patch", "update"];
const STATUS: Subresource =
    Subresource { name: "status", kind: "", group: "", version: "", verbs: SUB_VERBS };
const SCALE: Subresource = Subresource {
    name: "scale",
    kind: "Scale",
    group: "autoscaling",
    version: "v1",
    verbs: SUB_VERBS,
};
const STATUS_AND_SCALE: &[Subresource] = &[SCALE, STATUS];

fn text(v: &Value, pointer: &str) -> String {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn names(v: &Value, pointer: &str) -> Vec<Name> {
    let list = v.pointer(pointer).and_then(Value::as_array);
    list.into_iter().flatten().filter_map(Value::as_str).map(|s| s.to_string().into()).collect()
}

/// Upstream's OpenAPI definition name of a custom kind: the group reversed, then
/// version and kind (`widgets.example.com` v1 `Widget` -> `com.example.v1.Widget`).
pub fn schema_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

fn printer_columns(version: &Value) -> Vec<PrinterColumn> {
    let cols = version.get("additionalPrinterColumns").and_then(Value::as_array);
    cols.into_iter()
        .flatten()
        .map(|c| PrinterColumn {
            name: text(c, "/name"),
            type_: text(c, "/type"),
            format: text(c, "/format"),
            description: text(c, "/description"),
            priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
            json_path: text(c, "/jsonPath"),
        })
        .collect()
}

fn scale_paths(version: &Value) -> Option<ScalePaths> {
    let s = version.pointer("/subresources/scale")?;
    Some(ScalePaths {
        spec_replicas: text(s, "/specReplicasPath"),
        status_replicas: text(s, "/statusReplicasPath"),
        label_selector: s.get("labelSelectorPath").and_then(Value::as_str).map(String::from),
    })
}

fn subresources(version: &Value) -> &'static [Subresource] {
    let has = |name: &str| version.pointer(&format!("/subresources/{name}")).is_some();
    match (has("status"), has("scale")) {
        (true, true) => STATUS_AND_SCALE,
        (true, false) => std::slice::from_ref(&STATUS),
        (false, true) => std::slice::from_ref(&SCALE),
        (false, false) => &[],
    }
}

/// The registry entries of a CustomResourceDefinition: one per served version, in the
/// CRD's order (upstream sorts versions by Kubernetes version priority for discovery;
/// the storage version is served first when it is also served).
pub fn types_from_crd(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let group = text(spec, "/group");
    let storage_version = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["storage"] == true)
        .map(|v| text(v, "/name"))
        .unwrap_or_default();
    let mut versions: Vec<&Value> =
        spec["versions"].as_array().into_iter().flatten().filter(|v| v["served"] == true).collect();
    versions.sort_by(|a, b| {
        version_priority(&text(b, "/name")).cmp(&version_priority(&text(a, "/name")))
    });
    let webhook = crate::webhook_conversion::Webhook::from_crd(crd).map(Arc::new);
    versions.into_iter().map(|v| entry(crd, &group, v, &storage_version, &webhook)).collect()
}

/// Upstream's version priority: GA before beta before alpha, higher numbers first,
/// then non-Kubernetes-style names alphabetically (as the lowest).
pub fn version_priority(v: &str) -> (u8, u64, u64, std::cmp::Reverse<String>) {
    let Some(rest) = v.strip_prefix('v') else { return (0, 0, 0, std::cmp::Reverse(v.into())) };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(major) = digits.parse::<u64>() else {
        return (0, 0, 0, std::cmp::Reverse(v.into()));
    };
    let tail = &rest[digits.len()..];
    let (class, minor) = if tail.is_empty() {
        (3, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, n.parse().unwrap_or(u64::MAX))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n.parse().unwrap_or(u64::MAX))
    } else {
        return (0, 0, 0, std::cmp::Reverse(v.into()));
    };
    if class != 3 && minor == u64::MAX {
        return (0, 0, 0, std::cmp::Reverse(v.into()));
    }
    (class, major, minor, std::cmp::Reverse(String::new()))
}

fn entry(
    crd: &Value,
    group: &str,
    version: &Value,
    storage_version: &str,
    webhook: &Option<Arc<crate::webhook_conversion::Webhook>>,
) -> ResourceType {
    let spec = &crd["spec"];
    let name = text(version, "/name");
    let kind = text(spec, "/names/kind");
    let plural = text(spec, "/names/plural");
    let list_kind = match text(spec, "/names/listKind") {
        l if l.is_empty() => format!("{kind}List"),
        l => l,
    };
    let singular = match text(spec, "/names/singular") {
        s if s.is_empty() => kind.to_lowercase(),
        s => s,
    };
    let schema = version.pointer("/schema/openAPIV3Schema").cloned().map(Arc::new);
    let selectable = version.get("selectableFields").and_then(Value::as_array);
    let facts = Arc::new(CustomFacts {
        crd_name: text(crd, "/metadata/name"),
        structural: schema.as_deref().and_then(|s| Structural::parse_arc(s).ok()),
        rules: schema
            .as_deref()
            .and_then(|s| crate::cel::compile(s, "").ok())
            .filter(|r| !r.is_empty())
            .map(Arc::new),
        apply_types: schema
            .as_deref()
            .map(crate::managed::CustomTypes::from_schema)
            .unwrap_or_default()
            .into(),
        schema: schema.clone(),
        printer_columns: printer_columns(version),
        selectable_fields: selectable
            .into_iter()
            .flatten()
            .map(|f| text(f, "/jsonPath").trim_start_matches('.').to_string())
            .collect(),
        scale: scale_paths(version),
        storage_version: storage_version.to_string(),
        deprecation_warning: (version["deprecated"] == true).then(|| {
            let w = text(version, "/deprecationWarning");
            if w.is_empty() { format!("{group}/{name} {kind} is deprecated") } else { w }
        }),
        webhook: webhook.clone(),
    });
    let subs = subresources(version);
    ResourceType {
        schema_name: schema_name(group, &name, &kind).into(),
        group: group.to_string().into(),
        version: name.into(),
        kind: kind.into(),
        list_kind: list_kind.into(),
        singular: singular.into(),
        namespaced: text(spec, "/scope") != "Cluster",
        short_names: names(spec, "/names/shortNames"),
        categories: names(spec, "/names/categories"),
        verbs: VERBS,
        subresources: subs.into(),
        persistence: Persistence::Stored,
        role: crate::registry::Role::Plain,
        storage_resource: format!("{group}/{plural}").into(),
        plural: plural.into(),
        strategy: Arc::new(CustomStrategy {
            facts: facts.clone(),
            has_status: subs.iter().any(|s| s.name == "status"),
        }),
        schema: SchemaSource::Custom(schema.unwrap_or_else(|| Arc::new(Value::Null))),
        custom: Some(facts),
        storage_version: None,
        cache: Default::default(),
    }
}

/// The strategy of a custom resource: generation tracking, the status split, and the
/// CRD's schema (defaults, validation).
pub struct CustomStrategy {
    pub facts: Arc<CustomFacts>,
    pub has_status: bool,
}

impl Strategy for CustomStrategy {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        if let Some(s) = &self.facts.structural {
            crate::crd::apply_defaults(s, obj);
        }
    }

    fn prepare_create(&self, obj: &mut Value) {
        if self.has_status
            && let Some(o) = obj.as_object_mut()
        {
            o.remove("status");
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        self.checked(obj, None)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        self.checked(new, Some(old))
    }
}

impl CustomStrategy {
    /// Schema validation, then (when the schema holds) the CEL rules, as upstream runs
    /// them; `old` for transition rules on update.
    fn checked(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut errs = match &self.facts.structural {
            Some(s) => crate::crd::validate(s, obj),
            None => Vec::new(),
        };
        if errs.is_empty()
            && let Some(rules) = &self.facts.rules
        {
            errs.extend(rules.validate(obj, old));
        }
        errs
    }
}

impl CustomFacts {
    /// Drop the fields `obj`'s schema does not know; their paths, for fieldValidation.
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
        self.structural.as_ref().map(|s| crate::crd::prune(s, obj)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_are_served_in_kubernetes_priority_order() {
        let mut v = vec!["v1beta1", "foo", "v2", "v1", "v1alpha1", "v10", "v11alpha2"];
        v.sort_by_key(|x| std::cmp::Reverse(version_priority(x)));
        assert_eq!(v, ["v10", "v2", "v1", "v1beta1", "v11alpha2", "v1alpha1", "foo"]);
    }

    #[test]
    fn a_crd_makes_one_entry_per_served_version() {
        let crd = json!({"metadata": {"name": "widgets.example.com"}, "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [
                {"name": "v1beta1", "served": true, "storage": false},
                {"name": "v1", "served": true, "storage": true,
                 "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}}},
                {"name": "v0", "served": false, "storage": false}]}});
        let t = types_from_crd(&crd);
        assert_eq!(t.len(), 2);
        assert_eq!(
            (&*t[0].version, &*t[0].list_kind, &*t[0].schema_name),
            ("v1", "WidgetList", "com.example.v1.Widget")
        );
        assert_eq!(
            t[0].storage_key("/registry", Some("ns"), "a"),
            "/registry/example.com/widgets/ns/a"
        );
        assert!(t[0].has_status() && t[0].subresource("scale").is_some());
        assert!(!t[1].has_status());
        assert_eq!(t[0].short_names, vec![Name::from("wd")]);
    }
}
