//! Authentication and authorization.
//!
//! Authenticators turn a request's credentials into a [`UserInfo`]; the [`Authorizer`]
//! seam decides whether that user may do what the request asks (AlwaysAllow for now; RBAC
//! and Node authorizers plug in here later).

pub mod authorizer;
pub mod issuer;
pub mod jwt;
pub mod objects;
pub mod serviceaccount;
pub mod token_file;
pub mod x509;

pub use authorizer::{AlwaysAllow, Authorizer, Decision};

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
    /// Every authenticated user is also in `system:authenticated`.
    pub fn with_authenticated_group(mut self) -> Self {
        if !self.groups.iter().any(|g| g == "system:authenticated") {
            self.groups.push("system:authenticated".into());
        }
        self
    }
}

/// The chain of request authenticators: bearer tokens (static, then ServiceAccount
/// tokens), then the client certificate.
#[derive(Debug, Default)]
pub struct Authenticator {
    pub tokens: token_file::TokenFile,
    /// ServiceAccount token keys and settings (None: such tokens are not accepted).
    pub service_accounts: Option<serviceaccount::Tokens>,
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

impl Authenticator {
    /// Authenticate from the connection's verified client certificate user (if any) and
    /// the `Authorization` header, in upstream's order: the client certificate first,
    /// then bearer tokens.
    pub fn authenticate(
        &self,
        cert_user: Option<&UserInfo>,
        authorization: Option<&str>,
        objects: &dyn serviceaccount::Objects,
    ) -> Result<UserInfo, Refused> {
        if let Some(u) = cert_user {
            return Ok(u.clone().with_authenticated_group());
        }
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        match token.map(|t| self.token_user(t, objects)) {
            Some(Ok(Some(u))) => Ok(u.with_authenticated_group()),
            Some(Err(e)) => Err(e),
            Some(Ok(None)) | None => Err(Refused::unauthorized()),
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
        let Some(sa) = &self.service_accounts else { return Ok(None) };
        match sa.authenticate(token, objects, crate::time::now_unix()) {
            Ok(u) => Ok(u),
            Err(e) => {
                tracing::debug!("service account token refused: {e}");
                let missing = matches!(e, serviceaccount::TokenError::Missing(_));
                Err(Refused { message: "Unauthorized".into(), missing })
            }
        }
    }
}
