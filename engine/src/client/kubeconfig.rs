//! The kubeconfig files webhooks are configured with (`--authentication-token-webhook-
//! config-file`, `--authorization-webhook-config-file`, `--audit-webhook-config-file`):
//! the current context's cluster (`server`, `certificate-authority[-data]`,
//! `insecure-skip-tls-verify`) and user (`client-certificate[-data]` and
//! `client-key[-data]`, or `token`); without a current context, the first cluster and
//! user. Relative file names resolve against the kubeconfig's directory. Only `https`
//! servers are accepted.

use super::tls::{Trust, client_config};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

/// A webhook's server and credentials, as its kubeconfig names them.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookKubeconfig {
    /// The server URL as written.
    pub server: String,
    pub host: String,
    pub port: u16,
    /// Origin-form path and query of the server URL.
    pub path: String,
    pub ca_pem: Option<Vec<u8>>,
    pub insecure: bool,
    pub client_cert_pem: Option<Vec<u8>>,
    pub client_key_pem: Option<Vec<u8>>,
    pub token: Option<String>,
}

impl std::fmt::Debug for WebhookKubeconfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookKubeconfig").field("server", &self.server).finish_non_exhaustive()
    }
}

impl WebhookKubeconfig {
    /// Read the kubeconfig at `path`; errors name the file.
    pub fn load(path: &Path) -> Result<WebhookKubeconfig, String> {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, dir).map_err(|e| format!("{shown}: {e}"))
    }

    /// Parse a kubeconfig's text; relative files are read from `dir`.
    pub fn parse(text: &str, dir: &Path) -> Result<WebhookKubeconfig, String> {
        let cfg: Value = serde_norway::from_str(text).map_err(|e| format!("kubeconfig: {e}"))?;
        let current = cfg.get("current-context").and_then(Value::as_str).filter(|c| !c.is_empty());
        let context = named(&cfg, "contexts", "context", current);
        let of_context = |k: &str| context.and_then(|c| c.get(k)).and_then(Value::as_str);
        let cluster = named(&cfg, "clusters", "cluster", of_context("cluster"))
            .ok_or("kubeconfig: no cluster")?;
        let empty = Value::Null;
        let user = named(&cfg, "users", "user", of_context("user")).unwrap_or(&empty);
        let server = cluster
            .get("server")
            .and_then(Value::as_str)
            .ok_or("kubeconfig: the cluster has no server")?;
        let uri: http::Uri = server.parse().map_err(|e| format!("server {server:?}: {e}"))?;
        if uri.scheme_str() != Some("https") {
            return Err(format!("server {server:?}: the webhook server must be https"));
        }
        let host = uri.host().ok_or_else(|| format!("server {server:?} has no host"))?;
        Ok(WebhookKubeconfig {
            server: server.to_string(),
            host: host.trim_matches(['[', ']']).to_string(),
            port: uri.port_u16().unwrap_or(443),
            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
            ca_pem: data_or_file(cluster, "certificate-authority", dir)?,
            insecure: cluster.get("insecure-skip-tls-verify").and_then(Value::as_bool)
                == Some(true),
            client_cert_pem: data_or_file(user, "client-certificate", dir)?,
            client_key_pem: data_or_file(user, "client-key", dir)?,
            token: user.get("token").and_then(Value::as_str).map(String::from),
        })
    }

    /// The TLS client configuration this kubeconfig asks for (the system's roots when it
    /// names no CA, as upstream's clients).
    pub fn tls(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        let trust = if self.insecure { Trust::Anything } else { Trust::ca(self.ca_pem.as_deref()) };
        let identity = match (&self.client_cert_pem, &self.client_key_pem) {
            (Some(c), Some(k)) => Some((c.as_slice(), k.as_slice())),
            _ => None,
        };
        client_config(trust, identity)
    }
}

/// The named entry's `field` of a kubeconfig list (`clusters`, `users`, `contexts`), or
/// the first entry's when no name is given.
fn named<'a>(cfg: &'a Value, list: &str, field: &str, name: Option<&str>) -> Option<&'a Value> {
    let items = cfg.get(list)?.as_array()?;
    let item = match name {
        Some(n) => items.iter().find(|i| i.get("name").and_then(Value::as_str) == Some(n))?,
        None => items.first()?,
    };
    item.get(field)
}

/// A field given inline (`FIELD-data`, base64) or as a file (`FIELD`).
fn data_or_file(section: &Value, field: &str, dir: &Path) -> Result<Option<Vec<u8>>, String> {
    use base64::Engine as _;
    if let Some(d) = section.get(format!("{field}-data")).and_then(Value::as_str) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(d.trim())
            .map_err(|e| format!("{field}-data: {e}"))?;
        return Ok(Some(bytes));
    }
    match section.get(field).and_then(Value::as_str) {
        Some(f) => std::fs::read(dir.join(f)).map(Some).map_err(|e| format!("{field} {f}: {e}")),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster:\n    server: https://wrong\n- name: authn\n  cluster:\n    server: https://127.0.0.1:9443/authenticate?x=1\n    certificate-authority: ca.pem\nusers:\n- name: apiserver\n  user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\n    token: abc\ncontexts:\n- name: webhook\n  context:\n    cluster: authn\n    user: apiserver\ncurrent-context: webhook\n";

    #[test]
    fn the_current_contexts_cluster_and_user_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "CA").unwrap();
        let k = WebhookKubeconfig::parse(TEXT, dir.path()).unwrap();
        assert_eq!(k.server, "https://127.0.0.1:9443/authenticate?x=1");
        assert_eq!(
            (k.host.as_str(), k.port, k.path.as_str()),
            ("127.0.0.1", 9443, "/authenticate?x=1")
        );
        assert_eq!(k.ca_pem.as_deref(), Some(&b"CA"[..]));
        assert_eq!(k.client_cert_pem.as_deref(), Some(&b"CERT"[..]));
        assert_eq!(k.client_key_pem.as_deref(), Some(&b"KEY"[..]));
        assert_eq!(k.token.as_deref(), Some("abc"));
        assert!(!k.insecure);
    }

    #[test]
    fn no_cluster_plain_http_and_missing_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(WebhookKubeconfig::parse("clusters: []", dir.path()).is_err());
        let plain = "clusters:\n- name: c\n  cluster:\n    server: http://insecure\n";
        let err = WebhookKubeconfig::parse(plain, dir.path()).unwrap_err();
        assert!(err.contains("https"), "{err}");
        let err = WebhookKubeconfig::parse(TEXT, dir.path()).unwrap_err();
        assert!(err.contains("certificate-authority ca.pem"), "{err}");
    }

    #[test]
    fn without_a_current_context_the_first_cluster_is_used() {
        let text = "clusters:\n- name: s\n  cluster:\n    server: https://h\n    insecure-skip-tls-verify: true\n";
        let k = WebhookKubeconfig::parse(text, Path::new("/")).unwrap();
        assert_eq!((k.host.as_str(), k.port, k.path.as_str()), ("h", 443, "/"));
        assert!(k.insecure && k.token.is_none());
        k.tls().unwrap();
    }
}
