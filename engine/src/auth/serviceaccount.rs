//! ServiceAccount tokens as upstream v1.35: bound tokens issued by the TokenRequest
//! subresource (audiences, expiry, bound to a Pod, Secret or Node) and legacy
//! Secret-based tokens (issuer `kubernetes/serviceaccount`, signed by the controller
//! manager's token controller with the same key), both authenticated here.
//!
//! Invariants: a token authenticates only while what it names still exists with the
//! same uid (ServiceAccount, and the bound Pod/Secret/Node; a legacy token's Secret must
//! still hold it), looked up through [`Objects`] (the watch caches, no store read per
//! request); objects being deleted stop tokens as upstream (bound objects after 60 s).

use super::UserInfo;
use super::jwt::{self, PublicKey, SigningKey};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The issuer of legacy Secret-based tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";
/// The expiry kubelets ask for; such pod-bound tokens are extended to a year (upstream's
/// `--service-account-extend-token-expiration`) and carry `warnafter`.
const WARN_ONLY_EXPIRATION: i64 = 3607;
const EXTENDED_EXPIRATION: i64 = 365 * 24 * 3600;
/// Upstream's bounds on `spec.expirationSeconds`.
pub const MIN_EXPIRATION: i64 = 600;
pub const MAX_EXPIRATION: i64 = 1 << 32;
/// How long a bound token stays valid after its object began deleting.
const DELETION_GRACE: i64 = 60;

/// The kinds of object tokens name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ServiceAccount,
    Pod,
    Secret,
    Node,
}

/// Where validation reads the objects a token names (the watch caches in the server).
pub trait Objects {
    fn get(&self, kind: Kind, namespace: Option<&str>, name: &str) -> Option<Value>;
}

/// Why a token was refused. `Missing` may be a cache that has not caught up yet: the
/// caller may let the caches settle and try once more.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Missing(String),
}

/// The key material and settings of ServiceAccount tokens.
#[derive(Debug)]
pub struct Tokens {
    pub signer: SigningKey,
    /// Every key tokens may be signed with (key files and the signer's public half).
    pub keys: Vec<PublicKey>,
    /// Accepted issuers; the first signs new tokens.
    pub issuers: Vec<String>,
    /// The audiences the API server identifies as (`--api-audiences`).
    pub audiences: Vec<String>,
    pub max_expiration: Option<i64>,
    pub extend_expiration: bool,
}

/// An object a token is bound to, as the TokenRequest named and the server found it.
#[derive(Debug, Clone)]
pub struct Bound {
    pub kind: Kind,
    pub name: String,
    pub uid: String,
    /// For a pod: the node it runs on (name, uid when the node exists).
    pub node: Option<(String, String)>,
}

/// A token to issue: the ServiceAccount (namespace, name, uid) and the request's spec.
#[derive(Debug, Clone)]
pub struct Issue<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
    pub audiences: Vec<String>,
    pub expiration_seconds: i64,
    pub bound: Option<Bound>,
    pub now: i64,
    pub jti: String,
}

impl Tokens {
    /// Sign a bound token; returns it with its expiry (unix seconds) as the TokenRequest
    /// status reports it (the requested one, also when the token itself is extended).
    pub fn issue(&self, req: &Issue<'_>) -> Result<(String, i64), jwt::JwtError> {
        let mut exp = req.expiration_seconds;
        if let Some(max) = self.max_expiration
            && exp > max
        {
            exp = max;
        }
        let reported = req.now + exp;
        let mut private = json!({
            "namespace": req.namespace,
            "serviceaccount": {"name": req.name, "uid": req.uid},
        });
        if let Some(b) = &req.bound {
            let field = match b.kind {
                Kind::Pod => "pod",
                Kind::Secret => "secret",
                Kind::Node => "node",
                Kind::ServiceAccount => "serviceaccount",
            };
            private[field] = json!({"name": b.name, "uid": b.uid});
            if let Some((node, uid)) = &b.node {
                private["node"] = if uid.is_empty() {
                    json!({"name": node})
                } else {
                    json!({"name": node, "uid": uid})
                };
            }
            if b.kind == Kind::Pod && self.extend_expiration && exp == WARN_ONLY_EXPIRATION {
                private["warnafter"] = json!(req.now + exp);
                exp = EXTENDED_EXPIRATION;
            }
        }
        let claims = json!({
            "aud": req.audiences,
            "exp": req.now + exp,
            "iat": req.now,
            "iss": self.issuers.first().map_or("", String::as_str),
            "jti": req.jti,
            "kubernetes.io": private,
            "nbf": req.now,
            "sub": format!("system:serviceaccount:{}:{}", req.namespace, req.name),
        });
        Ok((self.signer.sign(&claims)?, reported))
    }

    /// The user of a ServiceAccount token. Ok(None): not a token of ours (another
    /// authenticator may know it).
    pub fn authenticate(
        &self,
        token: &str,
        objects: &dyn Objects,
        now: i64,
    ) -> Result<Option<UserInfo>, TokenError> {
        Ok(self.authenticate_for(token, objects, now, &self.audiences)?.map(|(u, _)| u))
    }

    /// The user of a ServiceAccount token meant for one of `wanted`, and the audiences
    /// it was meant for among them (a legacy token, which names none, is meant for the
    /// API's audiences).
    pub fn authenticate_for(
        &self,
        token: &str,
        objects: &dyn Objects,
        now: i64,
        wanted: &[String],
    ) -> Result<Option<(UserInfo, Vec<String>)>, TokenError> {
        let Some(peek) = jwt::peek_claims(token) else { return Ok(None) };
        let iss = peek.get("iss").and_then(Value::as_str).unwrap_or("");
        let legacy = iss == LEGACY_ISSUER;
        if !legacy && !self.issuers.iter().any(|i| i == iss) {
            return Ok(None);
        }
        let claims = jwt::verify(token, &self.keys)
            .map_err(|e| TokenError::Invalid(format!("invalid bearer token, {e}")))?;
        let named = audiences(claims.get("aud"));
        let meant = if named.is_empty() { self.audiences.clone() } else { named };
        let auds: Vec<String> = meant.into_iter().filter(|a| wanted.contains(a)).collect();
        if auds.is_empty() {
            return Err(TokenError::Invalid("token audiences is invalid".into()));
        }
        if legacy {
            legacy_user(token, &claims, objects)
        } else {
            self.bound_user(&claims, objects, now)
        }
        .map(|u| Some((u, auds)))
    }

    fn bound_user(
        &self,
        claims: &Value,
        objects: &dyn Objects,
        now: i64,
    ) -> Result<UserInfo, TokenError> {
        let invalid = |m: &str| TokenError::Invalid(m.to_string());
        let exp = claims.get("exp").and_then(Value::as_i64).ok_or_else(|| invalid("no exp"))?;
        if now >= exp {
            return Err(invalid("token has expired"));
        }
        if claims.get("nbf").and_then(Value::as_i64).is_some_and(|nbf| now < nbf) {
            return Err(invalid("token is not valid yet"));
        }
        let k = claims.get("kubernetes.io").ok_or_else(|| invalid("no kubernetes.io claims"))?;
        let ns = str_at(k, "/namespace");
        let (sa, sa_uid) = (str_at(k, "/serviceaccount/name"), str_at(k, "/serviceaccount/uid"));
        check_live(objects, Kind::ServiceAccount, Some(ns), sa, sa_uid, now, false)?;
        let mut extra = BTreeMap::new();
        if let Some(jti) = claims.get("jti").and_then(Value::as_str) {
            extra.insert(
                "authentication.kubernetes.io/credential-id".into(),
                vec![format!("JTI={jti}")],
            );
        }
        for (kind, field, ns) in [
            (Kind::Pod, "pod", Some(ns)),
            (Kind::Secret, "secret", Some(ns)),
            (Kind::Node, "node", None),
        ] {
            let Some(r) = k.get(field) else { continue };
            let (name, uid) = (str_at(r, "/name"), str_at(r, "/uid"));
            // A pod token names its node for information; only a node-bound token is
            // checked against the node.
            let node_info = kind == Kind::Node && k.get("pod").is_some();
            if !node_info {
                check_live(objects, kind, ns, name, uid, now, true)?;
            }
            if kind != Kind::Secret {
                extra.insert(
                    format!("authentication.kubernetes.io/{field}-name"),
                    vec![name.to_string()],
                );
                if !uid.is_empty() {
                    extra.insert(
                        format!("authentication.kubernetes.io/{field}-uid"),
                        vec![uid.to_string()],
                    );
                }
            }
        }
        Ok(service_account_user(ns, sa, sa_uid, extra))
    }

    /// The JWKS document (`/openid/v1/jwks`).
    pub fn jwks(&self) -> Value {
        json!({"keys": self.keys.iter().map(PublicKey::jwk).collect::<Vec<_>>()})
    }

    /// The OIDC discovery document, when the issuer is an https URL (as upstream).
    pub fn openid_configuration(&self, jwks_uri: &str) -> Option<Value> {
        let iss = self.issuers.first()?;
        if !iss.starts_with("https://") {
            return None;
        }
        let mut algs: Vec<&str> = self.keys.iter().map(|k| k.alg.name()).collect();
        algs.sort_unstable();
        algs.dedup();
        Some(json!({
            "issuer": iss,
            "jwks_uri": jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": algs,
        }))
    }
}

/// The audiences an `aud` claim names (a string or a list).
fn audiences(aud: Option<&Value>) -> Vec<String> {
    match aud {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(String::from).collect(),
        _ => Vec::new(),
    }
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// The object exists with `uid` and is not being deleted (for `grace`: not since more
/// than the grace period).
fn check_live(
    objects: &dyn Objects,
    kind: Kind,
    ns: Option<&str>,
    name: &str,
    uid: &str,
    now: i64,
    grace: bool,
) -> Result<Value, TokenError> {
    let what = format!("{kind:?}");
    let obj = objects.get(kind, ns, name).ok_or_else(|| {
        TokenError::Missing(format!("{what} ({}/{name}) has been deleted", ns.unwrap_or("")))
    })?;
    let actual = str_at(&obj, "/metadata/uid");
    if !uid.is_empty() && actual != uid {
        return Err(TokenError::Invalid(format!(
            "{what} UID ({actual}) does not match claim ({uid})"
        )));
    }
    if let Some(ts) = obj.pointer("/metadata/deletionTimestamp").and_then(Value::as_str) {
        let since = crate::time::parse_rfc3339(ts).unwrap_or(now);
        if !grace || since + DELETION_GRACE <= now {
            return Err(TokenError::Invalid(format!("{what} ({name}) is being deleted")));
        }
    }
    Ok(obj)
}

fn legacy_user(token: &str, claims: &Value, objects: &dyn Objects) -> Result<UserInfo, TokenError> {
    let c = |k: &str| str_at(claims, &format!("/kubernetes.io~1serviceaccount~1{k}"));
    let (ns, secret, sa, sa_uid) =
        (c("namespace"), c("secret.name"), c("service-account.name"), c("service-account.uid"));
    if ns.is_empty() || secret.is_empty() || sa.is_empty() {
        return Err(TokenError::Invalid("token is missing service account claims".into()));
    }
    check_live(objects, Kind::ServiceAccount, Some(ns), sa, sa_uid, 0, false)?;
    let s = check_live(objects, Kind::Secret, Some(ns), secret, "", 0, false)?;
    let stored = s.pointer("/data/token").and_then(Value::as_str).unwrap_or("");
    use base64::Engine as _;
    let stored = base64::engine::general_purpose::STANDARD.decode(stored).unwrap_or_default();
    if stored != token.as_bytes() {
        return Err(TokenError::Invalid(format!(
            "token does not match the one in Secret ({ns}/{secret})"
        )));
    }
    let mut extra = BTreeMap::new();
    extra.insert(
        "authentication.kubernetes.io/credential-id".into(),
        vec![format!("object=secret,ns={ns},name={secret},uid={}", str_at(&s, "/metadata/uid"))],
    );
    Ok(service_account_user(ns, sa, sa_uid, extra))
}

fn service_account_user(
    ns: &str,
    name: &str,
    uid: &str,
    extra: BTreeMap<String, Vec<String>>,
) -> UserInfo {
    UserInfo {
        name: format!("system:serviceaccount:{ns}:{name}"),
        uid: uid.to_string(),
        groups: vec!["system:serviceaccounts".into(), format!("system:serviceaccounts:{ns}")],
        extra,
    }
}

#[cfg(test)]
mod tests;
