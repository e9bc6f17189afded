//! Strategic-merge facts of the built-in types: which fields merge lists by a key, which
//! keep only the keys a patch names (`retainKeys`), which replace. Upstream keeps these
//! in Go struct tags (`patchStrategy`, `patchMergeKey`); they are written here by hand,
//! checked against `../shared/spec/swagger.json` in a test when it exists, added to the
//! schemas as `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key` (so the
//! OpenAPI documents carry them for kubectl) and read by `strategic`.

use serde_json::{Map, Value};

/// `(definition, field, strategy, merge key)`; definitions are relative to `io.k8s.`.
const FACTS: &[(&str, &str, &str, &str)] = &[
    (
        "api.admissionregistration.v1alpha1.MutatingAdmissionPolicySpec",
        "matchConditions",
        "merge",
        "name",
    ),
    (
        "api.admissionregistration.v1beta1.MutatingAdmissionPolicySpec",
        "matchConditions",
        "merge",
        "name",
    ),
    ("api.admissionregistration.v1.MutatingWebhook", "matchConditions", "merge", "name"),
    ("api.admissionregistration.v1.MutatingWebhookConfiguration", "webhooks", "merge", "name"),
    (
        "api.admissionregistration.v1.ValidatingAdmissionPolicySpec",
        "matchConditions",
        "merge",
        "name",
    ),
    ("api.admissionregistration.v1.ValidatingAdmissionPolicySpec", "variables", "merge", "name"),
    ("api.admissionregistration.v1.ValidatingWebhook", "matchConditions", "merge", "name"),
    ("api.admissionregistration.v1.ValidatingWebhookConfiguration", "webhooks", "merge", "name"),
    ("api.apps.v1.DeploymentSpec", "strategy", "retainKeys", ""),
    ("api.core.v1.Container", "env", "merge", "name"),
    ("api.core.v1.Container", "ports", "merge", "containerPort"),
    ("api.core.v1.Container", "volumeDevices", "merge", "devicePath"),
    ("api.core.v1.Container", "volumeMounts", "merge", "mountPath"),
    ("api.core.v1.ContainerStatus", "allocatedResourcesStatus", "merge", "name"),
    ("api.core.v1.ContainerStatus", "volumeMounts", "merge", "mountPath"),
    ("api.core.v1.EphemeralContainer", "env", "merge", "name"),
    ("api.core.v1.EphemeralContainer", "ports", "merge", "containerPort"),
    ("api.core.v1.EphemeralContainer", "volumeDevices", "merge", "devicePath"),
    ("api.core.v1.EphemeralContainer", "volumeMounts", "merge", "mountPath"),
    ("api.core.v1.NodeSpec", "podCIDRs", "merge", ""),
    ("api.core.v1.NodeStatus", "addresses", "merge", "type"),
    ("api.core.v1.PodSpec", "containers", "merge", "name"),
    ("api.core.v1.PodSpec", "ephemeralContainers", "merge", "name"),
    ("api.core.v1.PodSpec", "hostAliases", "merge", "ip"),
    ("api.core.v1.PodSpec", "imagePullSecrets", "merge", "name"),
    ("api.core.v1.PodSpec", "initContainers", "merge", "name"),
    ("api.core.v1.PodSpec", "resourceClaims", "merge,retainKeys", "name"),
    ("api.core.v1.PodSpec", "schedulingGates", "merge", "name"),
    ("api.core.v1.PodSpec", "topologySpreadConstraints", "merge", "topologyKey"),
    ("api.core.v1.PodSpec", "volumes", "merge,retainKeys", "name"),
    ("api.core.v1.PodStatus", "hostIPs", "merge", "ip"),
    ("api.core.v1.PodStatus", "podIPs", "merge", "ip"),
    ("api.core.v1.PodStatus", "resourceClaimStatuses", "merge,retainKeys", "name"),
    ("api.core.v1.ServiceAccount", "secrets", "merge", "name"),
    ("api.core.v1.ServiceSpec", "ports", "merge", "port"),
    ("api.policy.v1.PodDisruptionBudgetSpec", "selector", "replace", ""),
    ("api.resource.v1.ResourceClaimStatus", "reservedFor", "merge", "uid"),
    ("api.storage.v1.CSINodeSpec", "drivers", "merge", "name"),
    (
        "apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        "x-kubernetes-validations",
        "merge",
        "rule",
    ),
    ("apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers", "merge", ""),
    ("apimachinery.pkg.apis.meta.v1.ObjectMeta", "ownerReferences", "merge", "uid"),
];

/// Status types whose `conditions` merge by `type` (relative to `io.k8s.`).
const CONDITIONS_BY_TYPE: &[&str] = &[
    "api.apps.v1.DaemonSetStatus",
    "api.apps.v1.DeploymentStatus",
    "api.apps.v1.ReplicaSetStatus",
    "api.apps.v1.StatefulSetStatus",
    "api.autoscaling.v2.HorizontalPodAutoscalerStatus",
    "api.batch.v1.JobStatus",
    "api.certificates.v1beta1.PodCertificateRequestStatus",
    "api.core.v1.ComponentStatus",
    "api.core.v1.NamespaceStatus",
    "api.core.v1.NodeStatus",
    "api.core.v1.PersistentVolumeClaimStatus",
    "api.core.v1.PodStatus",
    "api.core.v1.ReplicationControllerStatus",
    "api.core.v1.ServiceStatus",
    "api.flowcontrol.v1.FlowSchemaStatus",
    "api.flowcontrol.v1.PriorityLevelConfigurationStatus",
    "api.networking.v1.ServiceCIDRStatus",
    "api.policy.v1.PodDisruptionBudgetStatus",
    "api.resource.v1alpha3.DeviceTaintRuleStatus",
    "api.storagemigration.v1beta1.StorageVersionMigrationStatus",
    "kube-aggregator.pkg.apis.apiregistration.v1.APIServiceStatus",
];

/// The patch strategy of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FieldStrategy {
    /// Lists merge element-wise (by `merge_key` for lists of objects).
    pub merge: bool,
    /// Maps keep only the keys named in `$retainKeys`.
    pub retain_keys: bool,
    /// The field is replaced as a whole.
    pub replace: bool,
    pub merge_key: Option<&'static str>,
}

fn short(definition: &str) -> &str {
    definition.strip_prefix("io.k8s.").unwrap_or(definition)
}

/// The strategy of `field` in the type named `definition` (OpenAPI name); a beta or
/// alpha type has its GA twin's (upstream keeps the tags across versions).
pub fn lookup(definition: &str, field: &str) -> FieldStrategy {
    let d = short(definition);
    table(d, field).or_else(|| table(&crate::topology::ga_twin(d)?, field)).unwrap_or_default()
}

/// What the tables say of `field` of the table name `d`.
fn table(d: &str, field: &str) -> Option<FieldStrategy> {
    if field == "conditions" && CONDITIONS_BY_TYPE.contains(&d) {
        return Some(FieldStrategy { merge: true, merge_key: Some("type"), ..Default::default() });
    }
    FACTS
        .iter()
        .find(|(def, f, _, _)| *def == d && *f == field)
        .map(|(_, _, strategy, key)| parse(strategy, key))
}

/// A strategy as the `x-kubernetes-patch-strategy` / `-merge-key` pair spells it.
fn parse(strategy: &str, key: &'static str) -> FieldStrategy {
    FieldStrategy {
        merge: strategy.split(',').any(|s| s == "merge"),
        retain_keys: strategy.split(',').any(|s| s == "retainKeys"),
        replace: strategy == "replace",
        merge_key: (!key.is_empty()).then_some(key),
    }
}

/// Every fact as `(full definition name, field, strategy, merge key)`.
pub fn all() -> impl Iterator<Item = (String, &'static str, &'static str, &'static str)> {
    let conditions =
        CONDITIONS_BY_TYPE.iter().map(|d| (format!("io.k8s.{d}"), "conditions", "merge", "type"));
    FACTS.iter().map(|(d, f, s, k)| (format!("io.k8s.{d}"), *f, *s, *k)).chain(conditions)
}

/// Add the OpenAPI extensions to the schemas' properties.
pub fn annotate(definitions: &mut Map<String, Value>) {
    for (def, field, strategy, key) in all() {
        let Some(prop) = definitions
            .get_mut(&def)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(field))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        prop.insert("x-kubernetes-patch-strategy".into(), Value::String(strategy.into()));
        if !key.is_empty() {
            prop.insert("x-kubernetes-patch-merge-key".into(), Value::String(key.into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let c = lookup("io.k8s.api.core.v1.PodSpec", "containers");
        assert!(c.merge && c.merge_key == Some("name"));
        let v = lookup("io.k8s.api.core.v1.PodSpec", "volumes");
        assert!(v.merge && v.retain_keys);
        assert!(lookup("io.k8s.api.core.v1.NodeStatus", "conditions").merge);
        assert!(lookup("io.k8s.api.policy.v1.PodDisruptionBudgetSpec", "selector").replace);
        assert_eq!(lookup("io.k8s.api.core.v1.PodSpec", "nodeName"), FieldStrategy::default());
    }

    #[test]
    fn facts_match_upstream_when_the_spec_is_present() {
        let Some(swagger) = crate::spec_files::swagger() else { return };
        // Every type kapi knows, the beta and alpha versions included.
        let served = &crate::schema::builtin().definitions;
        let mut upstream = Vec::new();
        let mut ours = Vec::new();
        for (name, def) in swagger["definitions"].as_object().unwrap() {
            if !served.contains_key(name) {
                continue;
            }
            for (field, prop) in def["properties"].as_object().into_iter().flatten() {
                if let Some(s) = prop["x-kubernetes-patch-strategy"].as_str() {
                    let key = prop["x-kubernetes-patch-merge-key"].as_str().unwrap_or("");
                    let key: &'static str = Box::leak(key.to_string().into_boxed_str());
                    upstream.push((name.clone(), field.clone(), parse(s, key)));
                }
                let mine = lookup(name, field);
                if mine != FieldStrategy::default() {
                    ours.push((name.clone(), field.clone(), mine));
                }
            }
        }
        assert_eq!(ours, upstream);
    }
}
