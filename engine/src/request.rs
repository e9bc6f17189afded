//! `RequestInfo`: what a URL and method ask for, parsed as upstream's request info factory
//! (`/api/v1/namespaces/{ns}/{resource}/{name}/{subresource}`, `/apis/{g}/{v}/...`, the
//! deprecated `/watch/` prefix, and the namespace subresources `status` and `finalize`).

use std::collections::HashMap;

/// The parsed request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// Whether the path names an API resource (as opposed to /healthz, /version, ...).
    pub is_resource: bool,
    pub path: String,
    /// Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection
    /// for resources; the lower-cased HTTP method otherwise.
    pub verb: String,
    /// `api` or `apis` for resource requests.
    pub prefix: String,
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub subresource: Option<String>,
    pub name: Option<String>,
    /// Decoded query parameters (last value wins).
    pub query: HashMap<String, String>,
}

impl RequestInfo {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }

    /// `?watch=true` / `?watch=1`.
    fn watch_param(&self) -> bool {
        matches!(self.param("watch"), Some("true" | "1"))
    }
}

/// Decode a query string into a map (`a=b&c` -> {a: b, c: ""}).
pub fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(decode(k), decode(v));
    }
    out
}

fn decode(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus).decode_utf8_lossy().into_owned()
}

/// Parse a request path and method.
pub fn parse(method: &http::Method, path: &str, query: Option<&str>) -> RequestInfo {
    let mut info = RequestInfo {
        path: path.to_string(),
        verb: method.as_str().to_ascii_lowercase(),
        query: parse_query(query),
        ..Default::default()
    };
    let parts: Vec<&str> = path.trim_matches('/').split('/').filter(|p| !p.is_empty()).collect();
    let rest = match parts.as_slice() {
        ["api", version, rest @ ..] => {
            info.prefix = "api".into();
            info.version = (*version).into();
            rest
        }
        ["apis", group, version, rest @ ..] => {
            info.prefix = "apis".into();
            info.group = (*group).into();
            info.version = (*version).into();
            rest
        }
        _ => return info,
    };
    if rest.is_empty() {
        return info;
    }
    info.is_resource = true;
    let mut rest = rest;
    let mut legacy_watch = false;
    if rest[0] == "watch" {
        legacy_watch = true;
        rest = &rest[1..];
    }
    let rest = split_namespace(&mut info, rest);
    if let Some(r) = rest.first() {
        info.resource = (*r).to_string();
    }
    if let Some(n) = rest.get(1) {
        info.name = Some((*n).to_string());
    }
    if let Some(s) = rest.get(2) {
        info.subresource = Some((*s).to_string());
    }
    info.verb = verb(method, &info, legacy_watch);
    info
}

/// Handle `namespaces/{ns}/...`, leaving the resource part.
fn split_namespace<'a>(info: &mut RequestInfo, rest: &'a [&'a str]) -> &'a [&'a str] {
    if rest.first() != Some(&"namespaces") || rest.len() < 2 {
        return rest;
    }
    let is_ns_subresource = rest.len() == 3 && matches!(rest[2], "status" | "finalize");
    if rest.len() >= 3 && !is_ns_subresource {
        info.namespace = Some(rest[1].to_string());
        return &rest[2..];
    }
    rest
}

fn verb(method: &http::Method, info: &RequestInfo, legacy_watch: bool) -> String {
    let named = info.name.is_some();
    let v = match *method {
        http::Method::GET | http::Method::HEAD => {
            if legacy_watch || info.watch_param() {
                "watch"
            } else if named {
                "get"
            } else {
                "list"
            }
        }
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => {
            if named {
                "delete"
            } else {
                "deletecollection"
            }
        }
        _ => return method.as_str().to_ascii_lowercase(),
    };
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn p(m: Method, path: &str, q: Option<&str>) -> RequestInfo {
        parse(&m, path, q)
    }

    #[test]
    fn core_namespaced_object() {
        let r = p(Method::GET, "/api/v1/namespaces/default/pods/web", None);
        assert!(r.is_resource);
        assert_eq!((r.verb.as_str(), r.group.as_str(), r.version.as_str()), ("get", "", "v1"));
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!((r.resource.as_str(), r.name.as_deref()), ("pods", Some("web")));
    }

    #[test]
    fn namespaces_themselves_and_their_subresources() {
        let r = p(Method::GET, "/api/v1/namespaces/kube-system", None);
        assert_eq!((r.resource.as_str(), r.name.as_deref()), ("namespaces", Some("kube-system")));
        assert_eq!(r.namespace, None);
        let r = p(Method::PUT, "/api/v1/namespaces/x/finalize", None);
        assert_eq!(r.subresource.as_deref(), Some("finalize"));
        assert_eq!(r.verb, "update");
        let r = p(Method::GET, "/api/v1/namespaces", None);
        assert_eq!((r.verb.as_str(), r.resource.as_str()), ("list", "namespaces"));
    }

    #[test]
    fn group_watch_and_collections() {
        let r = p(Method::GET, "/apis/apps/v1/deployments", Some("watch=1&labelSelector=a%3Db"));
        assert_eq!((r.verb.as_str(), r.group.as_str()), ("watch", "apps"));
        assert_eq!(r.param("labelSelector"), Some("a=b"));
        let r = p(Method::GET, "/api/v1/watch/namespaces/ns/pods", None);
        assert_eq!((r.verb.as_str(), r.namespace.as_deref()), ("watch", Some("ns")));
        let r = p(Method::DELETE, "/api/v1/namespaces/ns/configmaps", None);
        assert_eq!(r.verb, "deletecollection");
        let r = p(Method::POST, "/api/v1/namespaces/ns/pods/p/binding", None);
        assert_eq!((r.verb.as_str(), r.subresource.as_deref()), ("create", Some("binding")));
    }

    /// Regression (found by the `http_head` fuzz target): `/api/v1/watch` (the legacy
    /// watch prefix with nothing after it) indexed an empty path and panicked the
    /// request's handler before authentication.
    #[test]
    fn bare_legacy_watch_prefix_does_not_panic() {
        for path in ["/api/v1/watch", "/api/v1/watch/", "/apis/apps/v1/watch"] {
            let r = p(Method::GET, path, Some("euittm=eo0s"));
            assert_eq!(
                (r.verb.as_str(), r.resource.as_str(), r.name),
                ("watch", "", None),
                "{path}"
            );
        }
    }

    #[test]
    fn non_resource_paths() {
        for path in ["/healthz", "/version", "/api", "/apis", "/apis/apps", "/api/v1"] {
            assert!(!p(Method::GET, path, None).is_resource, "{path}");
        }
    }
}
