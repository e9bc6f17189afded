//! Per-type behaviour, as upstream's registry strategies: defaulting, create/update
//! preparation (the spec/status split), validation and selectable fields.
//!
//! The engine applies them in this order on a write: decode -> `default` ->
//! `prepare_create`/`prepare_update` -> generic metadata validation (engine) ->
//! `validate` (+ `validate_create`)/`validate_update`. Strategies are pure functions of the objects.

use crate::error::FieldError;
use serde_json::Value;
use std::sync::Arc;

/// Which name format a resource's `metadata.name` must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// DNS-1123 subdomain (most types).
    Subdomain,
    /// DNS-1123 label (namespaces, services, ...).
    Label,
    /// Any name that is a valid path segment (RBAC roles and bindings, ...).
    PathSegment,
    /// A ClusterTrustBundle's: prefixed by its `spec.signerName` (see `certificates`).
    ClusterTrustBundle,
}

/// Per-type hooks. Every method has a neutral default so a type only writes what
/// differs from the generic behaviour.
pub trait Strategy: Send + Sync {
    /// Name format of `metadata.name`.
    fn name_rule(&self) -> NameRule {
        NameRule::Subdomain
    }

    /// Whether `metadata.generation` is maintained (1 on create, +1 on spec change).
    fn tracks_generation(&self) -> bool {
        false
    }

    /// Fill upstream's defaults (SetDefaults_*) into a decoded object, in place.
    fn default(&self, _obj: &mut Value) {}

    /// PrepareForCreate: e.g. reset status the client must not set.
    fn prepare_create(&self, _obj: &mut Value) {}

    /// PrepareForUpdate of the main resource: e.g. keep the old status.
    /// The engine has already copied `status` from `old` when the type has a status
    /// subresource; this is for anything beyond that.
    fn prepare_update(&self, _new: &mut Value, _old: &Value) {}

    /// Type-specific validation of a new object (metadata is validated by the engine).
    fn validate(&self, _obj: &Value) -> Vec<FieldError> {
        Vec::new()
    }

    /// Validation a create runs beside `validate` and an update does not (an update
    /// checks such a field in `validate_update`, when it changed: upstream's
    /// ClusterTrustBundle leaves an unchanged bundle unparsed).
    fn validate_create(&self, _obj: &Value) -> Vec<FieldError> {
        Vec::new()
    }

    /// Type-specific validation of an update (immutable fields and the like), after
    /// `validate` passed on `new`.
    fn validate_update(&self, _new: &Value, _old: &Value) -> Vec<FieldError> {
        Vec::new()
    }

    /// Extra selectable fields beyond `metadata.name` and `metadata.namespace`.
    fn selectable_fields(&self) -> &'static [&'static str] {
        &[]
    }

    /// The value of a selectable field (one of `selectable_fields`) as upstream's
    /// field set renders it (booleans as "true"/"false", missing as "").
    fn field_value(&self, _obj: &Value, _field: &str) -> Option<String> {
        None
    }
}

/// The strategy of types with no special behaviour.
#[derive(Debug, Default)]
pub struct Generic;

impl Strategy for Generic {}

mod admission;
pub mod certificates;
mod claims;
mod core;
mod crds;
mod flowcontrol;
mod mutating_admission;
mod pods;
mod resources;
mod util;
mod webhooks;
mod workloads;

/// The strategy of a built-in resource.
pub fn for_resource(group: &str, plural: &str) -> Arc<dyn Strategy> {
    match (group, plural) {
        ("", "pods") => Arc::new(pods::Pods),
        ("", "namespaces") => Arc::new(core::Namespaces),
        ("", "nodes") => Arc::new(core::Nodes),
        ("", "services") => Arc::new(core::Services),
        ("", "secrets") => Arc::new(core::Secrets),
        ("", "configmaps") => Arc::new(core::ConfigMaps),
        ("", "events") => Arc::new(core::Events),
        ("", "persistentvolumes") => Arc::new(core::PersistentVolumes),
        ("", "persistentvolumeclaims") => Arc::new(claims::PersistentVolumeClaims),
        ("", "replicationcontrollers") => Arc::new(workloads::ReplicationControllers),
        ("apps", "deployments") => Arc::new(workloads::Deployments),
        ("apps", "replicasets") => Arc::new(workloads::ReplicaSets),
        ("apps", "statefulsets") => Arc::new(workloads::StatefulSets),
        ("apps", "daemonsets") => Arc::new(workloads::DaemonSets),
        ("batch", "jobs") => Arc::new(workloads::Jobs),
        ("batch", "cronjobs") => Arc::new(workloads::CronJobs),
        ("rbac.authorization.k8s.io", _) => Arc::new(core::Rbac),
        ("certificates.k8s.io", "certificatesigningrequests") => Arc::new(core::Csrs),
        ("certificates.k8s.io", "clustertrustbundles") => {
            Arc::new(certificates::ClusterTrustBundles)
        }
        ("scheduling.k8s.io", "priorityclasses") => Arc::new(core::PriorityClasses),
        ("flowcontrol.apiserver.k8s.io", "flowschemas") => Arc::new(flowcontrol::FlowSchemas),
        ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations") => {
            Arc::new(flowcontrol::PriorityLevels)
        }
        ("storage.k8s.io", "storageclasses") => Arc::new(core::StorageClasses),
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            Arc::new(crds::CustomResourceDefinitions)
        }
        ("networking.k8s.io", "networkpolicies" | "ingresses")
        | ("policy", _)
        | ("autoscaling", _) => Arc::new(core::Generational),
        ("admissionregistration.k8s.io", "validatingadmissionpolicies") => {
            Arc::new(admission::ValidatingAdmissionPolicies)
        }
        ("admissionregistration.k8s.io", "validatingadmissionpolicybindings") => {
            Arc::new(admission::ValidatingAdmissionPolicyBindings)
        }
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations") => {
            Arc::new(webhooks::ValidatingWebhookConfigurations)
        }
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations") => {
            Arc::new(webhooks::MutatingWebhookConfigurations)
        }
        ("admissionregistration.k8s.io", "mutatingadmissionpolicies") => {
            Arc::new(mutating_admission::MutatingAdmissionPolicies)
        }
        ("admissionregistration.k8s.io", "mutatingadmissionpolicybindings") => {
            Arc::new(mutating_admission::MutatingAdmissionPolicyBindings)
        }
        _ => Arc::new(Generic),
    }
}
