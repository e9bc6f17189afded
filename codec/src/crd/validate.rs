//! Validation of a custom object against its version's structural schema, with
//! upstream's messages: the kube-openapi schema validator's errors as the apiserver
//! turns them into field errors, then list-type `set`/`map` uniqueness, then the
//! `metadata` of embedded resources.
//!
//! Paths are kube-openapi's (`spec.items[0].name`; keys of `additionalProperties` maps
//! appended with a dot). The walk follows the schema, whose depth parsing bounds, so
//! recursion is bounded whatever the object. Within one node the checks run in
//! kube-openapi's order: type, allOf/anyOf/oneOf/not, string, format, number, array,
//! enum, object. Differences: properties are visited in schema order (upstream's order
//! is random), and the failing anyOf/oneOf branch reported is the one with the fewest
//! errors (upstream picks by match count).

use super::dns1035_label_errors;
use super::formats;
use super::regex::Regex;
use super::structural::{AdditionalProperties, Structural};
use crate::error::{FieldError, FieldErrorType};
use crate::strategy::NameRule;
use crate::validation::validate_object_meta;
use serde_json::{Map, Value, json};

/// Validate `obj` (a whole custom object) against `schema`.
pub fn validate(schema: &Structural, obj: &Value) -> Vec<FieldError> {
    let mut out = validate_value("", schema, obj);
    list_sets_and_maps("", schema, obj, &mut out);
    embedded_metadata("", schema, obj, false, &mut out);
    out
}

/// The schema validator alone on `value`, errors placed under `base` (e.g. a default's
/// `...default` path); what CRD validation uses for default values.
pub fn validate_value(base: &str, schema: &Structural, value: &Value) -> Vec<FieldError> {
    let mut v = Validator { base, out: Vec::new() };
    v.node(schema, value, "");
    v.out
}

struct Validator<'a> {
    base: &'a str,
    out: Vec<FieldError>,
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`).
pub(crate) fn go_float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return if f.is_nan() {
            "NaN".into()
        } else if f.is_infinite() {
            inf(f)
        } else {
            "0".into()
        };
    }
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return format!("{f}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mant}e{sign}{:02}", exp.abs())
}

fn inf(f: f64) -> String {
    if f > 0.0 { "+Inf".into() } else { "-Inf".into() }
}

/// A JSON number as Go prints the decoded value (`int64` or `float64`).
fn num_str(v: &Value) -> String {
    match v {
        Value::Number(n) if n.is_f64() => go_float(n.as_f64().unwrap_or(0.0)),
        other => other.to_string(),
    }
}

fn make(kind: FieldErrorType, field: String, body: String) -> FieldError {
    let message = format!("{field}: {body}");
    FieldError { kind, field, message }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn child(name: &str, k: &str) -> String {
    if name.is_empty() { k.to_string() } else { format!("{name}.{k}") }
}

impl Validator<'_> {
    /// The field of an error at kube-openapi path `name`.
    fn field(&self, name: &str) -> String {
        let name = name.strip_prefix('.').unwrap_or(name);
        match (self.base.is_empty(), name.is_empty()) {
            (_, true) => self.base.to_string(),
            (true, false) => name.to_string(),
            (false, false) => format!("{}.{name}", self.base),
        }
    }

    /// `field.Invalid(path, value, "<name> in body <detail>")`.
    fn invalid(&mut self, name: &str, shown: String, detail: &str) {
        let body = format!("Invalid value: {shown}: {name} in body {detail}");
        self.out.push(make(FieldErrorType::Invalid, self.field(name), body));
    }

    fn type_invalid(&mut self, name: &str, want: &str, got: &str) {
        let body =
            format!("Invalid value: {got:?}: {name} in body must be of type {want}: {got:?}");
        self.out.push(make(FieldErrorType::TypeInvalid, self.field(name), body));
    }

    /// A non-field error of the validator (anyOf, oneOf, ...): upstream reports it at
    /// the validator's base path with an empty value.
    fn composite(&mut self, msg: String) {
        let field = self.base.to_string();
        self.out.push(make(FieldErrorType::Invalid, field, format!("Invalid value: \"\": {msg}")));
    }

    fn node(&mut self, s: &Structural, v: &Value, name: &str) {
        self.check_type(s, v, name);
        if v.is_null() {
            self.check_enum(s, v, name);
            return;
        }
        self.combinators(s, v, name);
        match v {
            Value::String(st) => self.check_string(s, st, name),
            Value::Number(_) => self.check_number(s, v, name),
            Value::Array(a) => self.check_array(s, a, name),
            _ => {}
        }
        self.check_enum(s, v, name);
        if let Value::Object(m) = v {
            self.check_object(s, m, name);
        }
    }

    fn check_type(&mut self, s: &Structural, v: &Value, name: &str) {
        let own = [s.type_.as_str()];
        let types: &[&str] = if s.int_or_string {
            &["integer", "string"]
        } else if s.type_.is_empty() {
            return;
        } else {
            &own
        };
        let got = json_type(v);
        if v.is_null() {
            if !s.nullable {
                self.type_invalid(name, &types.join(","), "null");
            }
            return;
        }
        let float_int = got == "number"
            && v.as_f64().is_some_and(|f| f.fract() == 0.0)
            && types.contains(&"integer");
        let int_float = got == "integer" && types.contains(&"number");
        if !types.contains(&got) && !float_int && !int_float {
            self.type_invalid(name, &types.join(","), got);
        }
    }

    fn check_string(&mut self, s: &Structural, st: &str, name: &str) {
        let len = st.chars().count() as i64;
        if let Some(max) = s.max_length.filter(|m| len > *m) {
            let unit = if max == 1 { "byte" } else { "bytes" };
            let body = format!("Too long: may not be more than {max} {unit}");
            self.out.push(make(FieldErrorType::TooLong, self.field(name), body));
            return;
        }
        if let Some(min) = s.min_length.filter(|m| len < *m) {
            self.invalid(name, format!("{st:?}"), &format!("should be at least {min} chars long"));
            return;
        }
        if let Some(p) = s.pattern.as_deref() {
            let ok = match Regex::new(p) {
                Ok(re) => re.is_match(st),
                Err(e) => {
                    let detail = format!("should match '{p}, but pattern is invalid: {e}'");
                    self.invalid(name, format!("{st:?}"), &detail);
                    return;
                }
            };
            if !ok {
                self.invalid(name, format!("{st:?}"), &format!("should match '{p}'"));
                return;
            }
        }
        let Some(f) = formats::effective_format(&s.type_, &s.format) else { return };
        if !formats::check(&f, st) {
            let body = format!(
                "Invalid value: {st:?}: {name} in body must be of type {}: {st:?}",
                s.format.replace('-', "")
            );
            self.out.push(make(FieldErrorType::TypeInvalid, self.field(name), body));
        }
    }

    fn check_number(&mut self, s: &Structural, v: &Value, name: &str) {
        let shown = num_str(v);
        let f = v.as_f64().unwrap_or(0.0);
        let is_int = v.is_i64() || v.is_u64();
        if let Some(m) = s.multiple_of
            && m > 0.0
            && (f / m).fract() != 0.0
        {
            let ms = if is_int && m.fract() == 0.0 { format!("{}", m as i64) } else { go_float(m) };
            self.invalid(name, shown.clone(), &format!("should be a multiple of {ms}"));
        }
        let bound =
            |b: f64| if is_int && b.fract() == 0.0 { format!("{}", b as i64) } else { go_float(b) };
        if let Some(min) = s.minimum {
            let fails = if s.exclusive_minimum { f <= min } else { f < min };
            if fails {
                let op =
                    if s.exclusive_minimum { "greater than" } else { "greater than or equal to" };
                self.invalid(name, shown.clone(), &format!("should be {op} {}", bound(min)));
            }
        }
        if let Some(max) = s.maximum {
            let fails = if s.exclusive_maximum { f >= max } else { f > max };
            if fails {
                let op = if s.exclusive_maximum { "less than" } else { "less than or equal to" };
                self.invalid(name, shown, &format!("should be {op} {}", bound(max)));
            }
        }
    }

    fn check_array(&mut self, s: &Structural, a: &[Value], name: &str) {
        if let Some(items) = s.items.as_deref() {
            for (i, x) in a.iter().enumerate() {
                self.node(items, x, &format!("{name}[{i}]"));
            }
        }
        let n = a.len() as i64;
        if let Some(min) = s.min_items.filter(|m| n < *m) {
            self.invalid(name, n.to_string(), &format!("should have at least {min} items"));
        }
        if let Some(max) = s.max_items.filter(|m| n > *m) {
            let unit = if max == 1 { "item" } else { "items" };
            let body = format!("Too many: {n}: must have at most {max} {unit}");
            self.out.push(make(FieldErrorType::TooMany, self.field(name), body));
        }
        if s.unique_items && a.iter().enumerate().any(|(i, x)| a[..i].contains(x)) {
            self.invalid(name, "\"\"".into(), "shouldn't contain duplicates");
        }
    }

    fn check_enum(&mut self, s: &Structural, v: &Value, name: &str) {
        let Some(values) = s.enum_.as_ref().filter(|e| !e.is_empty()) else { return };
        if values.iter().any(|e| loose_eq(e, v)) {
            return;
        }
        let valid: Vec<String> = values
            .iter()
            .map(|e| match e {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        let refs: Vec<&str> = valid.iter().map(String::as_str).collect();
        let mut e = FieldError::not_supported(self.field(name), v, &refs);
        if let Value::Number(_) = v {
            e.message = e.message.replacen(&v.to_string(), &num_str(v), 1);
        }
        self.out.push(e);
    }

    fn check_object(&mut self, s: &Structural, m: &Map<String, Value>, name: &str) {
        let n = m.len() as i64;
        if let Some(min) = s.min_properties.filter(|x| n < *x) {
            self.invalid(name, n.to_string(), &format!("should have at least {min} properties"));
        }
        if let Some(max) = s.max_properties.filter(|x| n > *x) {
            let unit = if max == 1 { "item" } else { "items" };
            let body = format!("Too many: {n}: must have at most {max} {unit}");
            self.out.push(make(FieldErrorType::TooMany, self.field(name), body));
        }
        match &s.additional_properties {
            Some(AdditionalProperties::Bool(false)) => {
                for k in m.keys().filter(|k| s.property(k).is_none()) {
                    let detail = format!("{name}.{k} in body is a forbidden property");
                    let body = format!("Invalid value: {k:?}: {detail}");
                    self.out.push(make(FieldErrorType::Invalid, self.field(name), body));
                }
            }
            Some(AdditionalProperties::Schema(a)) => {
                for (k, x) in m.iter().filter(|(k, _)| s.property(k).is_none()) {
                    self.node(a, x, &format!("{name}.{k}"));
                }
            }
            _ => {}
        }
        for (k, ps) in &s.properties {
            if let Some(x) = m.get(k) {
                self.node(ps, x, &child(name, k));
            }
        }
        for k in s.required.iter().filter(|k| !m.contains_key(*k)) {
            let field = self.field(&format!("{name}.{k}"));
            self.out.push(FieldError::required(field, ""));
        }
    }

    fn sub(&self, s: &Structural, v: &Value, name: &str) -> Vec<FieldError> {
        let mut v2 = Validator { base: self.base, out: Vec::new() };
        v2.node(s, v, name);
        v2.out
    }

    fn combinators(&mut self, s: &Structural, v: &Value, name: &str) {
        if !s.any_of.is_empty() {
            let results: Vec<Vec<FieldError>> =
                s.any_of.iter().map(|b| self.sub(b, v, name)).collect();
            if !results.iter().any(Vec::is_empty) {
                self.composite(format!("{name:?} must validate at least one schema (anyOf)"));
                self.out.extend(best(results));
            }
        }
        if !s.one_of.is_empty() {
            let results: Vec<Vec<FieldError>> =
                s.one_of.iter().map(|b| self.sub(b, v, name)).collect();
            let valid = results.iter().filter(|r| r.is_empty()).count();
            if valid != 1 {
                let more = if valid == 0 {
                    "Found none valid".to_string()
                } else {
                    format!("Found {valid} valid alternatives")
                };
                self.composite(format!(
                    "{name:?} must validate one and only one schema (oneOf). {more}"
                ));
                if valid == 0 {
                    self.out.extend(best(results));
                }
            }
        }
        if !s.all_of.is_empty() {
            let mut valid = 0;
            for b in &s.all_of {
                let r = self.sub(b, v, name);
                valid += usize::from(r.is_empty());
                self.out.extend(r);
            }
            if valid != s.all_of.len() {
                let more = if valid == 0 { ". None validated" } else { "" };
                self.composite(format!("{name:?} must validate all the schemas (allOf){more}"));
            }
        }
        if let Some(not) = s.not.as_deref()
            && self.sub(not, v, name).is_empty()
        {
            self.composite(format!("{name:?} must not validate the schema (not)"));
        }
    }
}

fn best(results: Vec<Vec<FieldError>>) -> Vec<FieldError> {
    results.into_iter().min_by_key(Vec::len).unwrap_or_default()
}

/// Enum membership as kube-openapi compares: equal JSON, numbers by value.
fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}

// ---- list-type set/map uniqueness (upstream's listtype validation) ----

fn list_sets_and_maps(path: &str, s: &Structural, v: &Value, out: &mut Vec<FieldError>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if let Some(ps) = s.property(k) {
                    list_sets_and_maps(&child(path, k), ps, x, out);
                } else if let Some(a) = s.additional_schema() {
                    list_sets_and_maps(&format!("{path}[{k}]"), a, x, out);
                }
            }
        }
        Value::Array(a) => {
            match s.list_type.as_deref() {
                Some("set") => {
                    for i in duplicates(a) {
                        out.push(FieldError::duplicate(format!("{path}[{i}]"), &a[i]));
                    }
                }
                Some("map") => list_map(path, s, a, out),
                _ => {}
            }
            if let Some(items) = s.items.as_deref() {
                for (i, x) in a.iter().enumerate() {
                    list_sets_and_maps(&format!("{path}[{i}]"), items, x, out);
                }
            }
        }
        _ => {}
    }
}

/// Indices of the second occurrence of each value seen more than once.
fn duplicates(a: &[Value]) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, x) in a.iter().enumerate() {
        let before = a[..i].iter().filter(|y| canon_eq(x, y)).count();
        if before == 1 {
            out.push(i);
        }
    }
    out
}

/// Equality as upstream's set check: compounds by their (key-sorted) JSON text.
fn canon_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(_) | Value::Array(_), _) => canon(a) == canon(b),
        _ => a == b,
    }
}

fn canon(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> =
                keys.iter().map(|k| format!("{}:{}", json!(k), canon(&m[k.as_str()]))).collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(canon).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

fn list_map(path: &str, s: &Structural, a: &[Value], out: &mut Vec<FieldError>) {
    if let Some((i, x)) = a.iter().enumerate().find(|(_, x)| !x.is_null() && !x.is_object()) {
        let e = FieldError::invalid(
            format!("{path}[{i}]"),
            x,
            "must be an object for an array of list-type map",
        );
        out.push(e);
        return;
    }
    let keys: Vec<Value> = a
        .iter()
        .map(|x| {
            let mut key = Map::new();
            for k in &s.list_map_keys {
                if let Some(v) = x.get(k) {
                    key.insert(k.clone(), v.clone());
                }
            }
            Value::Object(key)
        })
        .collect();
    for i in duplicates(&keys) {
        out.push(FieldError::duplicate(format!("{path}[{i}]"), &keys[i]));
    }
}

// ---- metadata of embedded resources (upstream's objectmeta validation) ----

fn embedded_metadata(
    path: &str,
    s: &Structural,
    v: &Value,
    check: bool,
    out: &mut Vec<FieldError>,
) {
    match v {
        Value::Object(m) => {
            if check && s.embedded_resource {
                embedded_resource(path, m, out);
            }
            for (k, x) in m {
                if let Some(ps) = s.property(k) {
                    embedded_metadata(&child(path, k), ps, x, true, out);
                } else if let Some(a) = s.additional_schema() {
                    embedded_metadata(&format!("{path}[{k}]"), a, x, true, out);
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = s.items.as_deref() {
                for (i, x) in a.iter().enumerate() {
                    embedded_metadata(&format!("{path}[{i}]"), items, x, true, out);
                }
            }
        }
        _ => {}
    }
}

fn embedded_resource(path: &str, m: &Map<String, Value>, out: &mut Vec<FieldError>) {
    let at = |f: &str| child(path, f);
    for f in ["apiVersion", "kind"] {
        if !m.contains_key(f) {
            out.push(FieldError::required(at(f), ""));
        }
    }
    for (k, v) in m {
        match (k.as_str(), v.as_str()) {
            ("apiVersion" | "kind", None) => {
                out.push(FieldError::invalid(at(k), v, "must be a string"))
            }
            ("apiVersion" | "kind", Some("")) => {
                out.push(FieldError::invalid(at(k), v, "must not be empty"));
            }
            ("apiVersion", Some(av)) if av.matches('/').count() > 1 => {
                let msg = format!("unexpected GroupVersion string: {av}");
                out.push(FieldError::invalid(at(k), v, &msg));
            }
            ("kind", Some(kind)) => {
                let errs = dns1035_label_errors(&kind.to_lowercase());
                if !errs.is_empty() {
                    let msg = format!(
                        "may have mixed case, but should otherwise match: {}",
                        errs.join(",")
                    );
                    out.push(FieldError::invalid(at(k), v, &msg));
                }
            }
            ("metadata", _) => embedded_object_meta(path, v, out),
            _ => {}
        }
    }
}

fn embedded_object_meta(path: &str, meta: &Value, out: &mut Vec<FieldError>) {
    if !meta.is_object() {
        out.push(FieldError::invalid(child(path, "metadata"), meta, "must be an object"));
        return;
    }
    let mut meta = meta.clone();
    if meta.get("name").and_then(Value::as_str).is_none_or(str::is_empty) {
        meta["name"] = json!("fakename");
    }
    let namespaced = meta.get("namespace").and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    let obj = json!({ "metadata": meta });
    for mut e in validate_object_meta(&obj, namespaced, NameRule::PathSegment) {
        if !path.is_empty() {
            e.field = format!("{path}.{}", e.field);
            e.message = format!("{path}.{}", e.message);
        }
        out.push(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(v: Value) -> Structural {
        Structural::parse(&v).unwrap()
    }

    fn messages(s: &Structural, obj: Value) -> Vec<String> {
        validate(s, &obj).into_iter().map(|e| e.message).collect()
    }

    fn spec(props: Value) -> Structural {
        schema(
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": props}}}),
        )
    }

    #[test]
    fn string_enum_accepts_members_and_rejects_others() {
        let s = spec(json!({"color": {"type": "string", "enum": ["red", "blue"]}}));
        assert!(messages(&s, json!({"spec": {"color": "red"}})).is_empty());
        assert_eq!(
            messages(&s, json!({"spec": {"color": "green"}})),
            [r#"spec.color: Unsupported value: "green": supported values: "red", "blue""#]
        );
    }

    #[test]
    fn type_errors() {
        let s = spec(json!({"replicas": {"type": "integer"}, "n": {"type": "number"}}));
        assert_eq!(
            messages(&s, json!({"spec": {"replicas": "3"}})),
            [
                r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#
            ]
        );
        assert!(messages(&s, json!({"spec": {"replicas": 3.0, "n": 2}})).is_empty());
        assert_eq!(
            messages(&s, json!({"spec": {"replicas": null}})),
            [
                r#"spec.replicas: Invalid value: "null": spec.replicas in body must be of type integer: "null""#
            ]
        );
        let e = &validate(&s, &json!({"spec": {"replicas": true}}))[0];
        assert_eq!(e.kind, FieldErrorType::TypeInvalid);
    }

    #[test]
    fn nullable_allows_null() {
        let s = spec(json!({"x": {"type": "string", "nullable": true}}));
        assert!(messages(&s, json!({"spec": {"x": null}})).is_empty());
    }

    #[test]
    fn bounds() {
        let s = spec(json!({
            "size": {"type": "integer", "maximum": 10, "minimum": 1},
            "ratio": {"type": "number", "maximum": 1.5, "exclusiveMaximum": true},
        }));
        assert_eq!(
            messages(&s, json!({"spec": {"size": 20}})),
            ["spec.size: Invalid value: 20: spec.size in body should be less than or equal to 10"]
        );
        assert_eq!(
            messages(&s, json!({"spec": {"size": 0}})),
            ["spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"]
        );
        assert_eq!(
            messages(&s, json!({"spec": {"ratio": 1.5}})),
            ["spec.ratio: Invalid value: 1.5: spec.ratio in body should be less than 1.5"]
        );
    }

    #[test]
    fn strings_and_required() {
        let s = schema(json!({"type": "object", "properties": {"spec": {"type": "object",
            "required": ["name"], "properties": {
                "name": {"type": "string", "maxLength": 3, "minLength": 2, "pattern": "^[a-z]+$"},
                "id": {"type": "string", "format": "uuid"}}}}}));
        assert_eq!(messages(&s, json!({"spec": {}})), ["spec.name: Required value"]);
        assert_eq!(
            messages(&s, json!({"spec": {"name": "abcd"}})),
            ["spec.name: Too long: may not be more than 3 bytes"]
        );
        assert_eq!(
            messages(&s, json!({"spec": {"name": "a"}})),
            [r#"spec.name: Invalid value: "a": spec.name in body should be at least 2 chars long"#]
        );
        assert_eq!(
            messages(&s, json!({"spec": {"name": "A1"}})),
            [r#"spec.name: Invalid value: "A1": spec.name in body should match '^[a-z]+$'"#]
        );
        assert_eq!(
            messages(&s, json!({"spec": {"name": "ab", "id": "x"}})),
            [r#"spec.id: Invalid value: "x": spec.id in body must be of type uuid: "x""#]
        );
    }

    #[test]
    fn arrays_and_maps() {
        let s = spec(json!({
            "tags": {"type": "array", "maxItems": 2, "minItems": 1, "items": {"type": "string"},
                     "x-kubernetes-list-type": "set"},
            "ports": {"type": "array", "x-kubernetes-list-type": "map",
                      "x-kubernetes-list-map-keys": ["name"],
                      "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        }));
        assert_eq!(
            messages(&s, json!({"spec": {"tags": ["a", "b", 3]}})),
            [
                r#"spec.tags[2]: Invalid value: "integer": spec.tags[2] in body must be of type string: "integer""#,
                "spec.tags: Too many: 3: must have at most 2 items"
            ]
        );
        assert_eq!(
            messages(&s, json!({"spec": {"tags": []}})),
            ["spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"]
        );
        assert_eq!(
            messages(&s, json!({"spec": {"tags": ["a", "a"]}})),
            [r#"spec.tags[1]: Duplicate value: "a""#]
        );
        assert_eq!(
            messages(
                &s,
                json!({"spec": {"ports": [{"name": "a", "port": 1}, {"name": "a", "port": 2}]}})
            ),
            [r#"spec.ports[1]: Duplicate value: {"name":"a"}"#]
        );
        assert_eq!(
            messages(&s, json!({"spec": {"labels": {"a": 1}}})),
            [
                r#"spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type string: "integer""#
            ]
        );
    }

    #[test]
    fn int_or_string() {
        let s = spec(json!({"port": {"x-kubernetes-int-or-string": true,
            "anyOf": [{"type": "integer"}, {"type": "string"}]}}));
        assert!(messages(&s, json!({"spec": {"port": 80}})).is_empty());
        assert!(messages(&s, json!({"spec": {"port": "http"}})).is_empty());
        let m = messages(&s, json!({"spec": {"port": true}}));
        assert_eq!(
            m[0],
            r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#
        );
    }

    #[test]
    fn embedded_resource_metadata() {
        let s = spec(json!({"template": {"type": "object", "x-kubernetes-embedded-resource": true,
            "x-kubernetes-preserve-unknown-fields": true}}));
        let m = messages(&s, json!({"spec": {"template": {"metadata": {"name": "a/b"}}}}));
        assert!(m.contains(&"spec.template.apiVersion: Required value".to_string()), "{m:?}");
        assert!(
            m.iter().any(|x| x.starts_with("spec.template.metadata.name: Invalid value: \"a/b\"")),
            "{m:?}"
        );
    }

    #[test]
    fn go_float_formatting() {
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
    }

    #[test]
    fn deep_objects_do_not_overflow() {
        let s =
            spec(json!({"x": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}));
        let mut v = json!(1);
        for _ in 0..100 {
            v = json!({"a": [v]});
        }
        assert!(messages(&s, json!({"spec": {"x": v}})).is_empty());
    }
}
