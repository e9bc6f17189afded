//! Authentication by client certificate, front proxy and anonymity, as upstream
//! kube-apiserver: a certificate no trusted CA signed (or an expired one) completes the
//! TLS handshake and its requests get upstream's 401; `--client-ca-file` replaces the
//! generated CA; a request without credentials is `system:anonymous` unless
//! `--anonymous-auth=false`; a bad token is 401 even with anonymous requests allowed;
//! a front proxy's certificate lets `X-Remote-*` headers name the user.

use kapi_e2e::{Server, ServerOptions};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const UNAUTHORIZED: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#;

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn new_ca(name: &str) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let pem = p.self_signed(&key).unwrap().pem();
    Ca { issuer: Issuer::new(p, key), pem }
}

fn existing_ca(dir: &Path) -> Ca {
    let pem = std::fs::read_to_string(dir.join("ca.crt")).unwrap();
    let key = KeyPair::from_pem(&std::fs::read_to_string(dir.join("ca.key")).unwrap()).unwrap();
    Ca { issuer: Issuer::from_ca_cert_pem(&pem, key).unwrap(), pem }
}

/// A client certificate (cert and key files in `dir`) for `cn` in groups `orgs`.
fn client_cert(dir: &Path, ca: &Ca, name: &str, cn: &str, orgs: &[&str], expired: bool) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    for o in orgs {
        p.distinguished_name.push(DnType::OrganizationName, *o);
    }
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.not_before = rcgen::date_time_ymd(2000, 1, 1);
    p.not_after = rcgen::date_time_ymd(if expired { 2001 } else { 2099 }, 1, 1);
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &ca.issuer).unwrap();
    std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
}

fn pki(s: &Server) -> PathBuf {
    s.dir.path().join("data/pki")
}

/// A raw HTTPS request with curl: (status, body).
fn curl(
    s: &Server,
    cert: Option<(&Path, &str)>,
    headers: &[&str],
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-o", "-", "-w", "\n%{http_code}", "-X", method]);
    cmd.arg("--cacert").arg(pki(s).join("ca.crt"));
    if let Some((dir, name)) = cert {
        cmd.arg("--cert").arg(dir.join(format!("{name}.crt")));
        cmd.arg("--key").arg(dir.join(format!("{name}.key")));
    }
    for h in headers {
        cmd.args(["-H", h]);
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    if let Some(b) = body {
        std::fs::write(file.path(), b).unwrap();
        cmd.args(["-H", "Content-Type: application/json", "--data-binary"]);
        cmd.arg(format!("@{}", file.path().display()));
    }
    let out = cmd.arg(format!("{}{path}", s.url())).output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl failed (handshake?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.trim_end().to_string())
}

const REVIEW: &str = r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#;
const REVIEWS: &str = "/apis/authentication.k8s.io/v1/selfsubjectreviews";

/// `(username, groups)` of a SelfSubjectReview made with curl.
fn whoami(
    s: &Server,
    cert: Option<(&Path, &str)>,
    headers: &[&str],
) -> Result<(String, Vec<String>), (u16, String)> {
    let (code, body) = curl(s, cert, headers, "POST", REVIEWS, Some(REVIEW));
    if code != 201 {
        return Err((code, body));
    }
    let v: Value = serde_json::from_str(&body).unwrap();
    let u = &v["status"]["userInfo"];
    let groups =
        u["groups"].as_array().map(|g| g.iter().map(|x| x.as_str().unwrap().to_string()).collect());
    Ok((u["username"].as_str().unwrap().to_string(), groups.unwrap_or_default()))
}

#[test]
fn untrusted_and_expired_certificates_complete_the_handshake_and_get_401() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let cluster = existing_ca(&pki(&s));
    client_cert(dir.path(), &cluster, "good", "carol", &["devs"], false);
    client_cert(dir.path(), &cluster, "expired", "carol", &["devs"], true);
    client_cert(dir.path(), &new_ca("rogue"), "rogue", "carol", &["system:masters"], false);
    assert_eq!(
        whoami(&s, Some((dir.path(), "good")), &[]).unwrap(),
        ("carol".to_string(), vec!["devs".to_string(), "system:authenticated".to_string()])
    );
    for name in ["expired", "rogue"] {
        let (code, body) =
            curl(&s, Some((dir.path(), name)), &[], "GET", "/api/v1/namespaces", None);
        assert_eq!((code, body.as_str()), (401, UNAUTHORIZED), "{name}");
    }
    // A valid bearer token still authenticates a request whose certificate does not.
    let token = std::fs::read_to_string(pki(&s).join("admin.token")).unwrap();
    let bearer = format!("Authorization: Bearer {}", token.trim());
    let (user, _) = whoami(&s, Some((dir.path(), "rogue")), &[&bearer]).unwrap();
    assert_eq!(user, "kubernetes-admin");
}

#[test]
fn client_ca_file_replaces_the_generated_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca("corp");
    std::fs::write(dir.path().join("corp.crt"), &ca.pem).unwrap();
    client_cert(dir.path(), &ca, "dave", "dave", &["ops"], false);
    let s = Server::start_with(ServerOptions {
        extra_args: vec![
            format!("--client-ca-file={}", dir.path().join("corp.crt").display()),
            "--anonymous-auth=false".into(),
        ],
        ..Default::default()
    });
    // kubectl presents the certificate (the handshake names the corp CA) and is dave.
    let out = Command::new("kubectl")
        .args(["--kubeconfig", "/dev/null", "--server", &s.url()])
        .arg("--certificate-authority")
        .arg(pki(&s).join("ca.crt"))
        .arg("--client-certificate")
        .arg(dir.path().join("dave.crt"))
        .arg("--client-key")
        .arg(dir.path().join("dave.key"))
        .args(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "dave");
    // The generated admin certificate no longer names anyone.
    let out = s.kubectl(&["get", "namespaces"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("You must be logged in to the server"), "{err}");
}

#[test]
fn requests_without_credentials_are_anonymous_unless_disabled_and_bad_tokens_never() {
    let s = Server::start();
    // RBAC's bootstrap policy lets anonymous requests read only public information, so
    // the identity shows in the refusal of a SelfSubjectReview (as upstream answers).
    let (code, body) = whoami(&s, None, &[]).unwrap_err();
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains(r#"User \"system:anonymous\" cannot create resource \"selfsubjectreviews\""#),
        "{body}"
    );
    // With AlwaysAllow the review shows the anonymous user and its only group.
    let open = Server::start_with(ServerOptions {
        extra_args: vec!["--authorization-mode=AlwaysAllow".into()],
        ..Default::default()
    });
    assert_eq!(
        whoami(&open, None, &[]).unwrap(),
        ("system:anonymous".to_string(), vec!["system:unauthenticated".to_string()])
    );
    let (code, body) =
        curl(&s, None, &["Authorization: Bearer not-a-token"], "GET", "/api/v1/namespaces", None);
    assert_eq!((code, body.as_str()), (401, UNAUTHORIZED));
    let closed = Server::start_with(ServerOptions {
        extra_args: vec!["--anonymous-auth=false".into()],
        ..Default::default()
    });
    let (code, body) = curl(&closed, None, &[], "GET", "/api/v1/namespaces", None);
    assert_eq!((code, body.as_str()), (401, UNAUTHORIZED));
    assert_eq!(whoami(&closed, None, &[]).unwrap_err().0, 401);
    // Health and version answer the anonymous user, so not when it is disabled, and
    // never a bad token.
    assert_eq!(curl(&s, None, &[], "GET", "/healthz", None), (200, "ok".to_string()));
    assert_eq!(curl(&s, None, &[], "GET", "/version", None).0, 200);
    let bad = ["Authorization: Bearer not-a-token"];
    assert_eq!(curl(&s, None, &bad, "GET", "/healthz", None).0, 401);
    assert_eq!(curl(&closed, None, &[], "GET", "/readyz", None).0, 401);
    assert_eq!(curl(&closed, None, &[], "GET", "/version", None).0, 401);
}

#[test]
fn a_front_proxy_certificate_lets_headers_name_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let proxy_ca = new_ca("front-proxy-ca");
    std::fs::write(dir.path().join("proxy-ca.crt"), &proxy_ca.pem).unwrap();
    client_cert(dir.path(), &proxy_ca, "proxy", "front-proxy-client", &[], false);
    client_cert(dir.path(), &proxy_ca, "stranger", "someone-else", &[], false);
    let s = Server::start_with(ServerOptions {
        extra_args: vec![
            format!("--requestheader-client-ca-file={}", dir.path().join("proxy-ca.crt").display()),
            "--requestheader-allowed-names=front-proxy-client".into(),
            "--requestheader-uid-headers=X-Remote-Uid".into(),
            "--anonymous-auth=false".into(),
        ],
        ..Default::default()
    });
    let headers = [
        "X-Remote-User: erin",
        "X-Remote-Uid: 1001",
        "X-Remote-Group: team-a",
        "X-Remote-Group: team-b",
        "X-Remote-Extra-Acme.com%2Fproject: apollo",
    ];
    let (code, body) =
        curl(&s, Some((dir.path(), "proxy")), &headers, "POST", REVIEWS, Some(REVIEW));
    assert_eq!(code, 201, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let u = &v["status"]["userInfo"];
    assert_eq!(u["username"], "erin");
    assert_eq!(u["uid"], "1001");
    assert_eq!(u["groups"], serde_json::json!(["team-a", "team-b", "system:authenticated"]));
    assert_eq!(u["extra"]["acme.com/project"], serde_json::json!(["apollo"]));
    // The proxy certificate without headers names nobody; another CommonName may not
    // assert users; the headers alone prove nothing.
    let (code, _) = curl(&s, Some((dir.path(), "proxy")), &[], "GET", "/api/v1/namespaces", None);
    assert_eq!(code, 401);
    let (code, _) =
        curl(&s, Some((dir.path(), "stranger")), &headers, "GET", "/api/v1/namespaces", None);
    assert_eq!(code, 401);
    let (code, _) = curl(&s, None, &headers, "GET", "/api/v1/namespaces", None);
    assert_eq!(code, 401);
}

/// Regression: a 401 answered while the client was still sending its body made HTTP/2
/// reset the stream and curl saw no answer (error 92); the body is now read on first.
#[test]
fn a_refused_request_with_a_large_body_still_gets_its_401() {
    let s = Server::start_with(ServerOptions {
        extra_args: vec!["--anonymous-auth=false".into()],
        ..Default::default()
    });
    let big = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"x"}},"data":{{"k":"{}"}}}}"#,
        "v".repeat(1 << 20)
    );
    let (code, body) =
        curl(&s, None, &[], "POST", "/api/v1/namespaces/default/configmaps", Some(&big));
    assert_eq!((code, body.as_str()), (401, UNAUTHORIZED));
}

/// kubectl `auth whoami` with the client certificate `name` in `dir` (Go's TLS stack
/// presents it only when the handshake names its issuer).
fn kubectl_whoami(s: &Server, dir: &Path, name: &str) -> Result<String, String> {
    let out = Command::new("kubectl")
        .args(["--kubeconfig", "/dev/null", "--server", &s.url()])
        .arg("--certificate-authority")
        .arg(pki(s).join("ca.crt"))
        .arg("--client-certificate")
        .arg(dir.join(format!("{name}.crt")))
        .arg("--client-key")
        .arg(dir.join(format!("{name}.key")))
        .args(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"])
        .output()
        .unwrap();
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

/// Replace a file at once (a rename), as tools rotating certificates do.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn client_and_front_proxy_ca_files_are_read_again_when_they_change() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (new_ca("corp-2025"), new_ca("corp-2026"));
    let (old_proxy, new_proxy) = (new_ca("proxy-2025"), new_ca("proxy-2026"));
    let (client_ca, proxy_ca) = (dir.path().join("client-ca.crt"), dir.path().join("proxy-ca.crt"));
    std::fs::write(&client_ca, &old.pem).unwrap();
    std::fs::write(&proxy_ca, &old_proxy.pem).unwrap();
    client_cert(dir.path(), &old, "old", "olga", &[], false);
    client_cert(dir.path(), &new, "new", "nina", &[], false);
    client_cert(dir.path(), &old_proxy, "old-proxy", "front-proxy-client", &[], false);
    client_cert(dir.path(), &new_proxy, "new-proxy", "front-proxy-client", &[], false);
    let s = Server::start_with(ServerOptions {
        extra_args: vec![
            format!("--client-ca-file={}", client_ca.display()),
            format!("--requestheader-client-ca-file={}", proxy_ca.display()),
            "--requestheader-allowed-names=front-proxy-client".into(),
            "--anonymous-auth=false".into(),
            "--ca-reload-interval=200ms".into(),
        ],
        ..Default::default()
    });
    let as_proxy = |name: &str| whoami(&s, Some((dir.path(), name)), &["X-Remote-User: pat"]);
    let namespaces =
        |name: &str| curl(&s, Some((dir.path(), name)), &[], "GET", "/api/v1/namespaces", None);
    assert_eq!(kubectl_whoami(&s, dir.path(), "old").unwrap(), "olga");
    assert_eq!(namespaces("new"), (401, UNAUTHORIZED.to_string()));
    assert_eq!(as_proxy("old-proxy").unwrap().0, "pat");
    assert_eq!(as_proxy("new-proxy").unwrap_err().0, 401);
    // Both files are replaced: the new CAs are trusted once the files are read again,
    // the old ones no longer.
    replace(&client_ca, &new.pem);
    replace(&proxy_ca, &new_proxy.pem);
    let reloaded = kapi_e2e::eventually(std::time::Duration::from_secs(30), || {
        whoami(&s, Some((dir.path(), "new")), &[]).is_ok() && as_proxy("new-proxy").is_ok()
    });
    assert!(reloaded, "the new CAs are never trusted");
    assert_eq!(kubectl_whoami(&s, dir.path(), "new").unwrap(), "nina");
    assert_eq!(namespaces("old"), (401, UNAUTHORIZED.to_string()));
    assert_eq!(as_proxy("old-proxy").unwrap_err().0, 401);
    // A broken file keeps the last good bundle.
    replace(&client_ca, "not a certificate");
    replace(&proxy_ca, &new_proxy.pem);
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(kubectl_whoami(&s, dir.path(), "new").unwrap(), "nina");
}
