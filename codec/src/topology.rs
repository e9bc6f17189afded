//! Server-side apply topology of the built-in types: how a list merges
//! (`x-kubernetes-list-type` atomic / set / map keyed by `x-kubernetes-list-map-keys`)
//! and whether a struct or map is owned as a whole (`x-kubernetes-map-type: atomic`).
//! Upstream keeps these in Go markers (`+listType`, `+listMapKey`, `+mapType`); k8s-openapi's
//! schemars output does not carry them, so they are written here by hand, checked against
//! `../shared/spec/swagger.json` in a test when it exists, added to the schemas (so the
//! OpenAPI documents carry them) and read by `fieldset` and `managed`.
//!
//! A list property not named here is atomic; a struct or map is granular unless named.

use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::OnceLock;

/// `(definition, field, list type)` for every list that is not atomic, and the atomic
/// lists whose patch strategy merges; definitions are relative to `io.k8s.`. The type
/// is `set` or `map:KEY[,KEY...]`; a key marked `!` has no default (an item must set it),
/// the others default as `key_default` says.
const LISTS: &[(&str, &str, &str)] = &[
    ("api.admissionregistration.v1.MutatingWebhook", "matchConditions", "map:name"),
    ("api.admissionregistration.v1.MutatingWebhookConfiguration", "webhooks", "map:name"),
    (
        "api.admissionregistration.v1.ValidatingAdmissionPolicyBindingSpec",
        "validationActions",
        "set",
    ),
    ("api.admissionregistration.v1.ValidatingAdmissionPolicySpec", "matchConditions", "map:name"),
    ("api.admissionregistration.v1.ValidatingAdmissionPolicySpec", "variables", "map:name"),
    ("api.admissionregistration.v1.ValidatingAdmissionPolicyStatus", "conditions", "map:type"),
    ("api.admissionregistration.v1.ValidatingWebhook", "matchConditions", "map:name"),
    ("api.admissionregistration.v1.ValidatingWebhookConfiguration", "webhooks", "map:name"),
    (
        "api.admissionregistration.v1alpha1.MutatingAdmissionPolicySpec",
        "matchConditions",
        "map:name",
    ),
    (
        "api.admissionregistration.v1beta1.MutatingAdmissionPolicySpec",
        "matchConditions",
        "map:name",
    ),
    ("api.apiserverinternal.v1alpha1.ServerStorageVersion", "decodableVersions", "set"),
    ("api.apiserverinternal.v1alpha1.ServerStorageVersion", "servedVersions", "set"),
    ("api.apiserverinternal.v1alpha1.StorageVersionStatus", "conditions", "map:type"),
    ("api.apiserverinternal.v1alpha1.StorageVersionStatus", "storageVersions", "map:apiServerID!"),
    ("api.certificates.v1beta1.PodCertificateRequestStatus", "conditions", "map:type"),
    ("api.resource.v1alpha3.DeviceTaintRuleStatus", "conditions", "map:type"),
    ("api.scheduling.v1alpha1.WorkloadSpec", "podGroups", "map:name"),
    ("api.storagemigration.v1beta1.StorageVersionMigrationStatus", "conditions", "map:type"),
    ("api.apps.v1.DaemonSetStatus", "conditions", "map:type"),
    ("api.apps.v1.DeploymentStatus", "conditions", "map:type"),
    ("api.apps.v1.ReplicaSetStatus", "conditions", "map:type"),
    ("api.apps.v1.StatefulSetStatus", "conditions", "map:type"),
    ("api.autoscaling.v2.HorizontalPodAutoscalerStatus", "conditions", "map:type"),
    ("api.batch.v1.JobStatus", "conditions", "atomic"),
    ("api.batch.v1.PodFailurePolicyOnExitCodesRequirement", "values", "set"),
    ("api.batch.v1.UncountedTerminatedPods", "failed", "set"),
    ("api.batch.v1.UncountedTerminatedPods", "succeeded", "set"),
    ("api.certificates.v1.CertificateSigningRequestStatus", "conditions", "map:type"),
    ("api.core.v1.ComponentStatus", "conditions", "map:type"),
    ("api.core.v1.Container", "env", "map:name"),
    ("api.core.v1.Container", "ports", "map:containerPort,protocol"),
    ("api.core.v1.Container", "volumeDevices", "map:devicePath"),
    ("api.core.v1.Container", "volumeMounts", "map:mountPath"),
    ("api.core.v1.ContainerRestartRuleOnExitCodes", "values", "set"),
    ("api.core.v1.ContainerStatus", "allocatedResourcesStatus", "map:name"),
    ("api.core.v1.ContainerStatus", "volumeMounts", "map:mountPath"),
    ("api.core.v1.EphemeralContainer", "env", "map:name"),
    ("api.core.v1.EphemeralContainer", "ports", "map:containerPort,protocol"),
    ("api.core.v1.EphemeralContainer", "volumeDevices", "map:devicePath"),
    ("api.core.v1.EphemeralContainer", "volumeMounts", "map:mountPath"),
    ("api.core.v1.NamespaceStatus", "conditions", "map:type"),
    ("api.core.v1.NodeSpec", "podCIDRs", "set"),
    ("api.core.v1.NodeStatus", "addresses", "map:type"),
    ("api.core.v1.NodeStatus", "conditions", "map:type"),
    ("api.core.v1.PersistentVolumeClaimStatus", "conditions", "map:type"),
    ("api.core.v1.PodSpec", "containers", "map:name"),
    ("api.core.v1.PodSpec", "ephemeralContainers", "map:name"),
    ("api.core.v1.PodSpec", "hostAliases", "map:ip"),
    ("api.core.v1.PodSpec", "imagePullSecrets", "map:name"),
    ("api.core.v1.PodSpec", "initContainers", "map:name"),
    ("api.core.v1.PodSpec", "resourceClaims", "map:name"),
    ("api.core.v1.PodSpec", "schedulingGates", "map:name"),
    ("api.core.v1.PodSpec", "topologySpreadConstraints", "map:topologyKey,whenUnsatisfiable"),
    ("api.core.v1.PodSpec", "volumes", "map:name"),
    ("api.core.v1.PodStatus", "conditions", "map:type"),
    ("api.core.v1.PodStatus", "hostIPs", "atomic"),
    ("api.core.v1.PodStatus", "podIPs", "map:ip"),
    ("api.core.v1.PodStatus", "resourceClaimStatuses", "map:name"),
    ("api.core.v1.ReplicationControllerStatus", "conditions", "map:type"),
    ("api.core.v1.ResourceRequirements", "claims", "map:name"),
    ("api.core.v1.ResourceStatus", "resources", "map:resourceID"),
    ("api.core.v1.ServiceAccount", "secrets", "map:name!"),
    ("api.core.v1.ServiceSpec", "ports", "map:port,protocol"),
    ("api.core.v1.ServiceStatus", "conditions", "map:type"),
    ("api.discovery.v1.Endpoint", "addresses", "set"),
    ("api.flowcontrol.v1.FlowSchemaStatus", "conditions", "map:type!"),
    ("api.flowcontrol.v1.NonResourcePolicyRule", "nonResourceURLs", "set"),
    ("api.flowcontrol.v1.NonResourcePolicyRule", "verbs", "set"),
    ("api.flowcontrol.v1.PriorityLevelConfigurationStatus", "conditions", "map:type!"),
    ("api.flowcontrol.v1.ResourcePolicyRule", "apiGroups", "set"),
    ("api.flowcontrol.v1.ResourcePolicyRule", "namespaces", "set"),
    ("api.flowcontrol.v1.ResourcePolicyRule", "resources", "set"),
    ("api.flowcontrol.v1.ResourcePolicyRule", "verbs", "set"),
    ("api.networking.v1.ServiceCIDRStatus", "conditions", "map:type"),
    ("api.policy.v1.PodDisruptionBudgetStatus", "conditions", "map:type"),
    ("api.resource.v1.AllocatedDeviceStatus", "conditions", "map:type"),
    ("api.resource.v1.ResourceClaimStatus", "devices", "map:driver,device,pool,shareID!"),
    ("api.resource.v1.ResourceClaimStatus", "reservedFor", "map:uid"),
    ("api.storage.v1.CSIDriverSpec", "volumeLifecycleModes", "set"),
    ("api.storage.v1.CSINodeSpec", "drivers", "map:name"),
    (
        "apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus",
        "conditions",
        "map:type",
    ),
    (
        "apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        "x-kubernetes-validations",
        "map:rule",
    ),
    ("apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers", "set"),
    ("apimachinery.pkg.apis.meta.v1.ObjectMeta", "ownerReferences", "map:uid"),
    ("kube-aggregator.pkg.apis.apiregistration.v1.APIServiceStatus", "conditions", "map:type"),
];

/// Definitions owned as a whole (`x-kubernetes-map-type: atomic` on the type).
const ATOMIC_TYPES: &[&str] = &[
    "api.admissionregistration.v1.MatchResources",
    "api.admissionregistration.v1.NamedRuleWithOperations",
    "api.admissionregistration.v1.ParamKind",
    "api.admissionregistration.v1.ParamRef",
    "api.admissionregistration.v1.Variable",
    "api.autoscaling.v1.CrossVersionObjectReference",
    "api.core.v1.ConfigMapKeySelector",
    "api.core.v1.EndpointAddress",
    "api.core.v1.EndpointPort",
    "api.core.v1.FileKeySelector",
    "api.core.v1.LocalObjectReference",
    "api.core.v1.NodeSelector",
    "api.core.v1.NodeSelectorTerm",
    "api.core.v1.ObjectFieldSelector",
    "api.core.v1.ObjectReference",
    "api.core.v1.ResourceFieldSelector",
    "api.core.v1.ScopeSelector",
    "api.core.v1.SecretKeySelector",
    "api.core.v1.SecretReference",
    "api.core.v1.TopologySelectorTerm",
    "api.core.v1.TypedLocalObjectReference",
    "api.discovery.v1.EndpointPort",
    "api.networking.v1.ServiceBackendPort",
    "api.rbac.v1.RoleRef",
    "api.rbac.v1.Subject",
    "apimachinery.pkg.apis.meta.v1.LabelSelector",
    "apimachinery.pkg.apis.meta.v1.OwnerReference",
];

/// Beta or alpha types that are not atomic although their GA twin is.
const GRANULAR_TYPES: &[&str] = &["api.admissionregistration.v1alpha1.Variable"];

/// Properties with their own map type (overriding the referenced type's).
const MAP_PROPERTIES: &[(&str, &str, &str)] = &[
    ("api.core.v1.PersistentVolumeClaimStatus", "allocatedResourceStatuses", "granular"),
    ("api.core.v1.PersistentVolumeSpec", "claimRef", "granular"),
    ("api.core.v1.PodSpec", "nodeSelector", "atomic"),
    ("api.core.v1.ReplicationControllerSpec", "selector", "atomic"),
    ("api.core.v1.ServiceSpec", "selector", "atomic"),
    ("api.node.v1.Scheduling", "nodeSelector", "atomic"),
];

/// Lists upstream leaves without a list type (treated as atomic).
const UNTYPED_LISTS: &[(&str, &str)] = &[("apimachinery.pkg.apis.meta.v1.APIResource", "verbs")];

/// Byte strings upstream marks as atomic lists (Go `[]byte` with `+listType=atomic`).
const ATOMIC_BYTES: &[(&str, &str)] =
    &[("kube-aggregator.pkg.apis.apiregistration.v1.APIServiceSpec", "caBundle")];

/// One key field of a list-map, with the value an item that omits it has (None: an
/// item must set it).
#[derive(Debug, Clone, PartialEq)]
pub struct ListKey {
    pub name: String,
    pub default: Option<Value>,
}

/// How a list merges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ListType<'a> {
    /// Owned and replaced as a whole.
    Atomic,
    /// Scalars merged by value.
    Set,
    /// Items merged by the values of these key fields.
    Map(&'a [ListKey]),
}

impl<'a> ListType<'a> {
    /// The key fields of a list-map (empty for other lists).
    pub fn keys(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        let keys: &'a [ListKey] = match self {
            ListType::Map(k) => k,
            _ => &[],
        };
        keys.iter().map(|k| k.name.as_str())
    }

    /// The value an item of this list-map has for `key` when it omits it: None for a key
    /// without a default.
    pub fn key_default(&self, key: &str) -> Option<Value> {
        let ListType::Map(keys) = self else { return None };
        keys.iter().find(|k| k.name == key)?.default.clone()
    }
}

/// A list's type owned (what a compiled schema keeps for each list property).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum OwnedListType {
    #[default]
    Atomic,
    Set,
    Map(Box<[ListKey]>),
}

impl OwnedListType {
    pub fn as_list_type(&self) -> ListType<'_> {
        match self {
            OwnedListType::Atomic => ListType::Atomic,
            OwnedListType::Set => ListType::Set,
            OwnedListType::Map(k) => ListType::Map(k),
        }
    }
}

impl From<ListType<'_>> for OwnedListType {
    fn from(t: ListType<'_>) -> OwnedListType {
        match t {
            ListType::Atomic => OwnedListType::Atomic,
            ListType::Set => OwnedListType::Set,
            ListType::Map(k) => OwnedListType::Map(k.into()),
        }
    }
}

fn short(definition: &str) -> &str {
    definition.strip_prefix("io.k8s.").unwrap_or(definition)
}

/// The GA twin of a beta or alpha definition (`api.resource.v1beta2.DeviceClass` ->
/// `api.resource.v1.DeviceClass`, `autoscaling.v2beta2` -> `v2`): the tables are written
/// for the GA types, and upstream keeps a type's list and map types across its versions.
pub(crate) fn ga_twin(short: &str) -> Option<String> {
    let mut parts: Vec<&str> = short.split('.').collect();
    let at = parts.iter().position(|p| prerelease_version(p).is_some())?;
    let major = prerelease_version(parts[at])?;
    parts[at] = major;
    Some(parts.join("."))
}

/// `v1` of `v1beta2` / `v1alpha1`; None for other segments.
fn prerelease_version(segment: &str) -> Option<&str> {
    let digits = segment.strip_prefix('v')?;
    let end = digits.find(|c: char| !c.is_ascii_digit())?;
    let rest = &digits[end..];
    let tag = rest.strip_prefix("beta").or_else(|| rest.strip_prefix("alpha"))?;
    (end > 0 && !tag.is_empty() && tag.bytes().all(|b| b.is_ascii_digit()))
        .then(|| &segment[..end + 1])
}

/// The first answer `f` gives for the definition's table name or its GA twin's.
fn lookup<T>(definition: &str, f: impl Fn(&str) -> Option<T>) -> Option<T> {
    let d = short(definition);
    f(d).or_else(|| f(&ga_twin(d)?))
}

/// The non-atomic lists of the table, parsed once: definition, then field, to its type.
type Parsed = HashMap<&'static str, HashMap<&'static str, OwnedListType>>;

fn parsed_lists() -> &'static Parsed {
    static PARSED: OnceLock<Parsed> = OnceLock::new();
    PARSED.get_or_init(|| {
        let mut out = Parsed::new();
        for (d, f, spec) in LISTS {
            out.entry(*d).or_default().insert(*f, parse_list_spec(spec));
        }
        out
    })
}

/// `set`, `atomic` or `map:KEY[,KEY...]` (a key marked `!` has no default).
fn parse_list_spec(spec: &str) -> OwnedListType {
    match spec {
        "set" => OwnedListType::Set,
        _ => match spec.strip_prefix("map:") {
            None => OwnedListType::Atomic,
            Some(keys) => OwnedListType::Map(
                keys.split(',')
                    .map(|k| match k.strip_suffix('!') {
                        Some(name) => ListKey { name: name.to_string(), default: None },
                        None => ListKey { name: k.to_string(), default: key_default(k) },
                    })
                    .collect(),
            ),
        },
    }
}

/// The list type of `field` in the type named `definition` (OpenAPI name).
pub fn list_type(definition: &str, field: &str) -> ListType<'static> {
    let lists = lookup(definition, |d| parsed_lists().get(d).and_then(|fields| fields.get(field)));
    lists.map_or(ListType::Atomic, OwnedListType::as_list_type)
}

/// Whether the value of `field` (a struct or a map) in `definition` is owned as a whole;
/// `child` is the definition the field refers to, if any.
pub fn atomic_map(definition: &str, field: &str, child: Option<&str>) -> bool {
    match lookup(definition, |d| map_property(d, field)) {
        Some(t) => t == "atomic",
        None => child.is_some_and(atomic_type),
    }
}

/// Whether the type named `definition` is owned as a whole.
pub fn atomic_type(definition: &str) -> bool {
    if GRANULAR_TYPES.contains(&short(definition)) {
        return false;
    }
    lookup(definition, |d| ATOMIC_TYPES.contains(&d).then_some(())).is_some()
}

/// The map type the table gives property `field` of `definition` (a table name).
fn map_property(definition: &str, field: &str) -> Option<&'static str> {
    MAP_PROPERTIES.iter().find(|(d, f, _)| *d == definition && *f == field).map(|(_, _, t)| *t)
}

/// The schema default of a list-map key field named `key` (upstream's `+default`
/// markers): `TCP` for a protocol, 0 for a port, the empty string for the other keys.
pub fn key_default(key: &str) -> Option<Value> {
    Some(match key {
        "protocol" => json!("TCP"),
        "containerPort" | "port" => json!(0),
        _ => json!(""),
    })
}

/// Add the OpenAPI extensions to the schemas: a list type on every list property, map
/// types on the atomic types and on the properties that name one.
pub fn annotate(definitions: &mut Map<String, Value>) {
    for (name, def) in definitions.iter_mut() {
        let d = short(name).to_string();
        if atomic_type(&d)
            && let Some(o) = def.as_object_mut()
        {
            o.insert("x-kubernetes-map-type".into(), json!("atomic"));
        }
        let Some(props) = def.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for (field, prop) in props.iter_mut() {
            annotate_property(&d, field, prop);
        }
    }
}

fn annotate_property(definition: &str, field: &str, prop: &mut Value) {
    let Some(p) = prop.as_object_mut() else { return };
    if let Some(t) = lookup(definition, |d| map_property(d, field)) {
        p.insert("x-kubernetes-map-type".into(), json!(t));
    }
    let listed = |table: &[(&str, &str)]| {
        lookup(definition, |d| table.contains(&(d, field)).then_some(())).is_some()
    };
    let is_list = p.get("type").and_then(Value::as_str) == Some("array") || listed(ATOMIC_BYTES);
    if !is_list || listed(UNTYPED_LISTS) {
        return;
    }
    let t = list_type(definition, field);
    let name = match t {
        ListType::Atomic => "atomic",
        ListType::Set => "set",
        ListType::Map(_) => "map",
    };
    if let ListType::Map(_) = t {
        p.insert("x-kubernetes-list-map-keys".into(), json!(t.keys().collect::<Vec<_>>()));
    }
    p.insert("x-kubernetes-list-type".into(), json!(name));
}

#[cfg(test)]
mod tests;
