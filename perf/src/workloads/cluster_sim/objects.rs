//! The objects a simulated kubelet writes, as kwok's stages do: a Node with a Ready
//! status, capacity and addresses; its Lease in kube-node-lease; the pod Binding; and the
//! pod status of a running pod (phase Running, the four conditions true, host and pod IP).
//! Also the run clock's timestamps in the RFC 3339 forms Kubernetes uses.

use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

/// Label on every node and lease a simulation creates (cleanup selects by it).
pub const SIM_LABEL: &str = "kapi-perf/sim";
/// Namespace of the node leases.
pub const LEASE_NS: &str = "kube-node-lease";

/// Name of node `i`.
pub fn node_name(i: usize) -> String {
    format!("kapi-perf-node-{i:05}")
}

/// An IPv4 address in 10.0.0.0/8 numbered `i`.
pub fn ip(base: u8, i: usize) -> String {
    format!("10.{base}.{}.{}", (i >> 8) & 0xff, i & 0xff)
}

/// The node object with its status.
pub fn node(name: &str, i: usize) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                SIM_LABEL: "true",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/role": "agent",
                "type": "kwok",
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
        },
        "spec": {},
        "status": node_status(i),
    })
}

/// A Ready node's status.
pub fn node_status(i: usize) -> Value {
    let now = rfc3339(now_ms(), false);
    let cond = |t: &str, s: &str, reason: &str| {
        json!({"type": t, "status": s, "reason": reason, "message": reason,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let capacity =
        json!({"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "1Ti"});
    json!({
        "phase": "Running",
        "capacity": capacity,
        "allocatable": capacity,
        "conditions": [
            cond("Ready", "True", "KubeletReady"),
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID"),
            cond("NetworkUnavailable", "False", "RouteCreated"),
        ],
        "addresses": [{"type": "InternalIP", "address": ip(1, i)}, {"type": "Hostname", "address": format!("node-{i}")}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "architecture": "amd64", "operatingSystem": "linux", "kubeletVersion": "fake",
            "kubeProxyVersion": "fake", "containerRuntimeVersion": "fake", "kernelVersion": "fake",
            "osImage": "fake", "machineID": "", "systemUUID": "", "bootID": "",
        },
    })
}

/// The node's Lease, renewed now; `rv` makes it an update of that version.
pub fn lease(node: &str, duration_s: u64, rv: Option<&str>) -> Value {
    let mut meta = json!({"name": node, "namespace": LEASE_NS, "labels": {SIM_LABEL: "true"}});
    if let Some(rv) = rv {
        meta["resourceVersion"] = rv.into();
    }
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": {
            "holderIdentity": node,
            "leaseDurationSeconds": duration_s,
            "renewTime": rfc3339(now_ms(), true),
        },
    })
}

/// The Binding of pod `pod` to `node`.
pub fn binding(pod: &str, node: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": pod},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    })
}

/// Merge patch of a pod's status to Running on node number `node_i`, pod number `seq`.
pub fn running_status(node_i: usize, seq: u64) -> Value {
    let now = rfc3339(now_ms(), false);
    let cond = |t: &str| json!({"type": t, "status": "True", "lastTransitionTime": now});
    json!({"status": {
        "phase": "Running",
        "conditions": [cond("Initialized"), cond("Ready"), cond("ContainersReady"), cond("PodScheduled")],
        "hostIP": ip(1, node_i),
        "podIP": ip(128, seq as usize),
        "podIPs": [{"ip": ip(128, seq as usize)}],
        "startTime": now,
    }})
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// `ms` since the epoch in RFC 3339, UTC, with microseconds (MicroTime) or whole seconds.
pub fn rfc3339(ms: u64, micro: bool) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let frac = if micro { format!(".{:06}", (ms % 1000) * 1000) } else { String::new() };
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}{frac}Z")
}

/// Year, month, day of a day count since 1970-01-01 (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0, false), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_123, true), "2000-02-29T00:00:00.123000Z");
        assert_eq!(rfc3339(1_798_761_599_000, false), "2026-12-31T23:59:59Z");
    }

    #[test]
    fn objects() {
        assert_eq!(node_name(7), "kapi-perf-node-00007");
        assert_eq!(ip(1, 258), "10.1.1.2");
        let n = node("n1", 3);
        assert_eq!(n["status"]["conditions"][0]["type"], "Ready");
        assert_eq!(n["metadata"]["labels"][SIM_LABEL], "true");
        let l = lease("n1", 40, Some("12"));
        assert_eq!(l["metadata"]["resourceVersion"], "12");
        assert_eq!(l["spec"]["holderIdentity"], "n1");
        assert!(l["spec"]["renewTime"].as_str().is_some_and(|t| t.len() == 27));
        assert!(lease("n1", 40, None)["metadata"].get("resourceVersion").is_none());
        assert_eq!(binding("p", "n1")["target"]["name"], "n1");
        assert_eq!(running_status(1, 2)["status"]["phase"], "Running");
    }
}
