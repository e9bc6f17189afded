//! Reads a kubeconfig file the way kubectl does for the parts a load generator needs: the
//! current (or a named) context's server URL, the CA to trust, and the credentials (client
//! certificate and key, bearer token or token file, basic auth). Inline `*-data` fields
//! (base64) and file paths (relative to the kubeconfig's folder) are both accepted.
//! Exec and auth-provider plugins are not supported and are reported as such.

use base64::Engine;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Errors reading or interpreting a kubeconfig.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    #[error("reading {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("parsing kubeconfig: {0}")]
    Yaml(String),
    #[error("kubeconfig: {0}")]
    Invalid(String),
}

/// What a client needs to reach and authenticate to one API server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Target {
    /// Server URL, e.g. `https://127.0.0.1:6443`.
    pub server: String,
    /// PEM bundle of the CA(s) to trust; `None` means the system has none to offer and
    /// verification fails unless `insecure` is set.
    pub ca_pem: Option<Vec<u8>>,
    /// `insecure-skip-tls-verify`.
    pub insecure: bool,
    /// `tls-server-name`: the name to verify instead of the URL's host.
    pub tls_server_name: Option<String>,
    /// PEM client certificate chain and key.
    pub client_cert_pem: Option<Vec<u8>>,
    pub client_key_pem: Option<Vec<u8>>,
    /// Bearer token.
    pub token: Option<String>,
    /// Basic auth user and password.
    pub basic: Option<(String, String)>,
    /// The context's namespace, if any.
    pub namespace: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct Config {
    #[serde(default)]
    clusters: Vec<Named<Cluster>>,
    #[serde(default)]
    users: Vec<NamedUser>,
    #[serde(default)]
    contexts: Vec<Named<Context>>,
    #[serde(default)]
    current_context: Option<String>,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "context")]
    value: T,
}

#[derive(Deserialize)]
struct NamedUser {
    name: String,
    #[serde(default)]
    user: User,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    server: String,
    certificate_authority_data: Option<String>,
    certificate_authority: Option<String>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
    tls_server_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct User {
    client_certificate_data: Option<String>,
    client_certificate: Option<String>,
    client_key_data: Option<String>,
    client_key: Option<String>,
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<String>,
    username: Option<String>,
    password: Option<String>,
    exec: Option<serde_norway::Value>,
    auth_provider: Option<serde_norway::Value>,
}

#[derive(Deserialize, Default)]
struct Context {
    cluster: String,
    #[serde(default)]
    user: String,
    namespace: Option<String>,
}

/// The kubeconfig path kubectl would use: `$KUBECONFIG` (its first entry) or
/// `~/.kube/config`.
pub fn default_path() -> PathBuf {
    if let Some(first) = std::env::var_os("KUBECONFIG")
        .and_then(|v| std::env::split_paths(&v).find(|p| !p.as_os_str().is_empty()))
    {
        return first;
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    home.join(".kube").join("config")
}

/// Load `path` and resolve `context` (or the current context).
pub fn load(path: &Path, context: Option<&str>) -> Result<Target, KubeconfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| KubeconfigError::Io { path: path.to_path_buf(), source })?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, base, context)
}

/// Parse kubeconfig `text`; relative file paths are resolved against `base`.
pub fn parse(text: &str, base: &Path, context: Option<&str>) -> Result<Target, KubeconfigError> {
    let config: Config =
        serde_norway::from_str(text).map_err(|e| KubeconfigError::Yaml(e.to_string()))?;
    let name = context
        .map(str::to_owned)
        .or_else(|| config.current_context.clone())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid("no current-context and no --context given"))?;
    let ctx = find(&config.contexts, &name, "context")?;
    let cluster = find(&config.clusters, &ctx.cluster, "cluster")?;
    let user = config.users.iter().find(|u| u.name == ctx.user).map(|u| &u.user);
    let mut target = cluster_target(cluster, base)?;
    target.namespace = ctx.namespace.clone();
    if let Some(user) = user {
        apply_user(&mut target, user, base)?;
    }
    Ok(target)
}

fn invalid(msg: impl Into<String>) -> KubeconfigError {
    KubeconfigError::Invalid(msg.into())
}

fn find<'a, T>(items: &'a [Named<T>], name: &str, what: &str) -> Result<&'a T, KubeconfigError> {
    items
        .iter()
        .find(|i| i.name == name)
        .map(|i| &i.value)
        .ok_or_else(|| invalid(format!("{what} {name:?} not found")))
}

fn cluster_target(c: &Cluster, base: &Path) -> Result<Target, KubeconfigError> {
    if c.server.is_empty() {
        return Err(invalid("cluster has no server"));
    }
    Ok(Target {
        server: c.server.trim_end_matches('/').to_owned(),
        ca_pem: data_or_file(&c.certificate_authority_data, &c.certificate_authority, base)?,
        insecure: c.insecure_skip_tls_verify,
        tls_server_name: c.tls_server_name.clone(),
        ..Target::default()
    })
}

fn apply_user(t: &mut Target, u: &User, base: &Path) -> Result<(), KubeconfigError> {
    if u.exec.is_some() || u.auth_provider.is_some() {
        return Err(invalid("exec and auth-provider credential plugins are not supported"));
    }
    t.client_cert_pem = data_or_file(&u.client_certificate_data, &u.client_certificate, base)?;
    t.client_key_pem = data_or_file(&u.client_key_data, &u.client_key, base)?;
    if t.client_cert_pem.is_some() != t.client_key_pem.is_some() {
        return Err(invalid("client certificate and key must be given together"));
    }
    t.token = match (&u.token, &u.token_file) {
        (Some(tok), _) => Some(tok.trim().to_owned()),
        (None, Some(file)) => Some(read_text(&base.join(file))?.trim().to_owned()),
        (None, None) => None,
    };
    if let (Some(user), Some(pass)) = (&u.username, &u.password) {
        t.basic = Some((user.clone(), pass.clone()));
    }
    Ok(())
}

fn data_or_file(
    data: &Option<String>,
    file: &Option<String>,
    base: &Path,
) -> Result<Option<Vec<u8>>, KubeconfigError> {
    if let Some(d) = data.as_deref().filter(|d| !d.is_empty()) {
        let clean: String = d.split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(clean)
            .map_err(|e| invalid(format!("bad base64 data: {e}")))?;
        return Ok(Some(bytes));
    }
    match file.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => Ok(Some(read_text(&base.join(f))?.into_bytes())),
        None => Ok(None),
    }
}

fn read_text(path: &Path) -> Result<String, KubeconfigError> {
    std::fs::read_to_string(path)
        .map_err(|source| KubeconfigError::Io { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMBEDDED: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: kapi\n  cluster:\n    server: https://127.0.0.1:6600/\n    certificate-authority-data: Q0EtUEVN\nusers:\n- name: admin\n  user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\n    token: secret-token\ncontexts:\n- name: kapi\n  context:\n    cluster: kapi\n    user: admin\n    namespace: team-a\n- name: other\n  context:\n    cluster: kapi\n    user: nobody\ncurrent-context: kapi\n";

    #[test]
    fn current_context_with_embedded_data() {
        let t = parse(EMBEDDED, Path::new("/nonexistent"), None).unwrap();
        assert_eq!(t.server, "https://127.0.0.1:6600");
        assert_eq!(t.ca_pem.as_deref(), Some(&b"CA-PEM"[..]));
        assert_eq!(t.client_cert_pem.as_deref(), Some(&b"CERT"[..]));
        assert_eq!(t.client_key_pem.as_deref(), Some(&b"KEY"[..]));
        assert_eq!(t.token.as_deref(), Some("secret-token"));
        assert_eq!(t.namespace.as_deref(), Some("team-a"));
        assert!(!t.insecure);
    }

    #[test]
    fn named_context_with_unknown_user_has_no_credentials() {
        let t = parse(EMBEDDED, Path::new("/"), Some("other")).unwrap();
        assert_eq!(t.client_cert_pem, None);
        assert_eq!(t.token, None);
        assert_eq!(t.namespace, None);
    }

    #[test]
    fn files_are_relative_to_the_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), "CA").unwrap();
        std::fs::write(dir.path().join("token"), "tok\n").unwrap();
        let text = "clusters:\n- name: c\n  cluster:\n    server: https://h:1\n    certificate-authority: ca.crt\n    tls-server-name: kubernetes\nusers:\n- name: u\n  user:\n    tokenFile: token\n    username: bob\n    password: pw\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n";
        std::fs::write(dir.path().join("config"), text).unwrap();
        let t = load(&dir.path().join("config"), None).unwrap();
        assert_eq!(t.ca_pem.as_deref(), Some(&b"CA"[..]));
        assert_eq!(t.token.as_deref(), Some("tok"));
        assert_eq!(t.basic, Some(("bob".into(), "pw".into())));
        assert_eq!(t.tls_server_name.as_deref(), Some("kubernetes"));
    }

    #[test]
    fn errors_are_reported_not_panicked() {
        let base = Path::new("/");
        assert!(parse("current-context: nope\n", base, None).is_err());
        assert!(parse("{}", base, None).is_err());
        assert!(parse(": : :", base, None).is_err());
        let exec = EMBEDDED.replace("token: secret-token", "exec: {command: aws}");
        let err = parse(&exec, base, None).unwrap_err().to_string();
        assert!(err.contains("not supported"), "{err}");
        let bad = EMBEDDED.replace("Q0EtUEVN", "not*base64");
        assert!(parse(&bad, base, None).is_err());
        let half = EMBEDDED.replace("client-key-data: S0VZ", "");
        assert!(parse(&half, base, None).is_err());
    }
}
