//! Authorization as upstream's `--authorization-mode` chain: each mode in order may allow,
//! deny or have no opinion; the first allow or deny decides, members of `system:masters`
//! are always allowed (upstream's privileged group), and a request nobody allowed is
//! refused with every mode's reason. The modes: AlwaysAllow, AlwaysDeny, RBAC (`rbac`,
//! a policy snapshot kept current from the watch caches by `policy`), Node (`node`: a
//! graph of what each node may reach, `node_graph`, kept current from the watch caches'
//! events by `node_follow` with the edges `node_refs` reads from each changed object),
//! Webhook (`webhook`: SubjectAccessReviews to a server, cached; the request path awaits
//! it through [`Chain::authorize_request`], the synchronous [`Chain::decide`] uses only its
//! cached answers).
//! `review` answers the SubjectAccessReview family from the same chain.

pub mod attributes;
pub mod bootstrap;
pub mod covers;
pub mod escalation;
pub mod node;
pub mod node_follow;
pub mod node_graph;
pub mod node_refs;
pub mod policy;
pub mod rbac;
pub mod review;
pub mod rules;
pub mod webhook;

use crate::auth::{Authorizer, Decision, UserInfo};
use crate::request::RequestInfo;
use arc_swap::ArcSwap;
pub use attributes::Attributes;
use std::sync::Arc;

/// One `--authorization-mode` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    AlwaysAllow,
    AlwaysDeny,
    Rbac,
    Node,
    Webhook,
}

impl Mode {
    /// Parse the flag's comma-separated list as upstream validates it.
    pub fn parse_list(s: &str) -> Result<Vec<Mode>, String> {
        let mut out = Vec::new();
        for m in s.split(',').map(str::trim) {
            let mode = match m {
                "AlwaysAllow" => Mode::AlwaysAllow,
                "AlwaysDeny" => Mode::AlwaysDeny,
                "RBAC" => Mode::Rbac,
                "Node" => Mode::Node,
                "Webhook" => Mode::Webhook,
                "ABAC" => {
                    return Err(format!("authorization-mode {m:?} is not supported by kapi"));
                }
                other => {
                    return Err(format!(
                        "authorization-mode {other:?} is not a valid mode (AlwaysAllow, AlwaysDeny, Node, RBAC, Webhook)"
                    ));
                }
            };
            if out.contains(&mode) {
                return Err(format!("authorization-mode {m:?} has mode specified more than once"));
            }
            out.push(mode);
        }
        if out.is_empty() {
            return Err("at least one authorization-mode must be passed".into());
        }
        Ok(out)
    }
}

/// The group whose members every request is allowed to (upstream's
/// `user.SystemPrivilegedGroup`).
pub const PRIVILEGED_GROUP: &str = "system:masters";

/// The configured authorizers, in order.
pub struct Chain {
    modes: Vec<Mode>,
    /// The RBAC policy snapshot (`policy::start` keeps it current).
    pub policy: Arc<ArcSwap<rbac::Policy>>,
    /// The Node authorizer (its graph is followed once the app exists, in Node mode).
    pub graph: Arc<node::Graph>,
    /// The Webhook mode's server and cache.
    pub webhook: Option<Arc<webhook::Webhook>>,
}

/// The chain's walk: the first allow or deny ends it; reasons and errors gather.
#[derive(Default)]
struct Walk {
    reasons: Vec<String>,
    errors: Vec<String>,
}

impl Walk {
    /// Take one mode's verdict; Some when it decides.
    fn take(&mut self, verdict: Option<bool>, reason: String) -> Option<Decision> {
        if !reason.is_empty() {
            self.reasons.push(reason.clone());
        }
        verdict.map(|allowed| if allowed { Decision::Allow } else { Decision::Deny(reason) })
    }

    fn end(self) -> Decision {
        Decision::Deny(self.reasons.join("\n"))
    }
}

impl Chain {
    pub fn new(modes: Vec<Mode>) -> Chain {
        Chain {
            modes,
            policy: Arc::new(ArcSwap::from_pointee(rbac::Policy::default())),
            graph: Arc::new(node::Graph::default()),
            webhook: None,
        }
    }

    pub fn modes(&self) -> &[Mode] {
        &self.modes
    }

    /// Whether RBAC is one of the modes (its policy must be kept current).
    pub fn uses_rbac(&self) -> bool {
        self.modes.contains(&Mode::Rbac)
    }

    /// The chain's decision: Allow, or Deny with the reasons of the modes that had none.
    /// The Webhook mode answers only from its cache here.
    pub fn decide(&self, a: &Attributes<'_>) -> Decision {
        if is_privileged(a) {
            return Decision::Allow;
        }
        let mut walk = Walk::default();
        for mode in &self.modes {
            let (verdict, reason) = match mode {
                Mode::Webhook => self
                    .webhook
                    .as_ref()
                    .and_then(|w| w.cached(a))
                    .map_or((None, String::new()), verdict_of),
                other => self.local(*other, a),
            };
            if let Some(d) = walk.take(verdict, reason) {
                return d;
            }
        }
        walk.end()
    }

    /// The request path's decision: as [`Chain::decide`], the Webhook mode asked when
    /// its cache has no answer. Err when no mode allowed and a webhook call failed
    /// (upstream answers 500 then).
    pub async fn authorize_request(
        &self,
        app: &crate::app::App,
        a: &Attributes<'_>,
    ) -> Result<Decision, String> {
        if is_privileged(a) {
            return Ok(Decision::Allow);
        }
        let mut walk = Walk::default();
        for mode in &self.modes {
            let (verdict, reason) = match (mode, &self.webhook, app.aggregator()) {
                (Mode::Webhook, Some(w), Some(client)) => match w.authorize(client, a).await {
                    Ok(answer) => verdict_of(answer),
                    Err(e) => {
                        walk.errors.push(e);
                        (None, String::new())
                    }
                },
                (Mode::Webhook, ..) => (None, String::new()),
                (other, ..) => self.local(*other, a),
            };
            if let Some(d) = walk.take(verdict, reason) {
                return Ok(d);
            }
        }
        if !walk.errors.is_empty() {
            return Err(walk.errors.join("; "));
        }
        Ok(walk.end())
    }

    /// The verdict of a mode decided in memory.
    fn local(&self, mode: Mode, a: &Attributes<'_>) -> node::Verdict {
        match mode {
            Mode::AlwaysAllow => (Some(true), String::new()),
            Mode::AlwaysDeny => (None, "Everything is forbidden.".to_string()),
            Mode::Rbac => match self.policy.load().authorize(a) {
                Ok(()) => (Some(true), String::new()),
                Err(why) => (None, why),
            },
            Mode::Node => self.graph.authorize(a, &self.policy.load()),
            Mode::Webhook => (None, String::new()),
        }
    }
}

fn is_privileged(a: &Attributes<'_>) -> bool {
    a.user.groups.iter().any(|g| g == PRIVILEGED_GROUP)
}

fn verdict_of(answer: webhook::Answer) -> node::Verdict {
    match answer {
        webhook::Answer::Allow => (Some(true), String::new()),
        webhook::Answer::Deny(r) => (Some(false), r),
        webhook::Answer::NoOpinion(r) => (None, r),
    }
}

impl Authorizer for Chain {
    fn authorize(&self, user: &UserInfo, request: &RequestInfo) -> Decision {
        self.decide(&Attributes::of(user, request))
    }
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain").field("modes", &self.modes).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_upstream_validates_them() {
        assert_eq!(Mode::parse_list("Node,RBAC"), Ok(vec![Mode::Node, Mode::Rbac]));
        assert!(Mode::parse_list("RBAC,RBAC").unwrap_err().contains("more than once"));
        assert!(Mode::parse_list("Bogus").is_err());
    }

    #[test]
    fn masters_are_always_allowed_and_always_deny_says_why() {
        let chain = Chain::new(vec![Mode::AlwaysDeny]);
        let info = RequestInfo { is_resource: true, verb: "get".into(), ..Default::default() };
        let admin = UserInfo {
            name: "a".into(),
            groups: vec![PRIVILEGED_GROUP.into()],
            ..Default::default()
        };
        assert_eq!(chain.authorize(&admin, &info), Decision::Allow);
        let bob = UserInfo { name: "bob".into(), ..Default::default() };
        assert_eq!(chain.authorize(&bob, &info), Decision::Deny("Everything is forbidden.".into()));
    }
}
