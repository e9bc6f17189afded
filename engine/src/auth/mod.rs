//! Authentication and authorization.
//!
//! Authenticators turn a request's credentials into a [`UserInfo`], in upstream's order:
//! the front proxy's headers (request-header authentication), the client certificate,
//! then bearer tokens (static token file, ServiceAccount tokens, bootstrap tokens, the
//! webhook); a request with no credentials is `system:anonymous` when anonymous
//! requests are enabled. Credentials that do not authenticate are always a 401, whatever
//! the anonymous setting. Impersonation then may switch the user (asking the
//! [`Authorizer`] seam, which decides whether a user may do what a request asks).

pub mod authorizer;
pub mod bootstrap;
pub mod dynamic_ca;
pub mod impersonation;
pub mod issuer;
pub mod jwt;
pub mod objects;
pub mod oidc;
pub mod remote;
pub mod requestheader;
pub mod serviceaccount;
pub mod token_file;
pub mod webhook;
pub mod x509;

pub use authorizer::{AlwaysAllow, Authorizer, Decision};

/// The user of requests without credentials, and its only group.
pub const ANONYMOUS: &str = "system:anonymous";
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// The group of every authenticated user.
pub const AUTHENTICATED: &str = "system:authenticated";

/// An authenticated user, as upstream's `user.Info`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    /// Upstream's `extra` (e.g. a ServiceAccount token's pod name and credential id).
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// Every authenticated user is also in `system:authenticated` (unless a group already
    /// says authenticated or unauthenticated, as upstream's group adder).
    pub fn with_authenticated_group(mut self) -> Self {
        if !self.groups.iter().any(|g| g == AUTHENTICATED || g == UNAUTHENTICATED) {
            self.groups.push(AUTHENTICATED.into());
        }
        self
    }

    /// The user of a request without credentials.
    pub fn anonymous() -> Self {
        UserInfo {
            name: ANONYMOUS.into(),
            groups: vec![UNAUTHENTICATED.into()],
            ..Default::default()
        }
    }
}

/// The chain of request authenticators.
#[derive(Debug, Default)]
pub struct Authenticator {
    /// The CAs client certificates are verified against (None: certificates name nobody).
    pub client_ca: Option<std::sync::Arc<dynamic_ca::DynamicCa>>,
    /// Front-proxy authentication (None: not configured).
    pub request_header: Option<requestheader::RequestHeader>,
    pub tokens: token_file::TokenFile,
    /// ServiceAccount token keys and settings (None: such tokens are not accepted).
    pub service_accounts: Option<serviceaccount::Tokens>,
    /// Whether bootstrap tokens are accepted.
    pub bootstrap_tokens: bool,
    /// OIDC / JWT issuers (`--oidc-*` or `--authentication-config`).
    pub oidc: Vec<std::sync::Arc<oidc::Issuer>>,
    /// The token webhook, asked last (None: not configured).
    pub webhook: Option<webhook::Webhook>,
    /// Whether a request without credentials is `system:anonymous`.
    pub anonymous: bool,
}

/// What the synchronous authenticators found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    User(UserInfo),
    /// A bearer token only the webhook may know: ask it.
    AskWebhook(String),
}

/// Why a request is not authenticated: the 401's message, and whether a token named an
/// object the caches did not hold (worth one more try once they settled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub message: String,
    pub missing: bool,
}

impl Refused {
    fn unauthorized() -> Refused {
        Refused { message: "Unauthorized".into(), missing: false }
    }
}

/// The bearer token of an `Authorization` header (upstream: `Bearer` in any case, then
/// the token up to the next space).
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    let mut parts = authorization?.trim().splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl Authenticator {
    /// Judge a connection's client certificate chain (leaf first) once: against the
    /// client CAs, and against the front-proxy CA with its allowed names.
    pub fn client_cert(
        &self,
        chain: &[rustls_pki_types::CertificateDer<'_>],
        now: rustls_pki_types::UnixTime,
    ) -> Option<x509::ClientCert> {
        let leaf = chain.first()?;
        let (not_after, cn) = x509::expiry_and_cn(leaf).unwrap_or((0, None));
        let verified = self.client_ca.as_ref().is_some_and(|ca| ca.load().verifies(chain, now));
        let user = verified.then(|| x509::user_from_der(leaf)).flatten();
        let front_proxy = self
            .request_header
            .as_ref()
            .is_some_and(|rh| rh.ca.load().verifies(chain, now) && rh.name_allowed(cn.as_deref()));
        Some(x509::ClientCert { verified, user, front_proxy, not_after })
    }

    /// Authenticate a request from its connection's client certificate (if any) and
    /// its headers, in upstream's order.
    pub fn authenticate(
        &self,
        cert: Option<&x509::ClientCert>,
        headers: &http::HeaderMap,
        objects: &dyn serviceaccount::Objects,
    ) -> Result<Outcome, Refused> {
        let now = crate::time::now_unix();
        let live = cert.filter(|c| c.live(now));
        if let (Some(rh), Some(c)) = (&self.request_header, live)
            && c.front_proxy
            && let Some(user) = rh.user(headers)
        {
            return Ok(Outcome::User(user.with_authenticated_group()));
        }
        if let Some(user) = live.and_then(|c| c.user.as_ref()) {
            return Ok(Outcome::User(user.clone().with_authenticated_group()));
        }
        let authorization = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let token = bearer(authorization);
        match token.map(|t| self.token_user(t, objects)) {
            Some(Ok(Some(u))) => Ok(Outcome::User(u.with_authenticated_group())),
            Some(Err(e)) => Err(e),
            Some(Ok(None)) => match (&self.webhook, token) {
                (Some(w), Some(t)) => match w.cached(t) {
                    Some(Some(u)) => Ok(Outcome::User(u.with_authenticated_group())),
                    Some(None) => Err(Refused::unauthorized()),
                    None => Ok(Outcome::AskWebhook(t.to_string())),
                },
                _ => Err(Refused::unauthorized()),
            },
            // A certificate no trusted CA signed (or expired) is a failed credential.
            None if cert.is_some_and(|c| !c.verified || !c.live(now)) || !self.anonymous => {
                Err(Refused::unauthorized())
            }
            None => Ok(Outcome::User(UserInfo::anonymous())),
        }
    }

    /// Authenticate a request, asking the webhook when only it may know the token.
    pub async fn authenticate_async(
        &self,
        cert: Option<&x509::ClientCert>,
        headers: &http::HeaderMap,
        objects: &dyn serviceaccount::Objects,
    ) -> Result<UserInfo, Refused> {
        match self.authenticate(cert, headers, objects)? {
            Outcome::User(u) => Ok(u),
            Outcome::AskWebhook(token) => {
                let webhook = self.webhook.as_ref().ok_or_else(Refused::unauthorized)?;
                let user = webhook.authenticate(&token).await.ok_or_else(Refused::unauthorized)?;
                Ok(user.with_authenticated_group())
            }
        }
    }

    /// The user of a bearer token (None: no authenticator knows it).
    pub fn token_user(
        &self,
        token: &str,
        objects: &dyn serviceaccount::Objects,
    ) -> Result<Option<UserInfo>, Refused> {
        if let Some(user) = self.tokens.lookup(token) {
            return Ok(Some(user.clone()));
        }
        if let Some(sa) = &self.service_accounts {
            match sa.authenticate(token, objects, crate::time::now_unix()) {
                Ok(Some(u)) => return Ok(Some(u)),
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!("service account token refused: {e}");
                    let missing = matches!(e, serviceaccount::TokenError::Missing(_));
                    return Err(Refused { message: "Unauthorized".into(), missing });
                }
            }
        }
        if self.bootstrap_tokens
            && let Some(u) = bootstrap::authenticate(token, objects, crate::time::now_unix())
        {
            return Ok(Some(u));
        }
        if let Some(issuer) = oidc::route(&self.oidc, token) {
            return match issuer.authenticate(token, crate::time::now_unix()) {
                Ok(u) => Ok(Some(u)),
                Err(e) => {
                    tracing::debug!("{e}");
                    Err(Refused::unauthorized())
                }
            };
        }
        Ok(None)
    }
}

/// A TokenReview's answer: the user and the audiences the token is good for.
pub type Reviewed = (UserInfo, Vec<String>);

impl Authenticator {
    /// The API's own audiences (`--api-audiences`, default the issuers).
    fn api_audiences(&self) -> &[String] {
        self.service_accounts.as_ref().map_or(&[], |t| t.audiences.as_slice())
    }

    /// Review a token for `requested` audiences (empty: the API's), as upstream's
    /// TokenReview: tokens whose authenticators know no audience (static, bootstrap,
    /// OIDC, webhook) count only when the request wants one of the API's audiences.
    /// The webhook is not asked here: [`Reviewing::AskWebhook`] says to ask it
    /// ([`Authenticator::finish_review`]).
    pub fn review(
        &self,
        token: &str,
        requested: &[String],
        objects: &dyn serviceaccount::Objects,
    ) -> Result<Reviewing, Refused> {
        let implicit = self.api_audiences();
        let wanted = if requested.is_empty() { implicit } else { requested };
        let agnostic: Vec<String> =
            implicit.iter().filter(|a| wanted.contains(a)).cloned().collect();
        let now = crate::time::now_unix();
        if !agnostic.is_empty()
            && let Some(user) = self.tokens.lookup(token)
        {
            return Ok(Reviewing::Done(Some((user.clone(), agnostic))));
        }
        if let Some(sa) = &self.service_accounts {
            match sa.authenticate_for(token, objects, now, wanted) {
                Ok(Some(found)) => return Ok(Reviewing::Done(Some(found))),
                Ok(None) => {}
                Err(e) => {
                    let missing = matches!(e, serviceaccount::TokenError::Missing(_));
                    return Err(Refused { message: e.to_string(), missing });
                }
            }
        }
        if agnostic.is_empty() {
            return Ok(Reviewing::Done(None));
        }
        if self.bootstrap_tokens
            && let Some(u) = bootstrap::authenticate(token, objects, now)
        {
            return Ok(Reviewing::Done(Some((u, agnostic))));
        }
        if let Some(issuer) = oidc::route(&self.oidc, token) {
            let user = issuer
                .authenticate(token, now)
                .map_err(|e| Refused { message: e.to_string(), missing: false })?;
            return Ok(Reviewing::Done(Some((user, agnostic))));
        }
        match &self.webhook {
            Some(_) => Ok(Reviewing::AskWebhook(agnostic)),
            None => Ok(Reviewing::Done(None)),
        }
    }

    /// Finish a review: ask the token webhook (its cache first, then a call, as a
    /// request's authentication does) when only it may know the token.
    pub async fn finish_review(&self, token: &str, reviewing: Reviewing) -> Option<Reviewed> {
        match (reviewing, &self.webhook) {
            (Reviewing::Done(r), _) => r,
            (Reviewing::AskWebhook(agnostic), Some(w)) => {
                w.authenticate(token).await.map(|u| (u, agnostic))
            }
            (Reviewing::AskWebhook(_), None) => None,
        }
    }
}

/// How far [`Authenticator::review`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reviewing {
    /// The answer (None: no authenticator knows the token).
    Done(Option<Reviewed>),
    /// Only the token webhook may know the token: ask it, for these audiences.
    AskWebhook(Vec<String>),
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoObjects;
    impl serviceaccount::Objects for NoObjects {
        fn get(
            &self,
            _: serviceaccount::Kind,
            _: Option<&str>,
            _: &str,
        ) -> Option<serde_json::Value> {
            None
        }
    }

    fn with_token(anonymous: bool) -> Authenticator {
        let mut a = Authenticator { anonymous, ..Default::default() };
        a.tokens.insert("good".to_string(), UserInfo { name: "tok".into(), ..Default::default() });
        a
    }

    fn user(outcome: Result<Outcome, Refused>) -> UserInfo {
        match outcome {
            Ok(Outcome::User(u)) => u,
            other => panic!("not a user: {other:?}"),
        }
    }

    fn auth_header(v: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn no_credentials_are_anonymous_only_when_enabled_and_bad_ones_never() {
        let none = http::HeaderMap::new();
        let u = user(with_token(true).authenticate(None, &none, &NoObjects));
        assert_eq!(
            (u.name.as_str(), u.groups.as_slice()),
            (ANONYMOUS, &[UNAUTHENTICATED.to_string()][..])
        );
        assert!(with_token(false).authenticate(None, &none, &NoObjects).is_err());
        let bad = auth_header("Bearer nope");
        assert!(with_token(true).authenticate(None, &bad, &NoObjects).is_err());
        let untrusted = x509::ClientCert { not_after: i64::MAX, ..Default::default() };
        assert!(with_token(true).authenticate(Some(&untrusted), &none, &NoObjects).is_err());
        let good = auth_header("bearer good");
        let u = user(with_token(false).authenticate(Some(&untrusted), &good, &NoObjects));
        assert_eq!(u.groups, [AUTHENTICATED]);
    }

    #[test]
    fn expired_certificates_name_nobody() {
        let carol = UserInfo { name: "c".into(), ..Default::default() };
        let cert = x509::ClientCert {
            verified: true,
            user: Some(carol),
            front_proxy: false,
            not_after: 0,
        };
        let none = http::HeaderMap::new();
        assert!(with_token(true).authenticate(Some(&cert), &none, &NoObjects).is_err());
        let live = x509::ClientCert { not_after: i64::MAX, ..cert };
        assert_eq!(user(with_token(true).authenticate(Some(&live), &none, &NoObjects)).name, "c");
    }

    #[test]
    fn bearer_tokens_parse_as_upstream() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("  bEaReR abc extra")), Some("abc"));
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(None), None);
    }
}
