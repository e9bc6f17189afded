//! Client certificates made the way operators make them, with the `openssl` command
//! line (not rcgen as `tls.rs` does): the tests that need what openssl writes (a v1
//! certificate, a kubelet's `O=system:nodes` subject) share these steps.

use std::path::Path;
use std::process::Command;

/// Run `openssl args` in `dir`; panic with its stderr when it fails.
pub fn run(args: &[&str], dir: &Path) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// What the certificate declares beyond its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extensions {
    /// None: an X.509 v1 certificate (a plain `openssl x509 -req`).
    V1,
    /// `extendedKeyUsage=clientAuth` (v3).
    ClientAuth,
}

/// A client certificate for `subject` (`/O=group/CN=name`) signed by the CA in `ca_dir`
/// (`ca.crt`, `ca.key`), written as `dir/NAME.crt` with its key `dir/NAME.key`.
pub fn client_cert(dir: &Path, ca_dir: &Path, name: &str, subject: &str, ext: Extensions) {
    let key = format!("{name}.key");
    run(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", &key], dir);
    let csr = format!("{name}.csr");
    run(&["req", "-new", "-key", &key, "-subj", subject, "-out", &csr], dir);
    let (ca_crt, ca_key) = (ca_dir.join("ca.crt"), ca_dir.join("ca.key"));
    let crt = format!("{name}.crt");
    let mut args = vec![
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        ca_crt.to_str().expect("utf-8 path"),
        "-CAkey",
        ca_key.to_str().expect("utf-8 path"),
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        &crt,
    ];
    let ext_file = format!("{name}.ext.cnf");
    if ext == Extensions::ClientAuth {
        std::fs::write(dir.join(&ext_file), "extendedKeyUsage=clientAuth\n").expect("ext file");
        args.extend(["-extfile", &ext_file]);
    }
    run(&args, dir);
}
