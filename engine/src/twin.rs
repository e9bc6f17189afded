//! Twin versions: a built-in version stored as another served version of its resource
//! (a beta or alpha version `--runtime-config` enables, whose `storage_version` names
//! the GA one; same storage key, types equal but for `apiVersion`) has no watch cache of
//! its own. It is served from its storage version's cache, which holds each object once,
//! and the objects are turned into the twin's encoding here, at serve time: JSON by
//! swapping the leading `"apiVersion"` (zero-copy in LISTs: a shared head piece and the
//! rest of the cached document), trees by setting it, protobuf by encoding the twin's
//! message afresh (the cached message belongs to the storage version's type).
//!
//! Invariants: an entry without a `storage_version` (every GA read) takes none of these
//! paths but one field check; a twin whose storage version is not served keeps a cache
//! of its own (its entries are then already in its encoding, and are sent as they are);
//! a cached protobuf encoding is only ever made with the cache owner's type.

use crate::app::App;
use crate::cache::Cached;
use bytes::Bytes;
use kapi_codec::ResourceType;
use serde_json::Value;
use std::sync::Arc;

/// Whether `rt` is a built-in version stored as another version of its resource.
pub fn is_twin(rt: &ResourceType) -> bool {
    rt.storage_version.is_some() && rt.custom.is_none()
}

/// The served entry whose cache holds `rt`'s objects, when `rt` is a twin and its
/// storage version is served (None: `rt` caches its own objects).
pub fn cache_owner(app: &App, rt: &ResourceType) -> Option<Arc<ResourceType>> {
    let version = rt.storage_version.as_deref()?;
    if rt.custom.is_some() {
        return None;
    }
    let reg = app.registry();
    let owner = reg.get(&rt.group, version, &rt.plural)?;
    let same_storage =
        owner.storage_version.is_none() && owner.storage_resource == rt.storage_resource;
    same_storage.then(|| owner.clone())
}

/// How a cached document of the storage version becomes the twin's: the leading bytes
/// to replace and their replacement, in the two orders a top-level `apiVersion` comes
/// in (after `kind`, Go's struct order, or first).
pub struct Retarget {
    from: [Vec<u8>; 2],
    to: [Bytes; 2],
    api_version: String,
}

impl Retarget {
    /// For documents served as `rt` (None when `rt` is not a twin).
    pub fn new(rt: &ResourceType) -> Option<Retarget> {
        let from_version = rt.storage_version.as_deref().filter(|_| is_twin(rt))?;
        let from = format!("{}/{from_version}", rt.group);
        let to = rt.api_version();
        let kind = Value::from(&*rt.kind);
        let heads = |av: &str| {
            let av = Value::from(av);
            [format!("{{\"kind\":{kind},\"apiVersion\":{av}"), format!("{{\"apiVersion\":{av}")]
        };
        let [f0, f1] = heads(&from);
        let [t0, t1] = heads(&to);
        Some(Retarget {
            from: [f0.into_bytes(), f1.into_bytes()],
            to: [Bytes::from(t0), Bytes::from(t1)],
            api_version: to,
        })
    }

    /// `doc` as pieces to send one after the other: the document itself when it is
    /// already the twin's; the twin's head and the rest of `doc` (no copy); or, for a
    /// document in neither form, one re-encoded document.
    pub fn pieces(&self, doc: &Bytes, out: &mut Vec<Bytes>) {
        if self.to.iter().any(|t| doc.starts_with(t)) {
            out.push(doc.clone());
            return;
        }
        if let Some(i) = self.from.iter().position(|f| doc.starts_with(f)) {
            out.push(self.to[i].clone());
            out.push(doc.slice(self.from[i].len()..));
            return;
        }
        out.push(self.rebuilt(doc));
    }

    /// `doc` as one document of the twin's.
    pub fn document(&self, doc: &Bytes) -> Bytes {
        let mut pieces = Vec::with_capacity(2);
        self.pieces(doc, &mut pieces);
        match pieces.as_slice() {
            [one] => one.clone(),
            _ => Bytes::from(pieces.concat()),
        }
    }

    fn rebuilt(&self, doc: &Bytes) -> Bytes {
        let mut obj = kapi_codec::format::parse_json(doc).unwrap_or(Value::Null);
        set_api_version(&mut obj, &self.api_version);
        let mut out = Vec::with_capacity(doc.len() + 16);
        kapi_codec::format::write_json(&obj, &mut out);
        Bytes::from(out)
    }
}

fn set_api_version(obj: &mut Value, api_version: &str) {
    if let Some(o) = obj.as_object_mut() {
        o.insert("apiVersion".into(), Value::from(api_version));
    }
}

/// The object tree of `cached` as `rt` serves it.
pub fn obj(rt: &ResourceType, cached: &Cached) -> Value {
    let mut obj = cached.obj();
    if is_twin(rt) {
        set_api_version(&mut obj, &rt.api_version());
    }
    obj
}

/// The compact JSON document of `cached` as `rt` serves it.
pub fn json(rt: &ResourceType, cached: &Cached) -> Bytes {
    match Retarget::new(rt) {
        None => cached.json().clone(),
        Some(r) => r.document(cached.json()),
    }
}

/// The body of a GET of `cached` as `rt` serves it (the document and `\n`).
pub fn json_line(rt: &ResourceType, cached: &Cached) -> Bytes {
    match Retarget::new(rt) {
        None => cached.json_line().clone(),
        Some(r) => {
            let doc = r.document(cached.json());
            let mut out = Vec::with_capacity(doc.len() + 1);
            out.extend_from_slice(&doc);
            out.push(b'\n');
            Bytes::from(out)
        }
    }
}

/// The protobuf message of `cached` as `rt` serves it (None: the type has none). A
/// twin's is encoded for the request, never kept.
pub fn proto(rt: &ResourceType, cached: &Cached) -> Option<Bytes> {
    if !is_twin(rt) {
        return cached.proto(rt).cloned();
    }
    let mut msg = Vec::with_capacity(cached.json().len());
    kapi_codec::protobuf::encode::encode_message(&rt.schema_name, &obj(rt, cached), &mut msg)
        .ok()?;
    Some(Bytes::from(msg))
}

/// The protobuf message of `cached` as `rt` serves it, preceded by its List items key
/// and length.
pub fn proto_list_item(rt: &ResourceType, cached: &Cached) -> Option<Bytes> {
    if !is_twin(rt) {
        return cached.proto_list_item(rt).cloned();
    }
    let msg = proto(rt, cached)?;
    let mut out = Vec::with_capacity(msg.len() + 10);
    kapi_codec::protobuf::list_item_prefix(msg.len(), &mut out);
    out.extend_from_slice(&msg);
    Some(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn twin() -> Arc<ResourceType> {
        let reg = kapi_codec::Registry::known();
        reg.get("resource.k8s.io", "v1beta2", "deviceclasses").expect("DeviceClass v1beta2").clone()
    }

    fn doc(s: &str) -> Bytes {
        Bytes::from(s.to_string())
    }

    /// A storage-version document becomes the twin's with its head swapped (the rest
    /// shared, not copied); a twin's own document is sent as it is; any other order is
    /// re-encoded.
    #[test]
    fn documents_are_retargeted_at_their_head() {
        let rt = twin();
        let r = Retarget::new(&rt).unwrap();
        let ga = doc(
            r#"{"kind":"DeviceClass","apiVersion":"resource.k8s.io/v1","metadata":{"name":"a"}}"#,
        );
        let mut pieces = Vec::new();
        r.pieces(&ga, &mut pieces);
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[1].as_ptr(), ga[r.from[0].len()..].as_ptr(), "shared, not copied");
        let want = r#"{"kind":"DeviceClass","apiVersion":"resource.k8s.io/v1beta2","metadata":{"name":"a"}}"#;
        assert_eq!(pieces.concat(), want.as_bytes());
        assert_eq!(r.document(&ga), want.as_bytes());
        let own = doc(want);
        assert_eq!(r.document(&own).as_ptr(), own.as_ptr());
        let first = doc(r#"{"apiVersion":"resource.k8s.io/v1","kind":"DeviceClass"}"#);
        assert_eq!(
            r.document(&first),
            r#"{"apiVersion":"resource.k8s.io/v1beta2","kind":"DeviceClass"}"#.as_bytes()
        );
        let other = doc(r#"{"metadata":{},"apiVersion":"resource.k8s.io/v1"}"#);
        let rebuilt: Value = serde_json::from_slice(&r.document(&other)).unwrap();
        assert_eq!(rebuilt["apiVersion"], "resource.k8s.io/v1beta2");
    }

    #[test]
    fn ga_entries_are_not_twins() {
        let reg = kapi_codec::Registry::builtin();
        let ga = reg.get("resource.k8s.io", "v1", "deviceclasses").unwrap();
        assert!(!is_twin(ga) && Retarget::new(ga).is_none());
        assert!(is_twin(&twin()));
    }
}
