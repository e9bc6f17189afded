//! Printers of the core group (pods apart): pod templates, replication controllers,
//! services, endpoints, nodes, namespaces, events (core and events.k8s.io), secrets,
//! config maps, service accounts, resource quotas and component statuses.

use super::cells::{
    age, at, condition_status, containers, format_labels, int_at, join_host_port, len_at, list_at,
    map_at, name, opt_str, quantity, since, str_at, timestamp,
};
use super::{AGE, Column, Desc, NAME, Printer, col, printer, wide};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const CONTAINERS: Desc = Desc::Text("Names of each container in the template.");
const IMAGES: Desc = Desc::Text("Images referenced by each container in the template.");

pub static POD_TEMPLATE: Printer = printer(
    &[
        NAME,
        col("Containers", "string", CONTAINERS),
        col("Images", "string", IMAGES),
        col("Pod Labels", "string", Desc::Text("The labels for the pod template.")),
    ],
    pod_template,
);

fn pod_template(o: &Value) -> Vec<Value> {
    let (names, images) = containers(list_at(o, &["template", "spec", "containers"]));
    let labels = format_labels(map_at(o, &["template", "metadata", "labels"]));
    vec![json!(name(o)), json!(names), json!(images), json!(labels)]
}

pub static REPLICATION_CONTROLLER: Printer = printer(
    &[
        NAME,
        col("Desired", "integer", Desc::Doc("core.v1.ReplicationControllerSpec", "replicas")),
        col("Current", "integer", Desc::Doc("core.v1.ReplicationControllerStatus", "replicas")),
        col("Ready", "integer", Desc::Doc("core.v1.ReplicationControllerStatus", "readyReplicas")),
        AGE,
        wide("Containers", "string", CONTAINERS),
        wide("Images", "string", IMAGES),
        wide("Selector", "string", Desc::Doc("core.v1.ReplicationControllerSpec", "selector")),
    ],
    replication_controller,
);

fn replication_controller(o: &Value) -> Vec<Value> {
    let (names, images) = containers(list_at(o, &["spec", "template", "spec", "containers"]));
    vec![
        json!(name(o)),
        json!(int_at(o, &["spec", "replicas"])),
        json!(int_at(o, &["status", "replicas"])),
        json!(int_at(o, &["status", "readyReplicas"])),
        json!(age(o)),
        json!(names),
        json!(images),
        json!(format_labels(map_at(o, &["spec", "selector"]))),
    ]
}

pub static SERVICE: Printer = printer(
    &[
        NAME,
        col("Type", "string", Desc::Doc("core.v1.ServiceSpec", "type")),
        col("Cluster-IP", "string", Desc::Doc("core.v1.ServiceSpec", "clusterIP")),
        col("External-IP", "string", Desc::Doc("core.v1.ServiceSpec", "externalIPs")),
        col("Port(s)", "string", Desc::Doc("core.v1.ServiceSpec", "ports")),
        AGE,
        wide("Selector", "string", Desc::Doc("core.v1.ServiceSpec", "selector")),
    ],
    service,
);

fn service(o: &Value) -> Vec<Value> {
    let cluster_ip = list_at(o, &["spec", "clusterIPs"]).first().and_then(Value::as_str);
    let ports = service_ports(list_at(o, &["spec", "ports"]));
    vec![
        json!(name(o)),
        json!(str_at(o, &["spec", "type"])),
        json!(cluster_ip.unwrap_or("<none>")),
        json!(service_external_ip(o)),
        json!(if ports.is_empty() { "<none>".into() } else { ports }),
        json!(age(o)),
        json!(format_labels(map_at(o, &["spec", "selector"]))),
    ]
}

fn strings(list: &[Value]) -> Vec<&str> {
    list.iter().filter_map(Value::as_str).collect()
}

/// `getServiceExternalIP` in its wide form (no truncation).
fn service_external_ip(o: &Value) -> String {
    let external = strings(list_at(o, &["spec", "externalIPs"]));
    match str_at(o, &["spec", "type"]) {
        "ClusterIP" | "NodePort" if external.is_empty() => "<none>".into(),
        "ClusterIP" | "NodePort" => external.join(","),
        "LoadBalancer" => {
            let mut all = load_balancer_ingress(at(o, &["status", "loadBalancer"]));
            all.extend(external.iter().map(|s| s.to_string()));
            if all.is_empty() { "<pending>".into() } else { all.join(",") }
        }
        "ExternalName" => str_at(o, &["spec", "externalName"]).into(),
        _ => "<unknown>".into(),
    }
}

/// The IPs (or hostnames) of a load balancer status, sorted and de-duplicated.
pub fn load_balancer_ingress(status: Option<&Value>) -> Vec<String> {
    let ingress = status.map_or(&[][..], |s| list_at(s, &["ingress"]));
    let set: BTreeSet<&str> = ingress
        .iter()
        .filter_map(|i| match (str_at(i, &["ip"]), str_at(i, &["hostname"])) {
            ("", "") => None,
            ("", host) => Some(host),
            (ip, _) => Some(ip),
        })
        .collect();
    set.into_iter().map(str::to_string).collect()
}

/// `makePortString`: `80/TCP`, `80:30080/TCP`, comma separated.
fn service_ports(ports: &[Value]) -> String {
    let piece = |p: &Value| {
        let (port, proto) = (int_at(p, &["port"]), str_at(p, &["protocol"]));
        match int_at(p, &["nodePort"]) {
            n if n > 0 => format!("{port}:{n}/{proto}"),
            _ => format!("{port}/{proto}"),
        }
    };
    ports.iter().map(piece).collect::<Vec<_>>().join(",")
}

pub static ENDPOINTS: Printer = printer(
    &[NAME, col("Endpoints", "string", Desc::Doc("core.v1.Endpoints", "subsets")), AGE],
    endpoints,
);

fn endpoints(o: &Value) -> Vec<Value> {
    vec![json!(name(o)), json!(format_endpoints(list_at(o, &["subsets"]))), json!(age(o))]
}

/// `formatEndpoints`: up to three `ip:port` (or bare IPs for port-less subsets).
fn format_endpoints(subsets: &[Value]) -> String {
    if subsets.is_empty() {
        return "<none>".into();
    }
    let mut all: Vec<String> = Vec::new();
    for ss in subsets {
        let ips: Vec<&str> =
            list_at(ss, &["addresses"]).iter().map(|a| str_at(a, &["ip"])).collect();
        let ports = list_at(ss, &["ports"]);
        if ports.is_empty() {
            all.extend(ips.iter().map(|ip| ip.to_string()));
        }
        for p in ports {
            let port = int_at(p, &["port"]);
            all.extend(ips.iter().map(|ip| join_host_port(ip, port)));
        }
    }
    let shown = all.iter().take(3).cloned().collect::<Vec<_>>().join(",");
    if all.len() > 3 { format!("{shown} + {} more...", all.len() - 3) } else { shown }
}

pub static NODE: Printer = printer(
    &[
        NAME,
        col("Status", "string", Desc::Text("The status of the node")),
        col("Roles", "string", Desc::Text("The roles of the node")),
        AGE,
        col("Version", "string", Desc::Doc("core.v1.NodeSystemInfo", "kubeletVersion")),
        wide("Internal-IP", "string", Desc::Doc("core.v1.NodeStatus", "addresses")),
        wide("External-IP", "string", Desc::Doc("core.v1.NodeStatus", "addresses")),
        wide("OS-Image", "string", Desc::Doc("core.v1.NodeSystemInfo", "osImage")),
        wide("Kernel-Version", "string", Desc::Doc("core.v1.NodeSystemInfo", "kernelVersion")),
        wide(
            "Container-Runtime",
            "string",
            Desc::Doc("core.v1.NodeSystemInfo", "containerRuntimeVersion"),
        ),
    ],
    node,
);

fn node(o: &Value) -> Vec<Value> {
    let info = |field: &str| match str_at(o, &["status", "nodeInfo", field]) {
        "" => "<unknown>".to_string(),
        v => v.to_string(),
    };
    vec![
        json!(name(o)),
        json!(node_status(o)),
        json!(node_roles(o)),
        json!(age(o)),
        json!(str_at(o, &["status", "nodeInfo", "kubeletVersion"])),
        json!(node_address(o, "InternalIP")),
        json!(node_address(o, "ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

/// `Ready`, `NotReady` or `Unknown` (the last Ready condition wins), then
/// `SchedulingDisabled` for a cordoned node.
fn node_status(o: &Value) -> String {
    let ready = list_at(o, &["status", "conditions"])
        .iter()
        .rfind(|c| str_at(c, &["type"]) == "Ready")
        .map(|c| str_at(c, &["status"]));
    let mut status = match ready {
        Some("True") => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if at(o, &["spec", "unschedulable"]).and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    status
}

/// Roles from `node-role.kubernetes.io/<role>` label keys and the `kubernetes.io/role`
/// label value, sorted, `<none>` when there are none.
fn node_roles(o: &Value) -> String {
    let mut roles = BTreeSet::new();
    for (k, v) in map_at(o, &["metadata", "labels"]).into_iter().flatten() {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if k == "kubernetes.io/role" && v.as_str().is_some_and(|v| !v.is_empty()) {
            roles.insert(v.as_str().unwrap_or_default().to_string());
        }
    }
    if roles.is_empty() { "<none>".into() } else { roles.into_iter().collect::<Vec<_>>().join(",") }
}

fn node_address(o: &Value, ty: &str) -> String {
    list_at(o, &["status", "addresses"])
        .iter()
        .find(|a| str_at(a, &["type"]) == ty)
        .map_or_else(|| "<none>".into(), |a| str_at(a, &["address"]).to_string())
}

pub static NAMESPACE: Printer = printer(
    &[NAME, col("Status", "string", Desc::Text("The status of the namespace")), AGE],
    namespace,
);

fn namespace(o: &Value) -> Vec<Value> {
    vec![json!(name(o)), json!(str_at(o, &["status", "phase"])), json!(age(o))]
}

static EVENT_COLUMNS: &[Column] = &[
    col("Last Seen", "string", Desc::Doc("core.v1.Event", "lastTimestamp")),
    col("Type", "string", Desc::Doc("core.v1.Event", "type")),
    col("Reason", "string", Desc::Doc("core.v1.Event", "reason")),
    col("Object", "string", Desc::Doc("core.v1.Event", "involvedObject")),
    wide("Subobject", "string", Desc::Doc("core.v1.ObjectReference", "fieldPath")),
    wide("Source", "string", Desc::Doc("core.v1.Event", "source")),
    col("Message", "string", Desc::Doc("core.v1.Event", "message")),
    wide("First Seen", "string", Desc::Doc("core.v1.Event", "firstTimestamp")),
    wide("Count", "string", Desc::Doc("core.v1.Event", "count")),
    super::Column { priority: 1, ..NAME },
];

/// Field names of an Event in one API version (the printer works on either).
struct EventFields {
    first: &'static str,
    last: &'static str,
    count: &'static str,
    object: &'static str,
    message: &'static str,
    source: &'static str,
    controller: &'static str,
}

const CORE_EVENT: EventFields = EventFields {
    first: "firstTimestamp",
    last: "lastTimestamp",
    count: "count",
    object: "involvedObject",
    message: "message",
    source: "source",
    controller: "reportingComponent",
};

const EVENTS_V1: EventFields = EventFields {
    first: "deprecatedFirstTimestamp",
    last: "deprecatedLastTimestamp",
    count: "deprecatedCount",
    object: "regarding",
    message: "note",
    source: "deprecatedSource",
    controller: "reportingController",
};

pub static EVENT: Printer = printer(EVENT_COLUMNS, |o| event(o, &CORE_EVENT));
pub static EVENTS_V1_EVENT: Printer = printer(EVENT_COLUMNS, |o| event(o, &EVENTS_V1));

fn event(o: &Value, f: &EventFields) -> Vec<Value> {
    let first = match timestamp(opt_str(o, &[f.first])) {
        Some(_) => since(opt_str(o, &[f.first])),
        None => since(opt_str(o, &["eventTime"])),
    };
    let mut last = match timestamp(opt_str(o, &[f.last])) {
        Some(_) => since(opt_str(o, &[f.last])),
        None => first.clone(),
    };
    let mut count = int_at(o, &[f.count]);
    if at(o, &["series"]).is_some_and(Value::is_object) {
        last = since(opt_str(o, &["series", "lastObservedTime"]));
        count = int_at(o, &["series", "count"]);
    } else if count == 0 {
        count = 1;
    }
    vec![
        json!(last),
        json!(str_at(o, &["type"])),
        json!(str_at(o, &["reason"])),
        json!(event_target(o, f.object)),
        json!(str_at(o, &[f.object, "fieldPath"])),
        json!(event_source(o, f)),
        json!(str_at(o, &[f.message]).trim()),
        json!(first),
        json!(count),
        json!(name(o)),
    ]
}

/// `kind/name` of the involved object, the kind lower-cased.
fn event_target(o: &Value, field: &str) -> String {
    let kind = str_at(o, &[field, "kind"]).to_lowercase();
    match str_at(o, &[field, "name"]) {
        "" => kind,
        n => format!("{kind}/{n}"),
    }
}

/// `component, host`, falling back to the reporting controller and instance.
fn event_source(o: &Value, f: &EventFields) -> String {
    let or = |a: &str, b: &str| if a.is_empty() { b.to_string() } else { a.to_string() };
    let component = or(str_at(o, &[f.source, "component"]), str_at(o, &[f.controller]));
    let host = or(str_at(o, &[f.source, "host"]), str_at(o, &["reportingInstance"]));
    if host.is_empty() { component } else { format!("{component}, {host}") }
}

pub static SECRET: Printer = printer(
    &[
        NAME,
        col("Type", "string", Desc::Doc("core.v1.Secret", "type")),
        col("Data", "string", Desc::Doc("core.v1.Secret", "data")),
        AGE,
    ],
    secret,
);

fn secret(o: &Value) -> Vec<Value> {
    vec![json!(name(o)), json!(str_at(o, &["type"])), json!(len_at(o, &["data"])), json!(age(o))]
}

pub static CONFIG_MAP: Printer = printer(
    &[NAME, col("Data", "string", Desc::Doc("core.v1.ConfigMap", "data")), AGE],
    config_map,
);

fn config_map(o: &Value) -> Vec<Value> {
    let data = len_at(o, &["data"]) + len_at(o, &["binaryData"]);
    vec![json!(name(o)), json!(data), json!(age(o))]
}

pub static SERVICE_ACCOUNT: Printer = printer(
    &[NAME, col("Secrets", "string", Desc::Doc("core.v1.ServiceAccount", "secrets")), AGE],
    service_account,
);

fn service_account(o: &Value) -> Vec<Value> {
    vec![json!(name(o)), json!(len_at(o, &["secrets"])), json!(age(o))]
}

pub static RESOURCE_QUOTA: Printer = printer(
    &[
        NAME,
        col(
            "Request",
            "string",
            Desc::Text(
                "Request represents a minimum amount of cpu/memory that a container may consume.",
            ),
        ),
        col(
            "Limit",
            "string",
            Desc::Text(
                "Limits control the maximum amount of cpu/memory that a container may use \
                 independent of contention on the node.",
            ),
        ),
        AGE,
    ],
    resource_quota,
);

/// `resource: used/hard` for every hard limit, sorted; `limits.*` go to the Limit cell.
fn resource_quota(o: &Value) -> Vec<Value> {
    let hard = map_at(o, &["status", "hard"]);
    let mut names: Vec<&String> = hard.into_iter().flat_map(|h| h.keys()).collect();
    names.sort();
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    for r in names {
        let used = quantity(at(o, &["status", "used", r.as_str()]));
        let max = quantity(hard.and_then(|h| h.get(r.as_str())));
        let entry = format!("{r}: {used}/{max}");
        let is_limit = r.contains('.') && r.split('.').next() == Some("limits");
        if is_limit { limits.push(entry) } else { requests.push(entry) }
    }
    vec![json!(name(o)), json!(requests.join(", ")), json!(limits.join(", ")), json!(age(o))]
}

pub static COMPONENT_STATUS: Printer = printer(
    &[
        NAME,
        col("Status", "string", Desc::Text("Status of the component conditions")),
        col("Message", "string", Desc::Text("Message of the component conditions")),
        col("Error", "string", Desc::Text("Error of the component conditions")),
    ],
    component_status,
);

fn component_status(o: &Value) -> Vec<Value> {
    let conditions = list_at(o, &["conditions"]);
    let healthy = conditions.iter().find(|c| str_at(c, &["type"]) == "Healthy");
    let status = match condition_status(conditions, "Healthy") {
        Some("True") => "Healthy",
        Some(_) => "Unhealthy",
        None => "Unknown",
    };
    let field = |f: &str| healthy.map_or("", |c| str_at(c, &[f]));
    vec![json!(name(o)), json!(status), json!(field("message")), json!(field("error"))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ip_service() {
        let svc = json!({
            "metadata": {"name": "web"},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                     "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
                     "selector": {"app": "web"}},
        });
        let r = service(&svc);
        assert_eq!(
            r[1..5],
            [json!("ClusterIP"), json!("10.96.0.10"), json!("<none>"), json!("80/TCP,53/UDP")]
        );
        assert_eq!(r[6], "app=web");
    }

    #[test]
    fn node_port_and_load_balancer_services() {
        let np = json!({"spec": {"type": "NodePort", "clusterIPs": ["10.0.0.1"],
            "externalIPs": ["1.2.3.4"], "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}});
        let r = service(&np);
        assert_eq!(r[3], "1.2.3.4");
        assert_eq!(r[4], "80:30080/TCP");
        assert_eq!(r[6], "<none>");
        let lb = json!({"spec": {"type": "LoadBalancer", "ports": []}});
        let r = service(&lb);
        assert_eq!(r[2..5], [json!("<none>"), json!("<pending>"), json!("<none>")]);
        let lb = json!({"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [
            {"hostname": "lb.example.com"}, {"ip": "5.6.7.8"}, {"ip": "5.6.7.8"}]}}});
        assert_eq!(service(&lb)[3], "5.6.7.8,lb.example.com");
        let ext = json!({"spec": {"type": "ExternalName", "externalName": "db.example.com"}});
        assert_eq!(service(&ext)[3], "db.example.com");
    }

    #[test]
    fn nodes() {
        let n = json!({
            "metadata": {"name": "n1", "labels": {"node-role.kubernetes.io/control-plane": "",
                "node-role.kubernetes.io/worker": "", "kubernetes.io/role": "edge",
                "node-role.kubernetes.io/": "x"}},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": "192.168.1.5"}],
                       "nodeInfo": {"kubeletVersion": "v1.35.0", "osImage": "Debian"}},
        });
        let r = node(&n);
        assert_eq!(r[1..3], [json!("Ready"), json!("control-plane,edge,worker")]);
        assert_eq!(r[4], "v1.35.0");
        assert_eq!(
            r[5..],
            [
                json!("192.168.1.5"),
                json!("<none>"),
                json!("Debian"),
                json!("<unknown>"),
                json!("<unknown>")
            ]
        );
        let down = json!({"spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        assert_eq!(node(&down)[1..3], [json!("NotReady,SchedulingDisabled"), json!("<none>")]);
        assert_eq!(node(&json!({}))[1], "Unknown");
    }

    #[test]
    fn core_events() {
        let t = kapi_codec::time::rfc3339(crate::time::now_unix() - 120);
        let e = json!({
            "metadata": {"name": "web.17a"},
            "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{c}"},
            "reason": "Pulled", "type": "Normal", "message": "  pulled image\n",
            "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": t, "lastTimestamp": t, "count": 3,
        });
        let r = event(&e, &CORE_EVENT);
        assert_eq!(
            r,
            vec![
                json!("2m"),
                json!("Normal"),
                json!("Pulled"),
                json!("pod/web"),
                json!("spec.containers{c}"),
                json!("kubelet, n1"),
                json!("pulled image"),
                json!("2m"),
                json!(3),
                json!("web.17a")
            ]
        );
        let bare = json!({"involvedObject": {"kind": "Node"}, "reportingComponent": "ctl"});
        let r = event(&bare, &CORE_EVENT);
        assert_eq!(r[0], "<unknown>");
        assert_eq!(r[3], "node");
        assert_eq!(r[5], "ctl");
        assert_eq!(r[8], 1);
    }

    #[test]
    fn events_v1_and_series() {
        let t = kapi_codec::time::rfc3339(crate::time::now_unix() - 30);
        let e = json!({
            "regarding": {"kind": "Deployment", "name": "web"}, "note": "scaled",
            "eventTime": "2020-01-01T00:00:00.000000Z", "reportingController": "dc",
            "reportingInstance": "dc-1", "series": {"count": 7, "lastObservedTime": t},
        });
        let r = event(&e, &EVENTS_V1);
        assert_eq!(r[0], "30s");
        assert_eq!(r[3], "deployment/web");
        assert_eq!(r[5], "dc, dc-1");
        assert_eq!(r[6], "scaled");
        assert_eq!(r[8], 7);
        let cols = EVENT.column_definitions();
        let shown: Vec<&str> = cols
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["priority"] == 0)
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(shown, ["Last Seen", "Type", "Reason", "Object", "Message"]);
    }

    #[test]
    fn small_core_types() {
        let s = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "", "b": ""}});
        assert_eq!(secret(&s)[1..3], [json!("Opaque"), json!(2)]);
        let cm = json!({"data": {"a": ""}, "binaryData": {"b": ""}});
        assert_eq!(config_map(&cm)[1], 2);
        let q = json!({"status": {"hard": {"pods": "10", "limits.cpu": "2", "requests.cpu": "1"},
                                  "used": {"pods": "1"}}});
        assert_eq!(
            resource_quota(&q)[1..3],
            [json!("pods: 1/10, requests.cpu: 0/1"), json!("limits.cpu: 0/2")]
        );
        let ep = json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
            "ports": [{"port": 80}, {"port": 443}]}]});
        assert_eq!(endpoints(&ep)[1], "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...");
        assert_eq!(endpoints(&json!({}))[1], "<none>");
    }
}
