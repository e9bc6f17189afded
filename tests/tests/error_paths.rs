//! Error answers on paths before a handler runs (issue #14 item 5): a request body over
//! the 3 MiB limit gets upstream's 413 Status on HTTP/1.1 and HTTP/2 alike, whether its
//! length is declared or chunked.

use kapi_e2e::Server;
use serde_json::Value;

/// `curl` a POST of `body_file` over `http` (`--http1.1`, `--http2`): the exit code,
/// the answer's code and JSON body.
fn post(s: &Server, http: &str, chunked: bool, body_file: &std::path::Path) -> (i32, u16, Value) {
    let pki = s.dir.path().join("data/pki");
    let token = std::fs::read_to_string(pki.join("admin.token")).unwrap();
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", http, "--max-time", "60", "-w", "\n%{http_code}", "--cacert"]);
    cmd.arg(pki.join("ca.crt"));
    cmd.args(["-H", &format!("Authorization: Bearer {}", token.trim())]);
    cmd.args(["-H", "Content-Type: application/json"]);
    if chunked {
        cmd.args(["-H", "Transfer-Encoding: chunked"]);
    }
    cmd.arg("--data-binary").arg(format!("@{}", body_file.display()));
    let out = cmd.arg(format!("{}/api/v1/namespaces/default/configmaps", s.url())).output();
    let out = out.expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    let code = code.trim().parse().unwrap_or(0);
    (out.status.code().unwrap_or(-1), code, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Regression (issue #14 item 5): over HTTP/2 a body past the limit reset the stream
/// (curl error 92, no answer), and the 413's message lacked upstream's prefix.
#[test]
fn a_body_over_the_limit_gets_upstreams_413_on_http1_and_http2() {
    let s = Server::start();
    let big = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "big"}, "data": {"a": "x".repeat(4 << 20)}});
    let file = s.dir.path().join("big.json");
    std::fs::write(&file, serde_json::to_vec(&big).unwrap()).unwrap();
    for http in ["--http1.1", "--http2"] {
        for chunked in [false, true] {
            let (rc, code, st) = post(&s, http, chunked, &file);
            let case = format!("{http} chunked={chunked}");
            assert_eq!((rc, code), (0, 413), "{case}: {st}");
            assert_eq!(st["reason"], "RequestEntityTooLarge", "{case}");
            assert_eq!(st["message"], "Request entity too large: limit is 3145728", "{case}");
        }
    }
}
