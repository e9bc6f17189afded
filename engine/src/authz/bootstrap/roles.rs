//! The policy's own ClusterRoles (upstream's `ClusterRoles()` with v1.35's default
//! feature gates): the super-user, the user-facing aggregated roles and the roles of the
//! system components. Rows list rules in upstream's order.

use super::{AGGREGATE_TO, API_VERSION, EVENTS, READ, Rule, metadata, named, r, rules_json, urls};
use serde_json::{Value, json};

/// One ClusterRole: `aggregate_to` names the aggregate-to-* labels it carries
/// (`"admin"` → `rbac.authorization.k8s.io/aggregate-to-admin: "true"`), `aggregates` the
/// label its aggregationRule selects (admin, edit and view have no rules of their own).
pub(super) struct ClusterRoleRow {
    name: &'static str,
    aggregate_to: Option<&'static str>,
    aggregates: Option<&'static str>,
    rules: &'static [Rule],
}

const fn role(name: &'static str, rules: &'static [Rule]) -> ClusterRoleRow {
    ClusterRoleRow { name, aggregate_to: None, aggregates: None, rules }
}

const fn aggregated(
    name: &'static str,
    aggregates: &'static str,
    aggregate_to: Option<&'static str>,
) -> ClusterRoleRow {
    ClusterRoleRow { name, aggregate_to, aggregates: Some(aggregates), rules: &[] }
}

const fn part_of(name: &'static str, to: &'static str, rules: &'static [Rule]) -> ClusterRoleRow {
    ClusterRoleRow { name, aggregate_to: Some(to), aggregates: None, rules }
}

impl ClusterRoleRow {
    pub(super) fn to_json(&self) -> Value {
        let labels: Vec<(String, &str)> =
            self.aggregate_to.iter().map(|to| (format!("{AGGREGATE_TO}{to}"), "true")).collect();
        let mut o = json!({"apiVersion": API_VERSION, "kind": "ClusterRole",
            "metadata": metadata(self.name, None, &labels)});
        match self.aggregates {
            Some(a) => {
                let selector = json!({"matchLabels": {format!("{AGGREGATE_TO}{a}"): "true"}});
                o["aggregationRule"] = json!({"clusterRoleSelectors": [selector]});
                // Upstream writes the (nil, not omitted) rules as null.
                o["rules"] = Value::Null;
            }
            None => o["rules"] = rules_json(self.rules),
        }
        o
    }
}

const CORE: &[&str] = &[""];
const CORE_EVENTS: &[&str] = &["", "events.k8s.io"];
const APPS: &[&str] = &["apps"];
const APPS_EXT: &[&str] = &["apps", "extensions"];
const EXT: &[&str] = &["extensions"];
const BATCH: &[&str] = &["batch"];
const AUTOSCALING: &[&str] = &["autoscaling"];
const POLICY: &[&str] = &["policy"];
const NETWORKING: &[&str] = &["networking.k8s.io"];
const COORDINATION: &[&str] = &["coordination.k8s.io"];
const DISCOVERY: &[&str] = &["discovery.k8s.io"];
const STORAGE: &[&str] = &["storage.k8s.io"];
const CERTS: &[&str] = &["certificates.k8s.io"];
const AUTHN: &[&str] = &["authentication.k8s.io"];
const AUTHZ: &[&str] = &["authorization.k8s.io"];
const RESOURCE: &[&str] = &["resource.k8s.io"];
const WRITE: &str = "create delete deletecollection patch update";
const READ_WRITE: &str = "create delete deletecollection get list patch update watch";
const READ_UPDATE: &str = "get list patch update watch";

pub(super) const CLUSTER_ROLES: &[ClusterRoleRow] = &[
    role("cluster-admin", &[r(&["*"], "*", "*"), urls("*", "*")]),
    role(
        "system:discovery",
        &[urls(
            "/livez /readyz /healthz /version /version/ /openapi /openapi/* /api /api/* /apis /apis/*",
            "get",
        )],
    ),
    role(
        "system:monitoring",
        &[
            urls(
                "/metrics /metrics/slis /livez /readyz /healthz /livez/* /readyz/* /healthz/* /statusz",
                "get",
            ),
            r(CORE, "nodes/metrics", "get"),
        ],
    ),
    role(
        "system:basic-user",
        &[
            r(AUTHZ, "selfsubjectaccessreviews selfsubjectrulesreviews", "create"),
            r(AUTHN, "selfsubjectreviews", "create"),
        ],
    ),
    role("system:public-info-viewer", &[urls("/livez /readyz /healthz /version /version/", "get")]),
    aggregated("admin", "admin", None),
    aggregated("edit", "edit", Some("admin")),
    aggregated("view", "view", Some("edit")),
    part_of(
        "system:aggregate-to-admin",
        "admin",
        &[
            r(AUTHZ, "localsubjectaccessreviews", "create"),
            r(&["rbac.authorization.k8s.io"], "roles rolebindings", READ_WRITE),
        ],
    ),
    part_of("system:aggregate-to-edit", "edit", AGGREGATE_TO_EDIT),
    part_of("system:aggregate-to-view", "view", AGGREGATE_TO_VIEW),
    role(
        "system:heapster",
        &[r(CORE, "events pods nodes namespaces", READ), r(EXT, "deployments", READ)],
    ),
    role("system:node", NODE),
    role(
        "system:node-problem-detector",
        &[r(CORE, "nodes", "get"), r(CORE, "nodes/status", "patch"), EVENTS],
    ),
    role(
        "system:kubelet-api-admin",
        &[
            r(CORE, "nodes", READ),
            r(CORE, "nodes", "proxy"),
            r(CORE, "nodes/proxy nodes/metrics nodes/stats nodes/log", "*"),
            r(CORE, "nodes/configz nodes/healthz nodes/pods", "*"),
        ],
    ),
    role(
        "system:node-bootstrapper",
        &[r(CERTS, "certificatesigningrequests", "create get list watch")],
    ),
    role(
        "system:auth-delegator",
        &[r(AUTHN, "tokenreviews", "create"), r(AUTHZ, "subjectaccessreviews", "create")],
    ),
    role("system:kube-aggregator", &[r(CORE, "services endpoints", READ)]),
    role("system:kube-controller-manager", KUBE_CONTROLLER_MANAGER),
    role("system:kube-dns", &[r(CORE, "endpoints services", "list watch")]),
    role(
        "system:persistent-volume-provisioner",
        &[
            r(CORE, "persistentvolumes", "create delete get list watch"),
            r(CORE, "persistentvolumeclaims", "get list update watch"),
            r(STORAGE, "storageclasses", READ),
            r(CORE, "events", "watch"),
            EVENTS,
        ],
    ),
    role(
        "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        &[r(CERTS, "certificatesigningrequests/nodeclient", "create")],
    ),
    role(
        "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
        &[r(CERTS, "certificatesigningrequests/selfnodeclient", "create")],
    ),
    role(
        "system:volume-scheduler",
        &[
            r(CORE, "persistentvolumes", READ_UPDATE),
            r(STORAGE, "storageclasses", READ),
            r(CORE, "persistentvolumeclaims", READ_UPDATE),
        ],
    ),
    role(
        "system:certificates.k8s.io:legacy-unknown-approver",
        &[named(CERTS, "signers", "kubernetes.io/legacy-unknown", "approve")],
    ),
    role(
        "system:certificates.k8s.io:kubelet-serving-approver",
        &[named(CERTS, "signers", "kubernetes.io/kubelet-serving", "approve")],
    ),
    role(
        "system:certificates.k8s.io:kube-apiserver-client-approver",
        &[named(CERTS, "signers", "kubernetes.io/kube-apiserver-client", "approve")],
    ),
    role(
        "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
        &[named(CERTS, "signers", "kubernetes.io/kube-apiserver-client-kubelet", "approve")],
    ),
    role(
        "system:service-account-issuer-discovery",
        &[urls(
            "/.well-known/openid-configuration /.well-known/openid-configuration/ /openid/v1/jwks /openid/v1/jwks/",
            "get",
        )],
    ),
    role(
        "system:node-proxier",
        &[
            r(CORE, "services endpoints", "list watch"),
            r(CORE, "nodes", READ),
            EVENTS,
            r(NETWORKING, "servicecidrs", "list watch"),
            r(DISCOVERY, "endpointslices", "list watch"),
        ],
    ),
    role("system:kube-scheduler", KUBE_SCHEDULER),
];

const AGGREGATE_TO_EDIT: &[Rule] = &[
    r(CORE, "pods/attach pods/proxy pods/exec pods/portforward secrets services/proxy", READ),
    r(CORE, "serviceaccounts", "impersonate"),
    r(CORE, "pods pods/attach pods/proxy pods/exec pods/portforward", WRITE),
    r(CORE, "pods/eviction", "create"),
    r(
        CORE,
        "replicationcontrollers replicationcontrollers/scale serviceaccounts services services/proxy persistentvolumeclaims configmaps secrets",
        WRITE,
    ),
    r(CORE, "serviceaccounts/token", "create"),
    r(CORE_EVENTS, "events", WRITE),
    r(
        APPS,
        "statefulsets statefulsets/scale daemonsets deployments deployments/scale deployments/rollback replicasets replicasets/scale",
        WRITE,
    ),
    r(AUTOSCALING, "horizontalpodautoscalers", WRITE),
    r(BATCH, "jobs cronjobs", WRITE),
    r(
        EXT,
        "daemonsets deployments deployments/scale deployments/rollback ingresses replicasets replicasets/scale replicationcontrollers/scale networkpolicies",
        WRITE,
    ),
    r(POLICY, "poddisruptionbudgets", WRITE),
    r(NETWORKING, "networkpolicies ingresses", WRITE),
    r(COORDINATION, "leases", READ_WRITE),
    r(RESOURCE, "resourceclaims resourceclaimtemplates", WRITE),
];

const AGGREGATE_TO_VIEW: &[Rule] = &[
    r(
        CORE,
        "pods replicationcontrollers replicationcontrollers/scale serviceaccounts services services/status endpoints persistentvolumeclaims persistentvolumeclaims/status configmaps",
        READ,
    ),
    r(
        CORE,
        "limitranges resourcequotas bindings pods/status resourcequotas/status namespaces/status replicationcontrollers/status pods/log",
        READ,
    ),
    r(CORE, "namespaces", READ),
    r(CORE_EVENTS, "events", READ),
    r(DISCOVERY, "endpointslices", READ),
    r(
        APPS,
        "controllerrevisions statefulsets statefulsets/status statefulsets/scale daemonsets daemonsets/status deployments deployments/status deployments/scale replicasets replicasets/status replicasets/scale",
        READ,
    ),
    r(AUTOSCALING, "horizontalpodautoscalers horizontalpodautoscalers/status", READ),
    r(BATCH, "jobs cronjobs cronjobs/status jobs/status", READ),
    r(
        EXT,
        "daemonsets daemonsets/status deployments deployments/scale deployments/status ingresses ingresses/status replicasets replicasets/scale replicasets/status replicationcontrollers/scale networkpolicies",
        READ,
    ),
    r(POLICY, "poddisruptionbudgets poddisruptionbudgets/status", READ),
    r(NETWORKING, "networkpolicies ingresses ingresses/status", READ),
    r(RESOURCE, "resourceclaims resourceclaims/status resourceclaimtemplates", READ),
];

/// What a kubelet may do (the Node authorizer narrows it to its own objects).
const NODE: &[Rule] = &[
    r(AUTHN, "tokenreviews", "create"),
    r(AUTHZ, "subjectaccessreviews localsubjectaccessreviews", "create"),
    r(CORE, "services", READ),
    r(CORE, "nodes", "create get list watch"),
    r(CORE, "nodes/status", "update patch"),
    r(CORE, "nodes", "update patch"),
    EVENTS,
    r(CORE, "pods", READ),
    r(CORE, "pods", "create delete"),
    r(CORE, "pods/status", "update patch"),
    r(CORE, "pods/eviction", "create"),
    r(CORE, "secrets configmaps", READ),
    r(CORE, "persistentvolumeclaims persistentvolumes", "get"),
    r(CORE, "endpoints", "get"),
    r(CERTS, "certificatesigningrequests", "create get list watch"),
    r(COORDINATION, "leases", "get create update patch delete"),
    r(STORAGE, "volumeattachments", "get"),
    r(CORE, "serviceaccounts/token", "create"),
    r(CORE, "persistentvolumeclaims/status", "get update patch"),
    r(STORAGE, "csidrivers", READ),
    r(STORAGE, "csinodes", "get create update patch delete"),
    r(&["node.k8s.io"], "runtimeclasses", READ),
    r(RESOURCE, "resourceclaims", "get"),
    r(RESOURCE, "resourceslices", "deletecollection"),
    r(CORE, "serviceaccounts", "get"),
];

const KUBE_CONTROLLER_MANAGER: &[Rule] = &[
    EVENTS,
    r(COORDINATION, "leases", "create"),
    named(COORDINATION, "leases", "kube-controller-manager", "get update"),
    r(CORE, "secrets serviceaccounts", "create"),
    r(CORE, "secrets", "delete"),
    r(CORE, "namespaces secrets serviceaccounts configmaps", "get"),
    r(CORE, "secrets serviceaccounts", "update"),
    r(AUTHN, "tokenreviews", "create"),
    r(AUTHZ, "subjectaccessreviews", "create"),
    r(&["*"], "*", "list watch"),
    r(CORE, "serviceaccounts/token", "create"),
];

const KUBE_SCHEDULER: &[Rule] = &[
    EVENTS,
    r(COORDINATION, "leases", "create"),
    named(COORDINATION, "leases", "kube-scheduler", "get list update watch"),
    r(COORDINATION, "leasecandidates", READ_WRITE),
    r(CORE, "nodes", READ),
    r(CORE, "pods", "get list watch delete"),
    r(CORE, "pods/binding bindings", "create"),
    r(CORE, "pods/status", "patch update"),
    r(CORE, "services replicationcontrollers", READ),
    r(APPS_EXT, "replicasets", READ),
    r(APPS, "statefulsets", READ),
    r(POLICY, "poddisruptionbudgets", READ),
    r(CORE, "persistentvolumeclaims persistentvolumes", READ),
    r(AUTHN, "tokenreviews", "create"),
    r(AUTHZ, "subjectaccessreviews", "create"),
    r(STORAGE, "csinodes", READ),
    r(STORAGE, "volumeattachments", READ),
    r(CORE, "namespaces", READ),
    r(STORAGE, "csidrivers", READ),
    r(STORAGE, "csistoragecapacities", READ),
    r(RESOURCE, "deviceclasses", READ),
    r(RESOURCE, "resourceclaims", READ_UPDATE),
    r(RESOURCE, "resourceclaims/status", READ_UPDATE),
    r(CORE, "pods/finalizers", "update"),
    r(RESOURCE, "resourceslices", READ),
    r(RESOURCE, "resourceclaims", "create delete"),
];
