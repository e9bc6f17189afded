//! The `system:controller:*` ClusterRoles: one per kube-controller-manager controller that
//! runs under its own kube-system service account (`--use-service-account-credentials`),
//! with upstream v1.35's default feature gates. Each row is the name after
//! `system:controller:` (also the service account's name) and the role's rules in
//! upstream's order; `cluster_role_bindings` binds each to its service account.

use super::{EVENTS, READ, Rule, named, r};

const CORE: &[&str] = &[""];
const APPS: &[&str] = &["apps"];
const APPS_EXT: &[&str] = &["apps", "extensions"];
const BATCH: &[&str] = &["batch"];
const POLICY: &[&str] = &["policy"];
const STORAGE: &[&str] = &["storage.k8s.io"];
const CERTS: &[&str] = &["certificates.k8s.io"];
const DISCOVERY: &[&str] = &["discovery.k8s.io"];
const NETWORKING: &[&str] = &["networking.k8s.io"];
const RESOURCE: &[&str] = &["resource.k8s.io"];
const ALL: &[&str] = &["*"];
const CRUD: &str = "create delete get list patch update watch";

pub(super) const CONTROLLER_ROLES: &[(&str, &[Rule])] = &[
    (
        "attachdetach-controller",
        &[
            r(CORE, "persistentvolumes persistentvolumeclaims", "list watch"),
            r(CORE, "nodes", READ),
            r(CORE, "nodes/status", "patch update"),
            r(CORE, "pods", "list watch"),
            EVENTS,
            r(STORAGE, "volumeattachments", "get create delete list watch"),
            r(STORAGE, "csidrivers", READ),
            r(STORAGE, "csinodes", READ),
        ],
    ),
    (
        "clusterrole-aggregation-controller",
        &[r(
            &["rbac.authorization.k8s.io"],
            "clusterroles",
            "escalate get list watch update patch",
        )],
    ),
    (
        "cronjob-controller",
        &[
            r(BATCH, "cronjobs", "get list watch update"),
            r(BATCH, "jobs", CRUD),
            r(BATCH, "cronjobs/status", "update"),
            r(BATCH, "cronjobs/finalizers", "update"),
            r(CORE, "pods", "list watch delete"),
            EVENTS,
        ],
    ),
    (
        "daemon-set-controller",
        &[
            r(APPS_EXT, "daemonsets", READ),
            r(APPS_EXT, "daemonsets/status", "update"),
            r(APPS_EXT, "daemonsets/finalizers", "update"),
            r(CORE, "nodes", "list watch"),
            r(CORE, "pods", "list watch create delete patch"),
            r(CORE, "pods/binding", "create"),
            r(APPS, "controllerrevisions", CRUD),
            EVENTS,
        ],
    ),
    (
        "deployment-controller",
        &[
            r(APPS_EXT, "deployments", "get list watch update"),
            r(APPS_EXT, "deployments/status", "update"),
            r(APPS_EXT, "deployments/finalizers", "update"),
            r(APPS_EXT, "replicasets", CRUD),
            r(CORE, "pods", "get list watch update"),
            EVENTS,
        ],
    ),
    (
        "disruption-controller",
        &[
            r(APPS_EXT, "deployments", READ),
            r(APPS_EXT, "replicasets", READ),
            r(CORE, "replicationcontrollers", READ),
            r(POLICY, "poddisruptionbudgets", READ),
            r(APPS, "statefulsets", READ),
            r(POLICY, "poddisruptionbudgets/status", "update"),
            r(CORE, "pods/status", "patch update"),
            r(ALL, "*/scale", "get"),
            EVENTS,
        ],
    ),
    (
        "endpoint-controller",
        &[
            r(CORE, "services pods", READ),
            r(CORE, "endpoints", "get list watch create update delete"),
            r(CORE, "endpoints/restricted", "create"),
            EVENTS,
        ],
    ),
    (
        "endpointslice-controller",
        &[
            r(CORE, "services pods nodes", READ),
            r(CORE, "services/finalizers", "update"),
            r(DISCOVERY, "endpointslices", "get list watch create update delete"),
            EVENTS,
        ],
    ),
    (
        "endpointslicemirroring-controller",
        &[
            r(CORE, "services endpoints", READ),
            r(CORE, "services/finalizers", "update"),
            r(CORE, "endpoints/finalizers", "update"),
            r(DISCOVERY, "endpointslices", "get list watch create update delete"),
            EVENTS,
        ],
    ),
    (
        "expand-controller",
        &[
            r(CORE, "persistentvolumes", "get list watch update patch"),
            r(CORE, "persistentvolumeclaims/status", "update patch"),
            r(CORE, "persistentvolumeclaims", READ),
            EVENTS,
        ],
    ),
    (
        "ephemeral-volume-controller",
        &[
            r(CORE, "pods", READ),
            r(CORE, "pods/finalizers", "update"),
            r(CORE, "persistentvolumeclaims", "get list watch create"),
            EVENTS,
        ],
    ),
    (
        "resource-claim-controller",
        &[
            r(CORE, "pods", READ),
            r(CORE, "pods/finalizers", "update"),
            r(RESOURCE, "resourceclaims", "get list watch create delete"),
            r(RESOURCE, "resourceclaims resourceclaims/status", "update patch"),
            r(CORE, "pods/status", "update patch"),
            EVENTS,
            r(RESOURCE, "resourceclaims/binding", "update patch"),
        ],
    ),
    (
        "device-taint-eviction-controller",
        &[
            r(CORE, "pods", "get list watch delete"),
            r(CORE, "pods/status", "update patch"),
            r(RESOURCE, "resourceclaims", READ),
            r(RESOURCE, "resourceslices", READ),
            r(RESOURCE, "deviceclasses", READ),
            EVENTS,
        ],
    ),
    ("generic-garbage-collector", &[r(ALL, "*", "get list watch patch update delete"), EVENTS]),
    (
        "horizontal-pod-autoscaler",
        &[
            r(&["autoscaling"], "horizontalpodautoscalers", READ),
            r(&["autoscaling"], "horizontalpodautoscalers/status", "update"),
            r(ALL, "*/scale", "get update"),
            r(CORE, "pods", "list watch"),
            r(&["metrics.k8s.io"], "pods", "list watch"),
            r(&["custom.metrics.k8s.io"], "*", READ),
            r(&["external.metrics.k8s.io"], "*", READ),
            EVENTS,
        ],
    ),
    (
        "job-controller",
        &[
            r(BATCH, "jobs", "get list watch update patch"),
            r(BATCH, "jobs/status", "update"),
            r(BATCH, "jobs/finalizers", "update"),
            r(CORE, "pods", "list watch create delete patch"),
            EVENTS,
        ],
    ),
    (
        "namespace-controller",
        &[
            r(CORE, "namespaces", "get list watch delete"),
            r(CORE, "namespaces/finalize namespaces/status", "update"),
            r(ALL, "*", "get list watch delete deletecollection"),
        ],
    ),
    (
        "node-controller",
        &[
            r(CORE, "nodes", "get list watch update patch delete"),
            r(CORE, "nodes/status", "patch update"),
            r(CORE, "pods/status", "patch update"),
            r(CORE, "pods", "list watch get delete"),
            EVENTS,
        ],
    ),
    (
        "persistent-volume-binder",
        &[
            r(CORE, "persistentvolumes", "get list watch update create delete"),
            r(CORE, "persistentvolumes/status", "update"),
            r(CORE, "persistentvolumeclaims", "get list watch update"),
            r(CORE, "persistentvolumeclaims/status", "update"),
            r(CORE, "pods", "get list watch create delete"),
            r(STORAGE, "storageclasses", READ),
            r(CORE, "nodes", "list watch"),
            EVENTS,
            r(CORE, "events", "watch"),
        ],
    ),
    (
        "pod-garbage-collector",
        &[
            r(CORE, "pods", "list watch delete"),
            r(CORE, "nodes", READ),
            r(CORE, "pods/status", "patch"),
        ],
    ),
    (
        "replicaset-controller",
        &[
            r(APPS_EXT, "replicasets", "get list watch update"),
            r(APPS_EXT, "replicasets/status", "update"),
            r(APPS_EXT, "replicasets/finalizers", "update"),
            r(CORE, "pods", "list watch patch create delete"),
            EVENTS,
        ],
    ),
    (
        "replication-controller",
        &[
            r(CORE, "replicationcontrollers", "get list watch update"),
            r(CORE, "replicationcontrollers/status", "update"),
            r(CORE, "replicationcontrollers/finalizers", "update"),
            r(CORE, "pods", "list watch patch create delete"),
            EVENTS,
        ],
    ),
    (
        "resourcequota-controller",
        &[r(ALL, "*", "list watch"), r(CORE, "resourcequotas/status", "update"), EVENTS],
    ),
    (
        "route-controller",
        &[r(CORE, "nodes", "list watch"), r(CORE, "nodes/status", "patch"), EVENTS],
    ),
    ("service-account-controller", &[r(CORE, "serviceaccounts", "create"), EVENTS]),
    (
        "service-controller",
        &[
            r(CORE, "services", READ),
            r(CORE, "services/status", "patch update"),
            r(CORE, "nodes", "list watch"),
            EVENTS,
        ],
    ),
    (
        "statefulset-controller",
        &[
            r(CORE, "pods", "list watch"),
            r(APPS, "statefulsets", READ),
            r(APPS, "statefulsets/status", "update"),
            r(APPS, "statefulsets/finalizers", "update"),
            r(CORE, "pods", "get create delete update patch"),
            r(APPS, "controllerrevisions", CRUD),
            r(CORE, "persistentvolumeclaims", "get list watch create"),
            r(CORE, "persistentvolumeclaims", "update delete"),
            r(CORE, "pods/finalizers", "update"),
            EVENTS,
        ],
    ),
    ("ttl-controller", &[r(CORE, "nodes", "update patch list watch"), EVENTS]),
    (
        "certificate-controller",
        &[
            r(CERTS, "certificatesigningrequests", "get list watch delete"),
            r(
                CERTS,
                "certificatesigningrequests/status certificatesigningrequests/approval",
                "update",
            ),
            named(CERTS, "signers", "kubernetes.io/kube-apiserver-client-kubelet", "approve"),
            named(
                CERTS,
                "signers",
                "kubernetes.io/kube-apiserver-client kubernetes.io/kube-apiserver-client-kubelet kubernetes.io/kubelet-serving kubernetes.io/legacy-unknown",
                "sign",
            ),
            r(&["authorization.k8s.io"], "subjectaccessreviews", "create"),
            EVENTS,
        ],
    ),
    (
        "pvc-protection-controller",
        &[
            r(CORE, "persistentvolumeclaims", "get list watch update"),
            r(CORE, "persistentvolumeclaims/status", "update"),
            r(CORE, "pods", READ),
            EVENTS,
        ],
    ),
    ("pv-protection-controller", &[r(CORE, "persistentvolumes", "get list watch update"), EVENTS]),
    ("ttl-after-finished-controller", &[r(BATCH, "jobs", "get list watch delete"), EVENTS]),
    ("root-ca-cert-publisher", &[r(CORE, "configmaps", "create update"), EVENTS]),
    (
        "validatingadmissionpolicy-status-controller",
        &[
            r(&["admissionregistration.k8s.io"], "validatingadmissionpolicies", READ),
            r(
                &["admissionregistration.k8s.io"],
                "validatingadmissionpolicies/status",
                "get patch update",
            ),
            EVENTS,
        ],
    ),
    (
        "legacy-service-account-token-cleaner",
        &[
            named(
                CORE,
                "configmaps",
                "kube-apiserver-legacy-service-account-token-tracking",
                "get",
            ),
            r(CORE, "secrets", "patch delete"),
        ],
    ),
    (
        "service-cidrs-controller",
        &[
            r(NETWORKING, "servicecidrs", "get list watch patch update"),
            r(NETWORKING, "servicecidrs/finalizers", "patch update"),
            r(NETWORKING, "servicecidrs/status", "patch update"),
            r(NETWORKING, "ipaddresses", READ),
            EVENTS,
        ],
    ),
    (
        "selinux-warning-controller",
        &[
            EVENTS,
            r(CORE, "persistentvolumes", READ),
            r(CORE, "persistentvolumeclaims", READ),
            r(CORE, "pods", READ),
            r(STORAGE, "csidrivers", READ),
        ],
    ),
    (
        "volumeattributesclass-protection-controller",
        &[
            r(CORE, "persistentvolumeclaims", READ),
            r(CORE, "persistentvolumes", READ),
            r(STORAGE, "volumeattributesclasses", "get list watch update"),
            EVENTS,
        ],
    ),
];
