//! Front-proxy (request-header) authentication, upstream's requestheader authenticator:
//! a client certificate verified against `--requestheader-client-ca-file` (with a
//! CommonName in `--requestheader-allowed-names` when that list is non-empty) lets the
//! proxy name the user in headers: the first non-empty value of the username headers,
//! the uid headers likewise, every value of the group headers, and each header starting
//! with an extra prefix as an extra (key: the rest of the name, lower-cased and
//! percent-decoded).
//!
//! Invariant: the configured headers are removed from every request before anything
//! else sees them ([`RequestHeader::strip`]), whoever sent them.

use super::UserInfo;
use super::dynamic_ca::DynamicCa;
use http::HeaderMap;
use std::sync::Arc;

/// The front-proxy settings.
#[derive(Debug)]
pub struct RequestHeader {
    /// The front-proxy CA (read again when its file changes).
    pub ca: Arc<DynamicCa>,
    pub allowed_names: Vec<String>,
    pub username_headers: Vec<String>,
    pub uid_headers: Vec<String>,
    pub group_headers: Vec<String>,
    /// Lower-cased prefixes.
    pub extra_prefixes: Vec<String>,
}

fn lower(list: &[String]) -> Vec<String> {
    list.iter().map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect()
}

impl RequestHeader {
    pub fn new(
        ca: Arc<DynamicCa>,
        allowed_names: &[String],
        username: &[String],
        uid: &[String],
        group: &[String],
        extra_prefixes: &[String],
    ) -> RequestHeader {
        RequestHeader {
            ca,
            allowed_names: allowed_names.iter().filter(|n| !n.is_empty()).cloned().collect(),
            username_headers: lower(username),
            uid_headers: lower(uid),
            group_headers: lower(group),
            extra_prefixes: lower(extra_prefixes),
        }
    }

    /// Whether a verified proxy certificate's CommonName may assert users.
    pub fn name_allowed(&self, cn: Option<&str>) -> bool {
        self.allowed_names.is_empty()
            || cn.is_some_and(|cn| self.allowed_names.iter().any(|n| n == cn))
    }

    /// The user the headers name (None: no username header).
    pub fn user(&self, headers: &HeaderMap) -> Option<UserInfo> {
        let name = first_value(headers, &self.username_headers)?;
        let uid = first_value(headers, &self.uid_headers).unwrap_or_default();
        let groups = self
            .group_headers
            .iter()
            .flat_map(|h| headers.get_all(h.as_str()))
            .filter_map(|v| v.to_str().ok().map(String::from))
            .collect();
        let mut extra = std::collections::BTreeMap::<String, Vec<String>>::new();
        for (name, value) in headers {
            let Some(key) = self.extra_prefixes.iter().find_map(|p| name.as_str().strip_prefix(p))
            else {
                continue;
            };
            let key = percent_encoding::percent_decode_str(key).decode_utf8_lossy().to_lowercase();
            if let Ok(v) = value.to_str() {
                extra.entry(key).or_default().push(v.to_string());
            }
        }
        Some(UserInfo { name, uid, groups, extra })
    }

    /// Remove every header this authenticator reads.
    pub fn strip(&self, headers: &mut HeaderMap) {
        for h in self.username_headers.iter().chain(&self.uid_headers).chain(&self.group_headers) {
            headers.remove(h.as_str());
        }
        let extras: Vec<http::HeaderName> = headers
            .keys()
            .filter(|k| self.extra_prefixes.iter().any(|p| k.as_str().starts_with(p.as_str())))
            .cloned()
            .collect();
        for k in extras {
            headers.remove(k);
        }
    }
}

/// The first non-empty value of the first of `names` that has one.
fn first_value(headers: &HeaderMap, names: &[String]) -> Option<String> {
    names
        .iter()
        .filter_map(|n| headers.get(n.as_str()))
        .filter_map(|v| v.to_str().ok())
        .find(|v| !v.is_empty())
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(allowed: &[&str]) -> RequestHeader {
        let kp = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = Arc::new(DynamicCa::fixed(&p.self_signed(&kp).unwrap().pem()).unwrap());
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        RequestHeader::new(
            ca,
            &s(allowed),
            &s(&["X-Remote-User", "X-Other-User"]),
            &s(&["X-Remote-Uid"]),
            &s(&["X-Remote-Group"]),
            &s(&["X-Remote-Extra-"]),
        )
    }

    #[test]
    fn headers_name_the_user_and_are_stripped() {
        let rh = config(&[]);
        let mut h = HeaderMap::new();
        h.insert("x-other-user", "bob".parse().unwrap());
        h.append("x-remote-group", "g1".parse().unwrap());
        h.append("x-remote-group", "g2".parse().unwrap());
        h.insert("x-remote-uid", "42".parse().unwrap());
        let name = |n: &str| http::HeaderName::from_bytes(n.as_bytes()).unwrap();
        h.append(name("X-Remote-Extra-Acme.com%2Fproject"), "p1".parse().unwrap());
        h.append(name("x-remote-extra-acme.com%2fproject"), "p2".parse().unwrap());
        h.insert("x-keep", "1".parse().unwrap());
        let u = rh.user(&h).unwrap();
        assert_eq!(u.name, "bob");
        assert_eq!(u.uid, "42");
        assert_eq!(u.groups, ["g1", "g2"]);
        assert_eq!(u.extra["acme.com/project"], ["p1", "p2"]);
        rh.strip(&mut h);
        assert_eq!(h.len(), 1, "only x-keep is left: {h:?}");
        assert!(rh.user(&h).is_none(), "no username header: no user");
    }

    #[test]
    fn allowed_names_limit_the_proxy_common_name() {
        assert!(config(&[]).name_allowed(None));
        let rh = config(&["front-proxy-client"]);
        assert!(rh.name_allowed(Some("front-proxy-client")));
        assert!(!rh.name_allowed(Some("mallory")));
        assert!(!rh.name_allowed(None));
    }
}
