//! The structured authorization configuration (`--authorization-config`, issue #17) with
//! a chain [Webhook with a matchCondition, a Webhook that is down with failurePolicy
//! Deny, Node, RBAC], the webhook served by the test over HTTPS: requests the condition
//! excludes never reach the webhook, its allow and deny are honoured, the dead webhook's
//! Deny policy ends the chain even for a user RBAC allows (upstream answers 500 then:
//! the deny carries the call's error), a changed file is reloaded while serving (a bad
//! one is not), and a bad file refuses to start with upstream's message. Runs on both
//! backends.

use kapi_e2e::webhook::WebhookServer;
use kapi_e2e::{Server, ServerOptions};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const CAROL: &str = "carol-token-0123456789";
const DAVE: &str = "dave-token-0123456789";

fn review_answer(body: &[u8]) -> (u16, Vec<u8>) {
    let review: Value = serde_json::from_slice(body).unwrap_or_default();
    let status = match review["spec"]["user"].as_str().unwrap_or("") {
        "carol" => json!({"allowed": true}),
        "dave" => json!({"allowed": false, "denied": true, "reason": "dave is banned"}),
        _ => json!({"allowed": false}),
    };
    let answer = json!({"apiVersion": review["apiVersion"], "kind": "SubjectAccessReview", "status": status});
    (200, answer.to_string().into_bytes())
}

fn webhook(name: &str, kubeconfig: &Path, policy: &str, namespace: &str) -> String {
    format!(
        "- type: Webhook
  name: {name}
  webhook:
    timeout: 5s
    failurePolicy: {policy}
    subjectAccessReviewVersion: v1
    matchConditionSubjectAccessReviewVersion: v1
    connectionInfo:
      type: KubeConfigFile
      kubeConfigFile: {}
    matchConditions:
    - expression: has(request.resourceAttributes)
    - expression: request.resourceAttributes.namespace == '{namespace}'
",
        kubeconfig.display()
    )
}

const HEAD: &str =
    "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\nauthorizers:\n";
const LOCAL: &str = "- type: Node\n  name: node\n- type: RBAC\n  name: rbac\n";

/// A port nothing listens on.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn a_configured_chain_matches_allows_denies_fails_closed_and_reloads() {
    let hook = WebhookServer::start(|r| review_answer(&r.body));
    let dir = tempfile::tempdir().expect("tempdir");
    let live = dir.path().join("live.kubeconfig");
    std::fs::write(&live, hook.kubeconfig("/authorize")).expect("write");
    let down = dir.path().join("down.kubeconfig");
    let dead = hook
        .kubeconfig("/authorize")
        .replace(&format!(":{}/", hook.port), &format!(":{}/", dead_port()));
    std::fs::write(&down, dead).expect("write");
    let config = dir.path().join("authz.yaml");
    let chain = format!(
        "{HEAD}{}{}{LOCAL}",
        webhook("guard.example.com", &live, "NoOpinion", "guarded"),
        webhook("down.example.com", &down, "Deny", "down")
    );
    std::fs::write(&config, &chain).expect("write");
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, format!("{CAROL},carol,u1\n{DAVE},dave,u2\n")).expect("write");
    let extra_args = vec![
        format!("--authorization-config={}", config.display()),
        format!("--token-auth-file={}", tokens.display()),
    ];
    let s = Server::start_with(ServerOptions { extra_args, ..Default::default() });
    for ns in ["guarded", "down"] {
        s.kubectl_ok(&["create", "namespace", ns]);
        s.kubectl_ok(&["create", "configmap", "c1", "-n", ns, "--from-literal=k=v"]);
    }
    s.kubectl_ok(&["create", "configmap", "c1", "--from-literal=k=v"]);
    let get = |token: &str, path: &str| {
        let out = s.kubectl_token(token, &["get", "--raw", path], None);
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let calls = || hook.received().len();

    // Outside the condition's namespace the webhook is skipped: RBAC refuses.
    let (ok, err) = get(CAROL, "/api/v1/namespaces/default/configmaps/c1");
    assert!(!ok);
    assert!(err.contains(r#"User "carol" cannot get resource "configmaps""#), "{err}");
    assert_eq!(calls(), 0, "the matchCondition kept the request from the webhook");

    // Inside it, the webhook's allow and deny are honoured.
    let (ok, err) = get(CAROL, "/api/v1/namespaces/guarded/configmaps/c1");
    assert!(ok, "the webhook allows carol: {err}");
    let (ok, err) = get(DAVE, "/api/v1/namespaces/guarded/configmaps/c1");
    assert!(!ok);
    assert!(err.contains(": dave is banned"), "{err}");
    assert_eq!(calls(), 2);

    // The dead webhook's Deny policy ends the chain before RBAC, which would allow.
    s.kubectl_ok(&["create", "role", "read", "-n", "down", "--verb=get", "--resource=configmaps"]);
    s.kubectl_ok(&["create", "rolebinding", "read", "-n", "down", "--role=read", "--user=carol"]);
    let (ok, err) = get(CAROL, "/api/v1/namespaces/down/configmaps/c1");
    assert!(!ok, "failurePolicy Deny refuses");
    assert!(err.contains("InternalError") || err.contains("Internal error"), "{err}");

    // A bad file while serving is not taken; a good one is.
    std::fs::write(&config, "apiVersion: apiserver.config.k8s.io").expect("write");
    std::thread::sleep(Duration::from_secs(5));
    assert!(get(CAROL, "/api/v1/namespaces/guarded/configmaps/c1").0, "the old chain still serves");
    let allowing = format!("{HEAD}- type: AlwaysAllow\n  name: alwaysallow\n{LOCAL}");
    std::fs::write(&config, allowing).expect("write");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !get(CAROL, "/api/v1/namespaces/default/configmaps/c1").0 {
        assert!(Instant::now() < deadline, "the changed file was never reloaded");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(get(DAVE, "/api/v1/namespaces/down/configmaps/c1").0, "AlwaysAllow now decides");
}

#[test]
fn a_bad_configuration_refuses_to_start_with_upstreams_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("hook.kubeconfig");
    std::fs::write(&kubeconfig, "").expect("write");
    let config = dir.path().join("authz.yaml");
    let twice = webhook("hook", &kubeconfig, "Deny", "x");
    let text = format!("{HEAD}{twice}{twice}{LOCAL}- type: RBAC\n  name: rbac\n");
    std::fs::write(&config, text).expect("write");
    let out = Command::new(kapi_e2e::kapi_bin())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg(format!("--authorization-config={}", config.display()))
        .output()
        .expect("run kapi");
    assert!(!out.status.success(), "kapi refused to start");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"[authorizers[1].name: Duplicate value: "hook", authorizers[4].type: Duplicate value: "RBAC"]"#),
        "{err}"
    );
}
