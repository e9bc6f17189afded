//! The admission plugins kapi knows: upstream's names in upstream's order, which are on
//! by default, and how `--enable-admission-plugins` / `--disable-admission-plugins`
//! pick the chain (the default set, plus what is enabled, minus what is disabled, run in
//! [`ORDER`] whatever order the flags name them in).
//!
//! A plugin upstream has and kapi does not implement yet is known (its name is accepted)
//! but left out of the chain with a warning at start, so a kubeadm-style command line
//! still starts; `construct` is the one list of implemented plugins.
//!
//! MutatingAdmissionPolicy is in upstream's default set, gated there by its (beta, off)
//! feature gate; kapi has no feature gates, so the plugin is built and stays inert until
//! `--runtime-config` serves `admissionregistration.k8s.io/v1beta1`. PodTopologyLabels'
//! gate (PodTopologyLabelsAdmission) is beta and on by default in v1.35: the plugin runs.

use super::{Config, Plugin};

/// Upstream's plugins in execution order (kube-apiserver's `AllOrderedPlugins`).
pub const ORDER: &[&str] = &[
    "AlwaysAdmit",
    "NamespaceAutoProvision",
    "NamespaceLifecycle",
    "NamespaceExists",
    "LimitPodHardAntiAffinityTopology",
    "LimitRanger",
    "ServiceAccount",
    "NodeRestriction",
    "TaintNodesByCondition",
    "AlwaysPullImages",
    "ImagePolicyWebhook",
    "PodSecurity",
    "PodNodeSelector",
    "Priority",
    "DefaultTolerationSeconds",
    "PodTolerationRestriction",
    "EventRateLimit",
    "ExtendedResourceToleration",
    "DefaultStorageClass",
    "StorageObjectInUseProtection",
    "OwnerReferencesPermissionEnforcement",
    "PersistentVolumeClaimResize",
    "RuntimeClass",
    "CertificateApproval",
    "CertificateSigning",
    "ClusterTrustBundleAttest",
    "CertificateSubjectRestriction",
    "DefaultIngressClass",
    "DenyServiceExternalIPs",
    "PodTopologyLabels",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionWebhook",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook",
    "ResourceQuota",
    "AlwaysDeny",
];

/// The plugins on when no flag says otherwise (upstream's default-on set).
pub const DEFAULT_ON: &[&str] = &[
    "NamespaceLifecycle",
    "LimitRanger",
    "ServiceAccount",
    "TaintNodesByCondition",
    "PodSecurity",
    "Priority",
    "DefaultTolerationSeconds",
    "DefaultStorageClass",
    "StorageObjectInUseProtection",
    "PersistentVolumeClaimResize",
    "RuntimeClass",
    "CertificateApproval",
    "CertificateSigning",
    "ClusterTrustBundleAttest",
    "CertificateSubjectRestriction",
    "DefaultIngressClass",
    "PodTopologyLabels",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionWebhook",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook",
    "ResourceQuota",
];

/// The plugin named `name`, if kapi implements it.
fn construct(name: &str, cfg: &Config) -> Option<Box<dyn Plugin>> {
    Some(match name {
        "NamespaceLifecycle" => Box::new(super::lifecycle::NamespaceLifecycle),
        "LimitRanger" => Box::new(super::limitranger::LimitRanger),
        "ResourceQuota" => Box::new(super::quota::ResourceQuota),
        "MutatingAdmissionWebhook" => Box::new(super::webhook::MutatingWebhook::new()),
        "ValidatingAdmissionWebhook" => Box::new(super::webhook::ValidatingWebhook::new()),
        "MutatingAdmissionPolicy" => Box::new(super::policy::MutatingPolicyPlugin::new()),
        "ValidatingAdmissionPolicy" => Box::new(super::policy::ValidatingPolicy::new()),
        "PodSecurity" => Box::new(super::podsecurity::PodSecurity),
        "ServiceAccount" => Box::new(super::service_account::ServiceAccount),
        "NodeRestriction" => Box::new(super::node_restriction::NodeRestriction),
        "TaintNodesByCondition" => Box::new(super::node_taint::TaintNodesByCondition),
        "Priority" => Box::new(super::priority::Priority::default()),
        "DefaultTolerationSeconds" => {
            Box::new(super::tolerations::DefaultTolerationSeconds::new(cfg))
        }
        "DefaultStorageClass" => Box::new(super::default_storage_class::DefaultStorageClass),
        "StorageObjectInUseProtection" => {
            Box::new(super::storage_protection::StorageObjectInUseProtection)
        }
        "DefaultIngressClass" => Box::new(super::default_ingress_class::DefaultIngressClass),
        "PersistentVolumeClaimResize" => Box::new(super::pvc_resize::PersistentVolumeClaimResize),
        "RuntimeClass" => Box::new(super::runtime_class::RuntimeClass),
        "CertificateApproval" => Box::new(super::certificates::approval::CertificateApproval),
        "CertificateSigning" => Box::new(super::certificates::signing::CertificateSigning),
        "ClusterTrustBundleAttest" => {
            Box::new(super::certificates::ctb_attest::ClusterTrustBundleAttest)
        }
        "CertificateSubjectRestriction" => {
            Box::new(super::certificates::subject::CertificateSubjectRestriction)
        }
        "PodTopologyLabels" => Box::new(super::pod_topology::PodTopologyLabels),
        _ => return None,
    })
}

/// Split a comma-separated flag value into names (blanks dropped).
fn names(values: &[String]) -> Vec<&str> {
    values.iter().flat_map(|v| v.split(',')).map(str::trim).filter(|n| !n.is_empty()).collect()
}

/// Which plugins run, in order, as the flags say.
pub fn enabled(enable: &[String], disable: &[String]) -> Result<Vec<&'static str>, String> {
    let (enable, disable) = (names(enable), names(disable));
    for (flag, list) in [("enable", &enable), ("disable", &disable)] {
        if let Some(unknown) = list.iter().find(|n| !ORDER.contains(n)) {
            return Err(format!("{flag}-admission-plugins plugin \"{unknown}\" is unknown"));
        }
    }
    let overlap: Vec<&str> = enable.iter().filter(|n| disable.contains(n)).copied().collect();
    if !overlap.is_empty() {
        return Err(format!(
            "{overlap:?} in enable-admission-plugins and disable-admission-plugins overlapped"
        ));
    }
    Ok(ORDER
        .iter()
        .copied()
        .filter(|n| (DEFAULT_ON.contains(n) || enable.contains(n)) && !disable.contains(n))
        .collect())
}

/// Build the chain's plugins; names kapi does not implement are reported and skipped.
pub fn build(
    enable: &[String],
    disable: &[String],
    cfg: &Config,
) -> Result<Vec<Box<dyn Plugin>>, String> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for name in enabled(enable, disable)? {
        match construct(name, cfg) {
            Some(p) => out.push(p),
            None => missing.push(name),
        }
    }
    if !missing.is_empty() {
        tracing::warn!(
            plugins = %missing.join(","),
            "admission plugins enabled but not implemented by kapi: requests pass them unchecked"
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Vec<String> {
        vec![v.to_string()]
    }

    #[test]
    fn the_default_set_runs_in_upstreams_order() {
        let on = enabled(&[], &[]).unwrap();
        assert_eq!(on.len(), DEFAULT_ON.len());
        let positions: Vec<usize> =
            on.iter().map(|n| ORDER.iter().position(|o| o == n).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn flags_add_and_remove_in_order_whatever_order_they_name() {
        let on = enabled(&s("AlwaysDeny,NodeRestriction"), &s("PodSecurity")).unwrap();
        assert!(!on.contains(&"PodSecurity"));
        let nr = on.iter().position(|n| *n == "NodeRestriction").unwrap();
        let sa = on.iter().position(|n| *n == "ServiceAccount").unwrap();
        assert!(sa < nr, "NodeRestriction runs after ServiceAccount as upstream");
        assert_eq!(on.last(), Some(&"AlwaysDeny"));
    }

    #[test]
    fn unknown_and_overlapping_plugins_are_refused_with_upstreams_messages() {
        let err = enabled(&s("Nope"), &[]).unwrap_err();
        assert_eq!(err, "enable-admission-plugins plugin \"Nope\" is unknown");
        let err = enabled(&s("LimitRanger"), &s("LimitRanger")).unwrap_err();
        assert!(err.contains("overlapped"), "{err}");
    }
}
