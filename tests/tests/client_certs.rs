//! Client certificate authentication with certificates made the way operators make
//! them with openssl. Regression: X.509 v1 client certificates (a plain `openssl x509
//! -req` without extensions) were refused in the TLS handshake, while upstream's Go
//! stack accepts them.

use kapi_e2e::{Server, openssl};
use std::path::Path;
use std::process::Command;

/// A v1 certificate for `subject`, signed by the CA in `ca_dir` (ca.crt, ca.key).
fn v1_cert(dir: &Path, ca_dir: &Path, name: &str, subject: &str) {
    openssl::client_cert(dir, ca_dir, name, subject, openssl::Extensions::V1);
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in", &format!("{name}.crt")])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("Version: 1 (0x0)"), "a v1 certificate");
}

fn whoami(s: &Server, dir: &Path, name: &str) -> Result<String, String> {
    let out = Command::new("kubectl")
        .args(["--kubeconfig", "/dev/null", "--server", &s.url()])
        .arg("--certificate-authority")
        .arg(s.dir.path().join("data/pki/ca.crt"))
        .arg("--client-certificate")
        .arg(dir.join(format!("{name}.crt")))
        .arg("--client-key")
        .arg(dir.join(format!("{name}.key")))
        .args([
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username} {.status.userInfo.groups}",
        ])
        .output()
        .expect("kubectl");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn x509_v1_client_certificates_signed_by_the_cluster_ca_are_accepted() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let pki = s.dir.path().join("data/pki");
    v1_cert(dir.path(), &pki, "alice", "/O=devs/O=ops/CN=alice");
    let who = whoami(&s, dir.path(), "alice").expect("a v1 certificate authenticates");
    assert!(who.starts_with("alice "), "{who}");
    assert!(who.contains("devs") && who.contains("ops"), "{who}");

    // A v1 certificate from another CA is not.
    let rogue = dir.path().join("rogue");
    std::fs::create_dir_all(&rogue).unwrap();
    openssl::run(
        &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ca.key"],
        &rogue,
    );
    openssl::run(
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-subj",
            "/CN=kapi-ca",
            "-days",
            "2",
            "-out",
            "ca.crt",
        ],
        &rogue,
    );
    v1_cert(dir.path(), &rogue, "mallory", "/O=system:masters/CN=mallory");
    let refused = whoami(&s, dir.path(), "mallory");
    assert!(refused.is_err(), "a certificate of another CA with the same CA name: {refused:?}");
}
