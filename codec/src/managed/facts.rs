//! What server-side apply and managedFields need to know of each property of each type,
//! compiled once from a schema and then looked up with one hash probe per object node:
//! the built-in types' (from the schemas, `go_facts.rs` and the topology tables, built
//! on first use) and a custom resource's ([`CustomTypes`], from its CRD version's
//! `openAPIV3Schema` and its `x-kubernetes-list-type`, `x-kubernetes-list-map-keys` and
//! `x-kubernetes-map-type`, built with its registry entry). A [`Ty`] is a position in
//! them: the type of one node of an object, walked down field by field.
//!
//! Invariants: a custom type's definitions refer to each other or to built-in ones
//! (`metadata` is ObjectMeta); their names start with [`CUSTOM_PREFIX`], so they never
//! shadow a built-in one; their depth is bounded ([`MAX_DEPTH`]), deeper nodes untyped.
//! Custom values are kept as written (no Go view: `custom` is set).

use crate::fieldset;
use crate::protobuf::go_facts::ROWS;
use crate::schema;
use crate::topology::{self, ListKey, ListType, OwnedListType};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::OnceLock;

/// What a property holds, as far as the zero object is concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum Prop {
    Struct(&'static str),
    Time,
    Scalar(Value),
    Other,
}

/// One property of a type.
#[derive(Debug)]
pub struct Field {
    pub kind: Prop,
    /// Some when a Go non-pointer field: whether its JSON tag has `omitempty`.
    pub go: Option<bool>,
    /// A granular map (`additionalProperties`, not atomic).
    pub is_map: bool,
    /// A struct or map owned as a whole.
    pub atomic_map: bool,
    /// A struct, a granular map or a list that is not atomic: its parts are owned one by
    /// one (an empty or null one owns nothing).
    pub granular: bool,
    pub list: OwnedListType,
    /// The type the property refers to.
    pub child: Option<Box<str>>,
    /// The type of its list items or map values.
    pub item: Option<Box<str>>,
}

impl Field {
    pub fn list_type(&self) -> ListType<'_> {
        self.list.as_list_type()
    }
}

/// One type: its properties, and its Go non-pointer fields when go_facts covers it.
#[derive(Debug, Default)]
pub struct Definition {
    /// Whether the schema lists properties (a struct, not a scalar or free-form type).
    pub has_properties: bool,
    pub fields: HashMap<Box<str>, Field>,
    pub go_values: Option<Vec<(&'static str, bool)>>,
    /// Values of this type are owned as a whole.
    pub atomic: bool,
    /// A custom resource's type: values are kept as written (no Go view).
    pub custom: bool,
}

/// The facts of the built-in `definition` (None for a name the built-in schemas lack).
pub fn definition(definition: &str) -> Option<&'static Definition> {
    static ALL: OnceLock<HashMap<&'static str, Definition>> = OnceLock::new();
    ALL.get_or_init(build).get(definition)
}

/// The type of one node: a definition of the built-in schemas or of a custom type's,
/// or unknown (free-form, untyped: structs granular, lists atomic).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ty<'a> {
    name: Option<&'a str>,
    facts: Option<&'a Definition>,
    custom: Option<&'a CustomTypes>,
}

impl<'a> Ty<'a> {
    /// The built-in type named `name` (unknown when the schemas lack it).
    pub fn builtin(name: &'a str) -> Ty<'a> {
        Ty { name: Some(name), facts: definition(name), custom: None }
    }

    /// A type nothing is known of.
    pub fn unknown() -> Ty<'a> {
        Ty::default()
    }

    /// The type named `name` (a field's `child` or `item`), looked up where this one was
    /// found.
    pub fn resolve(&self, name: Option<&'a str>) -> Ty<'a> {
        let Some(n) = name else { return Ty { custom: self.custom, ..Ty::default() } };
        let facts = self.custom.and_then(|c| c.defs.get(n)).or_else(|| definition(n));
        Ty { name: Some(n), facts, custom: self.custom }
    }

    pub fn name(&self) -> Option<&'a str> {
        self.name
    }

    pub fn facts(&self) -> Option<&'a Definition> {
        self.facts
    }

    pub fn field(&self, k: &str) -> Option<&'a Field> {
        self.facts?.fields.get(k)
    }

    /// The type of property `k`.
    pub fn child(&self, k: &str) -> Ty<'a> {
        self.resolve(self.field(k).and_then(|f| f.child.as_deref()))
    }

    /// The type of the items (or map values) of property `k`.
    pub fn item(&self, k: &str) -> Ty<'a> {
        self.resolve(self.field(k).and_then(|f| f.item.as_deref()))
    }

    /// The type a granular map's values or a struct's members have (`child`, else `item`).
    pub fn child_or_item(&self, k: &str) -> Ty<'a> {
        let f = self.field(k);
        self.resolve(f.and_then(|f| f.child.as_deref().or(f.item.as_deref())))
    }

    pub fn list_type(&self, k: &str) -> ListType<'a> {
        self.field(k).map_or(ListType::Atomic, Field::list_type)
    }

    /// Whether the value of `k` (a struct or a map) is owned as a whole.
    pub fn atomic_map(&self, k: &str) -> bool {
        self.field(k).is_some_and(|f| f.atomic_map)
    }

    /// Whether `k` is a granular map (entries owned one by one).
    pub fn is_map(&self, k: &str) -> bool {
        self.field(k).is_some_and(|f| f.is_map)
    }

    /// Whether `k` is a struct, granular map or non-atomic list of a known type.
    pub fn granular(&self, k: &str) -> bool {
        self.field(k).is_some_and(|f| f.granular)
    }

    /// Whether values of this type are owned as a whole.
    pub fn atomic(&self) -> bool {
        self.facts.is_some_and(|d| d.atomic)
    }
}

fn build() -> HashMap<&'static str, Definition> {
    let mut values: HashMap<String, Vec<(&'static str, bool)>> = HashMap::new();
    for (package, message, fields) in ROWS {
        let v = fields
            .split_whitespace()
            .map(|w| w.strip_prefix('!').map_or((w, true), |n| (n, false)))
            .collect();
        values.insert(format!("{package}{message}"), v);
    }
    let schemas = schema::builtin();
    schemas
        .definitions
        .iter()
        .map(|(name, s)| {
            let go_values = values.remove(name.as_str());
            let props = s.get("properties").and_then(Value::as_object);
            let fields = props
                .into_iter()
                .flatten()
                .map(|(k, p)| (k.as_str().into(), field(name, k, p, go_values.as_deref())))
                .collect();
            let def = Definition {
                has_properties: props.is_some(),
                fields,
                go_values,
                atomic: topology::atomic_type(name),
                custom: false,
            };
            (name.as_str(), def)
        })
        .collect()
}

fn field(
    def: &'static str,
    k: &'static str,
    p: &'static Value,
    go: Option<&[(&str, bool)]>,
) -> Field {
    let d = Some(def);
    let child = fieldset::child_definition(d, k, false);
    let atomic_map = topology::atomic_map(def, k, child.as_deref());
    let list = topology::list_type(def, k);
    let granular = match p.get("type").and_then(Value::as_str) {
        Some("array") => list != ListType::Atomic,
        Some("object") => !atomic_map,
        Some(_) => false,
        None => {
            child
                .as_deref()
                .and_then(|c| schema::builtin().get(c))
                .is_some_and(|c| c.get("properties").is_some())
                && !atomic_map
        }
    };
    Field {
        kind: prop_kind(p),
        go: go.into_iter().flatten().find(|(n, _)| *n == k).map(|(_, o)| *o),
        is_map: p.get("additionalProperties").is_some(),
        atomic_map,
        granular,
        list: list.into(),
        child: child.map(String::into_boxed_str),
        item: fieldset::child_definition(d, k, true).map(String::into_boxed_str),
    }
}

/// The schemas' own copy of a definition name (they live for the whole process).
fn static_name(name: &str) -> Option<&'static str> {
    schema::builtin().definitions.get_key_value(name).map(|(k, _)| k.as_str())
}

fn prop_kind(prop: &'static Value) -> Prop {
    match prop.get("type").and_then(Value::as_str) {
        Some("string") => return Prop::Scalar(json!("")),
        Some("integer") | Some("number") => return Prop::Scalar(json!(0)),
        Some("boolean") => return Prop::Scalar(json!(false)),
        Some(_) => return Prop::Other,
        None => {}
    }
    let r = prop
        .get("$ref")
        .or_else(|| prop.get("allOf").and_then(|a| a.get(0)).and_then(|x| x.get("$ref")))
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/definitions/"));
    match r {
        Some(d) if d.ends_with(".meta.v1.Time") || d.ends_with(".meta.v1.MicroTime") => Prop::Time,
        Some(d) if schema::builtin().get(d).is_some_and(|s| s.get("properties").is_some()) => {
            static_name(d).map_or(Prop::Other, Prop::Struct)
        }
        _ => Prop::Other,
    }
}

/// Where a custom type's definitions' names start.
pub const CUSTOM_PREFIX: &str = "custom:";
/// Schema nodes deeper than this are untyped.
pub const MAX_DEPTH: usize = 64;
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// A custom resource version's types, compiled from its `openAPIV3Schema`.
#[derive(Debug, Default)]
pub struct CustomTypes {
    defs: HashMap<Box<str>, Definition>,
}

impl CustomTypes {
    /// Compile `schema` (a CRD version's `openAPIV3Schema`).
    pub fn from_schema(schema: &Value) -> CustomTypes {
        let mut types = CustomTypes::default();
        let root = types.object(CUSTOM_PREFIX.to_string(), schema, 0);
        types.defs.insert(CUSTOM_PREFIX.into(), root);
        if let Some(meta) =
            types.defs.get_mut(CUSTOM_PREFIX).and_then(|d| d.fields.get_mut("metadata"))
        {
            meta.child = Some(OBJECT_META.into());
            meta.granular = true;
            meta.atomic_map = false;
        }
        types
    }

    /// The type of the resource's objects.
    pub fn root(&self) -> Ty<'_> {
        Ty { name: Some(CUSTOM_PREFIX), facts: self.defs.get(CUSTOM_PREFIX), custom: Some(self) }
    }

    /// The definition of an object node named `name` (its nested objects added as
    /// definitions of their own).
    fn object(&mut self, name: String, schema: &Value, depth: usize) -> Definition {
        let props = schema.get("properties").and_then(Value::as_object);
        let fields = props
            .into_iter()
            .flatten()
            .map(|(k, p)| (k.as_str().into(), self.field(&format!("{name}.{k}"), p, depth + 1)))
            .collect();
        Definition {
            has_properties: props.is_some(),
            fields,
            go_values: None,
            atomic: is_atomic(schema),
            custom: true,
        }
    }

    /// The facts of a property at `name` with schema `p`.
    fn field(&mut self, name: &str, p: &Value, depth: usize) -> Field {
        let atomic_map = is_atomic(p);
        let mut f = Field {
            kind: Prop::Other,
            go: None,
            is_map: false,
            atomic_map,
            granular: false,
            list: OwnedListType::Atomic,
            child: None,
            item: None,
        };
        if depth > MAX_DEPTH {
            return f;
        }
        match p.get("type").and_then(Value::as_str) {
            Some("object") => {
                f.granular = !atomic_map;
                if p.get("properties").is_some() {
                    f.child = Some(self.named(name.to_string(), p, depth));
                } else if let Some(values) = p.get("additionalProperties").filter(|v| v.is_object())
                {
                    f.is_map = true;
                    f.item = self.item(format!("{name}{{}}"), values, depth);
                }
            }
            Some("array") => {
                f.list = list_of(p);
                f.granular = f.list != OwnedListType::Atomic;
                if let Some(items) = p.get("items") {
                    f.item = self.item(format!("{name}[]"), items, depth);
                }
            }
            _ => {}
        }
        f
    }

    /// A definition for an item schema that is a struct (None otherwise).
    fn item(&mut self, name: String, schema: &Value, depth: usize) -> Option<Box<str>> {
        let is_struct = schema.get("properties").is_some() || is_atomic(schema);
        is_struct.then(|| self.named(name, schema, depth))
    }

    fn named(&mut self, name: String, schema: &Value, depth: usize) -> Box<str> {
        let def = self.object(name.clone(), schema, depth);
        let key: Box<str> = name.into();
        self.defs.insert(key.clone(), def);
        key
    }
}

/// `x-kubernetes-map-type: atomic` (the node is owned as a whole).
fn is_atomic(schema: &Value) -> bool {
    schema.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic")
}

/// A list's type from its schema: `x-kubernetes-list-type` (atomic when absent), a
/// list-map's keys with the defaults their item schema gives.
fn list_of(p: &Value) -> OwnedListType {
    match p.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => OwnedListType::Set,
        Some("map") => {
            let item_props = p.pointer("/items/properties").and_then(Value::as_object);
            let keys = p.get("x-kubernetes-list-map-keys").and_then(Value::as_array);
            OwnedListType::Map(
                keys.into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(|k| ListKey { name: k.to_string(), default: key_default(item_props, k) })
                    .collect(),
            )
        }
        _ => OwnedListType::Atomic,
    }
}

fn key_default(item_props: Option<&Map<String, Value>>, key: &str) -> Option<Value> {
    item_props?.get(key)?.get("default").cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_spec_facts() {
        let spec = definition("io.k8s.api.core.v1.PodSpec").unwrap();
        let containers = &spec.fields["containers"];
        assert_eq!(containers.list_type().keys().collect::<Vec<_>>(), ["name"]);
        assert_eq!(containers.item.as_deref(), Some("io.k8s.api.core.v1.Container"));
        assert_eq!(spec.fields["nodeName"].kind, Prop::Scalar(json!("")));
        assert!(spec.fields["nodeSelector"].is_map);
        assert!(spec.fields["nodeSelector"].atomic_map);
        let pod = definition("io.k8s.api.core.v1.Pod").unwrap();
        assert_eq!(pod.fields["spec"].kind, Prop::Struct("io.k8s.api.core.v1.PodSpec"));
        assert!(pod.fields["spec"].granular);
        assert!(pod.go_values.is_some(), "go_facts has a row for Pod");
        assert!(definition("no.such.Type").is_none());
    }

    #[test]
    fn a_builtin_type_walks_down_by_field() {
        let d = Ty::builtin("io.k8s.api.apps.v1.Deployment");
        let spec = d.child("spec");
        assert_eq!(spec.name(), Some("io.k8s.api.apps.v1.DeploymentSpec"));
        assert!(spec.atomic_map("selector"), "a label selector is owned whole");
        let pod = spec.child("template").child("spec");
        assert_eq!(pod.list_type("containers").key_default("name"), Some(json!("")));
        assert_eq!(pod.item("containers").list_type("ports").keys().count(), 2);
        let meta = d.child("metadata");
        assert_eq!(meta.list_type("finalizers"), ListType::Set);
        assert!(meta.is_map("labels") && meta.granular("labels"));
    }

    /// A CRD's schema gives its lists' types and keys (with their schema defaults), its
    /// atomic structs and maps, and `metadata` is ObjectMeta.
    #[test]
    fn a_custom_type_is_compiled_from_its_schema() {
        let schema = json!({"type": "object", "properties": {
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": {
                "ports": {"type": "array", "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["port", "protocol"],
                    "items": {"type": "object", "properties": {
                        "port": {"type": "integer"},
                        "protocol": {"type": "string", "default": "TCP"},
                        "tags": {"type": "array", "x-kubernetes-list-type": "set",
                            "items": {"type": "string"}}}}},
                "args": {"type": "array", "items": {"type": "string"}},
                "ref": {"type": "object", "x-kubernetes-map-type": "atomic",
                    "properties": {"name": {"type": "string"}}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}});
        let types = CustomTypes::from_schema(&schema);
        let root = types.root();
        assert!(root.facts().unwrap().custom);
        assert_eq!(root.child("metadata").list_type("ownerReferences").keys().next(), Some("uid"));
        let spec = root.child("spec");
        let ports = spec.list_type("ports");
        assert_eq!(ports.keys().collect::<Vec<_>>(), ["port", "protocol"]);
        assert_eq!(ports.key_default("protocol"), Some(json!("TCP")));
        assert_eq!(ports.key_default("port"), None);
        assert_eq!(spec.item("ports").list_type("tags"), ListType::Set);
        assert_eq!(spec.list_type("args"), ListType::Atomic);
        assert!(spec.atomic_map("ref") && !spec.granular("ref"));
        assert!(spec.is_map("labels") && spec.granular("labels"));
        assert!(spec.granular("free") && spec.child("free").facts().is_none());
        assert!(!spec.granular("args"));
    }

    #[test]
    fn deep_custom_schemas_are_bounded() {
        let mut schema = json!({"type": "string"});
        for _ in 0..200 {
            schema = json!({"type": "object", "properties": {"a": schema}});
        }
        let types = CustomTypes::from_schema(&schema);
        assert!(types.defs.len() <= MAX_DEPTH + 2, "{}", types.defs.len());
    }
}
