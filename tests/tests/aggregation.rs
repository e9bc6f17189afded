//! API aggregation (apiregistration.k8s.io/v1 APIServices) against the real kapi binary
//! with kubectl: the test runs a small extension API server of its own (rustls over std
//! TCP, its own CA as the APIService's caBundle, client certificates checked against
//! kapi's front-proxy CA) serving `metrics.test.io/v1beta1` with one resource,
//! `widgets`. It registers it through a Service and Endpoints pointing at 127.0.0.1 and
//! checks: the APIService becomes Available (Passed); a list through kapi carries the
//! caller's identity in X-Remote-User/X-Remote-Group and never its credentials; the
//! group shows in discovery and `kubectl api-resources`; a watch streams its events as
//! they are sent; the `extension-apiserver-authentication` ConfigMap is published; a
//! local APIService is Available (Local); and once the extension server is gone the
//! APIService turns Available=False and requests get 503. Runs on both backends.

use kapi_e2e::{Server, eventually};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

const GV: &str = "/apis/metrics.test.io/v1beta1";

/// How the extension server answers kapi's `GET /apis` for aggregated discovery.
#[derive(Clone, Copy, PartialEq)]
enum Discovery {
    /// 404: it serves no `/apis` at all (kapi falls back to the resource list).
    Missing,
    /// Its own v2 document, which says more than its resource list does (a short name,
    /// a category and a subresource).
    Aggregated,
    /// 406 to the aggregated Accept, as an older server.
    NotAcceptable,
}

/// The extension API server.
struct Extension {
    port: u16,
    ca_pem: String,
    stop: Arc<AtomicBool>,
    /// Lets the watch send its second event.
    release: mpsc::Sender<()>,
}

impl Extension {
    fn start(front_proxy_ca: &str) -> Extension {
        Extension::serving(front_proxy_ca, "ext-api", "metrics.test.io", Discovery::Missing)
    }

    /// An extension server for `group`/v1beta1 behind the Service `service` (in
    /// `default`), answering discovery as `discovery` says.
    fn serving(
        front_proxy_ca: &str,
        service: &str,
        group: &'static str,
        discovery: Discovery,
    ) -> Extension {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "extension-ca");
        ca.distinguished_name = dn;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca, ca_key);
        let mut leaf = CertificateParams::new(vec![format!("{service}.default.svc")]).unwrap();
        leaf.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_pem = leaf.signed_by(&leaf_key, &issuer).unwrap().pem();

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(front_proxy_ca.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.into(),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .unwrap();
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(leaf_pem.as_bytes()).map(Result::unwrap).collect();
        let key = PrivateKeyDer::from_pem_slice(leaf_key.serialize_pem().as_bytes()).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_client_cert_verifier(verifier)
                .with_single_cert(certs, key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let (release, released) = mpsc::channel::<()>();
        let released = Arc::new(Mutex::new(released));
        let stopping = stop.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return; // the listener is dropped: the port refuses connections
                }
                let Ok(tcp) = conn else { continue };
                let (config, released) = (config.clone(), released.clone());
                std::thread::spawn(move || serve(config, tcp, &released, group, discovery));
            }
        });
        Extension { port, ca_pem, stop, release }
    }

    /// Stop listening (new connections are refused).
    fn shut_down(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(
    config: Arc<rustls::ServerConfig>,
    tcp: TcpStream,
    released: &Mutex<mpsc::Receiver<()>>,
    group: &str,
    discovery: Discovery,
) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let conn = rustls::ServerConnection::new(config).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tls.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.lines();
    let target = lines.next().unwrap_or("").split_whitespace().nth(1).unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let all = |name: &str| -> Vec<String> {
        headers.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let has_client_cert = tls.conn.peer_certificates().is_some_and(|c| !c.is_empty());
    let respond = |tls: &mut rustls::StreamOwned<_, _>, code: u16, body: &Value| {
        let body = body.to_string();
        let _ = write!(
            tls,
            "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = tls.flush();
    };
    let gv = format!("/apis/{group}/v1beta1");
    if path == gv {
        let list = json!({"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": format!("{group}/v1beta1"), "resources": [
            {"name": "widgets", "singularName": "widget", "namespaced": true, "kind": "Widget",
             "verbs": ["get", "list", "watch"]}]});
        return respond(&mut tls, 200, &list);
    }
    let asks_aggregated = all("accept").iter().any(|a| a.contains("as=APIGroupDiscoveryList"));
    if path == "/apis" && asks_aggregated && discovery == Discovery::NotAcceptable {
        return respond(&mut tls, 406, &json!({"kind": "Status", "code": 406}));
    }
    if path == "/apis" && asks_aggregated && discovery == Discovery::Aggregated {
        let body = aggregated_document(group).to_string();
        let _ = write!(
            tls,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = tls.flush();
        return;
    }
    if path != format!("{gv}/namespaces/default/widgets") {
        return respond(&mut tls, 404, &json!({"kind": "Status", "code": 404}));
    }
    if !has_client_cert {
        return respond(&mut tls, 401, &json!({"kind": "Status", "code": 401}));
    }
    let widget = |name: &str| {
        json!({"apiVersion": "metrics.test.io/v1beta1", "kind": "Widget",
               "metadata": {"name": name, "namespace": "default"}})
    };
    if head.starts_with("POST ") {
        // Echo the body back (read by Content-Length or chunked framing).
        let body = read_body(&mut tls, &all("content-length"), &all("transfer-encoding"));
        let mut obj: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        obj["receivedBytes"] = json!(body.len());
        return respond(&mut tls, 201, &obj);
    }
    if query.split('&').any(|p| p == "watch=true" || p == "watch=1") {
        let _ = write!(
            tls,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        let chunk = |tls: &mut rustls::StreamOwned<_, _>, data: &str| {
            let _ = write!(tls, "{:x}\r\n{data}\r\n", data.len());
            let _ = tls.flush();
        };
        chunk(&mut tls, &format!("{}\n", json!({"type": "ADDED", "object": widget("first")})));
        // The second event is sent only once the test has seen the first.
        let _ = released.lock().unwrap().recv_timeout(Duration::from_secs(30));
        chunk(&mut tls, &format!("{}\n", json!({"type": "ADDED", "object": widget("second")})));
        let _ = write!(tls, "0\r\n\r\n");
        let _ = tls.flush();
        return;
    }
    let mut echo = widget("echo");
    echo["user"] = json!(all("x-remote-user"));
    echo["groups"] = json!(all("x-remote-group"));
    echo["authorization"] = json!(all("authorization"));
    let list = json!({"apiVersion": "metrics.test.io/v1beta1", "kind": "WidgetList",
                      "metadata": {}, "items": [echo]});
    respond(&mut tls, 200, &list)
}

/// The extension's own aggregated discovery: what its resource list says, and a short
/// name, a category and a status subresource the list does not have.
fn aggregated_document(group: &str) -> Value {
    let kind = json!({"group": group, "version": "v1beta1", "kind": "Widget"});
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {}, "items": [{"metadata": {"name": group}, "versions": [{
            "version": "v1beta1", "freshness": "Current", "resources": [{
                "resource": "widgets", "responseKind": kind, "scope": "Namespaced",
                "singularResource": "widget", "verbs": ["get", "list", "watch"],
                "shortNames": ["wdg"], "categories": ["gadgets"],
                "subresources": [{"subresource": "status", "responseKind": kind,
                                  "verbs": ["get"]}]}]}]}]})
}

fn read_body(r: &mut impl Read, length: &[String], encoding: &[String]) -> Vec<u8> {
    let mut body = Vec::new();
    if let Some(n) = length.first().and_then(|n| n.parse::<usize>().ok()) {
        body.resize(n, 0);
        let _ = r.read_exact(&mut body);
        return body;
    }
    if !encoding.iter().any(|e| e.contains("chunked")) {
        return body;
    }
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        line.clear();
        while !line.ends_with(b"\r\n") {
            if r.read(&mut byte).unwrap_or(0) == 0 {
                return body;
            }
            line.push(byte[0]);
        }
        let size = usize::from_str_radix(String::from_utf8_lossy(&line).trim(), 16).unwrap_or(0);
        let mut chunk = vec![0u8; size + 2];
        if r.read_exact(&mut chunk).is_err() || size == 0 {
            return body;
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn apply(s: &Server, yaml: &str) {
    let out = s.kubectl_stdin(&["apply", "-f", "-"], yaml);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn available(s: &Server, name: &str) -> Option<Value> {
    let out = s.kubectl(&["get", "apiservice", name, "-o", "json"]);
    let obj = json_of(&String::from_utf8_lossy(&out.stdout));
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Available")
        .cloned()
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn apiservices_are_probed_proxied_and_discovered() {
    let s = Server::start();
    let pki = s.dir.path().join("data").join("pki");
    let front_proxy_ca = std::fs::read_to_string(pki.join("front-proxy-ca.crt")).unwrap();
    let ext = Extension::start(&front_proxy_ca);

    // The authentication ConfigMap extension servers read.
    assert!(eventually(Duration::from_secs(20), || {
        s.kubectl(&["get", "configmap", "-n", "kube-system", "extension-apiserver-authentication"])
            .status
            .success()
    }));
    let cm = json_of(&s.kubectl_ok(&[
        "get",
        "configmap",
        "-n",
        "kube-system",
        "extension-apiserver-authentication",
        "-o",
        "json",
    ]));
    assert_eq!(cm["data"]["requestheader-username-headers"], "[\"X-Remote-User\"]");
    assert_eq!(cm["data"]["requestheader-group-headers"], "[\"X-Remote-Group\"]");
    assert_eq!(cm["data"]["requestheader-extra-headers-prefix"], "[\"X-Remote-Extra-\"]");
    assert_eq!(cm["data"]["requestheader-allowed-names"], "[\"front-proxy-client\"]");
    assert_eq!(cm["data"]["requestheader-client-ca-file"], front_proxy_ca.as_str());
    let ca = std::fs::read_to_string(pki.join("ca.crt")).unwrap();
    assert_eq!(cm["data"]["client-ca-file"], ca.as_str());

    // An APIService whose Service does not exist yet.
    let apiservice = format!(
        "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {{name: v1beta1.metrics.test.io}}\nspec:\n  group: metrics.test.io\n  version: v1beta1\n  groupPriorityMinimum: 100\n  versionPriority: 100\n  caBundle: {}\n  service: {{namespace: default, name: ext-api, port: 443}}\n",
        base64(ext.ca_pem.as_bytes())
    );
    apply(&s, &apiservice);
    assert!(
        eventually(Duration::from_secs(20), || available(&s, "v1beta1.metrics.test.io")
            .is_some_and(|c| c["reason"] == "ServiceNotFound")),
        "{:?}",
        available(&s, "v1beta1.metrics.test.io")
    );
    let c = available(&s, "v1beta1.metrics.test.io").unwrap();
    assert_eq!(c["status"], "False");
    assert_eq!(c["message"], "service/ext-api in \"default\" is not present");

    // The Service and its Endpoints at the extension server.
    apply(
        &s,
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: ext-api, namespace: default}}\nspec:\n  ports: [{{name: https, port: 443, targetPort: {p}}}]\n---\napiVersion: v1\nkind: Endpoints\nmetadata: {{name: ext-api, namespace: default}}\nsubsets:\n- addresses: [{{ip: 127.0.0.1}}]\n  ports: [{{name: https, port: {p}}}]\n",
            p = ext.port
        ),
    );
    s.kubectl_ok(&[
        "wait",
        "--for=condition=Available",
        "apiservice/v1beta1.metrics.test.io",
        "--timeout=30s",
    ]);
    let c = available(&s, "v1beta1.metrics.test.io").unwrap();
    assert_eq!(
        (c["reason"].as_str(), c["message"].as_str()),
        (Some("Passed"), Some("all checks passed"))
    );

    // A list through kapi: the caller's identity, not its credentials.
    let list =
        json_of(&s.kubectl_ok(&["get", "--raw", &format!("{GV}/namespaces/default/widgets")]));
    let echo = &list["items"][0];
    assert_eq!(echo["user"], json!(["kubernetes-admin"]), "{list}");
    let groups: Vec<&str> =
        echo["groups"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(groups.contains(&"system:masters"), "{groups:?}");
    assert!(groups.contains(&"system:authenticated"), "{groups:?}");
    assert_eq!(echo["authorization"], json!([]));

    // A request body goes through (streamed to the extension server) and back.
    let posted = s.dir.path().join("widget.json");
    let widget = json!({"apiVersion": "metrics.test.io/v1beta1", "kind": "Widget",
        "metadata": {"name": "posted"}, "spec": {"pad": "x".repeat(100_000)}});
    std::fs::write(&posted, widget.to_string()).unwrap();
    let created = json_of(&s.kubectl_ok(&[
        "create",
        "--raw",
        &format!("{GV}/namespaces/default/widgets"),
        "-f",
        posted.to_str().unwrap(),
    ]));
    assert_eq!(created["metadata"]["name"], "posted");
    assert_eq!(created["receivedBytes"], json!(widget.to_string().len()));

    // Discovery: legacy and aggregated (kubectl api-resources reads the latter).
    let apis = json_of(&s.kubectl_ok(&["get", "--raw", "/apis"]));
    let group = apis["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "metrics.test.io")
        .cloned()
        .unwrap_or_else(|| panic!("{apis}"));
    assert_eq!(group["preferredVersion"]["groupVersion"], "metrics.test.io/v1beta1");
    let g = json_of(&s.kubectl_ok(&["get", "--raw", "/apis/metrics.test.io"]));
    assert_eq!(g["kind"], "APIGroup");
    let rl = json_of(&s.kubectl_ok(&["get", "--raw", GV]));
    assert_eq!(rl["resources"][0]["name"], "widgets");
    let resources = s.kubectl_ok(&["api-resources", "--api-group=metrics.test.io"]);
    assert!(resources.contains("widgets"), "{resources}");
    assert!(resources.contains("metrics.test.io/v1beta1"), "{resources}");

    // A watch streams: the first event arrives while the server still holds the second.
    let mut watch = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(s.kubeconfig())
        .args(["get", "--raw", &format!("{GV}/namespaces/default/widgets?watch=true")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let first = lines_rx.recv_timeout(Duration::from_secs(20)).expect("first event");
    assert!(first.contains("\"first\""), "{first}");
    assert!(lines_rx.recv_timeout(Duration::from_millis(300)).is_err(), "second came early");
    ext.release.send(()).unwrap();
    let second = lines_rx.recv_timeout(Duration::from_secs(20)).expect("second event");
    assert!(second.contains("\"second\""), "{second}");
    let _ = watch.wait();

    // A local APIService is always available.
    apply(
        &s,
        "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {name: v1alpha1.local.test.io}\nspec: {group: local.test.io, version: v1alpha1, groupPriorityMinimum: 1000, versionPriority: 15}\n",
    );
    assert!(eventually(Duration::from_secs(20), || available(&s, "v1alpha1.local.test.io")
        .is_some_and(|c| c["status"] == "True" && c["reason"] == "Local")));

    // The extension server goes away: unavailable, and requests get 503.
    ext.shut_down();
    assert!(
        eventually(Duration::from_secs(30), || available(&s, "v1beta1.metrics.test.io")
            .is_some_and(|c| c["status"] == "False")),
        "{:?}",
        available(&s, "v1beta1.metrics.test.io")
    );
    let c = available(&s, "v1beta1.metrics.test.io").unwrap();
    assert_eq!(c["reason"], "FailedDiscoveryCheck");
    let msg = c["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!(
            "failing or missing response from https://127.0.0.1:{}{GV}",
            ext.port
        )),
        "{msg}"
    );
    let out = s.kubectl(&["get", "--raw", &format!("{GV}/namespaces/default/widgets")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ServiceUnavailable") || err.contains("503"), "{err}");
}

/// Register `ext` as `v1beta1.GROUP` behind a Service `NAME` in `default`.
fn register(s: &Server, ext: &Extension, group: &str, name: &str) {
    apply(
        s,
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  ports: [{{name: https, port: 443, targetPort: {p}}}]\n---\napiVersion: v1\nkind: Endpoints\nmetadata: {{name: {name}, namespace: default}}\nsubsets:\n- addresses: [{{ip: 127.0.0.1}}]\n  ports: [{{name: https, port: {p}}}]\n---\napiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {{name: v1beta1.{group}}}\nspec:\n  group: {group}\n  version: v1beta1\n  groupPriorityMinimum: 100\n  versionPriority: 100\n  caBundle: {ca}\n  service: {{namespace: default, name: {name}, port: 443}}\n",
            p = ext.port,
            ca = base64(ext.ca_pem.as_bytes())
        ),
    );
}

/// kapi's aggregated discovery entry for `group`'s v1beta1.
fn aggregated_entry(s: &Server, group: &str) -> Option<Value> {
    let token = std::fs::read_to_string(s.dir.path().join("data/pki/admin.token")).unwrap();
    let out = std::process::Command::new("curl")
        .args(["-sk", "--max-time", "20"])
        .args(["-H", &format!("Authorization: Bearer {}", token.trim())])
        .args([
            "-H",
            "Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
        ])
        .arg(format!("{}/apis", s.url()))
        .output()
        .expect("curl");
    let doc: Value = serde_json::from_slice(&out.stdout).ok()?;
    let g = doc["items"].as_array()?.iter().find(|g| g["metadata"]["name"] == group)?;
    g["versions"].as_array()?.iter().find(|v| v["version"] == "v1beta1").cloned()
}

/// Aggregated discovery takes an extension server's own aggregated document when it
/// serves one (its short names, categories and subresources, which its resource list
/// lacks), falls back to the resource list when the server answers 406, and marks an
/// APIService whose server went away Stale, without resources.
#[test]
fn extension_discovery_is_merged_from_its_aggregated_document_or_its_resource_list() {
    let s = Server::start();
    let pki = s.dir.path().join("data").join("pki");
    let front_proxy_ca = std::fs::read_to_string(pki.join("front-proxy-ca.crt")).unwrap();
    let aggregated =
        Extension::serving(&front_proxy_ca, "agg-api", "agg.test.io", Discovery::Aggregated);
    let older =
        Extension::serving(&front_proxy_ca, "older-api", "older.test.io", Discovery::NotAcceptable);
    register(&s, &aggregated, "agg.test.io", "agg-api");
    register(&s, &older, "older.test.io", "older-api");
    for name in ["v1beta1.agg.test.io", "v1beta1.older.test.io"] {
        s.kubectl_ok(&[
            "wait",
            "--for=condition=Available",
            &format!("apiservice/{name}"),
            "--timeout=30s",
        ]);
    }

    // The server's own document, as it says it.
    let current = |group: &str| {
        eventually(Duration::from_secs(20), || {
            aggregated_entry(&s, group).is_some_and(|v| v["freshness"] == "Current")
        })
    };
    assert!(current("agg.test.io"), "{:?}", aggregated_entry(&s, "agg.test.io"));
    let v = aggregated_entry(&s, "agg.test.io").unwrap();
    let kind = json!({"group": "agg.test.io", "version": "v1beta1", "kind": "Widget"});
    assert_eq!(
        v["resources"],
        json!([{"resource": "widgets", "responseKind": kind, "scope": "Namespaced",
                "singularResource": "widget", "verbs": ["get", "list", "watch"],
                "shortNames": ["wdg"], "categories": ["gadgets"],
                "subresources": [{"subresource": "status", "responseKind": kind,
                                  "verbs": ["get"]}]}]),
        "{v}"
    );
    let wide = s.kubectl_ok(&["api-resources", "--api-group=agg.test.io", "-o", "wide"]);
    let row = wide.lines().find(|l| l.starts_with("widgets")).unwrap_or_else(|| panic!("{wide}"));
    assert!(row.contains("wdg") && row.contains("gadgets"), "{wide}");
    let by_category = s.kubectl_ok(&["api-resources", "--categories=gadgets", "-o", "name"]);
    assert_eq!(by_category.trim(), "widgets.agg.test.io");

    // The server that answers 406: its resource list converted.
    assert!(current("older.test.io"), "{:?}", aggregated_entry(&s, "older.test.io"));
    let v = aggregated_entry(&s, "older.test.io").unwrap();
    assert_eq!(
        v["resources"],
        json!([{"resource": "widgets", "responseKind": {"group": "", "version": "", "kind": "Widget"},
                "scope": "Namespaced", "singularResource": "widget",
                "verbs": ["get", "list", "watch"]}]),
        "{v}"
    );
    let older_rows = s.kubectl_ok(&["api-resources", "--api-group=older.test.io"]);
    assert!(older_rows.contains("widgets") && !older_rows.contains("wdg"), "{older_rows}");

    // The first server goes away: its version stays listed, Stale, without resources.
    aggregated.shut_down();
    assert!(
        eventually(Duration::from_secs(40), || aggregated_entry(&s, "agg.test.io")
            .is_some_and(|v| v["freshness"] == "Stale")),
        "{:?}",
        aggregated_entry(&s, "agg.test.io")
    );
    assert_eq!(
        aggregated_entry(&s, "agg.test.io").unwrap(),
        json!({"version": "v1beta1", "freshness": "Stale"})
    );
    assert_eq!(aggregated_entry(&s, "older.test.io").unwrap()["freshness"], "Current");
}
