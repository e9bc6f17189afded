//! Shared fixtures of the criterion benchmarks and allocation tests: a realistic ~4 KB
//! pod, the shared bench-pod workload when present, and a counting global allocator
//! ([`counting`]) each bench or test binary installs for itself, a store that only
//! feeds a watch cache ([`feed`]), and a real App serving pod creates in-process
//! ([`app`]).

pub mod app;
pub mod feed;

use serde_json::{Value, json};

/// A pod as a kubelet-managed workload has it: labels, owner, two containers with
/// env, probes, resources and mounts, a scheduled status with conditions. ~4 KB of JSON.
pub fn pod(i: usize) -> Value {
    let container = |name: &str, image: &str| {
        json!({
            "name": name, "image": image, "imagePullPolicy": "IfNotPresent",
            "args": ["--port=8080", "--verbose", "--config=/etc/app/config.yaml"],
            "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
            "env": ((0..8).map(|e| json!({"name": format!("ENV_{e}"), "value": format!("value-{e}-{i}")})).collect::<Vec<_>>()),
            "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"}, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
            "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 5, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}, {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}],
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
        })
    };
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("web-{i:06}"), "namespace": format!("ns-{}", i % 100),
            "uid": format!("6c1b2c4e-0000-4000-8000-{i:012}"), "resourceVersion": "12345",
            "creationTimestamp": "2024-05-01T12:00:00Z", "generateName": "web-",
            "labels": {"app": "web", "tier": "frontend", "pod-template-hash": "5d8f7c9b6"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f7c9b6", "uid": "1d2e3f40-0000-4000-8000-000000000001", "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {
            "containers": [container("app", "registry.example.com/app:1.2.3"), container("sidecar", "registry.example.com/proxy:2.0")],
            "volumes": [{"name": "config", "configMap": {"name": "app-config", "defaultMode": 420}},
                        {"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}}],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default", "nodeName": format!("node-{}", i % 500), "schedulerName": "default-scheduler",
            "securityContext": {}, "priority": 0, "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
        },
        "status": {
            "phase": "Running", "hostIP": "10.0.0.1", "podIP": format!("10.244.{}.{}", (i / 250) % 250, i % 250),
            "podIPs": [{"ip": format!("10.244.{}.{}", (i / 250) % 250, i % 250)}], "startTime": "2024-05-01T12:00:01Z", "qosClass": "Burstable",
            "conditions": (["Initialized", "Ready", "ContainersReady", "PodScheduled"].iter().map(|t| json!({"type": t, "status": "True", "lastTransitionTime": "2024-05-01T12:00:05Z"})).collect::<Vec<_>>()),
            "containerStatuses": (["app", "sidecar"].iter().map(|n| json!({"name": n, "ready": true, "restartCount": 0, "started": true, "image": "registry.example.com/app:1.2.3", "imageID": "registry.example.com/app@sha256:0123456789abcdef", "containerID": "containerd://0123456789abcdef", "state": {"running": {"startedAt": "2024-05-01T12:00:03Z"}}})).collect::<Vec<_>>()),
        }
    })
}

/// The bench pod workload `bench-pod.json` when it is there: `$KAPI_BENCH_POD`, else
/// `../shared/workloads/` beside the repository, else `/work/shared/workloads/` (where a
/// git worktree of the repository finds it). Never copied into the repository.
pub fn shared_bench_pod() -> Option<Vec<u8>> {
    let beside = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/workloads/bench-pod.json");
    let env = std::env::var("KAPI_BENCH_POD").ok();
    let paths =
        env.iter().map(String::as_str).chain([beside, "/work/shared/workloads/bench-pod.json"]);
    paths.into_iter().find_map(|p| std::fs::read(p).ok())
}

pub mod counting {
    //! A global allocator that counts allocations and allocated bytes, process-wide and
    //! per thread, for benches and tests that report allocations per operation. Install
    //! it in a binary with `#[global_allocator] static A: Counting = Counting;` (one per
    //! binary). Per-thread figures leave out what background threads (a watch cache's
    //! feeder, the test harness) allocate meanwhile.

    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;
    use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

    static ALLOCS: AtomicU64 = AtomicU64::new(0);
    static BYTES: AtomicU64 = AtomicU64::new(0);
    /// Bytes allocated and not freed yet (requested sizes; the allocator's own slack is
    /// not in it).
    static LIVE: AtomicI64 = AtomicI64::new(0);

    thread_local! {
        static LOCAL: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }

    /// The system allocator, counting `alloc` and `realloc` calls and bytes requested.
    pub struct Counting;

    fn count(bytes: usize) {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(bytes as u64, Relaxed);
        let _ = LOCAL.try_with(|c| {
            let (a, b) = c.get();
            c.set((a + 1, b + bytes as u64));
        });
    }

    // SAFETY: every call is forwarded unchanged to the system allocator.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count(layout.size());
            LIVE.fetch_add(layout.size() as i64, Relaxed);
            // SAFETY: the caller's contract is the system allocator's.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            LIVE.fetch_sub(layout.size() as i64, Relaxed);
            // SAFETY: the caller's contract is the system allocator's.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count(new_size.saturating_sub(layout.size()));
            LIVE.fetch_add(new_size as i64 - layout.size() as i64, Relaxed);
            // SAFETY: the caller's contract is the system allocator's.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    /// Allocations and bytes so far, process-wide.
    pub fn snapshot() -> (u64, u64) {
        (ALLOCS.load(Relaxed), BYTES.load(Relaxed))
    }

    /// Bytes allocated process-wide and not freed yet (what the program holds, without
    /// the allocator's slack).
    pub fn live_bytes() -> i64 {
        LIVE.load(Relaxed)
    }

    /// Allocations and bytes so far on the calling thread.
    pub fn thread_snapshot() -> (u64, u64) {
        LOCAL.try_with(Cell::get).unwrap_or_default()
    }

    /// Allocations and bytes made on this thread while `f` runs, with its result.
    pub fn measure<R>(f: impl FnOnce() -> R) -> (R, u64, u64) {
        let (a0, b0) = thread_snapshot();
        let r = f();
        let (a1, b1) = thread_snapshot();
        (r, a1 - a0, b1 - b0)
    }

    /// Allocations and bytes of one call of `f` on this thread, averaged over `n` calls.
    pub fn per_op<R>(n: u64, mut f: impl FnMut() -> R) -> (f64, f64) {
        let (a0, b0) = thread_snapshot();
        for _ in 0..n {
            std::hint::black_box(f());
        }
        let (a1, b1) = thread_snapshot();
        ((a1 - a0) as f64 / n as f64, (b1 - b0) as f64 / n as f64)
    }
}
