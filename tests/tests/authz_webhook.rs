//! The Webhook authorization mode against a SubjectAccessReview server the test runs
//! over HTTPS (issue #17): its allow lets a request through that RBAC does not, its
//! explicit deny is the 403's reason, its no-opinion leaves the refusal to the chain, an
//! answer it cannot read is a 500 as upstream, and answers are cached (one review per
//! repeated request within the TTL). Runs on both backends.

use kapi_e2e::webhook::WebhookServer;
use kapi_e2e::{Server, ServerOptions};
use serde_json::{Value, json};

const CAROL: &str = "carol-token-0123456789";
const DAVE: &str = "dave-token-0123456789";
const ERIN: &str = "erin-token-0123456789";

fn review_answer(body: &[u8]) -> (u16, Vec<u8>) {
    let review: Value = serde_json::from_slice(body).unwrap_or_default();
    let spec = &review["spec"];
    let user = spec["user"].as_str().unwrap_or("");
    let res = &spec["resourceAttributes"];
    let status = match user {
        "carol" if res["resource"] == "configmaps" && res["verb"] == "get" => {
            json!({"allowed": true})
        }
        "carol"
            if res["verb"] == "impersonate"
                && res["resource"] == "users"
                && res["name"] == "bob" =>
        {
            json!({"allowed": true})
        }
        "dave" => json!({"allowed": false, "denied": true, "reason": "dave is banned"}),
        "erin" => return (200, b"not json".to_vec()),
        _ => json!({"allowed": false, "reason": "no opinion here"}),
    };
    let answer = json!({"apiVersion": review["apiVersion"], "kind": "SubjectAccessReview", "status": status});
    (200, answer.to_string().into_bytes())
}

/// A server with the Webhook mode after Node and RBAC, its webhook `hook`.
fn server_with(hook: &WebhookServer, dir: &std::path::Path) -> Server {
    let kubeconfig = dir.join("authz-webhook.kubeconfig");
    std::fs::write(&kubeconfig, hook.kubeconfig("/authorize")).unwrap();
    let tokens = dir.join("tokens.csv");
    std::fs::write(&tokens, format!("{CAROL},carol,u1\n{DAVE},dave,u2\n{ERIN},erin,u3\n")).unwrap();
    let extra_args = [
        "--authorization-mode=Node,RBAC,Webhook",
        &format!("--authorization-webhook-config-file={}", kubeconfig.display()),
        &format!("--token-auth-file={}", tokens.display()),
    ]
    .map(String::from)
    .to_vec();
    Server::start_with(ServerOptions { extra_args, ..Default::default() })
}

/// Regression: impersonation was checked against the webhook's cache only, so a user
/// whose impersonation only the webhook allows was refused until an earlier request
/// had cached the answer. Now the webhook is asked, as for the request itself.
#[test]
fn impersonation_only_the_webhook_allows_works_at_the_first_ask() {
    let hook = WebhookServer::start(|r| review_answer(&r.body));
    let dir = tempfile::tempdir().expect("tempdir");
    let s = server_with(&hook, dir.path());
    let out = s.kubectl_token(CAROL, &["get", "--raw", "/api", "--as", "bob"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = s.kubectl_token(CAROL, &["get", "--raw", "/api", "--as", "mallory"], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            r#"users "mallory" is forbidden: User "carol" cannot impersonate resource "users""#
        ),
        "{err}"
    );
}

#[test]
fn a_webhook_allows_denies_and_is_cached() {
    let hook = WebhookServer::start(|r| review_answer(&r.body));
    let dir = tempfile::tempdir().expect("tempdir");
    let s = server_with(&hook, dir.path());
    s.kubectl_ok(&["create", "configmap", "c1", "--from-literal=k=v"]);
    let get = |token: &str, path: &str| {
        let out = s.kubectl_token(token, &["get", "--raw", path], None);
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let cm = "/api/v1/namespaces/default/configmaps/c1";
    let (ok, err) = get(CAROL, cm);
    assert!(ok, "the webhook allows carol's get: {err}");
    let (ok, err) = get(CAROL, "/api/v1/namespaces/default/secrets/s");
    assert!(!ok);
    assert!(
        err.contains(r#"User "carol" cannot get resource "secrets" in API group "" in the namespace "default": no opinion here"#),
        "{err}"
    );
    let (ok, err) = get(DAVE, cm);
    assert!(!ok);
    assert!(err.contains(": dave is banned"), "{err}");
    // An answer the server cannot read: 500, as upstream.
    let (ok, err) = get(ERIN, cm);
    assert!(!ok);
    assert!(err.contains("InternalError") || err.contains("Internal error"), "{err}");
    // The same request again is answered from the cache.
    let before = hook
        .received()
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains("\"carol\""))
        .count();
    for _ in 0..3 {
        assert!(get(CAROL, cm).0);
    }
    let after = hook
        .received()
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains("\"carol\""))
        .count();
    assert_eq!(before, after, "allowed answers are cached");
    assert!(hook.received().iter().all(|r| r.method == "POST" && r.path == "/authorize"));
}
