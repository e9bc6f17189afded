//! What PodSecurity answers for one pod (or pod template) under a namespace's policy
//! (upstream's `EvaluatePod`): a refusal from the enforce mode, an audit annotation from
//! the audit mode, a warning from the warn mode.
//!
//! Invariants:
//! - Each distinct level:version is evaluated once per request (enforce, audit and warn
//!   often share one).
//! - A pod template (`enforce = false`) is never refused, only warned about and audited.
//! - No warning is added to a request that is refused.
//! - Invalid namespace labels are reported in the `error` audit annotation; the policy
//!   they yield (see `api::policy_for`) is still applied.

use super::api::{self, LevelVersion, PREFIX, Policy};
use super::checks::Pod;
use super::evaluate::{Verdict, evaluate};
use kapi_codec::error::FieldError;

/// PodSecurity's answer for one object.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// The refusal's reason (`violates PodSecurity "restricted:latest": ...`).
    pub refusal: Option<String>,
    pub warnings: Vec<String>,
    /// Audit annotations, keys with upstream's `pod-security.kubernetes.io/` prefix.
    pub annotations: Vec<(String, String)>,
}

impl Decision {
    fn annotate(&mut self, key: &str, value: String) {
        self.annotations.push((format!("{PREFIX}{key}"), value));
    }
}

/// The answer for a pod whose namespace's policy is all privileged (upstream's shared
/// privileged response: only the enforced policy is noted).
pub fn privileged() -> Decision {
    let mut d = Decision::default();
    d.annotate("enforce-policy", LevelVersion::PRIVILEGED_LATEST.to_string());
    d
}

/// Evaluations of one request, memoized by level:version.
struct Memo<'p> {
    pod: &'p Pod<'p>,
    done: Vec<(LevelVersion, Verdict)>,
}

impl Memo<'_> {
    fn verdict(&mut self, lv: LevelVersion) -> &Verdict {
        let at = match self.done.iter().position(|(k, _)| *k == lv) {
            Some(at) => at,
            None => {
                self.done.push((lv, evaluate(lv, self.pod)));
                self.done.len() - 1
            }
        };
        &self.done[at].1
    }
}

/// Evaluate `pod` under `policy` (`errs`: the namespace labels' errors); `enforce` for
/// pods, not for pod templates.
pub fn decide(policy: &Policy, errs: &[FieldError], pod: &Pod<'_>, enforce: bool) -> Decision {
    let mut d = Decision::default();
    if !errs.is_empty() {
        d.annotate("error", format!("Failed to parse policy: {}", api::aggregate(errs)));
    }
    let mut memo = Memo { pod, done: Vec::with_capacity(3) };
    if enforce {
        d.annotate("enforce-policy", policy.enforce.to_string());
        let v = memo.verdict(policy.enforce);
        if !v.allowed() {
            d.refusal =
                Some(format!("violates PodSecurity \"{}\": {}", policy.enforce, v.details()));
        }
    }
    let v = memo.verdict(policy.audit);
    if !v.allowed() {
        let text = would_violate(policy.audit, v);
        d.annotate("audit-violations", text);
    }
    if d.refusal.is_none() {
        let v = memo.verdict(policy.warn);
        if !v.allowed() {
            d.warnings.push(would_violate(policy.warn, v));
        }
    }
    d
}

fn would_violate(lv: LevelVersion, v: &Verdict) -> String {
    format!("would violate PodSecurity \"{lv}\": {}", v.details())
}

#[cfg(test)]
mod tests {
    use super::super::api::policy_for;
    use super::super::checks::fixtures::restricted_pod;
    use super::*;
    use serde_json::{Value, json};

    fn privileged_pod() -> Value {
        json!({"metadata": {"name": "x"}, "spec": {"containers": [
            {"name": "c", "image": "i", "securityContext": {"privileged": true}}]}})
    }

    fn policy(labels: Value) -> (Policy, Vec<FieldError>) {
        policy_for(labels.as_object())
    }

    const PRIVILEGED_DETAIL: &str =
        "privileged (container \"c\" must not set securityContext.privileged=true)";

    #[test]
    fn enforce_refuses_with_upstreams_text_and_adds_no_warning() {
        let (p, errs) = policy(json!({
            "pod-security.kubernetes.io/enforce": "baseline",
            "pod-security.kubernetes.io/warn": "baseline",
        }));
        let pod = privileged_pod();
        let d = decide(&p, &errs, &Pod::of(&pod), true);
        assert_eq!(
            d.refusal.as_deref(),
            Some(format!("violates PodSecurity \"baseline:latest\": {PRIVILEGED_DETAIL}").as_str())
        );
        assert!(d.warnings.is_empty());
        assert_eq!(
            d.annotations,
            [("pod-security.kubernetes.io/enforce-policy".to_string(), "baseline:latest".into())]
        );
    }

    #[test]
    fn warn_and_audit_describe_without_refusing() {
        let (p, errs) = policy(json!({
            "pod-security.kubernetes.io/warn": "baseline",
            "pod-security.kubernetes.io/warn-version": "v1.30",
            "pod-security.kubernetes.io/audit": "restricted",
        }));
        let pod = privileged_pod();
        let d = decide(&p, &errs, &Pod::of(&pod), true);
        assert_eq!(d.refusal, None);
        assert_eq!(
            d.warnings,
            [format!("would violate PodSecurity \"baseline:v1.30\": {PRIVILEGED_DETAIL}")]
        );
        let audit = &d.annotations[1];
        assert_eq!(audit.0, "pod-security.kubernetes.io/audit-violations");
        assert!(audit.1.starts_with(&format!(
            "would violate PodSecurity \"restricted:latest\": {PRIVILEGED_DETAIL}, \
             allowPrivilegeEscalation != false"
        )));
    }

    #[test]
    fn templates_are_never_refused() {
        let (p, errs) = policy(json!({
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/warn": "privileged",
        }));
        let pod = privileged_pod();
        let d = decide(&p, &errs, &Pod::of(&pod), false);
        assert_eq!(d, Decision::default());
        // Enforce alone warns at its level (the warn level's default).
        let (p, errs) = policy(json!({"pod-security.kubernetes.io/enforce": "restricted"}));
        let d = decide(&p, &errs, &Pod::of(&pod), false);
        assert!(d.refusal.is_none());
        assert!(
            d.warnings[0]
                .starts_with("would violate PodSecurity \"restricted:latest\": privileged")
        );
    }

    #[test]
    fn invalid_labels_are_annotated_and_enforce_fails_closed() {
        let (p, errs) = policy(json!({"pod-security.kubernetes.io/enforce": "bogus"}));
        let ok = restricted_pod();
        let d = decide(&p, &errs, &Pod::of(&ok), true);
        assert_eq!(d.refusal, None);
        assert_eq!(
            d.annotations[0],
            (
                "pod-security.kubernetes.io/error".to_string(),
                "Failed to parse policy: metadata.labels[pod-security.kubernetes.io/enforce]: \
                 Invalid value: \"bogus\": must be one of privileged, baseline, restricted"
                    .to_string()
            )
        );
        assert_eq!(d.annotations[1].1, "restricted:latest");
        let bad = privileged_pod();
        assert!(decide(&p, &errs, &Pod::of(&bad), true).refusal.is_some());
    }
}
