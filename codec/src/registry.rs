//! The registry of resource types: one table that drives routing, discovery, OpenAPI,
//! validation, field selectors and storage keys. A resource is data plus a small
//! [`Strategy`]; there is no per-resource handler anywhere in kapi.
//!
//! Invariants: (group, version, plural) is unique; (group, version, kind) is unique;
//! `Registry::builtin()` lists exactly the resources upstream v1.35 serves by default
//! (GA group/versions), in upstream's discovery order.

use crate::strategy::Strategy;
use std::sync::OnceLock;

/// A subresource such as `status` or `scale`.
#[derive(Debug, Clone, Copy)]
pub struct Subresource {
    /// Path segment: `status`, `scale`, `binding`, `eviction`, `token`, `approval`, ...
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

/// One served group/version/resource.
pub struct ResourceType {
    /// API group, "" for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub list_kind: &'static str,
    /// Plural resource name (URL path segment): `pods`.
    pub plural: &'static str,
    /// Singular name as upstream discovery gives it: `pod`.
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Discovery verbs of the main resource.
    pub verbs: &'static [&'static str],
    pub subresources: &'static [Subresource],
    pub persistence: Persistence,
    /// Resource path segment in storage keys as upstream uses it under `/registry`:
    /// `pods`, `minions` (nodes), `services/specs`, `services/endpoints` (endpoints), ...
    pub storage_resource: &'static str,
    /// OpenAPI definition name of the kind: `io.k8s.api.core.v1.Pod`.
    pub schema_name: &'static str,
    /// Per-type behaviour: defaulting, validation, status split, field selectors.
    pub strategy: &'static dyn Strategy,
    /// Registers the kind's JSON schema (and everything it references) in a generator;
    /// returns the `$ref` schema.
    pub json_schema: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
}

impl std::fmt::Debug for ResourceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ResourceType({}/{}, {})", self.group, self.version, self.plural)
    }
}

impl ResourceType {
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

    /// Whether the type has a `status` subresource (spec/status split on writes).
    pub fn has_status(&self) -> bool {
        self.subresource("status").is_some()
    }

    /// Whether the main resource supports `verb` (as discovery lists it).
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    /// Storage key of one object: `{prefix}/{storage_resource}/{namespace}/{name}` or
    /// `{prefix}/{storage_resource}/{name}` for cluster-scoped types. `prefix` is
    /// `/registry` by default.
    pub fn storage_key(&self, prefix: &str, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => {
                format!("{prefix}/{}/{ns}/{name}", self.storage_resource)
            }
            _ => format!("{prefix}/{}/{name}", self.storage_resource),
        }
    }

    /// Key prefix of a LIST/WATCH (ends with `/`): all namespaces when `namespace` is None.
    pub fn storage_prefix(&self, prefix: &str, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{prefix}/{}/{ns}/", self.storage_resource),
            _ => format!("{prefix}/{}/", self.storage_resource),
        }
    }
}

/// All served resource types with lookup indexes.
pub struct Registry {
    types: Vec<ResourceType>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Registry({} types)", self.types.len())
    }
}

impl Registry {
    pub fn new(types: Vec<ResourceType>) -> Self {
        Self { types }
    }

    /// The built-in v1.35 resources served by default.
    pub fn builtin() -> &'static Registry {
        static REG: OnceLock<Registry> = OnceLock::new();
        REG.get_or_init(|| Registry::new(crate::registry_table::builtin_types()))
    }

    pub fn all(&self) -> &[ResourceType] {
        &self.types
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types.iter().find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    pub fn by_kind(&self, group: &str, version: &str, kind: &str) -> Option<&ResourceType> {
        self.types.iter().find(|t| t.group == group && t.version == version && t.kind == kind)
    }

    /// Group/versions in upstream discovery order (core `v1` first as `("", "v1")`), each once.
    pub fn group_versions(&self) -> Vec<(&'static str, &'static str)> {
        let mut out: Vec<(&'static str, &'static str)> = Vec::new();
        for t in &self.types {
            if !out.contains(&(t.group, t.version)) {
                out.push((t.group, t.version));
            }
        }
        out
    }

    /// Resources of one group/version, in table order.
    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a ResourceType> + 'a {
        self.types.iter().filter(move |t| t.group == group && t.version == version)
    }
}
