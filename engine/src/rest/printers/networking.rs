//! Printers of networking.k8s.io (ingresses, ingress classes, network policies, IP
//! addresses, service CIDRs) and discovery.k8s.io (endpoint slices).

use super::cells::{
    age, at, format_label_selector, list_at, list_with_more, name, opt_int, opt_str, str_at,
};
use super::core::load_balancer_ingress;
use super::{AGE, Desc, NAME, Printer, col, printer};
use serde_json::{Value, json};

pub static INGRESS: Printer = printer(
    &[
        NAME,
        col(
            "Class",
            "string",
            Desc::Text(
                "The name of the IngressClass resource that should be used for additional \
                 configuration",
            ),
        ),
        col(
            "Hosts",
            "string",
            Desc::Text("Hosts that incoming requests are matched against before the ingress rule"),
        ),
        col(
            "Address",
            "string",
            Desc::Text("Address is a list containing ingress points for the load-balancer"),
        ),
        col("Ports", "string", Desc::Text("Ports of TLS configurations that open")),
        AGE,
    ],
    ingress,
);

fn ingress(o: &Value) -> Vec<Value> {
    let tls = !list_at(o, &["spec", "tls"]).is_empty();
    vec![
        json!(name(o)),
        json!(opt_str(o, &["spec", "ingressClassName"]).unwrap_or("<none>")),
        json!(ingress_hosts(list_at(o, &["spec", "rules"]))),
        json!(load_balancer_ingress(at(o, &["status", "loadBalancer"])).join(",")),
        json!(if tls { "80, 443" } else { "80" }),
        json!(age(o)),
    ]
}

/// `formatHosts`: up to three non-empty rule hosts, `*` when there are none.
fn ingress_hosts(rules: &[Value]) -> String {
    let mut hosts: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if hosts.len() == 3 {
            more = true;
            break;
        }
        match str_at(rule, &["host"]) {
            "" => {}
            h => hosts.push(h),
        }
    }
    match (hosts.is_empty(), more) {
        (true, _) => "*".into(),
        (false, true) => format!("{} + {} more...", hosts.join(","), rules.len() - 3),
        (false, false) => hosts.join(","),
    }
}

pub static INGRESS_CLASS: Printer = printer(
    &[
        NAME,
        col(
            "Controller",
            "string",
            Desc::Text("Controller that is responsible for handling this class"),
        ),
        col(
            "Parameters",
            "string",
            Desc::Text("A reference to a resource with additional parameters"),
        ),
        AGE,
    ],
    ingress_class,
);

fn ingress_class(o: &Value) -> Vec<Value> {
    let parameters = match at(o, &["spec", "parameters"]).filter(|p| p.is_object()) {
        None => "<none>".to_string(),
        Some(p) => {
            let group = opt_str(p, &["apiGroup"]).map(|g| format!(".{g}")).unwrap_or_default();
            format!("{}{group}/{}", str_at(p, &["kind"]), str_at(p, &["name"]))
        }
    };
    vec![
        json!(name(o)),
        json!(str_at(o, &["spec", "controller"])),
        json!(parameters),
        json!(age(o)),
    ]
}

pub static NETWORK_POLICY: Printer = printer(
    &[
        NAME,
        col("Pod-Selector", "string", Desc::Doc("networking.v1.NetworkPolicySpec", "podSelector")),
        AGE,
    ],
    network_policy,
);

fn network_policy(o: &Value) -> Vec<Value> {
    let selector = format_label_selector(at(o, &["spec", "podSelector"]));
    vec![json!(name(o)), json!(selector), json!(age(o))]
}

/// Upstream defines two columns but sends three cells (the age is ignored by kubectl).
pub static IP_ADDRESS: Printer = printer(
    &[NAME, col("ParentRef", "string", Desc::Doc("networking.v1.IPAddressSpec", "parentRef"))],
    ip_address,
);

fn ip_address(o: &Value) -> Vec<Value> {
    let parent = match at(o, &["spec", "parentRef"]).filter(|p| p.is_object()) {
        None => "<none>".to_string(),
        Some(p) => {
            let (group, resource) = (str_at(p, &["group"]), str_at(p, &["resource"]));
            let mut s = if group.is_empty() {
                resource.to_lowercase()
            } else {
                format!("{resource}.{group}").to_lowercase()
            };
            if let Some(ns) = opt_str(p, &["namespace"]).filter(|n| !n.is_empty()) {
                s = format!("{s}/{ns}");
            }
            format!("{s}/{}", str_at(p, &["name"]))
        }
    };
    vec![json!(name(o)), json!(parent), json!(age(o))]
}

pub static SERVICE_CIDR: Printer = printer(
    &[NAME, col("CIDRs", "string", Desc::Doc("networking.v1.ServiceCIDRSpec", "cidrs")), AGE],
    service_cidr,
);

fn service_cidr(o: &Value) -> Vec<Value> {
    let cidrs: Vec<&str> =
        list_at(o, &["spec", "cidrs"]).iter().filter_map(Value::as_str).collect();
    vec![json!(name(o)), json!(cidrs.join(",")), json!(age(o))]
}

pub static ENDPOINT_SLICE: Printer = printer(
    &[
        NAME,
        col("AddressType", "string", Desc::Doc("discovery.v1.EndpointSlice", "addressType")),
        col("Ports", "string", Desc::Doc("discovery.v1.EndpointSlice", "ports")),
        col("Endpoints", "string", Desc::Doc("discovery.v1.EndpointSlice", "endpoints")),
        AGE,
    ],
    endpoint_slice,
);

fn endpoint_slice(o: &Value) -> Vec<Value> {
    let ports: Vec<String> = list_at(o, &["ports"])
        .iter()
        .map(|p| match (opt_int(p, &["port"]), opt_str(p, &["name"])) {
            (Some(n), _) => n.to_string(),
            (None, Some(name)) => name.to_string(),
            (None, None) => "*".to_string(),
        })
        .collect();
    let addresses: Vec<String> = list_at(o, &["endpoints"])
        .iter()
        .flat_map(|e| list_at(e, &["addresses"]))
        .map(|a| a.as_str().unwrap_or("").to_string())
        .collect();
    vec![
        json!(name(o)),
        json!(str_at(o, &["addressType"])),
        json!(list_with_more(&ports, 3)),
        json!(list_with_more(&addresses, 3)),
        json!(age(o)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingresses() {
        let i = json!({"spec": {"ingressClassName": "nginx", "tls": [{}],
            "rules": [{"host": "a.example"}, {}, {"host": "c.example"}, {"host": "d.example"},
                      {"host": "e.example"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}});
        let r = ingress(&i);
        assert_eq!(
            r[1..5],
            [
                json!("nginx"),
                json!("a.example,c.example,d.example + 2 more..."),
                json!("1.2.3.4"),
                json!("80, 443")
            ]
        );
        let r = ingress(&json!({}));
        assert_eq!(r[1..5], [json!("<none>"), json!("*"), json!(""), json!("80")]);
        let c = json!({"spec": {"controller": "k8s.io/nginx",
            "parameters": {"apiGroup": "k8s.example.com", "kind": "Params", "name": "p"}}});
        assert_eq!(ingress_class(&c)[2], "Params.k8s.example.com/p");
    }

    #[test]
    fn addresses_and_slices() {
        let ip = json!({"spec": {"parentRef": {"resource": "services", "namespace": "default",
            "name": "kubernetes"}}});
        assert_eq!(ip_address(&ip)[1], "services/default/kubernetes");
        assert_eq!(ip_address(&json!({}))[1], "<none>");
        let es = json!({"addressType": "IPv4", "ports": [{"port": 80}, {"name": "dns"}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]});
        assert_eq!(
            endpoint_slice(&es)[1..4],
            [json!("IPv4"), json!("80,dns"), json!("10.0.0.1,10.0.0.2")]
        );
        assert_eq!(endpoint_slice(&json!({}))[2], "<unset>");
        let np = json!({"spec": {"podSelector": {}}});
        assert_eq!(network_policy(&np)[1], "<none>");
    }
}
