//! The Pod Security Standards checks, as upstream's `pod-security-admission/policy`:
//! each check looks at a pod's metadata and spec (read in place from the JSON, never
//! copied) and answers allowed, or a violation with upstream's reason and detail text.
//!
//! Invariants:
//! - [`CHECKS`] lists every check in upstream's registration order (its source files'
//!   alphabetical order), which is the order violations are reported in within a level.
//! - A check has one or more versions, each from the policy version it was introduced
//!   in; a policy version uses the newest version at or below it, and a check whose
//!   first version is newer than the policy version does not apply.
//! - A baseline check marked `overlap` is replaced by a restricted check at the
//!   restricted level (upstream's `Overlap`): it runs for baseline only.
//! - Checks never allocate for an allowed pod beyond small name lists.

mod host;
mod privilege;
mod profiles;
mod volumes;

use super::api::Level;
use serde_json::Value;
use std::borrow::Cow;

/// The pod (or pod template) being checked: its metadata and spec.
#[derive(Clone, Copy)]
pub struct Pod<'a> {
    pub meta: &'a Value,
    pub spec: &'a Value,
}

impl<'a> Pod<'a> {
    /// A pod object (`metadata` and `spec` at its top).
    pub fn of(obj: &'a Value) -> Pod<'a> {
        Pod { meta: field(obj, "metadata"), spec: field(obj, "spec") }
    }

    /// Every container: init containers, containers, then ephemeral containers.
    pub fn containers(&self) -> impl Iterator<Item = &'a Value> + 'a {
        let spec = self.spec;
        ["initContainers", "containers", "ephemeralContainers"]
            .into_iter()
            .flat_map(move |k| items(spec, k))
    }

    /// The pod's security context (Null when unset).
    pub fn security_context(&self) -> &'a Value {
        field(self.spec, "securityContext")
    }

    /// The pod's annotation `key`.
    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        field(self.meta, "annotations").get(key).and_then(Value::as_str)
    }

    /// Whether the pod runs in a user namespace (`hostUsers: false`).
    pub fn user_namespaced(&self) -> bool {
        self.spec.get("hostUsers").and_then(Value::as_bool) == Some(false)
    }
}

/// A check's verdict on a pod that it forbids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Succinct, always shown (`privileged`, `host namespaces`).
    pub reason: Cow<'static, str>,
    /// What exactly is forbidden (shown in parentheses after the reason when non-empty).
    pub detail: String,
}

impl Violation {
    pub fn new(reason: impl Into<Cow<'static, str>>, detail: String) -> Violation {
        Violation { reason: reason.into(), detail }
    }
}

/// One check at one version: None when the pod is allowed.
pub type CheckFn = fn(&Pod<'_>) -> Option<Violation>;

/// A check with its level and versions.
pub struct Check {
    pub id: &'static str,
    pub level: Level,
    pub overlap: bool,
    /// `(minor version introduced, check)`, oldest first.
    pub versions: &'static [(u32, CheckFn)],
}

impl Check {
    /// The version of this check a policy of `version` runs, if any.
    pub fn at(&self, version: super::api::Version) -> Option<CheckFn> {
        self.versions.iter().rev().find(|(min, _)| version.includes(*min)).map(|(_, f)| *f)
    }
}

const fn baseline(id: &'static str, versions: &'static [(u32, CheckFn)]) -> Check {
    Check { id, level: Level::Baseline, overlap: false, versions }
}

const fn overlapped(id: &'static str, versions: &'static [(u32, CheckFn)]) -> Check {
    Check { id, level: Level::Baseline, overlap: true, versions }
}

const fn restricted(id: &'static str, versions: &'static [(u32, CheckFn)]) -> Check {
    Check { id, level: Level::Restricted, overlap: false, versions }
}

/// Every check, in upstream's registration order.
pub static CHECKS: &[Check] = &[
    restricted("allowPrivilegeEscalation", &[(8, privilege::allow_privilege_escalation)]),
    baseline("appArmorProfile", &[(0, profiles::app_armor)]),
    overlapped("capabilities_baseline", &[(0, privilege::capabilities_baseline)]),
    restricted("capabilities_restricted", &[(22, privilege::capabilities_restricted)]),
    baseline("hostNamespaces", &[(0, host::namespaces)]),
    overlapped("hostPathVolumes", &[(0, volumes::host_path)]),
    baseline("hostPorts", &[(0, host::ports)]),
    baseline("hostProbesAndHostLifecycle", &[(34, host::probes_and_lifecycle)]),
    baseline("privileged", &[(0, privilege::privileged)]),
    overlapped(
        "procMount_baseline",
        &[(0, privilege::proc_mount), (35, privilege::proc_mount_unless_user_namespaced)],
    ),
    restricted("procMount_restricted", &[(0, privilege::proc_mount)]),
    restricted("restrictedVolumes", &[(0, volumes::restricted)]),
    restricted("runAsNonRoot", &[(0, privilege::run_as_non_root)]),
    restricted("runAsUser", &[(23, privilege::run_as_user)]),
    baseline("seLinuxOptions", &[(0, profiles::se_linux), (31, profiles::se_linux_1_31)]),
    overlapped(
        "seccompProfile_baseline",
        &[(0, profiles::seccomp_annotations), (19, profiles::seccomp_baseline)],
    ),
    restricted("seccompProfile_restricted", &[(19, profiles::seccomp_restricted)]),
    baseline(
        "sysctls",
        &[
            (0, profiles::sysctls_1_0),
            (27, profiles::sysctls_1_27),
            (29, profiles::sysctls_1_29),
            (32, profiles::sysctls_1_32),
        ],
    ),
    baseline("windowsHostProcess", &[(0, host::windows_host_process)]),
];

// --- helpers shared by the checks (upstream's helpers.go) ---

/// `obj[key]`, Null when absent.
pub fn field<'a>(obj: &'a Value, key: &str) -> &'a Value {
    obj.get(key).unwrap_or(&Value::Null)
}

/// The array `obj[key]` (empty when absent or not an array).
pub fn items<'a>(obj: &'a Value, key: &str) -> std::slice::Iter<'a, Value> {
    obj.get(key).and_then(Value::as_array).map(|a| a.iter()).unwrap_or_default()
}

/// `obj[key]` as text.
pub fn text<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

/// A container's (or anything's) `name`.
pub fn name(obj: &Value) -> &str {
    text(obj, "name").unwrap_or("")
}

/// `obj[key]` as a boolean.
pub fn flag(obj: &Value, key: &str) -> Option<bool> {
    obj.get(key).and_then(Value::as_bool)
}

/// `"a", "b"` (upstream's joinQuote; no escaping).
pub fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let parts: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("\"{}\"", parts.join("\", \""))
}

/// Upstream's pluralize.
pub fn pluralize(singular: &'static str, plural: &'static str, n: usize) -> &'static str {
    if n == 1 { singular } else { plural }
}

/// `container "a"` / `containers "a", "b"`.
pub fn containers_phrase<S: AsRef<str>>(names: &[S]) -> String {
    format!("{} {}", pluralize("container", "containers", names.len()), join_quote(names))
}

/// Add `v` to a sorted set kept as a vector (upstream's sets.String, listed sorted).
pub fn insert_sorted(set: &mut Vec<String>, v: &str) {
    if let Err(at) = set.binary_search_by(|s| s.as_str().cmp(v)) {
        set.insert(at, v.to_string());
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Pods for the checks' tests: a restricted-compliant base and tweaks of it.
    use serde_json::{Value, json};

    /// A pod that passes restricted at every version (upstream's minimal valid pod).
    pub fn restricted_pod() -> Value {
        let sc = json!({
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
        });
        json!({
            "metadata": {"name": "p"},
            "spec": {
                "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                "initContainers": [{"name": "initcontainer1", "image": "pause", "securityContext": sc}],
                "containers": [{"name": "container1", "image": "pause", "securityContext": sc}],
            }
        })
    }

    /// The base pod with `f` applied.
    pub fn tweak(f: impl FnOnce(&mut Value)) -> Value {
        let mut p = restricted_pod();
        f(&mut p);
        p
    }

    /// Set `value` at a JSON pointer, creating objects on the way.
    pub fn set(obj: &mut Value, pointer: &str, value: Value) {
        let mut cur = obj;
        let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            let last = i == parts.len() - 1;
            cur = match cur {
                Value::Array(a) => &mut a[part.parse::<usize>().unwrap()],
                other => {
                    if !other.is_object() {
                        *other = json!({});
                    }
                    let m = other.as_object_mut().unwrap();
                    if last {
                        m.insert(part.to_string(), value);
                        return;
                    }
                    m.entry(part.to_string()).or_insert(json!({}))
                }
            };
            if last {
                *cur = value;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::podsecurity::api::Version;

    #[test]
    fn ids_are_unique_and_versions_strictly_increase() {
        for (i, c) in CHECKS.iter().enumerate() {
            assert!(CHECKS[..i].iter().all(|o| o.id != c.id), "{}", c.id);
            assert!(c.versions.windows(2).all(|w| w[0].0 < w[1].0), "{}", c.id);
            assert!(!c.versions.is_empty());
        }
    }

    #[test]
    fn a_policy_version_runs_the_newest_check_version_at_or_below_it() {
        let sysctls = CHECKS.iter().find(|c| c.id == "sysctls").unwrap();
        let mut pod = fixtures::restricted_pod();
        fixtures::set(
            &mut pod,
            "/spec/securityContext/sysctls",
            serde_json::json!([
            {"name": "net.ipv4.ip_local_reserved_ports"}, {"name": "net.ipv4.tcp_wmem"}]),
        );
        let run = |v| sysctls.at(v).and_then(|f| f(&Pod::of(&pod))).map(|v| v.detail);
        assert_eq!(
            run(Version::v1(26)).as_deref(),
            Some("net.ipv4.ip_local_reserved_ports, net.ipv4.tcp_wmem")
        );
        assert_eq!(run(Version::v1(28)).as_deref(), Some("net.ipv4.tcp_wmem"));
        assert_eq!(run(Version::LATEST), None);
        let caps = CHECKS.iter().find(|c| c.id == "capabilities_restricted").unwrap();
        assert!(caps.at(Version::v1(21)).is_none() && caps.at(Version::v1(22)).is_some());
    }

    #[test]
    fn helpers_format_as_upstream() {
        assert_eq!(join_quote(&["a", "b"]), "\"a\", \"b\"");
        assert_eq!(join_quote::<&str>(&[]), "");
        assert_eq!(containers_phrase(&["c"]), "container \"c\"");
        let mut set = Vec::new();
        for v in ["b", "a", "b"] {
            insert_sorted(&mut set, v);
        }
        assert_eq!(set, ["a", "b"]);
    }
}
