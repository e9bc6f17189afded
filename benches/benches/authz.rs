//! The per-request cost of authentication plus authorization of an identity already
//! seen (issue #17's hot-path target: well under a microsecond): a static bearer token
//! looked up, then the RBAC chain's decision from the policy snapshot (the per-core memo
//! hit), against a policy the size of a large cluster's (2,000 ClusterRoles and
//! ClusterRoleBindings, 10,000 RoleBindings over 1,000 namespaces). Also the cost of a
//! decision for an identity not seen yet (the memo miss: resolving its bindings).
//!
//! The Node authorizer: a kubelet's GET of a Secret decided from the graph holding a
//! large cluster's pods (50,000 over 5,000 nodes, each using three Secrets, a ConfigMap
//! and a claim bound to a volume whose CSI secret is shared), and the cost of one pod
//! event applied to that graph (the pod's edges set, then taken out again).

use criterion::{Criterion, criterion_group, criterion_main};
use kapi::auth::serviceaccount::{Kind, Objects};
use kapi::auth::{Authenticator, Outcome, UserInfo};
use kapi::authz::node_refs::{Source, edges_of};
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

const PODS: usize = 50_000;

fn pod(i: usize) -> Value {
    json!({"metadata": {"name": format!("p-{i}"), "namespace": format!("ns-{}", i % 1000)},
        "spec": {"nodeName": format!("node-{}", i % 5000), "serviceAccountName": "app",
        "volumes": [{"name": "a", "secret": {"secretName": format!("s-{}", i % 300)}},
            {"name": "b", "secret": {"secretName": "shared"}},
            {"name": "c", "configMap": {"name": "cfg"}},
            {"name": "d", "persistentVolumeClaim": {"claimName": format!("data-{i}")}}],
        "containers": [{"name": "c", "env": [{"name": "T",
            "valueFrom": {"secretKeyRef": {"name": "token", "key": "k"}}}]}]}})
}

/// The Node authorizer's graph after the caches' events of a large cluster.
fn node_graph(chain: &Chain) {
    let mut g = chain.graph.index().write();
    for i in 0..PODS {
        let ns = format!("ns-{}", i % 1000);
        let key = format!("/registry/pods/{ns}/p-{i}");
        g.set_source(&key, &edges_of(Source::Pod, &pod(i)));
        let pvc = json!({"metadata": {"name": format!("data-{i}"), "namespace": ns},
            "spec": {"volumeName": format!("pv-{i}")}});
        let key = format!("/registry/persistentvolumeclaims/{ns}/data-{i}");
        g.set_source(&key, &edges_of(Source::Pvc, &pvc));
        let pv = json!({"metadata": {"name": format!("pv-{i}")}, "spec": {"csi": {"driver": "d",
            "nodePublishSecretRef": {"name": "csi", "namespace": "kube-system"}}}});
        g.set_source(&format!("/registry/persistentvolumes/pv-{i}"), &edges_of(Source::Pv, &pv));
    }
}

fn node(c: &mut Criterion) {
    let chain = Chain::new(vec![Mode::Node, Mode::Rbac]);
    node_graph(&chain);
    let kubelet = UserInfo {
        name: "system:node:node-17".into(),
        groups: vec!["system:nodes".into(), "system:authenticated".into()],
        ..Default::default()
    };
    c.bench_function("authz/node-secret-50k-pods", |b| {
        b.iter(|| {
            // p-17 (ns-17, node-17) uses s-17; p-5017 (ns-17 too) uses s-217.
            let a = Attributes {
                user: &kubelet,
                verb: "get",
                resource_request: true,
                path: "/api/v1/namespaces/ns-17/secrets/s-17",
                group: "",
                version: "v1",
                namespace: black_box("ns-17"),
                resource: "secrets",
                subresource: "",
                name: black_box("s-17"),
                field_selector: "",
            };
            let d = chain.decide(&a);
            assert_eq!(d, kapi::auth::Decision::Allow);
            black_box(d)
        })
    });
    c.bench_function("authz/node-volume-secret-50k-pods", |b| {
        b.iter(|| {
            let a = Attributes {
                user: &kubelet,
                verb: "get",
                resource_request: true,
                path: "/api/v1/namespaces/kube-system/secrets/csi",
                group: "",
                version: "v1",
                namespace: "kube-system",
                resource: "secrets",
                subresource: "",
                name: black_box("csi"),
                field_selector: "",
            };
            black_box(chain.decide(&a))
        })
    });
    let extra = pod(PODS + 17);
    c.bench_function("node-graph/pod-event-50k-pods", |b| {
        b.iter(|| {
            let edges = edges_of(Source::Pod, black_box(&extra));
            let mut g = chain.graph.index().write();
            g.set_source("/registry/pods/ns-17/p-extra", &edges);
            g.remove_source("/registry/pods/ns-17/p-extra");
        })
    });
}

criterion_group!(benches, authz, node);
criterion_main!(benches);
