//! CustomResourceDefinition conversion strategy `Webhook` against the real kapi binary
//! with kubectl (issue #16). The test runs a conversion webhook of its own (rustls over
//! std TCP, its own CA given as the CRD's `caBundle`, reached by `url`) that converts
//! `example.com/v1` Widgets (`spec.size: "3"`, a string; the storage version) to and
//! from `example.com/v2` (`spec.sizeCount: 3`, an integer). It checks: an object created
//! in v1 reads converted in v2 (GET and LIST); an update through v2 is stored and reads
//! back in v1; a watch in v2 sees converted events; a webhook answering an error or
//! garbage gives upstream's 500 Status (no reason, `conversion webhook for
//! example.com/v1, Kind=Widget failed: ...`) and nothing stored is lost or changed;
//! changes written in v1 meanwhile reach the v2 watch cache by a re-list once the webhook
//! works again (no stale object, no ghost of a deleted one); a
//! webhook that is down gives a 500 at once (not a hang); a webhook named by a Service
//! is reached through the Service's endpoints. Runs on both backends.

use kapi_e2e::raw::Target;
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
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How the webhook answers.
const CONVERT: u8 = 0;
const REFUSE: u8 = 1;
const GARBAGE: u8 = 2;

/// The conversion webhook server.
struct Webhook {
    port: u16,
    ca_pem: String,
    mode: Arc<AtomicU8>,
    reviews: Arc<AtomicUsize>,
    /// The Host header of the last review (how kapi addressed the webhook).
    last_host: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
}

fn ca_and_leaf() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "webhook-ca");
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let mut leaf = CertificateParams::new(vec!["conv-hook.default.svc".to_string()]).unwrap();
    leaf.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_pem = leaf.signed_by(&leaf_key, &issuer).unwrap().pem();
    (ca_pem, leaf_pem, leaf_key.serialize_pem())
}

impl Webhook {
    fn start() -> Webhook {
        let (ca_pem, leaf_pem, key_pem) = ca_and_leaf();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(leaf_pem.as_bytes()).map(Result::unwrap).collect();
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(CONVERT));
        let reviews = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let last_host = Arc::new(Mutex::new(String::new()));
        let (m, r, stopping) = (mode.clone(), reviews.clone(), stop.clone());
        let host = last_host.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return; // the listener is dropped: the port refuses connections
                }
                let Ok(tcp) = conn else { continue };
                let (config, m, r, host) = (config.clone(), m.clone(), r.clone(), host.clone());
                std::thread::spawn(move || serve(config, tcp, &m, &r, &host));
            }
        });
        Webhook { port, ca_pem, mode, reviews, last_host, stop }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
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
    mode: &AtomicU8,
    reviews: &AtomicUsize,
    last_host: &Mutex<String>,
) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(conn) = rustls::ServerConnection::new(config) else { return };
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
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    if tls.read_exact(&mut body).is_err() {
        return;
    }
    reviews.fetch_add(1, Ordering::SeqCst);
    let host = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.trim().to_string());
    *last_host.lock().unwrap() = host.unwrap_or_default();
    let target = head.split_whitespace().nth(1).unwrap_or("");
    let answer = if !head.starts_with("POST ") || !target.starts_with("/convert?timeout=30s") {
        b"not the conversion path".to_vec()
    } else {
        let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        match mode.load(Ordering::SeqCst) {
            CONVERT => converted(&review).to_string().into_bytes(),
            REFUSE => refused(&review).to_string().into_bytes(),
            _ => b"garbage".to_vec(),
        }
    };
    let _ = write!(
        tls,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        answer.len()
    );
    let _ = tls.write_all(&answer);
    let _ = tls.flush();
}

/// The webhook's conversion: v1 `spec.size` (a string) <-> v2 `spec.sizeCount` (an
/// integer); it also labels what it converts, which the server keeps.
fn convert(obj: &Value, desired: &str) -> Value {
    let mut out = obj.clone();
    out["apiVersion"] = json!(desired);
    let spec = out["spec"].as_object_mut().expect("spec");
    if desired == "example.com/v2" {
        let size = spec.remove("size").and_then(|s| s.as_str()?.parse::<i64>().ok());
        spec.insert("sizeCount".into(), json!(size.unwrap_or(0)));
    } else {
        let count = spec.remove("sizeCount").and_then(|c| c.as_i64()).unwrap_or(0);
        spec.insert("size".into(), json!(count.to_string()));
    }
    out["metadata"]["labels"]["converted-by"] = json!("webhook");
    out
}

fn converted(review: &Value) -> Value {
    let req = &review["request"];
    let desired = req["desiredAPIVersion"].as_str().unwrap_or("");
    let objects: Vec<Value> =
        req["objects"].as_array().into_iter().flatten().map(|o| convert(o, desired)).collect();
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
           "response": {"uid": req["uid"], "result": {"status": "Success"}, "convertedObjects": objects}})
}

fn refused(review: &Value) -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
           "response": {"uid": review["request"]["uid"],
                        "result": {"status": "Failure", "message": "widgets cannot be converted today"}}})
}

fn crd(hook: &Webhook) -> String {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(hook.ca_pem.as_bytes());
    format!(
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget}}
  conversion:
    strategy: Webhook
    webhook:
      conversionReviewVersions: [v1, v1beta1]
      clientConfig:
        url: https://127.0.0.1:{port}/convert
        caBundle: {ca}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {{type: object, properties: {{size: {{type: string}}}}}}
  - name: v2
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {{type: object, properties: {{sizeCount: {{type: integer}}}}}}
"#,
        port = hook.port
    )
}

fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn apply(s: &Server, yaml: &str) {
    let out = s.kubectl_stdin(&["apply", "-f", "-"], yaml);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn get(s: &Server, resource: &str, name: &str) -> Value {
    json_of(&s.kubectl_ok(&["get", resource, name, "-o", "json"]))
}

/// A raw request through kapi: status code and body.
fn raw(s: &Server, method: &str, path: &str, body: Option<&[u8]>) -> (u16, Value) {
    let t = Target::of(s);
    let mut conn = t.connect(false).expect("connect");
    let (code, body) = conn.request(&t.h1_request(method, path, body)).expect("request");
    (code, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

const V1: &str = "/apis/example.com/v1/namespaces/default/widgets";
const V2: &str = "/apis/example.com/v2/namespaces/default/widgets";
/// How upstream words a failed conversion of a stored (v1) object.
const FAILED: &str = "conversion webhook for example.com/v1, Kind=Widget failed: ";
/// ... and of a v2 object on its way to storage.
const FAILED_V2: &str = "conversion webhook for example.com/v2, Kind=Widget failed: ";

/// The items of a LIST (`path`), as (name, spec), by name; empty when it fails.
fn names_and_specs(s: &Server, path: &str) -> Vec<(String, Value)> {
    let (code, list) = raw(s, "GET", path, None);
    if code != 200 {
        return Vec::new();
    }
    let items = list["items"].as_array().into_iter().flatten();
    let mut out: Vec<(String, Value)> = items
        .map(|i| (i["metadata"]["name"].as_str().unwrap_or("").to_string(), i["spec"].clone()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A watch of v2 Widgets through kubectl; its event lines in a channel.
fn watch_v2(s: &Server) -> (std::process::Child, mpsc::Receiver<Value>) {
    let mut child = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(s.kubeconfig())
        .args(["get", "--raw", &format!("{V2}?watch=true")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubectl watch");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = tx.send(v);
            }
        }
    });
    (child, rx)
}

/// The first watch event of the object `name`.
fn event_of(rx: &mpsc::Receiver<Value>, name: &str) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(e) = rx.recv_timeout(Duration::from_millis(200))
            && e["object"]["metadata"]["name"] == name
        {
            return Some(e);
        }
    }
    None
}

/// A failed conversion answers as upstream: 500, no reason, the converter's message.
fn assert_conversion_failed(status: &(u16, Value), failed: &str, why: &str) {
    let (code, body) = status;
    assert_eq!(*code, 500, "{body}");
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["status"], "Failure", "{body}");
    assert!(body.get("reason").is_none(), "{body}");
    let message = body["message"].as_str().unwrap_or("");
    assert!(message.starts_with(failed) && message.contains(why), "{message}");
}

#[test]
fn a_conversion_webhook_converts_between_versions_of_different_shape() {
    let s = Server::start();
    let hook = Webhook::start();
    apply(&s, &crd(&hook));
    s.kubectl_ok(&[
        "wait",
        "--for",
        "condition=established",
        "crd/widgets.example.com",
        "--timeout=20s",
    ]);

    // Created in v1 (the storage version: nothing to convert), read in v2 (converted).
    apply(
        &s,
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1, namespace: default}\nspec: {size: \"3\"}\n",
    );
    assert!(eventually(Duration::from_secs(20), || {
        let out = s.kubectl(&["get", "widgets.v2.example.com", "w1", "-o", "json"]);
        out.status.success()
    }));
    let w = get(&s, "widgets.v2.example.com", "w1");
    assert_eq!(w["apiVersion"], "example.com/v2");
    assert_eq!(w["spec"], json!({"sizeCount": 3}), "{w}");
    // Only labels and annotations the webhook sets are kept; the rest of metadata is
    // the stored object's.
    assert_eq!(w["metadata"]["labels"]["converted-by"], "webhook");
    let stored = get(&s, "widgets.v1.example.com", "w1");
    assert_eq!(stored["spec"], json!({"size": "3"}));
    assert!(stored["metadata"].get("labels").is_none(), "{stored}");
    assert_eq!(w["metadata"]["uid"], stored["metadata"]["uid"]);
    assert_eq!(w["metadata"]["resourceVersion"], stored["metadata"]["resourceVersion"]);
    assert!(hook.reviews.load(Ordering::SeqCst) > 0);

    // LIST in v2: every item converted.
    assert!(eventually(Duration::from_secs(20), || {
        let list = json_of(&s.kubectl_ok(&["get", "widgets.v2.example.com", "-o", "json"]));
        list["items"].as_array().is_some_and(|items| {
            items.len() == 1
                && items[0]["apiVersion"] == "example.com/v2"
                && items[0]["spec"] == json!({"sizeCount": 3})
        })
    }));

    // A watch in v2 sees objects created in v1 converted.
    let (mut watch, events) = watch_v2(&s);
    apply(
        &s,
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w2, namespace: default}\nspec: {size: \"7\"}\n",
    );
    let added = event_of(&events, "w2").expect("a watch event for w2");
    assert_eq!(added["object"]["apiVersion"], "example.com/v2", "{added}");
    assert_eq!(added["object"]["spec"], json!({"sizeCount": 7}), "{added}");

    // Updated through v2: stored as v1, read back in v1; the watch sees it converted.
    s.kubectl_ok(&[
        "patch",
        "widgets.v2.example.com",
        "w1",
        "--type=merge",
        "-p",
        r#"{"spec":{"sizeCount":5}}"#,
    ]);
    let back = get(&s, "widgets.v1.example.com", "w1");
    assert_eq!(back["apiVersion"], "example.com/v1");
    assert_eq!(back["spec"], json!({"size": "5"}), "{back}");
    let modified = event_of(&events, "w1").expect("a watch event for w1");
    assert_eq!(modified["type"], "MODIFIED", "{modified}");
    assert_eq!(modified["object"]["spec"], json!({"sizeCount": 5}), "{modified}");
    let _ = watch.kill();
    let _ = watch.wait();

    // Created in v2: converted to v1 for storage.
    let body = json!({"apiVersion": "example.com/v2", "kind": "Widget",
                      "metadata": {"name": "w3"}, "spec": {"sizeCount": 9}});
    let (code, created) = raw(&s, "POST", V2, Some(body.to_string().as_bytes()));
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["spec"], json!({"sizeCount": 9}));
    assert_eq!(get(&s, "widgets.v1.example.com", "w3")["spec"], json!({"size": "9"}));

    // The webhook refuses: reads and writes in v2 fail as upstream's; v1 is untouched.
    hook.set(REFUSE);
    assert_conversion_failed(
        &raw(&s, "GET", &format!("{V2}/w1"), None),
        FAILED,
        "widgets cannot be converted today",
    );
    let w4 = json!({"apiVersion": "example.com/v2", "kind": "Widget", "metadata": {"name": "w4"}, "spec": {"sizeCount": 1}});
    assert_conversion_failed(
        &raw(&s, "POST", V2, Some(w4.to_string().as_bytes())),
        FAILED_V2,
        "widgets cannot be converted today",
    );
    let patch = br#"{"spec":{"sizeCount":6}}"#;
    assert_conversion_failed(
        &raw(&s, "PATCH", &format!("{V2}/w1"), Some(patch)),
        FAILED,
        "widgets cannot be converted today",
    );
    let out = s.kubectl(&["get", "widgets.v2.example.com", "w1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("Error from server: {FAILED}widgets cannot be converted today")),
        "{stderr}"
    );

    // Garbage from the webhook: the same, with the decoder's complaint.
    hook.set(GARBAGE);
    assert_conversion_failed(
        &raw(&s, "GET", &format!("{V2}/w1"), None),
        FAILED,
        "couldn't get version/kind; json parse error",
    );
    // Nothing was lost or changed: v1 reads the same three objects.
    let (code, list) = raw(&s, "GET", V1, None);
    assert_eq!(code, 200, "{list}");
    let mut names: Vec<(String, Value)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["metadata"]["name"].as_str().unwrap().to_string(), i["spec"].clone()))
        .collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        names,
        vec![
            ("w1".to_string(), json!({"size": "5"})),
            ("w2".to_string(), json!({"size": "7"})),
            ("w3".to_string(), json!({"size": "9"})),
        ]
    );

    // Changes written in v1 while the webhook fails cannot reach the v2 watch cache;
    // once the webhook works again the cache re-lists (as upstream's reflector does
    // after a decode error): no stale object, no ghost of a deleted one.
    let patch = br#"{"spec":{"size":"8"}}"#;
    assert_eq!(raw(&s, "PATCH", &format!("{V1}/w2"), Some(patch)).0, 200);
    assert_eq!(raw(&s, "DELETE", &format!("{V1}/w3"), None).0, 200);

    // Working again: v2 reads convert again.
    hook.set(CONVERT);
    assert_eq!(get(&s, "widgets.v2.example.com", "w1")["spec"], json!({"sizeCount": 5}));
    let v2_items = || names_and_specs(&s, V2);
    let want = vec![
        ("w1".to_string(), json!({"sizeCount": 5})),
        ("w2".to_string(), json!({"sizeCount": 8})),
    ];
    assert!(eventually(Duration::from_secs(60), || v2_items() == want), "{:?}", v2_items());

    // Reached through a Service: resolved to its endpoint (kapi cannot dial cluster
    // IPs), verified as `conv-hook.default.svc` with the caBundle.
    apply(
        &s,
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: conv-hook, namespace: default}}\nspec:\n  ports: [{{name: https, port: 8443, targetPort: {p}}}]\n---\napiVersion: v1\nkind: Endpoints\nmetadata: {{name: conv-hook, namespace: default}}\nsubsets:\n- addresses: [{{ip: 127.0.0.1}}]\n  ports: [{{name: https, port: {p}}}]\n",
            p = hook.port
        ),
    );
    let by_service = crd(&hook).replace(
        &format!("url: https://127.0.0.1:{}/convert", hook.port),
        "service: {namespace: default, name: conv-hook, path: /convert, port: 8443}",
    );
    apply(&s, &by_service);
    let before = hook.reviews.load(Ordering::SeqCst);
    assert!(eventually(Duration::from_secs(20), || {
        raw(&s, "GET", &format!("{V2}/w2"), None).1["spec"] == json!({"sizeCount": 8})
            // The review went to the Service's name: the changed CRD is served.
            && *hook.last_host.lock().unwrap() == "conv-hook.default.svc:8443"
            // The new v2 watch cache has listed everything (a resourceVersion=0 LIST is
            // answered only by a complete cache).
            && names_and_specs(&s, &format!("{V2}?resourceVersion=0")) == want
    }));
    assert!(hook.reviews.load(Ordering::SeqCst) > before);

    // The webhook is down: a 500 saying why, not a hang.
    hook.shut_down();
    let down = raw(&s, "GET", &format!("{V2}/w1"), None);
    assert_conversion_failed(&down, FAILED, "connection refused");
    // Upstream's words to the byte (checked against upstream's kube-apiserver).
    assert_eq!(
        down.1["message"],
        format!(
            "{FAILED}Post \"https://conv-hook.default.svc:8443/convert?timeout=30s\": dial tcp 127.0.0.1:{}: connect: connection refused",
            hook.port
        )
    );
    assert_eq!(raw(&s, "GET", &format!("{V1}/w1"), None).0, 200);
    // The server still serves everything else, v2 lists from its watch cache included.
    assert_eq!(v2_items(), want);
}
