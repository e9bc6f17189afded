//! Auditing against the real binary (issue #17, part 3): a policy file decides which
//! requests produce audit.k8s.io/v1 Events and with what (None skips, Metadata has no
//! bodies, RequestResponse has both); kubectl create/get/delete and a watch produce
//! upstream's stages; the `Audit-Id` response header is the event's `auditID` (a
//! client's `Audit-ID` is kept); a 403 and a 401 are audited as upstream audits them;
//! the log rotates by size under upstream's backup names keeping `maxbackup`; a webhook
//! served here over HTTPS (client certificate required) receives EventLists; a bad
//! policy stops the start. Runs on both backends.

use kapi_e2e::{Server, ServerOptions, eventually};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ALICE: &str = "alice-token-0123456789";

const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: []
rules:
- level: None
  resources:
  - group: ""
    resources: ["pods"]
- level: RequestResponse
  resources:
  - group: ""
    resources: ["configmaps"]
- level: Metadata
  resources:
  - group: ""
    resources: ["secrets"]
- level: Metadata
  nonResourceURLs: ["/api", "/api/*"]
  userGroups: ["system:unauthenticated"]
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write file");
    p
}

/// A server auditing with `policy` to `log` (plus `extra` flags), with user alice.
fn server(dir: &Path, policy: &str, extra: &[String]) -> Server {
    let policy = write(dir, "policy.yaml", policy);
    let tokens = write(dir, "tokens.csv", &format!("{ALICE},alice,uid-a\n"));
    let mut extra_args = vec![
        "--audit-policy-file".into(),
        policy.display().to_string(),
        "--token-auth-file".into(),
        tokens.display().to_string(),
    ];
    extra_args.extend_from_slice(extra);
    Server::start_with(ServerOptions { extra_args, ..Default::default() })
}

fn log_args(log: &Path) -> Vec<String> {
    vec!["--audit-log-path".into(), log.display().to_string()]
}

/// Every event in the log so far.
fn events(log: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).expect("one JSON event per line")).collect()
}

/// The events matching `f`, once there are at least `n` (waits for the writer thread).
fn wait_events(log: &Path, n: usize, f: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut found = Vec::new();
    eventually(Duration::from_secs(10), || {
        found = events(log).into_iter().filter(|e| f(e)).collect();
        found.len() >= n
    });
    found
}

fn is(e: &Value, verb: &str, resource: &str, name: &str) -> bool {
    e["verb"] == verb
        && e["objectRef"]["resource"] == resource
        && (name.is_empty() || e["objectRef"]["name"] == name)
}

fn stages(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["stage"].as_str().unwrap_or("").to_string()).collect()
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// curl of `path` (headers then body), with `args` (credentials, headers).
fn curl(s: &Server, path: &str, args: &[&str]) -> String {
    let ca = s.data_dir().join("pki/ca.crt");
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "--cacert"])
        .arg(ca)
        .args(args)
        .arg(format!("{}{path}", s.url()))
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn admin_token(s: &Server) -> String {
    let t = std::fs::read_to_string(s.data_dir().join("pki/admin.token")).expect("admin token");
    format!("Authorization: Bearer {}", t.trim())
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn kubectl_requests_are_audited_at_the_policys_levels() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs/audit.log");
    let s = server(dir.path(), POLICY, &log_args(&log));
    ok(s.kubectl(&["create", "configmap", "cm1", "--from-literal=k=v1"]));
    ok(s.kubectl(&["create", "secret", "generic", "s1", "--from-literal=password=hunter2"]));
    ok(s.kubectl(&["get", "configmap", "cm1"]));
    ok(s.kubectl(&["get", "pods"]));
    ok(s.kubectl(&["delete", "configmap", "cm1"]));

    // RequestResponse: both bodies, at ResponseComplete only; RequestReceived first.
    let create = wait_events(&log, 2, |e| is(e, "create", "configmaps", ""));
    assert_eq!(stages(&create), ["RequestReceived", "ResponseComplete"]);
    let done = &create[1];
    assert_eq!(done["level"], "RequestResponse");
    assert_eq!(done["auditID"], create[0]["auditID"]);
    assert_eq!(done["requestObject"]["data"]["k"], "v1");
    assert_eq!(done["responseObject"]["metadata"]["name"], "cm1");
    assert_eq!(done["responseStatus"], serde_json::json!({"metadata": {}, "code": 201}));
    assert_eq!(done["objectRef"]["name"], "cm1");
    assert_eq!(done["objectRef"]["namespace"], "default");
    assert_eq!(done["objectRef"]["apiVersion"], "v1");
    assert_eq!(done["user"]["groups"][0], "system:masters");
    assert_eq!(done["annotations"]["authorization.k8s.io/decision"], "allow");
    assert!(done["userAgent"].as_str().unwrap().starts_with("kubectl"));
    assert_eq!(done["sourceIPs"][0], "127.0.0.1");
    assert!(
        done["requestURI"].as_str().unwrap().starts_with("/api/v1/namespaces/default/configmaps?")
    );
    assert!(create[0].get("requestObject").is_none());
    assert!(create[0].get("annotations").is_none());
    for e in &create {
        let ts = e["stageTimestamp"].as_str().unwrap();
        assert_eq!(ts.len(), "2026-12-07T08:40:00.123456Z".len(), "{ts}");
    }

    // Metadata: the Secret's name but never its data.
    let secret = wait_events(&log, 2, |e| is(e, "create", "secrets", ""));
    assert_eq!(secret[1]["objectRef"]["name"], "s1");
    assert_eq!(secret[1]["level"], "Metadata");
    assert!(secret[1].get("requestObject").is_none() && secret[1].get("responseObject").is_none());
    let raw = std::fs::read_to_string(&log).unwrap();
    assert!(!raw.contains("hunter2") && !raw.contains("aHVudGVyMg=="), "a secret leaked");

    let get = wait_events(&log, 2, |e| is(e, "get", "configmaps", "cm1"));
    // kubectl asks for a Table: the responseObject is what it got.
    assert_eq!(get[1]["responseObject"]["kind"], "Table");
    assert!(get[1].get("requestObject").is_none());
    let delete = wait_events(&log, 2, |e| is(e, "delete", "configmaps", "cm1"));
    assert_eq!(delete[1]["responseStatus"]["code"], 200);
    // None: pods are not audited at all.
    assert!(events(&log).iter().all(|e| e["objectRef"]["resource"] != "pods"));

    // The Audit-Id header is the event's auditID; a client's Audit-ID is kept.
    let auth = admin_token(&s);
    let resp = curl(&s, "/api/v1/namespaces/default/secrets/s1", &["-H", &auth]);
    let id = header(&resp, "audit-id").expect("Audit-Id header").to_string();
    let by_id = wait_events(&log, 2, |e| e["auditID"] == id.as_str());
    assert_eq!(stages(&by_id), ["RequestReceived", "ResponseComplete"], "{by_id:?}");
    assert_eq!(by_id[1]["verb"], "get");
    let resp = curl(
        &s,
        "/api/v1/namespaces/default/secrets/s1",
        &["-H", &auth, "-H", "Audit-ID: client-chosen-id"],
    );
    assert_eq!(header(&resp, "audit-id"), Some("client-chosen-id"));
    wait_events(&log, 2, |e| e["auditID"] == "client-chosen-id");
    // Unaudited requests carry an audit ID too.
    assert!(
        header(&curl(&s, "/api/v1/namespaces/default/pods", &["-H", &auth]), "audit-id").is_some()
    );
    assert!(header(&curl(&s, "/healthz", &[]), "audit-id").is_some());

    // A watch: RequestReceived, ResponseStarted, ResponseComplete; no responseObject.
    let w = curl(
        &s,
        "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1",
        &["-H", &auth],
    );
    let wid = header(&w, "audit-id").expect("watch Audit-Id").to_string();
    let watch = wait_events(&log, 3, |e| e["auditID"] == wid.as_str());
    assert_eq!(stages(&watch), ["RequestReceived", "ResponseStarted", "ResponseComplete"]);
    assert_eq!(watch[0]["verb"], "watch");
    assert!(watch.iter().all(|e| e.get("responseObject").is_none()));
    assert_eq!(watch[2]["responseStatus"]["code"], 200);

    // 403: the user is known, the decision is forbid, the Status's fields are kept.
    let alice = format!("Authorization: Bearer {ALICE}");
    let resp = curl(&s, "/api/v1/namespaces/default/secrets/s1", &["-H", &alice]);
    assert!(resp.starts_with("HTTP/2 403") || resp.starts_with("HTTP/1.1 403"), "{resp}");
    let denied =
        wait_events(&log, 2, |e| is(e, "get", "secrets", "s1") && e["user"]["username"] == "alice");
    let e = &denied[1];
    assert_eq!(e["annotations"]["authorization.k8s.io/decision"], "forbid");
    assert_eq!(e["responseStatus"]["code"], 403);
    assert_eq!(e["responseStatus"]["status"], "Failure");
    assert_eq!(e["responseStatus"]["reason"], "Forbidden");
    assert!(
        e["responseStatus"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot get resource \"secrets\"")
    );
    assert!(e.get("responseObject").is_none());

    // Allowed by RBAC: the reason names the binding (regression: it was always empty).
    s.kubectl_ok(&["create", "role", "secret-reader", "--verb=get", "--resource=secrets"]);
    s.kubectl_ok(&["create", "rolebinding", "alice-reads", "--role=secret-reader", "--user=alice"]);
    eventually(Duration::from_secs(10), || {
        let resp = curl(&s, "/api/v1/namespaces/default/secrets/s1", &["-H", &alice]);
        resp.starts_with("HTTP/2 200") || resp.starts_with("HTTP/1.1 200")
    });
    let allowed = wait_events(&log, 1, |e| {
        is(e, "get", "secrets", "s1")
            && e["user"]["username"] == "alice"
            && e["annotations"]["authorization.k8s.io/decision"] == "allow"
    });
    assert_eq!(
        allowed[0]["annotations"]["authorization.k8s.io/reason"],
        r#"RBAC: allowed by RoleBinding "alice-reads/default" of Role "secret-reader" to User "alice""#
    );

    // 401: one ResponseStarted event, no user, as upstream's failed-authentication audit.
    let resp =
        curl(&s, "/api/v1/namespaces/default/secrets", &["-H", "Authorization: Bearer wrong"]);
    let id = header(&resp, "audit-id").expect("401 Audit-Id").to_string();
    let unauth = wait_events(&log, 1, |e| e["auditID"] == id.as_str());
    assert_eq!(stages(&unauth), ["ResponseStarted"]);
    assert_eq!(unauth[0]["user"], serde_json::json!({}));
    assert_eq!(unauth[0]["responseStatus"]["code"], 401);
    assert_eq!(unauth[0]["responseStatus"]["reason"], "Unauthorized");
    assert_eq!(unauth[0]["objectRef"]["resource"], "secrets");

    // A LIST at RequestResponse: the list the client got.
    let resp = curl(&s, "/api/v1/namespaces/default/configmaps", &["-H", &auth]);
    let id = header(&resp, "audit-id").expect("list Audit-Id").to_string();
    let list = wait_events(&log, 2, |e| e["auditID"] == id.as_str());
    assert_eq!(list[1]["responseObject"]["kind"], "ConfigMapList");

    let metrics = curl(&s, "/metrics", &["-H", &auth]);
    let count = metrics
        .lines()
        .find_map(|l| l.strip_prefix("apiserver_audit_event_total "))
        .and_then(|n| n.parse::<u64>().ok())
        .expect("apiserver_audit_event_total");
    assert!(count >= 10, "{count}");
    assert!(metrics.contains("apiserver_audit_requests_rejected_total 0"));
}

#[test]
fn the_log_rotates_by_size_under_upstreams_names() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let mut args = log_args(&log);
    args.extend(["--audit-log-maxsize", "1", "--audit-log-maxbackup", "2"].map(String::from));
    let s = server(dir.path(), POLICY, &args);
    let data = write(dir.path(), "blob.txt", &"x".repeat(200 * 1024));
    // Each create writes its 200 KiB twice (request and response): 16 of them are
    // over 6 MiB, several rotations of a 1 MiB log.
    for i in 0..16 {
        let from = format!("--from-file=blob={}", data.display());
        ok(s.kubectl(&["create", "configmap", &format!("big-{i}"), &from]));
    }
    wait_events(&log, 1, |e| {
        is(e, "create", "configmaps", "big-15") && e["stage"] == "ResponseComplete"
    });
    let backups: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("audit-"))
        .collect();
    assert_eq!(backups.len(), 2, "maxbackup keeps two: {backups:?}");
    for b in &backups {
        // audit-2026-12-07T08-40-00.000.log
        let stamp = b.strip_prefix("audit-").and_then(|r| r.strip_suffix(".log")).unwrap();
        let shape: String =
            stamp.chars().map(|c| if c.is_ascii_digit() { '0' } else { c }).collect();
        assert_eq!(shape, "0000-00-00T00-00-00.000", "{b}");
        assert!(std::fs::metadata(dir.path().join(b)).unwrap().len() <= 1024 * 1024);
        for line in std::fs::read_to_string(dir.path().join(b)).unwrap().lines() {
            serde_json::from_str::<Value>(line).expect("whole events in backups");
        }
    }
}

/// An HTTPS server that requires a client certificate and keeps each POSTed body; the
/// first `refuse` POSTs are answered 503 (and not kept).
fn webhook_sink(tls: &kapi_e2e::tls::TlsFiles, refuse: usize) -> (u16, Arc<Mutex<Vec<Value>>>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&tls.ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone())
            .build()
            .unwrap();
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&tls.server_cert).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(&tls.server_key).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let kept = got.clone();
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    std::thread::spawn(move || {
        for tcp in listener.incoming().map_while(Result::ok) {
            let (config, kept, refused) = (config.clone(), kept.clone(), refused.clone());
            std::thread::spawn(move || {
                let refuse = refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < refuse;
                if let Some(body) = read_post(config, tcp, refuse) {
                    kept.lock().unwrap().push(body);
                }
            });
        }
    });
    (port, got)
}

fn read_post(
    config: Arc<rustls::ServerConfig>,
    tcp: std::net::TcpStream,
    refuse: bool,
) -> Option<Value> {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let mut tls = rustls::StreamOwned::new(rustls::ServerConnection::new(config).ok()?, tcp);
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tls.read_exact(&mut byte).ok()?;
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("POST /audit HTTP/1.1"), "{head}");
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
        })?
        .parse()
        .ok()?;
    let mut body = vec![0u8; len];
    tls.read_exact(&mut body).ok()?;
    let status: &[u8] = if refuse { b"503 Service Unavailable" } else { b"200 OK" };
    let _ = tls.write_all(
        &[b"HTTP/1.1 ", status, b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"].concat(),
    );
    let _ = tls.flush();
    if refuse { None } else { serde_json::from_slice(&body).ok() }
}

#[test]
fn a_webhook_over_https_receives_event_lists() {
    let dir = tempfile::tempdir().unwrap();
    let tls = kapi_e2e::tls::TlsFiles::generate(&dir.path().join("pki"));
    // The first POST is refused: the batch is sent again after the initial backoff.
    let (port, got) = webhook_sink(&tls, 1);
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sink\n  cluster:\n    server: https://127.0.0.1:{port}/audit\n    certificate-authority: {}\nusers:\n- name: kapi\n  user:\n    client-certificate: {}\n    client-key: {}\ncontexts:\n- name: sink\n  context:\n    cluster: sink\n    user: kapi\ncurrent-context: sink\n",
        tls.ca.display(),
        tls.client_cert.display(),
        tls.client_key.display()
    );
    let config = write(dir.path(), "webhook.kubeconfig", &kubeconfig);
    let args = vec![
        "--audit-webhook-config-file".into(),
        config.display().to_string(),
        "--audit-webhook-batch-max-wait".into(),
        "1s".into(),
        "--audit-webhook-initial-backoff".into(),
        "200ms".into(),
    ];
    let s = server(dir.path(), POLICY, &args);
    ok(s.kubectl(&["create", "configmap", "hooked", "--from-literal=k=v"]));
    let mut items = Vec::new();
    let arrived = eventually(Duration::from_secs(20), || {
        let lists = got.lock().unwrap().clone();
        items = lists
            .iter()
            .inspect(|l| {
                assert_eq!(l["kind"], "EventList");
                assert_eq!(l["apiVersion"], "audit.k8s.io/v1");
            })
            .flat_map(|l| l["items"].as_array().cloned().unwrap_or_default())
            .filter(|e| is(e, "create", "configmaps", ""))
            .collect();
        items.len() >= 2
    });
    assert!(arrived, "the webhook got {:?}", got.lock().unwrap());
    assert_eq!(stages(&items), ["RequestReceived", "ResponseComplete"]);
    assert_eq!(items[1]["requestObject"]["data"]["k"], "v");
    let metrics = curl(&s, "/metrics", &["-H", &admin_token(&s)]);
    assert_eq!(metric(&metrics, "apiserver_audit_error_total{plugin=\"webhook\"} "), None);
}

#[test]
fn a_bad_policy_stops_the_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let bad = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Verbose\n";
    let policy = write(dir.path(), "policy.yaml", bad);
    let out = Command::new(kapi_e2e::kapi_bin())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--secure-port", "0", "--unsafe-no-fsync", "--audit-log-path", "-"])
        .arg("--audit-policy-file")
        .arg(&policy)
        .output()
        .expect("run kapi");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rules[0].level: Unsupported value: \"Verbose\""), "{err}");
    let unknown =
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  verb: [get]\n";
    std::fs::write(&policy, unknown).unwrap();
    let out = Command::new(kapi_e2e::kapi_bin())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--secure-port", "0", "--unsafe-no-fsync"])
        .arg("--audit-policy-file")
        .arg(&policy)
        .output()
        .expect("run kapi");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `verb`"));
}

/// The first number on the line starting with `prefix` in a /metrics document.
fn metric(metrics: &str, prefix: &str) -> Option<u64> {
    metrics.lines().find_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
}

#[test]
fn blocking_strict_refuses_requests_whose_events_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--audit-log-path", "/dev/full", "--audit-log-mode", "blocking-strict"];
    let s = server(dir.path(), POLICY, &args.map(String::from));
    let out = s.kubectl(&["get", "configmaps"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("failed to store audit event"), "{err}");
    // Unaudited requests are served.
    ok(s.kubectl(&["get", "pods"]));
    let metrics = curl(&s, "/metrics", &["-H", &admin_token(&s)]);
    assert!(metric(&metrics, "apiserver_audit_requests_rejected_total ").unwrap() >= 1);
    assert!(metric(&metrics, "apiserver_audit_error_total{plugin=\"log\"} ").unwrap() >= 1);
}

/// An impersonated request is audited as upstream writes it: `user` is who
/// authenticated, `impersonatedUser` whom it acts as (regression: the impersonated user
/// was written as `user`).
#[test]
fn impersonated_requests_name_both_users() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let s = server(dir.path(), POLICY, &log_args(&log));
    // The admin (system:masters) may impersonate anyone.
    s.kubectl_ok(&["get", "configmaps", "--as=bob", "--as-group=system:masters"]);
    let found = wait_events(&log, 1, |e| {
        is(e, "list", "configmaps", "") && e["stage"] == "ResponseComplete"
    });
    let e = found.first().expect("an event for the impersonated list");
    assert_eq!(e["user"]["username"], "kubernetes-admin", "{e}");
    assert_eq!(e["impersonatedUser"]["username"], "bob", "{e}");
    let groups = e["impersonatedUser"]["groups"].as_array().cloned().unwrap_or_default();
    assert!(groups.iter().any(|g| g == "system:masters"), "{e}");
}
