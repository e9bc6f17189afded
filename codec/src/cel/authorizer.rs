//! Kubernetes' authorizer library (`kubernetes.authz`) for admission expressions: the
//! `authorizer` variable and its builders, as upstream declares them:
//!
//! - `authorizer.path(p).check(httpVerb)` (a non-resource request),
//! - `authorizer.group(g).resource(r)` then `.subresource(s)`, `.namespace(ns)`,
//!   `.name(n)`, `.fieldSelector(s)`, `.labelSelector(s)`, `.check(verb)`,
//! - `authorizer.serviceAccount(ns, name)`: the same questions for that ServiceAccount,
//! - `authorizer.requestResource`: the resource check of the request being admitted,
//! - a check's decision: `.allowed()`, `.reason()`, `.errored()`, `.error()`.
//!
//! The question is answered synchronously by an [`Authorizer`] the caller provides (the
//! engine's authorizer chain): this crate does no I/O. A resource check asks about API
//! version `*`, as upstream.
//!
//! Invariants: every `check` costs [`CHECK_COST`] (upstream's fixed cost: at most two
//! checks fit in one expression's per-call limit), so one evaluation asks the
//! authorizer at most a bounded number of times; builders never fail but for upstream's
//! argument checks (empty resource, invalid ServiceAccount namespace or name).

use std::collections::BTreeMap;
use std::rc::Rc;

use super::check::{Info, Ty};

/// Upstream's fixed cost of one authorization check.
pub const CHECK_COST: u64 = 350_000;

/// Who is asking (upstream's `user.Info`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// A resource as a check names it. Empty strings are unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub field_selector: String,
    pub label_selector: String,
}

/// One authorization question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    /// A non-resource request: `path` with an HTTP verb (`get`, `post`, ...).
    Path { path: String, verb: String },
    /// A resource request: `verb` on `resource` (API version `*`).
    Resource { resource: Resource, verb: String },
}

/// An authorizer's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
    /// The authorizer failed (`errored()` is true, `error()` is this text).
    pub error: Option<String>,
}

/// What answers the library's questions.
pub trait Authorizer {
    /// Whether `user` may do what `question` asks.
    fn decide(&self, user: &User, question: &Question) -> Decision;
}

/// What `authorizer` is bound to in one evaluation: the authorizer, the request's
/// user and (for `authorizer.requestResource`) the request's resource.
pub struct Context<'a> {
    pub authorizer: &'a dyn Authorizer,
    pub user: User,
    pub request_resource: Option<Resource>,
}

/// The library's types as cel-go names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthzTy {
    Authorizer,
    PathCheck,
    GroupCheck,
    ResourceCheck,
    Decision,
}

impl AuthzTy {
    pub fn name(self) -> &'static str {
        match self {
            AuthzTy::Authorizer => "kubernetes.authorization.Authorizer",
            AuthzTy::PathCheck => "kubernetes.authorization.PathCheck",
            AuthzTy::GroupCheck => "kubernetes.authorization.GroupCheck",
            AuthzTy::ResourceCheck => "kubernetes.authorization.ResourceCheck",
            AuthzTy::Decision => "kubernetes.authorization.Decision",
        }
    }
}

/// The library's member functions.
pub const FUNCTIONS: &[&str] = &[
    "path",
    "group",
    "serviceAccount",
    "resource",
    "subresource",
    "namespace",
    "name",
    "fieldSelector",
    "labelSelector",
    "check",
    "allowed",
    "reason",
    "errored",
    "error",
];

/// The checker's view: the result type of member function `f` on `target` with
/// argument types `args`; None: no such overload.
pub fn check_member(target: AuthzTy, f: &str, args: &[Info]) -> Option<Info> {
    use AuthzTy::*;
    let strings =
        |n: usize| args.len() == n && args.iter().all(|a| matches!(a.ty, Ty::Str | Ty::Dyn));
    let out = match (target, f) {
        (Authorizer, "path") if strings(1) => PathCheck,
        (Authorizer, "group") if strings(1) => GroupCheck,
        (Authorizer, "serviceAccount") if strings(2) => Authorizer,
        (GroupCheck, "resource") if strings(1) => ResourceCheck,
        (
            ResourceCheck,
            "subresource" | "namespace" | "name" | "fieldSelector" | "labelSelector",
        ) if strings(1) => ResourceCheck,
        (PathCheck | ResourceCheck, "check") if strings(1) => Decision,
        (Decision, "allowed" | "errored") if args.is_empty() => {
            return Some(Info { ty: Ty::Bool, size: 1 });
        }
        (Decision, "reason" | "error") if args.is_empty() => {
            return Some(Info { ty: Ty::Str, size: super::shape::MAX_REQUEST_SIZE_BYTES });
        }
        _ => return None,
    };
    Some(Info { ty: Ty::Authz(out), size: 1 })
}

/// A value of the library at runtime.
#[derive(Clone)]
pub enum AuthzVal<'a> {
    /// `authorizer` (root: the variable itself, which has `requestResource`).
    Authorizer {
        cx: &'a Context<'a>,
        user: Rc<User>,
        root: bool,
    },
    PathCheck {
        cx: &'a Context<'a>,
        user: Rc<User>,
        path: String,
    },
    GroupCheck {
        cx: &'a Context<'a>,
        user: Rc<User>,
        group: String,
    },
    ResourceCheck {
        cx: &'a Context<'a>,
        user: Rc<User>,
        resource: Resource,
    },
    Decision(Decision),
}

impl std::fmt::Debug for AuthzVal<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.ty().name())
    }
}

/// What a runtime call of the library produced.
pub enum Called<'a> {
    Authz(AuthzVal<'a>),
    Bool(bool),
    Str(String),
}

impl<'a> AuthzVal<'a> {
    /// The `authorizer` variable of `cx`.
    pub fn root(cx: &'a Context<'a>) -> AuthzVal<'a> {
        AuthzVal::Authorizer { cx, user: Rc::new(cx.user.clone()), root: true }
    }

    pub fn ty(&self) -> AuthzTy {
        match self {
            AuthzVal::Authorizer { .. } => AuthzTy::Authorizer,
            AuthzVal::PathCheck { .. } => AuthzTy::PathCheck,
            AuthzVal::GroupCheck { .. } => AuthzTy::GroupCheck,
            AuthzVal::ResourceCheck { .. } => AuthzTy::ResourceCheck,
            AuthzVal::Decision(_) => AuthzTy::Decision,
        }
    }

    /// `authorizer.requestResource` (None: not a field of this value).
    pub fn select(&self, field: &str) -> Option<AuthzVal<'a>> {
        match self {
            AuthzVal::Authorizer { cx, user, root: true } if field == "requestResource" => {
                let resource = cx.request_resource.clone()?;
                Some(AuthzVal::ResourceCheck { cx, user: user.clone(), resource })
            }
            _ => None,
        }
    }

    /// Member function `f` with string arguments `args`. Err: upstream's runtime
    /// error text; `Ok(None)`: no such overload.
    pub fn call(&self, f: &str, args: &[&str]) -> Result<Option<Called<'a>>, String> {
        use AuthzVal::*;
        let one = args.first().copied().unwrap_or("").to_string();
        let out = match (self, f, args.len()) {
            (Authorizer { cx, user, .. }, "path", 1) => {
                Called::Authz(PathCheck { cx, user: user.clone(), path: one })
            }
            (Authorizer { cx, user, .. }, "group", 1) => {
                Called::Authz(GroupCheck { cx, user: user.clone(), group: one })
            }
            (Authorizer { cx, .. }, "serviceAccount", 2) => {
                let user = service_account(args[0], args[1])?;
                Called::Authz(Authorizer { cx, user: Rc::new(user), root: false })
            }
            (GroupCheck { cx, user, group }, "resource", 1) => {
                if one.trim().is_empty() {
                    return Err("resource must not be empty".into());
                }
                let resource =
                    Resource { group: group.clone(), resource: one, ..Resource::default() };
                Called::Authz(ResourceCheck { cx, user: user.clone(), resource })
            }
            (ResourceCheck { cx, user, resource }, field, 1) => {
                let mut resource = resource.clone();
                match field {
                    "subresource" => resource.subresource = one,
                    "namespace" => resource.namespace = one,
                    "name" => resource.name = one,
                    "fieldSelector" => resource.field_selector = one,
                    "labelSelector" => resource.label_selector = one,
                    "check" => {
                        let q = Question::Resource { resource, verb: one };
                        return Ok(Some(Called::Authz(Decision(cx.authorizer.decide(user, &q)))));
                    }
                    _ => return Ok(None),
                }
                Called::Authz(ResourceCheck { cx, user: user.clone(), resource })
            }
            (PathCheck { cx, user, path }, "check", 1) => {
                let q = Question::Path { path: path.clone(), verb: one };
                Called::Authz(Decision(cx.authorizer.decide(user, &q)))
            }
            (Decision(d), "allowed", 0) => Called::Bool(d.allowed),
            (Decision(d), "errored", 0) => Called::Bool(d.error.is_some()),
            (Decision(d), "reason", 0) => Called::Str(d.reason.clone()),
            (Decision(d), "error", 0) => Called::Str(d.error.clone().unwrap_or_default()),
            _ => return Ok(None),
        };
        Ok(Some(out))
    }
}

/// Upstream's ServiceAccount user: `system:serviceaccount:<ns>:<name>` in the
/// ServiceAccount groups.
fn service_account(namespace: &str, name: &str) -> Result<User, String> {
    if !crate::validation::dns1123_subdomain_errors(name).is_empty() {
        return Err("Invalid service account name".into());
    }
    if !crate::validation::dns1123_label_errors(namespace).is_empty() {
        return Err("Invalid service account namespace".into());
    }
    Ok(User {
        name: format!("system:serviceaccount:{namespace}:{name}"),
        uid: String::new(),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{namespace}"),
        ],
        extra: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cel::{Expression, Var};
    use serde_json::{Value, json};
    use std::cell::RefCell;

    /// Allows `alice` to `get` secrets in `ns1` and `get` on `/healthz`; records every
    /// question; errors for verb `boom`.
    #[derive(Default)]
    struct Fake {
        asked: RefCell<Vec<(String, Question)>>,
    }

    impl Authorizer for Fake {
        fn decide(&self, user: &User, q: &Question) -> Decision {
            self.asked.borrow_mut().push((user.name.clone(), q.clone()));
            let allowed = match q {
                Question::Path { path, verb } => path == "/healthz" && verb == "get",
                Question::Resource { resource: r, verb } => {
                    user.name == "alice"
                        && r.resource == "secrets"
                        && r.namespace == "ns1"
                        && verb == "get"
                }
            };
            let error = matches!(q, Question::Resource { verb, .. } if verb == "boom")
                .then(|| "webhook unreachable".to_string());
            Decision { allowed, reason: if allowed { "ok".into() } else { "no".into() }, error }
        }
    }

    fn vars() -> Vec<Var<'static>> {
        vec![Var { name: "object", schema: None }]
    }

    fn eval(fake: &Fake, user: &str, src: &str) -> Result<Value, String> {
        let e = Expression::compile_with_authorizer(src, &vars())?;
        let cx = Context {
            authorizer: fake,
            user: User { name: user.into(), ..User::default() },
            request_resource: Some(Resource {
                group: "apps".into(),
                resource: "deployments".into(),
                namespace: "ns1".into(),
                name: "web".into(),
                ..Resource::default()
            }),
        };
        let object = json!({"metadata": {"namespace": "ns1"}});
        e.eval_authorized(&[("object", &object)], Some(&cx))
    }

    #[test]
    fn resource_checks_ask_the_authorizer_with_every_attribute() {
        let fake = Fake::default();
        let src = "authorizer.group('').resource('secrets').namespace(object.metadata.namespace).check('get').allowed()";
        assert_eq!(eval(&fake, "alice", src), Ok(json!(true)));
        assert_eq!(eval(&fake, "bob", src), Ok(json!(false)));
        let src = "authorizer.group('apps').resource('deployments').subresource('scale').namespace('n').name('x').check('update').reason()";
        assert_eq!(eval(&fake, "alice", src), Ok(json!("no")));
        let asked = fake.asked.borrow();
        assert_eq!(asked.len(), 3);
        let want = Question::Resource {
            resource: Resource {
                group: "apps".into(),
                resource: "deployments".into(),
                subresource: "scale".into(),
                namespace: "n".into(),
                name: "x".into(),
                ..Resource::default()
            },
            verb: "update".into(),
        };
        assert_eq!(asked[2], ("alice".to_string(), want));
    }

    #[test]
    fn path_checks_service_accounts_and_errors() {
        let fake = Fake::default();
        assert_eq!(
            eval(&fake, "bob", "authorizer.path('/healthz').check('get').allowed()"),
            Ok(json!(true))
        );
        let sa = "authorizer.serviceAccount('ns1', 'builder').group('').resource('pods').check('list').allowed()";
        assert_eq!(eval(&fake, "alice", sa), Ok(json!(false)));
        let (who, _) = fake.asked.borrow().last().cloned().unwrap();
        assert_eq!(who, "system:serviceaccount:ns1:builder");
        let d = "authorizer.group('').resource('pods').check('boom')";
        assert_eq!(eval(&fake, "alice", &format!("{d}.errored()")), Ok(json!(true)));
        assert_eq!(eval(&fake, "alice", &format!("{d}.error()")), Ok(json!("webhook unreachable")));
        let ok = "authorizer.group('').resource('pods').check('get')";
        assert_eq!(eval(&fake, "alice", &format!("{ok}.errored()")), Ok(json!(false)));
        assert_eq!(eval(&fake, "alice", &format!("{ok}.error()")), Ok(json!("")));
        let bad = eval(
            &fake,
            "alice",
            "authorizer.serviceAccount('Not@Valid', 'x').path('/').check('get').allowed()",
        );
        assert_eq!(bad, Err("Invalid service account namespace".into()));
        let empty =
            eval(&fake, "alice", "authorizer.group('').resource(' ').check('get').allowed()");
        assert_eq!(empty, Err("resource must not be empty".into()));
    }

    #[test]
    fn the_request_resource_is_the_admitted_request() {
        let fake = Fake::default();
        let src = "authorizer.requestResource.check('delete').allowed()";
        assert_eq!(eval(&fake, "alice", src), Ok(json!(false)));
        let (_, q) = fake.asked.borrow().last().cloned().unwrap();
        let Question::Resource { resource, verb } = q else { panic!("{q:?}") };
        assert_eq!((resource.group.as_str(), resource.resource.as_str()), ("apps", "deployments"));
        assert_eq!((resource.namespace.as_str(), resource.name.as_str()), ("ns1", "web"));
        assert_eq!(verb, "delete");
    }

    #[test]
    fn the_checker_knows_the_library_types() {
        let c = |src: &str| {
            Expression::compile_with_authorizer(src, &vars()).map(|e| e.output_type().to_string())
        };
        assert_eq!(c("authorizer.path('/x').check('get').allowed()"), Ok("bool".into()));
        assert_eq!(c("authorizer.requestResource.check('get').reason()"), Ok("string".into()));
        let e = c("authorizer.group('').check('get')").unwrap_err();
        assert!(
            e.contains("found no matching overload for 'check' applied to 'kubernetes.authorization.GroupCheck.(string)'"),
            "{e}"
        );
        let e = c("authorizer.group(1)").unwrap_err();
        assert!(e.contains("no matching overload for 'group'"), "{e}");
        let e = Expression::compile("authorizer.path('/')", &vars()).unwrap_err();
        assert!(e.contains("undeclared reference to 'authorizer'"), "{e}");
    }

    #[test]
    fn at_most_two_checks_fit_in_one_evaluation() {
        let fake = Fake::default();
        let one = "authorizer.path('/healthz').check('get').allowed()";
        let three = format!("{one} && {one} && {one}");
        assert_eq!(
            eval(&fake, "alice", &three),
            Err("operation cancelled: actual cost limit exceeded".into())
        );
        assert!(fake.asked.borrow().len() <= 2);
    }
}
