//! Evaluating a pod against a level at a version (upstream's check registry and
//! `AggregateCheckResults`).
//!
//! Invariants:
//! - `privileged` allows everything without running a check.
//! - Baseline's own checks run first (in registration order), then baseline's
//!   overlapping checks for a baseline policy, or the restricted checks for a restricted
//!   one: the order upstream reports violations in.

use super::api::{Level, LevelVersion};
use super::checks::{CHECKS, Pod, Violation};

/// What a pod breaks at one level and version (empty: allowed).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub violations: Vec<Violation>,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The reasons alone: `privileged, host namespaces` (the namespace-wide warning).
    pub fn reasons(&self) -> String {
        let all: Vec<&str> = self.violations.iter().map(|v| v.reason.as_ref()).collect();
        all.join(", ")
    }

    /// The reasons with their details: `privileged (container "c" must not ...), ...`.
    pub fn details(&self) -> String {
        let mut out = String::new();
        for (i, v) in self.violations.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&v.reason);
            if !v.detail.is_empty() {
                out.push_str(" (");
                out.push_str(&v.detail);
                out.push(')');
            }
        }
        out
    }
}

/// Evaluate `pod` against `lv`.
pub fn evaluate(lv: LevelVersion, pod: &Pod<'_>) -> Verdict {
    let mut verdict = Verdict::default();
    if lv.level == Level::Privileged {
        return verdict;
    }
    let phases: [&dyn Fn(&super::checks::Check) -> bool; 2] =
        [&|c| c.level == Level::Baseline && !c.overlap, &|c| match lv.level {
            Level::Baseline => c.level == Level::Baseline && c.overlap,
            _ => c.level == Level::Restricted,
        }];
    for runs in phases {
        for check in CHECKS.iter().filter(|c| runs(c)) {
            if let Some(v) = check.at(lv.version).and_then(|f| f(pod)) {
                verdict.violations.push(v);
            }
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::super::api::Version;
    use super::super::checks::fixtures::{restricted_pod, set, tweak};
    use super::*;
    use serde_json::{Value, json};

    fn lv(level: Level, version: Version) -> LevelVersion {
        LevelVersion { level, version }
    }

    fn privileged_pod() -> Value {
        json!({
            "metadata": {"name": "x"},
            "spec": {"containers": [{"name": "c", "image": "i", "securityContext": {"privileged": true}}]}
        })
    }

    #[test]
    fn restricted_reports_baseline_then_restricted_violations_as_upstream() {
        let pod = privileged_pod();
        let v = evaluate(lv(Level::Restricted, Version::LATEST), &Pod::of(&pod));
        assert_eq!(
            v.details(),
            "privileged (container \"c\" must not set securityContext.privileged=true), \
             allowPrivilegeEscalation != false (container \"c\" must set \
             securityContext.allowPrivilegeEscalation=false), unrestricted capabilities \
             (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), \
             runAsNonRoot != true (pod or container \"c\" must set \
             securityContext.runAsNonRoot=true), seccompProfile (pod or container \"c\" must \
             set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        );
        assert_eq!(
            v.reasons(),
            "privileged, allowPrivilegeEscalation != false, unrestricted capabilities, \
             runAsNonRoot != true, seccompProfile"
        );
    }

    #[test]
    fn baseline_runs_overlapping_checks_restricted_replaces_them() {
        let pod = tweak(|p| {
            set(p, "/spec/volumes", json!([{"name": "h", "hostPath": {"path": "/"}}]));
            set(p, "/spec/containers/0/securityContext/capabilities/add", json!(["SYS_ADMIN"]));
        });
        let base = evaluate(lv(Level::Baseline, Version::LATEST), &Pod::of(&pod));
        assert_eq!(base.reasons(), "non-default capabilities, hostPath volumes");
        let restricted = evaluate(lv(Level::Restricted, Version::LATEST), &Pod::of(&pod));
        assert_eq!(restricted.reasons(), "unrestricted capabilities, restricted volume types");
    }

    #[test]
    fn checks_apply_from_the_version_they_were_introduced_in() {
        let pod = tweak(|p| {
            set(p, "/spec/containers/0/securityContext/capabilities", json!({}));
            set(p, "/spec/containers/0/securityContext/runAsUser", json!(0));
        });
        let at = |version| evaluate(lv(Level::Restricted, version), &Pod::of(&pod)).reasons();
        assert_eq!(at(Version::v1(21)), "");
        assert_eq!(at(Version::v1(22)), "unrestricted capabilities");
        assert_eq!(at(Version::v1(23)), "unrestricted capabilities, runAsUser=0");
        assert_eq!(at(Version::v1(999)), at(Version::LATEST));
    }

    #[test]
    fn compliant_pods_pass_and_privileged_allows_anything() {
        let ok = restricted_pod();
        assert!(evaluate(lv(Level::Restricted, Version::LATEST), &Pod::of(&ok)).allowed());
        let bad = privileged_pod();
        assert!(evaluate(LevelVersion::PRIVILEGED_LATEST, &Pod::of(&bad)).allowed());
        assert!(!evaluate(lv(Level::Baseline, Version::v1(0)), &Pod::of(&bad)).allowed());
    }

    #[test]
    fn baseline_proc_mount_relaxes_for_user_namespaces_from_1_35_only() {
        let pod = tweak(|p| {
            set(p, "/spec/hostUsers", json!(false));
            set(p, "/spec/containers/0/securityContext/procMount", json!("Unmasked"));
        });
        let at = |level, version| evaluate(lv(level, version), &Pod::of(&pod)).reasons();
        assert_eq!(at(Level::Baseline, Version::v1(34)), "procMount");
        assert_eq!(at(Level::Baseline, Version::v1(35)), "");
        assert_eq!(at(Level::Restricted, Version::LATEST), "procMount");
    }
}
