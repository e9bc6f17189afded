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

/// curl as the holder of `token`: (status, body).
fn curl_token(s: &Server, token: &str, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}"])
        .arg("--cacert")
        .arg(s.dir.path().join("data/pki/ca.crt"))
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .arg(format!("{}{path}", s.url()))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
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

/// An OIDC issuer the test runs: discovery document and JWKS over HTTPS, an RSA key
/// (made with openssl) signing RS256 tokens; `rotate` replaces the key.
struct Issuer {
    https: Https,
    dir: tempfile::TempDir,
    /// The current key's number (file `key-N.pem`, kid `key-N`).
    current: Mutex<usize>,
    /// The key set served.
    jwks: Arc<Mutex<Value>>,
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

/// A new RSA key `key-N.pem` in `dir`, as a JWK.
fn rsa_jwk(dir: &Path, n: usize) -> Value {
    let file = format!("key-{n}.pem");
    openssl(
        dir,
        &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", &file],
    );
    let modulus =
        String::from_utf8(openssl(dir, &["rsa", "-in", &file, "-noout", "-modulus"])).unwrap();
    let modulus = hex(modulus.trim().trim_start_matches("Modulus="));
    json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": format!("key-{n}"),
        "n": b64url(&modulus), "e": "AQAB"})
}

/// An EC P-256 key `ec.pem` in `dir`, as a JWK (kid `ec`).
fn ec_jwk(dir: &Path) -> Value {
    openssl(dir, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ec.pem"]);
    let spki = openssl(dir, &["ec", "-in", "ec.pem", "-pubout", "-outform", "DER"]);
    let point = &spki[spki.len() - 65..];
    json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": "ec",
        "x": b64url(&point[1..33]), "y": b64url(&point[33..])})
}

/// A DER ECDSA signature (SEQUENCE of two INTEGERs) as JWS's fixed 64 bytes.
fn ecdsa_fixed(der: &[u8]) -> Vec<u8> {
    let int = |at: usize| -> (Vec<u8>, usize) {
        assert_eq!(der[at], 0x02);
        let len = der[at + 1] as usize;
        let v: Vec<u8> =
            der[at + 2..at + 2 + len].iter().copied().skip_while(|b| *b == 0).collect();
        let mut fixed = vec![0u8; 32 - v.len()];
        fixed.extend(v);
        (fixed, at + 2 + len)
    };
    let (r, next) = int(2);
    let (s, _) = int(next);
    [r, s].concat()
}

impl Issuer {
    fn start() -> Issuer {
        let dir = tempfile::tempdir().unwrap();
        let jwks =
            Arc::new(Mutex::new(json!({"keys": [rsa_jwk(dir.path(), 1), ec_jwk(dir.path())]})));
        let me: Arc<Mutex<String>> = Arc::default();
        let (me2, jwks2) = (me.clone(), jwks.clone());
        let https = Https::start(Arc::new(move |_m: &str, path: &str, _b: &[u8]| {
            let url = me2.lock().unwrap().clone();
            match path {
                "/.well-known/openid-configuration" => {
                    (200, json!({"issuer": url, "jwks_uri": format!("{url}/keys")}).to_string())
                }
                "/keys" => (200, jwks2.lock().unwrap().to_string()),
                _ => (404, "{}".into()),
            }
        }));
        *me.lock().unwrap() = https.url("");
        Issuer { https, dir, current: Mutex::new(1), jwks }
    }

    /// Sign with a new key from now on, and serve only it.
    fn rotate(&self) {
        let mut current = self.current.lock().unwrap();
        *current += 1;
        let jwk = rsa_jwk(self.dir.path(), *current);
        *self.jwks.lock().unwrap() = json!({"keys": [jwk]});
    }

    fn url(&self) -> String {
        self.https.url("")
    }

    /// An ES256 token of `claims` (issuer and expiry as [`Issuer::token`]).
    fn es256_token(&self, claims: Value) -> String {
        let rs = self.token(claims);
        let payload = rs.split('.').nth(1).unwrap();
        let header = json!({"alg": "ES256", "kid": "ec", "typ": "JWT"});
        let signed = format!("{}.{payload}", b64url(header.to_string().as_bytes()));
        std::fs::write(self.dir.path().join("signed"), &signed).unwrap();
        let der = openssl(self.dir.path(), &["dgst", "-sha256", "-sign", "ec.pem", "signed"]);
        format!("{signed}.{}", b64url(&ecdsa_fixed(&der)))
    }

    /// An RS256 token of `claims` (plus this issuer and an hour's validity unless set).
    fn token(&self, mut claims: Value) -> String {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        if claims.get("iss").is_none() {
            claims["iss"] = json!(self.url());
        }
        if claims.get("exp").is_none() {
            claims["exp"] = json!(now + 3600);
        }
        let n = *self.current.lock().unwrap();
        let header = json!({"alg": "RS256", "kid": format!("key-{n}"), "typ": "JWT"});
        let signed = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        std::fs::write(self.dir.path().join("signed"), &signed).unwrap();
        let key = format!("key-{n}.pem");
        let sig = openssl(self.dir.path(), &["dgst", "-sha256", "-sign", &key, "signed"]);
        format!("{signed}.{}", b64url(&sig))
    }
}

/// Whoami with `token`, once the issuer's keys are loaded (fetched in the background).
fn whoami_when_ready(s: &Server, token: &str) -> Value {
    let mut last = Err(String::new());
    kapi_e2e::eventually(std::time::Duration::from_secs(30), || {
        last = whoami_with_token(s, token);
        last.is_ok()
    });
    last.unwrap()
}

#[test]
fn oidc_tokens_from_the_flags_issuer_authenticate() {
    let issuer = Issuer::start();
    let ca = write(issuer.dir.path(), "issuer-ca.crt", &issuer.https.ca_pem);
    let s = Server::start_with(ServerOptions {
        extra_args: vec![
            format!("--oidc-issuer-url={}", issuer.url()),
            "--oidc-client-id=kapi".into(),
            format!("--oidc-ca-file={ca}"),
            "--oidc-groups-claim=groups".into(),
            "--oidc-groups-prefix=oidc:".into(),
            "--oidc-required-claim=hd=example.com".into(),
        ],
        ..Default::default()
    });
    let good = json!({"sub": "alice", "aud": "kapi", "groups": ["dev"], "hd": "example.com"});
    let user = whoami_when_ready(&s, &issuer.token(good.clone()));
    assert_eq!(user["username"], format!("{}#alice", issuer.url()));
    assert_eq!(user["groups"], json!(["oidc:dev", "system:authenticated"]));
    assert_eq!(issuer.https.calls("/.well-known/openid-configuration"), 1);
    let mut expired = good.clone();
    expired["exp"] = json!(1_000_000_000);
    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("someone-else");
    let mut missing_claim = good.clone();
    missing_claim["hd"] = json!("evil.com");
    for (what, claims) in
        [("expired", expired), ("audience", wrong_aud), ("required claim", missing_claim)]
    {
        let refused = whoami_with_token(&s, &issuer.token(claims)).unwrap_err();
        assert!(refused.contains("You must be logged in"), "{what}: {refused}");
    }
    // The issuer rotates its key: a token naming the new key makes kapi fetch the set
    // again (at most every 10 s), and it then authenticates.
    issuer.rotate();
    let user = whoami_when_ready(&s, &issuer.token(good));
    assert_eq!(user["username"], format!("{}#alice", issuer.url()));
    assert_eq!(issuer.https.calls("/keys"), 2);
}

#[test]
fn oidc_tokens_from_the_authentication_config_file_authenticate() {
    let issuer = Issuer::start();
    let indented: String = issuer.https.ca_pem.lines().map(|l| format!("      {l}\n")).collect();
    let config = format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\njwt:\n- issuer:\n    url: {}\n    audiences: [kapi, other]\n    audienceMatchPolicy: MatchAny\n    certificateAuthority: |\n{indented}  claimValidationRules:\n  - claim: hd\n    requiredValue: example.com\n  claimMappings:\n    username:\n      claim: email\n      prefix: \"\"\n    groups:\n      claim: groups\n      prefix: \"corp:\"\n    uid:\n      claim: sub\n",
        issuer.url()
    );
    let path = write(issuer.dir.path(), "authn.yaml", &config);
    let s = Server::start_with(ServerOptions {
        extra_args: vec![format!("--authentication-config={path}")],
        ..Default::default()
    });
    let claims = json!({"sub": "b-1", "email": "bob@example.com", "aud": ["other"],
        "groups": ["ops"], "hd": "example.com"});
    let user = whoami_when_ready(&s, &issuer.token(claims));
    assert_eq!(user["username"], "bob@example.com");
    assert_eq!(user["uid"], "b-1");
    assert_eq!(user["groups"], json!(["corp:ops", "system:authenticated"]));
    // ES256 tokens verify against the issuer's EC key.
    let claims =
        json!({"sub": "c-1", "email": "cy@example.com", "aud": "kapi", "hd": "example.com"});
    assert_eq!(
        whoami_with_token(&s, &issuer.es256_token(claims)).unwrap()["username"],
        "cy@example.com"
    );
    let bad = json!({"sub": "b-1", "email": "bob@example.com", "aud": "kapi", "hd": "x"});
    assert!(whoami_with_token(&s, &issuer.token(bad)).is_err());
}

#[test]
fn oidc_cel_expressions_map_claims_and_validation_rules_refuse_with_401() {
    let issuer = Issuer::start();
    let indented: String = issuer.https.ca_pem.lines().map(|l| format!("      {l}\n")).collect();
    let config = format!(
        r#"apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
- issuer:
    url: {}
    audiences: [kapi]
    certificateAuthority: |
{indented}  claimValidationRules:
  - expression: 'claims.hd == "example.com"'
    message: the token is not from example.com
  claimMappings:
    username:
      expression: '"oidc:" + claims.preferred_username'
    groups:
      expression: 'claims.roles.map(r, "role:" + r)'
    uid:
      expression: '"uid-" + claims.sub'
    extra:
    - key: example.org/tenant
      valueExpression: 'claims.tenant'
  userValidationRules:
  - expression: '!user.username.startsWith("oidc:system:")'
    message: system names are reserved
"#,
        issuer.url()
    );
    let path = write(issuer.dir.path(), "authn.yaml", &config);
    let s = Server::start_with(ServerOptions {
        extra_args: vec![format!("--authentication-config={path}")],
        ..Default::default()
    });
    let good = json!({"sub": "42", "preferred_username": "dana", "aud": "kapi",
        "roles": ["viewer", "editor"], "tenant": "blue", "hd": "example.com"});
    let user = whoami_when_ready(&s, &issuer.token(good.clone()));
    assert_eq!(user["username"], "oidc:dana");
    assert_eq!(user["uid"], "uid-42");
    assert_eq!(user["groups"], json!(["role:viewer", "role:editor", "system:authenticated"]));
    assert_eq!(user["extra"]["example.org/tenant"], json!(["blue"]));
    let mut other_domain = good.clone();
    other_domain["hd"] = json!("evil.com");
    let mut system_name = good.clone();
    system_name["preferred_username"] = json!("system:admin");
    let mut wrong_type = good;
    wrong_type["roles"] = json!("viewer");
    for (what, claims) in [
        ("claim validation rule", other_domain),
        ("user validation rule", system_name),
        ("groups expression failing", wrong_type),
    ] {
        let token = issuer.token(claims);
        let refused = whoami_with_token(&s, &token).unwrap_err();
        assert!(refused.contains("You must be logged in"), "{what}: {refused}");
        let (code, body) = curl_token(&s, &token, "/api");
        assert_eq!(code, 401, "{what}");
        assert!(!body.contains("example.com") && !body.contains("reserved"), "{what}: {body}");
    }
}

/// The token and authorization webhooks of [`reviews_ask_the_webhooks_for_answers_not_cached`].
fn review_webhooks(r: &kapi_e2e::webhook::Received) -> (u16, Vec<u8>) {
    let review: Value = serde_json::from_slice(&r.body).unwrap_or_default();
    let status = match (r.path.as_str(), review["kind"].as_str()) {
        ("/authenticate", Some("TokenReview")) => match review["spec"]["token"].as_str() {
            Some("wanda-webhook-token") => json!({"authenticated": true,
                "user": {"username": "wanda", "uid": "w-1", "groups": ["hooked"]}}),
            _ => json!({"authenticated": false, "user": {}}),
        },
        ("/authorize", Some("SubjectAccessReview")) => match review["spec"]["user"].as_str() {
            Some("carol") => json!({"allowed": true}),
            _ => json!({"allowed": false, "denied": true, "reason": "banned by the hook"}),
        },
        _ => return (404, b"{}".to_vec()),
    };
    let answer =
        json!({"apiVersion": review["apiVersion"], "kind": review["kind"], "status": status});
    (200, answer.to_string().into_bytes())
}

#[test]
fn reviews_ask_the_webhooks_for_answers_not_cached() {
    let hook = kapi_e2e::webhook::WebhookServer::start(review_webhooks);
    let dir = tempfile::tempdir().unwrap();
    let authn = write(dir.path(), "authn.kubeconfig", &hook.kubeconfig("/authenticate"));
    let authz = write(dir.path(), "authz.kubeconfig", &hook.kubeconfig("/authorize"));
    let s = Server::start_with(ServerOptions {
        extra_args: vec![
            format!("--authentication-token-webhook-config-file={authn}"),
            "--authorization-mode=Node,RBAC,Webhook".into(),
            format!("--authorization-webhook-config-file={authz}"),
        ],
        ..Default::default()
    });
    let calls = |path: &str| hook.received().iter().filter(|r| r.path == path).count();
    let create = |manifest: Value| -> Value {
        let out = s.kubectl_stdin(&["create", "-f", "-", "-o", "json"], &manifest.to_string());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["status"].clone()
    };
    let token_review = |token: &str| {
        create(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": token}}))
    };
    // A token only the webhook knows, never seen before: the review asks the webhook.
    let status = token_review("wanda-webhook-token");
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(status["user"]["username"], "wanda");
    assert_eq!(status["user"]["uid"], "w-1");
    assert_eq!(status["user"]["groups"], json!(["hooked", "system:authenticated"]));
    assert_eq!(calls("/authenticate"), 1);
    // Then its answer is cached, as for requests.
    assert_eq!(token_review("wanda-webhook-token")["authenticated"], true);
    assert_eq!(calls("/authenticate"), 1);
    let status = token_review("nobody-knows-this");
    assert_ne!(status["authenticated"], true, "{status}");
    assert_eq!(calls("/authenticate"), 2);
    // A SubjectAccessReview RBAC has no answer for: the Webhook mode is asked.
    let sar = |user: &str| {
        create(json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": user, "resourceAttributes":
                {"verb": "get", "resource": "configmaps", "namespace": "default"}}}))
    };
    assert_eq!(sar("carol"), json!({"allowed": true}));
    assert_eq!(calls("/authorize"), 1);
    let denied = sar("dave");
    assert_eq!(denied["allowed"], false, "{denied}");
    assert!(denied["reason"].as_str().unwrap_or("").contains("banned by the hook"), "{denied}");
    assert_eq!(calls("/authorize"), 2);
    // LocalSubjectAccessReview goes through the same chain.
    let local = s.kubectl_stdin(
        &["create", "-n", "default", "-f", "-", "-o", "json"],
        &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
            "metadata": {"namespace": "default"},
            "spec": {"user": "carol", "resourceAttributes":
                {"verb": "list", "resource": "secrets", "namespace": "default"}}})
        .to_string(),
    );
    let local: Value = serde_json::from_slice(&local.stdout).unwrap();
    assert_eq!(local["status"]["allowed"], true, "{local}");
    assert_eq!(calls("/authorize"), 3);
}
