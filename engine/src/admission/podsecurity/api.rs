//! Pod Security levels, policy versions and the namespace labels that choose them, as
//! upstream's `pod-security-admission/api`.
//!
//! A namespace names a level and a version per mode (`enforce`, `audit`, `warn`) in the
//! labels `pod-security.kubernetes.io/<mode>` and `pod-security.kubernetes.io/<mode>-version`.
//! An unset label takes the default (`privileged` / `latest`).
//!
//! Invariants (upstream's `PolicyToEvaluate`):
//! - A policy is always produced, even from invalid labels: an invalid enforce level is
//!   `restricted` (fail closed), an invalid audit or warn level `privileged` (fail open),
//!   an invalid version `latest`; each invalid label is reported as a field error.
//! - A namespace that sets only the enforce level warns at that level too (upstream's
//!   default of the warn level to a stricter enforce level, so workload resources,
//!   which are never refused, get a warning).
//! - Versions order as upstream's: `v1.N` by N, `latest` newer than every `v1.N`.

use kapi_codec::error::FieldError;
use serde_json::{Map, Value};
use std::fmt;

/// The label prefix every Pod Security label and audit annotation shares.
pub const PREFIX: &str = "pod-security.kubernetes.io/";

pub const ENFORCE: &str = "pod-security.kubernetes.io/enforce";
pub const ENFORCE_VERSION: &str = "pod-security.kubernetes.io/enforce-version";
pub const AUDIT: &str = "pod-security.kubernetes.io/audit";
pub const AUDIT_VERSION: &str = "pod-security.kubernetes.io/audit-version";
pub const WARN: &str = "pod-security.kubernetes.io/warn";
pub const WARN_VERSION: &str = "pod-security.kubernetes.io/warn-version";

/// A Pod Security Standards level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }

    fn parse(s: &str) -> Option<Level> {
        match s {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }
}

/// A policy version: `v1.<minor>`, or `latest` (None).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Version(Option<u32>);

impl Version {
    pub const LATEST: Version = Version(None);

    /// `v1.<minor>`.
    pub const fn v1(minor: u32) -> Version {
        Version(Some(minor))
    }

    /// The minor version, None for `latest`.
    pub fn minor(self) -> Option<u32> {
        self.0
    }

    /// Whether a check introduced in `v1.<minor>` applies at this version.
    pub fn includes(self, minor: u32) -> bool {
        self.0.is_none_or(|m| minor <= m)
    }

    /// Upstream's `ParseVersion`: `latest` or `v1.N` (N without leading zeros).
    fn parse(s: &str) -> Option<Version> {
        if s == "latest" {
            return Some(Version::LATEST);
        }
        let digits = s.strip_prefix("v1.")?;
        let canonical = digits == "0" || (!digits.starts_with('0') && !digits.is_empty());
        if !canonical || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Upstream's Atoi takes up to 2^63-1; minors beyond u32 are equally "newer than
        // every check", so they read as the newest representable minor.
        let minor = digits.parse::<u64>().ok()?;
        Some(Version(Some(u32::try_from(minor).unwrap_or(u32::MAX))))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("latest"),
            Some(m) => write!(f, "v1.{m}"),
        }
    }
}

/// A level at a version (`restricted:latest`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LevelVersion {
    pub level: Level,
    pub version: Version,
}

impl LevelVersion {
    pub const PRIVILEGED_LATEST: LevelVersion =
        LevelVersion { level: Level::Privileged, version: Version::LATEST };
}

impl fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.level.as_str(), self.version)
    }
}

/// The three modes of a namespace's policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub enforce: LevelVersion,
    pub audit: LevelVersion,
    pub warn: LevelVersion,
}

impl Default for Policy {
    /// Upstream's default configuration: every mode `privileged:latest`.
    fn default() -> Policy {
        let p = LevelVersion::PRIVILEGED_LATEST;
        Policy { enforce: p, audit: p, warn: p }
    }
}

impl Policy {
    /// Whether every mode is privileged (nothing to evaluate).
    pub fn all_privileged(&self) -> bool {
        [self.enforce, self.audit, self.warn].iter().all(|lv| lv.level == Level::Privileged)
    }
}

/// The policy a namespace's labels ask for, with an error per invalid label (in
/// upstream's order: enforce, enforce-version, audit, audit-version, warn, warn-version).
pub fn policy_for(labels: Option<&Map<String, Value>>) -> (Policy, Vec<FieldError>) {
    let mut p = Policy::default();
    let mut errs = Vec::new();
    let Some(labels) = labels.filter(|l| l.keys().any(|k| k.starts_with(PREFIX))) else {
        return (p, errs);
    };
    let modes = [
        (ENFORCE, ENFORCE_VERSION, &mut p.enforce, Level::Restricted),
        (AUDIT, AUDIT_VERSION, &mut p.audit, Level::Privileged),
        (WARN, WARN_VERSION, &mut p.warn, Level::Privileged),
    ];
    for (level_key, version_key, lv, fallback) in modes {
        if let Some(value) = labels.get(level_key).map(label_text) {
            lv.level = Level::parse(value).unwrap_or_else(|| {
                errs.push(invalid(
                    level_key,
                    value,
                    "must be one of privileged, baseline, restricted",
                ));
                fallback
            });
        }
        if let Some(value) = labels.get(version_key).map(label_text) {
            lv.version = Version::parse(value).unwrap_or_else(|| {
                errs.push(invalid(version_key, value, "must be \"latest\" or \"v1.x\""));
                Version::LATEST
            });
        }
    }
    // Enforce alone also warns (upstream since 1.26): an unset warn level less strict
    // than the enforce label's takes it, with its version unless warn-version is set.
    if labels.contains_key(ENFORCE) && !labels.contains_key(WARN) && p.enforce.level > p.warn.level
    {
        p.warn.level = p.enforce.level;
        if !labels.contains_key(WARN_VERSION) {
            p.warn.version = p.enforce.version;
        }
    }
    (p, errs)
}

fn label_text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn invalid(key: &str, value: &str, detail: &str) -> FieldError {
    FieldError::invalid(format!("metadata.labels[{key}]"), &Value::from(value), detail)
}

/// Upstream's aggregate of field errors as one text (one error alone, else `[a, b]`).
pub fn aggregate(errs: &[FieldError]) -> String {
    match errs {
        [one] => one.message.clone(),
        many => {
            let all: Vec<&str> = many.iter().map(|e| e.message.as_str()).collect();
            format!("[{}]", all.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(labels: Value) -> (Policy, Vec<FieldError>) {
        policy_for(labels.as_object())
    }

    #[test]
    fn unset_labels_are_privileged_latest() {
        let (p, errs) = policy(json!({"app": "x"}));
        assert_eq!(p, Policy::default());
        assert!(errs.is_empty() && p.all_privileged());
        assert_eq!(p.enforce.to_string(), "privileged:latest");
    }

    #[test]
    fn levels_and_versions_are_read_per_mode() {
        let (p, errs) = policy(json!({
            "pod-security.kubernetes.io/enforce": "baseline",
            "pod-security.kubernetes.io/enforce-version": "v1.22",
            "pod-security.kubernetes.io/warn": "restricted",
        }));
        assert!(errs.is_empty());
        assert_eq!(p.enforce.to_string(), "baseline:v1.22");
        assert_eq!(p.warn.to_string(), "restricted:latest");
        assert_eq!(p.audit.to_string(), "privileged:latest");
    }

    #[test]
    fn invalid_labels_fail_closed_for_enforce_and_open_for_audit_and_warn() {
        let (p, errs) = policy(json!({
            "pod-security.kubernetes.io/enforce": "strict",
            "pod-security.kubernetes.io/audit": "Baseline",
            "pod-security.kubernetes.io/warn-version": "v1.022",
        }));
        assert_eq!(p.enforce.level, Level::Restricted);
        assert_eq!(p.audit.level, Level::Privileged);
        assert_eq!(p.warn.version, Version::LATEST);
        assert_eq!(errs.len(), 3);
        assert_eq!(
            errs[0].message,
            "metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"strict\": \
             must be one of privileged, baseline, restricted"
        );
        assert_eq!(
            errs[2].message,
            "metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: \
             \"v1.022\": must be \"latest\" or \"v1.x\""
        );
        assert!(aggregate(&errs).starts_with("[metadata.labels["));
        assert_eq!(p.warn.level, Level::Restricted, "warn follows the (failed closed) enforce");
        assert!(!aggregate(&errs[..1]).starts_with('['));
    }

    #[test]
    fn warn_defaults_to_a_stricter_enforce_level() {
        let (p, _) = policy(json!({
            "pod-security.kubernetes.io/enforce": "baseline",
            "pod-security.kubernetes.io/enforce-version": "v1.25",
        }));
        assert_eq!(p.warn.to_string(), "baseline:v1.25");
        let (p, _) = policy(json!({
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/warn-version": "v1.30",
        }));
        assert_eq!(p.warn.to_string(), "restricted:v1.30");
        let (p, _) = policy(json!({
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/warn": "privileged",
        }));
        assert_eq!(p.warn.level, Level::Privileged, "an explicit warn level stays");
    }

    #[test]
    fn versions_parse_as_upstream() {
        for ok in ["latest", "v1.0", "v1.9", "v1.35", "v1.99999999999"] {
            assert!(Version::parse(ok).is_some(), "{ok}");
        }
        for bad in ["", "1.22", "v1.", "v1.01", "v2.1", "v1.x", "v1.-1", "Latest", "v1.2 "] {
            assert!(Version::parse(bad).is_none(), "{bad}");
        }
        assert!(Version::v1(22).includes(22) && !Version::v1(21).includes(22));
        assert!(Version::LATEST.includes(u32::MAX));
    }
}
