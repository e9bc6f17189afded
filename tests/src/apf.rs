//! Shared setup of the priority and fairness end-to-end tests (`flowcontrol_*.rs`): a
//! server whose users authenticate with static tokens and are cluster admins, raw
//! HTTP/1.1 requests as a user, a FlowSchema and priority level applied and in force, and
//! /metrics lookups.

use crate::{Server, ServerOptions, eventually};
use std::time::Duration;

/// A server whose users (`token,name,uid[,"groups"]` lines of a token file) are bound to
/// cluster-admin, started with `extra_args` besides the token file.
pub fn server_with_users(tokens: &str, users: &[&str], extra_args: &[&str]) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tokens.csv");
    std::fs::write(&file, tokens).expect("tokens");
    let mut args = vec!["--token-auth-file".to_string(), file.display().to_string()];
    args.extend(extra_args.iter().map(|a| a.to_string()));
    let s = Server::start_with(ServerOptions { extra_args: args, ..Default::default() });
    std::mem::forget(dir); // read at start; the directory outlives the test
    let flags: Vec<String> = users.iter().map(|u| format!("--user={u}")).collect();
    let mut kubectl =
        vec!["create", "clusterrolebinding", "apf-users", "--clusterrole=cluster-admin"];
    kubectl.extend(flags.iter().map(String::as_str));
    s.kubectl_ok(&kubectl);
    s
}

/// Apply `yaml` (a priority level and the FlowSchema `schema` that points at it) and wait
/// until the schema reads as not dangling (its level is in the configuration).
pub fn apply_level(s: &Server, yaml: &str, schema: &str, wait: Duration) {
    let out = s.kubectl_stdin(&["apply", "-f", "-"], yaml);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let jsonpath = "jsonpath={.status.conditions[0].status}";
    assert!(
        eventually(wait, || s.kubectl(&["get", "flowschema", schema, "-o", jsonpath]).stdout
            == b"False"),
        "flowschema {schema} never in force"
    );
}

/// An HTTP/1.1 request as `token`; `content_length` may promise more than `body`. A PATCH
/// is a merge patch.
pub fn request(
    method: &str,
    path: &str,
    token: &str,
    body: &str,
    content_length: usize,
) -> Vec<u8> {
    let kind = if method == "PATCH" { "merge-patch+json" } else { "json" };
    format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Accept: application/json\r\nContent-Type: application/{kind}\r\n\
         Content-Length: {content_length}\r\n\r\n{body}"
    )
    .into_bytes()
}

/// A ConfigMap named `name`, as JSON.
pub fn configmap(name: &str) -> String {
    format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}}}}"#)
}

/// A /metrics scrape.
pub fn metrics(s: &Server) -> String {
    s.kubectl_ok(&["get", "--raw", "/metrics"])
}

/// The value of the first line of `metrics` that starts with `prefix`.
pub fn value(metrics: &str, prefix: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
}

/// The value of `name` for FlowSchema `schema` at priority level `level` (upstream's
/// per-flow series, such as the `current_*` gauges).
pub fn flow_value(metrics: &str, name: &str, schema: &str, level: &str) -> Option<f64> {
    value(metrics, &format!("{name}{{flow_schema=\"{schema}\",priority_level=\"{level}\"}} "))
}
