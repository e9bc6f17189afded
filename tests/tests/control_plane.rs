//! Upstream's own control plane on kapi: kube-controller-manager and kube-scheduler
//! (v1.21, from `../shared/upstream`) run unchanged against the real kapi binary, on
//! either backend. The test plays the kubelet: it registers a Node, renews its Lease,
//! reports pod phases and does the final delete of terminating pods. The controller
//! manager runs with `--use-service-account-credentials=true`, as kubeadm runs it, so
//! each controller is authorized by RBAC (the bootstrap `system:controller:*` roles).
//!
//! Version skew: the v1.21 scheduler asks for storage.k8s.io/v1beta1
//! CSIStorageCapacity, which v1.35 no longer serves (upstream v1.35 answers 404 too), so
//! that feature gate is off (see `upstream::ControlPlane`). Nothing else is adapted.
//!
//! Regression: client-go could not read kapi's protobuf watch frames, so informers
//! relisted forever and the scheduler never bound a pod; there were no ServiceAccount
//! tokens for the token controller to sign or for clients to use.

use kapi_e2e::upstream::{self, ControlPlane};
use kapi_e2e::{Server, eventually};
use serde_json::Value;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn skip() -> bool {
    if upstream::upstream_dir().is_none() {
        eprintln!("skipped: ../shared/upstream is absent");
        return true;
    }
    false
}

/// kapi with upstream's controller manager and scheduler, and a fake kubelet's node.
struct Cluster {
    kubelet_running: Arc<AtomicBool>,
    _ctrl: ControlPlane,
    s: Server,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kubelet_running.store(false, Ordering::Release);
    }
}

impl Cluster {
    fn start() -> Cluster {
        let s = Server::start();
        let dir = tempfile::tempdir().unwrap();
        // As kubeadm runs it: each controller with its own ServiceAccount's credentials,
        // so every controller is authorized by RBAC's bootstrap `system:controller:*`
        // roles (issue #17).
        let ctrl = ControlPlane::start_with(
            &s.kubeconfig(),
            dir.path(),
            "--use-service-account-credentials=true",
        );
        let kubelet_running = Arc::new(AtomicBool::new(true));
        let c = Cluster { kubelet_running, _ctrl: ctrl, s, _dir: dir };
        c.register_node("n1");
        c
    }

    fn register_node(&self, name: &str) {
        let now = now();
        let node = format!(
            r#"{{"apiVersion":"v1","kind":"Node","metadata":{{"name":"{name}","labels":{{"kubernetes.io/hostname":"{name}"}}}},
            "status":{{"capacity":{{"cpu":"8","memory":"16Gi","pods":"110"}},"allocatable":{{"cpu":"8","memory":"16Gi","pods":"110"}},
            "conditions":[{{"type":"Ready","status":"True","reason":"KubeletReady","message":"ok","lastHeartbeatTime":"{now}","lastTransitionTime":"{now}"}}]}}}}"#
        );
        let out = self.s.kubectl_stdin(&["create", "-f", "-"], &node);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // The kubelet's heartbeat: the node Lease renewed every few seconds.
        let (kubeconfig, running, name) =
            (self.s.kubeconfig(), self.kubelet_running.clone(), name.to_string());
        std::thread::spawn(move || {
            while running.load(Ordering::Acquire) {
                let lease = format!(
                    r#"{{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{{"name":"{name}","namespace":"kube-node-lease"}},
                    "spec":{{"holderIdentity":"{name}","leaseDurationSeconds":40,"renewTime":"{}"}}}}"#,
                    micro_now()
                );
                let _ = kubectl_with_stdin(&kubeconfig, &["apply", "-f", "-"], &lease);
                std::thread::sleep(Duration::from_secs(3));
            }
        });
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.s.kubectl_ok(&all)).unwrap()
    }

    fn items(&self, args: &[&str]) -> Vec<Value> {
        self.json(args)["items"].as_array().cloned().unwrap_or_default()
    }

    /// The kubelet's last word on terminating pods: delete them for good.
    fn finish_terminating_pods(&self, ns: &str) {
        for p in self.items(&["get", "pods", "-n", ns]) {
            if p["metadata"]["deletionTimestamp"].is_string() {
                let name = p["metadata"]["name"].as_str().unwrap();
                let _ = self.s.kubectl(&[
                    "delete",
                    "pod",
                    name,
                    "-n",
                    ns,
                    "--grace-period=0",
                    "--force",
                ]);
            }
        }
    }

    fn until(&self, what: &str, mut f: impl FnMut() -> bool) {
        assert!(eventually(WAIT, &mut f), "timed out waiting for {what}\n{}", self.logs());
    }

    fn logs(&self) -> String {
        format!(
            "--- kube-controller-manager\n{}\n--- kube-scheduler\n{}",
            self._ctrl.log_tail("kube-controller-manager", 30),
            self._ctrl.log_tail("kube-scheduler", 30)
        )
    }

    /// kubectl with a bearer token instead of the admin certificate.
    fn kubectl_as(&self, token: &str, args: &[&str]) -> Output {
        let ca = self.s.dir.path().join("data/pki/ca.crt");
        Command::new("kubectl")
            .args(["--kubeconfig", "/dev/null", "--server", &self.s.url(), "--token", token])
            .arg("--certificate-authority")
            .arg(ca)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("kubectl")
    }

    fn whoami(&self, token: &str) -> Option<String> {
        let out = self
            .kubectl_as(token, &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]);
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn kubectl_with_stdin(kubeconfig: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn now() -> String {
    let out = Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn micro_now() -> String {
    let out = Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%S.%6NZ"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn names(items: &[Value]) -> Vec<String> {
    items.iter().filter_map(|i| i["metadata"]["name"].as_str().map(String::from)).collect()
}

#[test]
fn upstream_controllers_and_scheduler_run_workloads_on_kapi() {
    if skip() {
        return;
    }
    let c = Cluster::start();
    // A Deployment gets its ReplicaSet and Pods, and the scheduler binds them.
    c.s.kubectl_ok(&["create", "deployment", "web", "--image=nginx", "--replicas=3"]);
    c.until("3 web pods bound to n1", || {
        let pods = c.items(&["get", "pods", "-l", "app=web"]);
        pods.len() == 3 && pods.iter().all(|p| p["spec"]["nodeName"] == "n1")
    });
    let rs = c.items(&["get", "rs", "-l", "app=web"]);
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0]["metadata"]["ownerReferences"][0]["name"], "web");

    // A Job runs its Pod to completion (the test reports the phase as a kubelet would).
    c.s.kubectl_ok(&["create", "job", "j1", "--image=busybox", "--", "true"]);
    let mut pod = String::new();
    c.until("the job's pod bound", || {
        let pods = c.items(&["get", "pods", "-l", "job-name=j1"]);
        match pods.first() {
            Some(p) if p["spec"]["nodeName"] == "n1" => {
                pod = p["metadata"]["name"].as_str().unwrap().to_string();
                true
            }
            _ => false,
        }
    });
    let status = r#"{"status":{"phase":"Succeeded","containerStatuses":[{"name":"j1","image":"busybox","imageID":"","ready":false,"restartCount":0,"state":{"terminated":{"exitCode":0,"reason":"Completed"}}}]}}"#;
    c.s.kubectl_ok(&["patch", "pod", &pod, "--subresource=status", "--type=merge", "-p", status]);
    c.until("job j1 complete", || {
        let job = c.json(&["get", "job", "j1"]);
        job["status"]["succeeded"] == 1
            && job["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter().any(|c| c["type"] == "Complete" && c["status"] == "True")
            })
    });

    // The garbage collector, with each propagation policy.
    // Background: the dependents go after the owner.
    c.s.kubectl_ok(&["delete", "deployment", "web", "--cascade=background"]);
    c.until("web's ReplicaSet and pods collected", || {
        c.finish_terminating_pods("default");
        c.items(&["get", "rs", "-l", "app=web"]).is_empty()
            && c.items(&["get", "pods", "-l", "app=web"]).is_empty()
    });
    // Foreground: the owner waits, with the foregroundDeletion finalizer, for them.
    c.s.kubectl_ok(&["create", "deployment", "fg", "--image=nginx", "--replicas=2"]);
    c.until("2 fg pods bound", || {
        let pods = c.items(&["get", "pods", "-l", "app=fg"]);
        pods.len() == 2 && pods.iter().all(|p| p["spec"]["nodeName"] == "n1")
    });
    c.s.kubectl_ok(&["delete", "deployment", "fg", "--cascade=foreground", "--wait=false"]);
    let d = c.json(&["get", "deployment", "fg"]);
    assert!(d["metadata"]["deletionTimestamp"].is_string(), "{d}");
    assert_eq!(d["metadata"]["finalizers"], serde_json::json!(["foregroundDeletion"]));
    c.until("fg and its dependents gone", || {
        c.finish_terminating_pods("default");
        let gone = c.s.kubectl(&["get", "deployment", "fg"]);
        !gone.status.success() && c.items(&["get", "pods", "-l", "app=fg"]).is_empty()
    });
    // Orphan: the ReplicaSet stays, without its owner reference.
    c.s.kubectl_ok(&["create", "deployment", "or", "--image=nginx", "--replicas=1"]);
    c.until("the or ReplicaSet", || c.items(&["get", "rs", "-l", "app=or"]).len() == 1);
    c.s.kubectl_ok(&["delete", "deployment", "or", "--cascade=orphan"]);
    c.until("the orphaned ReplicaSet loses its owner reference", || {
        let rs = c.items(&["get", "rs", "-l", "app=or"]);
        rs.len() == 1 && rs[0]["metadata"]["ownerReferences"].as_array().is_none_or(Vec::is_empty)
    });
    assert!(!c.s.kubectl(&["get", "deployment", "or"]).status.success());
    assert_eq!(names(&c.items(&["get", "pods", "-l", "app=or"])).len(), 1);
    // The node stayed healthy on its Lease heartbeat.
    let node = c.json(&["get", "node", "n1"]);
    assert!(
        node["spec"]["taints"]
            .as_array()
            .is_none_or(|t| t.iter().all(|t| t["key"] != "node.kubernetes.io/unreachable")),
        "{node}"
    );
}

#[test]
fn upstream_controllers_manage_service_accounts_and_namespaces_on_kapi() {
    if skip() {
        return;
    }
    let c = Cluster::start();
    c.s.kubectl_ok(&["create", "namespace", "t1"]);
    // The ServiceAccount controller, the root CA publisher and the token controller.
    c.until("t1's default ServiceAccount, kube-root-ca.crt and token Secret", || {
        let secrets = c.items(&["get", "secrets", "-n", "t1"]);
        c.s.kubectl(&["get", "sa", "default", "-n", "t1"]).status.success()
            && c.s.kubectl(&["get", "cm", "kube-root-ca.crt", "-n", "t1"]).status.success()
            && secrets.iter().any(|s| {
                s["type"] == "kubernetes.io/service-account-token" && s["data"]["token"].is_string()
            })
    });
    let ca = std::fs::read_to_string(c.s.dir.path().join("data/pki/ca.crt")).unwrap();
    let cm = c.json(&["get", "cm", "kube-root-ca.crt", "-n", "t1"]);
    assert_eq!(cm["data"]["ca.crt"].as_str(), Some(ca.as_str()));
    // The controller manager's legacy token (signed with DATA_DIR/pki/sa.key)
    // authenticates while its Secret holds it.
    let secret = c
        .items(&["get", "secrets", "-n", "t1"])
        .into_iter()
        .find(|s| s["type"] == "kubernetes.io/service-account-token")
        .unwrap();
    use base64::Engine as _;
    let legacy = base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["token"].as_str().unwrap())
        .unwrap();
    let legacy = String::from_utf8(legacy).unwrap();
    assert_eq!(c.whoami(&legacy).as_deref(), Some("system:serviceaccount:t1:default"));

    // TokenRequest: a bound token, valid until its pod is gone.
    c.s.kubectl_ok(&["run", "p", "-n", "t1", "--image=nginx"]);
    let token = c.s.kubectl_ok(&["create", "token", "default", "-n", "t1"]);
    assert_eq!(c.whoami(token.trim()).as_deref(), Some("system:serviceaccount:t1:default"));
    let bound = c.s.kubectl_ok(&[
        "create",
        "token",
        "default",
        "-n",
        "t1",
        "--bound-object-kind=Pod",
        "--bound-object-name=p",
    ]);
    assert_eq!(c.whoami(bound.trim()).as_deref(), Some("system:serviceaccount:t1:default"));
    c.s.kubectl_ok(&["delete", "pod", "p", "-n", "t1", "--grace-period=0", "--force"]);
    assert_eq!(c.whoami(bound.trim()), None, "a token bound to a deleted pod is refused");
    assert!(c.whoami(token.trim()).is_some(), "an unbound one is not");

    // Deleting the token Secret ends the legacy token.
    let secret_name = secret["metadata"]["name"].as_str().unwrap();
    c.s.kubectl_ok(&["delete", "secret", secret_name, "-n", "t1"]);
    assert_eq!(c.whoami(&legacy), None);

    // Namespace deletion completes with the controllers running.
    c.s.kubectl_ok(&["create", "configmap", "x", "-n", "t1"]);
    c.s.kubectl_ok(&["delete", "namespace", "t1", "--wait=false"]);
    c.until("namespace t1 gone", || {
        c.finish_terminating_pods("t1");
        !c.s.kubectl(&["get", "namespace", "t1"]).status.success()
    });
    assert_eq!(c.whoami(token.trim()), None, "its ServiceAccount went with the namespace");
}
