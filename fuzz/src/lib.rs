//! kapi's fuzz targets: one function per kind of untrusted input, each calling the same
//! public functions the server calls on that input, then checking what must hold of the
//! result (beyond "no panic"). `fuzz_targets/*.rs` hand them to libFuzzer (cargo-fuzz);
//! `corpus/TARGET/` holds their checked-in seeds, made by `examples/seed.rs`.
//!
//! Inputs that carry several parts put a one-byte choice first (the resource type, over
//! `Registry::builtin().all()`, or the format) and separate text parts with NUL bytes,
//! which JSON, YAML, selectors and URLs never contain raw. See docs/RELIABILITY.md,
//! "Fuzzing".

pub mod memfs;
pub mod seeds;

use kapi::auth::serviceaccount::{self, Kind, Objects};
use kapi::auth::{Authenticator, Outcome, jwt};
use kapi::negotiation;
use kapi::rest::fields::Selectors;
use kapi::rest::fuzz_api::{self, PatchType};
use kapi::status::ApiError;
use kapi_codec::format::{self, Format};
use kapi_codec::selector::{FieldSelector, LabelSelector};
use kapi_codec::stored::{self, StorageMediaType};
use kapi_codec::{Registry, ResourceType, convert, managed, protobuf, schema, validation};
use kapi_storage::Store;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A fuzz target: one input, panics on a finding.
pub type Target = fn(&[u8]);

/// Every target by name, for the seed generator and the regression tests.
pub const TARGETS: &[(&str, Target)] = &[
    ("http_head", http_head),
    ("decode", decode),
    ("selectors", selectors),
    ("patch", patch),
    ("continue_token", continue_token),
    ("resource_version", resource_version),
    ("bearer_token", bearer_token),
    ("wal", wal),
];

/// The resource type a choice byte names.
pub fn resource_type(choice: u8) -> &'static ResourceType {
    let all = Registry::builtin().all();
    &all[usize::from(choice) % all.len()]
}

/// The choice byte of a resource type (for seeds).
pub fn choice_of(group: &str, kind: &str) -> u8 {
    let all = Registry::builtin().all();
    let i = all.iter().position(|t| t.group == group && t.kind == kind).unwrap_or(0);
    u8::try_from(i).unwrap_or(0)
}

/// `data` split at its first `n - 1` NUL bytes (fewer parts when it has fewer NULs).
fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    data.splitn(n, |b| *b == 0).collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Errors become Status bodies: build them too (their messages quote the input).
fn status(e: &ApiError) {
    let s = e.to_status();
    assert!(s.get("code").is_some(), "a Status without a code: {s}");
}

/// An HTTP/1 request head (request line and headers), parsed as hyper does (httparse,
/// then `http`'s method, URI and header types; a head those refuse never reaches kapi),
/// then everything kapi reads from it: the request info (path and query), response and
/// body negotiation (Accept, Content-Type, the patch type), the request timeout
/// (`?timeout=`), list selectors of the resource named, the list parameters and the
/// bearer token.
pub fn http_head(data: &[u8]) {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = req.parse(data) else { return };
    let (Some(method), Some(target)) = (req.method, req.path) else { return };
    let Ok(method) = http::Method::from_bytes(method.as_bytes()) else { return };
    let Ok(uri) = target.parse::<http::Uri>() else { return };
    let mut map = http::HeaderMap::new();
    for h in req.headers.iter() {
        let name = http::HeaderName::from_bytes(h.name.as_bytes());
        if let (Ok(n), Ok(v)) = (name, http::HeaderValue::from_bytes(h.value)) {
            map.append(n, v);
        }
    }
    let header = |n: http::HeaderName| map.get(n).and_then(|v| v.to_str().ok());
    let info = kapi::request::parse(&method, uri.path(), uri.query());
    assert!(!info.verb.is_empty(), "no verb for {method} {uri}");
    if info.is_resource {
        assert!(matches!(info.prefix.as_str(), "api" | "apis"), "{info:?}");
    }
    let _ = kapi::server::timeout::limit(&info, Duration::from_secs(60));
    let accept = header(http::header::ACCEPT);
    for table_ok in [false, true] {
        match negotiation::negotiate(accept, table_ok) {
            Ok(out) => assert!(!out.content_type().is_empty()),
            Err(e) => {
                status(&e);
                let _ = negotiation::error_response_for(&e, accept);
            }
        }
    }
    let content_type = header(http::header::CONTENT_TYPE);
    if let Err(e) = negotiation::body_format(content_type) {
        status(&e);
    }
    if let Err(e) = fuzz_api::patch_type(content_type) {
        status(&e);
    }
    let registry = Registry::builtin();
    if let Some(rt) = registry.get(&info.group, &info.version, &info.resource) {
        let label = info.param("labelSelector");
        let field = info.param("fieldSelector");
        match Selectors::parse(rt, label, field) {
            Ok(s) => {
                let _ = s.matches(rt, &json!({"metadata": {"name": "x", "labels": {"a": "b"}}}));
            }
            Err(e) => status(&e),
        }
    }
    list_params(
        info.param("continue"),
        info.param("resourceVersion"),
        info.param("resourceVersionMatch"),
        7,
    );
    if let Some(authz) = header(http::header::AUTHORIZATION) {
        let _ = authenticator().authenticate(None, &authorization(authz), &FixedObjects);
    }
}

/// Continue token, resourceVersion and resourceVersionMatch as LIST reads them.
fn list_params(cont: Option<&str>, rv: Option<&str>, matching: Option<&str>, current: u64) {
    let continued = match cont.map(fuzz_api::decode_continue) {
        Some(Ok((rev, after, remaining))) => {
            assert!(rev > 0, "a continue token at revision 0");
            let again = fuzz_api::encode_continue(rev, &after, remaining);
            let (rev2, after2, remaining2) = fuzz_api::decode_continue(&again)
                .unwrap_or_else(|e| panic!("kapi's own token {again} refused: {e}"));
            assert_eq!((rev, &after, remaining), (rev2, &after2, remaining2));
            Some(rev)
        }
        Some(Err(e)) => {
            status(&e);
            return;
        }
        None => None,
    };
    match fuzz_api::list_revision(rv, matching, continued, current) {
        Ok(Some(r)) => assert!(continued.is_some() || matching == Some("Exact"), "{r}"),
        Ok(None) => {}
        Err(e) => status(&e),
    }
}

/// A request body of one kind: byte 0 picks the resource type, byte 1 the format (JSON,
/// YAML, protobuf, or the stored bytes of an object read back from the store); the rest
/// is the body. A body that decodes to an object goes through what create does with it
/// ([`object_pipeline`]).
pub fn decode(data: &[u8]) {
    let [kind, fmt, body @ ..] = data else { return };
    let rt = resource_type(*kind);
    let decoded = match fmt % 4 {
        0 => format::decode(body, Format::Json),
        1 => format::decode(body, Format::Yaml),
        2 => format::decode(body, Format::Protobuf),
        _ => stored::decode(body),
    };
    if let Ok(obj) = decoded {
        object_pipeline(rt, obj);
    }
}

/// What the server does with a decoded object of `rt`: the endpoint's kind and
/// apiVersion, unknown fields pruned against the schema, defaulting, create preparation
/// and validation, then every encoding it is written in (responses in JSON, YAML and
/// protobuf; storage in JSON and protobuf), each of which must read back.
pub fn object_pipeline(rt: &ResourceType, mut obj: Value) {
    let Some(m) = obj.as_object_mut() else { return };
    m.insert("kind".into(), json!(rt.kind));
    m.insert("apiVersion".into(), json!(rt.api_version()));
    if schema::prune_unknown(&rt.schema_name, &mut obj).is_err() {
        return;
    }
    let strategy = &rt.strategy;
    strategy.default(&mut obj);
    strategy.prepare_create(&mut obj);
    let _ = validation::validate_object_meta(&obj, rt.namespaced, strategy.name_rule());
    let _ = strategy.validate(&obj);
    let _ = strategy.validate_update(&obj, &obj);
    for f in strategy.selectable_fields() {
        let _ = strategy.field_value(&obj, f);
    }
    encodings_read_back(rt, &obj);
}

fn encodings_read_back(rt: &ResourceType, obj: &Value) {
    let json = format::encode_json(obj);
    let back = format::parse_json(&json).unwrap_or_else(|e| panic!("own JSON unreadable: {e}"));
    assert_eq!(format::encode_json(&back), json, "JSON does not read back as written");
    let _ = format::encode_json_pretty(obj);
    let yaml = format::encode_yaml(obj);
    if let Err(e) = format::decode(&yaml, Format::Yaml) {
        panic!("own YAML unreadable: {e}\n{}", String::from_utf8_lossy(&yaml));
    }
    let mut pb = Vec::new();
    if protobuf::encode_object(obj, &mut pb).is_ok()
        && let Err(e) = protobuf::decode_object(&pb)
    {
        panic!("own protobuf unreadable: {e}");
    }
    let storage = convert::to_storage(rt, obj.clone());
    for media in [StorageMediaType::Json, StorageMediaType::Protobuf] {
        let bytes = stored::encode(&storage, media);
        match stored::decode(&bytes) {
            Ok(read) => {
                let _ = convert::from_storage(rt, read);
            }
            Err(e) => panic!("own stored {media:?} bytes unreadable: {e}"),
        }
    }
}

/// A label selector, a field selector and an object (NUL-separated), byte 0 picking the
/// resource type: the selectors parsed as LIST and WATCH parse them, and matched against
/// the object; the object also read as a `metav1.LabelSelector` (as workload specs
/// hold them).
pub fn selectors(data: &[u8]) {
    let [kind, rest @ ..] = data else { return };
    let rt = resource_type(*kind);
    let p = parts(rest, 3);
    let label = text(p[0]);
    let field = p.get(1).map(|b| text(b));
    let obj = p
        .get(2)
        .and_then(|b| format::parse_json(b).ok())
        .unwrap_or_else(|| json!({"metadata": {"name": "x", "labels": {"app": "web"}}}));
    let l = LabelSelector::parse(&label);
    let f = FieldSelector::parse(field.as_deref().unwrap_or(""));
    if let Ok(l) = &l {
        let _ = l.matches(kapi_codec::meta::labels(&obj));
        let _ = l.equality().count();
    }
    if let Ok(f) = &f {
        let _ = f.matches(&|name| kapi::rest::fields::value(rt, &obj, name));
        let _ = f.required_value("spec.nodeName");
    }
    match Selectors::parse(rt, Some(&label), field.as_deref()) {
        Ok(s) => {
            assert!(l.is_ok() && f.is_ok(), "engine accepted selectors codec refused");
            let _ = s.matches(rt, &obj);
        }
        Err(e) => status(&e),
    }
    if let Ok(s) = LabelSelector::from_object(&obj) {
        let _ = s.matches(kapi_codec::meta::labels(&obj));
    }
}

/// A patch of one kind applied to an object: byte 0 picks the resource type, byte 1 the
/// patch type (JSON merge, JSON patch, strategic merge, server-side apply; bit 2 forces
/// an apply); the rest is the live object (JSON) and the patch, NUL-separated (no NUL:
/// the whole rest is the patch, applied to a minimal object). A patched object goes
/// through [`object_pipeline`].
pub fn patch(data: &[u8]) {
    let [kind, ptype, rest @ ..] = data else { return };
    let rt = resource_type(*kind);
    let p = parts(rest, 2);
    let (live, doc) = match p.as_slice() {
        [live, doc] => (format::parse_json(live).ok(), *doc),
        _ => (None, rest),
    };
    let mut live = live.filter(Value::is_object).unwrap_or_else(
        || json!({"metadata": {"name": "x", "namespace": "default", "resourceVersion": "5"}}),
    );
    live["kind"] = json!(rt.kind);
    live["apiVersion"] = json!(rt.api_version());
    let patch_type = match ptype % 4 {
        0 => PatchType::Merge,
        1 => PatchType::Json,
        2 => PatchType::Strategic,
        _ => PatchType::Apply,
    };
    if patch_type != PatchType::Apply {
        match fuzz_api::apply_patch(patch_type, &live, doc, &rt.schema_name) {
            Ok(out) => object_pipeline(rt, out),
            Err(e) => status(&e),
        }
        return;
    }
    let Ok(mut applied) = format::decode(doc, Format::Yaml) else { return };
    if !applied.is_object() || schema::prune_unknown(&rt.schema_name, &mut applied).is_err() {
        return;
    }
    if managed::typed::check(&applied, rt.apply_type()).is_err() {
        return;
    }
    let api_version = rt.api_version();
    let mgr = managed::Manager {
        name: "fuzz",
        apply: true,
        subresource: None,
        api_version: &api_version,
        time: "2024-01-01T00:00:00Z",
    };
    let force = ptype & 4 != 0;
    for base in [Some(&live), None] {
        match managed::apply(base, &applied, rt.apply_type(), &mgr, force) {
            Ok(out) => object_pipeline(rt, out),
            Err(conflicts) => {
                assert!(!force, "a forced apply conflicted");
                let _ = managed::conflicts_message(&conflicts);
            }
        }
    }
}

/// A `continue` query parameter (decoded text, as the query parser leaves it).
pub fn continue_token(data: &[u8]) {
    list_params(Some(&text(data)), None, None, 7);
    list_params(Some(&text(data)), Some("0"), None, 7);
}

/// `resourceVersion`, `resourceVersionMatch` (NUL-separated) as LIST reads them, with
/// the store at the revision in byte 0; and the first as an object's
/// `metadata.resourceVersion` (updates and patches pin on it).
pub fn resource_version(data: &[u8]) {
    let [current, rest @ ..] = data else { return };
    let p = parts(rest, 2);
    let rv = text(p[0]);
    let matching = p.get(1).map(|b| text(b));
    list_params(None, Some(&rv), matching.as_deref(), u64::from(*current));
    let obj = json!({"metadata": {"resourceVersion": rv}});
    match fuzz_api::resource_version(&obj) {
        Ok(Some(r)) => {
            // upstream's ParseUint: decimal digits only, leading zeros allowed
            let digits = rv.trim_start_matches('0');
            assert!(rv.bytes().all(|b| b.is_ascii_digit()), "{rv:?} read as revision {r}");
            assert_eq!(r.to_string(), if digits.is_empty() { "0" } else { digits });
        }
        Ok(None) => assert!(rv.is_empty()),
        Err(e) => status(&e),
    }
}

/// The ServiceAccount key the bearer-token target trusts (`engine/src/auth/testdata`).
const SA_KEY: &str = include_str!("../../engine/src/auth/testdata/sec1.key");
const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

fn authenticator() -> &'static Authenticator {
    static AUTH: OnceLock<Authenticator> = OnceLock::new();
    AUTH.get_or_init(|| {
        let mut tokens = kapi::auth::token_file::TokenFile::default();
        tokens.insert("static-token", kapi::auth::UserInfo::default());
        let signer = jwt::SigningKey::from_pem(SA_KEY).expect("test key");
        let keys = vec![signer.public.clone()];
        let service_accounts = serviceaccount::Tokens {
            signer,
            keys,
            issuers: vec![ISSUER.into()],
            audiences: vec![ISSUER.into()],
            max_expiration: None,
            extend_expiration: true,
        };
        Authenticator { tokens, service_accounts: Some(service_accounts), ..Default::default() }
    })
}

/// Request headers with this `Authorization` value (none when it is not a valid value).
fn authorization(value: &str) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(value) {
        headers.insert(http::header::AUTHORIZATION, v);
    }
    headers
}

/// The objects tokens may name: ServiceAccount default/default (uid `sa-uid`), Pod
/// default/web (`pod-uid`, on node n1), Secret default/tok (`secret-uid`), Node n1.
struct FixedObjects;

impl Objects for FixedObjects {
    fn get(&self, kind: Kind, namespace: Option<&str>, name: &str) -> Option<Value> {
        let (uid, extra) = match (kind, namespace, name) {
            (Kind::ServiceAccount, Some("default"), "default") => ("sa-uid", json!({})),
            (Kind::Pod, Some("default"), "web") => ("pod-uid", json!({"spec": {"nodeName": "n1"}})),
            (Kind::Secret, Some("default"), "tok") => ("secret-uid", json!({})),
            (Kind::Node, None, "n1") => ("node-uid", json!({})),
            _ => return None,
        };
        let mut obj = json!({"metadata": {"name": name, "uid": uid}});
        if let Some(ns) = namespace {
            obj["metadata"]["namespace"] = json!(ns);
        }
        if let (Some(o), Some(e)) = (obj.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        Some(obj)
    }
}

/// A bearer token. Byte 0 even: the rest is the `Authorization` header as sent. Odd: the
/// rest is a claims set the target signs with the trusted key, so the claims (issuer,
/// expiry, audiences, bound objects, legacy Secret tokens) are checked past the
/// signature.
pub fn bearer_token(data: &[u8]) {
    let [mode, rest @ ..] = data else { return };
    let auth = authenticator();
    let header = if mode % 2 == 0 {
        text(rest)
    } else {
        let Ok(claims) = format::parse_json(rest) else { return };
        let Some(signer) = &auth.service_accounts else { return };
        let Ok(token) = signer.signer.sign(&claims) else { return };
        format!("Bearer {token}")
    };
    match auth.authenticate(None, &authorization(&header), &FixedObjects) {
        Ok(Outcome::User(user)) => {
            assert!(!user.name.is_empty() || header.contains("static-token"))
        }
        // No webhook is configured: a token nobody knows must be refused, not deferred.
        Ok(Outcome::AskWebhook(_)) => panic!("a token was deferred to a webhook that is not there"),
        Err(refused) => assert!(!refused.message.is_empty()),
    }
    if let Some(token) = header.strip_prefix("Bearer ") {
        let _ = jwt::peek_claims(token);
    }
}

/// WAL recovery over arbitrary files: byte 0 says whether the first part is a snapshot;
/// the parts (separated by [`memfs::FILE_SEPARATOR`]) are the snapshot and WAL segments
/// 1, 2, ... of an in-memory data directory. The store opens on them (or refuses to,
/// with an error); an opened store must answer reads, take a write, and reopen with
/// exactly the same contents plus that write.
pub fn wal(data: &[u8]) {
    let [layout, rest @ ..] = data else { return };
    let fs = memfs::MemFs::default();
    let dir = Path::new("/data");
    let files = memfs::split_files(rest);
    let mut seq = 1;
    for (i, file) in files.iter().enumerate() {
        if i == 0 && layout & 1 == 1 {
            let rev = memfs::snapshot_revision(file).unwrap_or(u64::from(*layout >> 1));
            fs.put(&dir.join(format!("snapshot-{rev:016}.snap")), file);
        } else {
            fs.put(&kapi_storage::embedded::wal::segment_path(dir, seq), file);
            seq += 1;
        }
    }
    let opts = || kapi_storage::embedded::EmbeddedOptions {
        fsync: false,
        snapshot_after_bytes: 1 << 30,
        watch_buffer: 16,
        fs: Arc::new(fs.clone()),
    };
    let Ok(store) = kapi_storage::embedded::EmbeddedStore::open(dir, opts()) else { return };
    let before = memfs::contents(store.as_ref());
    let current = store.current_revision();
    assert!(store.compacted_revision() <= current, "compacted past the current revision");
    let put =
        futures_executor::block_on(store.create("/fuzz/probe", bytes::Bytes::from_static(b"v")));
    let _ = futures_executor::block_on(store.close());
    drop(store);
    let reopened = kapi_storage::embedded::EmbeddedStore::open(dir, opts())
        .unwrap_or_else(|e| panic!("a store that opened does not reopen: {e}"));
    let after = memfs::contents(reopened.as_ref());
    let mut expected = before;
    if let Ok(kv) = put {
        assert!(kv.mod_revision > current, "a write at an old revision");
        expected.insert(kv.key.clone(), (kv.value.to_vec(), kv.mod_revision, kv.create_revision));
    }
    assert_eq!(after, expected, "reopening changed what the store holds");
    let _ = futures_executor::block_on(reopened.close());
}
