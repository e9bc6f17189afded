//! The per-request cost of authentication plus authorization of an identity already
//! seen (issue #17's hot-path target: well under a microsecond): a static bearer token
//! looked up, then the RBAC chain's decision from the policy snapshot (the per-core memo
//! hit), against a policy the size of a large cluster's (2,000 ClusterRoles and
//! ClusterRoleBindings, 10,000 RoleBindings over 1,000 namespaces). Also the cost of a
//! decision for an identity not seen yet (the memo miss: resolving its bindings).

use criterion::{Criterion, criterion_group, criterion_main};
use kapi::auth::serviceaccount::{Kind, Objects};
use kapi::auth::{Authenticator, Outcome, UserInfo};
use kapi::authz::rbac::{Objects as Rbac, Policy};
use kapi::authz::{Attributes, Chain, Mode};
use serde_json::{Value, json};
use std::hint::black_box;
use std::sync::Arc;

struct NoObjects;

impl Objects for NoObjects {
    fn get(&self, _: Kind, _: Option<&str>, _: &str) -> Option<Value> {
        None
    }
}

fn policy() -> Rbac {
    let mut o = Rbac::default();
    for i in 0..2000 {
        o.cluster_roles.push(json!({"metadata": {"name": format!("role-{i}")},
            "rules": [{"verbs": ["get", "list", "watch"], "apiGroups": ["", "apps"],
                "resources": [format!("things{i}"), "configmaps"]}]}));
        o.cluster_role_bindings.push(json!({"metadata": {"name": format!("b-{i}")},
            "roleRef": {"kind": "ClusterRole", "name": format!("role-{i}")},
            "subjects": [{"kind": "Group", "name": format!("group-{i}")}]}));
    }
    for i in 0..10_000 {
        o.role_bindings.push(
            json!({"metadata": {"name": format!("rb-{i}"), "namespace": format!("ns-{}", i % 1000)},
            "roleRef": {"kind": "ClusterRole", "name": format!("role-{}", i % 2000)},
            "subjects": [{"kind": "User", "name": format!("user-{i}")},
                {"kind": "ServiceAccount", "name": "default"}]}),
        );
    }
    o
}

fn authz(c: &mut Criterion) {
    let chain = Chain::new(vec![Mode::Node, Mode::Rbac]);
    chain.policy.store(Arc::new(Policy::build(&policy(), 1)));
    let mut authn = Authenticator::default();
    let user = UserInfo {
        name: "user-17".into(),
        groups: vec!["group-1999".into()],
        ..Default::default()
    };
    authn.tokens.insert("token-abcdefghijklmnop", user);
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::from_static("Bearer token-abcdefghijklmnop"),
    );
    c.bench_function("authn+authz/cached-identity", |b| {
        b.iter(|| {
            let outcome =
                authn.authenticate(None, black_box(&headers), &NoObjects).expect("known token");
            let Outcome::User(u) = outcome else { panic!("a static token is known locally") };
            let a = Attributes {
                user: &u,
                verb: "list",
                resource_request: true,
                path: "/api/v1/namespaces/ns-17/configmaps",
                group: "",
                version: "v1",
                namespace: "ns-17",
                resource: "configmaps",
                subresource: "",
                name: "",
                field_selector: "",
            };
            black_box(chain.decide(&a))
        })
    });
    let mut n = 0u64;
    c.bench_function("authz/new-identity", |b| {
        b.iter(|| {
            n += 1;
            let u = UserInfo {
                name: format!("new-{n}"),
                groups: vec!["group-7".into()],
                ..Default::default()
            };
            let a = Attributes {
                user: &u,
                verb: "get",
                resource_request: true,
                path: "",
                group: "",
                version: "v1",
                namespace: "ns-3",
                resource: "configmaps",
                subresource: "",
                name: "c",
                field_selector: "",
            };
            black_box(chain.decide(&a))
        })
    });
}

criterion_group!(benches, authz);
criterion_main!(benches);
