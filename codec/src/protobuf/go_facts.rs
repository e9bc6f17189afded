//! Which protobuf fields are Go non-pointer fields in upstream's API types — a fact no
//! schema source carries (k8s-openapi, k8s-pb and generated.proto all say `optional`).
//!
//! Upstream's gogo marshaller writes every non-pointer field, zero or not (an empty
//! string, a 0, false, an empty struct, a zero `Time` as an empty message), and omits
//! only nil pointers, empty slices and empty maps. Written by hand from upstream's
//! v1.35 `types.go` files (k8s.io/api, k8s.io/apimachinery).
//!
//! Each row names a message (OpenAPI definition name) and its singular non-pointer
//! fields by JSON name; every singular field not named is a pointer. A name with a `!`
//! prefix has no `omitempty` in its JSON tag, so upstream's JSON shows its zero value.
//! Embedded (inline) structs are always written and are not listed. Messages without a
//! row are not covered: their fields are written only when present, as before.
//! Invariant (tested): every row and name exists in the tables and is singular.

const CORE: &str = "io.k8s.api.core.v1.";
const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";
const APPS: &str = "io.k8s.api.apps.v1.";
const COORDINATION: &str = "io.k8s.api.coordination.v1.";
const DISCOVERY: &str = "io.k8s.api.discovery.v1.";
const BATCH: &str = "io.k8s.api.batch.v1.";
const RBAC: &str = "io.k8s.api.rbac.v1.";
const SCHEDULING: &str = "io.k8s.api.scheduling.v1.";
const FLOWCONTROL: &str = "io.k8s.api.flowcontrol.v1.";
const EVENTS: &str = "io.k8s.api.events.v1.";
const AUTOSCALING: &str = "io.k8s.api.autoscaling.v1.";

/// (package prefix, message, non-pointer fields separated by spaces).
pub(crate) const ROWS: &[(&str, &str, &str)] = &[
    // meta/v1
    (
        META,
        "ObjectMeta",
        "name generateName namespace selfLink uid resourceVersion generation creationTimestamp",
    ),
    (META, "ListMeta", "selfLink resourceVersion continue"),
    (META, "OwnerReference", "!apiVersion !kind !name !uid"),
    (META, "ManagedFieldsEntry", "manager operation apiVersion fieldsType subresource"),
    (META, "LabelSelector", ""),
    (META, "LabelSelectorRequirement", "!key !operator"),
    (META, "Status", "metadata status message reason code"),
    (META, "StatusDetails", "name group kind uid retryAfterSeconds"),
    (META, "StatusCause", "reason message field"),
    // autoscaling/v1 (the scale subresource)
    (AUTOSCALING, "Scale", "metadata spec status"),
    (AUTOSCALING, "ScaleSpec", "replicas"),
    (AUTOSCALING, "ScaleStatus", "!replicas selector"),
    // core/v1: Pod and its common children
    (CORE, "Pod", "metadata spec status"),
    (
        CORE,
        "PodSpec",
        "restartPolicy dnsPolicy serviceAccountName serviceAccount nodeName hostNetwork \
         hostPID hostIPC hostname subdomain schedulerName priorityClassName",
    ),
    (CORE, "PodTemplateSpec", "metadata spec"),
    (
        CORE,
        "Container",
        "!name image workingDir resources terminationMessagePath terminationMessagePolicy \
         imagePullPolicy stdin stdinOnce tty",
    ),
    (CORE, "ContainerPort", "name hostPort !containerPort protocol hostIP"),
    (CORE, "EnvVar", "!name value"),
    (CORE, "EnvVarSource", ""),
    (CORE, "EnvFromSource", "prefix"),
    (CORE, "ObjectFieldSelector", "apiVersion !fieldPath"),
    (CORE, "ConfigMapKeySelector", "!key"),
    (CORE, "SecretKeySelector", "!key"),
    (CORE, "LocalObjectReference", "name"),
    (CORE, "ResourceRequirements", ""),
    (CORE, "VolumeMount", "!name readOnly !mountPath subPath subPathExpr"),
    (CORE, "Volume", "!name"),
    (CORE, "VolumeSource", ""),
    (CORE, "ConfigMapVolumeSource", ""),
    (CORE, "SecretVolumeSource", "secretName"),
    (CORE, "EmptyDirVolumeSource", "medium"),
    (CORE, "HostPathVolumeSource", "!path"),
    (CORE, "PersistentVolumeClaimVolumeSource", "!claimName readOnly"),
    (CORE, "ProjectedVolumeSource", ""),
    (CORE, "VolumeProjection", ""),
    (CORE, "ServiceAccountTokenProjection", "audience !path"),
    (CORE, "ConfigMapProjection", ""),
    (CORE, "DownwardAPIProjection", ""),
    (CORE, "DownwardAPIVolumeFile", "!path"),
    (CORE, "KeyToPath", "!key !path"),
    (
        CORE,
        "Probe",
        "initialDelaySeconds timeoutSeconds periodSeconds successThreshold failureThreshold",
    ),
    (CORE, "ProbeHandler", ""),
    (CORE, "LifecycleHandler", ""),
    (CORE, "Lifecycle", ""),
    (CORE, "ExecAction", ""),
    (CORE, "HTTPGetAction", "path !port host scheme"),
    (CORE, "HTTPHeader", "!name !value"),
    (CORE, "TCPSocketAction", "!port host"),
    (CORE, "GRPCAction", "!port"),
    (CORE, "SecurityContext", ""),
    (CORE, "PodSecurityContext", ""),
    (CORE, "Capabilities", ""),
    (CORE, "SeccompProfile", "!type"),
    (CORE, "Toleration", "key operator value effect"),
    (CORE, "PodOS", "!name"),
    (CORE, "PodReadinessGate", "!conditionType"),
    (CORE, "TopologySpreadConstraint", "!maxSkew !topologyKey !whenUnsatisfiable"),
    (
        CORE,
        "PodStatus",
        "observedGeneration phase message reason nominatedNodeName hostIP podIP qosClass resize",
    ),
    (
        CORE,
        "PodCondition",
        "!type observedGeneration !status lastProbeTime lastTransitionTime reason message",
    ),
    (CORE, "Binding", "metadata target"),
    (CORE, "PodIP", "!ip"),
    (CORE, "HostIP", "!ip"),
    (
        CORE,
        "ContainerStatus",
        "!name state lastState !ready !restartCount !image !imageID containerID",
    ),
    (CORE, "ContainerState", ""),
    (CORE, "ContainerStateRunning", "startedAt"),
    (CORE, "ContainerStateWaiting", "reason message"),
    (
        CORE,
        "ContainerStateTerminated",
        "!exitCode signal reason message startedAt finishedAt containerID",
    ),
    // core/v1: the other common kinds
    (CORE, "ConfigMap", "metadata"),
    (CORE, "Secret", "metadata type"),
    (CORE, "Namespace", "metadata spec status"),
    (CORE, "NamespaceSpec", ""),
    (CORE, "NamespaceStatus", "phase"),
    (CORE, "Service", "metadata spec status"),
    (
        CORE,
        "ServiceSpec",
        "clusterIP type sessionAffinity loadBalancerIP externalName externalTrafficPolicy \
         healthCheckNodePort publishNotReadyAddresses",
    ),
    (CORE, "ServicePort", "name protocol !port targetPort nodePort"),
    (CORE, "ServiceStatus", "loadBalancer"),
    (CORE, "LoadBalancerStatus", ""),
    (CORE, "Node", "metadata spec status"),
    (CORE, "NodeSpec", "podCIDR providerID unschedulable externalID"),
    (CORE, "Taint", "!key value !effect"),
    (CORE, "NodeStatus", "phase daemonEndpoints nodeInfo"),
    (CORE, "NodeCondition", "!type !status lastHeartbeatTime lastTransitionTime reason message"),
    (CORE, "NodeAddress", "!type !address"),
    (CORE, "NodeDaemonEndpoints", "kubeletEndpoint"),
    (CORE, "DaemonEndpoint", "!Port"),
    (
        CORE,
        "NodeSystemInfo",
        "!machineID !systemUUID !bootID !kernelVersion !osImage !containerRuntimeVersion \
         !kubeletVersion !kubeProxyVersion !operatingSystem !architecture",
    ),
    (CORE, "ContainerImage", "sizeBytes"),
    (
        CORE,
        "Event",
        "metadata involvedObject reason message source firstTimestamp lastTimestamp count \
         type eventTime action !reportingComponent !reportingInstance",
    ),
    (CORE, "EventSource", "component host"),
    (CORE, "EventSeries", "count lastObservedTime"),
    (
        CORE,
        "EphemeralContainerCommon",
        "!name image workingDir resources terminationMessagePath terminationMessagePolicy \
         imagePullPolicy stdin stdinOnce tty",
    ),
    (CORE, "EphemeralContainer", "targetContainerName"),
    (CORE, "ObjectReference", "kind namespace name uid apiVersion resourceVersion fieldPath"),
    (CORE, "Endpoints", "metadata"),
    (CORE, "EndpointSubset", ""),
    (CORE, "EndpointAddress", "!ip hostname"),
    (CORE, "EndpointPort", "name !port protocol"),
    // coordination/v1
    (COORDINATION, "Lease", "metadata spec"),
    (COORDINATION, "LeaseSpec", ""),
    // apps/v1
    (APPS, "Deployment", "metadata spec status"),
    (APPS, "DeploymentSpec", "template strategy minReadySeconds paused"),
    (APPS, "DeploymentStrategy", "type"),
    (APPS, "RollingUpdateDeployment", ""),
    (
        APPS,
        "DeploymentStatus",
        "observedGeneration replicas updatedReplicas readyReplicas availableReplicas \
         unavailableReplicas",
    ),
    (APPS, "DeploymentCondition", "!type !status lastUpdateTime lastTransitionTime reason message"),
    (APPS, "ReplicaSet", "metadata spec status"),
    (APPS, "ReplicaSetSpec", "minReadySeconds template"),
    (
        APPS,
        "ReplicaSetStatus",
        "!replicas fullyLabeledReplicas readyReplicas availableReplicas observedGeneration",
    ),
    (APPS, "ReplicaSetCondition", "!type !status lastTransitionTime reason message"),
    (CORE, "ServiceAccount", "metadata"),
    (CORE, "PersistentVolumeClaim", "metadata spec status"),
    (CORE, "PersistentVolumeClaimSpec", "resources volumeName"),
    (CORE, "VolumeResourceRequirements", ""),
    (CORE, "PersistentVolumeClaimStatus", "phase"),
    // apps/v1: the other workloads
    (APPS, "StatefulSet", "metadata spec status"),
    (
        APPS,
        "StatefulSetSpec",
        "template serviceName podManagementPolicy updateStrategy minReadySeconds",
    ),
    (APPS, "StatefulSetUpdateStrategy", "type"),
    (
        APPS,
        "StatefulSetStatus",
        "observedGeneration !replicas readyReplicas currentReplicas updatedReplicas \
         currentRevision updateRevision !availableReplicas",
    ),
    (APPS, "DaemonSet", "metadata spec status"),
    (APPS, "DaemonSetSpec", "template updateStrategy minReadySeconds"),
    (APPS, "DaemonSetUpdateStrategy", "type"),
    (
        APPS,
        "DaemonSetStatus",
        "!currentNumberScheduled !numberMisscheduled !desiredNumberScheduled !numberReady \
         observedGeneration updatedNumberScheduled numberAvailable numberUnavailable",
    ),
    // batch/v1
    (BATCH, "Job", "metadata spec status"),
    (BATCH, "JobSpec", "template"),
    (BATCH, "JobStatus", "active succeeded failed completedIndexes"),
    (BATCH, "JobCondition", "!type !status lastProbeTime lastTransitionTime reason message"),
    (BATCH, "CronJob", "metadata spec status"),
    (BATCH, "CronJobSpec", "!schedule concurrencyPolicy jobTemplate"),
    (BATCH, "JobTemplateSpec", "metadata spec"),
    (BATCH, "CronJobStatus", ""),
    // rbac/v1 (bootstrap roles and bindings)
    (RBAC, "Role", "metadata"),
    (RBAC, "ClusterRole", "metadata"),
    (RBAC, "AggregationRule", ""),
    (RBAC, "PolicyRule", ""),
    (RBAC, "RoleBinding", "metadata roleRef"),
    (RBAC, "ClusterRoleBinding", "metadata roleRef"),
    (RBAC, "Subject", "!kind apiGroup !name namespace"),
    (RBAC, "RoleRef", "!apiGroup !kind !name"),
    // scheduling/v1 (system priority classes)
    (SCHEDULING, "PriorityClass", "metadata !value globalDefault description"),
    // flowcontrol/v1 (bootstrap flow schemas and priority levels)
    (FLOWCONTROL, "FlowSchema", "metadata spec status"),
    (FLOWCONTROL, "FlowSchemaSpec", "priorityLevelConfiguration !matchingPrecedence"),
    (FLOWCONTROL, "PriorityLevelConfigurationReference", "!name"),
    (FLOWCONTROL, "FlowDistinguisherMethod", "!type"),
    (FLOWCONTROL, "PolicyRulesWithSubjects", ""),
    (FLOWCONTROL, "Subject", "!kind"),
    (FLOWCONTROL, "UserSubject", "!name"),
    (FLOWCONTROL, "GroupSubject", "!name"),
    (FLOWCONTROL, "ServiceAccountSubject", "!namespace !name"),
    (FLOWCONTROL, "ResourcePolicyRule", "clusterScope"),
    (FLOWCONTROL, "NonResourcePolicyRule", ""),
    (FLOWCONTROL, "FlowSchemaStatus", ""),
    (FLOWCONTROL, "FlowSchemaCondition", "type status lastTransitionTime reason message"),
    (FLOWCONTROL, "PriorityLevelConfiguration", "metadata spec status"),
    (FLOWCONTROL, "PriorityLevelConfigurationSpec", "!type"),
    (FLOWCONTROL, "LimitedPriorityLevelConfiguration", "limitResponse"),
    (FLOWCONTROL, "ExemptPriorityLevelConfiguration", ""),
    (FLOWCONTROL, "LimitResponse", "!type"),
    (FLOWCONTROL, "QueuingConfiguration", "!queues !handSize !queueLengthLimit"),
    (FLOWCONTROL, "PriorityLevelConfigurationStatus", ""),
    (
        FLOWCONTROL,
        "PriorityLevelConfigurationCondition",
        "type status lastTransitionTime reason message",
    ),
    // events.k8s.io/v1
    (
        EVENTS,
        "Event",
        "metadata eventTime reportingController reportingInstance action reason regarding \
         note type deprecatedSource deprecatedFirstTimestamp deprecatedLastTimestamp \
         deprecatedCount",
    ),
    (EVENTS, "EventSeries", "!count lastObservedTime"),
    // discovery/v1
    (DISCOVERY, "EndpointSlice", "metadata !addressType"),
    (DISCOVERY, "Endpoint", "conditions"),
    (DISCOVERY, "EndpointConditions", ""),
    (DISCOVERY, "EndpointPort", ""),
    (DISCOVERY, "EndpointHints", ""),
    (DISCOVERY, "ForZone", "!name"),
];
