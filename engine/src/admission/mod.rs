//! Admission: one pipeline every write passes, as upstream's admission chain.
//!
//! A write (create, update, patch, delete, a subresource write; connect where a plugin
//! asks for it) builds one [`Attributes`] and runs the [`Chain`] twice: first every
//! mutating plugin in order ([`Chain::admit`], before the type's strategy prepares and
//! validates the object), then every validating plugin in order ([`Chain::validate`],
//! after the strategy's validation, just before the store). A dry run runs both.
//!
//! Invariants:
//! - Each plugin is one small type behind [`Plugin`], built in one place
//!   (`plugins.rs`: upstream's names, order and default set; `--enable-admission-plugins`
//!   and `--disable-admission-plugins`).
//! - The first plugin to refuse ends the chain; its error is the answer.
//! - A plugin that does not handle a request costs one `handles` call; no allocation.
//! - For a delete, the object handed to a plugin is the object being deleted, and
//!   `Attributes::old` is the same object (upstream passes it as the old object).
//! - The mutating phase has at most one reinvocation round (`rounds`): when a
//!   reinvocable plugin changed the object, the whole mutating chain runs once more.

mod cached;
mod certificates;
mod default_class;
mod default_ingress_class;
mod default_storage_class;
mod lifecycle;
mod limitranger;
pub mod lister;
mod node_restriction;
mod node_taint;
mod plugins;
mod pod_topology;
pub mod podsecurity;
pub mod policy;
mod priority;
mod pvc_resize;
pub mod quota;
pub mod resources;
mod rounds;
mod runtime_class;
mod service_account;
mod storage_protection;
mod tolerations;
mod webhook;

use crate::rest::Scope;
use crate::status::ApiError;
use serde_json::Value;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;

pub use lifecycle::IMMORTAL;
pub use plugins::{DEFAULT_ON, ORDER};
pub use tolerations::DEFAULT_TOLERATION_SECONDS;

/// What plugins are built with: the flags that configure them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// `--default-not-ready-toleration-seconds` (DefaultTolerationSeconds).
    pub not_ready_toleration_seconds: i64,
    /// `--default-unreachable-toleration-seconds` (DefaultTolerationSeconds).
    pub unreachable_toleration_seconds: i64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            not_ready_toleration_seconds: DEFAULT_TOLERATION_SECONDS,
            unreachable_toleration_seconds: DEFAULT_TOLERATION_SECONDS,
        }
    }
}

/// Most `Warning` headers (and audit annotations) one request collects from plugins.
const MAX_NOTES: usize = 64;

/// What the plugins of one request said besides their verdicts: its `Warning` headers
/// and audit annotations, collected across the chain's phases and a write's retries
/// (duplicates dropped, at most [`MAX_NOTES`] of each), taken by the REST layer into
/// the answer and by the handler into the audit event.
#[derive(Debug, Default)]
pub struct Sink {
    warnings: RefCell<Vec<String>>,
    annotations: RefCell<Vec<(String, String)>>,
}

impl Sink {
    /// Move what `a`'s plugins added so far into the sink.
    pub fn drain(&self, a: &Attributes<'_>) {
        for m in a.take_warnings() {
            self.warn(m);
        }
        for (k, v) in a.take_annotations() {
            self.annotate(k, v);
        }
    }

    /// Keep a warning (once; at most [`MAX_NOTES`]).
    pub fn warn(&self, message: String) {
        let mut w = self.warnings.borrow_mut();
        if w.len() < MAX_NOTES && !w.contains(&message) {
            w.push(message);
        }
    }

    /// Keep an audit annotation (a later value of a key replaces the earlier one; at
    /// most [`MAX_NOTES`] keys).
    pub fn annotate(&self, key: String, value: String) {
        let mut n = self.annotations.borrow_mut();
        match n.iter().position(|(k, _)| *k == key) {
            Some(at) => n[at].1 = value,
            None if n.len() < MAX_NOTES => n.push((key, value)),
            None => {}
        }
    }

    /// The warnings collected (taken).
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut self.warnings.borrow_mut())
    }

    /// The audit annotations collected (taken).
    pub fn take_annotations(&self) -> Vec<(String, String)> {
        std::mem::take(&mut self.annotations.borrow_mut())
    }
}

/// The audit annotations of a request's admission, handed from the REST layer to the
/// handler's audit event in the response's extensions.
#[derive(Debug, Clone, Default)]
pub struct AuditAnnotations(pub Vec<(String, String)>);

/// What a write does, in upstream's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    /// Upstream's name (`CREATE`, ...), as webhooks and policies see it.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

/// One write as the plugins see it.
pub struct Attributes<'a> {
    pub scope: &'a Scope<'a>,
    pub operation: Operation,
    /// The object's name (empty while a create has only `generateName`).
    pub name: &'a str,
    /// The object before the write (update, patch, delete).
    pub old: Option<&'a Value>,
    pub dry_run: bool,
    /// `Warning` headers plugins add (PodSecurity's warn mode, policies' Warn action).
    warnings: RefCell<Vec<String>>,
    /// Audit annotations plugins add (`key`, `value`).
    annotations: RefCell<Vec<(String, String)>>,
    /// The mutating phase's reinvocation round (reinvocable plugins' state).
    pub rounds: rounds::Rounds,
    /// The ServiceAccount the ServiceAccount plugin read for this request, kept for its
    /// validating half (and a reinvocation round): one cache read per request.
    service_account: RefCell<Option<std::sync::Arc<Value>>>,
}

impl<'a> Attributes<'a> {
    pub fn new(
        scope: &'a Scope<'a>,
        operation: Operation,
        name: &'a str,
        old: Option<&'a Value>,
    ) -> Attributes<'a> {
        Attributes {
            scope,
            operation,
            name,
            old,
            dry_run: matches!(scope.info.param("dryRun"), Some("All")),
            warnings: RefCell::default(),
            annotations: RefCell::default(),
            rounds: rounds::Rounds::default(),
            service_account: RefCell::default(),
        }
    }

    /// The ServiceAccount `name` of the request's namespace, if a plugin read it for
    /// this request already.
    pub(crate) fn read_service_account(&self, name: &str) -> Option<std::sync::Arc<Value>> {
        let kept = self.service_account.borrow();
        kept.as_ref().filter(|sa| kapi_codec::meta::name(sa) == Some(name)).cloned()
    }

    /// Keep the ServiceAccount read for this request (see [`Attributes::read_service_account`]).
    pub(crate) fn keep_service_account(&self, sa: std::sync::Arc<Value>) {
        *self.service_account.borrow_mut() = Some(sa);
    }

    /// The namespace of the request (empty for cluster-scoped resources).
    pub fn namespace(&self) -> &str {
        self.scope.namespace.as_deref().unwrap_or("")
    }

    /// The subresource written (`status`, `binding`, ...), if any.
    pub fn subresource(&self) -> Option<&str> {
        self.scope.info.subresource.as_deref()
    }

    /// The resource type written.
    pub fn rt(&self) -> &kapi_codec::ResourceType {
        &self.scope.rt
    }

    /// Whether this is a write of `group`/`plural` (any version) without a subresource.
    pub fn is(&self, group: &str, plural: &str) -> bool {
        let rt = self.rt();
        &*rt.group == group && &*rt.plural == plural && self.subresource().is_none()
    }

    /// Who asks (None: the server itself).
    pub fn user(&self) -> Option<&crate::auth::UserInfo> {
        self.scope.user
    }

    /// Add a `Warning` header to the answer.
    pub fn warn(&self, message: impl Into<String>) {
        self.warnings.borrow_mut().push(message.into());
    }

    /// Add an audit annotation to the request's audit event.
    pub fn annotate(&self, key: impl Into<String>, value: impl Into<String>) {
        self.annotations.borrow_mut().push((key.into(), value.into()));
    }

    /// The warnings added so far (taken: a second call returns none).
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut self.warnings.borrow_mut())
    }

    /// The audit annotations added so far (taken).
    pub fn take_annotations(&self) -> Vec<(String, String)> {
        std::mem::take(&mut self.annotations.borrow_mut())
    }

    /// The error target for this object.
    pub fn target(&self) -> crate::status::Target {
        self.scope.target(self.name)
    }

    /// Upstream's `admission.NewForbidden`: 403 naming the resource (without the
    /// subresource) and the object: the request's name, else the object's name or
    /// `generateName` (not generated yet), else `Unknown`.
    pub fn forbid(&self, obj: &Value, why: impl Into<String>) -> ApiError {
        ApiError::ForbiddenTarget(self.named_target(obj), why.into())
    }

    /// The target a refusal names: the request's name, else the object's name or
    /// `generateName` (not generated yet), else `Unknown` (upstream's `NewForbidden`).
    pub fn named_target(&self, obj: &Value) -> crate::status::Target {
        let name = if self.name.is_empty() {
            let meta = |f| kapi_codec::meta::meta_str(obj, f).filter(|n| !n.is_empty());
            meta("name").or_else(|| meta("generateName")).unwrap_or("Unknown")
        } else {
            self.name
        };
        self.scope.target(name)
    }
}

/// The array in `obj[key]` for a plugin to add to: an absent or `null` field becomes an
/// empty array first; another type is left alone (None). The key is allocated only
/// when the field is added.
pub(crate) fn list_field<'m>(
    obj: &'m mut serde_json::Map<String, Value>,
    key: &str,
) -> Option<&'m mut Vec<Value>> {
    if obj.get(key).is_none_or(Value::is_null) {
        obj.insert(key.to_string(), Value::Array(Vec::new()));
    }
    obj.get_mut(key).and_then(Value::as_array_mut)
}

/// What a plugin's step returns.
pub type Step<'a> = Pin<Box<dyn Future<Output = Result<(), ApiError>> + 'a>>;

/// A finished step (for plugins that decide without waiting). An accepted one
/// allocates nothing (its future is zero-sized, and a box of one is no allocation).
pub fn done<'a>(result: Result<(), ApiError>) -> Step<'a> {
    match result {
        Ok(()) => Box::pin(Accepted),
        Err(e) => Box::pin(std::future::ready(Err(e))),
    }
}

/// The future of an accepted step: ready, zero-sized.
struct Accepted;

impl Future for Accepted {
    type Output = Result<(), ApiError>;

    fn poll(
        self: Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// One admission plugin. A plugin mutates, validates, or both; the chain calls only
/// what it says it does, and only for requests it handles.
pub trait Plugin: Send + Sync {
    /// Upstream's name (`NamespaceLifecycle`, ...).
    fn name(&self) -> &'static str;

    /// Whether this request concerns the plugin (cheap: no allocation, no I/O).
    fn handles(&self, a: &Attributes<'_>) -> bool;

    /// Whether [`Plugin::admit`] does anything.
    fn mutates(&self) -> bool {
        false
    }

    /// Whether [`Plugin::validate`] does anything.
    fn validates(&self) -> bool {
        false
    }

    /// Change the object (mutating phase).
    fn admit<'a>(&'a self, _a: &'a Attributes<'a>, _obj: &'a mut Value) -> Step<'a> {
        done(Ok(()))
    }

    /// Accept or refuse the object (validating phase).
    fn validate<'a>(&'a self, _a: &'a Attributes<'a>, _obj: &'a Value) -> Step<'a> {
        done(Ok(()))
    }
}

/// The enabled plugins in upstream's order.
pub struct Chain {
    plugins: Vec<Box<dyn Plugin>>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Chain {
    /// The chain `--enable-admission-plugins` and `--disable-admission-plugins` ask for
    /// (upstream's default set when neither names a plugin).
    pub fn from_flags(enable: &[String], disable: &[String]) -> Result<Chain, String> {
        Chain::configured(enable, disable, &Config::default())
    }

    /// [`Chain::from_flags`] with the plugins' own flags.
    pub fn configured(
        enable: &[String],
        disable: &[String],
        cfg: &Config,
    ) -> Result<Chain, String> {
        Ok(Chain { plugins: plugins::build(enable, disable, cfg)? })
    }

    /// A chain of the given plugins (tests).
    pub fn of(plugins: Vec<Box<dyn Plugin>>) -> Chain {
        Chain { plugins }
    }

    /// The enabled plugins' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.plugins.iter().map(|p| p.name())
    }

    /// Whether no plugin is enabled (the write path skips building attributes).
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    /// Run every mutating plugin that handles the request, in order; then, when a
    /// reinvocable plugin asked for it, the whole mutating chain once more, as
    /// upstream's `reinvoker.Admit` calls the chain's `Admit` a second time: the in-tree
    /// plugins see what the policies and webhooks changed, and the reinvocable plugins
    /// decide by their reinvocation state what runs again.
    pub async fn admit(&self, a: &Attributes<'_>, obj: &mut Value) -> Result<(), ApiError> {
        self.admit_once(a, obj).await?;
        if a.rounds.start_reinvocation() {
            self.admit_once(a, obj).await?;
        }
        Ok(())
    }

    async fn admit_once(&self, a: &Attributes<'_>, obj: &mut Value) -> Result<(), ApiError> {
        for p in &self.plugins {
            if p.mutates() && p.handles(a) {
                p.admit(a, obj).await?;
            }
        }
        Ok(())
    }

    /// Run every validating plugin that handles the request, in order.
    pub async fn validate(&self, a: &Attributes<'_>, obj: &Value) -> Result<(), ApiError> {
        for p in &self.plugins {
            if p.validates() && p.handles(a) {
                p.validate(a, obj).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sink_keeps_each_warning_once_and_is_bounded() {
        let sink = Sink::default();
        for i in 0..(MAX_NOTES * 2) {
            sink.warn(format!("w{}", i % (MAX_NOTES + 10)));
            sink.warn("same".into());
        }
        let w = sink.take_warnings();
        assert_eq!(w.len(), MAX_NOTES);
        assert_eq!(w.iter().filter(|m| *m == "same").count(), 1);
        assert!(sink.take_warnings().is_empty(), "taken");
    }

    #[test]
    fn a_later_annotation_of_a_key_replaces_the_earlier() {
        let sink = Sink::default();
        sink.annotate("k".into(), "1".into());
        sink.annotate("k".into(), "2".into());
        sink.annotate("j".into(), "3".into());
        assert_eq!(sink.take_annotations(), [("k".into(), "2".into()), ("j".into(), "3".into())]);
    }
}
