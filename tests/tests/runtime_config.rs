//! `--runtime-config` as upstream's: a beta group/version it enables is discovered,
//! served to kubectl (create, get, explain) and shares its objects with the GA version
//! (one storage key, only `apiVersion` differing) and its watch cache (one per storage
//! prefix; watches of both versions see the same events); versions it does not enable stay
//! unserved; an invalid value stops the start with upstream's message. Runs on both
//! backends (`KAPI_E2E_BACKEND=etcd`).

use kapi_e2e::{Server, ServerOptions, kapi_bin};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn an_enabled_beta_version_is_discovered_served_and_shares_the_ga_objects() {
    let s = Server::start_with(ServerOptions {
        extra_args: vec!["--runtime-config=resource.k8s.io/v1beta2=true".into()],
        ..Default::default()
    });

    // Discovery: the beta version is listed after the preferred GA one; v1beta1 is not.
    let versions = s.kubectl_ok(&["api-versions"]);
    let lines: Vec<&str> = versions.lines().collect();
    assert!(lines.contains(&"resource.k8s.io/v1beta2"), "{versions}");
    assert!(!lines.contains(&"resource.k8s.io/v1beta1"), "{versions}");
    let group = json(&s.kubectl_ok(&["get", "--raw", "/apis/resource.k8s.io"]));
    let listed: Vec<&str> = group["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["v1", "v1beta2"]);
    assert_eq!(group["preferredVersion"]["version"], "v1");
    let resources = json(&s.kubectl_ok(&["get", "--raw", "/apis/resource.k8s.io/v1beta2"]));
    let names: Vec<&str> = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"deviceclasses") && names.contains(&"resourceclaims/status"));
    let api_resources = s.kubectl_ok(&["api-resources", "--api-group=resource.k8s.io"]);
    assert!(api_resources.contains("deviceclasses"), "{api_resources}");
    let unserved = s.kubectl(&["get", "--raw", "/apis/resource.k8s.io/v1beta1"]);
    assert!(!unserved.status.success());

    // Create through the beta version, read through both.
    let beta = "apiVersion: resource.k8s.io/v1beta2\nkind: DeviceClass\nmetadata:\n  name: gpus\nspec: {}\n";
    let out = s.kubectl_stdin(&["create", "-f", "-"], beta);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let b = json(&s.kubectl_ok(&[
        "get",
        "deviceclasses.v1beta2.resource.k8s.io",
        "gpus",
        "-o",
        "json",
    ]));
    let g = json(&s.kubectl_ok(&["get", "deviceclasses.v1.resource.k8s.io", "gpus", "-o", "json"]));
    assert_eq!(b["apiVersion"], "resource.k8s.io/v1beta2");
    assert_eq!(g["apiVersion"], "resource.k8s.io/v1");
    assert_eq!(b["metadata"]["uid"], g["metadata"]["uid"]);
    assert_eq!(b["metadata"]["resourceVersion"], g["metadata"]["resourceVersion"]);

    // Create through GA, list through beta.
    let ga =
        "apiVersion: resource.k8s.io/v1\nkind: DeviceClass\nmetadata:\n  name: fpgas\nspec: {}\n";
    let out = s.kubectl_stdin(&["create", "-f", "-"], ga);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list = json(&s.kubectl_ok(&["get", "deviceclasses.v1beta2.resource.k8s.io", "-o", "json"]));
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    assert!(items.iter().all(|i| i["apiVersion"] == "resource.k8s.io/v1beta2"), "{list}");

    // The beta schema is published (kubectl explain reads OpenAPI).
    let explain =
        s.kubectl_ok(&["explain", "deviceclasses", "--api-version=resource.k8s.io/v1beta2"]);
    assert!(explain.contains("DeviceClass") && explain.contains("v1beta2"), "{explain}");
}

/// A watch of `path` (JSON lines) as a channel of events, and its process.
fn watch(s: &Server, path: &str) -> (mpsc::Receiver<Value>, std::process::Child) {
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(s.kubeconfig())
        .args(["get", "--raw", path])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(json(&line)).is_err() {
                return;
            }
        }
    });
    (rx, child)
}

/// `curl` a GET as the admin with `Accept: accept`: the body.
fn get_accepting(s: &Server, path: &str, accept: &str) -> Vec<u8> {
    let pki = s.dir.path().join("data/pki");
    let token = std::fs::read_to_string(pki.join("admin.token")).unwrap();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(pki.join("ca.crt"))
        .args(["-H", &format!("Authorization: Bearer {}", token.trim())])
        .args(["-H", &format!("Accept: {accept}")])
        .arg(format!("{}{path}", s.url()))
        .output()
        .expect("curl");
    out.stdout
}

/// A beta version stored as the GA one is served from the GA version's watch cache:
/// one cache (and feeder) for the storage prefix, each object held once; both versions
/// list and get the same objects, each in its own apiVersion (JSON, protobuf), and
/// watches of both see the same events at the same resourceVersions.
#[test]
fn a_beta_twin_shares_the_ga_watch_cache() {
    let s = Server::start_with(ServerOptions {
        extra_args: vec!["--runtime-config=resource.k8s.io/v1beta2=true".into()],
        ..Default::default()
    });
    let ga = "/apis/resource.k8s.io/v1/deviceclasses";
    let beta = "/apis/resource.k8s.io/v1beta2/deviceclasses";
    let start = json(&s.kubectl_ok(&["get", "--raw", ga]));
    let rv = start["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let (ga_events, mut ga_watch) = watch(&s, &format!("{ga}?watch=true&resourceVersion={rv}"));
    let (beta_events, mut beta_watch) =
        watch(&s, &format!("{beta}?watch=true&resourceVersion={rv}"));

    let class = |av: &str, name: &str| {
        format!("apiVersion: {av}\nkind: DeviceClass\nmetadata:\n  name: {name}\nspec: {{}}\n")
    };
    for doc in [class("resource.k8s.io/v1beta2", "gpus"), class("resource.k8s.io/v1", "fpgas")] {
        let out = s.kubectl_stdin(&["create", "-f", "-"], &doc);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    s.kubectl_ok(&["delete", "deviceclasses.v1beta2.resource.k8s.io", "gpus"]);

    let seen = |rx: &mpsc::Receiver<Value>, av: &str| -> Vec<(String, String, String)> {
        (0..3)
            .map(|_| {
                let e = rx.recv_timeout(Duration::from_secs(20)).expect("a watch event");
                assert_eq!(e["object"]["apiVersion"], av, "{e}");
                let o = &e["object"]["metadata"];
                let field = |v: &Value| v.as_str().unwrap_or_default().to_string();
                (field(&e["type"]), field(&o["name"]), field(&o["resourceVersion"]))
            })
            .collect()
    };
    let from_ga = seen(&ga_events, "resource.k8s.io/v1");
    let from_beta = seen(&beta_events, "resource.k8s.io/v1beta2");
    assert_eq!(from_ga, from_beta);
    let kinds: Vec<(&str, &str)> =
        from_ga.iter().map(|(t, n, _)| (t.as_str(), n.as_str())).collect();
    assert_eq!(kinds, [("ADDED", "gpus"), ("ADDED", "fpgas"), ("DELETED", "gpus")]);
    let _ = ga_watch.kill();
    let _ = beta_watch.kill();
    let _ = ga_watch.wait();
    let _ = beta_watch.wait();

    // Reads through both versions: the same object, each version's apiVersion.
    let g = json(&s.kubectl_ok(&["get", "--raw", &format!("{ga}/fpgas")]));
    let b = json(&s.kubectl_ok(&["get", "--raw", &format!("{beta}/fpgas")]));
    assert_eq!(g["apiVersion"], "resource.k8s.io/v1");
    assert_eq!(b["apiVersion"], "resource.k8s.io/v1beta2");
    assert_eq!(g["metadata"], b["metadata"]);
    let list = json(&s.kubectl_ok(&["get", "--raw", beta]));
    let names: Vec<(&str, &str)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["apiVersion"].as_str().unwrap(), i["metadata"]["name"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("resource.k8s.io/v1beta2", "fpgas")]);
    let pb = "application/vnd.kubernetes.protobuf";
    let b_pb =
        kapi_codec::protobuf::decode_object(&get_accepting(&s, &format!("{beta}/fpgas"), pb))
            .expect("a protobuf DeviceClass");
    assert_eq!(b_pb["apiVersion"], "resource.k8s.io/v1beta2");
    assert_eq!(b_pb["metadata"]["uid"], b["metadata"]["uid"]);
    let l_pb = kapi_codec::protobuf::decode_object(&get_accepting(&s, beta, pb))
        .expect("a protobuf DeviceClassList");
    assert_eq!(l_pb["items"][0]["metadata"]["name"], "fpgas");

    // One watch cache for the storage prefix, though both versions were read and watched.
    let metrics = s.kubectl_ok(&["get", "--raw", "/metrics"]);
    let caches: Vec<&str> = metrics
        .lines()
        .filter(|l| {
            l.starts_with("apiserver_watch_cache_resource_version{")
                && l.contains("resource=\"deviceclasses.resource.k8s.io\"")
        })
        .collect();
    assert_eq!(caches.len(), 1, "{caches:?}");
}

#[test]
fn a_disabled_ga_version_is_not_served() {
    let s = Server::start_with(ServerOptions {
        extra_args: vec!["--runtime-config=batch/v1=false".into()],
        ..Default::default()
    });
    let versions = s.kubectl_ok(&["api-versions"]);
    assert!(!versions.lines().any(|l| l == "batch/v1"), "{versions}");
    assert!(!s.kubectl(&["get", "--raw", "/apis/batch/v1"]).status.success());
    s.kubectl_ok(&["get", "deployments"]);
}

#[test]
fn an_invalid_runtime_config_stops_the_start_with_upstreams_message() {
    for (flag, message) in [
        ("nope.example.com/v1=true", "unknown api groups nope.example.com"),
        ("batch/v7=true", "group version batch/v7 that has not been registered"),
        ("api/all=maybe", "invalid value api/all=maybe"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(kapi_bin())
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--secure-port", "0", "--runtime-config", flag])
            .stdin(Stdio::null())
            .output()
            .expect("run kapi");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag}: {stderr}");
        assert!(stderr.contains(&format!("--runtime-config: {message}")), "{flag}: {stderr}");
        assert!(!dir.path().join("data").exists(), "{flag}: nothing is made");
    }
}
