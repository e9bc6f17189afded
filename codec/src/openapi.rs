//! OpenAPI v2 and v3 documents generated from the registry and the types' schemas.
//!
//! What clients rely on, as upstream: one v3 document per group/version with every
//! resource path and operation (`x-kubernetes-action`, `x-kubernetes-group-version-kind`,
//! the `fieldValidation` parameter kubectl probes for server-side validation) and the
//! schemas under `components/schemas` with `x-kubernetes-group-version-kind` on each kind
//! (`kubectl explain`); the v3 index names each document with a content hash; v2 holds
//! every definition and path in one document.

use crate::registry::{Registry, ResourceType};
use crate::schema;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

const V2_REF: &str = "#/definitions/";
const V3_REF: &str = "#/components/schemas/";
const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";

/// The whole OpenAPI v2 document (`/openapi/v2`).
pub fn v2(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for rt in registry.all() {
        for (path, item) in resource_paths(rt, Flavor::V2) {
            paths.insert(path, item);
        }
    }
    let mut definitions = schema::builtin().definitions.clone();
    add_patch(&mut definitions);
    let customs: Vec<&ResourceType> = registry.all().iter().map(|t| &**t).collect();
    add_custom(&customs, &mut definitions);
    add_gvk(registry, &mut definitions);
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.35.0"},
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}],
    })
}

/// The `/openapi/v3` index: `{"paths": {"api/v1": {"serverRelativeURL": ...}, ...}}`.
pub fn v3_index(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, version) in registry.group_versions() {
        let key = gv_path(group, version);
        let Some(doc) = v3_group_version(registry, group, version) else { continue };
        let hash = fnv_hex(&serde_json::to_vec(&doc).unwrap_or_default());
        let url = format!("/openapi/v3/{key}?hash={hash}");
        paths.insert(key, json!({"serverRelativeURL": url}));
    }
    json!({"paths": paths})
}

/// The OpenAPI v3 document of one group/version (`/openapi/v3/apis/apps/v1`).
pub fn v3_group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types: Vec<&ResourceType> =
        registry.in_group_version(group, version).map(|t| &**t).collect();
    if types.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut roots: Vec<String> =
        [format!("{META}.Status"), format!("{META}.DeleteOptions"), format!("{META}.Patch")].into();
    for rt in &types {
        roots.push(rt.schema_name.to_string());
        roots.push(list_schema_name(rt));
        for (path, item) in resource_paths(rt, Flavor::V3) {
            paths.insert(path, item);
        }
    }
    let mut from_paths = Vec::new();
    collect_refs(&Value::Object(paths.clone()), &mut from_paths);
    roots.extend(from_paths);
    let mut custom_refs = Vec::new();
    for rt in &types {
        if let Some(def) = custom_definition(rt) {
            collect_refs(&def, &mut custom_refs);
        }
    }
    roots.extend(custom_refs);
    let mut schemas = reachable(&roots);
    add_patch(&mut schemas);
    add_custom(&types, &mut schemas);
    add_gvk(registry, &mut schemas);
    add_lists(&types, &mut schemas);
    rewrite_refs(&mut schemas);
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.35.0"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header"}},
        },
    }))
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

fn fnv_hex(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

/// Definition names reachable from `roots` through `$ref`s, with their schemas.
fn reachable(roots: &[String]) -> Map<String, Value> {
    let defs = &schema::builtin().definitions;
    let mut seen = BTreeSet::new();
    let mut stack: Vec<String> = roots.to_vec();
    while let Some(name) = stack.pop() {
        let Some(def) = defs.get(&name) else { continue };
        if !seen.insert(name) {
            continue;
        }
        collect_refs(def, &mut stack);
    }
    seen.into_iter().filter_map(|n| defs.get(&n).map(|d| (n, d.clone()))).collect()
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            let name = m.get("$ref").and_then(Value::as_str);
            if let Some(r) =
                name.and_then(|r| r.strip_prefix(V2_REF).or_else(|| r.strip_prefix(V3_REF)))
            {
                out.push(r.to_string());
            }
            m.values().for_each(|c| collect_refs(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| collect_refs(c, out)),
        _ => {}
    }
}

fn rewrite_refs(schemas: &mut Map<String, Value>) {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get_mut("$ref")
                    && let Some(name) = r.strip_prefix(V2_REF)
                {
                    *r = format!("{V3_REF}{name}");
                }
                m.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    schemas.values_mut().for_each(walk);
}

/// The definition of a custom kind: its CRD version's schema with `apiVersion`, `kind`
/// and `metadata` as upstream adds them (a CRD without a schema: any object).
pub(crate) fn custom_definition(rt: &ResourceType) -> Option<Value> {
    let crate::registry::SchemaSource::Custom(schema) = &rt.schema else { return None };
    let mut def = match &**schema {
        Value::Object(_) => (**schema).clone(),
        _ => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
    };
    let props =
        def.as_object_mut()?.entry("properties").or_insert_with(|| json!({})).as_object_mut()?;
    props.insert("apiVersion".into(), json!({"description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources", "type": "string"}));
    props.insert("kind".into(), json!({"description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds", "type": "string"}));
    props.insert("metadata".into(), json!({"$ref": format!("{V2_REF}{META}.ObjectMeta")}));
    Some(def)
}

/// Add the definitions of the custom kinds among `types`.
fn add_custom(types: &[&ResourceType], schemas: &mut Map<String, Value>) {
    for rt in types {
        if let Some(def) = custom_definition(rt) {
            schemas.insert(rt.schema_name.to_string(), def);
        }
    }
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

/// `x-kubernetes-group-version-kind` on every kind (a type served by several
/// group/versions lists each).
fn add_gvk(registry: &Registry, schemas: &mut Map<String, Value>) {
    for rt in registry.all() {
        if let Some(Value::Object(s)) = schemas.get_mut(&*rt.schema_name) {
            let list = s.entry("x-kubernetes-group-version-kind").or_insert_with(|| json!([]));
            let entry = gvk(&rt.group, &rt.version, &rt.kind);
            if let Value::Array(a) = list
                && !a.contains(&entry)
            {
                a.push(entry);
            }
        }
    }
}

/// The PATCH body type (not a Go struct with fields, so not among the type schemas).
fn add_patch(schemas: &mut Map<String, Value>) {
    schemas.entry(format!("{META}.Patch")).or_insert_with(|| {
        json!({"description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.", "type": "object"})
    });
}

fn list_schema_name(rt: &ResourceType) -> String {
    let prefix = rt.schema_name.rsplit_once('.').map_or("", |(p, _)| p);
    format!("{prefix}.{}", rt.list_kind)
}

/// List kinds are not in the type schemas; they are `metadata` + `items`.
fn add_lists(types: &[&ResourceType], schemas: &mut Map<String, Value>) {
    for rt in types {
        let name = list_schema_name(rt);
        if schemas.contains_key(&name) {
            continue;
        }
        let list = json!({
            "description": format!("{} is a list of {}.", rt.list_kind, rt.kind),
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."},
                "items": {"type": "array", "description": format!("List of {}.", rt.plural),
                          "items": {"$ref": format!("{V2_REF}{}", rt.schema_name)}},
                "kind": {"type": "string", "description": "Kind is a string value representing the REST resource this object represents."},
                "metadata": {"$ref": format!("{V2_REF}{META}.ListMeta")},
            },
            "x-kubernetes-group-version-kind": [gvk(&rt.group, &rt.version, &rt.list_kind)],
        });
        schemas.insert(name, list);
    }
    let list_meta = format!("{META}.ListMeta");
    if !schemas.contains_key(&list_meta)
        && let Some(d) = schema::builtin().get(&list_meta)
    {
        schemas.insert(list_meta, d.clone());
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    V2,
    V3,
}

/// `CoreV1`, `AppsV1`, `RbacAuthorizationV1`: the operation id infix of a group/version.
fn gv_pascal(group: &str, version: &str) -> String {
    let group = if group.is_empty() { "core" } else { group.trim_end_matches(".k8s.io") };
    let mut out: String = group.split('.').map(pascal).collect();
    out.push_str(&pascal(version));
    out
}

fn pascal(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
}

struct Op<'a> {
    method: &'static str,
    action: &'static str,
    id_verb: &'static str,
    kind: &'a str,
    group: &'a str,
    version: &'a str,
    body: Option<String>,
    response: String,
    params: &'static [&'static str],
}

const WRITE_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation"];
const PATCH_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "force"];
const LIST_PARAMS: &[&str] = &[
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
];
const DELETE_PARAMS: &[&str] = &["dryRun", "gracePeriodSeconds", "propagationPolicy"];

fn resource_paths(rt: &ResourceType, flavor: Flavor) -> Vec<(String, Value)> {
    let base = format!("/{}", gv_path(&rt.group, &rt.version));
    let ns = if rt.namespaced { "/namespaces/{namespace}" } else { "" };
    let scope = if rt.namespaced { "Namespaced" } else { "" };
    let collection = format!("{base}{ns}/{}", rt.plural);
    let item = format!("{collection}/{{name}}");
    let (g, v, kind) = (&*rt.group, &*rt.version, &*rt.kind);
    let obj = rt.schema_name.to_string();
    let op = |method, action, id_verb, body: Option<&str>, response: &str, params| Op {
        method,
        action,
        id_verb,
        kind,
        group: g,
        version: v,
        body: body.map(String::from),
        response: response.to_string(),
        params,
    };
    let list = list_schema_name(rt);
    let status = format!("{META}.Status");
    let mut coll_ops = Vec::new();
    let mut item_ops = Vec::new();
    let has = |verb: &str| rt.supports(verb);
    if has("list") {
        coll_ops.push(op("get", "list", "list", None, &list, LIST_PARAMS));
    }
    if has("create") {
        coll_ops.push(op("post", "post", "create", Some(&obj), &obj, WRITE_PARAMS));
    }
    if has("deletecollection") {
        coll_ops.push(op(
            "delete",
            "deletecollection",
            "deleteCollection",
            None,
            &status,
            DELETE_PARAMS,
        ));
    }
    if has("get") {
        item_ops.push(op("get", "get", "read", None, &obj, &[]));
    }
    if has("update") {
        item_ops.push(op("put", "put", "replace", Some(&obj), &obj, WRITE_PARAMS));
    }
    if has("patch") {
        item_ops.push(op(
            "patch",
            "patch",
            "patch",
            Some(&format!("{META}.Patch")),
            &obj,
            PATCH_PARAMS,
        ));
    }
    if has("delete") {
        item_ops.push(op("delete", "delete", "delete", None, &status, DELETE_PARAMS));
    }
    let id = |o: &Op<'_>, suffix: &str| match o.action {
        "deletecollection" => {
            format!("delete{}Collection{scope}{}{suffix}", gv_pascal(g, v), o.kind)
        }
        _ => format!("{}{}{scope}{}{suffix}", o.id_verb, gv_pascal(g, v), o.kind),
    };
    let mut out = Vec::new();
    let path_params: &[&str] = if rt.namespaced { &["namespace"] } else { &[] };
    if !coll_ops.is_empty() {
        out.push((collection.clone(), path_item(&coll_ops, path_params, flavor, |o| id(o, ""))));
    }
    if !item_ops.is_empty() {
        let params: &[&str] = if rt.namespaced { &["name", "namespace"] } else { &["name"] };
        out.push((item.clone(), path_item(&item_ops, params, flavor, |o| id(o, ""))));
    }
    if rt.namespaced && has("list") {
        let all = format!("{base}/{}", rt.plural);
        let ops = [op("get", "list", "list", None, &list, LIST_PARAMS)];
        let all_id =
            |o: &Op<'_>| format!("{}{}{}ForAllNamespaces", o.id_verb, gv_pascal(g, v), o.kind);
        out.push((all, path_item(&ops, &[], flavor, all_id)));
    }
    for sub in rt.subresources.iter() {
        let sub_kind = rt.sub_kind(sub);
        let path = format!("{item}/{}", sub.name);
        let sub_schema = if sub_kind == kind {
            obj.clone()
        } else {
            crate::protobuf::definition_for(&sub_api_version(rt, sub), sub_kind)
                .unwrap_or_else(|| obj.clone())
        };
        let connect = sub_kind.ends_with("Options");
        let mut ops = Vec::new();
        let sub_op = |method, action, id_verb, body: Option<&str>, params| Op {
            method,
            action,
            id_verb,
            kind: sub_kind,
            group: if sub.group.is_empty() && sub.version.is_empty() { g } else { sub.group },
            version: if sub.version.is_empty() { v } else { sub.version },
            body: body.map(String::from),
            response: if connect { String::new() } else { sub_schema.clone() },
            params,
        };
        for verb in sub.verbs {
            let patch_body = format!("{META}.Patch");
            match (*verb, connect) {
                ("get", false) => ops.push(sub_op("get", "get", "read", None, &[])),
                ("update", false) => {
                    ops.push(sub_op("put", "put", "replace", Some(&sub_schema), WRITE_PARAMS))
                }
                ("patch", false) => {
                    ops.push(sub_op("patch", "patch", "patch", Some(&patch_body), PATCH_PARAMS))
                }
                ("create", false) => {
                    ops.push(sub_op("post", "post", "create", Some(&sub_schema), WRITE_PARAMS))
                }
                ("get", true) => ops.push(sub_op("get", "connect", "Get", None, &[])),
                ("create", true) => ops.push(sub_op("post", "connect", "Post", None, &[])),
                ("update", true) => ops.push(sub_op("put", "connect", "Put", None, &[])),
                ("delete", true) => ops.push(sub_op("delete", "connect", "Delete", None, &[])),
                ("patch", true) => ops.push(sub_op("patch", "connect", "Patch", None, &[])),
                _ => {}
            }
        }
        if connect && sub.name == "proxy" {
            ops.push(sub_op("head", "connect", "Head", None, &[]));
            ops.push(sub_op("options", "connect", "Options", None, &[]));
        }
        if ops.is_empty() {
            continue;
        }
        let params: &[&str] = if rt.namespaced { &["name", "namespace"] } else { &["name"] };
        let sub_id = |o: &Op<'_>| match o.action {
            "connect" => {
                format!("connect{}{}{scope}{kind}{}", gv_pascal(g, v), o.id_verb, pascal(sub.name))
            }
            _ => format!("{}{}{scope}{kind}{}", o.id_verb, gv_pascal(g, v), pascal(sub.name)),
        };
        out.push((path, path_item(&ops, params, flavor, sub_id)));
    }
    out
}

fn sub_api_version(rt: &ResourceType, sub: &crate::registry::Subresource) -> String {
    let (g, v) =
        if sub.version.is_empty() { (&*rt.group, &*rt.version) } else { (sub.group, sub.version) };
    if g.is_empty() { v.to_string() } else { format!("{g}/{v}") }
}

fn param(name: &str, location: &str, flavor: Flavor) -> Value {
    let ty = match name {
        "limit" | "timeoutSeconds" | "gracePeriodSeconds" => "integer",
        "watch" | "allowWatchBookmarks" | "sendInitialEvents" | "force" => "boolean",
        _ => "string",
    };
    let description = match name {
        "fieldValidation" => {
            "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict"
        }
        "dryRun" => {
            "When present, indicates that modifications should not be persisted. Valid values are: - All"
        }
        "fieldManager" => {
            "fieldManager is a name associated with the actor or entity that is making these changes."
        }
        "name" => "name of the resource",
        "namespace" => "object name and auth scope, such as for teams and projects",
        "pretty" => "If 'true', then the output is pretty printed.",
        _ => "",
    };
    let mut p =
        json!({"name": name, "in": location, "description": description, "uniqueItems": true});
    if location == "path" {
        p["required"] = json!(true);
    }
    match flavor {
        Flavor::V2 => p["type"] = json!(ty),
        Flavor::V3 => p["schema"] = json!({"type": ty, "uniqueItems": true}),
    }
    p
}

fn schema_ref(name: &str, flavor: Flavor) -> Value {
    match flavor {
        Flavor::V2 => json!({"$ref": format!("{V2_REF}{name}")}),
        Flavor::V3 => json!({"$ref": format!("{V3_REF}{name}")}),
    }
}

const MEDIA: &[&str] =
    &["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"];
const PATCH_MEDIA: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

fn path_item(
    ops: &[Op<'_>],
    path_params: &[&str],
    flavor: Flavor,
    id: impl Fn(&Op<'_>) -> String,
) -> Value {
    let mut item = Map::new();
    for o in ops {
        let mut params: Vec<Value> = o.params.iter().map(|p| param(p, "query", flavor)).collect();
        let schema = if o.response.is_empty() {
            json!({"type": "string"})
        } else {
            schema_ref(&o.response, flavor)
        };
        let mut op = json!({
            "description": format!("{} {}", o.action, o.kind),
            "operationId": id(o),
            "tags": [gv_tag(o.group, o.version)],
            "x-kubernetes-action": o.action,
            "x-kubernetes-group-version-kind": gvk(o.group, o.version, o.kind),
        });
        let media: &[&str] = if o.method == "patch" { PATCH_MEDIA } else { MEDIA };
        match flavor {
            Flavor::V2 => {
                if let Some(b) = &o.body {
                    params.push(json!({"name": "body", "in": "body", "required": true, "schema": schema_ref(b, flavor)}));
                }
                op["consumes"] = json!(media);
                op["produces"] = json!(MEDIA);
                op["responses"] = json!({"200": {"description": "OK", "schema": schema}, "401": {"description": "Unauthorized"}});
            }
            Flavor::V3 => {
                if let Some(b) = &o.body {
                    let content: Map<String, Value> = media
                        .iter()
                        .map(|m| (m.to_string(), json!({"schema": schema_ref(b, flavor)})))
                        .collect();
                    op["requestBody"] = json!({"content": content, "required": true});
                }
                let content: Map<String, Value> =
                    MEDIA.iter().map(|m| (m.to_string(), json!({"schema": schema}))).collect();
                op["responses"] = json!({"200": {"description": "OK", "content": content}, "401": {"description": "Unauthorized"}});
            }
        }
        op["parameters"] = Value::Array(params);
        item.insert(o.method.to_string(), op);
    }
    let mut common: Vec<Value> = path_params.iter().map(|p| param(p, "path", flavor)).collect();
    common.push(param("pretty", "query", flavor));
    item.insert("parameters".into(), Value::Array(common));
    Value::Object(item)
}

fn gv_tag(group: &str, version: &str) -> String {
    let g = if group.is_empty() {
        "core".to_string()
    } else {
        group.trim_end_matches(".k8s.io").replace('.', "")
    };
    format!("{g}_{version}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_documents_carry_kinds_paths_and_field_validation() {
        let r = Registry::builtin();
        let doc = v3_group_version(r, "apps", "v1").unwrap();
        let dep = &doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(dep["x-kubernetes-group-version-kind"][0]["kind"], "Deployment");
        let schemas = &doc["components"]["schemas"];
        let ports = &schemas["io.k8s.api.core.v1.Container"]["properties"]["ports"];
        assert_eq!(ports["x-kubernetes-list-type"], "map", "server-side apply topology: {ports}");
        assert_eq!(ports["x-kubernetes-list-map-keys"], json!(["containerPort", "protocol"]));
        let selector = &schemas["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"];
        assert_eq!(selector["x-kubernetes-map-type"], "atomic");
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        assert!(
            patch["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "fieldValidation")
        );
        assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
        // Every reference resolves inside the document.
        let mut refs = Vec::new();
        collect_refs_v3(&doc, &mut refs);
        for r in refs {
            assert!(doc["components"]["schemas"].get(&r).is_some(), "dangling {r}");
        }
    }

    fn collect_refs_v3(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                    out.push(r.strip_prefix(V3_REF).expect("v3 ref").to_string());
                }
                m.values().for_each(|c| collect_refs_v3(c, out));
            }
            Value::Array(a) => a.iter().for_each(|c| collect_refs_v3(c, out)),
            _ => {}
        }
    }

    #[test]
    fn index_names_every_group_version() {
        let r = Registry::builtin();
        let idx = v3_index(r);
        let url = idx["paths"]["api/v1"]["serverRelativeURL"].as_str().unwrap();
        assert!(url.starts_with("/openapi/v3/api/v1?hash="));
        assert_eq!(idx["paths"].as_object().unwrap().len(), r.group_versions().len());
    }

    #[test]
    fn v3_operations_match_upstream_when_the_spec_is_present() {
        let Some(dir) = crate::spec_files::path("openapi-v3") else { return };
        let r = Registry::builtin();
        let mut checked = 0;
        for (group, version) in r.group_versions() {
            let file = format!("{}_openapi.json", gv_path(group, version).replace('/', "__"));
            let text =
                std::fs::read_to_string(dir.join(&file)).unwrap_or_else(|_| panic!("{file}"));
            let upstream: Value = serde_json::from_str(&text).unwrap();
            let ours = v3_group_version(r, group, version).unwrap();
            for (path, item) in upstream["paths"].as_object().unwrap() {
                let Some(mine) = ours["paths"].get(path) else { continue };
                for (method, op) in item.as_object().unwrap() {
                    if method == "parameters" {
                        continue;
                    }
                    assert_eq!(mine[method]["operationId"], op["operationId"], "{method} {path}");
                    assert_eq!(
                        mine[method]["x-kubernetes-action"], op["x-kubernetes-action"],
                        "{method} {path}"
                    );
                    assert_eq!(
                        mine[method]["x-kubernetes-group-version-kind"],
                        op["x-kubernetes-group-version-kind"],
                        "{method} {path}"
                    );
                    checked += 1;
                }
            }
            for kind in r.in_group_version(group, version) {
                let want = &upstream["components"]["schemas"][&*kind.schema_name]["x-kubernetes-group-version-kind"];
                let got = &ours["components"]["schemas"][&*kind.schema_name]["x-kubernetes-group-version-kind"];
                assert_eq!(got, want, "{}", kind.schema_name);
            }
        }
        assert!(checked > 500, "only {checked} operations compared");
    }
}
