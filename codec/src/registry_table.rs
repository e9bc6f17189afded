//! The tables of built-in v1.35 resource types: the GA group/versions upstream serves by
//! default (`builtin_types`), and the beta and alpha group/versions upstream v1.35 serves
//! only when `--runtime-config` enables them (`optional_types`), each in upstream's
//! discovery order. Group, version, kind, plural, scope, list kind and schema name come
//! from k8s-openapi's types; singular names, short names, categories, verbs, subresources
//! and storage key segments are written here by hand (upstream facts).
//!
//! Invariant: an optional version of a resource another version of which is stored (the
//! GA one, else the beta one) names that version as its `storage_version`, shares its
//! storage key and differs from it only in `apiVersion` (checked by a test); versions
//! whose types differ more are left out (they would need a real conversion).

use crate::registry::{Persistence, ResourceType, Review, Role, SchemaSource, Subresource};
use crate::strategy;
use k8s_openapi::api;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration;
use std::any::TypeId;

const ALL_VERBS: &[&str] =
    &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
const NS_VERBS: &[&str] = &["create", "delete", "get", "list", "patch", "update", "watch"];
const CREATE_ONLY: &[&str] = &["create"];
const READ_ONLY: &[&str] = &["get", "list"];
const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

const fn sub(
    name: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
) -> Subresource {
    Subresource { name, kind, group: "", version: "", verbs }
}

const fn sub_gv(
    name: &'static str,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
) -> Subresource {
    Subresource { name, kind, group, version, verbs }
}

const SCALE: Subresource = sub_gv("scale", "autoscaling", "v1", "Scale", STATUS_VERBS);

/// Facts about one type that k8s-openapi does not carry.
struct Facts {
    singular: &'static str,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    verbs: &'static [&'static str],
    subs: &'static [Subresource],
    persistence: Persistence,
    storage: Option<&'static str>,
}

const fn facts(singular: &'static str) -> Facts {
    Facts {
        singular,
        short: &[],
        categories: &[],
        verbs: ALL_VERBS,
        subs: &[],
        persistence: Persistence::Stored,
        storage: None,
    }
}

fn entry<T>(f: Facts) -> ResourceType
where
    T: k8s_openapi::Resource + schemars::JsonSchema + 'static,
    T::Scope: 'static,
{
    let namespaced =
        TypeId::of::<T::Scope>() == TypeId::of::<k8s_openapi::NamespaceResourceScope>();
    ResourceType {
        group: T::GROUP.into(),
        version: T::VERSION.into(),
        kind: T::KIND.into(),
        list_kind: format!("{}List", T::KIND).into(),
        plural: T::URL_PATH_SEGMENT.into(),
        singular: f.singular.into(),
        namespaced,
        short_names: f.short.iter().map(|&s| s.into()).collect(),
        categories: f.categories.iter().map(|&s| s.into()).collect(),
        verbs: f.verbs,
        subresources: f.subs.into(),
        persistence: f.persistence,
        role: role_of(T::GROUP, T::URL_PATH_SEGMENT),
        storage_resource: f.storage.unwrap_or(T::URL_PATH_SEGMENT).into(),
        schema_name: T::schema_name().into(),
        strategy: strategy::for_resource(T::GROUP, T::URL_PATH_SEGMENT),
        schema: SchemaSource::Builtin(|g| g.subschema_for::<T>()),
        storage_version: None,
        custom: None,
        cache: Default::default(),
    }
}

/// The role of a built-in type (see [`Role`]).
fn role_of(group: &str, plural: &str) -> Role {
    match (group, plural) {
        ("", "pods") => Role::Pods,
        ("", "namespaces") => Role::Namespaces,
        ("", "services") => Role::Services,
        ("", "componentstatuses") => Role::ComponentStatuses,
        ("apiextensions.k8s.io", "customresourcedefinitions") => Role::CustomResourceDefinitions,
        (_, "selfsubjectreviews") => Role::Review(Review::SelfSubject),
        (_, "tokenreviews") => Role::Review(Review::Token),
        (_, "selfsubjectaccessreviews" | "subjectaccessreviews" | "localsubjectaccessreviews") => {
            Role::Review(Review::Access)
        }
        (_, "selfsubjectrulesreviews") => Role::Review(Review::Rules),
        ("rbac.authorization.k8s.io", "roles" | "clusterroles") => Role::RbacRoles,
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => Role::RbacBindings,
        _ => Role::Plain,
    }
}

/// Shorthands for the table below.
macro_rules! facts {
    ($singular:literal $(, $field:ident : $value:expr)* $(,)?) => {{
        #[allow(unused_mut)]
        let mut f = facts($singular);
        $(facts!(@set f, $field, $value);)*
        f
    }};
    (@set $f:ident, short, $v:expr) => { $f.short = $v };
    (@set $f:ident, cats, $v:expr) => { $f.categories = $v };
    (@set $f:ident, verbs, $v:expr) => { $f.verbs = $v };
    (@set $f:ident, subs, $v:expr) => {{
        const SUBS: &[Subresource] = $v;
        $f.subs = SUBS
    }};
    (@set $f:ident, virt, $v:expr) => { if $v { $f.persistence = Persistence::Virtual } };
    (@set $f:ident, storage, $v:expr) => { $f.storage = Some($v) };
}

const STATUS: &[Subresource] = &[sub("status", "", STATUS_VERBS)];
const ALL: &[&str] = &["all"];
const API_EXT: &[&str] = &["api-extensions"];

pub(crate) fn builtin_types() -> Vec<ResourceType> {
    use api::core::v1 as core;
    let t = vec![
        entry::<core::Binding>(facts!("binding", verbs: CREATE_ONLY, virt: true)),
        entry::<core::ComponentStatus>(
            facts!("componentstatus", short: &["cs"], verbs: READ_ONLY, virt: true),
        ),
        entry::<core::ConfigMap>(facts!("configmap", short: &["cm"])),
        entry::<core::Endpoints>(
            facts!("endpoints", short: &["ep"], storage: "services/endpoints"),
        ),
        entry::<core::Event>(facts!("event", short: &["ev"])),
        entry::<core::LimitRange>(facts!("limitrange", short: &["limits"])),
        entry::<core::Namespace>(facts!("namespace", short: &["ns"], verbs: NS_VERBS,
            subs: &[sub("finalize", "", &["update"]), sub("status", "", STATUS_VERBS)])),
        entry::<core::Node>(facts!("node", short: &["no"],
            subs: &[sub("proxy", "NodeProxyOptions", &["create", "delete", "get", "patch", "update"]), sub("status", "", STATUS_VERBS)],
            storage: "minions")),
        entry::<core::PersistentVolumeClaim>(
            facts!("persistentvolumeclaim", short: &["pvc"], subs: STATUS),
        ),
        entry::<core::PersistentVolume>(facts!("persistentvolume", short: &["pv"], subs: STATUS)),
        entry::<core::Pod>(facts!("pod", short: &["po"], cats: ALL, subs: &[
            sub("attach", "PodAttachOptions", &["create", "get"]),
            sub("binding", "Binding", &["create"]),
            sub("ephemeralcontainers", "", STATUS_VERBS),
            sub_gv("eviction", "policy", "v1", "Eviction", &["create"]),
            sub("exec", "PodExecOptions", &["create", "get"]),
            sub("log", "", &["get"]),
            sub("portforward", "PodPortForwardOptions", &["create", "get"]),
            sub("proxy", "PodProxyOptions", &["create", "delete", "get", "patch", "update"]),
            sub("resize", "", STATUS_VERBS),
            sub("status", "", STATUS_VERBS),
        ])),
        entry::<core::PodTemplate>(facts!("podtemplate")),
        entry::<core::ReplicationController>(
            facts!("replicationcontroller", short: &["rc"], cats: ALL,
            subs: &[SCALE, sub("status", "", STATUS_VERBS)], storage: "controllers"),
        ),
        entry::<core::ResourceQuota>(facts!("resourcequota", short: &["quota"], subs: STATUS)),
        entry::<core::Secret>(facts!("secret")),
        entry::<core::ServiceAccount>(facts!("serviceaccount", short: &["sa"],
            subs: &[sub_gv("token", "authentication.k8s.io", "v1", "TokenRequest", &["create"])])),
        entry::<core::Service>(facts!("service", short: &["svc"], cats: ALL,
            subs: &[sub("proxy", "ServiceProxyOptions", &["create", "delete", "get", "patch", "update"]), sub("status", "", STATUS_VERBS)],
            storage: "services/specs")),
        entry::<apiregistration::APIService>(
            facts!("apiservice", cats: API_EXT, subs: STATUS, storage: "apiregistration.k8s.io/apiservices"),
        ),
        entry::<api::apps::v1::ControllerRevision>(facts!("controllerrevision")),
        entry::<api::apps::v1::DaemonSet>(
            facts!("daemonset", short: &["ds"], cats: ALL, subs: STATUS),
        ),
        entry::<api::apps::v1::Deployment>(
            facts!("deployment", short: &["deploy"], cats: ALL, subs: &[SCALE, sub("status", "", STATUS_VERBS)]),
        ),
        entry::<api::apps::v1::ReplicaSet>(
            facts!("replicaset", short: &["rs"], cats: ALL, subs: &[SCALE, sub("status", "", STATUS_VERBS)]),
        ),
        entry::<api::apps::v1::StatefulSet>(
            facts!("statefulset", short: &["sts"], cats: ALL, subs: &[SCALE, sub("status", "", STATUS_VERBS)]),
        ),
        entry::<api::events::v1::Event>(facts!("event", short: &["ev"])),
        entry::<api::authentication::v1::SelfSubjectReview>(
            facts!("selfsubjectreview", verbs: CREATE_ONLY, virt: true),
        ),
        entry::<api::authentication::v1::TokenReview>(
            facts!("tokenreview", verbs: CREATE_ONLY, virt: true),
        ),
        entry::<api::authorization::v1::LocalSubjectAccessReview>(
            facts!("localsubjectaccessreview", verbs: CREATE_ONLY, virt: true),
        ),
        entry::<api::authorization::v1::SelfSubjectAccessReview>(
            facts!("selfsubjectaccessreview", verbs: CREATE_ONLY, virt: true),
        ),
        entry::<api::authorization::v1::SelfSubjectRulesReview>(
            facts!("selfsubjectrulesreview", verbs: CREATE_ONLY, virt: true),
        ),
        entry::<api::authorization::v1::SubjectAccessReview>(
            facts!("subjectaccessreview", verbs: CREATE_ONLY, virt: true),
        ),
        entry::<api::autoscaling::v2::HorizontalPodAutoscaler>(
            facts!("horizontalpodautoscaler", short: &["hpa"], cats: ALL, subs: STATUS),
        ),
        entry::<api::autoscaling::v1::HorizontalPodAutoscaler>(
            facts!("horizontalpodautoscaler", short: &["hpa"], cats: ALL, subs: STATUS),
        ),
        entry::<api::batch::v1::CronJob>(
            facts!("cronjob", short: &["cj"], cats: ALL, subs: STATUS),
        ),
        entry::<api::batch::v1::Job>(facts!("job", cats: ALL, subs: STATUS)),
        entry::<api::certificates::v1::CertificateSigningRequest>(
            facts!("certificatesigningrequest", short: &["csr"],
            subs: &[sub("approval", "", STATUS_VERBS), sub("status", "", STATUS_VERBS)]),
        ),
        entry::<api::networking::v1::IngressClass>(facts!("ingressclass")),
        entry::<api::networking::v1::Ingress>(
            facts!("ingress", short: &["ing"], subs: STATUS, storage: "ingress"),
        ),
        entry::<api::networking::v1::IPAddress>(facts!("ipaddress", short: &["ip"])),
        entry::<api::networking::v1::NetworkPolicy>(facts!("networkpolicy", short: &["netpol"])),
        entry::<api::networking::v1::ServiceCIDR>(facts!("servicecidr", subs: STATUS)),
        entry::<api::policy::v1::PodDisruptionBudget>(
            facts!("poddisruptionbudget", short: &["pdb"], subs: STATUS),
        ),
        entry::<api::rbac::v1::ClusterRoleBinding>(facts!("clusterrolebinding")),
        entry::<api::rbac::v1::ClusterRole>(facts!("clusterrole")),
        entry::<api::rbac::v1::RoleBinding>(facts!("rolebinding")),
        entry::<api::rbac::v1::Role>(facts!("role")),
        entry::<api::storage::v1::CSIDriver>(facts!("csidriver")),
        entry::<api::storage::v1::CSINode>(facts!("csinode")),
        entry::<api::storage::v1::CSIStorageCapacity>(facts!("csistoragecapacity")),
        entry::<api::storage::v1::StorageClass>(facts!("storageclass", short: &["sc"])),
        entry::<api::storage::v1::VolumeAttachment>(facts!("volumeattachment", subs: STATUS)),
        entry::<api::storage::v1::VolumeAttributesClass>(
            facts!("volumeattributesclass", short: &["vac"]),
        ),
        entry::<api::admissionregistration::v1::MutatingWebhookConfiguration>(
            facts!("mutatingwebhookconfiguration", cats: API_EXT),
        ),
        entry::<api::admissionregistration::v1::ValidatingAdmissionPolicy>(
            facts!("validatingadmissionpolicy", cats: API_EXT, subs: STATUS),
        ),
        entry::<api::admissionregistration::v1::ValidatingAdmissionPolicyBinding>(
            facts!("validatingadmissionpolicybinding", cats: API_EXT),
        ),
        entry::<api::admissionregistration::v1::ValidatingWebhookConfiguration>(
            facts!("validatingwebhookconfiguration", cats: API_EXT),
        ),
        entry::<apiextensions::CustomResourceDefinition>(
            facts!("customresourcedefinition", short: &["crd", "crds"], cats: API_EXT,
            subs: STATUS, storage: "apiextensions.k8s.io/customresourcedefinitions"),
        ),
        entry::<api::scheduling::v1::PriorityClass>(facts!("priorityclass", short: &["pc"])),
        entry::<api::coordination::v1::Lease>(facts!("lease")),
        entry::<api::node::v1::RuntimeClass>(facts!("runtimeclass")),
        entry::<api::discovery::v1::EndpointSlice>(facts!("endpointslice")),
        entry::<api::flowcontrol::v1::FlowSchema>(facts!("flowschema", subs: STATUS)),
        entry::<api::flowcontrol::v1::PriorityLevelConfiguration>(
            facts!("prioritylevelconfiguration", subs: STATUS),
        ),
        entry::<api::resource::v1::DeviceClass>(facts!("deviceclass")),
        entry::<api::resource::v1::ResourceClaimTemplate>(facts!("resourceclaimtemplate")),
        entry::<api::resource::v1::ResourceClaim>(facts!("resourceclaim", subs: STATUS)),
        entry::<api::resource::v1::ResourceSlice>(facts!("resourceslice")),
    ];
    t
}

/// An optional version stored as `storage_version` of its group (see the module doc).
fn stored_as<T>(storage_version: &'static str, f: Facts) -> ResourceType
where
    T: k8s_openapi::Resource + schemars::JsonSchema + 'static,
    T::Scope: 'static,
{
    ResourceType { storage_version: Some(storage_version.into()), ..entry::<T>(f) }
}

/// The beta and alpha group/versions of upstream v1.35 (disabled by default), grouped by
/// group in upstream's group order and, within a group, in upstream's version priority.
/// Only types k8s-openapi 0.29 provides, and only versions stored as is or convertible to
/// their storage version by `apiVersion` alone.
pub(crate) fn optional_types() -> Vec<ResourceType> {
    use api::admissionregistration::{v1alpha1 as ar_a1, v1beta1 as ar_b1};
    use api::resource::{v1alpha3 as dra_a3, v1beta1 as dra_b1, v1beta2 as dra_b2};
    vec![
        // admissionregistration.k8s.io: MutatingAdmissionPolicy is beta, stored as v1beta1.
        entry::<ar_b1::MutatingAdmissionPolicy>(facts!("mutatingadmissionpolicy", cats: API_EXT)),
        entry::<ar_b1::MutatingAdmissionPolicyBinding>(
            facts!("mutatingadmissionpolicybinding", cats: API_EXT),
        ),
        stored_as::<ar_a1::MutatingAdmissionPolicy>(
            "v1beta1",
            facts!("mutatingadmissionpolicy", cats: API_EXT),
        ),
        stored_as::<ar_a1::MutatingAdmissionPolicyBinding>(
            "v1beta1",
            facts!("mutatingadmissionpolicybinding", cats: API_EXT),
        ),
        // certificates.k8s.io
        entry::<api::certificates::v1beta1::ClusterTrustBundle>(facts!("clustertrustbundle")),
        entry::<api::certificates::v1beta1::PodCertificateRequest>(
            facts!("podcertificaterequest", subs: STATUS),
        ),
        stored_as::<api::certificates::v1alpha1::ClusterTrustBundle>(
            "v1beta1",
            facts!("clustertrustbundle"),
        ),
        // coordination.k8s.io
        entry::<api::coordination::v1beta1::LeaseCandidate>(facts!("leasecandidate")),
        stored_as::<api::coordination::v1alpha2::LeaseCandidate>(
            "v1beta1",
            facts!("leasecandidate"),
        ),
        // networking.k8s.io: stored as v1.
        stored_as::<api::networking::v1beta1::IPAddress>("v1", facts!("ipaddress", short: &["ip"])),
        stored_as::<api::networking::v1beta1::ServiceCIDR>(
            "v1",
            facts!("servicecidr", subs: STATUS),
        ),
        // scheduling.k8s.io
        entry::<api::scheduling::v1alpha1::Workload>(facts!("workload")),
        // storage.k8s.io: stored as v1.
        stored_as::<api::storage::v1beta1::VolumeAttributesClass>(
            "v1",
            facts!("volumeattributesclass", short: &["vac"]),
        ),
        // internal.apiserver.k8s.io
        entry::<api::apiserverinternal::v1alpha1::StorageVersion>(
            facts!("storageversion", subs: STATUS),
        ),
        // resource.k8s.io: stored as v1.
        stored_as::<dra_b2::DeviceClass>("v1", facts!("deviceclass")),
        stored_as::<dra_b2::ResourceClaimTemplate>("v1", facts!("resourceclaimtemplate")),
        stored_as::<dra_b2::ResourceClaim>("v1", facts!("resourceclaim", subs: STATUS)),
        stored_as::<dra_b2::ResourceSlice>("v1", facts!("resourceslice")),
        // v1beta1's ResourceClaim, ResourceClaimTemplate (requests without `exactly`) and
        // ResourceSlice (devices under `basic`) need upstream's conversion: not served.
        stored_as::<dra_b1::DeviceClass>("v1", facts!("deviceclass")),
        entry::<dra_a3::DeviceTaintRule>(facts!("devicetaintrule", subs: STATUS)),
        // storagemigration.k8s.io
        entry::<api::storagemigration::v1beta1::StorageVersionMigration>(
            facts!("storageversionmigration", subs: STATUS),
        ),
    ]
}
