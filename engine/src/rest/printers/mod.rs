//! Per-type Table printer columns of the built-in resources, as kube-apiserver v1.35 sends
//! them (`pkg/printers/internalversion` and kube-aggregator's APIService convertor).
//!
//! A [`Printer`] is a list of column definitions plus a function turning one object (its
//! JSON form) into the row's cells. Upstream's server-side convertor always prints the
//! wide form, so every row carries the priority-1 cells too; kubectl hides those columns
//! unless `-o wide`. Printers are looked up by (group, plural) in [`PRINTERS`]. Built-in
//! types without a printer upstream (roles, clusterroles, limitranges, CRDs) use the
//! generic convertor ([`DEFAULT`]: Name, Created At).
//!
//! Files: `cells` (JSON accessors and shared cell formats), `pods`, `core` (the other core
//! types), `apps` (apps and batch), `networking` (networking and discovery), `storage`
//! (storage and persistent volumes), `cluster` (the remaining groups).

mod apps;
mod cells;
mod cluster;
mod core;
mod networking;
mod pods;
mod storage;

use kapi_codec::schema;
use serde_json::{Value, json};
use std::cmp::Ordering;

/// OpenAPI name of ObjectMeta, whose field docs describe the Name and Age columns.
const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// Where a column's description comes from.
#[derive(Debug, Clone, Copy)]
pub enum Desc {
    /// A fixed sentence.
    Text(&'static str),
    /// The documentation of a schema field: definition (`core.v1.PodStatus`, short for
    /// `io.k8s.api.core.v1.PodStatus`, or a full `io.` name) and JSON field name. Unknown
    /// fields give an empty description, as upstream's `SwaggerDoc()` lookups do.
    Doc(&'static str, &'static str),
}

/// One `TableColumnDefinition`.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub ty: &'static str,
    pub format: &'static str,
    pub desc: Desc,
    /// 0: always shown; 1: only with `-o wide`.
    pub priority: u8,
}

/// A normal column.
pub const fn col(name: &'static str, ty: &'static str, desc: Desc) -> Column {
    Column { name, ty, format: "", desc, priority: 0 }
}

/// A column kubectl shows only with `-o wide`.
pub const fn wide(name: &'static str, ty: &'static str, desc: Desc) -> Column {
    Column { name, ty, format: "", desc, priority: 1 }
}

/// The Name column every printer starts with.
pub const NAME: Column = Column {
    name: "Name",
    ty: "string",
    format: "name",
    desc: Desc::Doc(META, "name"),
    priority: 0,
};

/// The Age column (creation time as a human duration).
pub const AGE: Column = col("Age", "string", Desc::Doc(META, "creationTimestamp"));

/// How one resource is printed.
pub struct Printer {
    pub columns: &'static [Column],
    pub cells: fn(&Value) -> Vec<Value>,
    /// Row conditions (`Completed` for finished pods).
    pub conditions: fn(&Value) -> Option<Value>,
    /// Row order of a list, when upstream sorts it (flow schemas).
    pub order: Option<fn(&Value, &Value) -> Ordering>,
}

fn no_conditions(_: &Value) -> Option<Value> {
    None
}

/// A printer with plain rows.
pub const fn printer(columns: &'static [Column], cells: fn(&Value) -> Vec<Value>) -> Printer {
    Printer { columns, cells, conditions: no_conditions, order: None }
}

impl Printer {
    /// The `columnDefinitions` of a Table.
    pub fn column_definitions(&self) -> Value {
        Value::Array(self.columns.iter().map(column_json).collect())
    }
}

fn column_json(c: &Column) -> Value {
    json!({
        "name": c.name,
        "type": c.ty,
        "format": c.format,
        "description": describe(c.desc),
        "priority": c.priority,
    })
}

fn describe(d: Desc) -> String {
    match d {
        Desc::Text(t) => t.to_string(),
        Desc::Doc(def, field) => field_doc(def, field).unwrap_or_default(),
    }
}

fn field_doc(def: &str, field: &str) -> Option<String> {
    let full = if def.starts_with("io.") { def.to_string() } else { format!("io.k8s.api.{def}") };
    let schemas = schema::builtin();
    let prop = schemas.get(&full)?.get("properties")?.get(field)?;
    let doc = prop.get("description").or_else(|| schemas.resolve(prop).get("description"))?;
    doc.as_str().map(str::to_string)
}

const CREATED_AT: Column = col("Created At", "date", Desc::Doc(META, "creationTimestamp"));

/// Upstream's generic convertor, for built-in types without a printer.
pub static DEFAULT: Printer = printer(&[NAME, CREATED_AT], default_cells);

fn default_cells(o: &Value) -> Vec<Value> {
    let created = cells::timestamp(cells::opt_str(o, &["metadata", "creationTimestamp"]));
    let secs = created.map_or(cells::GO_ZERO_TIME, |(s, _)| s);
    vec![json!(cells::name(o)), json!(kapi_codec::time::rfc3339(secs))]
}

/// Name and Age only: what kapi prints for types without upstream columns (custom
/// resources without additional printer columns).
pub static NAME_AGE: Printer = printer(&[NAME, AGE], name_age_cells);

fn name_age_cells(o: &Value) -> Vec<Value> {
    vec![json!(cells::name(o)), json!(cells::age(o))]
}

/// Every printer, by (API group, plural resource name).
static PRINTERS: &[(&str, &str, &Printer)] = &[
    ("", "pods", &pods::POD),
    ("", "podtemplates", &core::POD_TEMPLATE),
    ("", "replicationcontrollers", &core::REPLICATION_CONTROLLER),
    ("", "services", &core::SERVICE),
    ("", "endpoints", &core::ENDPOINTS),
    ("", "nodes", &core::NODE),
    ("", "namespaces", &core::NAMESPACE),
    ("", "events", &core::EVENT),
    ("", "secrets", &core::SECRET),
    ("", "configmaps", &core::CONFIG_MAP),
    ("", "serviceaccounts", &core::SERVICE_ACCOUNT),
    ("", "resourcequotas", &core::RESOURCE_QUOTA),
    ("", "componentstatuses", &core::COMPONENT_STATUS),
    ("", "limitranges", &DEFAULT),
    ("", "persistentvolumes", &storage::PERSISTENT_VOLUME),
    ("", "persistentvolumeclaims", &storage::PERSISTENT_VOLUME_CLAIM),
    ("events.k8s.io", "events", &core::EVENTS_V1_EVENT),
    ("apps", "deployments", &apps::DEPLOYMENT),
    ("apps", "replicasets", &apps::REPLICA_SET),
    ("apps", "statefulsets", &apps::STATEFUL_SET),
    ("apps", "daemonsets", &apps::DAEMON_SET),
    ("apps", "controllerrevisions", &apps::CONTROLLER_REVISION),
    ("batch", "jobs", &apps::JOB),
    ("batch", "cronjobs", &apps::CRON_JOB),
    ("networking.k8s.io", "ingresses", &networking::INGRESS),
    ("networking.k8s.io", "ingressclasses", &networking::INGRESS_CLASS),
    ("networking.k8s.io", "networkpolicies", &networking::NETWORK_POLICY),
    ("networking.k8s.io", "ipaddresses", &networking::IP_ADDRESS),
    ("networking.k8s.io", "servicecidrs", &networking::SERVICE_CIDR),
    ("discovery.k8s.io", "endpointslices", &networking::ENDPOINT_SLICE),
    ("storage.k8s.io", "storageclasses", &storage::STORAGE_CLASS),
    ("storage.k8s.io", "csidrivers", &storage::CSI_DRIVER),
    ("storage.k8s.io", "csinodes", &storage::CSI_NODE),
    ("storage.k8s.io", "csistoragecapacities", &storage::CSI_STORAGE_CAPACITY),
    ("storage.k8s.io", "volumeattachments", &storage::VOLUME_ATTACHMENT),
    ("storage.k8s.io", "volumeattributesclasses", &storage::VOLUME_ATTRIBUTES_CLASS),
    ("rbac.authorization.k8s.io", "roles", &DEFAULT),
    ("rbac.authorization.k8s.io", "clusterroles", &DEFAULT),
    ("rbac.authorization.k8s.io", "rolebindings", &cluster::ROLE_BINDING),
    ("rbac.authorization.k8s.io", "clusterrolebindings", &cluster::CLUSTER_ROLE_BINDING),
    ("autoscaling", "horizontalpodautoscalers", &cluster::HORIZONTAL_POD_AUTOSCALER),
    ("policy", "poddisruptionbudgets", &cluster::POD_DISRUPTION_BUDGET),
    ("scheduling.k8s.io", "priorityclasses", &cluster::PRIORITY_CLASS),
    ("node.k8s.io", "runtimeclasses", &cluster::RUNTIME_CLASS),
    ("coordination.k8s.io", "leases", &cluster::LEASE),
    ("certificates.k8s.io", "certificatesigningrequests", &cluster::CERTIFICATE_SIGNING_REQUEST),
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", &cluster::WEBHOOKS),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations", &cluster::WEBHOOKS),
    ("admissionregistration.k8s.io", "validatingadmissionpolicies", &cluster::VALIDATING_POLICY),
    (
        "admissionregistration.k8s.io",
        "validatingadmissionpolicybindings",
        &cluster::VALIDATING_POLICY_BINDING,
    ),
    ("apiregistration.k8s.io", "apiservices", &cluster::API_SERVICE),
    ("apiextensions.k8s.io", "customresourcedefinitions", &DEFAULT),
    ("flowcontrol.apiserver.k8s.io", "flowschemas", &cluster::FLOW_SCHEMA),
    (
        "flowcontrol.apiserver.k8s.io",
        "prioritylevelconfigurations",
        &cluster::PRIORITY_LEVEL_CONFIGURATION,
    ),
    ("resource.k8s.io", "deviceclasses", &cluster::NAME_AGE_ONLY),
    ("resource.k8s.io", "resourceclaimtemplates", &cluster::NAME_AGE_ONLY),
    ("resource.k8s.io", "resourceclaims", &cluster::RESOURCE_CLAIM),
    ("resource.k8s.io", "resourceslices", &cluster::RESOURCE_SLICE),
];

/// The printer of a built-in resource, if upstream has one (or uses the generic one).
pub fn lookup(group: &str, plural: &str) -> Option<&'static Printer> {
    PRINTERS.iter().find(|(g, p, _)| *g == group && *p == plural).map(|(_, _, pr)| *pr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_printer_has_a_name_column() {
        for (g, p, pr) in PRINTERS {
            let first = pr.columns.iter().find(|c| c.format == "name");
            assert_eq!(first.map(|c| c.name), Some("Name"), "{g}/{p}");
        }
        assert_eq!(lookup("", "events").map(|p| p.columns[0].name), Some("Last Seen"));
        assert!(lookup("example.com", "widgets").is_none());
    }

    #[test]
    fn cells_never_panic_on_odd_objects() {
        let odd = [
            json!(null),
            json!({}),
            json!({"metadata": 5, "spec": "x", "status": []}),
            json!({"metadata": {"name": 1, "creationTimestamp": "bogus"}, "spec": {"containers": {}}}),
        ];
        for (_, _, pr) in PRINTERS {
            for o in &odd {
                let cells = (pr.cells)(o);
                assert!(cells.len() >= pr.columns.len());
                let _ = (pr.conditions)(o);
            }
        }
    }

    #[test]
    fn descriptions_come_from_the_schemas() {
        let cols = pods::POD.column_definitions();
        let name = cols[0]["description"].as_str().unwrap();
        assert!(name.starts_with("Name must be unique within a namespace."), "{name}");
        assert!(cols[5]["description"].as_str().unwrap().contains("IP address"));
        assert_eq!(cols[5]["priority"], 1);
        assert_eq!(cols[1]["format"], "");
    }

    #[test]
    fn every_documented_column_finds_its_field() {
        for (g, p, pr) in PRINTERS {
            for c in pr.columns {
                if let Desc::Doc(def, field) = c.desc {
                    let missing = field_doc(def, field).is_none_or(|d| d.is_empty());
                    // Upstream asks ObjectMeta for "handler", which it does not have.
                    assert_eq!(missing, field == "handler", "{g}/{p} {}: {def}.{field}", c.name);
                }
            }
        }
        let name = describe(NAME.desc);
        assert!(name.ends_with("working-with-objects/names#names"), "{name}");
        let age = describe(AGE.desc);
        assert!(age.starts_with("CreationTimestamp is a timestamp"), "{age}");
    }

    #[test]
    fn generic_convertor_prints_created_at() {
        let o = json!({"metadata": {"name": "r", "creationTimestamp": "2024-05-01T12:00:00Z"}});
        assert_eq!(default_cells(&o), vec![json!("r"), json!("2024-05-01T12:00:00Z")]);
        let cols = DEFAULT.column_definitions();
        assert_eq!(cols[1]["name"], "Created At");
        assert_eq!(cols[1]["type"], "date");
        assert_eq!(default_cells(&json!({}))[1], "0001-01-01T00:00:00Z");
    }
}
