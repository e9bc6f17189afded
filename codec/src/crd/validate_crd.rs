//! Validation of a CustomResourceDefinition (apiextensions.k8s.io/v1) on create and
//! update, as upstream v1.35's `ValidateCustomResourceDefinition(Update)` with its
//! field paths and messages.
//!
//! Upstream validates the internal form of a v1 CRD, where per-version `schema`,
//! `subresources`, `additionalPrinterColumns` and `selectableFields` that are identical
//! across all versions are moved to the spec's top level; errors in them are therefore
//! reported at `spec.validation.openAPIV3Schema...`, `spec.subresources...` and so on,
//! and only differing ones at `spec.versions[i]...`. This module reproduces that.
//!
//! Covered: metadata (name = plural.group), group, scope, names, versions (names,
//! uniqueness, one storage version, schema required), deprecation warnings, the schema
//! rules (keywords upstream forbids, structural-schema invariants, root `metadata`,
//! embedded resources, int-or-string, list/map types, defaults valid and pruned,
//! `x-kubernetes-validations` shape), subresources, printer columns, selectable fields,
//! conversion, preserveUnknownFields, stored versions, and the update rules (group and
//! plural immutable; scope and kind immutable once Established). Not covered: CEL
//! compilation and cost, webhook URL/service/caBundle details, API-approval
//! annotations of protected groups. A schema nested deeper than
//! [`MAX_DEPTH`](super::structural::MAX_DEPTH) is rejected before any recursive check.

use super::dns1035_label_errors;
use super::prune::prune_value;
use super::regex::Regex;
use super::structural::{MAX_DEPTH, Structural, raw_depth};
use super::validate::validate_value;
use crate::error::FieldError;
use crate::strategy::NameRule;
use crate::validation::{
    dns1123_subdomain_errors, immutable, validate_object_meta, validate_object_meta_update,
};
use serde_json::{Map, Value, json};

type Errs = Vec<FieldError>;

const TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn arr<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn key(p: &str, k: &str) -> String {
    format!("{p}[{k}]")
}

/// Validate a CRD; `old` is the stored object on update.
pub fn validate_crd(crd: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut out = match old {
        None => validate_object_meta(crd, false, NameRule::Subdomain),
        Some(o) => validate_object_meta_update(crd, o),
    };
    let null = Value::Null;
    let spec = crd.get("spec").unwrap_or(&null);
    let name = crd.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let names = spec.get("names").unwrap_or(&null);
    if old.is_none()
        && !name.is_empty()
        && name != format!("{}.{}", s(names, "plural"), s(spec, "group"))
    {
        out.push(FieldError::invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    validate_spec(spec, old.and_then(|o| o.get("spec")), &mut out);
    let accepted = crd.pointer("/status/acceptedNames").unwrap_or(&null);
    validate_names(accepted, "status.acceptedNames", &mut out);
    stored_versions(crd, spec, &mut out);
    if let Some(old) = old {
        update_rules(spec, old, &mut out);
    }
    let pu = spec.get("preserveUnknownFields").and_then(Value::as_bool) == Some(true);
    let old_pu = old.and_then(|o| o.pointer("/spec/preserveUnknownFields")) == Some(&json!(true));
    if pu && !old_pu {
        let msg = "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead";
        out.push(FieldError::invalid("spec.preserveUnknownFields", &json!(true), msg));
    }
    out
}

fn update_rules(spec: &Value, old: &Value, out: &mut Errs) {
    let os = old.get("spec");
    let get = |v: Option<&Value>, p: &str| v.and_then(|x| x.pointer(p)).cloned();
    let established = arr(old.get("status").unwrap_or(&Value::Null), "conditions")
        .iter()
        .any(|c| s(c, "type") == "Established" && s(c, "status") == "True");
    let mut fields = vec![("spec.group", "/group"), ("spec.names.plural", "/names/plural")];
    if established {
        fields.insert(0, ("spec.names.kind", "/names/kind"));
        fields.insert(0, ("spec.scope", "/scope"));
    }
    for (f, p) in fields {
        let (n, o) = (get(Some(spec), p), get(os, p));
        out.extend(immutable(f, n.as_ref(), o.as_ref()));
    }
}

fn stored_versions(crd: &Value, spec: &Value, out: &mut Errs) {
    let Some(stored) = crd.pointer("/status/storedVersions").and_then(Value::as_array) else {
        return;
    };
    if stored.is_empty() {
        return;
    }
    let versions = arr(spec, "versions");
    for v in versions {
        if v.get("storage") == Some(&json!(true)) && !stored.contains(&json!(s(v, "name"))) {
            let msg = format!("must have the storage version {}", s(v, "name"));
            out.push(FieldError::invalid(
                "status.storedVersions",
                &Value::Array(stored.clone()),
                &msg,
            ));
        }
    }
    for (i, sv) in stored.iter().enumerate() {
        let n = sv.as_str().unwrap_or("");
        if !versions.iter().any(|v| s(v, "name") == n) {
            let msg = format!(
                "missing from spec.versions; {n} was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in {n} and removes {n} from status.storedVersions"
            );
            out.push(FieldError::invalid(format!("status.storedVersions[{i}]"), sv, &msg));
        }
    }
}

/// Per-version fields identical across versions are validated once at the top level.
struct Hoisted {
    schema: bool,
    subresources: bool,
    columns: bool,
    selectable: bool,
}

fn all_same(versions: &[Value], k: &str) -> bool {
    let first = versions.first().and_then(|v| v.get(k));
    let norm = |x: Option<&Value>| match x {
        Some(Value::Array(a)) if a.is_empty() => None,
        other => other.cloned(),
    };
    versions.iter().all(|v| norm(v.get(k)) == norm(first))
}

fn validate_spec(spec: &Value, old: Option<&Value>, out: &mut Errs) {
    let group = s(spec, "group");
    if group.is_empty() {
        out.push(FieldError::required("spec.group", ""));
    } else if let errs @ [_, ..] = dns1123_subdomain_errors(group).as_slice() {
        out.push(FieldError::invalid("spec.group", &json!(group), &errs.join(",")));
    } else if !group.contains('.') {
        out.push(FieldError::invalid(
            "spec.group",
            &json!(group),
            "should be a domain with at least one dot",
        ));
    }
    enum_string(spec, "scope", "spec.scope", &["Cluster", "Namespaced"], out);
    let versions = arr(spec, "versions");
    let h = Hoisted {
        schema: all_same(versions, "schema"),
        subresources: all_same(versions, "subresources"),
        columns: all_same(versions, "additionalPrinterColumns"),
        selectable: all_same(versions, "selectableFields"),
    };
    let require_schema = old.is_none_or(|o| arr(o, "versions").iter().all(has_schema));
    let pu = spec.get("preserveUnknownFields") == Some(&json!(true));
    if require_schema && !(h.schema && versions.first().is_some_and(has_schema)) {
        for (i, v) in versions.iter().enumerate().filter(|(_, v)| !has_schema(v)) {
            let _ = v;
            out.push(FieldError::required(
                format!("spec.versions[{i}].schema.openAPIV3Schema"),
                "",
            ));
        }
    }
    let has_defaults = versions.iter().any(|v| {
        v.pointer("/schema/openAPIV3Schema")
            .and_then(|x| Structural::parse(x).ok())
            .is_some_and(|st| st.any_node(&|n| n.default.is_some()))
    });
    if has_defaults && pu {
        out.push(FieldError::invalid(
            "spec.preserveUnknownFields",
            &json!(true),
            "must be false in order to use defaults in the schema",
        ));
    }
    validate_versions(spec, versions, &h, out);
    validate_names_required(spec.get("names").unwrap_or(&Value::Null), out);
    validate_hoisted(versions, &h, out);
    if let Some(c) = spec.get("conversion") {
        if pu && s(c, "strategy") != "None" {
            out.push(FieldError::invalid(
                "spec.conversion.strategy",
                &json!(s(c, "strategy")),
                "must be None if spec.preserveUnknownFields is true",
            ));
        }
        validate_conversion(c, old, out);
    }
}

fn has_schema(v: &Value) -> bool {
    v.pointer("/schema/openAPIV3Schema").is_some_and(|x| !x.is_null())
}

fn enum_string(v: &Value, k: &str, path: &str, ok: &[&str], out: &mut Errs) {
    let val = s(v, k);
    if val.is_empty() {
        out.push(FieldError::required(path, ""));
    } else if !ok.contains(&val) {
        out.push(FieldError::not_supported(path, &json!(val), ok));
    }
}

fn validate_versions(spec: &Value, versions: &[Value], h: &Hoisted, out: &mut Errs) {
    let mut storage = 0;
    let mut seen: Vec<&str> = Vec::new();
    let mut unique = true;
    for (i, v) in versions.iter().enumerate() {
        let n = s(v, "name");
        storage += usize::from(v.get("storage") == Some(&json!(true)));
        unique &= !seen.contains(&n);
        seen.push(n);
        let errs = dns1035_label_errors(n);
        if !errs.is_empty() {
            out.push(FieldError::invalid(
                format!("spec.versions[{i}].name"),
                &json!(n),
                &errs.join(","),
            ));
        }
        validate_version(v, i, h, spec, out);
    }
    let shown = Value::Array(versions.to_vec());
    if !unique {
        out.push(FieldError::invalid("spec.versions", &shown, "must contain unique version names"));
    }
    if storage != 1 {
        out.push(FieldError::invalid(
            "spec.versions",
            &shown,
            "must have exactly one version marked as storage version",
        ));
    }
}

fn status_enabled(v: &Value) -> bool {
    v.pointer("/subresources/status").is_some_and(|x| !x.is_null())
}

fn validate_version(v: &Value, i: usize, h: &Hoisted, spec: &Value, out: &mut Errs) {
    let p = format!("spec.versions[{i}]");
    deprecation(v, &p, out);
    if !h.schema
        && let Some(sch) = v.pointer("/schema/openAPIV3Schema").filter(|x| !x.is_null())
    {
        let status = if h.subresources {
            arr(spec, "versions").iter().any(status_enabled)
        } else {
            status_enabled(v)
        };
        validate_schema(sch, &format!("{p}.schema.openAPIV3Schema"), status, out);
    }
    if !h.subresources {
        subresources(v.get("subresources"), &format!("{p}.subresources"), out);
    }
    if !h.columns {
        columns(arr(v, "additionalPrinterColumns"), &format!("{p}.additionalPrinterColumns"), out);
    }
    if !h.selectable {
        selectable(v, &format!("{p}.selectableFields"), out);
    }
}

fn validate_hoisted(versions: &[Value], h: &Hoisted, out: &mut Errs) {
    let Some(first) = versions.first() else { return };
    if h.schema
        && let Some(sch) = first.pointer("/schema/openAPIV3Schema").filter(|x| !x.is_null())
    {
        validate_schema(
            sch,
            "spec.validation.openAPIV3Schema",
            versions.iter().any(status_enabled),
            out,
        );
    }
    if h.subresources {
        subresources(first.get("subresources"), "spec.subresources", out);
    }
    if h.columns {
        columns(arr(first, "additionalPrinterColumns"), "spec.additionalPrinterColumns", out);
    }
    if h.selectable {
        selectable(first, "spec.selectableFields", out);
    }
}

fn deprecation(v: &Value, p: &str, out: &mut Errs) {
    let Some(w) = v.get("deprecationWarning").filter(|w| !w.is_null()) else { return };
    let ws = w.as_str().unwrap_or("");
    let path = format!("{p}.deprecationWarning");
    let mut errs = Vec::new();
    if v.get("deprecated") != Some(&json!(true)) {
        errs.push("can only be set for deprecated versions".to_string());
    } else {
        if ws.len() > 256 {
            errs.push("must be <= 256 characters long".to_string());
        }
        if ws.is_empty() {
            errs.push("must not be an empty string".to_string());
        }
        if let Some((i, _)) = ws.char_indices().find(|(_, c)| c.is_control()) {
            errs.push(format!("must only contain printable UTF-8 characters; non-printable character found at index {i}"));
        }
    }
    for e in errs {
        out.push(FieldError::invalid(&path, w, &e));
    }
}

fn validate_names_required(names: &Value, out: &mut Errs) {
    for f in ["plural", "singular", "kind", "listKind"] {
        if s(names, f).is_empty() {
            out.push(FieldError::required(format!("spec.names.{f}"), ""));
        }
    }
    validate_names(names, "spec.names", out);
}

fn validate_names(names: &Value, p: &str, out: &mut Errs) {
    for (f, mixed) in [("plural", false), ("singular", false), ("kind", true), ("listKind", true)] {
        let v = s(names, f);
        let errs = dns1035_label_errors(&if mixed { v.to_lowercase() } else { v.to_string() });
        if !v.is_empty() && !errs.is_empty() {
            let msg = if mixed {
                format!("may have mixed case, but should otherwise match: {}", errs.join(","))
            } else {
                errs.join(",")
            };
            out.push(FieldError::invalid(format!("{p}.{f}"), &json!(v), &msg));
        }
    }
    for (i, sn) in arr(names, "shortNames").iter().enumerate() {
        let errs = dns1035_label_errors(sn.as_str().unwrap_or(""));
        if !errs.is_empty() {
            out.push(FieldError::invalid(format!("{p}.shortNames[{i}]"), sn, &errs.join(",")));
        }
    }
    let kind = s(names, "kind");
    if !kind.is_empty() && kind == s(names, "listKind") {
        out.push(FieldError::invalid(
            format!("{p}.listKind"),
            &json!(kind),
            "kind and listKind may not be the same",
        ));
    }
    for (i, c) in arr(names, "categories").iter().enumerate() {
        let errs = dns1035_label_errors(c.as_str().unwrap_or(""));
        if !errs.is_empty() {
            out.push(FieldError::invalid(format!("{p}.categories[{i}]"), c, &errs.join(",")));
        }
    }
}

// ---- subresources, printer columns, selectable fields, conversion ----

fn simple_json_path(v: &str, p: &str) -> Option<FieldError> {
    if v.is_empty() {
        Some(FieldError::invalid(p, &json!(v), "must not be empty"))
    } else if !v.starts_with('.') {
        Some(FieldError::invalid(p, &json!(v), "must be a simple json path starting with ."))
    } else {
        None
    }
}

fn subresources(sub: Option<&Value>, p: &str, out: &mut Errs) {
    let Some(scale) = sub.and_then(|x| x.get("scale")).filter(|x| !x.is_null()) else { return };
    for (f, under, what) in [
        ("specReplicasPath", &[".spec."][..], "should be a json path under .spec"),
        ("statusReplicasPath", &[".status."][..], "should be a json path under .status"),
    ] {
        let v = s(scale, f);
        let path = format!("{p}.scale.{f}");
        if v.is_empty() {
            out.push(FieldError::required(path, ""));
        } else if let Some(e) = simple_json_path(v, &path) {
            out.push(e);
        } else if !under.iter().any(|u| v.starts_with(u)) {
            out.push(FieldError::invalid(path, &json!(v), what));
        }
    }
    let ls = s(scale, "labelSelectorPath");
    let path = format!("{p}.scale.labelSelectorPath");
    if !ls.is_empty() {
        if let Some(e) = simple_json_path(ls, &path) {
            out.push(e);
        } else if !ls.starts_with(".spec.") && !ls.starts_with(".status.") {
            out.push(FieldError::invalid(
                path,
                &json!(ls),
                "should be a json path under either .spec or .status",
            ));
        }
    }
}

fn columns(cols: &[Value], p: &str, out: &mut Errs) {
    const TYPES: &str = "boolean,date,integer,number,string";
    const FORMATS: &str = "byte,date,date-time,double,float,int32,int64,password";
    for (i, c) in cols.iter().enumerate() {
        let at = |f: &str| format!("{p}[{i}].{f}");
        if s(c, "name").is_empty() {
            out.push(FieldError::required(at("name"), ""));
        }
        let t = s(c, "type");
        if t.is_empty() {
            out.push(FieldError::required(at("type"), &format!("must be one of {TYPES}")));
        } else if !TYPES.split(',').any(|x| x == t) {
            out.push(FieldError::invalid(
                at("type"),
                &json!(t),
                &format!("must be one of {TYPES}"),
            ));
        }
        let f = s(c, "format");
        if !f.is_empty() && !FORMATS.split(',').any(|x| x == f) {
            out.push(FieldError::invalid(
                at("format"),
                &json!(f),
                &format!("must be one of {FORMATS}"),
            ));
        }
        let jp = s(c, "jsonPath");
        if jp.is_empty() {
            out.push(FieldError::required(at("JSONPath"), ""));
        } else if let Some(e) = simple_json_path(jp, &at("JSONPath")) {
            out.push(e);
        }
    }
}

fn selectable(v: &Value, p: &str, out: &mut Errs) {
    let fields = arr(v, "selectableFields");
    if fields.is_empty() {
        return;
    }
    let Some(schema) = v.pointer("/schema/openAPIV3Schema").and_then(|x| Structural::parse(x).ok())
    else {
        let msg = "may only be set when `version.schema.openAPIV3Schema` is not included";
        out.push(FieldError::invalid(p, &json!(""), msg));
        return;
    };
    let mut seen: Vec<String> = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        let path = format!("{p}[{i}].jsonPath");
        let jp = s(f, "jsonPath");
        if jp.is_empty() {
            out.push(FieldError::required(path, ""));
            continue;
        }
        let Some((segs, node)) = resolve(&schema, jp) else {
            let msg = format!("is an invalid path: {jp} does not refer to a field in the schema");
            out.push(FieldError::invalid(path, &json!(jp), &msg));
            continue;
        };
        if segs.first().map(String::as_str) == Some("metadata") {
            out.push(FieldError::invalid(
                &path,
                &json!(jp),
                "must not point to fields in metadata",
            ));
        }
        if !matches!(node.type_.as_str(), "string" | "boolean" | "integer") {
            let msg = "must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed.";
            out.push(FieldError::invalid(&path, &json!(jp), msg));
        }
        let joined = segs.join(".");
        if seen.contains(&joined) {
            out.push(FieldError::duplicate(path, &json!(jp)));
        } else {
            seen.push(joined);
        }
    }
    if seen.len() > 8 {
        let msg = format!("{p}: Too many: {}: must have at most 8 items", seen.len());
        out.push(FieldError {
            kind: crate::FieldErrorType::TooMany,
            field: p.to_string(),
            message: msg,
        });
    }
}

/// A `.a.b` path through properties; the segments and the schema it points to.
fn resolve<'a>(schema: &'a Structural, jp: &str) -> Option<(Vec<String>, &'a Structural)> {
    let rest = jp.strip_prefix('.')?;
    let mut node = schema;
    let mut segs = Vec::new();
    for seg in rest.split('.') {
        if seg.is_empty() || seg.contains('[') {
            return None;
        }
        node = node.child(seg)?;
        segs.push(seg.to_string());
    }
    Some((segs, node))
}

fn validate_conversion(c: &Value, old: Option<&Value>, out: &mut Errs) {
    let p = "spec.conversion";
    enum_string(c, "strategy", &format!("{p}.strategy"), &["None", "Webhook"], out);
    let cc = c.get("webhook").and_then(|w| w.get("clientConfig")).filter(|x| !x.is_null());
    let versions = c.get("webhook").map_or(&[][..], |w| arr(w, "conversionReviewVersions"));
    if s(c, "strategy") != "Webhook" {
        if cc.is_some() {
            out.push(FieldError::forbidden(
                format!("{p}.webhookClientConfig"),
                "should not be set when strategy is not set to Webhook",
            ));
        }
        if !versions.is_empty() {
            out.push(FieldError::forbidden(
                format!("{p}.conversionReviewVersions"),
                "should not be set when strategy is not set to Webhook",
            ));
        }
        return;
    }
    match cc {
        None => out.push(FieldError::required(
            format!("{p}.webhookClientConfig"),
            "required when strategy is set to Webhook",
        )),
        Some(cc) if cc.get("url").is_some() == cc.get("service").is_some() => {
            out.push(FieldError::required(
                format!("{p}.webhookClientConfig"),
                "exactly one of url or service is required",
            ));
        }
        Some(_) => {}
    }
    let old_versions = old.and_then(|o| o.pointer("/conversion/webhook/conversionReviewVersions"));
    let require_known = old_versions.and_then(Value::as_array).is_none_or(|a| {
        a.is_empty() || a.iter().any(|v| matches!(v.as_str(), Some("v1" | "v1beta1")))
    });
    review_versions(versions, require_known, out);
}

fn review_versions(versions: &[Value], require_known: bool, out: &mut Errs) {
    let p = "spec.conversion.conversionReviewVersions";
    if versions.is_empty() {
        out.push(FieldError::required(p, ""));
        return;
    }
    let mut seen = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        let n = v.as_str().unwrap_or("");
        if seen.contains(&n) {
            out.push(FieldError::invalid(format!("{p}[{i}]"), v, "duplicate version"));
            continue;
        }
        seen.push(n);
        for e in dns1035_label_errors(n) {
            out.push(FieldError::invalid(format!("{p}[{i}]"), v, &e));
        }
    }
    if require_known && !seen.iter().any(|v| matches!(*v, "v1" | "v1beta1")) {
        out.push(FieldError::invalid(
            p,
            &Value::Array(versions.to_vec()),
            "must include at least one of v1, v1beta1",
        ));
    }
}

// ---- the schema ----

const ROOT_ALLOWED_WITH_STATUS: &[&str] = &[
    "description",
    "type",
    "format",
    "title",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "required",
    "items",
    "properties",
    "externalDocs",
    "example",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
];

fn validate_schema(raw: &Value, p: &str, status: bool, out: &mut Errs) {
    if raw_depth(raw) > MAX_DEPTH {
        let msg = format!("must not nest deeper than {MAX_DEPTH} levels");
        out.push(FieldError::invalid(p, &json!(""), &msg));
        return;
    }
    let Some(m) = raw.as_object() else {
        out.push(FieldError::invalid(p, raw, "must be an object"));
        return;
    };
    if status {
        root_with_status(m, raw, p, out);
    }
    if m.get("nullable") == Some(&json!(true)) {
        out.push(FieldError::forbidden(
            format!("{p}.nullable"),
            "nullable cannot be true at the root",
        ));
    }
    match Structural::parse(raw) {
        Ok(st) => {
            let mut errs = structural_errors(raw, p);
            if errs.is_empty() {
                default_errors(&st, p, true, false, out);
            }
            errs.sort_by(|a, b| a.message.cmp(&b.message));
            out.extend(errs);
        }
        Err(e) => out.push(FieldError::invalid(p, &json!(""), &e)),
    }
    let ctx = Ctx { defaults: None, in_meta: false };
    openapi_node(raw, p, &ctx, true, out);
}

fn root_with_status(m: &Map<String, Value>, raw: &Value, p: &str, out: &mut Errs) {
    for (k, v) in m {
        let zero = matches!(v, Value::Null | Value::Bool(false))
            || v.as_str() == Some("")
            || v.as_array().is_some_and(Vec::is_empty)
            || v.as_object().is_some_and(Map::is_empty);
        if zero {
            continue;
        }
        if k == "type" {
            if v != "object" {
                let msg = "only \"object\" is allowed as the type at the root of the schema if the status subresource is enabled";
                out.push(FieldError::invalid(format!("{p}.type"), v, msg));
                return;
            }
            continue;
        }
        if !ROOT_ALLOWED_WITH_STATUS.contains(&k.as_str()) {
            let msg = "only [Description Type Format Title Maximum ExclusiveMaximum Minimum ExclusiveMinimum MaxLength MinLength Pattern MaxItems MinItems UniqueItems MultipleOf Required Items Properties ExternalDocs Example XPreserveUnknownFields XValidations] fields are allowed at the root of the schema if the status subresource is enabled";
            out.push(FieldError::invalid(p, raw, msg));
            return;
        }
    }
}

#[derive(Clone)]
struct Ctx {
    /// `Some(reason)` when defaults are forbidden here.
    defaults: Option<String>,
    in_meta: bool,
}

fn flag(m: &Value, k: &str) -> bool {
    m.get(k).and_then(Value::as_bool).unwrap_or(false)
}

/// upstream's per-node OpenAPI checks (keywords, list/map types, validations shape).
fn openapi_node(v: &Value, p: &str, ctx: &Ctx, root: bool, out: &mut Errs) {
    let Some(m) = v.as_object() else { return };
    keyword_rules(v, m, p, ctx, out);
    if flag(v, "uniqueItems") {
        out.push(FieldError::forbidden(
            format!("{p}.uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    let props = m.get("properties").and_then(Value::as_object);
    if let Some(ap) = m.get("additionalProperties") {
        if props.is_some_and(|x| !x.is_empty()) && (ap == &json!(false) || ap.is_object()) {
            out.push(FieldError::forbidden(
                format!("{p}.additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        let mut sub = ctx.clone();
        if ctx.in_meta {
            sub.defaults = Some("inside additionalProperties applying to object metadata".into());
        }
        openapi_node(ap, &format!("{p}.additionalProperties"), &sub, false, out);
    }
    for (k, x) in props.into_iter().flatten() {
        let mut sub = ctx.clone();
        if (root || flag(v, "x-kubernetes-embedded-resource"))
            && matches!(k.as_str(), "metadata" | "kind" | "apiVersion")
        {
            sub.in_meta = true;
            if root {
                sub.defaults = Some(format!("in top-level {k}"));
            }
        }
        openapi_node(x, &key(&format!("{p}.properties"), k), &sub, false, out);
    }
    if let Some(n) = m.get("not") {
        openapi_node(n, &format!("{p}.not"), ctx, false, out);
    }
    for c in ["allOf", "oneOf", "anyOf"] {
        for (i, x) in arr(v, c).iter().enumerate() {
            openapi_node(x, &format!("{p}.{c}[{i}]"), ctx, false, out);
        }
    }
    if let Some(items) = m.get("items") {
        match items {
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    openapi_node(x, &format!("{p}.items[{i}]"), ctx, false, out);
                }
            }
            x => openapi_node(x, &format!("{p}.items"), ctx, false, out),
        }
    }
    if m.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(false)) {
        out.push(FieldError::invalid(
            format!("{p}.x-kubernetes-preserve-unknown-fields"),
            &json!(false),
            "must be true or undefined",
        ));
    }
    list_and_map_types(v, p, out);
    validation_rules(v, p, out);
}

fn keyword_rules(v: &Value, m: &Map<String, Value>, p: &str, ctx: &Ctx, out: &mut Errs) {
    let t = s(v, "type");
    if !t.is_empty() && !TYPES.contains(&t) {
        out.push(FieldError::not_supported(format!("{p}.type"), &json!(t), &TYPES));
    }
    if let (Some(_), Some(reason)) = (m.get("default"), &ctx.defaults) {
        out.push(FieldError::forbidden(
            format!("{p}.default"),
            &format!("must not be set {reason}"),
        ));
    }
    let forbidden = [
        ("id", "id is not supported"),
        ("additionalItems", "additionalItems is not supported"),
        ("patternProperties", "patternProperties is not supported"),
        ("definitions", "definitions is not supported"),
        ("dependencies", "dependencies is not supported"),
        ("$ref", "$ref is not supported"),
    ];
    for (k, msg) in forbidden {
        let set = m.get(k).is_some_and(|x| {
            !x.is_null() && x.as_str() != Some("") && x.as_object().is_none_or(|o| !o.is_empty())
        });
        if set {
            out.push(FieldError::forbidden(format!("{p}.{k}"), msg));
        }
    }
    if t == "null" {
        out.push(FieldError::forbidden(
            format!("{p}.type"),
            "type cannot be set to null, use nullable as an alternative",
        ));
    }
    if m.get("items").is_some_and(Value::is_array) {
        out.push(FieldError::forbidden(
            format!("{p}.items"),
            "items must be a schema object and not an array",
        ));
    }
    if ctx.in_meta && flag(v, "x-kubernetes-embedded-resource") {
        out.push(FieldError::forbidden(
            format!("{p}.x-kubernetes-embedded-resource"),
            "must not be used inside of resource meta",
        ));
    }
}

fn type_must_be(v: &Value, p: &str, want: &str, why: &str, out: &mut Errs) {
    let t = s(v, "type");
    let msg = format!("must be {want} if {why} is specified");
    if t.is_empty() {
        out.push(FieldError::required(format!("{p}.type"), &msg));
    } else if t != want {
        out.push(FieldError::invalid(format!("{p}.type"), &json!(t), &msg));
    }
}

fn list_and_map_types(v: &Value, p: &str, out: &mut Errs) {
    let map_type = v.get("x-kubernetes-map-type").and_then(Value::as_str);
    let list_type = v.get("x-kubernetes-list-type").and_then(Value::as_str);
    let keys = arr(v, "x-kubernetes-list-map-keys");
    let items = v.get("items").filter(|i| i.is_object());
    if let Some(mt) = map_type {
        type_must_be(v, p, "object", "x-kubernetes-map-type", out);
        if mt != "atomic" && mt != "granular" {
            out.push(FieldError::not_supported(
                format!("{p}.x-kubernetes-map-type"),
                &json!(mt),
                &["atomic", "granular"],
            ));
        }
    }
    if let Some(lt) = list_type {
        if s(v, "type") != "array" {
            type_must_be(v, p, "array", "x-kubernetes-list-type", out);
        } else if let (true, Some(is)) = (lt == "set", items) {
            set_items(is, p, out);
        }
        if !["atomic", "set", "map"].contains(&lt) {
            out.push(FieldError::not_supported(
                format!("{p}.x-kubernetes-list-type"),
                &json!(lt),
                &["atomic", "set", "map"],
            ));
        }
    }
    if !keys.is_empty() {
        let msg = "must be map if x-kubernetes-list-map-keys is non-empty";
        match list_type {
            None => out.push(FieldError::required(format!("{p}.x-kubernetes-list-type"), msg)),
            Some(lt) if lt != "map" => out.push(FieldError::invalid(
                format!("{p}.x-kubernetes-list-type"),
                &json!(lt),
                msg,
            )),
            _ => {}
        }
    }
    if list_type == Some("map") {
        list_map_rules(v, p, keys, out);
    }
    if let (Some(lt @ ("set" | "map")), Some(is)) = (list_type, items) {
        if flag(is, "nullable") {
            out.push(FieldError::forbidden(
                format!("{p}.items.nullable"),
                &format!("cannot be nullable when x-kubernetes-list-type is {lt}"),
            ));
        }
        if lt == "map" {
            map_key_defaults(is, p, keys, out);
        }
    }
}

fn set_items(is: &Value, p: &str, out: &mut Errs) {
    let msg = "must be atomic as item of a list with x-kubernetes-list-type=set";
    let ilt = is.get("x-kubernetes-list-type");
    match s(is, "type") {
        "array" if ilt.is_some_and(|x| x != "atomic") => {
            out.push(FieldError::invalid(
                format!("{p}.items.x-kubernetes-list-type"),
                ilt.unwrap_or(&Value::Null),
                msg,
            ));
        }
        "object" if s(is, "x-kubernetes-map-type") != "atomic" => {
            out.push(FieldError::invalid(
                format!("{p}.items.x-kubernetes-map-type"),
                ilt.unwrap_or(&Value::Null),
                msg,
            ));
        }
        _ => {}
    }
}

fn list_map_rules(v: &Value, p: &str, keys: &[Value], out: &mut Errs) {
    if keys.is_empty() {
        out.push(FieldError::required(
            format!("{p}.x-kubernetes-list-map-keys"),
            "must not be empty if x-kubernetes-list-type is map",
        ));
    }
    let Some(items) = v.get("items") else {
        out.push(FieldError::required(
            format!("{p}.items"),
            "must have a schema if x-kubernetes-list-type is map",
        ));
        return;
    };
    if items.is_array() {
        out.push(FieldError::invalid(
            format!("{p}.items"),
            items,
            "must only have a single schema if x-kubernetes-list-type is map",
        ));
        return;
    }
    let it = s(items, "type");
    if it != "object" {
        out.push(FieldError::invalid(
            format!("{p}.items.type"),
            &json!(it),
            "must be object if parent array's x-kubernetes-list-type is map",
        ));
        return;
    }
    let all = Value::Array(keys.to_vec());
    for (i, k) in keys.iter().enumerate() {
        let k = k.as_str().unwrap_or("");
        match items.pointer(&format!("/properties/{}", k.replace('~', "~0").replace('/', "~1"))) {
            Some(prop) if matches!(s(prop, "type"), "array" | "object") => {
                let path = format!("{}.type", key(&format!("{p}.items.properties"), k));
                out.push(FieldError::invalid(
                    path,
                    &json!(it),
                    "must be a scalar type if parent array's x-kubernetes-list-type is map",
                ));
            }
            Some(_) => {}
            None => out.push(FieldError::invalid(
                format!("{p}.x-kubernetes-list-map-keys"),
                &all,
                "entries must all be names of item properties",
            )),
        }
        if keys[..i].iter().any(|x| x.as_str() == Some(k)) {
            out.push(FieldError::invalid(
                format!("{p}.x-kubernetes-list-map-keys"),
                &all,
                "must not contain duplicate entries",
            ));
        }
    }
}

fn map_key_defaults(is: &Value, p: &str, keys: &[Value], out: &mut Errs) {
    let required = arr(is, "required");
    for k in keys.iter().filter_map(Value::as_str) {
        let Some(prop) = is.get("properties").and_then(|x| x.get(k)) else { continue };
        let base = key(&format!("{p}.items.properties"), k);
        if !required.iter().any(|r| r == k) && prop.get("default").is_none() {
            out.push(FieldError::required(format!("{base}.default"), "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property"));
        }
        if flag(prop, "nullable") {
            out.push(FieldError::forbidden(
                format!("{base}.nullable"),
                "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
            ));
        }
    }
}

fn validation_rules(v: &Value, p: &str, out: &mut Errs) {
    const REASONS: [&str; 4] =
        ["FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"];
    let nl = |x: &str| x.contains(['\n', '\r']);
    for (i, r) in arr(v, "x-kubernetes-validations").iter().enumerate() {
        let at = |f: &str| format!("{p}.x-kubernetes-validations[{i}].{f}");
        let (rule, msg) = (s(r, "rule"), s(r, "message"));
        let (tr, tm) = (rule.trim(), msg.trim());
        if tr.is_empty() {
            out.push(FieldError::required(at("rule"), "rule is not specified"));
        } else if !msg.is_empty() && tm.is_empty() {
            out.push(FieldError::invalid(
                at("message"),
                &json!(msg),
                "must be non-empty if specified",
            ));
        } else if nl(tm) {
            out.push(FieldError::invalid(
                at("message"),
                &json!(msg),
                "must not contain line breaks",
            ));
        } else if nl(tr) && tm.is_empty() {
            out.push(FieldError::required(
                at("message"),
                "message must be specified if rule contains line breaks",
            ));
        }
        let me = s(r, "messageExpression");
        if !me.is_empty() && me.trim().is_empty() {
            out.push(FieldError::required(
                at("messageExpression"),
                "messageExpression must be non-empty if specified",
            ));
        }
        if let Some(reason) = r.get("reason").and_then(Value::as_str)
            && !REASONS.contains(&reason)
        {
            out.push(FieldError::not_supported(at("reason"), &json!(reason), &REASONS));
        }
        let fp = s(r, "fieldPath");
        if !fp.is_empty() && fp.trim().is_empty() {
            out.push(FieldError::invalid(
                at("fieldPath"),
                &json!(fp),
                "must be non-empty if specified",
            ));
        }
        if nl(fp) {
            out.push(FieldError::invalid(
                at("fieldPath"),
                &json!(fp),
                "must not contain line breaks",
            ));
        }
    }
}

// ---- structural-schema invariants (upstream's ValidateStructural) ----

#[derive(Clone, Copy, PartialEq)]
enum Level {
    Root,
    Item,
    Field,
}

fn structural_errors(raw: &Value, p: &str) -> Errs {
    let mut out = Vec::new();
    invariants(raw, Level::Root, p, &mut out);
    completeness(raw, p, &mut out);
    out
}

fn is_int_or_string_any_of(any_of: &[Value]) -> bool {
    any_of.len() == 2
        && any_of[0] == json!({"type": "integer"})
        && any_of[1] == json!({"type": "string"})
}

fn invariants(v: &Value, lvl: Level, p: &str, out: &mut Errs) {
    let Some(m) = v.as_object() else { return };
    let t = s(v, "type");
    if t == "array" && !m.get("items").is_some_and(Value::is_object) {
        out.push(FieldError::required(format!("{p}.items"), "must be specified"));
    }
    if let Some(items) = m.get("items").filter(|i| i.is_object()) {
        invariants(items, Level::Item, &format!("{p}.items"), out);
    }
    let props = m.get("properties").and_then(Value::as_object);
    for (k, x) in props.into_iter().flatten() {
        invariants(x, Level::Field, &key(&format!("{p}.properties"), k), out);
    }
    if let Some(ap) = m.get("additionalProperties") {
        if lvl == Level::Root {
            out.push(FieldError::forbidden(
                format!("{p}.additionalProperties"),
                "must not be used at the root",
            ));
        }
        invariants(ap, Level::Field, &format!("{p}.additionalProperties"), out);
    }
    let (ios, pu, emb) = (
        flag(v, "x-kubernetes-int-or-string"),
        flag(v, "x-kubernetes-preserve-unknown-fields"),
        flag(v, "x-kubernetes-embedded-resource"),
    );
    if ios && pu {
        out.push(FieldError::invalid(
            format!("{p}.x-kubernetes-preserve-unknown-fields"),
            &json!(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if ios && emb {
        out.push(FieldError::invalid(
            format!("{p}.x-kubernetes-embedded-resource"),
            &json!(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    value_validation(v, is_int_or_string_any_of(arr(v, "anyOf")), p, out);
    type_rules(v, lvl, p, out);
    let check_meta = lvl == Level::Root || emb;
    for k in ["kind", "apiVersion"] {
        if let Some(x) = props.and_then(|ps| ps.get(k)).filter(|_| check_meta)
            && s(x, "type") != "string"
        {
            let path = format!("{}.type", key(&format!("{p}.properties"), k));
            out.push(FieldError::invalid(path, &json!(s(x, "type")), "must be string"));
        }
    }
    if let Some(meta) = props.and_then(|ps| ps.get("metadata")) {
        metadata_rules(meta, check_meta, lvl, &key(&format!("{p}.properties"), "metadata"), out);
    }
    if emb && !pu && props.is_none_or(Map::is_empty) {
        out.push(FieldError::required(format!("{p}.properties"), "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields"));
    }
}

fn type_rules(v: &Value, lvl: Level, p: &str, out: &mut Errs) {
    let t = s(v, "type");
    let emb = flag(v, "x-kubernetes-embedded-resource");
    if emb && t != "object" {
        let msg = "must be object if x-kubernetes-embedded-resource is true";
        if t.is_empty() {
            out.push(FieldError::required(format!("{p}.type"), msg));
        } else {
            out.push(FieldError::invalid(format!("{p}.type"), &json!(t), msg));
        }
    } else if t.is_empty()
        && !flag(v, "x-kubernetes-int-or-string")
        && !flag(v, "x-kubernetes-preserve-unknown-fields")
    {
        let msg = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        out.push(FieldError::required(format!("{p}.type"), msg));
    }
    if emb && v.get("additionalProperties").is_some() {
        out.push(FieldError::forbidden(
            format!("{p}.additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !t.is_empty() && t != "object" {
        out.push(FieldError::invalid(format!("{p}.type"), &json!(t), "must be object at the root"));
    }
}

fn metadata_rules(meta: &Value, check: bool, lvl: Level, p: &str, out: &mut Errs) {
    if check && s(meta, "type") != "object" {
        out.push(FieldError::invalid(
            format!("{p}.type"),
            &json!(s(meta, "type")),
            "must be object",
        ));
    }
    if lvl != Level::Root {
        return;
    }
    let Some(m) = meta.as_object() else { return };
    let ignored = ["type", "default", "example", "externalDocs", "$schema"];
    let props_ok = |x: &Value| {
        x.as_object()
            .is_some_and(|o| o.is_empty() || o.keys().all(|k| k == "name" || k == "generateName"))
    };
    let extra = m.iter().any(|(k, x)| {
        let empty = x.is_null()
            || x == &json!(false)
            || x.as_str() == Some("")
            || x.as_array().is_some_and(Vec::is_empty);
        let allowed = ignored.contains(&k.as_str()) || empty || (k == "properties" && props_ok(x));
        !allowed
    });
    if extra {
        out.push(FieldError::forbidden(p, "must not specify anything other than name and generateName, but metadata is implicitly specified"));
    }
}

/// Checks of allOf/anyOf/oneOf/not at a node.
fn value_validation(v: &Value, skip_any_of: bool, p: &str, out: &mut Errs) {
    if !skip_any_of {
        for (i, x) in arr(v, "anyOf").iter().enumerate() {
            nested(x, false, &format!("{p}.anyOf[{i}]"), out);
        }
    }
    for (i, x) in arr(v, "allOf").iter().enumerate() {
        let skip = i == 0 && is_int_or_string_any_of(arr(x, "anyOf"));
        nested(x, skip, &format!("{p}.allOf[{i}]"), out);
    }
    for (i, x) in arr(v, "oneOf").iter().enumerate() {
        nested(x, false, &format!("{p}.oneOf[{i}]"), out);
    }
    if let Some(n) = v.get("not") {
        nested(n, false, &format!("{p}.not"), out);
    }
    if let Some(pat) = v.get("pattern").and_then(Value::as_str).filter(|x| !x.is_empty())
        && let Err(e) = Regex::new(pat)
    {
        let msg = format!("must be a valid regular expression, but isn't: {e}");
        out.push(FieldError::invalid(format!("{p}.pattern"), &json!(pat), &msg));
    }
}

fn nested(v: &Value, skip_any_of: bool, p: &str, out: &mut Errs) {
    let Some(m) = v.as_object() else { return };
    value_validation(v, skip_any_of, p, out);
    if let Some(items) = m.get("items") {
        nested(items, false, &format!("{p}.items"), out);
    }
    for (k, x) in m.get("properties").and_then(Value::as_object).into_iter().flatten() {
        nested(x, false, &key(&format!("{p}.properties"), k), out);
    }
    let present = |k: &str| {
        m.get(k).is_some_and(|x| {
            !x.is_null()
                && x != &json!(false)
                && x.as_str() != Some("")
                && x.as_array().is_none_or(|a| !a.is_empty())
        })
    };
    let rules = [
        ("type", "must be empty to be structural"),
        ("additionalProperties", "must be undefined to be structural"),
        ("default", "must be undefined to be structural"),
        ("title", "must be empty to be structural"),
        ("description", "must be empty to be structural"),
        ("nullable", "must be false to be structural"),
        ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
        ("x-kubernetes-embedded-resource", "must be false to be structural"),
        ("x-kubernetes-int-or-string", "must be false to be structural"),
        ("x-kubernetes-list-map-keys", "must be empty to be structural"),
        ("x-kubernetes-list-type", "must be undefined to be structural"),
        ("x-kubernetes-map-type", "must be undefined to be structural"),
        ("x-kubernetes-validations", "must be empty to be structural"),
    ];
    for (k, msg) in rules {
        let set = if k == "default" || k == "additionalProperties" {
            m.contains_key(k)
        } else {
            present(k)
        };
        if set {
            out.push(FieldError::forbidden(format!("{p}.{k}"), msg));
        }
    }
    if m.get("properties").and_then(|x| x.get("metadata")).is_some() {
        out.push(FieldError::forbidden(
            key(&format!("{p}.properties"), "metadata"),
            "must not be specified in a nested context",
        ));
    }
}

/// Properties and items value validations name must exist in the structural schema.
fn completeness(root: &Value, p: &str, out: &mut Errs) {
    combinators_complete(root, root, p, p, out);
}

fn combinators_complete(vv: &Value, s_node: &Value, sp: &str, vp: &str, out: &mut Errs) {
    if let Some(n) = vv.get("not") {
        nested_complete(n, s_node, sp, &format!("{vp}.not"), out);
    }
    for c in ["allOf", "anyOf", "oneOf"] {
        for (i, x) in arr(vv, c).iter().enumerate() {
            nested_complete(x, s_node, sp, &format!("{vp}.{c}[{i}]"), out);
        }
    }
}

fn nested_complete(v: &Value, s_node: &Value, sp: &str, vp: &str, out: &mut Errs) {
    combinators_complete(v, s_node, sp, vp, out);
    if let Some(items) = v.get("items").filter(|i| i.is_object()) {
        let (sp2, vp2) = (format!("{sp}.items"), format!("{vp}.items"));
        match s_node.get("items").filter(|i| i.is_object()) {
            Some(si) => nested_complete(items, si, &sp2, &vp2, out),
            None => out.push(FieldError::required(sp2, &format!("because it is defined in {vp2}"))),
        }
    }
    for (k, x) in v.get("properties").and_then(Value::as_object).into_iter().flatten() {
        let (sp2, vp2) = (key(&format!("{sp}.properties"), k), key(&format!("{vp}.properties"), k));
        match s_node.get("properties").and_then(|ps| ps.get(k)) {
            Some(sx) => nested_complete(x, sx, &sp2, &vp2, out),
            None => out.push(FieldError::required(sp2, &format!("because it is defined in {vp2}"))),
        }
    }
}

// ---- defaults (upstream's ValidateDefaults) ----

fn default_errors(s: &Structural, p: &str, root: bool, in_meta: bool, out: &mut Errs) {
    let in_meta = in_meta && !s.embedded_resource;
    let resource_root = root || s.embedded_resource;
    if let (Some(d), false) = (&s.default, in_meta) {
        let path = format!("{p}.default");
        let mut pruned = d.clone();
        prune_value(s, &mut pruned, resource_root);
        if &pruned != d {
            out.push(FieldError::invalid(&path, d, "must not have unknown fields"));
        }
        out.extend(validate_value(&path, s, d));
    }
    if let Some(items) = s.items.as_deref() {
        default_errors(items, &format!("{p}.items"), false, in_meta, out);
    }
    for (k, sub) in &s.properties {
        let meta = resource_root && matches!(k.as_str(), "metadata" | "apiVersion" | "kind");
        default_errors(sub, &key(&format!("{p}.properties"), k), false, in_meta || meta, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(schema: Value) -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": schema}}]}
        })
    }

    fn ok_schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
            "replicas": {"type": "integer", "minimum": 0, "default": 1},
            "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }}, "status": {"type": "object"}}})
    }

    fn msgs(v: &Value, old: Option<&Value>) -> Vec<String> {
        validate_crd(v, old).into_iter().map(|e| e.message).collect()
    }

    #[test]
    fn valid_crd_with_string_enum_passes() {
        assert_eq!(msgs(&crd(ok_schema()), None), Vec::<String>::new());
    }

    #[test]
    fn names_group_and_storage() {
        let mut c = crd(ok_schema());
        c["metadata"]["name"] = json!("wrong.example.com");
        c["spec"]["group"] = json!("example");
        c["spec"]["versions"][0]["storage"] = json!(false);
        c["spec"]["names"]["listKind"] = json!("Widget");
        c["spec"]["scope"] = json!("Global");
        let m = msgs(&c, None);
        let want = [
            r#"metadata.name: Invalid value: "wrong.example.com": must be spec.names.plural+"."+spec.group"#,
            r#"spec.group: Invalid value: "example": should be a domain with at least one dot"#,
            r#"spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced""#,
            r#"spec.names.listKind: Invalid value: "Widget": kind and listKind may not be the same"#,
        ];
        for w in want {
            assert!(m.iter().any(|x| x == w), "missing {w} in {m:#?}");
        }
        assert!(
            m.iter().any(|x| x.starts_with("spec.versions: Invalid value: [")
                && x.ends_with("must have exactly one version marked as storage version")),
            "{m:#?}"
        );
    }

    #[test]
    fn schema_is_required() {
        let mut c = crd(ok_schema());
        c["spec"]["versions"][0].as_object_mut().unwrap().remove("schema");
        assert_eq!(msgs(&c, None), ["spec.versions[0].schema.openAPIV3Schema: Required value"]);
    }

    #[test]
    fn structural_rules_at_hoisted_path() {
        let c = crd(json!({"type": "object", "properties": {
            "spec": {"properties": {"a": {"type": "string"}}},
            "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}},
            "m": {"type": "object", "properties": {"x": {"type": "string"}}, "additionalProperties": {"type": "string"}},
        }}));
        let m = msgs(&c, None);
        for w in [
            "spec.validation.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields",
            "spec.validation.openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified",
            "spec.validation.openAPIV3Schema.properties[m].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive",
        ] {
            assert!(m.iter().any(|x| x == w), "missing {w} in {m:#?}");
        }
    }

    #[test]
    fn differing_schemas_report_per_version() {
        let mut c = crd(ok_schema());
        let mut v2 = c["spec"]["versions"][0].clone();
        v2["name"] = json!("v2");
        v2["storage"] = json!(false);
        v2["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["x"] = json!({});
        c["spec"]["versions"].as_array_mut().unwrap().push(v2);
        assert_eq!(
            msgs(&c, None),
            [
                "spec.versions[1].schema.openAPIV3Schema.properties[spec].properties[x].type: Required value: must not be empty for specified object fields"
            ]
        );
    }

    #[test]
    fn defaults_must_validate_and_be_pruned() {
        let c = crd(
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
                "color": {"type": "string", "enum": ["red", "blue"], "default": "green"},
                "o": {"type": "object", "properties": {"a": {"type": "string"}}, "default": {"a": "x", "b": 1}}
            }}}}),
        );
        let m = msgs(&c, None);
        assert!(m.contains(&r#"spec.validation.openAPIV3Schema.properties[spec].properties[color].default: Unsupported value: "green": supported values: "red", "blue""#.to_string()), "{m:#?}");
        assert!(m.contains(&r#"spec.validation.openAPIV3Schema.properties[spec].properties[o].default: Invalid value: {"a":"x","b":1}: must not have unknown fields"#.to_string()), "{m:#?}");
    }

    #[test]
    fn list_types_subresources_columns_conversion() {
        let mut c = crd(
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
                "l": {"type": "array", "x-kubernetes-list-type": "map", "items": {"type": "object", "properties": {"k": {"type": "string"}}}},
                "u": {"type": "array", "items": {"type": "string"}, "uniqueItems": true}
            }}}}),
        );
        let v = &mut c["spec"]["versions"][0];
        v["subresources"] =
            json!({"scale": {"specReplicasPath": ".status.x", "statusReplicasPath": ".status.r"}});
        v["additionalPrinterColumns"] =
            json!([{"name": "A", "type": "datetime", "jsonPath": "spec.a"}]);
        c["spec"]["conversion"] = json!({"strategy": "Webhook"});
        let m = msgs(&c, None);
        for w in [
            "spec.validation.openAPIV3Schema.properties[spec].properties[l].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map",
            "spec.validation.openAPIV3Schema.properties[spec].properties[u].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            r#"spec.subresources.scale.specReplicasPath: Invalid value: ".status.x": should be a json path under .spec"#,
            r#"spec.additionalPrinterColumns[0].type: Invalid value: "datetime": must be one of boolean,date,integer,number,string"#,
            r#"spec.additionalPrinterColumns[0].JSONPath: Invalid value: "spec.a": must be a simple json path starting with ."#,
            "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook",
            "spec.conversion.conversionReviewVersions: Required value",
        ] {
            assert!(m.iter().any(|x| x == w), "missing {w} in {m:#?}");
        }
    }

    #[test]
    fn update_rules() {
        let old = crd(ok_schema());
        let mut new = old.clone();
        new["spec"]["group"] = json!("other.com");
        let m = msgs(&new, Some(&old));
        assert!(
            m.contains(
                &r#"spec.group: Invalid value: "other.com": field is immutable"#.to_string()
            ),
            "{m:#?}"
        );
    }

    #[test]
    fn hostile_schema_depth_is_rejected() {
        let mut v = json!({"type": "string"});
        for _ in 0..200 {
            v = json!({"type": "object", "properties": {"a": v}});
        }
        let m = msgs(&crd(v.clone()), None);
        assert_eq!(
            m,
            [
                r#"spec.validation.openAPIV3Schema: Invalid value: "": must not nest deeper than 64 levels"#
            ]
        );
        std::mem::forget(v);
    }
}
