//! Credentials generated on first start and reused after: a cluster CA, the serving
//! certificate (localhost, 127.0.0.1, the host name, the bind address, the `kubernetes`
//! Service names and its ClusterIP), an admin client certificate (group system:masters)
//! and an admin bearer token; plus `admin.kubeconfig`. A separate front-proxy CA signs
//! the client certificate kapi presents to aggregated API servers (`front-proxy-ca`,
//! `front-proxy-client`: kubeadm's names), generated only when no
//! `--proxy-client-cert-file` is given.
//!
//! Invariant: files are written once (0600 for keys) and never regenerated while the CA
//! exists, so a restart keeps every credential valid.

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Paths and material of the credentials.
#[derive(Debug, Clone)]
pub struct Pki {
    pub dir: PathBuf,
    pub ca_cert_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub admin_token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Io { path: path.into(), source })
}

fn write(path: &Path, contents: &str, secret: bool) -> Result<(), PkiError> {
    let io = |source| PkiError::Io { path: path.into(), source };
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).map_err(io)?;
    if secret {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

/// The machine's host name, if it has one.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for its length; gethostname writes a NUL-terminated name.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    (!name.is_empty()).then_some(name)
}

impl Pki {
    /// Load the credentials under `dir/pki`, generating whatever is missing.
    pub fn load_or_create(dir: &Path, bind: IpAddr, service_ip: IpAddr) -> Result<Pki, PkiError> {
        let pki = dir.join("pki");
        std::fs::create_dir_all(&pki)
            .map_err(|source| PkiError::Io { path: pki.clone(), source })?;
        let (ca_cert, ca_key) = ensure_ca(&pki, "ca", "kapi-ca")?;
        let ca_key_pair = KeyPair::from_pem(&ca_key)?;
        let issuer = Issuer::from_ca_cert_pem(&ca_cert, ca_key_pair)?;
        let (serving_cert_pem, serving_key_pem) =
            ensure_leaf(&pki, "apiserver", &issuer, |p| serving_params(p, bind, service_ip))?;
        ensure_leaf(&pki, "admin", &issuer, admin_params)?;
        let token_path = pki.join("admin.token");
        let admin_token = match read(&token_path) {
            Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
            _ => {
                let t = random_token();
                write(&token_path, &t, true)?;
                t
            }
        };
        Ok(Pki { dir: pki, ca_cert_pem: ca_cert, serving_cert_pem, serving_key_pem, admin_token })
    }

    /// Write `admin.kubeconfig` (client certificate credentials) for `server_url`.
    pub fn write_admin_kubeconfig(&self, path: &Path, server_url: &str) -> Result<(), PkiError> {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        let cert = read(&self.dir.join("admin.crt"))?;
        let key = read(&self.dir.join("admin.key"))?;
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kapi\n  cluster:\n    server: {server_url}\n    certificate-authority-data: {}\nusers:\n- name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: kapi\n  context:\n    cluster: kapi\n    user: admin\ncurrent-context: kapi\n",
            b64(&self.ca_cert_pem),
            b64(&cert),
            b64(&key)
        );
        write(path, &text, true)
    }
}

/// The ServiceAccount signing key `dir/pki/sa.key` (EC P-256, PKCS#8) and its public
/// half `sa.pub`, generated on first start; returns the key's PEM. (`sa.key` is where
/// upstream's tooling and the controller manager's token controller look for it.)
pub fn ensure_service_account_key(dir: &Path) -> Result<String, PkiError> {
    let pki = dir.join("pki");
    std::fs::create_dir_all(&pki).map_err(|source| PkiError::Io { path: pki.clone(), source })?;
    let (key, public) = (pki.join("sa.key"), pki.join("sa.pub"));
    if key.exists() {
        return read(&key);
    }
    let kp = KeyPair::generate()?;
    write(&public, &kp.public_key_pem(), false)?;
    let pem = kp.serialize_pem();
    write(&key, &pem, true)?;
    Ok(pem)
}

fn random_token() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The front-proxy CA and the client certificate signed by it (CN `front-proxy-client`)
/// under `dir/pki`, generated on first use.
#[derive(Debug, Clone)]
pub struct FrontProxy {
    pub ca_cert_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

/// Load or generate the front-proxy credentials.
pub fn ensure_front_proxy(dir: &Path) -> Result<FrontProxy, PkiError> {
    let pki = dir.join("pki");
    std::fs::create_dir_all(&pki).map_err(|source| PkiError::Io { path: pki.clone(), source })?;
    let (ca_cert, ca_key) = ensure_ca(&pki, "front-proxy-ca", "front-proxy-ca")?;
    let issuer = Issuer::from_ca_cert_pem(&ca_cert, KeyPair::from_pem(&ca_key)?)?;
    let (client_cert_pem, client_key_pem) =
        ensure_leaf(&pki, "front-proxy-client", &issuer, front_proxy_client_params)?;
    Ok(FrontProxy { ca_cert_pem: ca_cert, client_cert_pem, client_key_pem })
}

fn front_proxy_client_params(p: &mut CertificateParams) {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "front-proxy-client");
    p.distinguished_name = dn;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
}

fn ensure_ca(pki: &Path, name: &str, cn: &str) -> Result<(String, String), PkiError> {
    let (crt, key) = (pki.join(format!("{name}.crt")), pki.join(format!("{name}.key")));
    if crt.exists() && key.exists() {
        return Ok((read(&crt)?, read(&key)?));
    }
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_after = rcgen::date_time_ymd(2099, 1, 1);
    let key_pair = KeyPair::generate()?;
    let cert = params.self_signed(&key_pair)?;
    let (c, k) = (cert.pem(), key_pair.serialize_pem());
    write(&key, &k, true)?;
    write(&crt, &c, false)?;
    Ok((c, k))
}

fn ensure_leaf(
    pki: &Path,
    name: &str,
    issuer: &Issuer<'_, KeyPair>,
    params: impl FnOnce(&mut CertificateParams),
) -> Result<(String, String), PkiError> {
    let (crt, key) = (pki.join(format!("{name}.crt")), pki.join(format!("{name}.key")));
    if crt.exists() && key.exists() {
        return Ok((read(&crt)?, read(&key)?));
    }
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.not_after = rcgen::date_time_ymd(2099, 1, 1);
    params(&mut p);
    let key_pair = KeyPair::generate()?;
    let cert = p.signed_by(&key_pair, issuer)?;
    let (c, k) = (cert.pem(), key_pair.serialize_pem());
    write(&key, &k, true)?;
    write(&crt, &c, false)?;
    Ok((c, k))
}

fn serving_params(p: &mut CertificateParams, bind: IpAddr, service_ip: IpAddr) {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "kube-apiserver");
    p.distinguished_name = dn;
    let mut dns = vec![
        "localhost".to_string(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        "kubernetes.default.svc.cluster.local".into(),
    ];
    dns.extend(hostname());
    let mut sans: Vec<SanType> =
        dns.into_iter().filter_map(|d| d.try_into().ok().map(SanType::DnsName)).collect();
    let mut ips: Vec<IpAddr> = vec!["127.0.0.1".parse().expect("ip"), "::1".parse().expect("ip")];
    for ip in [bind, service_ip] {
        if !ip.is_unspecified() && !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    sans.extend(ips.into_iter().map(SanType::IpAddress));
    p.subject_alt_names = sans;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
}

fn admin_params(p: &mut CertificateParams) {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "kubernetes-admin");
    dn.push(DnType::OrganizationName, "system:masters");
    p.distinguished_name = dn;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let ip = "10.96.0.1".parse().unwrap();
        let a = Pki::load_or_create(dir.path(), "127.0.0.1".parse().unwrap(), ip).unwrap();
        let b = Pki::load_or_create(dir.path(), "127.0.0.1".parse().unwrap(), ip).unwrap();
        assert_eq!(a.ca_cert_pem, b.ca_cert_pem);
        assert_eq!(a.serving_cert_pem, b.serving_cert_pem);
        assert_eq!(a.admin_token, b.admin_token);
        assert!(a.admin_token.len() >= 40);
    }

    #[test]
    fn front_proxy_credentials_are_their_own_ca_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let ip = "10.96.0.1".parse().unwrap();
        let cluster = Pki::load_or_create(dir.path(), "127.0.0.1".parse().unwrap(), ip).unwrap();
        let a = ensure_front_proxy(dir.path()).unwrap();
        let b = ensure_front_proxy(dir.path()).unwrap();
        assert_eq!(a.ca_cert_pem, b.ca_cert_pem);
        assert_eq!(a.client_cert_pem, b.client_cert_pem);
        assert_ne!(a.ca_cert_pem, cluster.ca_cert_pem);
    }
}
