//! The registry of resource types: one table that drives routing, discovery, OpenAPI,
//! validation, field selectors and storage keys. A resource is data plus a small
//! [`Strategy`]; there is no per-resource handler anywhere in kapi.
//!
//! The registry is a run-time value: the server holds one snapshot (`Arc<Registry>`) and
//! swaps it whole when CustomResourceDefinitions or `--runtime-config` change what is
//! served. Each entry owns its names (built-in ones borrow `'static` strings) and carries
//! everything about its type: facts, strategy, schema source, custom-resource facts and
//! the slot of its watch cache.
//!
//! Invariants: (group, version, plural) is unique; (group, version, kind) is unique;
//! `Registry::builtin()` lists exactly the resources upstream v1.35 serves by default
//! (GA group/versions), in upstream's discovery order; a snapshot never changes once
//! built (a change is a new snapshot).

use crate::strategy::Strategy;
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

pub use crate::name::Name;

/// Where a type's schema comes from.
#[derive(Clone)]
pub enum SchemaSource {
    /// A built-in type: registers its JSON schema (and everything it references) in a
    /// generator; returns the `$ref` schema.
    Builtin(fn(&mut schemars::SchemaGenerator) -> schemars::Schema),
    /// A custom resource: the version's `openAPIV3Schema` (the CRD's own JSON).
    Custom(Arc<serde_json::Value>),
}

/// The engine's watch cache of one served resource version, made on first use. The
/// codec layer does not know its type: the engine stores and downcasts it.
pub type CacheSlot = OnceLock<Option<Arc<dyn Any + Send + Sync>>>;

/// A subresource such as `status` or `scale`.
#[derive(Debug, Clone, Copy)]
pub struct Subresource {
    /// Path segment: `status`, `scale`, `binding`, `eviction`, `token`, `approval`, ...
    /// (subresources are the same fixed facts for built-in and custom types, hence
    /// `'static`; a kind of "" means the resource's own kind).
    pub name: &'static str,
    /// Kind served at the subresource (`Pod` for pods/status, `Scale` for scale, ...).
    pub kind: &'static str,
    /// Group/version of that kind when it differs (`autoscaling/v1` for Scale).
    pub group: &'static str,
    pub version: &'static str,
    /// Discovery verbs (`get`, `patch`, `update`, `create`).
    pub verbs: &'static [&'static str],
}

/// How objects of a resource live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Stored objects with the full verb set the type allows.
    Stored,
    /// Create-only, never stored (TokenReview, SubjectAccessReview, SelfSubjectReview, ...).
    Virtual,
}

/// The part a built-in type plays beyond its strategy, for the few places in the
/// request path that treat a type specially (named here, in the table, so no verb,
/// cache or admission code matches a resource by its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Plain,
    /// Pods: graceful deletion, the `spec.nodeName` watch index.
    Pods,
    /// Namespaces: deletion marks them Terminating; objects need a live namespace.
    Namespaces,
    /// Services: cluster IP and node port allocation.
    Services,
    /// ComponentStatuses: probed when read, never stored.
    ComponentStatuses,
    /// CustomResourceDefinitions: a delete adds the cleanup finalizer, so the CRD
    /// controller removes the objects before the CRD goes.
    CustomResourceDefinitions,
    /// A create-only review answered at once.
    Review(Review),
    /// Roles and ClusterRoles: a write may not grant what its writer does not hold.
    RbacRoles,
    /// RoleBindings and ClusterRoleBindings: a write needs `bind` on the role, or to hold
    /// what it grants.
    RbacBindings,
}

/// The review types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    SelfSubject,
    Token,
    Access,
    Rules,
}

/// One served group/version/resource.
pub struct ResourceType {
    /// API group, "" for the core group.
    pub group: Name,
    pub version: Name,
    pub kind: Name,
    pub list_kind: Name,
    /// Plural resource name (URL path segment): `pods`.
    pub plural: Name,
    /// Singular name as upstream discovery gives it: `pod`.
    pub singular: Name,
    pub namespaced: bool,
    pub short_names: Vec<Name>,
    pub categories: Vec<Name>,
    /// Discovery verbs of the main resource.
    pub verbs: &'static [&'static str],
    pub subresources: std::borrow::Cow<'static, [Subresource]>,
    pub persistence: Persistence,
    /// What the request path does specially for the type.
    pub role: Role,
    /// Resource path segment in storage keys as upstream uses it under `/registry`:
    /// `pods`, `minions` (nodes), `services/specs`, `services/endpoints` (endpoints),
    /// `example.com/widgets` for a custom resource.
    pub storage_resource: Name,
    /// OpenAPI definition name of the kind: `io.k8s.api.core.v1.Pod`, `com.example.v1.Widget`.
    pub schema_name: Name,
    /// Per-type behaviour: defaulting, validation, status split, field selectors.
    pub strategy: Arc<dyn Strategy>,
    /// The type's schema.
    pub schema: SchemaSource,
    /// For a built-in version stored as another version of its group (a beta version of
    /// a GA resource, an alpha version of a beta one: same storage key, types equal but
    /// for `apiVersion`): that version. None: stored as served (or as `convert` says).
    pub storage_version: Option<Name>,
    /// What a CustomResourceDefinition says of the type (None for built-in types).
    pub custom: Option<Arc<crate::custom::CustomFacts>>,
    /// The watch cache of the stored resource (see [`CacheSlot`]).
    pub cache: CacheSlot,
}

impl std::fmt::Debug for ResourceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ResourceType({}/{}, {})", self.group, self.version, self.plural)
    }
}

impl ResourceType {
    /// Whether a delete that removes an object at once answers with the object (pods,
    /// ServiceAccounts, StorageClasses: upstream's `ReturnDeletedObject`) rather than a
    /// Success Status.
    pub fn returns_deleted_object(&self) -> bool {
        self.custom.is_none()
            && matches!(
                (&*self.group, &*self.plural),
                ("", "pods" | "serviceaccounts") | ("storage.k8s.io", "storageclasses")
            )
    }

    /// The type of the objects as server-side apply and managedFields see it: a
    /// custom resource's from its CRD schema, a built-in one's from the schemas.
    pub fn apply_type(&self) -> crate::managed::Ty<'_> {
        match &self.custom {
            Some(c) => c.apply_types.root(),
            None => crate::managed::Ty::builtin(&self.schema_name),
        }
    }

    /// `v1` for the core group, `apps/v1` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn subresource(&self, name: &str) -> Option<&Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// The kind a subresource serves (a subresource written with an empty kind serves
    /// the resource's own kind).
    pub fn sub_kind<'a>(&'a self, sub: &'a Subresource) -> &'a str {
        if sub.kind.is_empty() { &self.kind } else { sub.kind }
    }

    /// Whether the type has a `status` subresource (spec/status split on writes).
    pub fn has_status(&self) -> bool {
        self.subresource("status").is_some()
    }

    /// The field selectors the type supports: `metadata.name` (and `metadata.namespace`
    /// when namespaced), then the strategy's or the CRD's selectable fields.
    pub fn selectable_fields(&self) -> impl Iterator<Item = &str> {
        let meta: &[&'static str] = if self.namespaced {
            &["metadata.name", "metadata.namespace"]
        } else {
            &["metadata.name"]
        };
        let custom =
            self.custom.iter().flat_map(|c| c.selectable_fields.iter().map(|f| f.as_str()));
        meta.iter().copied().chain(self.strategy.selectable_fields().iter().copied()).chain(custom)
    }

    /// The value of selectable field `field` of `obj` as upstream's field set renders it
    /// (None when the type cannot be selected by it).
    pub fn field_value(&self, obj: &serde_json::Value, field: &str) -> Option<String> {
        use serde_json::Value;
        match field {
            "metadata.name" => Some(crate::meta::name(obj).unwrap_or("").to_string()),
            "metadata.namespace" => {
                self.namespaced.then(|| crate::meta::namespace(obj).unwrap_or("").to_string())
            }
            other
                if self
                    .custom
                    .as_ref()
                    .is_some_and(|c| c.selectable_fields.iter().any(|f| f == other)) =>
            {
                let pointer = format!("/{}", other.replace('.', "/"));
                Some(match obj.pointer(&pointer) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                })
            }
            other => self.strategy.field_value(obj, other),
        }
    }

    /// Whether the type can be selected by `field`.
    pub fn supports_field(&self, field: &str) -> bool {
        self.selectable_fields().any(|f| f == field)
    }

    /// Whether the main resource supports `verb` (as discovery lists it).
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    /// Storage key of one object: `{prefix}/{storage_resource}/{namespace}/{name}` or
    /// `{prefix}/{storage_resource}/{name}` for cluster-scoped types. `prefix` is
    /// `/registry` by default.
    pub fn storage_key(&self, prefix: &str, namespace: Option<&str>, name: &str) -> String {
        let mut key = String::new();
        self.push_storage_key(&mut key, prefix, namespace, name);
        key
    }

    /// [`ResourceType::storage_key`] appended to `out` (a caller's reused buffer).
    pub fn push_storage_key(
        &self,
        out: &mut String,
        prefix: &str,
        namespace: Option<&str>,
        name: &str,
    ) {
        self.push_storage_prefix(out, prefix, namespace);
        out.push_str(name);
    }

    /// Key prefix of a LIST/WATCH (ends with `/`): all namespaces when `namespace` is None.
    pub fn storage_prefix(&self, prefix: &str, namespace: Option<&str>) -> String {
        let mut key = String::new();
        self.push_storage_prefix(&mut key, prefix, namespace);
        key
    }

    /// [`ResourceType::storage_prefix`] appended to `out` (a caller's reused buffer).
    pub fn push_storage_prefix(&self, out: &mut String, prefix: &str, namespace: Option<&str>) {
        out.reserve(prefix.len() + self.storage_resource.len() + 2);
        out.push_str(prefix);
        out.push('/');
        out.push_str(&self.storage_resource);
        out.push('/');
        if let Some(ns) = namespace.filter(|_| self.namespaced) {
            out.push_str(ns);
            out.push('/');
        }
    }
}

/// The lookup hash of a (group, version, plural): a word-at-a-time multiply-rotate
/// hash of the three names (each ended by its length, so parts cannot run into each
/// other) with a final mix. Not keyed: the keys are the served types, which only the
/// server and CRD authors choose, and a lookup walks only the types of its own hash.
fn path_hash(group: &str, version: &str, plural: &str) -> u64 {
    let mut h = 0u64;
    for part in [group, version, plural] {
        let bytes = part.as_bytes();
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            h = mix_word(h, u64::from_le_bytes(word));
        }
        let mut tail = [0u8; 8];
        tail[..words.remainder().len()].copy_from_slice(words.remainder());
        h = mix_word(h, u64::from_le_bytes(tail));
        h = mix_word(h, bytes.len() as u64);
    }
    // Spread the high bits down (the table takes its bucket from the low bits).
    h ^= h >> 29;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 32)
}

fn mix_word(h: u64, word: u64) -> u64 {
    (h.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95)
}

/// The `by_path` table's hasher: its keys are already [`path_hash`]es, used as they are
/// (no second hash per lookup).
#[derive(Default, Clone, Copy)]
struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix_word(self.0, u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type ByPath = HashMap<u64, Vec<usize>, std::hash::BuildHasherDefault<PassThrough>>;

/// All served resource types with lookup indexes: one immutable snapshot.
pub struct Registry {
    types: Vec<Arc<ResourceType>>,
    /// Hash of (group, version, plural) -> positions in `types` with that hash.
    by_path: ByPath,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Registry({} types)", self.types.len())
    }
}

impl Registry {
    pub fn new(types: Vec<Arc<ResourceType>>) -> Self {
        let mut by_path = ByPath::default();
        for (i, t) in types.iter().enumerate() {
            by_path.entry(path_hash(&t.group, &t.version, &t.plural)).or_default().push(i);
        }
        Self { types, by_path }
    }

    /// The built-in v1.35 resources served by default.
    pub fn builtin() -> &'static Arc<Registry> {
        static REG: OnceLock<Arc<Registry>> = OnceLock::new();
        REG.get_or_init(|| {
            let types = crate::registry_table::builtin_types().into_iter().map(Arc::new);
            Arc::new(Registry::new(types.collect()))
        })
    }

    pub fn all(&self) -> &[Arc<ResourceType>] {
        &self.types
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&Arc<ResourceType>> {
        let found = self.by_path.get(&path_hash(group, version, plural))?;
        found
            .iter()
            .map(|&i| &self.types[i])
            .find(|t| t.plural == plural && t.group == group && t.version == version)
    }

    pub fn by_kind(&self, group: &str, version: &str, kind: &str) -> Option<&Arc<ResourceType>> {
        self.types.iter().find(|t| t.group == group && t.version == version && t.kind == kind)
    }

    /// Group/versions in upstream discovery order (core `v1` first as `("", "v1")`), each once.
    pub fn group_versions(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = Vec::new();
        for t in &self.types {
            let gv = (&*t.group, &*t.version);
            if !out.contains(&gv) {
                out.push(gv);
            }
        }
        out
    }

    /// Resources of one group/version, in table order.
    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a Arc<ResourceType>> + 'a {
        self.types.iter().filter(move |t| t.group == group && t.version == version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_type_is_found_by_its_path_and_near_misses_are_not() {
        let reg = Registry::builtin();
        for t in reg.all() {
            let found = reg.get(&t.group, &t.version, &t.plural).expect("found");
            assert!(Arc::ptr_eq(found, t));
        }
        assert!(reg.get("", "v1", "pod").is_none());
        assert!(reg.get("", "v1pods", "").is_none());
        assert!(reg.get("apps", "v2", "deployments").is_none());
    }

    #[test]
    fn names_running_into_each_other_hash_apart() {
        assert_ne!(path_hash("ab", "c", "d"), path_hash("a", "bc", "d"));
        assert_ne!(path_hash("", "v1", "pods"), path_hash("", "v1p", "ods"));
        assert_ne!(path_hash("abcdefgh", "", "x"), path_hash("abcdefghx", "", ""));
    }
}
