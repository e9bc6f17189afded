//! `--runtime-config` as upstream's: a beta group/version it enables is discovered,
//! served to kubectl (create, get, explain) and shares its objects with the GA version
//! (one storage key, only `apiVersion` differing); versions it does not enable stay
//! unserved; an invalid value stops the start with upstream's message. Runs on both
//! backends (`KAPI_E2E_BACKEND=etcd`).

use kapi_e2e::{Server, ServerOptions, kapi_bin};
use serde_json::Value;
use std::process::{Command, Stdio};

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
