//! The CEL view of a structural schema: what type `self` has at a schema node and how
//! large its values can get. Built once per compile from the `openAPIV3Schema` JSON.
//!
//! Invariants: a `Shape` tree is finite (built by walking the schema JSON, which is a
//! tree) and its depth is bounded by [`MAX_SCHEMA_DEPTH`]; deeper nodes become `Any`.
//! Sizes are upper bounds: a declared `maxLength`/`maxItems`/`maxProperties`, else the
//! largest count that fits in a request of upstream's maximum size (3 MiB).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

/// Upstream's `MaxRequestSizeBytes`: the bound used for undeclared sizes.
pub const MAX_REQUEST_SIZE_BYTES: u64 = 3 * 1024 * 1024;
/// Deeper schema nodes are typed as `dyn`; keeps every recursion over shapes bounded.
pub const MAX_SCHEMA_DEPTH: usize = 64;

#[derive(Debug)]
pub enum Kind {
    /// No type (x-kubernetes-preserve-unknown-fields) or too deep: `dyn`.
    Any,
    Bool,
    Int,
    Double,
    Str,
    Bytes,
    Timestamp,
    Duration,
    /// x-kubernetes-int-or-string: `dyn`, an int or a string at runtime.
    IntOrString,
    List(Arc<Shape>),
    /// An object with `additionalProperties`: a `map(string, V)`.
    Map(Arc<Shape>),
    /// An object with `properties`: fields by name.
    Object(BTreeMap<String, Arc<Shape>>),
}

#[derive(Debug)]
pub struct Shape {
    pub kind: Kind,
    /// The schema's `type` as upstream prints it in field errors (`"object"`, `""`).
    pub type_name: String,
    /// maxLength / maxItems / maxProperties when declared.
    pub max_len: Option<u64>,
    /// `x-kubernetes-list-type: map` keys, for correlating old items.
    pub list_map_keys: Option<Vec<String>>,
}

impl Shape {
    pub fn any() -> Shape {
        Shape { kind: Kind::Any, type_name: String::new(), max_len: None, list_map_keys: None }
    }

    /// Builds the shape of `schema`. `resource_root`: the root of a resource (or an
    /// embedded resource), where CEL sees `apiVersion`, `kind` and only `metadata.name`
    /// and `metadata.generateName`, as upstream's `WithTypeAndObjectMeta`.
    pub fn from_schema(schema: &Value, resource_root: bool) -> Shape {
        build(schema, resource_root, 0)
    }

    /// The smallest JSON text a value of this shape takes (for unbounded sizes).
    pub fn min_serialized_size(&self) -> u64 {
        match &self.kind {
            Kind::Bool => 4,
            Kind::Int | Kind::Double | Kind::IntOrString | Kind::Any => 1,
            Kind::Str | Kind::Bytes => 2,
            Kind::Timestamp => 22,
            Kind::Duration => 4,
            Kind::List(_) | Kind::Map(_) | Kind::Object(_) => 2,
        }
    }

    /// Upper bound on the length (string chars, list items, map entries) of a value.
    pub fn max_size(&self) -> u64 {
        if let Some(m) = self.max_len {
            return m;
        }
        match &self.kind {
            Kind::Str | Kind::Bytes | Kind::Any | Kind::IntOrString => MAX_REQUEST_SIZE_BYTES - 2,
            // `[` `]` and one comma per item.
            Kind::List(e) => (MAX_REQUEST_SIZE_BYTES - 2) / (e.min_serialized_size() + 1),
            // `"":` plus a comma per entry.
            Kind::Map(v) => (MAX_REQUEST_SIZE_BYTES - 2) / (v.min_serialized_size() + 4),
            Kind::Object(p) => p.len() as u64,
            _ => 1,
        }
    }
}

fn string_field<'a>(schema: &'a Value, name: &str) -> Option<&'a str> {
    schema.get(name).and_then(Value::as_str)
}

fn build(schema: &Value, resource_root: bool, depth: usize) -> Shape {
    if depth > MAX_SCHEMA_DEPTH || !schema.is_object() {
        return Shape::any();
    }
    let ty = string_field(schema, "type").unwrap_or("");
    let type_name = ty.to_string();
    let max = |k: &str| schema.get(k).and_then(Value::as_u64);
    let mut list_map_keys = None;
    let (kind, max_len) = if schema.get("x-kubernetes-int-or-string").and_then(Value::as_bool)
        == Some(true)
    {
        (Kind::IntOrString, None)
    } else {
        match ty {
            "boolean" => (Kind::Bool, None),
            "integer" => (Kind::Int, None),
            "number" => (Kind::Double, None),
            "string" => {
                let kind = match string_field(schema, "format") {
                    Some("date-time") => Kind::Timestamp,
                    Some("duration") => Kind::Duration,
                    Some("byte") => Kind::Bytes,
                    _ => Kind::Str,
                };
                (kind, max("maxLength"))
            }
            "array" => {
                let items = schema.get("items").map(|i| build(i, false, depth + 1));
                if schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
                    list_map_keys = schema
                        .get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(|k| k.as_str().map(String::from)).collect());
                }
                (Kind::List(Arc::new(items.unwrap_or_else(Shape::any))), max("maxItems"))
            }
            "object" => {
                let embedded =
                    schema.get("x-kubernetes-embedded-resource").and_then(Value::as_bool)
                        == Some(true);
                let props = schema.get("properties").and_then(Value::as_object);
                let additional = schema.get("additionalProperties").filter(|a| a.is_object());
                if let Some(additional) = additional.filter(|_| props.is_none()) {
                    (Kind::Map(Arc::new(build(additional, false, depth + 1))), max("maxProperties"))
                } else if props.is_none()
                    && !embedded
                    && !resource_root
                    && schema.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool)
                        == Some(true)
                {
                    (Kind::Any, max("maxProperties"))
                } else {
                    let mut fields = BTreeMap::new();
                    for (name, sub) in props.into_iter().flatten() {
                        let child = build(sub, false, depth + 1);
                        fields.insert(name.clone(), Arc::new(child));
                    }
                    if resource_root || embedded {
                        add_type_and_object_meta(&mut fields);
                    }
                    (Kind::Object(fields), max("maxProperties"))
                }
            }
            _ => (Kind::Any, None),
        }
    };
    Shape { kind, type_name, max_len, list_map_keys }
}

fn string_shape() -> Arc<Shape> {
    Arc::new(Shape {
        kind: Kind::Str,
        type_name: "string".into(),
        max_len: None,
        list_map_keys: None,
    })
}

fn add_type_and_object_meta(fields: &mut BTreeMap<String, Arc<Shape>>) {
    fields.insert("apiVersion".into(), string_shape());
    fields.insert("kind".into(), string_shape());
    let mut meta = BTreeMap::new();
    meta.insert("name".to_string(), string_shape());
    meta.insert("generateName".to_string(), string_shape());
    fields.insert(
        "metadata".into(),
        Arc::new(Shape {
            kind: Kind::Object(meta),
            type_name: "object".into(),
            max_len: None,
            list_map_keys: None,
        }),
    );
}
