//! Authenticators that ask remote services, as upstream kube-apiserver: the token
//! webhook (`--authentication-token-webhook-config-file`: a TokenReview POSTed over
//! HTTPS to a server the test runs, answers cached per token) and OIDC issuers
//! (discovery document and JWKS served by the test over HTTPS, tokens it signs).

use kapi_e2e::{Server, ServerOptions};
use rcgen::{CertificateParams, KeyPair};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

type Handler = dyn Fn(&str, &str, &[u8]) -> (u16, String) + Send + Sync;

/// A tiny HTTPS server on 127.0.0.1: one thread per connection, one request each.
struct Https {
    port: u16,
    ca_pem: String,
    /// (method, path) of every request.
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Https {
    fn start(handler: Arc<Handler>) -> Https {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let ca_pem = cert.pem();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming().map_while(Result::ok) {
                let (config, handler, seen) = (config.clone(), handler.clone(), seen2.clone());
                std::thread::spawn(move || {
                    let conn = rustls::ServerConnection::new(config).unwrap();
                    let mut tls = rustls::StreamOwned::new(conn, tcp);
                    let _ = serve_one(&mut tls, &*handler, &seen);
                });
            }
        });
        Https { port, ca_pem, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn calls(&self, path: &str) -> usize {
        self.seen.lock().unwrap().iter().filter(|(_, p)| p == path).count()
    }
}

fn serve_one(
    tls: &mut (impl Read + Write),
    handler: &Handler,
    seen: &Mutex<Vec<(String, String)>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(&mut *tls);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) =
        (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut length = 0;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    seen.lock().unwrap().push((method.clone(), path.clone()));
    let (code, out) = handler(&method, &path, &body);
    let head = format!(
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        out.len()
    );
    tls.write_all(head.as_bytes())?;
    tls.write_all(out.as_bytes())?;
    tls.flush()
}

/// kubectl as the holder of `token` only.
fn whoami_with_token(s: &Server, token: &str) -> Result<Value, String> {
    let out = Command::new("kubectl")
        .args(["--kubeconfig", "/dev/null", "--server", &s.url()])
        .arg("--certificate-authority")
        .arg(s.dir.path().join("data/pki/ca.crt"))
        .args(["--token", token, "auth", "whoami", "-o", "json"])
        .output()
        .expect("kubectl");
    if out.status.success() {
        Ok(serde_json::from_slice::<Value>(&out.stdout).unwrap()["status"]["userInfo"].clone())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn a_token_webhook_authenticates_and_its_answers_are_cached() {
    let webhook = Https::start(Arc::new(|method: &str, _path: &str, body: &[u8]| {
        let review: Value = serde_json::from_slice(body).unwrap_or_default();
        assert_eq!(method, "POST");
        assert_eq!(review["kind"], "TokenReview");
        assert_eq!(review["apiVersion"], "authentication.k8s.io/v1");
        let status = match review["spec"]["token"].as_str() {
            Some("jane-token") => json!({"authenticated": true, "user": {"username": "jane",
                "uid": "u-1", "groups": ["webhook-users"], "extra": {"scopes": ["read"]}}}),
            _ => json!({"authenticated": false, "user": {}}),
        };
        let answer = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status});
        (200, answer.to_string())
    }));
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "webhook-ca.crt", &webhook.ca_pem);
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: authn\n  cluster:\n    server: {}\n    certificate-authority: webhook-ca.crt\nusers:\n- name: kapi\n  user: {{}}\ncontexts:\n- name: authn\n  context:\n    cluster: authn\n    user: kapi\ncurrent-context: authn\n",
        webhook.url("/authenticate")
    );
    let config = write(dir.path(), "webhook.kubeconfig", &kubeconfig);
    let s = Server::start_with(ServerOptions {
        extra_args: vec![format!("--authentication-token-webhook-config-file={config}")],
        ..Default::default()
    });
    let user = whoami_with_token(&s, "jane-token").unwrap();
    assert_eq!(user["username"], "jane");
    assert_eq!(user["uid"], "u-1");
    assert_eq!(user["groups"], json!(["webhook-users", "system:authenticated"]));
    assert_eq!(user["extra"]["scopes"], json!(["read"]));
    assert_eq!(webhook.calls("/authenticate"), 1);
    // Cached: the webhook is not asked again for the same token.
    assert_eq!(whoami_with_token(&s, "jane-token").unwrap()["username"], "jane");
    assert_eq!(webhook.calls("/authenticate"), 1);
    let refused = whoami_with_token(&s, "someone-else").unwrap_err();
    assert!(refused.contains("You must be logged in"), "{refused}");
    assert_eq!(webhook.calls("/authenticate"), 2);
    // Tokens other authenticators know never reach the webhook.
    let admin = std::fs::read_to_string(s.dir.path().join("data/pki/admin.token")).unwrap();
    assert_eq!(whoami_with_token(&s, admin.trim()).unwrap()["username"], "kubernetes-admin");
    assert_eq!(webhook.calls("/authenticate"), 2);
}

#[test]
fn an_unreachable_webhook_authenticates_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let kubeconfig = format!(
        "clusters:\n- name: authn\n  cluster:\n    server: https://127.0.0.1:{port}/authenticate\n"
    );
    let config = write(dir.path(), "webhook.kubeconfig", &kubeconfig);
    let s = Server::start_with(ServerOptions {
        extra_args: vec![format!("--authentication-token-webhook-config-file={config}")],
        ..Default::default()
    });
    let refused = whoami_with_token(&s, "jane-token").unwrap_err();
    assert!(refused.contains("You must be logged in"), "{refused}");
    assert!(s.kubectl(&["get", "namespaces"]).status.success(), "others are unaffected");
}
