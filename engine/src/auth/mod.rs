//! Authentication and authorization.
//!
//! Authenticators turn a request's credentials into a [`UserInfo`]; the [`Authorizer`]
//! seam decides whether that user may do what the request asks (AlwaysAllow for now; RBAC
//! and Node authorizers plug in here later).

pub mod authorizer;
pub mod token_file;
pub mod x509;

pub use authorizer::{AlwaysAllow, Authorizer, Decision};

/// An authenticated user, as upstream's `user.Info`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
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

/// The chain of request authenticators: client certificate first, then bearer token.
#[derive(Debug, Default)]
pub struct Authenticator {
    pub tokens: token_file::TokenFile,
}

impl Authenticator {
    /// Authenticate from the connection's verified client certificate user (if any) and
    /// the `Authorization` header. `Err` is a message for a 401.
    pub fn authenticate(
        &self,
        cert_user: Option<&UserInfo>,
        authorization: Option<&str>,
    ) -> Result<UserInfo, &'static str> {
        if let Some(header) = authorization {
            let token = header
                .strip_prefix("Bearer ")
                .or_else(|| header.strip_prefix("bearer "))
                .map(str::trim)
                .filter(|t| !t.is_empty());
            if let Some(token) = token {
                if let Some(user) = self.tokens.lookup(token) {
                    return Ok(user.clone().with_authenticated_group());
                }
                if cert_user.is_none() {
                    return Err("Unauthorized");
                }
            }
        }
        match cert_user {
            Some(u) => Ok(u.clone().with_authenticated_group()),
            None => Err("Unauthorized"),
        }
    }
}
