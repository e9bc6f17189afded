//! A small HTTPS server for webhook tests (authorization, authentication, admission,
//! audit): its own CA and a leaf for 127.0.0.1 / `localhost`, one thread per
//! connection, each request (method, path, body) answered by the test's handler with a
//! status and a JSON body; every request is also recorded. [`admission_answer`] writes
//! an AdmissionReview answer to a review received.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

type Handler = dyn Fn(&Received) -> (u16, Vec<u8>) + Send + Sync;

pub struct WebhookServer {
    pub port: u16,
    /// The CA that signed the server's certificate (PEM).
    pub ca_pem: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl WebhookServer {
    pub fn start(
        handler: impl Fn(&Received) -> (u16, Vec<u8>) + Send + Sync + 'static,
    ) -> WebhookServer {
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
        let received = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = received.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(tcp) = conn else { continue };
                let (config, handler, log) = (config.clone(), handler.clone(), log.clone());
                std::thread::spawn(move || serve(config, tcp, &*handler, &log));
            }
        });
        WebhookServer { port, ca_pem, received }
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The `https://127.0.0.1:PORT{path}` URL of this server.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// The CA as a webhook configuration's `caBundle` (base64 of the PEM).
    pub fn ca_bundle(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&self.ca_pem)
    }

    /// The requests so far whose body parses as JSON, parsed.
    pub fn received_json(&self) -> Vec<serde_json::Value> {
        self.received().iter().filter_map(|r| serde_json::from_slice(&r.body).ok()).collect()
    }

    /// A kubeconfig naming this server at `path`, trusting its CA.
    pub fn kubeconfig(&self, path: &str) -> String {
        use base64::Engine;
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: hook\n  cluster:\n    server: https://127.0.0.1:{}{path}\n    certificate-authority-data: {ca}\nusers:\n- name: kapi\n  user: {{}}\ncontexts:\n- name: hook\n  context: {{cluster: hook, user: kapi}}\ncurrent-context: hook\n",
            self.port
        )
    }
}

fn ca_and_leaf() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "webhook-test-ca");
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_pem = leaf.signed_by(&leaf_key, &issuer).unwrap().pem();
    (ca_pem, leaf_pem, leaf_key.serialize_pem())
}

fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

fn serve(
    config: Arc<rustls::ServerConfig>,
    tcp: TcpStream,
    handler: &Handler,
    log: &Mutex<Vec<Received>>,
) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(conn) = rustls::ServerConnection::new(config) else { return };
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    loop {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match tls.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let length = header(&head, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0usize);
        let mut body = vec![0u8; length];
        if tls.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = head.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let req = Received { method, path, body };
        log.lock().unwrap().push(req.clone());
        let (code, answer) = handler(&req);
        let _ = write!(
            tls,
            "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        );
        let _ = tls.write_all(&answer);
        let _ = tls.flush();
    }
}

/// The AdmissionReview answering `review` (its apiVersion and uid) with `response`'s
/// fields (`allowed`, `status`, `patch`, ...), as a 200 answer.
pub fn admission_answer(review: &[u8], response: serde_json::Value) -> (u16, Vec<u8>) {
    let review: serde_json::Value = serde_json::from_slice(review).unwrap_or_default();
    let mut resp = response;
    resp["uid"] = review["request"]["uid"].clone();
    let answer = serde_json::json!({
        "apiVersion": review["apiVersion"].as_str().unwrap_or("admission.k8s.io/v1"),
        "kind": "AdmissionReview",
        "response": resp,
    });
    (200, serde_json::to_vec(&answer).unwrap())
}
