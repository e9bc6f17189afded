//! kubectl v1.32 against the real kapi binary: the everyday commands a user types, for
//! every built-in type, with the output formats, watches, selectors and chunking they
//! rely on.

use kapi_e2e::{Server, eventually};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn manifest() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/every-type.yaml").display().to_string()
}

#[test]
fn namespaces_configmaps_and_secrets() {
    let s = Server::start();
    s.kubectl_ok(&["create", "namespace", "team-a"]);
    let ns = json(&s.kubectl_ok(&["get", "namespace", "team-a", "-o", "json"]));
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(ns["spec"]["finalizers"][0], "kubernetes");
    assert_eq!(ns["metadata"]["labels"]["kubernetes.io/metadata.name"], "team-a");

    s.kubectl_ok(&["-n", "team-a", "create", "configmap", "cfg", "--from-literal=mode=fast"]);
    s.kubectl_ok(&[
        "-n",
        "team-a",
        "create",
        "secret",
        "generic",
        "pw",
        "--from-literal=p=hunter2",
    ]);
    let cm = json(&s.kubectl_ok(&["-n", "team-a", "get", "cm", "cfg", "-o", "json"]));
    assert_eq!(cm["data"]["mode"], "fast");
    assert!(cm["metadata"]["uid"].as_str().is_some_and(|u| u.len() == 36));
    let secret = s.kubectl_ok(&["-n", "team-a", "get", "secret", "pw", "-o", "jsonpath={.data.p}"]);
    assert_eq!(secret, "aHVudGVyMg==");
    let yaml = s.kubectl_ok(&["-n", "team-a", "get", "cm", "cfg", "-o", "yaml"]);
    assert!(yaml.contains("mode: fast") && yaml.contains("kind: ConfigMap"), "{yaml}");
    let names = s.kubectl_ok(&["-n", "team-a", "get", "cm,secret", "-o", "name"]);
    assert!(names.contains("configmap/cfg") && names.contains("secret/pw"), "{names}");

    s.kubectl_ok(&["-n", "team-a", "label", "cm", "cfg", "tier=backend"]);
    s.kubectl_ok(&["-n", "team-a", "annotate", "cm", "cfg", "owner=ops"]);
    let cm = json(&s.kubectl_ok(&["-n", "team-a", "get", "cm", "cfg", "-o", "json"]));
    assert_eq!(cm["metadata"]["labels"]["tier"], "backend");
    assert_eq!(cm["metadata"]["annotations"]["owner"], "ops");
    let relabel = s.kubectl(&["-n", "team-a", "label", "cm", "cfg", "tier=frontend"]);
    assert!(!relabel.status.success(), "relabel without --overwrite must fail");
    s.kubectl_ok(&["-n", "team-a", "label", "cm", "cfg", "tier-"]);
    let described = s.kubectl_ok(&["-n", "team-a", "describe", "cm", "cfg"]);
    assert!(described.contains("Name:") && described.contains("cfg"), "{described}");

    let dup = s.kubectl(&["-n", "team-a", "create", "configmap", "cfg"]);
    let err = String::from_utf8_lossy(&dup.stderr);
    assert!(err.contains("AlreadyExists") || err.contains("already exists"), "{err}");
    let missing = s.kubectl(&["-n", "team-a", "get", "cm", "nope"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("NotFound"));

    s.kubectl_ok(&["-n", "team-a", "delete", "cm", "cfg"]);
    s.kubectl_ok(&["delete", "namespace", "team-a", "--wait=true", "--timeout=60s"]);
    let gone = s.kubectl(&["get", "namespace", "team-a"]);
    assert!(!gone.status.success(), "namespace must be gone after delete --wait");
    let rejected = s.kubectl(&["-n", "team-a", "create", "configmap", "late"]);
    assert!(!rejected.status.success(), "creates in a missing namespace are rejected");
}

#[test]
fn pods_deployments_and_services() {
    let s = Server::start();
    s.kubectl_ok(&["run", "web", "--image=nginx", "--labels=app=web"]);
    let pod = json(&s.kubectl_ok(&["get", "pod", "web", "-o", "json"]));
    // Upstream defaults.
    assert_eq!(pod["spec"]["restartPolicy"], "Always");
    assert_eq!(pod["spec"]["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["spec"]["schedulerName"], "default-scheduler");
    assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], 30);
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(pod["status"]["phase"], "Pending");
    let wide = s.kubectl_ok(&["get", "pods", "-o", "wide"]);
    assert!(wide.contains("web"), "{wide}");

    s.kubectl_ok(&["create", "deployment", "api", "--image=nginx:1.27", "--replicas=3"]);
    let dep = json(&s.kubectl_ok(&["get", "deploy", "api", "-o", "json"]));
    assert_eq!(dep["spec"]["replicas"], 3);
    assert_eq!(dep["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(dep["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert_eq!(dep["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(dep["spec"]["progressDeadlineSeconds"], 600);
    assert_eq!(dep["metadata"]["generation"], 1);
    s.kubectl_ok(&["scale", "deployment", "api", "--replicas=5"]);
    let dep = json(&s.kubectl_ok(&["get", "deploy", "api", "-o", "json"]));
    assert_eq!(dep["spec"]["replicas"], 5);
    assert_eq!(dep["metadata"]["generation"], 2, "a spec change bumps generation");

    s.kubectl_ok(&["create", "service", "clusterip", "api", "--tcp=80:8080"]);
    let svc = json(&s.kubectl_ok(&["get", "svc", "api", "-o", "json"]));
    let ip = svc["spec"]["clusterIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.9") || ip.starts_with("10.1"), "{ip} in 10.96.0.0/12");
    assert_eq!(svc["spec"]["sessionAffinity"], "None");
    assert_eq!(svc["spec"]["ipFamilies"][0], "IPv4");
    s.kubectl_ok(&["create", "service", "nodeport", "edge", "--tcp=443:8443"]);
    let np = json(&s.kubectl_ok(&["get", "svc", "edge", "-o", "json"]));
    let port = np["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    assert!((30000..=32767).contains(&port), "{port}");
    let kubernetes = json(&s.kubectl_ok(&["get", "svc", "kubernetes", "-o", "json"]));
    assert_eq!(kubernetes["spec"]["clusterIP"], "10.96.0.1");

    let described = s.kubectl_ok(&["describe", "pod", "web"]);
    assert!(described.contains("nginx"), "{described}");
    s.kubectl_ok(&["delete", "pod", "web", "--grace-period=0", "--force"]);
    s.kubectl_ok(&["delete", "deployments,services", "--all"]);
    // The system reconciler (every 10 s) may already have brought `kubernetes` back.
    let left = s.kubectl_ok(&["get", "deploy,svc", "-o", "name"]);
    assert!(matches!(left.trim(), "" | "service/kubernetes"), "{left}");
    // As upstream, the apiserver brings its own Service back.
    let back = eventually(Duration::from_secs(30), || {
        s.kubectl_ok(&["get", "svc", "-o", "name"]).trim() == "service/kubernetes"
    });
    assert!(back, "default/kubernetes was not re-created");
}

#[test]
fn every_builtin_type_from_a_manifest() {
    let s = Server::start();
    s.kubectl_ok(&["create", "namespace", "every"]);
    let out = s.kubectl_ok(&["create", "-f", &manifest()]);
    let created = out.lines().filter(|l| l.ends_with(" created")).count();
    let docs = std::fs::read_to_string(manifest()).unwrap().matches("\nkind: ").count();
    assert_eq!(created, docs, "{out}");
    let listed = s.kubectl_ok(&["get", "-f", &manifest(), "-o", "name"]);
    assert_eq!(listed.lines().count(), docs, "{listed}");
    // kubectl v1.32's describers for these kinds read their v1beta1 versions, which
    // upstream v1.35 no longer serves with default feature gates either.
    let skew = ["kind: IPAddress\n", "kind: ServiceCIDR\n", "kind: VolumeAttributesClass\n"];
    let text = std::fs::read_to_string(manifest()).unwrap();
    let describable: Vec<&str> =
        text.split("\n---\n").filter(|d| !skew.iter().any(|k| d.contains(k))).collect();
    let out = s.kubectl_stdin(&["describe", "-f", "-"], &describable.join("\n---\n"));
    let described = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(described.matches("\nName:").count() + 1 >= describable.len(), "{described}");
    let as_json = json(&s.kubectl_ok(&["get", "-f", &manifest(), "-o", "json"]));
    for item in as_json["items"].as_array().unwrap() {
        let rv = item["metadata"]["resourceVersion"].as_str().unwrap_or("");
        assert!(rv.parse::<u64>().is_ok_and(|n| n > 0), "{item}");
    }
    s.kubectl_ok(&["delete", "-f", &manifest(), "--wait=false"]);
    let after = s.kubectl(&["get", "-f", &manifest(), "-o", "name"]);
    let remaining = String::from_utf8_lossy(&after.stdout);
    // The pod is deleted gracefully and the namespace-scoped objects with finalizers may
    // linger; everything else is gone at once.
    assert!(remaining.lines().all(|l| l.starts_with("pod/")), "{remaining}");
}

/// `kubectl get configmaps --watch --output-watch-events -o json`, its output collected.
struct KubectlWatch {
    child: std::process::Child,
    text: std::sync::Arc<std::sync::Mutex<String>>,
}

impl KubectlWatch {
    fn start(s: &Server) -> KubectlWatch {
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(s.kubeconfig())
            .args(["get", "configmaps", "--watch", "--output-watch-events", "-o", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl watch");
        let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = text.clone();
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        // The watch has started once it printed the existing objects; give it a moment.
        std::thread::sleep(Duration::from_millis(1500));
        KubectlWatch { child, text }
    }

    /// (event type, configmap name) in the order printed.
    fn events(&self) -> Vec<(String, String)> {
        let text = self.text.lock().unwrap().clone();
        serde_json::Deserializer::from_str(&text)
            .into_iter::<Value>()
            .map_while(Result::ok)
            .map(|e| {
                let name = e["object"]["metadata"]["name"].as_str().unwrap_or("").to_string();
                (e["type"].as_str().unwrap_or("").to_string(), name)
            })
            .collect()
    }

    fn saw(&self, kind: &str, name: &str) -> bool {
        self.events().iter().any(|(k, n)| k == kind && n == name)
    }
}

impl Drop for KubectlWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn kubectl_watch_across_a_server_restart() {
    let mut s = Server::start();
    let before = KubectlWatch::start(&s);
    s.kubectl_ok(&["create", "configmap", "r1"]);
    assert!(eventually(Duration::from_secs(20), || before.saw("ADDED", "r1")));
    s.restart();
    s.kubectl_ok(&["create", "configmap", "r2"]);
    // The watch open during the restart ends cleanly (as against upstream kube-apiserver:
    // kubectl exits 0 when the server closes the watch), having printed each event once.
    let mut before = before;
    let status = before.child.wait().expect("kubectl exits");
    assert!(status.success(), "{status:?}");
    let r1: Vec<_> = before.events().into_iter().filter(|(_, n)| n == "r1").collect();
    assert_eq!(r1, vec![("ADDED".to_string(), "r1".to_string())]);
    // A new watch after the restart lists the current objects, then follows changes.
    let after = KubectlWatch::start(&s);
    assert!(eventually(Duration::from_secs(20), || after.saw("ADDED", "r1")
        && after.saw("ADDED", "r2")));
    s.kubectl_ok(&["label", "configmap", "r1", "x=y"]);
    s.kubectl_ok(&["delete", "configmap", "r2"]);
    assert!(eventually(Duration::from_secs(20), || after.saw("MODIFIED", "r1")
        && after.saw("DELETED", "r2")));
    let r2 = after.events().into_iter().filter(|(_, n)| n == "r2").count();
    assert_eq!(r2, 2, "r2 added once, deleted once: {:?}", after.events());
}

#[test]
fn watch_sees_added_modified_deleted() {
    let s = Server::start();
    let w = KubectlWatch::start(&s);
    s.kubectl_ok(&["create", "configmap", "w1"]);
    s.kubectl_ok(&["label", "configmap", "w1", "x=y"]);
    s.kubectl_ok(&["delete", "configmap", "w1"]);
    let text = w.text.clone();
    let has = |event: &str| text.lock().unwrap().contains(&format!("\"type\":\"{event}\""));
    let all = eventually(Duration::from_secs(20), || {
        ["ADDED", "MODIFIED", "DELETED"].iter().all(|e| has(e))
    });
    assert!(all, "watch output: {}", text.lock().unwrap());
}

#[test]
fn selectors_and_chunked_lists() {
    let s = Server::start();
    for i in 0..12 {
        let tier = if i % 3 == 0 { "front" } else { "back" };
        s.kubectl_ok(&["create", "configmap", &format!("c{i:02}")]);
        s.kubectl_ok(&[
            "label",
            "configmap",
            &format!("c{i:02}"),
            &format!("tier={tier}"),
            &format!("n={i}"),
        ]);
    }
    let names = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["get", "configmaps", "-o", "name"];
        a.extend_from_slice(args);
        s.kubectl_ok(&a).lines().map(|l| l.trim_start_matches("configmap/").to_string()).collect()
    };
    assert_eq!(names(&["-l", "tier=front"]), ["c00", "c03", "c06", "c09"]);
    assert_eq!(names(&["-l", "tier!=front,n in (1,2,3,4)"]), ["c01", "c02", "c04"]);
    assert_eq!(names(&["-l", "tier notin (back),n notin (0,3)"]), ["c06", "c09"]);
    assert_eq!(names(&["-l", "!missing,n=11"]), ["c11"]);
    assert_eq!(names(&["--field-selector", "metadata.name=c05"]), ["c05"]);
    assert_eq!(names(&["--field-selector", "metadata.name!=c05", "-l", "tier=front"]).len(), 4);
    let all = names(&["--chunk-size=5"]);
    assert_eq!(all.len(), 12, "{all:?}");
    let raw = s.kubectl_ok(&["get", "--raw", "/api/v1/namespaces/default/configmaps?limit=5"]);
    let page = json(&raw);
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    assert!(page["metadata"]["continue"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(page["metadata"]["remainingItemCount"], 7);
    let bad = s.kubectl(&["get", "configmaps", "--field-selector", "data.x=y"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("field label not supported"));
    s.kubectl_ok(&["delete", "configmaps", "-l", "tier=back"]);
    assert_eq!(names(&[]).len(), 4);
}

#[test]
fn explain_and_server_side_validation() {
    let s = Server::start();
    let explained = s.kubectl_ok(&["explain", "pods.spec.containers"]);
    assert!(explained.contains("FIELD: containers <[]Container>"), "{explained}");
    assert!(explained.contains("imagePullPolicy"), "{explained}");
    let dep = s.kubectl_ok(&["explain", "deployment.spec.strategy.rollingUpdate"]);
    assert!(dep.contains("maxSurge"), "{dep}");
    let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: strict}\nbogus: 1\n";
    let out = s.kubectl_stdin(&["create", "-f", "-"], manifest);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("unknown field \"bogus\""), "{err}");
    let warned = s.kubectl_stdin(&["create", "--validate=warn", "-f", "-"], manifest);
    assert!(warned.status.success());
    assert!(String::from_utf8_lossy(&warned.stderr).contains("unknown field \"bogus\""));
}

/// The set of (group, resource) pairs upstream v1.35 serves at GA versions, from the
/// reference swagger.json.
fn upstream_resources(swagger: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for path in swagger["paths"].as_object().unwrap().keys() {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (group, version, rest) = match parts.as_slice() {
            ["api", v, rest @ ..] => ("", *v, rest),
            ["apis", g, v, rest @ ..] => (*g, *v, rest),
            _ => continue,
        };
        let ga = version.strip_prefix('v').is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()));
        if !ga || rest.first() == Some(&"watch") {
            continue;
        }
        let resource = match rest {
            ["namespaces", "{namespace}", r, ..] => *r,
            [r, ..] if !r.is_empty() => *r,
            _ => continue,
        };
        out.insert((group.to_string(), resource.to_string()));
    }
    out
}

#[test]
fn api_resources_match_upstream() {
    let s = Server::start();
    let listed = s.kubectl_ok(&["api-resources", "-o", "name"]);
    let ours: BTreeSet<(String, String)> = listed
        .lines()
        .map(|l| match l.split_once('.') {
            Some((r, g)) => (g.to_string(), r.to_string()),
            None => (String::new(), l.to_string()),
        })
        .collect();
    let swagger = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/spec/swagger.json");
    let Ok(text) = std::fs::read_to_string(&swagger) else {
        eprintln!("skipping the upstream comparison: {} is not present", swagger.display());
        assert!(ours.len() > 60);
        return;
    };
    let upstream = upstream_resources(&json(&text));
    assert_eq!(ours, upstream, "kubectl api-resources differs from upstream v1.35");
}

/// Regression: a restart re-ran bootstrap, which tried to allocate the `kubernetes`
/// Service's cluster IP again and aborted start-up.
#[test]
fn restart_keeps_bootstrap_objects_and_data() {
    let mut s = Server::start();
    s.kubectl_ok(&["create", "configmap", "survivor", "--from-literal=a=b"]);
    s.restart();
    let cm = json(&s.kubectl_ok(&["get", "cm", "survivor", "-o", "json"]));
    assert_eq!(cm["data"]["a"], "b");
    let svc = json(&s.kubectl_ok(&["get", "svc", "kubernetes", "-o", "json"]));
    assert_eq!(svc["spec"]["clusterIP"], "10.96.0.1");
    s.kubectl_ok(&["create", "service", "clusterip", "after", "--tcp=80:80"]);
    let after = json(&s.kubectl_ok(&["get", "svc", "after", "-o", "json"]));
    assert_ne!(after["spec"]["clusterIP"], "10.96.0.1", "allocator state was rebuilt");
}

/// Regression: a watch resuming from a resourceVersion skipped the cache window's events
/// after it (the producer took the cache's current revision as already delivered).
#[test]
fn watch_from_a_resource_version_replays_later_events() {
    let s = Server::start();
    s.kubectl_ok(&["create", "configmap", "first"]);
    let rv =
        s.kubectl_ok(&["get", "configmap", "first", "-o", "jsonpath={.metadata.resourceVersion}"]);
    s.kubectl_ok(&["create", "configmap", "second"]);
    let url = format!(
        "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=1"
    );
    let events = s.kubectl_ok(&["get", "--raw", &url]);
    assert!(events.contains("\"name\":\"second\""), "{events}");
    assert!(!events.contains("\"name\":\"first\""), "{events}");
}
