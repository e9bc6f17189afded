//! Authorization as upstream's authorizer chain: each authorizer in order may allow,
//! deny or have no opinion; the first allow or deny decides, members of `system:masters`
//! are always allowed (upstream's privileged group), and a request nobody allowed is
//! refused with every authorizer's reason (or answered 500 when one of them failed).
//! The modes: AlwaysAllow, AlwaysDeny, RBAC (`rbac`, a policy snapshot kept current from
//! the watch caches by `policy`), Node (`node`: a graph of what each node may reach,
//! `node_graph`, kept current from the watch caches' events by `node_follow` with the
//! edges `node_refs` reads from each changed object), Webhook (`webhook`:
//! SubjectAccessReviews to a server, cached; the request path awaits it through
//! [`Chain::authorize_request`], the synchronous [`Chain::decide`] uses only its cached
//! answers). `setup` builds the chain from `--authorization-mode` or from the
//! `--authorization-config` file (`config` reads and checks it, `reload` swaps in a
//! changed one). `review` answers the SubjectAccessReview family from the same chain.

pub mod attributes;
pub mod bootstrap;
pub mod config;
pub mod covers;
pub mod escalation;
pub mod node;
pub mod node_follow;
pub mod node_graph;
pub mod node_refs;
pub mod policy;
pub mod rbac;
pub mod reload;
pub mod review;
pub mod rules;
pub mod setup;
pub mod webhook;

use crate::auth::{Authorizer, Decision, UserInfo};
use crate::request::RequestInfo;
use arc_swap::ArcSwap;
pub use attributes::Attributes;
use std::sync::Arc;
use webhook::Outcome;

/// One `--authorization-mode` entry (an authorizer `type` of `--authorization-config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    AlwaysAllow,
    AlwaysDeny,
    Rbac,
    Node,
    Webhook,
}

impl Mode {
    /// The mode an authorizer `type` names (the flag's spelling).
    pub fn of_type(t: &str) -> Option<Mode> {
        match t {
            "AlwaysAllow" => Some(Mode::AlwaysAllow),
            "AlwaysDeny" => Some(Mode::AlwaysDeny),
            "RBAC" => Some(Mode::Rbac),
            "Node" => Some(Mode::Node),
            "Webhook" => Some(Mode::Webhook),
            _ => None,
        }
    }

    /// The mode's `type` as upstream spells it.
    pub fn type_name(self) -> &'static str {
        match self {
            Mode::AlwaysAllow => "AlwaysAllow",
            Mode::AlwaysDeny => "AlwaysDeny",
            Mode::Rbac => "RBAC",
            Mode::Node => "Node",
            Mode::Webhook => "Webhook",
        }
    }

    /// Parse the flag's comma-separated list as upstream validates it.
    pub fn parse_list(s: &str) -> Result<Vec<Mode>, String> {
        let mut out = Vec::new();
        for m in s.split(',').map(str::trim) {
            let mode = match (Mode::of_type(m), m) {
                (Some(mode), _) => mode,
                (None, "ABAC") => {
                    return Err(format!("authorization-mode {m:?} is not supported by kapi"));
                }
                (None, other) => {
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

/// One authorizer of the chain: a mode decided in memory, or a webhook.
#[derive(Debug, Clone)]
pub enum Entry {
    Local(Mode),
    Webhook(Arc<webhook::Webhook>),
}

/// The configured authorizers, in order. The list can be swapped while serving (the
/// `--authorization-config` reload); the modes started with (`modes`) stay, as the
/// Node graph and RBAC policy are kept current only for them.
pub struct Chain {
    modes: Vec<Mode>,
    entries: ArcSwap<Vec<Entry>>,
    /// The RBAC policy snapshot (`policy::start` keeps it current).
    pub policy: Arc<ArcSwap<rbac::Policy>>,
    /// The Node authorizer (its graph is followed once the app exists, in Node mode).
    pub graph: Arc<node::Graph>,
}

/// The chain's walk: the first allow or deny ends it; reasons and errors gather.
#[derive(Default)]
struct Walk {
    reasons: Vec<String>,
    errors: Vec<String>,
}

impl Walk {
    /// Take one authorizer's outcome; Some when it decides. A deny that came with an
    /// error is that error (upstream answers 500 then); an allow wins over errors.
    fn take(&mut self, out: Outcome) -> Option<Result<Decision, String>> {
        if !out.reason.is_empty() {
            self.reasons.push(out.reason.clone());
        }
        if let Some(e) = &out.error {
            self.errors.push(e.clone());
        }
        match out.verdict {
            Some(true) => Some(Ok(Decision::Allow)),
            Some(false) => Some(out.error.map_or(Ok(Decision::Deny(out.reason)), Err)),
            None => None,
        }
    }

    fn end(self) -> Result<Decision, String> {
        if !self.errors.is_empty() {
            return Err(self.errors.join("; "));
        }
        Ok(Decision::Deny(self.reasons.join("\n")))
    }
}

impl Chain {
    /// A chain of `modes` (a Webhook mode has no opinion until [`Chain::set_entries`]
    /// gives it its webhook).
    pub fn new(modes: Vec<Mode>) -> Chain {
        let entries = modes.iter().map(|m| Entry::Local(*m)).collect();
        Chain {
            modes,
            entries: ArcSwap::from_pointee(entries),
            policy: Arc::new(ArcSwap::from_pointee(rbac::Policy::default())),
            graph: Arc::new(node::Graph::default()),
        }
    }

    /// The modes the chain started with.
    pub fn modes(&self) -> &[Mode] {
        &self.modes
    }

    /// Whether RBAC is one of the modes (its policy must be kept current).
    pub fn uses_rbac(&self) -> bool {
        self.modes.contains(&Mode::Rbac)
    }

    /// The authorizers now, in order.
    pub fn entries(&self) -> Arc<Vec<Entry>> {
        self.entries.load_full()
    }

    /// Replace the authorizers (every request after this sees the new list).
    pub fn set_entries(&self, entries: Vec<Entry>) {
        self.entries.store(Arc::new(entries));
    }

    /// The chain's decision: Allow, or Deny with the reasons of the modes that had none.
    /// Webhooks answer only from their caches here; an error is a deny.
    pub fn decide(&self, a: &Attributes<'_>) -> Decision {
        match self.walk_cached(a, false) {
            (true, _) => Decision::Allow,
            (false, why) => Decision::Deny(why),
        }
    }

    /// [`Chain::decide`] with its reason: allowed and the allowing authorizer's reason
    /// (RBAC names the binding; the privileged group and AlwaysAllow give none), or
    /// refused and the reasons of the authorizers that had no opinion.
    pub fn explain(&self, a: &Attributes<'_>) -> (bool, String) {
        self.walk_cached(a, true)
    }

    /// The synchronous walk; `explain`: with an allow's reason (costs a copy of it).
    fn walk_cached(&self, a: &Attributes<'_>, explain: bool) -> (bool, String) {
        if is_privileged(a) {
            return (true, String::new());
        }
        let mut walk = Walk::default();
        for entry in self.entries.load().iter() {
            let out = match entry {
                Entry::Webhook(w) => w.cached_outcome(a),
                Entry::Local(mode) => self.local(*mode, a, explain),
            };
            if out.verdict == Some(true) {
                return (true, out.reason);
            }
            if let Some(d) = walk.take(out) {
                let why = match d {
                    Ok(Decision::Deny(why)) | Err(why) => why,
                    Ok(Decision::Allow) => String::new(),
                };
                return (false, why);
            }
        }
        (false, walk.reasons.join("\n"))
    }

    /// The request path's decision: as [`Chain::decide`], webhooks asked when their
    /// caches have no answer. Err when no authorizer allowed and one failed (upstream
    /// answers 500 then).
    pub async fn authorize_request(
        &self,
        app: &crate::app::App,
        a: &Attributes<'_>,
    ) -> Result<Decision, String> {
        self.walk_request(app, a, false).await.map(|(d, _)| d)
    }

    /// [`Chain::authorize_request`] with an allow's reason (RBAC names the binding; empty
    /// for the privileged group, AlwaysAllow and webhooks that gave none), for the audit
    /// annotation and a SubjectAccessReview's `status.reason`. Costs a copy of the reason.
    pub async fn authorize_request_explained(
        &self,
        app: &crate::app::App,
        a: &Attributes<'_>,
    ) -> Result<(Decision, String), String> {
        self.walk_request(app, a, true).await
    }

    async fn walk_request(
        &self,
        app: &crate::app::App,
        a: &Attributes<'_>,
        explain: bool,
    ) -> Result<(Decision, String), String> {
        if is_privileged(a) {
            return Ok((Decision::Allow, String::new()));
        }
        let entries = self.entries.load_full();
        let mut walk = Walk::default();
        for entry in entries.iter() {
            let out = match (entry, app.aggregator()) {
                (Entry::Webhook(w), Some(client)) => w.decide(client, a).await,
                (Entry::Webhook(w), None) => w.cached_outcome(a),
                (Entry::Local(mode), _) => self.local(*mode, a, explain),
            };
            if out.verdict == Some(true) {
                let why = if explain { out.reason } else { String::new() };
                return Ok((Decision::Allow, why));
            }
            if let Some(d) = walk.take(out) {
                return d.map(|d| (d, String::new()));
            }
        }
        walk.end().map(|d| (d, String::new()))
    }

    /// The outcome of a mode decided in memory (`explain`: with an allow's reason).
    fn local(&self, mode: Mode, a: &Attributes<'_>, explain: bool) -> Outcome {
        let (verdict, reason) = match mode {
            Mode::AlwaysAllow => (Some(true), String::new()),
            Mode::AlwaysDeny => (None, "Everything is forbidden.".to_string()),
            Mode::Rbac if explain => match self.policy.load().explain(a) {
                Ok(why) => (Some(true), why.to_string()),
                Err(why) => (None, why),
            },
            Mode::Rbac => match self.policy.load().authorize(a) {
                Ok(()) => (Some(true), String::new()),
                Err(why) => (None, why),
            },
            Mode::Node => self.graph.authorize(a, &self.policy.load()),
            Mode::Webhook => (None, String::new()),
        };
        Outcome { verdict, reason, error: None }
    }
}

fn is_privileged(a: &Attributes<'_>) -> bool {
    a.user.groups.iter().any(|g| g == PRIVILEGED_GROUP)
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
    fn explain_gives_the_allowing_authorizers_reason_and_decide_none() {
        use serde_json::json;
        let chain = Chain::new(vec![Mode::Rbac]);
        let objects = rbac::Objects {
            cluster_roles: vec![json!({"metadata": {"name": "reader"},
                "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]})],
            cluster_role_bindings: vec![json!({"metadata": {"name": "readers"},
                "roleRef": {"kind": "ClusterRole", "name": "reader"},
                "subjects": [{"kind": "User", "name": "bob"}]})],
            ..Default::default()
        };
        chain.policy.store(Arc::new(rbac::Policy::build(&objects, 1)));
        let info = RequestInfo {
            is_resource: true,
            verb: "get".into(),
            resource: "pods".into(),
            ..Default::default()
        };
        let bob = UserInfo { name: "bob".into(), ..Default::default() };
        let why = r#"RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole "reader" to User "bob""#;
        assert_eq!(chain.explain(&Attributes::of(&bob, &info)), (true, why.to_string()));
        assert_eq!(chain.decide(&Attributes::of(&bob, &info)), Decision::Allow);
        let eve = UserInfo { name: "eve".into(), ..Default::default() };
        assert_eq!(chain.explain(&Attributes::of(&eve, &info)), (false, String::new()));
        let admin = UserInfo { groups: vec![PRIVILEGED_GROUP.into()], ..Default::default() };
        assert_eq!(chain.explain(&Attributes::of(&admin, &info)), (true, String::new()));
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
