//! Token authentication and impersonation, as upstream kube-apiserver: bootstrap tokens
//! (`--enable-bootstrap-token-auth`) against kube-system Secrets; `kubectl --as` and
//! `--as-group` impersonation; TokenReview honouring `spec.audiences`.

use kapi_e2e::{Server, ServerOptions};
use serde_json::Value;
use std::process::Command;

/// kubectl as the holder of `token` only (no client certificate).
fn kubectl_with_token(s: &Server, token: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new("kubectl")
        .args(["--kubeconfig", "/dev/null", "--server", &s.url()])
        .arg("--certificate-authority")
        .arg(s.dir.path().join("data/pki/ca.crt"))
        .args(["--token", token])
        .args(args)
        .output()
        .expect("kubectl");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

const WHOAMI: &[&str] =
    &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}"];

const BOOTSTRAP_SECRET: &str = r#"
apiVersion: v1
kind: Secret
metadata:
  name: bootstrap-token-abcdef
  namespace: kube-system
type: bootstrap.kubernetes.io/token
stringData:
  token-id: abcdef
  token-secret: 0123456789abcdef
  usage-bootstrap-authentication: "true"
  auth-extra-groups: system:bootstrappers:kubeadm:default-node-token
"#;

#[test]
fn bootstrap_tokens_authenticate_when_enabled() {
    let s = Server::start_with(ServerOptions {
        extra_args: vec!["--enable-bootstrap-token-auth".into()],
        ..Default::default()
    });
    let token = "abcdef.0123456789abcdef";
    assert!(kubectl_with_token(&s, token, WHOAMI).unwrap_err().contains("You must be logged in"));
    assert!(s.kubectl_stdin(&["apply", "-f", "-"], BOOTSTRAP_SECRET).status.success());
    let who = kubectl_with_token(&s, token, WHOAMI).unwrap();
    assert_eq!(
        who,
        r#"system:bootstrap:abcdef ["system:bootstrappers","system:bootstrappers:kubeadm:default-node-token","system:authenticated"]"#
    );
    let wrong = kubectl_with_token(&s, "abcdef.0123456789abcdee", WHOAMI);
    assert!(wrong.unwrap_err().contains("You must be logged in"));
    // Not marked for authentication: refused.
    s.kubectl_ok(&[
        "-n",
        "kube-system",
        "patch",
        "secret",
        "bootstrap-token-abcdef",
        "-p",
        r#"{"stringData":{"usage-bootstrap-authentication":"false"}}"#,
    ]);
    assert!(kubectl_with_token(&s, token, WHOAMI).unwrap_err().contains("You must be logged in"));

    let off = Server::start();
    assert!(off.kubectl_stdin(&["apply", "-f", "-"], BOOTSTRAP_SECRET).status.success());
    assert!(kubectl_with_token(&off, token, WHOAMI).unwrap_err().contains("You must be logged in"));
}

#[test]
fn kubectl_as_impersonates_users_groups_and_service_accounts() {
    let s = Server::start();
    let who = s.kubectl_ok(&[
        "--as",
        "bob",
        "--as-group",
        "devs",
        "--as-group",
        "ops",
        WHOAMI[0],
        WHOAMI[1],
        WHOAMI[2],
        WHOAMI[3],
    ]);
    assert_eq!(who, r#"bob ["devs","ops","system:authenticated"]"#);
    let who = s.kubectl_ok(&[
        "--as",
        "system:serviceaccount:default:builder",
        "auth",
        "whoami",
        "-o",
        "json",
    ]);
    let v: Value = serde_json::from_str(&who).unwrap();
    assert_eq!(
        v["status"]["userInfo"]["groups"],
        serde_json::json!([
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ])
    );
    let who = s.kubectl_ok(&["--as", "carol", "--as-uid", "42", "auth", "whoami", "-o", "json"]);
    let v: Value = serde_json::from_str(&who).unwrap();
    assert_eq!(v["status"]["userInfo"]["uid"], "42");
    // A group without a user is refused.
    let out = s.kubectl(&["--as-group", "devs", "get", "namespaces"]);
    assert!(!out.status.success());
}

fn review(s: &Server, token: &str, audiences: &[&str]) -> Value {
    let review = serde_json::json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "metadata": {},
        "spec": {"token": token, "audiences": audiences},
    });
    let out = s.kubectl_stdin(&["create", "-f", "-", "-o", "json"], &review.to_string());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).unwrap()["status"].clone()
}

#[test]
fn token_reviews_honour_spec_audiences() {
    let s = Server::start();
    s.kubectl_ok(&["create", "serviceaccount", "reviewer"]);
    let vault = s.kubectl_ok(&["create", "token", "reviewer", "--audience", "vault"]);
    let vault = vault.trim();
    let status = review(&s, vault, &["vault", "other"]);
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(status["audiences"], serde_json::json!(["vault"]));
    assert_eq!(status["user"]["username"], "system:serviceaccount:default:reviewer");
    let status = review(&s, vault, &[]);
    assert!(status.get("authenticated").is_none(), "not for the API's audiences: {status}");
    assert!(status["error"].as_str().is_some_and(|e| !e.is_empty()));
    let admin = std::fs::read_to_string(s.dir.path().join("data/pki/admin.token")).unwrap();
    let status = review(&s, admin.trim(), &[]);
    assert_eq!(status["authenticated"], true);
    assert_eq!(
        status["audiences"],
        serde_json::json!(["https://kubernetes.default.svc.cluster.local"])
    );
    let status = review(&s, admin.trim(), &["vault"]);
    assert!(status.get("authenticated").is_none(), "a static token is for the API only: {status}");
}
