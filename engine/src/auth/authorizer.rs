//! The authorization seam: every resource and non-resource request passes through one
//! `Authorizer`. The server's is `crate::authz::Chain` (`--authorization-mode`);
//! AlwaysAllow here is for tests and tools that need no policy.

use super::UserInfo;
use crate::request::RequestInfo;

/// An authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(String),
}

pub trait Authorizer: Send + Sync {
    fn authorize(&self, user: &UserInfo, request: &RequestInfo) -> Decision;
}

/// Allows everything (upstream's `--authorization-mode=AlwaysAllow`).
#[derive(Debug, Default)]
pub struct AlwaysAllow;

impl Authorizer for AlwaysAllow {
    fn authorize(&self, _user: &UserInfo, _request: &RequestInfo) -> Decision {
        Decision::Allow
    }
}
