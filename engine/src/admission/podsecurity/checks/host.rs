//! Checks on what a pod shares with its host: host namespaces, host ports, probe and
//! lifecycle hosts, Windows HostProcess containers (all baseline).

use super::{Pod, Violation, containers_phrase, field, flag, insert_sorted, items, join_quote};
use super::{name, pluralize, text};
use serde_json::Value;

/// hostNamespaces (1.0): `hostNetwork`, `hostPID`, `hostIPC` must be false.
pub fn namespaces(pod: &Pod<'_>) -> Option<Violation> {
    // Sorted, as upstream lists its set.
    let shared: Vec<&str> = ["hostIPC", "hostNetwork", "hostPID"]
        .into_iter()
        .filter(|k| flag(pod.spec, k) == Some(true))
        .collect();
    if shared.is_empty() {
        return None;
    }
    Some(Violation::new("host namespaces", shared.join(", ")))
}

/// hostPorts (1.0): no container port may set `hostPort`.
pub fn ports(pod: &Pod<'_>) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut ports = Vec::new();
    for c in pod.containers() {
        let mut uses = false;
        for p in items(c, "ports") {
            let hp = p.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
            if hp != 0 {
                uses = true;
                insert_sorted(&mut ports, &hp.to_string());
            }
        }
        if uses {
            bad.push(name(c));
        }
    }
    if bad.is_empty() {
        return None;
    }
    Some(Violation::new(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        ),
    ))
}

/// hostProbesAndHostLifecycle (1.34): probes' and lifecycle handlers' `httpGet.host` and
/// `tcpSocket.host` must be unset or empty.
pub fn probes_and_lifecycle(pod: &Pod<'_>) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut hosts = Vec::new();
    for c in pod.containers() {
        let lifecycle = field(c, "lifecycle");
        let handlers = [
            field(c, "livenessProbe"),
            field(c, "readinessProbe"),
            field(c, "startupProbe"),
            field(lifecycle, "postStart"),
            field(lifecycle, "preStop"),
        ];
        let mut found = false;
        for h in handlers {
            for action in ["httpGet", "tcpSocket"] {
                if let Some(host) = text(field(h, action), "host").filter(|h| !h.is_empty()) {
                    found = true;
                    insert_sorted(&mut hosts, host);
                }
            }
        }
        if found {
            insert_sorted(&mut bad, name(c));
        }
    }
    if bad.is_empty() {
        return None;
    }
    Some(Violation::new(
        "probe or lifecycle host",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("probe or lifecycle host", "probe or lifecycle hosts", hosts.len()),
            join_quote(&hosts)
        ),
    ))
}

fn host_process(sc: &Value) -> bool {
    flag(field(sc, "windowsOptions"), "hostProcess") == Some(true)
}

/// windowsHostProcess (1.0): no pod or container may set `windowsOptions.hostProcess`.
pub fn windows_host_process(pod: &Pod<'_>) -> Option<Violation> {
    let bad: Vec<&str> =
        pod.containers().filter(|c| host_process(field(c, "securityContext"))).map(name).collect();
    let mut setters = Vec::new();
    if host_process(pod.security_context()) {
        setters.push("pod".to_string());
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    Some(Violation::new(
        "hostProcess",
        format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters.join(" and ")
        ),
    ))
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
    fn host_namespaces_are_listed_sorted() {
        assert_eq!(run(namespaces, &restricted_pod()), None);
        let p = tweak(|p| {
            set(p, "/spec/hostPID", json!(true));
            set(p, "/spec/hostNetwork", json!(true));
            set(p, "/spec/hostIPC", json!(false));
        });
        let v = run(namespaces, &p).unwrap();
        assert_eq!(v, ("host namespaces".into(), "hostNetwork, hostPID".into()));
    }

    #[test]
    fn host_ports_name_containers_and_sorted_ports() {
        let p = tweak(|p| {
            set(p, "/spec/containers/0/ports", json!([{"containerPort": 80, "hostPort": 8080}]));
            set(p, "/spec/initContainers/0/ports", json!([{"hostPort": 9090}, {"hostPort": 0}]));
        });
        let v = run(ports, &p).unwrap();
        assert_eq!(v.0, "hostPort");
        assert_eq!(v.1, "containers \"initcontainer1\", \"container1\" use hostPorts 8080, 9090");
        let one = tweak(|p| set(p, "/spec/containers/0/ports", json!([{"hostPort": 53}])));
        assert_eq!(run(ports, &one).unwrap().1, "container \"container1\" uses hostPort 53");
        let zero = tweak(|p| set(p, "/spec/containers/0/ports", json!([{"hostPort": 0}])));
        assert_eq!(run(ports, &zero), None);
    }

    #[test]
    fn probe_and_lifecycle_hosts_are_forbidden() {
        let empty = tweak(|p| {
            set(p, "/spec/containers/0/livenessProbe", json!({"httpGet": {"host": "", "port": 80}}))
        });
        assert_eq!(run(probes_and_lifecycle, &empty), None);
        let p = tweak(|p| {
            set(p, "/spec/containers/0/livenessProbe/httpGet", json!({"host": "bad.host"}));
            set(p, "/spec/initContainers/0/readinessProbe/tcpSocket", json!({"host": "8.8.8.8"}));
            set(p, "/spec/containers/0/lifecycle/postStart/httpGet", json!({"host": "bad.host"}));
        });
        let v = run(probes_and_lifecycle, &p).unwrap();
        assert_eq!(v.0, "probe or lifecycle host");
        assert_eq!(
            v.1,
            "containers \"container1\", \"initcontainer1\" use probe or lifecycle hosts \
             \"8.8.8.8\", \"bad.host\""
        );
    }

    #[test]
    fn windows_host_process_names_pod_and_containers() {
        let p = tweak(|p| {
            set(p, "/spec/securityContext/windowsOptions/hostProcess", json!(true));
            set(p, "/spec/containers/0/securityContext/windowsOptions/hostProcess", json!(true));
        });
        let v = run(windows_host_process, &p).unwrap();
        assert_eq!(v.0, "hostProcess");
        assert_eq!(
            v.1,
            "pod and container \"container1\" must not set \
             securityContext.windowsOptions.hostProcess=true"
        );
        assert_eq!(run(windows_host_process, &restricted_pod()), None);
    }
}
