//! Checks on the privileges containers ask for: privileged mode, capabilities,
//! privilege escalation, /proc masking, and running as root.

use super::{Pod, Violation, containers_phrase, field, flag, insert_sorted, items, join_quote};
use super::{name, text};
use serde_json::Value;

fn security_context(c: &Value) -> &Value {
    field(c, "securityContext")
}

/// privileged (baseline, 1.0): no container may set `privileged: true`.
pub fn privileged(pod: &Pod<'_>) -> Option<Violation> {
    let bad: Vec<&str> = pod
        .containers()
        .filter(|c| flag(security_context(c), "privileged") == Some(true))
        .map(name)
        .collect();
    (!bad.is_empty()).then(|| {
        Violation::new(
            "privileged",
            format!("{} must not set securityContext.privileged=true", containers_phrase(&bad)),
        )
    })
}

/// The capabilities a container may add at baseline (the container runtime's default set).
const DEFAULT_CAPABILITIES: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn added(c: &Value) -> impl Iterator<Item = &str> {
    items(field(security_context(c), "capabilities"), "add").map(|v| v.as_str().unwrap_or(""))
}

/// The `must not include "X" in securityContext.capabilities.add` phrase.
fn adds_phrase(containers: &[&str], caps: &[String]) -> String {
    format!(
        "{} must not include {} in securityContext.capabilities.add",
        containers_phrase(containers),
        join_quote(caps)
    )
}

/// capabilities_baseline (1.0): only the default capabilities may be added.
pub fn capabilities_baseline(pod: &Pod<'_>) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut caps = Vec::new();
    for c in pod.containers() {
        let mut found = false;
        for cap in added(c).filter(|cap| !DEFAULT_CAPABILITIES.contains(cap)) {
            found = true;
            insert_sorted(&mut caps, cap);
        }
        if found {
            bad.push(name(c));
        }
    }
    (!bad.is_empty()).then(|| Violation::new("non-default capabilities", adds_phrase(&bad, &caps)))
}

/// capabilities_restricted (1.22): every container drops ALL and adds at most
/// NET_BIND_SERVICE.
pub fn capabilities_restricted(pod: &Pod<'_>) -> Option<Violation> {
    let mut missing_drop = Vec::new();
    let mut adding = Vec::new();
    let mut caps = Vec::new();
    for c in pod.containers() {
        let capabilities = field(security_context(c), "capabilities");
        if capabilities.is_null() {
            missing_drop.push(name(c));
            continue;
        }
        if !items(capabilities, "drop").any(|d| d.as_str() == Some("ALL")) {
            missing_drop.push(name(c));
        }
        let mut found = false;
        for cap in added(c).filter(|cap| *cap != "NET_BIND_SERVICE") {
            found = true;
            insert_sorted(&mut caps, cap);
        }
        if found {
            adding.push(name(c));
        }
    }
    let mut details = Vec::new();
    if !missing_drop.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&missing_drop)
        ));
    }
    if !adding.is_empty() {
        details.push(adds_phrase(&adding, &caps));
    }
    (!details.is_empty()).then(|| Violation::new("unrestricted capabilities", details.join("; ")))
}

/// allowPrivilegeEscalation (restricted, 1.8): every container sets it to false.
pub fn allow_privilege_escalation(pod: &Pod<'_>) -> Option<Violation> {
    let bad: Vec<&str> = pod
        .containers()
        .filter(|c| flag(security_context(c), "allowPrivilegeEscalation") != Some(false))
        .map(name)
        .collect();
    (!bad.is_empty()).then(|| {
        Violation::new(
            "allowPrivilegeEscalation != false",
            format!(
                "{} must set securityContext.allowPrivilegeEscalation=false",
                containers_phrase(&bad)
            ),
        )
    })
}

/// procMount (1.0; restricted at every version): `procMount` unset or `Default`.
pub fn proc_mount(pod: &Pod<'_>) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut types = Vec::new();
    for c in pod.containers() {
        if let Some(t) = text(security_context(c), "procMount").filter(|t| *t != "Default") {
            bad.push(name(c));
            insert_sorted(&mut types, t);
        }
    }
    (!bad.is_empty()).then(|| {
        Violation::new(
            "procMount",
            format!(
                "{} must not set securityContext.procMount to {}",
                containers_phrase(&bad),
                join_quote(&types)
            ),
        )
    })
}

/// procMount_baseline (1.35): as [`proc_mount`], but any value is allowed in a user
/// namespace (`hostUsers: false`).
pub fn proc_mount_unless_user_namespaced(pod: &Pod<'_>) -> Option<Violation> {
    if pod.user_namespaced() { None } else { proc_mount(pod) }
}

/// Who explicitly sets a forbidden value: `pod` and/or the containers.
fn setters(pod_sets: bool, containers: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    if pod_sets {
        out.push("pod".to_string());
    }
    if !containers.is_empty() {
        out.push(containers_phrase(containers));
    }
    out
}

/// runAsNonRoot (restricted, 1.0): the pod sets `runAsNonRoot: true`, or every container
/// does; nobody sets it to false.
pub fn run_as_non_root(pod: &Pod<'_>) -> Option<Violation> {
    let pod_value = flag(pod.security_context(), "runAsNonRoot");
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in pod.containers() {
        match flag(security_context(c), "runAsNonRoot") {
            Some(false) => explicit.push(name(c)),
            Some(true) => {}
            None if pod_value != Some(true) => implicit.push(name(c)),
            None => {}
        }
    }
    let bad = setters(pod_value == Some(false), &explicit);
    if !bad.is_empty() {
        return Some(Violation::new(
            "runAsNonRoot != true",
            format!("{} must not set securityContext.runAsNonRoot=false", bad.join(" and ")),
        ));
    }
    (!implicit.is_empty()).then(|| {
        Violation::new(
            "runAsNonRoot != true",
            format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                containers_phrase(&implicit)
            ),
        )
    })
}

fn root(sc: &Value) -> bool {
    sc.get("runAsUser").and_then(Value::as_i64) == Some(0)
}

/// runAsUser (restricted, 1.23): nobody sets `runAsUser: 0`.
pub fn run_as_user(pod: &Pod<'_>) -> Option<Violation> {
    let bad: Vec<&str> = pod.containers().filter(|c| root(security_context(c))).map(name).collect();
    let who = setters(root(pod.security_context()), &bad);
    (!who.is_empty()).then(|| {
        Violation::new("runAsUser=0", format!("{} must not set runAsUser=0", who.join(" and ")))
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{restricted_pod, set, tweak};
    use super::*;
    use serde_json::json;

    fn run(f: fn(&Pod<'_>) -> Option<Violation>, pod: &Value) -> Option<(String, String)> {
        f(&Pod::of(pod)).map(|v| (v.reason.into_owned(), v.detail))
    }

    #[test]
    fn privileged_containers_are_named() {
        assert_eq!(run(privileged, &restricted_pod()), None);
        let p = tweak(|p| {
            set(p, "/spec/containers/0/securityContext/privileged", json!(true));
            set(p, "/spec/initContainers/0/securityContext/privileged", json!(false));
        });
        assert_eq!(
            run(privileged, &p).unwrap(),
            (
                "privileged".into(),
                "container \"container1\" must not set securityContext.privileged=true".into()
            )
        );
        let eph = tweak(|p| {
            set(
                p,
                "/spec/ephemeralContainers",
                json!([{"name": "dbg", "securityContext": {"privileged": true}}]),
            )
        });
        assert!(run(privileged, &eph).unwrap().1.contains("\"dbg\""));
    }

    #[test]
    fn baseline_capabilities_allow_only_the_default_set() {
        let ok = tweak(|p| {
            set(p, "/spec/containers/0/securityContext/capabilities/add", json!(["CHOWN", "KILL"]))
        });
        assert_eq!(run(capabilities_baseline, &ok), None);
        let p = tweak(|p| {
            set(
                p,
                "/spec/containers/0/securityContext/capabilities/add",
                json!(["NET_RAW", "CHOWN"]),
            );
            set(p, "/spec/initContainers/0/securityContext/capabilities/add", json!(["SYS_ADMIN"]));
        });
        assert_eq!(
            run(capabilities_baseline, &p).unwrap(),
            (
                "non-default capabilities".into(),
                "containers \"initcontainer1\", \"container1\" must not include \"NET_RAW\", \
                 \"SYS_ADMIN\" in securityContext.capabilities.add"
                    .into()
            )
        );
    }

    #[test]
    fn restricted_capabilities_drop_all_and_add_only_net_bind_service() {
        assert_eq!(run(capabilities_restricted, &restricted_pod()), None);
        let p = tweak(|p| {
            set(
                p,
                "/spec/containers/0/securityContext",
                json!({"capabilities": {"add": ["NET_BIND_SERVICE", "CHOWN"], "drop": ["ALL"]}}),
            );
            set(p, "/spec/initContainers/0/securityContext", json!({}));
        });
        assert_eq!(
            run(capabilities_restricted, &p).unwrap().1,
            "container \"initcontainer1\" must set securityContext.capabilities.drop=[\"ALL\"]; \
             container \"container1\" must not include \"CHOWN\" in \
             securityContext.capabilities.add"
        );
        let no_drop = tweak(|p| {
            set(p, "/spec/containers/0/securityContext/capabilities", json!({"drop": ["NET_RAW"]}))
        });
        assert_eq!(run(capabilities_restricted, &no_drop).unwrap().0, "unrestricted capabilities");
    }

    #[test]
    fn privilege_escalation_must_be_false() {
        assert_eq!(run(allow_privilege_escalation, &restricted_pod()), None);
        let p = tweak(|p| {
            set(p, "/spec/containers/0/securityContext/allowPrivilegeEscalation", json!(true));
            p["spec"]["initContainers"][0]["securityContext"]
                .as_object_mut()
                .unwrap()
                .remove("allowPrivilegeEscalation");
        });
        assert_eq!(
            run(allow_privilege_escalation, &p).unwrap(),
            (
                "allowPrivilegeEscalation != false".into(),
                "containers \"initcontainer1\", \"container1\" must set \
                 securityContext.allowPrivilegeEscalation=false"
                    .into()
            )
        );
    }

    #[test]
    fn proc_mount_is_default_unless_user_namespaced_at_baseline() {
        let p =
            tweak(|p| set(p, "/spec/containers/0/securityContext/procMount", json!("Unmasked")));
        let v = run(proc_mount, &p).unwrap();
        assert_eq!(
            v,
            (
                "procMount".into(),
                "container \"container1\" must not set securityContext.procMount to \"Unmasked\""
                    .into()
            )
        );
        let mut userns = p.clone();
        set(&mut userns, "/spec/hostUsers", json!(false));
        assert_eq!(run(proc_mount_unless_user_namespaced, &userns), None);
        assert!(run(proc_mount, &userns).is_some());
        let default =
            tweak(|p| set(p, "/spec/containers/0/securityContext/procMount", json!("Default")));
        assert_eq!(run(proc_mount, &default), None);
    }

    #[test]
    fn run_as_non_root_explicit_and_implicit() {
        assert_eq!(run(run_as_non_root, &restricted_pod()), None);
        let explicit = tweak(|p| {
            set(p, "/spec/securityContext/runAsNonRoot", json!(false));
            set(p, "/spec/containers/0/securityContext/runAsNonRoot", json!(false));
        });
        assert_eq!(
            run(run_as_non_root, &explicit).unwrap().1,
            "pod and container \"container1\" must not set securityContext.runAsNonRoot=false"
        );
        let implicit = tweak(|p| {
            p["spec"]["securityContext"].as_object_mut().unwrap().remove("runAsNonRoot");
            set(p, "/spec/initContainers/0/securityContext/runAsNonRoot", json!(true));
        });
        assert_eq!(
            run(run_as_non_root, &implicit).unwrap(),
            (
                "runAsNonRoot != true".into(),
                "pod or container \"container1\" must set securityContext.runAsNonRoot=true".into()
            )
        );
    }

    #[test]
    fn run_as_user_zero_is_forbidden() {
        let ok = tweak(|p| set(p, "/spec/securityContext/runAsUser", json!(1000)));
        assert_eq!(run(run_as_user, &ok), None);
        let p = tweak(|p| {
            set(p, "/spec/securityContext/runAsUser", json!(0));
            set(p, "/spec/initContainers/0/securityContext/runAsUser", json!(0));
        });
        assert_eq!(
            run(run_as_user, &p).unwrap(),
            (
                "runAsUser=0".into(),
                "pod and container \"initcontainer1\" must not set runAsUser=0".into()
            )
        );
    }
}
