//! Upstream's (v1.35) bootstrap API Priority and Fairness configuration, as kapi's own
//! compact tables and the objects they expand into: the mandatory objects (the `exempt`
//! and `catch-all` PriorityLevelConfigurations and FlowSchemas, which the server keeps as
//! they are) and the suggested ones (levels `system`, `node-high`, `leader-election`,
//! `workload-high`, `workload-low`, `global-default` and the FlowSchemas that use them,
//! which the server creates once and leaves to the user unless their
//! `apf.kubernetes.io/autoupdate-spec` annotation is `"true"`).
//!
//! Invariants: every object carries `apf.kubernetes.io/autoupdate-spec: "true"`, as
//! upstream's bootstrap objects do; names are unique per kind; every FlowSchema names a
//! level of the set; specs are what upstream's defaulting leaves unchanged (every field
//! set), so a stored bootstrap object compares equal to its table row.

use serde_json::{Value, json};

pub const API_VERSION: &str = "flowcontrol.apiserver.k8s.io/v1";
pub const AUTOUPDATE: &str = "apf.kubernetes.io/autoupdate-spec";
pub const EXEMPT: &str = "exempt";
pub const CATCH_ALL: &str = "catch-all";

const MASTERS: &str = "system:masters";
const NODES: &str = "system:nodes";
const AUTHENTICATED: &str = "system:authenticated";
const UNAUTHENTICATED: &str = "system:unauthenticated";
const SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
const KCM: &str = "system:kube-controller-manager";
const SCHEDULER: &str = "system:kube-scheduler";

/// A Limited level: name, nominalConcurrencyShares, lendablePercent and its queuing
/// (`queues`, `handSize`, `queueLengthLimit`; None: `Reject`).
struct LimitedRow(&'static str, u32, u32, Option<(u32, u32, u32)>);

const CATCH_ALL_LEVEL: LimitedRow = LimitedRow(CATCH_ALL, 5, 0, None);

const SUGGESTED_LEVELS: [LimitedRow; 6] = [
    LimitedRow("system", 30, 33, Some((64, 6, 50))),
    LimitedRow("node-high", 40, 25, Some((64, 6, 50))),
    LimitedRow("leader-election", 10, 0, Some((16, 4, 50))),
    LimitedRow("workload-high", 40, 50, Some((128, 6, 50))),
    LimitedRow("workload-low", 100, 90, Some((128, 6, 50))),
    LimitedRow("global-default", 20, 50, Some((128, 6, 50))),
];

fn metadata(name: &str) -> Value {
    json!({"name": name, "annotations": {AUTOUPDATE: "true"}})
}

fn level(name: &str, spec: Value) -> Value {
    json!({"apiVersion": API_VERSION, "kind": "PriorityLevelConfiguration",
        "metadata": metadata(name), "spec": spec})
}

impl LimitedRow {
    fn to_json(&self) -> Value {
        let LimitedRow(name, shares, lendable, queuing) = *self;
        let response = match queuing {
            None => json!({"type": "Reject"}),
            Some((queues, hand, limit)) => json!({"type": "Queue",
                "queuing": {"queues": queues, "handSize": hand, "queueLengthLimit": limit}}),
        };
        level(
            name,
            json!({"type": "Limited", "limited": {"nominalConcurrencyShares": shares,
                "lendablePercent": lendable, "limitResponse": response}}),
        )
    }
}

fn exempt_level() -> Value {
    level(
        EXEMPT,
        json!({"type": "Exempt", "exempt": {"nominalConcurrencyShares": 0, "lendablePercent": 0}}),
    )
}

/// The mandatory PriorityLevelConfigurations, `exempt` last as upstream orders them (a
/// crash in the middle of a first start leaves the set visibly incomplete).
pub fn mandatory_levels() -> Vec<Value> {
    vec![CATCH_ALL_LEVEL.to_json(), exempt_level()]
}

pub fn suggested_levels() -> Vec<Value> {
    SUGGESTED_LEVELS.iter().map(LimitedRow::to_json).collect()
}

fn subjects(kind: &str, names: &[&str]) -> Vec<Value> {
    let field = kind.to_ascii_lowercase();
    names.iter().map(|n| json!({"kind": kind, field.as_str(): {"name": n}})).collect()
}

fn kube_system_sa(names: &[&str]) -> Vec<Value> {
    names
        .iter()
        .map(|n| {
            json!({"kind": "ServiceAccount",
                "serviceAccount": {"name": n, "namespace": "kube-system"}})
        })
        .collect()
}

fn resource_rule(
    verbs: &[&str],
    groups: &[&str],
    resources: &[&str],
    ns: &[&str],
    cluster: bool,
) -> Value {
    let mut r =
        json!({"verbs": verbs, "apiGroups": groups, "resources": resources, "namespaces": ns});
    if cluster {
        r["clusterScope"] = json!(true);
    }
    r
}

/// Every verb on every resource (namespaced or not) and every non-resource URL.
fn everything(subjects: Vec<Value>) -> Value {
    json!({"subjects": subjects,
        "resourceRules": [resource_rule(&["*"], &["*"], &["*"], &["*"], true)],
        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]})
}

fn schema(name: &str, level: &str, precedence: u32, by: Option<&str>, rules: Value) -> Value {
    let mut spec = json!({"priorityLevelConfiguration": {"name": level},
        "matchingPrecedence": precedence, "rules": [rules]});
    if let Some(by) = by {
        spec["distinguisherMethod"] = json!({"type": by});
    }
    json!({"apiVersion": API_VERSION, "kind": "FlowSchema", "metadata": metadata(name), "spec": spec})
}

const BY_USER: Option<&str> = Some("ByUser");
const BY_NAMESPACE: Option<&str> = Some("ByNamespace");
const GET_CREATE_UPDATE: &[&str] = &["get", "create", "update"];

pub fn mandatory_schemas() -> Vec<Value> {
    let all = [UNAUTHENTICATED, AUTHENTICATED];
    vec![
        schema(EXEMPT, EXEMPT, 1, None, everything(subjects("Group", &[MASTERS]))),
        schema(CATCH_ALL, CATCH_ALL, 10000, BY_USER, everything(subjects("Group", &all))),
    ]
}

fn leases(ns: &[&str], verbs: &[&str]) -> Value {
    resource_rule(verbs, &["coordination.k8s.io"], &["leases"], ns, false)
}

pub fn suggested_schemas() -> Vec<Value> {
    let every_ns: &[&str] = &["*"];
    let nodes = subjects("Group", &[NODES]);
    let mut leaders = subjects("User", &[KCM, SCHEDULER]);
    leaders.extend(kube_system_sa(&["*"]));
    let mut endpoints = subjects("User", &[KCM]);
    endpoints.extend(kube_system_sa(&["endpoint-controller", "endpointslicemirroring-controller"]));
    vec![
        schema("system-nodes", "system", 500, BY_USER, everything(nodes.clone())),
        schema(
            "system-node-high",
            "node-high",
            400,
            BY_USER,
            json!({"subjects": nodes,
            "resourceRules": [
                resource_rule(&["*"], &[""], &["nodes", "nodes/status"], every_ns, true),
                leases(every_ns, &["*"]),
            ]}),
        ),
        schema(
            "probes",
            EXEMPT,
            2,
            None,
            json!({
            "subjects": subjects("Group", &[UNAUTHENTICATED, AUTHENTICATED]),
            "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/readyz", "/livez"]}]}),
        ),
        schema(
            "system-leader-election",
            "leader-election",
            100,
            BY_USER,
            json!({
            "subjects": leaders, "resourceRules": [leases(every_ns, GET_CREATE_UPDATE)]}),
        ),
        schema(
            "workload-leader-election",
            "leader-election",
            200,
            BY_USER,
            json!({
            "subjects": kube_system_sa(&["*"]),
            "resourceRules": [
                resource_rule(GET_CREATE_UPDATE, &[""], &["endpoints", "configmaps"], every_ns, false),
                leases(every_ns, GET_CREATE_UPDATE),
            ]}),
        ),
        schema(
            "endpoint-controller",
            "workload-high",
            150,
            BY_USER,
            json!({
            "subjects": endpoints,
            "resourceRules": [resource_rule(GET_CREATE_UPDATE, &[""], &["endpoints"], every_ns, false)]}),
        ),
        schema(
            "kube-controller-manager",
            "workload-high",
            800,
            BY_NAMESPACE,
            everything(subjects("User", &[KCM])),
        ),
        schema(
            "kube-scheduler",
            "workload-high",
            800,
            BY_NAMESPACE,
            everything(subjects("User", &[SCHEDULER])),
        ),
        schema(
            "kube-system-service-accounts",
            "workload-high",
            900,
            BY_NAMESPACE,
            everything(kube_system_sa(&["*"])),
        ),
        schema(
            "service-accounts",
            "workload-low",
            9000,
            BY_USER,
            everything(subjects("Group", &[SERVICE_ACCOUNTS])),
        ),
        schema(
            "global-default",
            "global-default",
            9900,
            BY_USER,
            everything(subjects("Group", &[UNAUTHENTICATED, AUTHENTICATED])),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Every bootstrap object passes upstream's validation as the write path applies it
    /// (defaults, then the type's checks, the mandatory objects' fixed specs included).
    #[test]
    fn every_bootstrap_object_is_valid() {
        let levels = kapi_codec::strategy::for_resource(
            super::super::ensure::GROUP,
            "prioritylevelconfigurations",
        );
        let schemas =
            kapi_codec::strategy::for_resource(super::super::ensure::GROUP, "flowschemas");
        let all = [
            (&levels, mandatory_levels()),
            (&levels, suggested_levels()),
            (&schemas, mandatory_schemas()),
            (&schemas, suggested_schemas()),
        ];
        for (strategy, objects) in all {
            for mut obj in objects {
                strategy.default(&mut obj);
                let errs = strategy.validate(&obj);
                assert!(errs.is_empty(), "{}: {errs:?}", obj["metadata"]["name"]);
            }
        }
    }

    fn names(objs: &[Value]) -> Vec<&str> {
        objs.iter().map(|o| o["metadata"]["name"].as_str().unwrap()).collect()
    }

    #[test]
    fn names_are_unique_and_every_schema_names_a_level_of_the_set() {
        let levels = [mandatory_levels(), suggested_levels()].concat();
        let schemas = [mandatory_schemas(), suggested_schemas()].concat();
        let level_names: HashSet<&str> = names(&levels).into_iter().collect();
        assert_eq!(level_names.len(), 8);
        assert_eq!(names(&schemas).into_iter().collect::<HashSet<_>>().len(), 13);
        for s in &schemas {
            let level = s["spec"]["priorityLevelConfiguration"]["name"].as_str().unwrap();
            assert!(level_names.contains(level), "{level}");
            assert_eq!(s["metadata"]["annotations"][AUTOUPDATE], "true");
        }
    }

    #[test]
    fn the_levels_carry_upstreams_values() {
        let levels = suggested_levels();
        let wl = &levels[4];
        assert_eq!(wl["metadata"]["name"], "workload-low");
        assert_eq!(wl["spec"]["limited"]["nominalConcurrencyShares"], 100);
        assert_eq!(wl["spec"]["limited"]["lendablePercent"], 90);
        assert_eq!(wl["spec"]["limited"]["limitResponse"]["queuing"]["queues"], 128);
        let catch_all = &mandatory_levels()[0];
        assert_eq!(catch_all["spec"]["limited"]["limitResponse"], json!({"type": "Reject"}));
        assert_eq!(mandatory_levels()[1]["spec"]["type"], "Exempt");
    }
}
