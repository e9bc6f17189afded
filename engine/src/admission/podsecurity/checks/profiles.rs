//! Checks on security profiles and kernel settings: AppArmor, SELinux, seccomp (baseline
//! and restricted) and sysctls.

use super::{Pod, Violation, containers_phrase, field, insert_sorted, items, join_quote};
use super::{name, pluralize, text};
use serde_json::Value;

fn security_context(c: &Value) -> &Value {
    field(c, "securityContext")
}

/// Who set a forbidden value: `pod` and/or `container(s) "..."`.
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

// --- AppArmor ---

const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

fn allowed_app_armor_annotation(v: &str) -> bool {
    v.is_empty() || v == "runtime/default" || v.starts_with("localhost/")
}

/// The forbidden AppArmor profile type a security context sets, if any.
fn bad_app_armor(sc: &Value) -> Option<&str> {
    let profile = field(sc, "appArmorProfile");
    if profile.is_null() {
        return None;
    }
    let t = text(profile, "type").unwrap_or("");
    (!matches!(t, "RuntimeDefault" | "Localhost")).then_some(t)
}

/// appArmorProfile (baseline, 1.0): profile types RuntimeDefault or Localhost, and the
/// beta annotations `runtime/default`, `localhost/*` or empty.
pub fn app_armor(pod: &Pod<'_>) -> Option<Violation> {
    let mut values = Vec::new();
    let pod_bad = bad_app_armor(pod.security_context()).inspect(|t| insert_sorted(&mut values, t));
    let mut bad = Vec::new();
    for c in pod.containers() {
        if let Some(t) = bad_app_armor(security_context(c)) {
            bad.push(name(c));
            insert_sorted(&mut values, t);
        }
    }
    let mut annotations: Vec<String> = field(pod.meta, "annotations")
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with(APPARMOR_ANNOTATION_PREFIX))
        .filter_map(|(k, v)| {
            let v = v.as_str().unwrap_or("");
            (!allowed_app_armor_annotation(v)).then(|| format!("{k}={v:?}"))
        })
        .collect();
    annotations.sort();
    let mut who = setters(pod_bad.is_some(), &bad);
    if !annotations.is_empty() {
        who.push(pluralize("annotation", "annotations", annotations.len()).to_string());
    }
    if who.is_empty() {
        return None;
    }
    values.extend(annotations);
    Some(Violation::new(
        pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", values.len()),
        format!(
            "{} must not set AppArmor profile type to {}",
            who.join(" and "),
            join_quote(&values)
        ),
    ))
}

// --- SELinux ---

/// What one `seLinuxOptions` breaks.
#[derive(Default)]
struct SeLinuxFindings {
    types: Vec<String>,
    user: bool,
    role: bool,
}

impl SeLinuxFindings {
    /// Record `opts`' forbidden values; true when it has none.
    fn valid(&mut self, opts: &Value, allowed: &[&str]) -> bool {
        let mut ok = true;
        let t = text(opts, "type").unwrap_or("");
        if !t.is_empty() && !allowed.contains(&t) {
            ok = false;
            insert_sorted(&mut self.types, t);
        }
        for (key, seen) in [("user", &mut self.user), ("role", &mut self.role)] {
            if text(opts, key).is_some_and(|v| !v.is_empty()) {
                ok = false;
                *seen = true;
            }
        }
        ok
    }
}

fn se_linux_with(pod: &Pod<'_>, allowed: &[&str]) -> Option<Violation> {
    let mut found = SeLinuxFindings::default();
    let pod_opts = field(pod.security_context(), "seLinuxOptions");
    let pod_bad = !pod_opts.is_null() && !found.valid(pod_opts, allowed);
    let mut bad = Vec::new();
    for c in pod.containers() {
        let opts = field(security_context(c), "seLinuxOptions");
        if !opts.is_null() && !found.valid(opts, allowed) {
            bad.push(name(c));
        }
    }
    let who = setters(pod_bad, &bad);
    if who.is_empty() {
        return None;
    }
    let mut data = Vec::new();
    if !found.types.is_empty() {
        data.push(format!(
            "{} {}",
            pluralize("type", "types", found.types.len()),
            join_quote(&found.types)
        ));
    }
    if found.user {
        data.push("user may not be set".to_string());
    }
    if found.role {
        data.push("role may not be set".to_string());
    }
    Some(Violation::new(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            who.join(" and "),
            data.join("; ")
        ),
    ))
}

/// seLinuxOptions (baseline, 1.0): type empty or a container type; no user or role.
pub fn se_linux(pod: &Pod<'_>) -> Option<Violation> {
    se_linux_with(pod, &["container_t", "container_init_t", "container_kvm_t"])
}

/// seLinuxOptions (baseline, 1.31): `container_engine_t` is allowed too.
pub fn se_linux_1_31(pod: &Pod<'_>) -> Option<Violation> {
    se_linux_with(
        pod,
        &["container_t", "container_init_t", "container_kvm_t", "container_engine_t"],
    )
}

// --- seccomp ---

const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

fn allowed_seccomp_annotation(v: &str) -> bool {
    v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/")
}

/// seccompProfile_baseline (1.0): the alpha annotations, if set, name an allowed profile.
pub fn seccomp_annotations(pod: &Pod<'_>) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut note = |key: &str| {
        if let Some(v) = pod.annotation(key).filter(|v| !allowed_seccomp_annotation(v)) {
            insert_sorted(&mut bad, &format!("{key}={v:?}"));
        }
    };
    note(SECCOMP_POD_ANNOTATION);
    for c in pod.containers() {
        note(&format!("{SECCOMP_CONTAINER_PREFIX}{}", name(c)));
    }
    (!bad.is_empty()).then(|| {
        Violation::new(
            "seccompProfile",
            format!(
                "forbidden {} {}",
                pluralize("annotation", "annotations", bad.len()),
                bad.join(", ")
            ),
        )
    })
}

/// The seccomp profile type a security context sets: None unset, Some(Ok) allowed,
/// Some(Err(type)) forbidden.
fn seccomp(sc: &Value) -> Option<Result<(), &str>> {
    let profile = field(sc, "seccompProfile");
    if profile.is_null() {
        return None;
    }
    let t = text(profile, "type").unwrap_or("");
    Some(if matches!(t, "RuntimeDefault" | "Localhost") { Ok(()) } else { Err(t) })
}

fn explicit_seccomp_violation(who: Vec<String>, values: &[String]) -> Option<Violation> {
    (!who.is_empty()).then(|| {
        Violation::new(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                who.join(" and "),
                join_quote(values)
            ),
        )
    })
}

/// seccompProfile_baseline (1.19): a set profile type is RuntimeDefault or Localhost.
pub fn seccomp_baseline(pod: &Pod<'_>) -> Option<Violation> {
    let mut values = Vec::new();
    let pod_bad = match seccomp(pod.security_context()) {
        Some(Err(t)) => {
            insert_sorted(&mut values, t);
            true
        }
        _ => false,
    };
    let mut bad = Vec::new();
    for c in pod.containers() {
        if let Some(Err(t)) = seccomp(security_context(c)) {
            bad.push(name(c));
            insert_sorted(&mut values, t);
        }
    }
    explicit_seccomp_violation(setters(pod_bad, &bad), &values)
}

/// seccompProfile_restricted (1.19): the pod, or every container, sets RuntimeDefault or
/// Localhost.
pub fn seccomp_restricted(pod: &Pod<'_>) -> Option<Violation> {
    let mut values = Vec::new();
    let pod_profile = seccomp(pod.security_context());
    if let Some(Err(t)) = pod_profile {
        insert_sorted(&mut values, t);
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in pod.containers() {
        match seccomp(security_context(c)) {
            Some(Err(t)) => {
                explicit.push(name(c));
                insert_sorted(&mut values, t);
            }
            Some(Ok(())) => {}
            None if pod_profile != Some(Ok(())) => implicit.push(name(c)),
            None => {}
        }
    }
    let who = setters(matches!(pod_profile, Some(Err(_))), &explicit);
    if let Some(v) = explicit_seccomp_violation(who, &values) {
        return Some(v);
    }
    (!implicit.is_empty()).then(|| {
        Violation::new(
            "seccompProfile",
            format!(
                "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" \
                 or \"Localhost\"",
                containers_phrase(&implicit)
            ),
        )
    })
}

// --- sysctls ---

const SYSCTLS_1_0: [&str; 5] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
];
const SYSCTLS_1_27: [&str; 1] = ["net.ipv4.ip_local_reserved_ports"];
const SYSCTLS_1_29: [&str; 4] = [
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
const SYSCTLS_1_32: [&str; 2] = ["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"];

fn sysctls_with(pod: &Pod<'_>, allowed: &[&[&str]]) -> Option<Violation> {
    let bad: Vec<&str> = items(pod.security_context(), "sysctls")
        .map(name)
        .filter(|n| !allowed.iter().any(|set| set.contains(n)))
        .collect();
    (!bad.is_empty()).then(|| Violation::new("forbidden sysctls", bad.join(", ")))
}

/// sysctls (baseline, 1.0): only the namespaced, isolated "safe" sysctls.
pub fn sysctls_1_0(pod: &Pod<'_>) -> Option<Violation> {
    sysctls_with(pod, &[&SYSCTLS_1_0])
}

/// sysctls (1.27): `net.ipv4.ip_local_reserved_ports` too.
pub fn sysctls_1_27(pod: &Pod<'_>) -> Option<Violation> {
    sysctls_with(pod, &[&SYSCTLS_1_0, &SYSCTLS_1_27])
}

/// sysctls (1.29): the TCP keepalive and FIN timeout settings too.
pub fn sysctls_1_29(pod: &Pod<'_>) -> Option<Violation> {
    sysctls_with(pod, &[&SYSCTLS_1_0, &SYSCTLS_1_27, &SYSCTLS_1_29])
}

/// sysctls (1.32): `net.ipv4.tcp_rmem` and `tcp_wmem` too.
pub fn sysctls_1_32(pod: &Pod<'_>) -> Option<Violation> {
    sysctls_with(pod, &[&SYSCTLS_1_0, &SYSCTLS_1_27, &SYSCTLS_1_29, &SYSCTLS_1_32])
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
    fn app_armor_fields_and_annotations() {
        assert_eq!(run(app_armor, &restricted_pod()), None);
        let p = tweak(|p| {
            set(p, "/spec/securityContext/appArmorProfile", json!({"type": "Unconfined"}));
            set(
                p,
                "/spec/containers/0/securityContext/appArmorProfile",
                json!({"type": "Localhost", "localhostProfile": "x"}),
            );
        });
        assert_eq!(
            run(app_armor, &p).unwrap(),
            (
                "forbidden AppArmor profile".into(),
                "pod must not set AppArmor profile type to \"Unconfined\"".into()
            )
        );
        let ann = tweak(|p| {
            set(
                p,
                "/metadata/annotations",
                json!({
                    "container.apparmor.security.beta.kubernetes.io/container1": "unconfined",
                    "container.apparmor.security.beta.kubernetes.io/initcontainer1": "localhost/x",
                }),
            )
        });
        assert_eq!(
            run(app_armor, &ann).unwrap().1,
            "annotation must not set AppArmor profile type to \
             \"container.apparmor.security.beta.kubernetes.io/container1=\"unconfined\"\""
        );
    }

    #[test]
    fn se_linux_types_users_and_roles() {
        let ok = tweak(|p| {
            set(
                p,
                "/spec/securityContext/seLinuxOptions",
                json!({"type": "container_t", "level": "s0"}),
            )
        });
        assert_eq!(run(se_linux, &ok), None);
        let p = tweak(|p| {
            set(p, "/spec/securityContext/seLinuxOptions", json!({"type": "spc_t"}));
            set(
                p,
                "/spec/containers/0/securityContext/seLinuxOptions",
                json!({"user": "root", "role": "r"}),
            );
        });
        assert_eq!(
            run(se_linux, &p).unwrap(),
            (
                "seLinuxOptions".into(),
                "pod and container \"container1\" set forbidden securityContext.seLinuxOptions: \
                 type \"spc_t\"; user may not be set; role may not be set"
                    .into()
            )
        );
        let engine = tweak(|p| {
            set(p, "/spec/securityContext/seLinuxOptions", json!({"type": "container_engine_t"}))
        });
        assert!(run(se_linux, &engine).is_some());
        assert_eq!(run(se_linux_1_31, &engine), None);
    }

    #[test]
    fn seccomp_annotations_at_old_versions() {
        let p = tweak(|p| {
            set(
                p,
                "/metadata/annotations",
                json!({
                    "seccomp.security.alpha.kubernetes.io/pod": "unconfined",
                    "container.seccomp.security.alpha.kubernetes.io/container1": "runtime/default",
                }),
            )
        });
        assert_eq!(
            run(seccomp_annotations, &p).unwrap(),
            (
                "seccompProfile".into(),
                "forbidden annotation seccomp.security.alpha.kubernetes.io/pod=\"unconfined\""
                    .into()
            )
        );
    }

    #[test]
    fn seccomp_baseline_forbids_unconfined() {
        let p = tweak(|p| {
            set(p, "/spec/securityContext/seccompProfile/type", json!("Unconfined"));
            set(p, "/spec/containers/0/securityContext/seccompProfile/type", json!("Unconfined"));
        });
        assert_eq!(
            run(seccomp_baseline, &p).unwrap().1,
            "pod and container \"container1\" must not set securityContext.seccompProfile.type \
             to \"Unconfined\""
        );
        assert_eq!(run(seccomp_baseline, &restricted_pod()), None);
    }

    #[test]
    fn seccomp_restricted_requires_a_profile() {
        assert_eq!(run(seccomp_restricted, &restricted_pod()), None);
        let p = tweak(|p| {
            p["spec"]["securityContext"].as_object_mut().unwrap().remove("seccompProfile");
            set(
                p,
                "/spec/initContainers/0/securityContext/seccompProfile/type",
                json!("Localhost"),
            );
        });
        assert_eq!(
            run(seccomp_restricted, &p).unwrap().1,
            "pod or container \"container1\" must set securityContext.seccompProfile.type to \
             \"RuntimeDefault\" or \"Localhost\""
        );
    }

    #[test]
    fn sysctls_by_version() {
        let p = tweak(|p| {
            set(
                p,
                "/spec/securityContext/sysctls",
                json!([
                    {"name": "net.ipv4.tcp_keepalive_time", "value": "1"},
                    {"name": "kernel.msgmax", "value": "1"},
                    {"name": "net.ipv4.ip_local_port_range", "value": "1 2"},
                ]),
            )
        });
        assert_eq!(
            run(sysctls_1_0, &p).unwrap(),
            ("forbidden sysctls".into(), "net.ipv4.tcp_keepalive_time, kernel.msgmax".into())
        );
        assert_eq!(run(sysctls_1_29, &p).unwrap().1, "kernel.msgmax");
        let rmem = tweak(|p| {
            set(p, "/spec/securityContext/sysctls", json!([{"name": "net.ipv4.tcp_rmem"}]))
        });
        assert!(run(sysctls_1_29, &rmem).is_some());
        assert_eq!(run(sysctls_1_32, &rmem), None);
    }
}
