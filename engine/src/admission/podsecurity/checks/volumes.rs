//! Checks on a pod's volumes: no hostPath at baseline; at restricted only the core
//! volume types (and PersistentVolumeClaims, CSI and ephemeral volumes).

use super::{Pod, Violation, insert_sorted, items, join_quote, name, pluralize};
use serde_json::Value;

/// hostPathVolumes (baseline, 1.0, replaced by restrictedVolumes at restricted).
pub fn host_path(pod: &Pod<'_>) -> Option<Violation> {
    let bad: Vec<&str> = items(pod.spec, "volumes")
        .filter(|v| v.get("hostPath").is_some_and(|h| !h.is_null()))
        .map(name)
        .collect();
    (!bad.is_empty()).then(|| {
        Violation::new(
            "hostPath volumes",
            format!("{} {}", pluralize("volume", "volumes", bad.len()), join_quote(&bad)),
        )
    })
}

/// The volume sources allowed at restricted.
const ALLOWED: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// The restricted volume sources, in upstream's order of precedence.
const RESTRICTED: [&str; 21] = [
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

fn set(v: &Value, key: &str) -> bool {
    v.get(key).is_some_and(|s| !s.is_null())
}

/// restrictedVolumes (restricted, 1.0).
pub fn restricted(pod: &Pod<'_>) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut types = Vec::new();
    for v in items(pod.spec, "volumes") {
        if ALLOWED.iter().any(|k| set(v, k)) {
            continue;
        }
        bad.push(name(v));
        let kind = RESTRICTED.iter().find(|k| set(v, k)).copied().unwrap_or("unknown");
        insert_sorted(&mut types, kind);
    }
    (!bad.is_empty()).then(|| {
        Violation::new(
            "restricted volume types",
            format!(
                "{} {} {} {} {}",
                pluralize("volume", "volumes", bad.len()),
                join_quote(&bad),
                pluralize("uses", "use", bad.len()),
                pluralize("restricted volume type", "restricted volume types", types.len()),
                join_quote(&types)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{restricted_pod, set as put, tweak};
    use super::*;
    use serde_json::json;

    fn run(f: fn(&Pod<'_>) -> Option<Violation>, pod: &Value) -> Option<(String, String)> {
        f(&Pod::of(pod)).map(|v| (v.reason.into_owned(), v.detail))
    }

    #[test]
    fn host_path_volumes_are_named() {
        let p = tweak(|p| {
            put(
                p,
                "/spec/volumes",
                json!([
                    {"name": "ok", "emptyDir": {}},
                    {"name": "host", "hostPath": {"path": "/"}},
                ]),
            )
        });
        assert_eq!(
            run(host_path, &p).unwrap(),
            ("hostPath volumes".into(), "volume \"host\"".into())
        );
        assert_eq!(run(host_path, &restricted_pod()), None);
    }

    #[test]
    fn restricted_volumes_name_volumes_and_types() {
        let ok = tweak(|p| {
            put(
                p,
                "/spec/volumes",
                json!([
                    {"name": "a", "configMap": {"name": "c"}},
                    {"name": "b", "persistentVolumeClaim": {"claimName": "c"}},
                    {"name": "c", "projected": {"sources": []}},
                    {"name": "d", "ephemeral": {}},
                ]),
            )
        });
        assert_eq!(run(restricted, &ok), None);
        let p = tweak(|p| {
            put(
                p,
                "/spec/volumes",
                json!([
                    {"name": "host", "hostPath": {"path": "/"}},
                    {"name": "share", "nfs": {"server": "s", "path": "/"}},
                    {"name": "odd", "somethingNew": {}},
                ]),
            )
        });
        assert_eq!(
            run(restricted, &p).unwrap(),
            (
                "restricted volume types".into(),
                "volumes \"host\", \"share\", \"odd\" use restricted volume types \"hostPath\", \
                 \"nfs\", \"unknown\""
                    .into()
            )
        );
        let one =
            tweak(|p| put(p, "/spec/volumes", json!([{"name": "h", "hostPath": {"path": "/"}}])));
        assert_eq!(
            run(restricted, &one).unwrap().1,
            "volume \"h\" uses restricted volume type \"hostPath\""
        );
    }
}
