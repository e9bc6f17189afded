//! Impersonation, upstream's impersonation filter: `Impersonate-User`,
//! `Impersonate-Group` (repeatable), `Impersonate-Uid` and `Impersonate-Extra-<key>`
//! make the request act as another user. Each asks the authorizer, as the authenticated
//! user, for the verb `impersonate` on: `users` (or `serviceaccounts` in the namespace,
//! for `system:serviceaccount:NS:NAME`), `groups` (core group), `uids` and
//! `userextras/<key>` (group `authentication.k8s.io`); the first refusal is a 403 with
//! upstream's message. A ServiceAccount without groups gets its fixed groups; a
//! non-anonymous user gets `system:authenticated` unless a group says authenticated or
//! unauthenticated, `system:anonymous` gets `system:unauthenticated`.
//!
//! Invariant: the impersonation headers are removed from the request once read.

use super::{ANONYMOUS, AUTHENTICATED, Decision, UNAUTHENTICATED, UserInfo};
use crate::request::RequestInfo;
use crate::status::{ApiError, Target};
use http::HeaderMap;

const USER: &str = "impersonate-user";
const UID: &str = "impersonate-uid";
const GROUP: &str = "impersonate-group";
const EXTRA_PREFIX: &str = "impersonate-extra-";
const AUTHN_GROUP: &str = "authentication.k8s.io";

/// One thing to be allowed to impersonate.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ask {
    group: &'static str,
    resource: &'static str,
    subresource: Option<String>,
    namespace: Option<String>,
    name: String,
}

impl Ask {
    fn new(group: &'static str, resource: &'static str, name: &str) -> Ask {
        Ask { group, resource, subresource: None, namespace: None, name: name.to_string() }
    }

    fn info(&self) -> RequestInfo {
        RequestInfo {
            is_resource: true,
            verb: "impersonate".into(),
            prefix: if self.group.is_empty() { "api" } else { "apis" }.into(),
            group: self.group.into(),
            version: "v1".into(),
            namespace: self.namespace.clone(),
            resource: self.resource.into(),
            subresource: self.subresource.clone(),
            name: Some(self.name.clone()),
            ..Default::default()
        }
    }

    /// Upstream's 403 for a refused impersonation.
    fn forbidden(&self, requestor: &str, reason: &str) -> ApiError {
        let resource = match &self.subresource {
            Some(s) => format!("{}/{s}", self.resource),
            None => self.resource.to_string(),
        };
        let scope = match &self.namespace {
            Some(ns) => format!("in the namespace {ns:?}"),
            None => "at the cluster scope".into(),
        };
        let mut why = format!(
            "User {requestor:?} cannot impersonate resource {resource:?} in API group {:?} {scope}",
            self.group
        );
        if !reason.is_empty() {
            why = format!("{why}: {reason}");
        }
        let target = Target {
            group: self.group.into(),
            resource: self.resource.into(),
            name: self.name.clone(),
            ..Default::default()
        };
        ApiError::ForbiddenTarget(target, why)
    }
}

/// `system:serviceaccount:NS:NAME` split into namespace and name.
fn service_account(user: &str) -> Option<(&str, &str)> {
    let (ns, name) = user.strip_prefix("system:serviceaccount:")?.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}

fn values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers.get_all(name).into_iter().filter_map(|v| v.to_str().ok())
}

/// What the headers ask for: the checks and the user they make (None: no
/// impersonation requested).
fn requested(headers: &HeaderMap) -> Result<Option<(Vec<Ask>, UserInfo)>, ApiError> {
    let mut asks = Vec::new();
    let mut user = UserInfo::default();
    let name = values(headers, USER).next().unwrap_or("");
    if let Some((ns, sa)) = service_account(name) {
        asks.push(Ask { namespace: Some(ns.into()), ..Ask::new("", "serviceaccounts", sa) });
    } else if !name.is_empty() {
        asks.push(Ask::new("", "users", name));
    }
    user.name = name.to_string();
    for g in values(headers, GROUP) {
        asks.push(Ask::new("", "groups", g));
        user.groups.push(g.to_string());
    }
    let has_groups = !user.groups.is_empty();
    for (header, value) in headers {
        let Some(key) = header.as_str().strip_prefix(EXTRA_PREFIX) else { continue };
        let key = percent_encoding::percent_decode_str(key).decode_utf8_lossy().to_lowercase();
        let Ok(value) = value.to_str() else { continue };
        asks.push(Ask {
            subresource: Some(key.clone()),
            ..Ask::new(AUTHN_GROUP, "userextras", value)
        });
        user.extra.entry(key).or_default().push(value.to_string());
    }
    if let Some(uid) = values(headers, UID).next().filter(|u| !u.is_empty()) {
        asks.push(Ask::new(AUTHN_GROUP, "uids", uid));
        user.uid = uid.to_string();
    }
    if asks.is_empty() {
        return Ok(None);
    }
    if name.is_empty() {
        return Err(ApiError::Unknown(format!(
            "requested {} without impersonating a user",
            describe(&asks)
        )));
    }
    if let Some((ns, _)) = service_account(name)
        && !has_groups
    {
        user.groups = vec!["system:serviceaccounts".into(), format!("system:serviceaccounts:{ns}")];
    }
    add_group(&mut user);
    Ok(Some((asks, user)))
}

/// The implicit group upstream adds to an impersonated user.
fn add_group(user: &mut UserInfo) {
    let has = |g: &str| user.groups.iter().any(|x| x == g);
    if user.name != ANONYMOUS {
        if !has(AUTHENTICATED) && !has(UNAUTHENTICATED) {
            user.groups.push(AUTHENTICATED.into());
        }
    } else if !has(UNAUTHENTICATED) {
        user.groups.push(UNAUTHENTICATED.into());
    }
}

fn describe(asks: &[Ask]) -> String {
    let items: Vec<String> = asks.iter().map(|a| format!("{}/{}", a.resource, a.name)).collect();
    format!("[{}]", items.join(" "))
}

/// The user the request acts as: `requestor` itself when it asks for no impersonation,
/// else the impersonated user once the authorizer allowed every part. The impersonation
/// headers are removed either way. (An in-memory authorizer: the unit tests'; requests
/// use [`apply_with`].)
#[cfg(test)]
pub fn apply(
    requestor: UserInfo,
    headers: &mut HeaderMap,
    authorizer: &dyn super::Authorizer,
) -> Result<UserInfo, ApiError> {
    let asked = requested(headers);
    strip(headers);
    let Some((asks, user)) = asked? else { return Ok(requestor) };
    for ask in &asks {
        if let Decision::Deny(reason) = authorizer.authorize(&requestor, &ask.info()) {
            return Err(ask.forbidden(&requestor.name, &reason));
        }
    }
    Ok(user)
}

/// [`apply`] with the server's full authorizer chain deciding, the Webhook mode asked
/// when its cache has no answer (as the request itself is authorized); an authorizer
/// error refuses, as upstream's impersonation filter refuses on one.
pub async fn apply_with(
    requestor: UserInfo,
    headers: &mut HeaderMap,
    app: &crate::app::App,
) -> Result<UserInfo, ApiError> {
    let asked = requested(headers);
    strip(headers);
    let Some((asks, user)) = asked? else { return Ok(requestor) };
    for ask in &asks {
        let info = ask.info();
        let attrs = crate::authz::Attributes::of(&requestor, &info);
        match app.authorizer.authorize_request(app, &attrs).await {
            Ok(Decision::Allow) => {}
            Ok(Decision::Deny(reason)) => return Err(ask.forbidden(&requestor.name, &reason)),
            Err(e) => return Err(ask.forbidden(&requestor.name, &e)),
        }
    }
    Ok(user)
}

fn strip(headers: &mut HeaderMap) {
    headers.remove(USER);
    headers.remove(UID);
    headers.remove(GROUP);
    let extras: Vec<http::HeaderName> =
        headers.keys().filter(|k| k.as_str().starts_with(EXTRA_PREFIX)).cloned().collect();
    for k in extras {
        headers.remove(k);
    }
}

#[cfg(test)]
mod tests {
    use super::super::Authorizer;
    use super::*;

    /// Allows everything but one resource.
    struct AllBut(&'static str);
    impl Authorizer for AllBut {
        fn authorize(&self, _: &UserInfo, r: &RequestInfo) -> Decision {
            assert_eq!(r.verb, "impersonate");
            if r.resource == self.0 { Decision::Deny(String::new()) } else { Decision::Allow }
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    fn alice() -> UserInfo {
        UserInfo { name: "alice".into(), groups: vec![AUTHENTICATED.into()], ..Default::default() }
    }

    #[test]
    fn users_groups_extras_and_uids_are_impersonated_and_the_headers_removed() {
        let mut h = headers(&[
            ("Impersonate-User", "bob"),
            ("Impersonate-Group", "devs"),
            ("Impersonate-Group", "ops"),
            ("Impersonate-Extra-Acme.com%2FScopes", "view"),
            ("Impersonate-Uid", "1234"),
            ("Accept", "application/json"),
        ]);
        let u = apply(alice(), &mut h, &AllBut("none")).unwrap();
        assert_eq!(u.name, "bob");
        assert_eq!(u.groups, ["devs", "ops", AUTHENTICATED]);
        assert_eq!(u.extra["acme.com/scopes"], ["view"]);
        assert_eq!(u.uid, "1234");
        assert_eq!(h.len(), 1);
        let mut none = headers(&[]);
        assert_eq!(apply(alice(), &mut none, &AllBut("none")).unwrap(), alice());
    }

    #[test]
    fn service_accounts_get_their_groups_and_anonymous_stays_unauthenticated() {
        let mut h = headers(&[("Impersonate-User", "system:serviceaccount:ns1:builder")]);
        let u = apply(alice(), &mut h, &AllBut("users")).unwrap();
        assert_eq!(
            u.groups,
            ["system:serviceaccounts", "system:serviceaccounts:ns1", AUTHENTICATED]
        );
        let mut h = headers(&[("Impersonate-User", ANONYMOUS)]);
        assert_eq!(apply(alice(), &mut h, &AllBut("x")).unwrap().groups, [UNAUTHENTICATED]);
    }

    #[test]
    fn a_refusal_is_upstreams_403_and_groups_need_a_user() {
        let mut h = headers(&[("Impersonate-User", "bob"), ("Impersonate-Group", "admins")]);
        let e = apply(alice(), &mut h, &AllBut("groups")).unwrap_err();
        let status = e.to_status();
        assert_eq!(
            status["message"],
            "groups \"admins\" is forbidden: User \"alice\" cannot impersonate resource \"groups\" in API group \"\" at the cluster scope"
        );
        assert_eq!(status["code"], 403);
        let mut h = headers(&[("Impersonate-User", "system:serviceaccount:ns1:sa")]);
        let e = apply(alice(), &mut h, &AllBut("serviceaccounts")).unwrap_err();
        assert!(e.to_status()["message"].as_str().unwrap().ends_with("in the namespace \"ns1\""));
        let mut h = headers(&[("Impersonate-Group", "admins")]);
        assert!(apply(alice(), &mut h, &AllBut("x")).is_err());
    }
}
