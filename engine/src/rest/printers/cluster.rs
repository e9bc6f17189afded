//! Printers of the remaining groups: rbac (role bindings), autoscaling, policy,
//! scheduling, node, coordination, certificates, admissionregistration,
//! apiregistration, flowcontrol and resource.k8s.io.

use super::cells::{
    age, at, condition_status, deleting, int_at, int_or_string, len_at, list_at, map_at, name,
    opt_bool, opt_int, opt_str, str_at,
};
use super::{AGE, Column, Desc, NAME, Printer, col, printer, wide};
use crate::rest::table::human_duration;
use serde_json::{Value, json};
use std::cmp::Ordering;

const fn binding_columns(
    role: Desc,
    users: &'static str,
    groups: &'static str,
    sas: &'static str,
) -> [Column; 6] {
    [
        NAME,
        col("Role", "string", role),
        AGE,
        wide("Users", "string", Desc::Text(users)),
        wide("Groups", "string", Desc::Text(groups)),
        wide("ServiceAccounts", "string", Desc::Text(sas)),
    ]
}

static ROLE_BINDING_COLUMNS: [Column; 6] = binding_columns(
    Desc::Doc("rbac.v1.RoleBinding", "roleRef"),
    "Users in the roleBinding",
    "Groups in the roleBinding",
    "ServiceAccounts in the roleBinding",
);

static CLUSTER_ROLE_BINDING_COLUMNS: [Column; 6] = binding_columns(
    Desc::Doc("rbac.v1.ClusterRoleBinding", "roleRef"),
    "Users in the clusterRoleBinding",
    "Groups in the clusterRoleBinding",
    "ServiceAccounts in the clusterRoleBinding",
);

pub static ROLE_BINDING: Printer = printer(&ROLE_BINDING_COLUMNS, binding);
pub static CLUSTER_ROLE_BINDING: Printer = printer(&CLUSTER_ROLE_BINDING_COLUMNS, binding);

/// Role reference and the users, groups and service accounts (`namespace/name`) bound.
fn binding(o: &Value) -> Vec<Value> {
    let role = format!("{}/{}", str_at(o, &["roleRef", "kind"]), str_at(o, &["roleRef", "name"]));
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for s in list_at(o, &["subjects"]) {
        let subject = str_at(s, &["name"]);
        match str_at(s, &["kind"]) {
            "User" => users.push(subject.to_string()),
            "Group" => groups.push(subject.to_string()),
            "ServiceAccount" => sas.push(format!("{}/{subject}", str_at(s, &["namespace"]))),
            _ => {}
        }
    }
    vec![
        json!(name(o)),
        json!(role),
        json!(age(o)),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(sas.join(", ")),
    ]
}

const HPA_SPEC: &str = "autoscaling.v2.HorizontalPodAutoscalerSpec";

pub static HORIZONTAL_POD_AUTOSCALER: Printer = printer(
    &[
        NAME,
        col("Reference", "string", Desc::Doc(HPA_SPEC, "scaleTargetRef")),
        col("Targets", "string", Desc::Doc(HPA_SPEC, "metrics")),
        col("MinPods", "string", Desc::Doc(HPA_SPEC, "minReplicas")),
        col("MaxPods", "string", Desc::Doc(HPA_SPEC, "maxReplicas")),
        col(
            "Replicas",
            "string",
            Desc::Doc("autoscaling.v2.HorizontalPodAutoscalerStatus", "currentReplicas"),
        ),
        AGE,
    ],
    horizontal_pod_autoscaler,
);

fn horizontal_pod_autoscaler(o: &Value) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        str_at(o, &["spec", "scaleTargetRef", "kind"]),
        str_at(o, &["spec", "scaleTargetRef", "name"])
    );
    let min = opt_int(o, &["spec", "minReplicas"]).map_or("<unset>".into(), |m| m.to_string());
    vec![
        json!(name(o)),
        json!(reference),
        json!(hpa_metrics(o)),
        json!(min),
        json!(int_at(o, &["spec", "maxReplicas"])),
        json!(int_at(o, &["status", "currentReplicas"])),
        json!(age(o)),
    ]
}

/// `formatHPAMetrics`; an autoscaling/v1 object reads as its CPU utilization metric.
fn hpa_metrics(o: &Value) -> String {
    let (specs, statuses) = match opt_int(o, &["spec", "targetCPUUtilizationPercentage"]) {
        Some(target) => {
            let current = opt_int(o, &["status", "currentCPUUtilizationPercentage"]);
            v1_cpu_metric(target, current)
        }
        None => (
            list_at(o, &["spec", "metrics"]).to_vec(),
            list_at(o, &["status", "currentMetrics"]).to_vec(),
        ),
    };
    if specs.is_empty() {
        return "<none>".into();
    }
    let list: Vec<String> =
        specs.iter().enumerate().map(|(i, s)| hpa_metric(s, statuses.get(i))).collect();
    let shown = list.iter().take(2).cloned().collect::<Vec<_>>().join(", ");
    if list.len() > 2 { format!("{shown} + {} more...", list.len() - 2) } else { shown }
}

fn v1_cpu_metric(target: i64, current: Option<i64>) -> (Vec<Value>, Vec<Value>) {
    let spec = json!({"type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}});
    let status = match current {
        Some(c) => vec![json!({"type": "Resource",
            "resource": {"name": "cpu", "current": {"averageUtilization": c}}})],
        None => Vec::new(),
    };
    (vec![spec], status)
}

/// A quantity as Go's `*Quantity.String()` prints it (`<nil>` when absent).
fn qty(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "<nil>".into(),
        Some(q) => int_or_string(q),
    }
}

fn hpa_metric(spec: &Value, status: Option<&Value>) -> String {
    let ty = str_at(spec, &["type"]);
    let source = match ty {
        "External" => "external",
        "Pods" => "pods",
        "Object" => "object",
        "Resource" => "resource",
        "ContainerResource" => "containerResource",
        _ => return "<unknown type>".into(),
    };
    let src = at(spec, &[source]).unwrap_or(&Value::Null);
    let cur = status.and_then(|s| at(s, &[source])).filter(|c| c.is_object());
    let target_avg = at(src, &["target", "averageValue"]).filter(|v| !v.is_null());
    match ty {
        "Pods" => format!("{}/{}", cur_qty(cur, "averageValue"), qty(target_avg)),
        "External" | "Object" => value_metric(src, cur, target_avg),
        _ => resource_metric(src, cur, target_avg),
    }
}

fn cur_qty(cur: Option<&Value>, field: &str) -> String {
    cur.map_or("<unknown>".into(), |c| qty(at(c, &["current", field])))
}

fn value_metric(src: &Value, cur: Option<&Value>, target_avg: Option<&Value>) -> String {
    match target_avg {
        Some(avg) => {
            let current = match cur.and_then(|c| at(c, &["current", "averageValue"])) {
                Some(v) if !v.is_null() => qty(Some(v)),
                _ => "<unknown>".into(),
            };
            format!("{current}/{} (avg)", qty(Some(avg)))
        }
        None => format!("{}/{}", cur_qty(cur, "value"), qty(at(src, &["target", "value"]))),
    }
}

fn resource_metric(src: &Value, cur: Option<&Value>, target_avg: Option<&Value>) -> String {
    let resource = str_at(src, &["name"]);
    if let Some(avg) = target_avg {
        return format!("{resource}: {}/{}", cur_qty(cur, "averageValue"), qty(Some(avg)));
    }
    let current = cur
        .and_then(|c| opt_int(c, &["current", "averageUtilization"]))
        .map_or("<unknown>".into(), |u| format!("{u}%"));
    let target = opt_int(src, &["target", "averageUtilization"])
        .map_or("<auto>".into(), |u| format!("{u}%"));
    format!("{resource}: {current}/{target}")
}

pub static POD_DISRUPTION_BUDGET: Printer = printer(
    &[
        NAME,
        col(
            "Min Available",
            "string",
            Desc::Text("The minimum number of pods that must be available."),
        ),
        col(
            "Max Unavailable",
            "string",
            Desc::Text("The maximum number of pods that may be unavailable."),
        ),
        col(
            "Allowed Disruptions",
            "integer",
            Desc::Text("Calculated number of pods that may be disrupted at this time."),
        ),
        AGE,
    ],
    pod_disruption_budget,
);

fn pod_disruption_budget(o: &Value) -> Vec<Value> {
    let bound = |f: &str| match at(o, &["spec", f]) {
        None | Some(Value::Null) => "N/A".to_string(),
        Some(v) => int_or_string(v),
    };
    vec![
        json!(name(o)),
        json!(bound("minAvailable")),
        json!(bound("maxUnavailable")),
        json!(int_at(o, &["status", "disruptionsAllowed"])),
        json!(age(o)),
    ]
}

pub static PRIORITY_CLASS: Printer = printer(
    &[
        NAME,
        col("Value", "integer", Desc::Doc("scheduling.v1.PriorityClass", "value")),
        col("Global-Default", "boolean", Desc::Doc("scheduling.v1.PriorityClass", "globalDefault")),
        AGE,
        col(
            "PreemptionPolicy",
            "string",
            Desc::Doc("scheduling.v1.PriorityClass", "preemptionPolicy"),
        ),
    ],
    priority_class,
);

fn priority_class(o: &Value) -> Vec<Value> {
    vec![
        json!(name(o)),
        json!(int_at(o, &["value"])),
        json!(opt_bool(o, &["globalDefault"]).unwrap_or(false)),
        json!(age(o)),
        json!(str_at(o, &["preemptionPolicy"])),
    ]
}

pub static RUNTIME_CLASS: Printer =
    printer(&[NAME, col("Handler", "string", Desc::Doc(super::META, "handler")), AGE], |o| {
        vec![json!(name(o)), json!(str_at(o, &["handler"])), json!(age(o))]
    });

pub static LEASE: Printer = printer(
    &[NAME, col("Holder", "string", Desc::Doc("coordination.v1.LeaseSpec", "holderIdentity")), AGE],
    |o| vec![json!(name(o)), json!(str_at(o, &["spec", "holderIdentity"])), json!(age(o))],
);

const CSR_SPEC: &str = "certificates.v1.CertificateSigningRequestSpec";

pub static CERTIFICATE_SIGNING_REQUEST: Printer = printer(
    &[
        NAME,
        AGE,
        col("SignerName", "string", Desc::Doc(CSR_SPEC, "signerName")),
        col("Requestor", "string", Desc::Doc(CSR_SPEC, "request")),
        col("RequestedDuration", "string", Desc::Doc(CSR_SPEC, "expirationSeconds")),
        col(
            "Condition",
            "string",
            Desc::Doc("certificates.v1.CertificateSigningRequestStatus", "conditions"),
        ),
    ],
    certificate_signing_request,
);

fn certificate_signing_request(o: &Value) -> Vec<Value> {
    let signer = match str_at(o, &["spec", "signerName"]) {
        "" => "<none>",
        s => s,
    };
    let duration =
        opt_int(o, &["spec", "expirationSeconds"]).map_or("<none>".into(), human_duration);
    vec![
        json!(name(o)),
        json!(age(o)),
        json!(signer),
        json!(str_at(o, &["spec", "username"])),
        json!(duration),
        json!(csr_condition(o)),
    ]
}

/// Denied, Approved or Pending, then `,Failed` and `,Issued`.
fn csr_condition(o: &Value) -> String {
    let conditions = list_at(o, &["status", "conditions"]);
    let has = |t: &str| conditions.iter().any(|c| str_at(c, &["type"]) == t);
    let mut status = if has("Denied") {
        "Denied"
    } else if has("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if has("Failed") {
        status.push_str(",Failed");
    }
    if !str_at(o, &["status", "certificate"]).is_empty() {
        status.push_str(",Issued");
    }
    status
}

pub static WEBHOOKS: Printer = printer(
    &[
        NAME,
        col(
            "Webhooks",
            "integer",
            Desc::Text(
                "Webhooks indicates the number of webhooks registered in this configuration",
            ),
        ),
        AGE,
    ],
    |o| vec![json!(name(o)), json!(len_at(o, &["webhooks"])), json!(age(o))],
);

const PARAM_KIND: Desc =
    Desc::Text("ParamKind specifies the kind of resources used to parameterize this policy");

pub static VALIDATING_POLICY: Printer = printer(
    &[
        NAME,
        col(
            "Validations",
            "integer",
            Desc::Text(
                "Validations indicates the number of validation rules defined in this \
                 configuration",
            ),
        ),
        col("ParamKind", "string", PARAM_KIND),
        AGE,
    ],
    validating_policy,
);

fn validating_policy(o: &Value) -> Vec<Value> {
    let param_kind = match at(o, &["spec", "paramKind"]).filter(|p| p.is_object()) {
        Some(p) => format!("{}/{}", str_at(p, &["apiVersion"]), str_at(p, &["kind"])),
        None => "<unset>".into(),
    };
    vec![
        json!(name(o)),
        json!(len_at(o, &["spec", "validations"])),
        json!(param_kind),
        json!(age(o)),
    ]
}

pub static VALIDATING_POLICY_BINDING: Printer = printer(
    &[
        NAME,
        col(
            "PolicyName",
            "string",
            Desc::Text(
                "PolicyName indicates the policy definition which the policy binding binded to",
            ),
        ),
        col(
            "ParamRef",
            "string",
            Desc::Text("ParamRef indicates the param resource which sets the configration param"),
        ),
        AGE,
    ],
    validating_policy_binding,
);

fn validating_policy_binding(o: &Value) -> Vec<Value> {
    let param = match at(o, &["spec", "paramRef"]).filter(|p| p.is_object()) {
        None => "<unset>".to_string(),
        Some(p) => match (str_at(p, &["name"]), str_at(p, &["namespace"])) {
            ("", _) => match at(p, &["selector"]).filter(|s| s.is_object()) {
                Some(sel) => go_label_selector(sel),
                None => "<unset>".into(),
            },
            (n, "") => format!("*/{n}"),
            (n, ns) => format!("{ns}/{n}"),
        },
    };
    vec![json!(name(o)), json!(str_at(o, &["spec", "policyName"])), json!(param), json!(age(o))]
}

/// The Go (gogo-protobuf) `String()` of a LabelSelector, which upstream prints here.
fn go_label_selector(sel: &Value) -> String {
    let mut labels: Vec<(&String, &str)> = map_at(sel, &["matchLabels"])
        .into_iter()
        .flatten()
        .map(|(k, v)| (k, v.as_str().unwrap_or("")))
        .collect();
    labels.sort();
    let labels: String = labels.iter().map(|(k, v)| format!("{k}: {v},")).collect();
    let exprs: String = list_at(sel, &["matchExpressions"])
        .iter()
        .map(|e| {
            let values: Vec<&str> =
                list_at(e, &["values"]).iter().filter_map(Value::as_str).collect();
            format!(
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
                str_at(e, &["key"]),
                str_at(e, &["operator"]),
                values.join(" ")
            )
        })
        .collect();
    format!(
        "&LabelSelector{{MatchLabels:map[string]string{{{labels}}},\
         MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}"
    )
}

pub static API_SERVICE: Printer = printer(
    &[
        NAME,
        col(
            "Service",
            "string",
            Desc::Text("The reference to the service that hosts this API endpoint."),
        ),
        col("Available", "string", Desc::Text("Whether this service is available.")),
        AGE,
    ],
    api_service,
);

fn api_service(o: &Value) -> Vec<Value> {
    let service = match at(o, &["spec", "service"]).filter(|s| s.is_object()) {
        Some(s) => format!("{}/{}", str_at(s, &["namespace"]), str_at(s, &["name"])),
        None => "Local".into(),
    };
    let available =
        list_at(o, &["status", "conditions"]).iter().find(|c| str_at(c, &["type"]) == "Available");
    let status = match available {
        None => "Unknown".to_string(),
        Some(c) => match (str_at(c, &["status"]), str_at(c, &["reason"])) {
            ("True", _) => "True".to_string(),
            (s, "") => s.to_string(),
            (s, r) => format!("{s} ({r})"),
        },
    };
    vec![json!(name(o)), json!(service), json!(status), json!(age(o))]
}

pub static FLOW_SCHEMA: Printer = Printer {
    order: Some(flow_schema_order),
    ..printer(
        &[
            NAME,
            col(
                "PriorityLevel",
                "string",
                Desc::Doc("flowcontrol.v1.PriorityLevelConfigurationReference", "name"),
            ),
            col(
                "MatchingPrecedence",
                "string",
                Desc::Doc("flowcontrol.v1.FlowSchemaSpec", "matchingPrecedence"),
            ),
            col(
                "DistinguisherMethod",
                "string",
                Desc::Doc("flowcontrol.v1.FlowSchemaSpec", "distinguisherMethod"),
            ),
            AGE,
            col(
                "MissingPL",
                "string",
                Desc::Text("references a broken or non-existent PriorityLevelConfiguration"),
            ),
        ],
        flow_schema,
    )
};

fn flow_schema(o: &Value) -> Vec<Value> {
    let distinguisher = opt_str(o, &["spec", "distinguisherMethod", "type"]).unwrap_or("<none>");
    let dangling = condition_status(list_at(o, &["status", "conditions"]), "Dangling");
    vec![
        json!(name(o)),
        json!(str_at(o, &["spec", "priorityLevelConfiguration", "name"])),
        json!(int_at(o, &["spec", "matchingPrecedence"])),
        json!(distinguisher),
        json!(age(o)),
        json!(dangling.unwrap_or("?")),
    ]
}

/// Lower matching precedence first, then by name.
fn flow_schema_order(a: &Value, b: &Value) -> Ordering {
    let precedence = |o: &Value| int_at(o, &["spec", "matchingPrecedence"]);
    precedence(a).cmp(&precedence(b)).then_with(|| name(a).cmp(name(b)))
}

const QUEUING: &str = "flowcontrol.v1.QueuingConfiguration";

pub static PRIORITY_LEVEL_CONFIGURATION: Printer = printer(
    &[
        NAME,
        col("Type", "string", Desc::Doc("flowcontrol.v1.PriorityLevelConfigurationSpec", "type")),
        col(
            "NominalConcurrencyShares",
            "string",
            Desc::Doc(
                "flowcontrol.v1.LimitedPriorityLevelConfiguration",
                "nominalConcurrencyShares",
            ),
        ),
        col("Queues", "string", Desc::Doc(QUEUING, "queues")),
        col("HandSize", "string", Desc::Doc(QUEUING, "handSize")),
        col("QueueLengthLimit", "string", Desc::Doc(QUEUING, "queueLengthLimit")),
        AGE,
    ],
    priority_level_configuration,
);

fn priority_level_configuration(o: &Value) -> Vec<Value> {
    let none = || json!("<none>");
    let limited = at(o, &["spec", "limited"]).filter(|l| l.is_object());
    let queuing =
        limited.and_then(|l| at(l, &["limitResponse", "queuing"])).filter(|q| q.is_object());
    let queue = |f: &str| queuing.map_or_else(none, |q| json!(int_at(q, &[f])));
    vec![
        json!(name(o)),
        json!(str_at(o, &["spec", "type"])),
        limited.map_or_else(none, |l| json!(int_at(l, &["nominalConcurrencyShares"]))),
        queue("queues"),
        queue("handSize"),
        queue("queueLengthLimit"),
        json!(age(o)),
    ]
}

/// Device classes and resource claim templates: Name and Age.
pub static NAME_AGE_ONLY: Printer = printer(&[NAME, AGE], |o| vec![json!(name(o)), json!(age(o))]);

pub static RESOURCE_CLAIM: Printer = printer(
    &[
        NAME,
        col(
            "State",
            "string",
            Desc::Text("A summary of the current state (allocated, pending, reserved, etc.)."),
        ),
        AGE,
    ],
    resource_claim,
);

fn resource_claim(o: &Value) -> Vec<Value> {
    let mut states = Vec::new();
    let allocated = at(o, &["status", "allocation"]).is_some_and(|a| a.is_object());
    if deleting(o) {
        states.push("deleted");
    }
    if !allocated && !deleting(o) {
        states.push("pending");
    }
    if allocated {
        states.push("allocated");
        if !list_at(o, &["status", "reservedFor"]).is_empty() {
            states.push("reserved");
        }
    }
    vec![json!(name(o)), json!(states.join(",")), json!(age(o))]
}

pub static RESOURCE_SLICE: Printer = printer(
    &[
        NAME,
        col("Node", "string", Desc::Doc("resource.v1.ResourceSliceSpec", "nodeName")),
        col("Driver", "string", Desc::Doc("resource.v1.ResourceSliceSpec", "driver")),
        col("Pool", "string", Desc::Doc("resource.v1.ResourcePool", "name")),
        AGE,
    ],
    |o| {
        vec![
            json!(name(o)),
            json!(str_at(o, &["spec", "nodeName"])),
            json!(str_at(o, &["spec", "driver"])),
            json!(str_at(o, &["spec", "pool", "name"])),
            json!(age(o)),
        ]
    },
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings() {
        let b = json!({"roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [
            {"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "namespace": "ns", "name": "bot"},
            {"kind": "User", "name": "bob"}]});
        assert_eq!(binding(&b)[1], "ClusterRole/view");
        assert_eq!(binding(&b)[3..], [json!("alice, bob"), json!("devs"), json!("ns/bot")]);
    }

    #[test]
    fn autoscalers() {
        let v2 = json!({"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 5, "metrics": [
                {"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80}}},
                {"type": "Pods", "pods": {"target": {"averageValue": "1k"}}},
                {"type": "External", "external": {"target": {"value": "10"}}}]},
            "status": {"currentReplicas": 2, "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12}}}]}});
        let r = horizontal_pod_autoscaler(&v2);
        assert_eq!(
            r[1..6],
            [
                json!("Deployment/web"),
                json!("cpu: 12%/80%, <unknown>/1k + 1 more..."),
                json!("1"),
                json!(5),
                json!(2)
            ]
        );
        let v1 = json!({"spec": {"maxReplicas": 3, "targetCPUUtilizationPercentage": 50}});
        assert_eq!(
            horizontal_pod_autoscaler(&v1)[2..4],
            [json!("cpu: <unknown>/50%"), json!("<unset>")]
        );
        assert_eq!(horizontal_pod_autoscaler(&json!({}))[2], "<none>");
    }

    #[test]
    fn misc() {
        let pdb = json!({"spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
        assert_eq!(pod_disruption_budget(&pdb)[1..4], [json!("50%"), json!("N/A"), json!(1)]);
        let csr = json!({"spec": {"signerName": "kubernetes.io/kube-apiserver-client",
            "username": "alice", "expirationSeconds": 3600},
            "status": {"conditions": [{"type": "Approved"}], "certificate": "Zm9v"}});
        assert_eq!(
            certificate_signing_request(&csr)[2..],
            [
                json!("kubernetes.io/kube-apiserver-client"),
                json!("alice"),
                json!("60m"),
                json!("Approved,Issued")
            ]
        );
        let apis = json!({"status": {"conditions": [{"type": "Available", "status": "False",
            "reason": "MissingEndpoints"}]}, "spec": {"service": {"namespace": "ns", "name": "m"}}});
        assert_eq!(api_service(&apis)[1..3], [json!("ns/m"), json!("False (MissingEndpoints)")]);
        assert_eq!(api_service(&json!({}))[1..3], [json!("Local"), json!("Unknown")]);
        let plc = json!({"spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 30,
            "limitResponse": {"type": "Reject"}}}});
        assert_eq!(
            priority_level_configuration(&plc)[1..6],
            [json!("Limited"), json!(30), json!("<none>"), json!("<none>"), json!("<none>")]
        );
        let claim = json!({"status": {"allocation": {}, "reservedFor": [{}]}});
        assert_eq!(resource_claim(&claim)[1], "allocated,reserved");
        assert_eq!(resource_claim(&json!({}))[1], "pending");
        let binding = json!({"spec": {"policyName": "p", "paramRef": {"selector": {
            "matchLabels": {"a": "b"}}}}});
        assert_eq!(
            validating_policy_binding(&binding)[2],
            "&LabelSelector{MatchLabels:map[string]string{a: b,},MatchExpressions:[]LabelSelectorRequirement{},}"
        );
    }

    #[test]
    fn flow_schemas_sort_by_precedence_then_name() {
        let a = json!({"metadata": {"name": "b"}, "spec": {"matchingPrecedence": 100}});
        let b = json!({"metadata": {"name": "a"}, "spec": {"matchingPrecedence": 100}});
        let c = json!({"metadata": {"name": "z"}, "spec": {"matchingPrecedence": 1}});
        let mut v = [a, b, c];
        v.sort_by(flow_schema_order);
        let names: Vec<&str> = v.iter().map(name).collect();
        assert_eq!(names, ["z", "a", "b"]);
        assert_eq!(flow_schema(&v[0])[3..], [json!("<none>"), json!("<unknown>"), json!("?")]);
    }
}
