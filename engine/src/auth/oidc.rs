//! OIDC / JWT issuers, upstream's JWT authenticator: from the `--oidc-*` flags or the
//! structured `--authentication-config` file (`AuthenticationConfiguration`, `jwt`
//! entries: issuer url, discoveryURL, certificateAuthority, audiences; claimMappings
//! username/groups/uid by claim and prefix or by CEL expression, extra by CEL;
//! claimValidationRules by claim + requiredValue or CEL; userValidationRules by CEL —
//! the CEL parts live in [`expressions`]).
//!
//! A token is routed by its `iss` claim to the issuer with that URL; it authenticates
//! when an allowed algorithm (`--oidc-signing-algs`, default RS256; the structured file
//! allows RS256, ES256 and ES384) signed it with a key of the issuer's JWKS, one of its
//! `aud` is an issuer audience, it has not expired (`exp` is required), `nbf` is not
//! more than the allowed skew ahead, and the required claims hold their values.
//!
//! Invariants: the key sets are fetched (discovery document, then its `jwks_uri`, over
//! HTTPS with the issuer's CA) and refreshed on the [`Remote`] thread only; serving
//! cores read the last set ([`ArcSwap`]). Before the first set arrives, the issuer's
//! tokens are refused ("not initialized"). A token naming a key the set lacks wakes a
//! fetch (at most one per [`MIN_REFETCH`]: rotated keys). A key set holds at most
//! [`MAX_KEYS`] keys.
//! A token's `jti` becomes the user's `authentication.kubernetes.io/credential-id`
//! extra (`JTI=<jti>`), as upstream.

mod expressions;

use super::UserInfo;
use super::jwt::{self, PublicKey};
use super::remote::{Call, Remote, Url};
use arc_swap::ArcSwap;
use expressions::{Mapper, Mapping as Mapped};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Most keys kept from one JWKS.
pub const MAX_KEYS: usize = 64;
/// Most issuers configured.
pub const MAX_ISSUERS: usize = 64;
/// Clock skew allowed on `nbf`.
const SKEW: i64 = 300;
/// How often key sets are fetched again once loaded, and retried until then.
const REFRESH: Duration = Duration::from_secs(300);
const RETRY: Duration = Duration::from_secs(2);
/// Least time between two fetches asked for by tokens naming an unknown key.
const MIN_REFETCH: Duration = Duration::from_secs(10);

/// A claim and the prefix its values get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub claim: String,
    pub prefix: String,
}

/// One issuer's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub url: String,
    pub discovery_url: Option<String>,
    pub ca_pem: Option<Vec<u8>>,
    pub audiences: Vec<String>,
    pub username: Mapping,
    pub groups: Option<Mapping>,
    pub uid_claim: Option<String>,
    /// Claims that must hold exactly these string values.
    pub required: Vec<(String, String)>,
    pub algorithms: Vec<String>,
    /// The compiled CEL expressions (empty for the flags).
    pub cel: Arc<Mapper>,
}

/// An issuer and its current key set.
pub struct Issuer {
    pub settings: Settings,
    keys: ArcSwap<Option<Vec<PublicKey>>>,
    tls: Arc<rustls::ClientConfig>,
    /// Woken by a token naming a key the set lacks (the issuer may have rotated keys).
    stale: tokio::sync::Notify,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer").field("url", &self.settings.url).finish_non_exhaustive()
    }
}

/// Why an issuer's token is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OidcError {
    #[error("oidc: authenticator for issuer {0:?} is not initialized")]
    NotInitialized(String),
    #[error("oidc: {0}")]
    Invalid(String),
    #[error("oidc: {0}")]
    Config(String),
}

fn invalid(m: impl Into<String>) -> OidcError {
    OidcError::Invalid(m.into())
}

/// Settings from the `--oidc-*` flags (upstream's legacy username prefix rule: claims
/// other than `email` get `ISSUER#` unless a prefix is given; `-` means none).
#[allow(clippy::too_many_arguments)]
pub fn from_flags(
    url: &str,
    client_id: &str,
    username_claim: &str,
    username_prefix: Option<&str>,
    groups_claim: Option<&str>,
    groups_prefix: Option<&str>,
    required: &[String],
    ca_pem: Option<Vec<u8>>,
    algorithms: &[String],
) -> Result<Settings, OidcError> {
    if client_id.is_empty() {
        return Err(OidcError::Config(
            "--oidc-client-id is required with --oidc-issuer-url".into(),
        ));
    }
    let prefix = match username_prefix {
        Some("-") => String::new(),
        Some(p) if !p.is_empty() => p.to_string(),
        _ if username_claim != "email" => format!("{url}#"),
        _ => String::new(),
    };
    let required = required
        .iter()
        .map(|kv| {
            kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| {
                OidcError::Config(format!("--oidc-required-claim {kv:?} is not key=value"))
            })
        })
        .collect::<Result<_, _>>()?;
    let settings = Settings {
        url: url.to_string(),
        discovery_url: None,
        ca_pem,
        audiences: vec![client_id.to_string()],
        username: Mapping { claim: username_claim.to_string(), prefix },
        groups: groups_claim.filter(|c| !c.is_empty()).map(|claim| Mapping {
            claim: claim.to_string(),
            prefix: groups_prefix.unwrap_or("").to_string(),
        }),
        uid_claim: None,
        required,
        algorithms: if algorithms.is_empty() { vec!["RS256".into()] } else { algorithms.to_vec() },
        cel: Arc::default(),
    };
    check(&settings)?;
    Ok(settings)
}

fn check(s: &Settings) -> Result<(), OidcError> {
    Url::parse(&s.url).map_err(OidcError::Config)?;
    if let Some(d) = &s.discovery_url {
        Url::parse(d).map_err(OidcError::Config)?;
    }
    if s.audiences.is_empty() {
        return Err(OidcError::Config(format!("issuer {:?}: audiences are required", s.url)));
    }
    for alg in &s.algorithms {
        if !matches!(alg.as_str(), "RS256" | "ES256" | "ES384") {
            return Err(OidcError::Config(format!("unsupported signing algorithm {alg:?}")));
        }
    }
    Ok(())
}

/// Settings of every `jwt` entry of an `AuthenticationConfiguration` (YAML or JSON).
pub fn from_config_file(text: &str) -> Result<Vec<Settings>, OidcError> {
    let cfg: Value = serde_norway::from_str(text).map_err(|e| OidcError::Config(e.to_string()))?;
    let kind = cfg.get("kind").and_then(Value::as_str);
    let version = cfg.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let known = ["v1", "v1beta1", "v1alpha1"].map(|v| format!("apiserver.config.k8s.io/{v}"));
    if kind != Some("AuthenticationConfiguration") || !known.iter().any(|k| k == version) {
        return Err(OidcError::Config(
            "expected kind AuthenticationConfiguration of apiserver.config.k8s.io/v1".into(),
        ));
    }
    let jwt = cfg.get("jwt").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    if jwt.len() > MAX_ISSUERS {
        return Err(OidcError::Config(format!("at most {MAX_ISSUERS} jwt issuers")));
    }
    let settings: Vec<Settings> =
        jwt.iter().enumerate().map(|(i, j)| jwt_entry(i, j)).collect::<Result<_, _>>()?;
    for (i, s) in settings.iter().enumerate() {
        if settings[..i].iter().any(|o| o.url == s.url) {
            return Err(OidcError::Config(format!(
                "jwt[{i}].issuer.url: Duplicate value: {:?}",
                s.url
            )));
        }
    }
    Ok(settings)
}

fn jwt_entry(i: usize, j: &Value) -> Result<Settings, OidcError> {
    let at = |p: &str| format!("jwt[{i}].{p}");
    let str_at = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    let issuer = j
        .get("issuer")
        .ok_or_else(|| OidcError::Config(format!("{}: Required value", at("issuer"))))?;
    let url = str_at(issuer, "url")
        .ok_or_else(|| OidcError::Config(format!("{}: Required value", at("issuer.url"))))?;
    let audiences: Vec<String> = issuer
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default();
    let policy = str_at(issuer, "audienceMatchPolicy").unwrap_or_default();
    if audiences.len() > 1 && policy != "MatchAny" {
        return Err(OidcError::Config(format!(
            "{}: Invalid value: {policy:?}: audienceMatchPolicy must be MatchAny for multiple audiences",
            at("issuer.audienceMatchPolicy")
        )));
    }
    let mappings = j.get("claimMappings").cloned().unwrap_or_default();
    let mut cel = Mapper::default();
    let username_path = at("claimMappings.username");
    let username = match expressions::mapping(mappings.get("username"), &username_path, true)? {
        Mapped::None => {
            return Err(expressions::required_at(
                &username_path,
                "claim or expression is required",
            ));
        }
        Mapped::Claim { claim, prefix } => Mapping { claim, prefix: prefix.unwrap_or_default() },
        Mapped::Expression(e) => {
            cel.username = Some(e);
            Mapping { claim: String::new(), prefix: String::new() }
        }
    };
    let groups =
        match expressions::mapping(mappings.get("groups"), &at("claimMappings.groups"), true)? {
            Mapped::None => None,
            Mapped::Claim { claim, prefix } => {
                Some(Mapping { claim, prefix: prefix.unwrap_or_default() })
            }
            Mapped::Expression(e) => {
                cel.groups = Some(e);
                None
            }
        };
    let uid_claim =
        match expressions::mapping(mappings.get("uid"), &at("claimMappings.uid"), false)? {
            Mapped::None => None,
            Mapped::Claim { claim, .. } => Some(claim),
            Mapped::Expression(e) => {
                cel.uid = Some(e);
                None
            }
        };
    let list = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
    let (required, claim_rules) = expressions::claim_rules(
        &list(j.get("claimValidationRules")),
        &at("claimValidationRules"),
    )?;
    cel.claim_rules = claim_rules;
    cel.extra = expressions::extra(&list(mappings.get("extra")), &at("claimMappings.extra"))?;
    cel.user_rules =
        expressions::user_rules(&list(j.get("userValidationRules")), &at("userValidationRules"))?;
    let username_src = mappings.pointer("/username/expression").and_then(Value::as_str);
    cel.check_email_verified(username_src.unwrap_or(""), &at("claimMappings.username.expression"))?;
    let settings = Settings {
        url,
        discovery_url: str_at(issuer, "discoveryURL"),
        ca_pem: str_at(issuer, "certificateAuthority").map(String::into_bytes),
        audiences,
        username,
        groups,
        uid_claim,
        required,
        algorithms: vec!["RS256".into(), "ES256".into(), "ES384".into()],
        cel: Arc::new(cel),
    };
    check(&settings).map_err(|e| OidcError::Config(format!("jwt[{i}]: {e}")))?;
    Ok(settings)
}

impl Issuer {
    pub fn new(settings: Settings) -> Result<Issuer, OidcError> {
        let tls = super::remote::tls_config(settings.ca_pem.as_deref(), None)
            .map_err(OidcError::Config)?;
        Ok(Issuer {
            settings,
            keys: ArcSwap::from_pointee(None),
            tls,
            stale: tokio::sync::Notify::new(),
        })
    }

    /// Install a key set (tests, and the refresher).
    pub fn set_keys(&self, keys: Vec<PublicKey>) {
        self.keys.store(Arc::new(Some(keys)));
    }

    /// The user of a token this issuer issued (its `iss` already matched).
    pub fn authenticate(&self, token: &str, now: i64) -> Result<UserInfo, OidcError> {
        let keys = self.keys.load();
        let Some(keys) = keys.as_ref() else {
            return Err(OidcError::NotInitialized(self.settings.url.clone()));
        };
        let header = token.split('.').next().and_then(|h| jwt::peek_claims(&format!("x.{h}.x")));
        let alg = header.as_ref().and_then(|h| h.get("alg")).and_then(Value::as_str).unwrap_or("");
        if !self.settings.algorithms.iter().any(|a| a == alg) {
            return Err(invalid(format!("signing algorithm {alg:?} is not allowed")));
        }
        let kid = header.as_ref().and_then(|h| h.get("kid")).and_then(Value::as_str);
        if kid.is_some_and(|kid| !kid.is_empty() && !keys.iter().any(|k| k.kid == kid)) {
            self.stale.notify_one();
        }
        let claims = jwt::verify(token, keys)
            .map_err(|e| invalid(format!("failed to verify signature: {e}")))?;
        self.check_claims(&claims, now)?;
        self.user(&claims)
    }

    fn check_claims(&self, claims: &Value, now: i64) -> Result<(), OidcError> {
        let s = &self.settings;
        if claims.get("iss").and_then(Value::as_str) != Some(s.url.as_str()) {
            return Err(invalid("issuer did not match"));
        }
        let auds: Vec<&str> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !auds.iter().any(|a| s.audiences.iter().any(|b| a == b)) {
            return Err(invalid(format!("expected audience in {:?} got {auds:?}", s.audiences)));
        }
        match claims.get("exp").and_then(Value::as_f64) {
            Some(exp) if (now as f64) < exp => {}
            _ => return Err(invalid("token is expired")),
        }
        if claims.get("nbf").and_then(Value::as_f64).is_some_and(|nbf| nbf > (now + SKEW) as f64) {
            return Err(invalid("current time is before the nbf (not before) time"));
        }
        for (claim, value) in &s.required {
            match claims.get(claim).and_then(Value::as_str) {
                Some(v) if v == value => {}
                Some(_) => {
                    return Err(invalid(format!("required claim {claim} value does not match")));
                }
                None => {
                    return Err(invalid(format!("required claim {claim} not present in ID token")));
                }
            }
        }
        Ok(())
    }

    /// The user the claims map to, then the claim and user validation rules.
    fn user(&self, claims: &Value) -> Result<UserInfo, OidcError> {
        let (s, cel) = (&self.settings, &*self.settings.cel);
        let name = match &cel.username {
            Some(e) => cel.username(e, claims)?,
            None => self.claim_username(claims)?,
        };
        let mut user = UserInfo { name, ..Default::default() };
        let groups_claim = s.groups.as_ref().filter(|g| claims.get(&g.claim).is_some());
        if let Some(g) = groups_claim {
            let values: Vec<&str> = match claims.get(&g.claim) {
                Some(Value::String(v)) => vec![v.as_str()],
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                None | Some(Value::Null) => Vec::new(),
                Some(_) => {
                    return Err(invalid(format!("parse groups claim {:?}", g.claim)));
                }
            };
            user.groups = values.into_iter().map(|v| format!("{}{v}", g.prefix)).collect();
        } else if let Some(e) = &cel.groups {
            user.groups = cel.groups(e, claims)?;
        }
        if let Some(uid) = &s.uid_claim {
            let value = claims.get(uid).and_then(Value::as_str);
            user.uid = value.ok_or_else(|| invalid(format!("parse uid claim {uid:?}")))?.into();
        } else if let Some(e) = &cel.uid {
            user.uid = cel.uid(e, claims)?;
        }
        if let Some(jti) = claims.get("jti").and_then(Value::as_str).filter(|j| !j.is_empty()) {
            let key = "authentication.kubernetes.io/credential-id".to_string();
            user.extra.insert(key, vec![format!("JTI={jti}")]);
        }
        cel.add_extra(claims, &mut user)?;
        cel.validate_claims(claims)?;
        cel.validate_user(&user)?;
        Ok(user)
    }

    /// The username from the username claim (and its prefix).
    fn claim_username(&self, claims: &Value) -> Result<String, OidcError> {
        let s = &self.settings;
        let claim = &s.username.claim;
        let name = claims
            .get(claim)
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("claim not present: {claim}")))?;
        if claim == "email" && claims.get("email_verified").is_some_and(|v| v != &Value::Bool(true))
        {
            return Err(invalid("email not verified"));
        }
        Ok(format!("{}{name}", s.username.prefix))
    }

    /// Fetch the discovery document and the key set it names.
    async fn fetch_keys(&self) -> Result<Vec<PublicKey>, String> {
        let s = &self.settings;
        let discovery = match &s.discovery_url {
            Some(d) => Url::parse(d)?,
            None => {
                let base = s.url.trim_end_matches('/');
                Url::parse(&format!("{base}/.well-known/openid-configuration"))?
            }
        };
        let doc = get_json(self.tls.clone(), discovery).await?;
        if doc.get("issuer").and_then(Value::as_str) != Some(s.url.as_str()) {
            return Err(format!(
                "discovery document names issuer {:?}, not {:?}",
                doc.get("issuer"),
                s.url
            ));
        }
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or("discovery document has no jwks_uri")?;
        let jwks = get_json(self.tls.clone(), Url::parse(jwks_uri)?).await?;
        let keys: Vec<PublicKey> = jwks
            .get("keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|k| k.get("use").and_then(Value::as_str).is_none_or(|u| u == "sig"))
            .filter_map(|k| PublicKey::from_jwk(k).ok())
            .take(MAX_KEYS)
            .collect();
        if keys.is_empty() {
            return Err("the key set has no usable key".into());
        }
        Ok(keys)
    }
}

async fn get_json(tls: Arc<rustls::ClientConfig>, url: Url) -> Result<Value, String> {
    let call = Call {
        method: http::Method::GET,
        url,
        headers: vec![(http::header::ACCEPT, "application/json".into())],
        body: None,
    };
    let fetched =
        tokio::time::timeout(super::remote::CALL_TIMEOUT, super::remote::fetch(tls, call));
    match fetched.await {
        Ok(Ok((200, body))) => serde_json::from_slice(&body).map_err(|e| e.to_string()),
        Ok(Ok((code, _))) => Err(format!("answered {code}")),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("timed out".into()),
    }
}

/// Keep every issuer's key set fresh from the `remote` thread.
pub fn start(issuers: &[Arc<Issuer>], remote: &Remote) {
    for issuer in issuers {
        remote.spawn(refresh(issuer.clone()));
    }
}

/// Fetch an issuer's keys forever: every [`REFRESH`] once loaded ([`RETRY`] until
/// then), sooner when a token names an unknown key.
async fn refresh(issuer: Arc<Issuer>) {
    loop {
        let fetched = tokio::time::Instant::now();
        let wait = match issuer.fetch_keys().await {
            Ok(keys) => {
                issuer.set_keys(keys);
                REFRESH
            }
            Err(e) => {
                tracing::warn!("oidc issuer {}: {e}", issuer.settings.url);
                if issuer.keys.load().is_some() { REFRESH } else { RETRY }
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = issuer.stale.notified() => {
                tokio::time::sleep_until(fetched + MIN_REFETCH.min(wait)).await;
            }
        }
    }
}

/// The issuer a token names (by its unverified `iss`), if one is configured.
pub fn route<'a>(issuers: &'a [Arc<Issuer>], token: &str) -> Option<&'a Issuer> {
    let claims = jwt::peek_claims(token)?;
    let iss = claims.get("iss").and_then(Value::as_str)?;
    issuers.iter().find(|i| i.settings.url == iss).map(|i| &**i)
}

#[cfg(test)]
mod tests;
