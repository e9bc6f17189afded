//! What an authorizer decides on (upstream's `authorizer.Attributes`): who, which verb,
//! and either a resource (group, version, namespace, resource, subresource, name) or a
//! non-resource path; and upstream's text for a refusal.

use crate::auth::UserInfo;
use crate::request::RequestInfo;

/// One request as the authorizers see it.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    pub user: &'a UserInfo,
    pub verb: &'a str,
    pub resource_request: bool,
    /// The URL path (non-resource requests).
    pub path: &'a str,
    pub group: &'a str,
    pub version: &'a str,
    /// Empty for cluster-scoped requests.
    pub namespace: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub name: &'a str,
    /// The request's `fieldSelector` (list and watch).
    pub field_selector: &'a str,
}

impl<'a> Attributes<'a> {
    /// The attributes of a request, with `user`.
    pub fn of(user: &'a UserInfo, info: &'a RequestInfo) -> Attributes<'a> {
        let field_selector = info.param("fieldSelector").unwrap_or("");
        let mut name = info.name.as_deref().unwrap_or("");
        if name.is_empty() && matches!(info.verb.as_str(), "list" | "watch") {
            // As upstream's request info: a list or watch of one object by name.
            name = selector_value(field_selector, "metadata.name").unwrap_or("");
        }
        let mut namespace = info.namespace.as_deref().unwrap_or("");
        if namespace.is_empty()
            && info.is_resource
            && info.group.is_empty()
            && info.resource == "namespaces"
        {
            // As upstream's request info: `/api/v1/namespaces/NAME[/status|/finalize]` is
            // in namespace NAME, so a RoleBinding there can grant reading its namespace.
            namespace = info.name.as_deref().unwrap_or("");
        }
        Attributes {
            user,
            verb: &info.verb,
            resource_request: info.is_resource,
            path: &info.path,
            group: &info.group,
            version: &info.version,
            namespace,
            resource: &info.resource,
            subresource: info.subresource.as_deref().unwrap_or(""),
            name,
            field_selector,
        }
    }

    /// Whether the field selector requires `field` to equal `value`.
    pub fn field_equals(&self, field: &str, value: &str) -> bool {
        selector_value(self.field_selector, field) == Some(value)
    }

    /// Upstream's `forbiddenMessage`: `User "u" cannot list resource "pods" in API group
    /// "" in the namespace "ns"` (or `at the cluster scope`), `cannot get path "/x"`.
    pub fn forbidden_message(&self) -> String {
        let user = &self.user.name;
        if !self.resource_request {
            return format!("User {user:?} cannot {} path {:?}", self.verb, self.path);
        }
        let resource = match self.subresource {
            "" => self.resource.to_string(),
            sub => format!("{}/{sub}", self.resource),
        };
        let (verb, group) = (self.verb, self.group);
        match self.namespace {
            "" => format!(
                "User {user:?} cannot {verb} resource {resource:?} in API group {group:?} at the cluster scope"
            ),
            ns => format!(
                "User {user:?} cannot {verb} resource {resource:?} in API group {group:?} in the namespace {ns:?}"
            ),
        }
    }
}

/// The value an equality requirement (`f=v` or `f==v`) of a field selector gives `field`.
fn selector_value<'s>(selector: &'s str, field: &str) -> Option<&'s str> {
    selector.split(',').find_map(|req| {
        let (f, v) = req.split_once("==").or_else(|| req.split_once('='))?;
        (f.trim() == field && !f.ends_with('!')).then(|| v.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs<'a>(user: &'a UserInfo, ns: &'a str, sub: &'a str) -> Attributes<'a> {
        Attributes {
            user,
            verb: "get",
            resource_request: true,
            path: "/api/v1/namespaces/default/pods/p/log",
            group: "",
            version: "v1",
            namespace: ns,
            resource: "pods",
            subresource: sub,
            name: "p",
            field_selector: "",
        }
    }

    #[test]
    fn refusals_read_as_upstreams() {
        let u = UserInfo { name: "alice".into(), ..Default::default() };
        assert_eq!(
            attrs(&u, "default", "log").forbidden_message(),
            r#"User "alice" cannot get resource "pods/log" in API group "" in the namespace "default""#
        );
        assert_eq!(
            attrs(&u, "", "").forbidden_message(),
            r#"User "alice" cannot get resource "pods" in API group "" at the cluster scope"#
        );
        let path = Attributes { resource_request: false, path: "/logs", ..attrs(&u, "", "") };
        assert_eq!(path.forbidden_message(), r#"User "alice" cannot get path "/logs""#);
    }

    /// Regression: `GET /api/v1/namespaces/team` was authorized at the cluster scope, so
    /// a RoleBinding in `team` granting `get namespaces` did not let one read `team` (it
    /// does upstream, whose request info puts the namespace object in its own namespace).
    #[test]
    fn a_namespace_object_is_in_its_own_namespace() {
        let u = UserInfo::default();
        let info = RequestInfo {
            is_resource: true,
            verb: "get".into(),
            resource: "namespaces".into(),
            name: Some("team".into()),
            ..Default::default()
        };
        let a = Attributes::of(&u, &info);
        assert_eq!((a.namespace, a.name), ("team", "team"));
        let list = RequestInfo { name: None, verb: "list".into(), ..info };
        assert_eq!(Attributes::of(&u, &list).namespace, "");
    }

    #[test]
    fn a_list_of_one_name_is_authorized_as_that_name() {
        let u = UserInfo::default();
        let mut info =
            RequestInfo { is_resource: true, verb: "watch".into(), ..Default::default() };
        info.query.insert("fieldSelector".into(), "metadata.name=cm1,spec.nodeName==n1".into());
        let a = Attributes::of(&u, &info);
        assert_eq!(a.name, "cm1");
        assert!(a.field_equals("spec.nodeName", "n1"));
        assert!(!a.field_equals("spec.nodeName", "n2"));
        info.query.insert("fieldSelector".into(), "spec.nodeName!=n1".into());
        assert!(!Attributes::of(&u, &info).field_equals("spec.nodeName", "n1"));
    }
}
