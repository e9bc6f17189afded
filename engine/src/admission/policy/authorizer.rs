//! The `authorizer` variable of policy expressions, answered by the server's authorizer
//! chain ([`crate::authz::Chain::explain`], synchronous; a decision's `reason()` is the
//! deciding authorizer's, an RBAC allow naming its binding): the request's user asks, or a
//! ServiceAccount when the expression says `authorizer.serviceAccount(ns, name)`.
//! `authorizer.requestResource` is the admitted request's group, resource, subresource,
//! namespace and name.
//!
//! Webhook authorizers answer here only from their caches (an uncached question has no
//! opinion, so the chain goes on and, if nobody allows, denies): evaluation cannot wait
//! on the network. The server's own writes (no user) ask as upstream's loopback client,
//! `system:apiserver` in `system:masters`. A resource question is about API version `*`,
//! as upstream's library asks it.

use crate::admission::Attributes;
use crate::auth::UserInfo;
use crate::authz::{Attributes as AuthzAttributes, Chain};
use kapi_codec::cel::authorizer::{Authorizer, Context, Decision, Question, Resource, User};

/// Upstream's loopback identity.
const LOOPBACK_USER: &str = "system:apiserver";

/// The chain as the CEL library's authorizer.
pub struct ChainAuthorizer<'a>(pub &'a Chain);

impl Authorizer for ChainAuthorizer<'_> {
    fn decide(&self, user: &User, question: &Question) -> Decision {
        let user = UserInfo {
            name: user.name.clone(),
            uid: user.uid.clone(),
            groups: user.groups.clone(),
            extra: user.extra.clone(),
        };
        let attrs = match question {
            Question::Path { path, verb } => AuthzAttributes {
                user: &user,
                verb,
                resource_request: false,
                path,
                group: "",
                version: "",
                namespace: "",
                resource: "",
                subresource: "",
                name: "",
                field_selector: "",
            },
            Question::Resource { resource: r, verb } => AuthzAttributes {
                user: &user,
                verb,
                resource_request: true,
                path: "",
                group: &r.group,
                version: "*",
                namespace: &r.namespace,
                resource: &r.resource,
                subresource: &r.subresource,
                name: &r.name,
                field_selector: &r.field_selector,
            },
        };
        let (allowed, reason) = self.0.explain(&attrs);
        Decision { allowed, reason, error: None }
    }
}

/// The request's user as the library sees it.
fn user_of(a: &Attributes<'_>) -> User {
    match a.user() {
        Some(u) => User {
            name: u.name.clone(),
            uid: u.uid.clone(),
            groups: u.groups.clone(),
            extra: u.extra.clone(),
        },
        None => User {
            name: LOOPBACK_USER.into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
            ..User::default()
        },
    }
}

/// What `authorizer` is bound to for the request `a`.
pub fn context<'c>(a: &Attributes<'_>, chain: &'c ChainAuthorizer<'c>) -> Context<'c> {
    let rt = a.rt();
    Context {
        authorizer: chain,
        user: user_of(a),
        request_resource: Some(Resource {
            group: rt.group.to_string(),
            resource: rt.plural.to_string(),
            subresource: a.subresource().unwrap_or("").to_string(),
            namespace: a.namespace().to_string(),
            name: a.name.to_string(),
            ..Resource::default()
        }),
    }
}
