//! Every subresource discovery lists answers the verbs it lists (none is 405), and the
//! ones with write rules of their own behave as upstream's: `pods/ephemeralcontainers`
//! (kubectl debug; existing ephemeral containers frozen), `pods/resize` (only container
//! resources change) and `certificatesigningrequests/approval` (kubectl certificate
//! approve/deny; only the conditions change).

use base64::Engine as _;
use kapi_e2e::Server;
use serde_json::{Value, json};
use std::process::Command;

/// `curl -X method` as the admin: (status code, body).
fn call(s: &Server, method: &str, path: &str, ctype: &str, body: Option<&str>) -> (u16, Value) {
    let token = std::fs::read_to_string(s.dir.path().join("data/pki/admin.token")).unwrap();
    let mut cmd = Command::new("curl");
    cmd.args(["-sk", "--max-time", "20", "-X", method, "-w", "\n%{http_code}"])
        .args(["-H", &format!("Authorization: Bearer {}", token.trim())])
        .args(["-H", &format!("Content-Type: {ctype}")]);
    if let Some(b) = body {
        cmd.args(["--data-binary", b]);
    }
    let out = cmd.arg(format!("{}{path}", s.url())).output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), serde_json::from_str(body).unwrap_or(Value::Null))
}

fn get(s: &Server, path: &str) -> Value {
    call(s, "GET", path, "application/json", None).1
}

/// Every served group/version's resource list path.
fn resource_lists(s: &Server) -> Vec<String> {
    let groups = get(s, "/apis");
    let mut paths = vec!["/api/v1".to_string()];
    for g in groups["groups"].as_array().into_iter().flatten() {
        for v in g["versions"].as_array().into_iter().flatten() {
            paths.push(format!("/apis/{}", v["groupVersion"].as_str().unwrap_or("")));
        }
    }
    paths
}

/// Subresources that reach a kubelet or a proxied backend (kapi runs none).
const PROXIED: [&str; 5] = ["proxy", "attach", "exec", "portforward", "log"];

/// Regression: pods/ephemeralcontainers, pods/resize and
/// certificatesigningrequests/approval were listed by discovery but answered 405.
#[test]
fn every_subresource_discovery_lists_answers_its_verbs() {
    let s = Server::start();
    let mut checked = 0;
    for list in resource_lists(&s) {
        let doc = get(&s, &list);
        for r in doc["resources"].as_array().into_iter().flatten() {
            let name = r["name"].as_str().unwrap_or("");
            let Some((plural, sub)) = name.split_once('/') else { continue };
            if PROXIED.contains(&sub) {
                continue;
            }
            let ns = if r["namespaced"] == true { "/namespaces/default" } else { "" };
            let path = format!("{list}{ns}/{plural}/absent-object/{sub}");
            for verb in r["verbs"].as_array().into_iter().flatten() {
                let method = match verb.as_str() {
                    Some("get") => "GET",
                    Some("update") => "PUT",
                    Some("patch") => "PATCH",
                    Some("create") => "POST",
                    _ => continue,
                };
                let ctype = if method == "PATCH" {
                    "application/merge-patch+json"
                } else {
                    "application/json"
                };
                let body = (method != "GET").then_some("{}");
                let (code, answer) = call(&s, method, &path, ctype, body);
                assert_ne!(code, 405, "{method} {path}: {answer}");
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} subresource verbs found");
}

/// Regression: kubectl debug failed (pods/ephemeralcontainers answered 405).
#[test]
fn kubectl_debug_adds_an_ephemeral_container_and_existing_ones_stay() {
    let s = Server::start();
    s.kubectl_ok(&["run", "web", "--image=nginx"]);
    s.kubectl_ok(&["debug", "web", "--image=busybox", "--container=dbg", "--target=web"]);
    let pod = get(&s, "/api/v1/namespaces/default/pods/web/ephemeralcontainers");
    let ec = &pod["spec"]["ephemeralContainers"][0];
    assert_eq!((ec["name"].as_str(), ec["image"].as_str()), (Some("dbg"), Some("busybox")));
    assert_eq!(ec["terminationMessagePolicy"], "File", "defaulted as upstream: {ec}");
    let path = "/api/v1/namespaces/default/pods/web/ephemeralcontainers";
    let merge = "application/merge-patch+json";
    let (code, status) =
        call(&s, "PATCH", path, merge, Some(r#"{"spec":{"ephemeralContainers":[]}}"#));
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        status["details"]["causes"][0]["message"],
        "Forbidden: existing ephemeral containers \"dbg\" may not be removed\n"
    );
    let mut pod = get(&s, path);
    pod["metadata"]["labels"] = json!({"x": "y"});
    let (code, out) = call(&s, "PUT", path, "application/json", Some(&pod.to_string()));
    assert_eq!(code, 200, "{out}");
    assert!(out["metadata"]["labels"].get("x").is_none(), "only ephemeral containers change");
}

/// Regression: pods/resize answered 405.
#[test]
fn pod_resize_changes_only_container_resources() {
    let s = Server::start();
    s.kubectl_ok(&["run", "web", "--image=nginx"]);
    let patch = r#"{"spec":{"containers":[{"name":"web","image":"other","resources":{"requests":{"cpu":"100m"}}}]}}"#;
    let path = "/api/v1/namespaces/default/pods/web/resize";
    let (code, pod) =
        call(&s, "PATCH", path, "application/strategic-merge-patch+json", Some(patch));
    assert_eq!(code, 200, "{pod}");
    let c = &pod["spec"]["containers"][0];
    assert_eq!(
        (c["image"].as_str(), &c["resources"]["requests"]["cpu"]),
        (Some("nginx"), &json!("100m"))
    );
}

fn csr_pem() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(rcgen::DnType::CommonName, "bob");
    params.serialize_request(&key).unwrap().pem().unwrap()
}

/// Regression: kubectl certificate approve/deny failed (the approval subresource
/// answered 405).
#[test]
fn kubectl_approves_and_denies_certificate_signing_requests() {
    let s = Server::start();
    for name in ["alice", "bob"] {
        let csr = json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": name},
            "spec": {"request": base64::engine::general_purpose::STANDARD.encode(csr_pem()),
                "signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"]}});
        let out = s.kubectl_stdin(&["create", "-f", "-"], &csr.to_string());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    s.kubectl_ok(&["certificate", "approve", "alice"]);
    s.kubectl_ok(&["certificate", "deny", "bob"]);
    let csrs = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
    let alice = get(&s, &format!("{csrs}/alice"));
    let cond = &alice["status"]["conditions"][0];
    assert_eq!((cond["type"].as_str(), cond["status"].as_str()), (Some("Approved"), Some("True")));
    assert!(cond["lastUpdateTime"].is_string() && cond["lastTransitionTime"].is_string());
    assert_eq!(get(&s, &format!("{csrs}/bob"))["status"]["conditions"][0]["type"], "Denied");
    let mut both = alice.clone();
    both["status"]["conditions"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "Denied", "status": "True"}));
    let approval = format!("{csrs}/alice/approval");
    let (code, status) = call(&s, "PUT", &approval, "application/json", Some(&both.to_string()));
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        status["details"]["causes"][0]["message"],
        "Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive"
    );
}
