//! Whether an object is in the protobuf round trip's normal form: whether decoding its
//! protobuf encoding (and putting the result in upstream's order, as a stored value's
//! decode does) gives the object itself, key for key and in the same order. A walk
//! beside the encoder (`encode.rs`) that allocates nothing for ordinary objects.
//!
//! The round trip changes an object where Go's types would: it drops what the encoder
//! cannot carry (nulls, empty lists and maps, keys no field declares, zero scalars of
//! `omitempty` non-pointer fields, the zero `Time`), adds what Go always writes
//! (non-pointer fields the object lacks: their zero values, `{}` for a struct), and
//! rewrites values (a `Time` to whole seconds, durations, quantities and base64 in their
//! canonical text, numbers to the field's type). An object none of that touches is in
//! normal form; when in doubt (the JSON-schema wrappers of custom resource definitions,
//! floats inside raw JSON) the answer is no, which only costs the caller a decode.
//!
//! Invariant (tested): when [`round_trips`] holds for an object of `rt` whose type is
//! stored as served, `crate::stored::decode_object(rt, protobuf, n)` is the object with
//! its resourceVersion set to `n`, exactly as [`crate::order::set_meta`] sets it.

use super::decode::omitted;
use super::table::{Go, Special, Tables, Ty, tables};
use crate::stored::splice::has_float;
use crate::time;
use base64::Engine as _;
use serde_json::{Map, Value};

const MAX_DEPTH: usize = 100;

/// Whether `obj` (a whole object with `apiVersion` and `kind`, written as protobuf
/// message `name` and decoded as `rt`'s) comes back from its stored protobuf encoding,
/// without its `metadata.resourceVersion`, as itself, but for the resourceVersion the
/// decode sets.
pub fn round_trips(rt: &crate::ResourceType, obj: &Value) -> bool {
    let Value::Object(map) = obj else { return false };
    let str_of = |k: &str| map.get(k).and_then(Value::as_str);
    let (Some(api_version), Some(kind)) = (str_of("apiVersion"), str_of("kind")) else {
        return false;
    };
    // The decode reads the message of the envelope's type meta, and orders it as rt's.
    if super::definition_for(api_version, kind).as_deref() != Some(&*rt.schema_name) {
        return false;
    }
    let t = tables();
    let Some(idx) = t.by_name(&rt.schema_name) else { return false };
    let m = &t.messages[idx];
    if m.fields.iter().any(|f| f.json == "apiVersion" || f.json == "kind") {
        return false;
    }
    let walk = Walk { t, meta: t.by_name("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta") };
    // apiVersion and kind come from the envelope: two keys not among the fields.
    walk.message_with(idx, map, 0, 2)
}

struct Walk {
    t: &'static Tables,
    meta: Option<usize>,
}

impl Walk {
    /// Message `idx` as the JSON object `map`, of which `extra` keys are not its fields.
    fn message_with(
        &self,
        idx: usize,
        map: &Map<String, Value>,
        depth: usize,
        extra: usize,
    ) -> bool {
        if depth > MAX_DEPTH || !crate::order::keys_in_order(idx, map) {
            return false;
        }
        let mut seen = extra;
        self.fields(idx, map, depth, &mut seen) && seen == map.len()
    }

    /// The fields of message `idx` (its embedded structs' included) found in `map`, each
    /// as the decode gives it back; `seen` counts the keys they take.
    fn fields(&self, idx: usize, map: &Map<String, Value>, depth: usize, seen: &mut usize) -> bool {
        let m = &self.t.messages[idx];
        if m.special.is_some() {
            return false;
        }
        for f in &m.fields {
            if f.inline {
                let Ty::Message(c) = f.ty else { return false };
                if !self.fields(c, map, depth + 1, seen) {
                    return false;
                }
                continue;
            }
            let revision = depth == 1 && self.meta == Some(idx) && f.json == "resourceVersion";
            let Some(v) = map.get(&f.json) else {
                if matches!(f.go, Go::Value { .. }) && !self.zero_is_absent(f) {
                    return false;
                }
                continue;
            };
            *seen += 1;
            if revision {
                // Left out of the value; the decode sets the store's revision here.
                continue;
            }
            let back = if f.map {
                self.map(f.ty, v, depth)
            } else if f.repeated {
                self.list(f.ty, v, depth)
            } else {
                self.single(f.ty, v, depth) && !omitted(f, v)
            };
            if !back {
                return false;
            }
        }
        true
    }

    /// Whether the zero value the encoder writes for absent non-pointer field `f` decodes
    /// to nothing.
    fn zero_is_absent(&self, f: &super::table::Field) -> bool {
        if f.map || f.repeated {
            return false;
        }
        match f.ty {
            Ty::Bytes => true,
            Ty::String | Ty::Int32 | Ty::Int64 | Ty::Bool | Ty::Double => {
                f.go == Go::Value { omitempty: true }
            }
            Ty::Message(c) => matches!(
                self.t.messages[c].special,
                Some(Special::Time | Special::MicroTime | Special::RawJson)
            ),
        }
    }

    /// A map field: entries sorted by key (the encoder's order), none empty.
    fn map(&self, ty: Ty, v: &Value, depth: usize) -> bool {
        let Value::Object(entries) = v else { return false };

        !entries.is_empty()
            && entries.keys().zip(entries.keys().skip(1)).all(|(a, b)| a < b)
            && entries.values().all(|item| self.single(ty, item, depth))
    }

    /// A repeated field: a non-empty list of values that each come back.
    fn list(&self, ty: Ty, v: &Value, depth: usize) -> bool {
        let Value::Array(items) = v else { return false };
        !items.is_empty() && items.iter().all(|item| self.single(ty, item, depth))
    }

    /// Whether `v`, written as `ty`, decodes to itself.
    fn single(&self, ty: Ty, v: &Value, depth: usize) -> bool {
        match (ty, v) {
            (Ty::String, Value::String(_)) | (Ty::Bool, Value::Bool(_)) => true,
            (Ty::Bytes, Value::String(s)) => canonical_base64(s),
            (Ty::Int32, Value::Number(n)) => n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
            (Ty::Int64, Value::Number(n)) => n.as_i64().is_some(),
            // An integer would come back as a float (`1.0`).
            (Ty::Double, Value::Number(n)) => n.is_f64(),
            (Ty::Message(c), v) => self.message(c, v, depth + 1),
            _ => false,
        }
    }

    fn message(&self, idx: usize, v: &Value, depth: usize) -> bool {
        match (self.t.messages[idx].special, v) {
            (None, Value::Object(map)) => self.message_with(idx, map, depth, 0),
            (Some(Special::Time), Value::String(s)) => {
                // Whole seconds; the zero time is absent.
                time::parse_rfc3339(s)
                    .is_some_and(|(secs, _)| secs != 0 && time::rfc3339(secs) == *s)
            }
            (Some(Special::MicroTime), Value::String(s)) => {
                time::parse_rfc3339(s).is_some_and(|(secs, nanos)| {
                    (secs, nanos) != (0, 0) && time::rfc3339_micros(secs, nanos) == *s
                })
            }
            (Some(Special::Duration), Value::String(s)) => {
                time::parse_go_duration(s).is_some_and(|n| time::go_duration(n) == *s)
            }
            (Some(Special::IntOrString), Value::Number(n)) => {
                n.as_i64().is_some_and(|i| i32::try_from(i).is_ok())
            }
            (Some(Special::IntOrString), Value::String(_)) => true,
            (Some(Special::Quantity), Value::String(s)) => {
                !s.is_empty() && crate::order::quantity_is_canonical(v)
            }
            // Written out and parsed back: exact but for floats (serde_json's default
            // float parse is not).
            (Some(Special::RawJson), v) => !v.is_null() && !has_float(v),
            _ => false,
        }
    }
}

/// Base64 that decodes and encodes back to itself.
fn canonical_base64(s: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    b64.decode(s).is_ok_and(|raw| b64.encode(raw) == s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ResourceType;
    use crate::registry::Registry;
    use crate::stored::{StorageMediaType, decode_object, encode_object_noting};
    use serde_json::json;
    use std::sync::Arc;

    fn builtin(group: &str, version: &str, kind: &str) -> &'static Arc<ResourceType> {
        Registry::builtin().by_kind(group, version, kind).unwrap()
    }

    /// `obj` in upstream's order, then whether the walk says it round trips and whether
    /// it does (the stored value's decode writes the object's own JSON); the walk's yes
    /// asserted true, and then the hand-off's splice asserted equal to that JSON.
    fn check(rt: &ResourceType, mut obj: Value) -> (bool, bool) {
        crate::order::canonicalize_type(rt, &mut obj);
        let (stored, slot) = encode_object_noting(rt, &obj, StorageMediaType::Protobuf);
        assert!(stored.starts_with(super::super::MAGIC), "{obj}");
        let decoded = decode_object(rt, &stored, 4711).unwrap();
        let mut want = Vec::new();
        crate::format::write_json(&decoded, &mut want);
        let mut own = obj.clone();
        crate::order::set_meta(&mut own, "resourceVersion", json!("4711"));
        let mut mine = Vec::new();
        crate::format::write_json(&own, &mut mine);
        let normal = round_trips(rt, &obj);
        assert!(
            !normal || mine == want,
            "walk says {normal} for\n{}\ndecoded\n{}",
            String::from_utf8_lossy(&mine),
            String::from_utf8_lossy(&want)
        );
        assert_eq!(slot.is_some(), normal, "{obj}");
        if let Some(s) = slot {
            let mut got = Vec::new();
            assert!(s.slot.splice(s.json.as_deref().unwrap(), 4711, &mut got));
            assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
        }
        (normal, mine == want)
    }

    fn pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-0", "namespace": "default", "uid": "u-1",
                "resourceVersion": "12", "generation": 1,
                "creationTimestamp": "2024-05-01T12:00:00Z",
                "labels": {"tier": "", "app": "web"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                    "name": "web", "uid": "u-2", "controller": true}],
                "managedFields": [{"manager": "kubectl", "operation": "Update",
                    "apiVersion": "v1", "time": "2024-05-01T12:00:00Z",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}}}]},
            "spec": {
                "volumes": [{"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}}],
                "containers": [{"name": "nginx", "image": "nginx:1.27",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                    "livenessProbe": {"httpGet": {"path": "/", "port": "http", "scheme": "HTTP"},
                        "periodSeconds": 10},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}],
                "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst", "serviceAccountName": "default",
                "securityContext": {}, "schedulerName": "default-scheduler",
                "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute",
                    "tolerationSeconds": 300}],
                "priority": 0, "enableServiceLinks": true},
            "status": {"phase": "Pending", "qosClass": "Burstable"}
        })
    }

    #[test]
    fn objects_in_normal_form_come_back_as_themselves() {
        assert_eq!(check(builtin("", "v1", "Pod"), pod()), (true, true));
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "n", "uid": "u",
                "creationTimestamp": "2026-01-02T03:04:05Z"},
            "data": {"k": "v", "e": ""}, "binaryData": {"b": "AAEC"}});
        assert_eq!(check(builtin("", "v1", "ConfigMap"), cm), (true, true));
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "n"}, "data": {"k": "dmFsdWU="},
            "type": "Opaque"});
        assert_eq!(check(builtin("", "v1", "Secret"), secret), (true, true));
        let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "l", "namespace": "n"},
            "spec": {"holderIdentity": "h", "leaseDurationSeconds": 40,
                "renewTime": "2026-01-02T03:04:05.123456Z"}});
        assert_eq!(check(builtin("coordination.k8s.io", "v1", "Lease"), lease), (true, true));
    }

    /// Each change the round trip makes, seen by the walk (and shown real: the decode
    /// differs).
    #[test]
    fn what_the_round_trip_changes_is_not_normal_form() {
        let rt = builtin("", "v1", "Pod");
        let changes: [(&str, Value); 11] = [
            ("/spec/hostNetwork", json!(false)),
            ("/spec/nodeName", json!("")),
            ("/spec/initContainers", json!([])),
            ("/spec/nodeSelector", json!({})),
            ("/spec/priorityClassName", Value::Null),
            ("/spec/activeDeadlineSeconds", json!(1.5)),
            ("/metadata/creationTimestamp", json!("2024-05-01T12:00:00.5Z")),
            ("/metadata/creationTimestamp", json!("2024-05-01T14:00:00+02:00")),
            ("/metadata/unknownKey", json!("x")),
            ("/spec/containers/0/ports/0/containerPort", json!(4_294_967_296_i64)),
            ("/spec/containers/0/livenessProbe/httpGet/port", json!(4_294_967_296_i64)),
        ];
        for (path, value) in changes {
            let mut obj = pod();
            let (parent, key) = path.rsplit_once('/').unwrap();
            obj.pointer_mut(parent).unwrap().as_object_mut().unwrap().insert(key.into(), value);
            assert_eq!(check(rt, obj), (false, false), "{path}");
        }
        let mut no_status = pod();
        no_status.as_object_mut().unwrap().remove("status");
        assert_eq!(check(rt, no_status), (false, false), "Go writes the zero status: {{}}");
        let mut unsorted = pod();
        let meta = unsorted["metadata"].as_object_mut().unwrap();
        let name = meta.shift_remove("name").unwrap();
        meta.insert("name".into(), name);
        assert!(!round_trips(rt, &unsorted), "the decode puts name first");
        // In doubt, no: a float in raw JSON comes back here, but serde_json's default
        // float parse is not exact for every float.
        let mut float = pod();
        float["metadata"]["managedFields"][0]["fieldsV1"] = json!({"f:x": 1.5});
        assert_eq!(check(rt, float), (false, true));
    }
}
