//! TLS credentials for test etcd clusters: a CA, a server certificate for 127.0.0.1
//! (IP SAN, server auth) and a client certificate (client auth), all signed by the CA
//! and written as PEM files under one directory. Generated per cluster, never reused.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::path::{Path, PathBuf};

/// Paths of the PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TlsFiles {
    /// Generate a CA and its two leaves into `dir` (created).
    pub fn generate(dir: &Path) -> TlsFiles {
        std::fs::create_dir_all(dir).expect("pki dir");
        let ca_key = KeyPair::generate().expect("ca key");
        let ca = ca_params().self_signed(&ca_key).expect("ca cert");
        let files = TlsFiles {
            ca: write(dir, "ca.crt", &ca.pem()),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
        };
        let issuer = Issuer::new(ca_params(), ca_key);
        leaf(&issuer, server_params(), &files.server_cert, &files.server_key);
        leaf(&issuer, client_params(), &files.client_cert, &files.client_key);
        files
    }

    /// etcd's flags to serve clients with these credentials and require client certs.
    pub fn etcd_server_args(&self) -> Vec<String> {
        vec![
            "--cert-file".into(),
            path(&self.server_cert),
            "--key-file".into(),
            path(&self.server_key),
            "--trusted-ca-file".into(),
            path(&self.ca),
            "--client-cert-auth".into(),
        ]
    }

    /// kapi's flags to reach etcd with the client credentials.
    pub fn kapi_args(&self) -> Vec<String> {
        vec![
            "--etcd-cafile".into(),
            path(&self.ca),
            "--etcd-certfile".into(),
            path(&self.client_cert),
            "--etcd-keyfile".into(),
            path(&self.client_key),
        ]
    }
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn write(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, pem).expect("write pem");
    p
}

fn leaf(issuer: &Issuer<'_, KeyPair>, params: CertificateParams, cert: &Path, key: &Path) {
    let key_pair = KeyPair::generate().expect("leaf key");
    let c = params.signed_by(&key_pair, issuer).expect("sign leaf");
    std::fs::write(cert, c.pem()).expect("write cert");
    std::fs::write(key, key_pair.serialize_pem()).expect("write key");
}

fn named(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.not_after = rcgen::date_time_ymd(2099, 1, 1);
    p
}

fn ca_params() -> CertificateParams {
    let mut p = named("kapi-test-etcd-ca");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    p
}

fn server_params() -> CertificateParams {
    let mut p = named("etcd-server");
    p.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p
}

fn client_params() -> CertificateParams {
    let mut p = named("kube-apiserver-etcd-client");
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p
}
