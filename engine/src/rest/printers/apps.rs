//! Printers of the workload groups: apps (deployments, replica sets, stateful sets, daemon
//! sets, controller revisions) and batch (jobs, cron jobs).

use super::cells::{
    age, at, containers, deleting, format_label_selector, format_labels, int_at, list_at, map_at,
    name, opt_bool, opt_int, opt_str, selector_string, since, str_at, timestamp,
};
use super::{AGE, Desc, NAME, Printer, col, printer, wide};
use crate::rest::table::human_duration;
use crate::time;
use serde_json::{Value, json};

const CONTAINERS: Desc = Desc::Text("Names of each container in the template.");
const IMAGES: Desc = Desc::Text("Images referenced by each container in the template.");
const READY: Desc = Desc::Text("Number of the pod with ready state");

/// Container names and images of the pod template under `path`.
fn template_cells(o: &Value, path: &[&str]) -> [Value; 2] {
    let (names, images) = containers(list_at(o, path));
    [json!(names), json!(images)]
}

const POD_CONTAINERS: &[&str] = &["spec", "template", "spec", "containers"];

pub static DEPLOYMENT: Printer = printer(
    &[
        NAME,
        col("Ready", "string", READY),
        col("Up-to-date", "string", Desc::Doc("apps.v1.DeploymentStatus", "updatedReplicas")),
        col("Available", "string", Desc::Doc("apps.v1.DeploymentStatus", "availableReplicas")),
        AGE,
        wide("Containers", "string", CONTAINERS),
        wide("Images", "string", IMAGES),
        wide("Selector", "string", Desc::Doc("apps.v1.DeploymentSpec", "selector")),
    ],
    deployment,
);

fn deployment(o: &Value) -> Vec<Value> {
    let ready =
        format!("{}/{}", int_at(o, &["status", "readyReplicas"]), int_at(o, &["spec", "replicas"]));
    let selector =
        selector_string(at(o, &["spec", "selector"])).unwrap_or_else(|()| "<invalid>".into());
    let mut row = vec![
        json!(name(o)),
        json!(ready),
        json!(int_at(o, &["status", "updatedReplicas"])),
        json!(int_at(o, &["status", "availableReplicas"])),
        json!(age(o)),
    ];
    row.extend(template_cells(o, POD_CONTAINERS));
    row.push(json!(selector));
    row
}

pub static REPLICA_SET: Printer = printer(
    &[
        NAME,
        col("Desired", "integer", Desc::Doc("apps.v1.ReplicaSetSpec", "replicas")),
        col("Current", "integer", Desc::Doc("apps.v1.ReplicaSetStatus", "replicas")),
        col("Ready", "integer", Desc::Doc("apps.v1.ReplicaSetStatus", "readyReplicas")),
        AGE,
        wide("Containers", "string", CONTAINERS),
        wide("Images", "string", IMAGES),
        wide("Selector", "string", Desc::Doc("apps.v1.ReplicaSetSpec", "selector")),
    ],
    replica_set,
);

fn replica_set(o: &Value) -> Vec<Value> {
    let mut row = vec![
        json!(name(o)),
        json!(int_at(o, &["spec", "replicas"])),
        json!(int_at(o, &["status", "replicas"])),
        json!(int_at(o, &["status", "readyReplicas"])),
        json!(age(o)),
    ];
    row.extend(template_cells(o, POD_CONTAINERS));
    row.push(json!(format_label_selector(at(o, &["spec", "selector"]))));
    row
}

pub static STATEFUL_SET: Printer = printer(
    &[
        NAME,
        col("Ready", "string", READY),
        AGE,
        wide("Containers", "string", CONTAINERS),
        wide("Images", "string", IMAGES),
    ],
    stateful_set,
);

fn stateful_set(o: &Value) -> Vec<Value> {
    let ready =
        format!("{}/{}", int_at(o, &["status", "readyReplicas"]), int_at(o, &["spec", "replicas"]));
    let mut row = vec![json!(name(o)), json!(ready), json!(age(o))];
    row.extend(template_cells(o, POD_CONTAINERS));
    row
}

pub static DAEMON_SET: Printer = printer(
    &[
        NAME,
        col("Desired", "integer", Desc::Doc("apps.v1.DaemonSetStatus", "desiredNumberScheduled")),
        col("Current", "integer", Desc::Doc("apps.v1.DaemonSetStatus", "currentNumberScheduled")),
        col("Ready", "integer", Desc::Doc("apps.v1.DaemonSetStatus", "numberReady")),
        col(
            "Up-to-date",
            "integer",
            Desc::Doc("apps.v1.DaemonSetStatus", "updatedNumberScheduled"),
        ),
        col("Available", "integer", Desc::Doc("apps.v1.DaemonSetStatus", "numberAvailable")),
        col("Node Selector", "string", Desc::Doc("core.v1.PodSpec", "nodeSelector")),
        AGE,
        wide("Containers", "string", CONTAINERS),
        wide("Images", "string", IMAGES),
        wide("Selector", "string", Desc::Doc("apps.v1.DaemonSetSpec", "selector")),
    ],
    daemon_set,
);

fn daemon_set(o: &Value) -> Vec<Value> {
    let status = |f: &str| json!(int_at(o, &["status", f]));
    let node_selector = map_at(o, &["spec", "template", "spec", "nodeSelector"]);
    let mut row = vec![
        json!(name(o)),
        status("desiredNumberScheduled"),
        status("currentNumberScheduled"),
        status("numberReady"),
        status("updatedNumberScheduled"),
        status("numberAvailable"),
        json!(format_labels(node_selector)),
        json!(age(o)),
    ];
    row.extend(template_cells(o, POD_CONTAINERS));
    row.push(json!(format_label_selector(at(o, &["spec", "selector"]))));
    row
}

pub static CONTROLLER_REVISION: Printer = printer(
    &[
        NAME,
        col("Controller", "string", Desc::Text("Controller of the object")),
        col("Revision", "string", Desc::Doc("apps.v1.ControllerRevision", "revision")),
        AGE,
    ],
    controller_revision,
);

fn controller_revision(o: &Value) -> Vec<Value> {
    vec![json!(name(o)), json!(controller_of(o)), json!(int_at(o, &["revision"])), json!(age(o))]
}

/// `kind.group/name` (lower-cased kind and group) of the controlling owner, `<none>`.
fn controller_of(o: &Value) -> String {
    let owner = list_at(o, &["metadata", "ownerReferences"])
        .iter()
        .find(|r| opt_bool(r, &["controller"]) == Some(true));
    let Some(owner) = owner else { return "<none>".into() };
    let owner_name = str_at(owner, &["name"]);
    let group = str_at(owner, &["apiVersion"]).split_once('/').map_or("", |(g, _)| g);
    let kind = str_at(owner, &["kind"]);
    let group_kind = match (kind, group) {
        ("", "") => return owner_name.to_string(),
        (k, "") => k.to_string(),
        (k, g) => format!("{k}.{g}"),
    };
    format!("{}/{owner_name}", group_kind.to_lowercase())
}

pub static JOB: Printer = printer(
    &[
        NAME,
        col("Status", "string", Desc::Text("Status of the job.")),
        col("Completions", "string", Desc::Doc("batch.v1.JobStatus", "succeeded")),
        col("Duration", "string", Desc::Text("Time required to complete the job.")),
        AGE,
        wide("Containers", "string", CONTAINERS),
        wide("Images", "string", IMAGES),
        wide("Selector", "string", Desc::Doc("batch.v1.JobSpec", "selector")),
    ],
    job,
);

fn job(o: &Value) -> Vec<Value> {
    let mut row = vec![
        json!(name(o)),
        json!(job_status(o)),
        json!(job_completions(o)),
        json!(job_duration(o)),
        json!(age(o)),
    ];
    row.extend(template_cells(o, POD_CONTAINERS));
    row.push(json!(format_label_selector(at(o, &["spec", "selector"]))));
    row
}

fn job_completions(o: &Value) -> String {
    let succeeded = int_at(o, &["status", "succeeded"]);
    match (opt_int(o, &["spec", "completions"]), int_at(o, &["spec", "parallelism"])) {
        (Some(c), _) => format!("{succeeded}/{c}"),
        (None, p) if p > 1 => format!("{succeeded}/1 of {p}"),
        (None, _) => format!("{succeeded}/1"),
    }
}

fn job_duration(o: &Value) -> String {
    let Some((start, _)) = timestamp(opt_str(o, &["status", "startTime"])) else {
        return String::new();
    };
    match timestamp(opt_str(o, &["status", "completionTime"])) {
        Some((end, _)) => human_duration(end - start),
        None => human_duration(time::now_unix() - start),
    }
}

/// The first matching condition decides, as upstream's `hasJobCondition`.
fn job_condition(o: &Value, ty: &str) -> bool {
    list_at(o, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == ty)
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

fn job_status(o: &Value) -> &'static str {
    if job_condition(o, "Complete") {
        "Complete"
    } else if job_condition(o, "Failed") {
        "Failed"
    } else if deleting(o) {
        "Terminating"
    } else if job_condition(o, "Suspended") {
        "Suspended"
    } else if job_condition(o, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    }
}

pub static CRON_JOB: Printer = printer(
    &[
        NAME,
        col("Schedule", "string", Desc::Doc("batch.v1.CronJobSpec", "schedule")),
        col("Timezone", "string", Desc::Doc("batch.v1.CronJobSpec", "timeZone")),
        col("Suspend", "boolean", Desc::Doc("batch.v1.CronJobSpec", "suspend")),
        col("Active", "integer", Desc::Doc("batch.v1.CronJobStatus", "active")),
        col("Last Schedule", "string", Desc::Doc("batch.v1.CronJobStatus", "lastScheduleTime")),
        AGE,
        wide("Containers", "string", CONTAINERS),
        wide("Images", "string", IMAGES),
        wide("Selector", "string", Desc::Doc("batch.v1.JobSpec", "selector")),
    ],
    cron_job,
);

fn cron_job(o: &Value) -> Vec<Value> {
    let last = match opt_str(o, &["status", "lastScheduleTime"]) {
        Some(t) => since(Some(t)),
        None => "<none>".into(),
    };
    let mut row = vec![
        json!(name(o)),
        json!(str_at(o, &["spec", "schedule"])),
        json!(opt_str(o, &["spec", "timeZone"]).unwrap_or("<none>")),
        json!(super::cells::bool_ptr(opt_bool(o, &["spec", "suspend"]))),
        json!(list_at(o, &["status", "active"]).len()),
        json!(last),
        json!(age(o)),
    ];
    let job_spec = at(o, &["spec", "jobTemplate", "spec"]).unwrap_or(&Value::Null);
    row.extend(template_cells(job_spec, &["template", "spec", "containers"]));
    row.push(json!(format_label_selector(at(job_spec, &["selector"]))));
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployments() {
        let d = json!({
            "metadata": {"name": "web"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "a", "image": "nginx"},
                                                          {"name": "b", "image": "redis:7"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
        });
        let r = deployment(&d);
        assert_eq!(r[..4], [json!("web"), json!("2/3"), json!(3), json!(2)]);
        assert_eq!(r[5..], [json!("a,b"), json!("nginx,redis:7"), json!("app=web")]);
        let fresh = deployment(&json!({"spec": {"replicas": 1}}));
        assert_eq!(fresh[1..4], [json!("0/1"), json!(0), json!(0)]);
        assert_eq!(fresh[7], "");
        let bad =
            json!({"spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}});
        assert_eq!(deployment(&bad)[7], "<invalid>");
    }

    #[test]
    fn jobs_and_cron_jobs() {
        let j = json!({"spec": {"parallelism": 3},
            "status": {"succeeded": 1, "startTime": "2024-01-01T00:00:00Z",
                       "completionTime": "2024-01-01T00:02:30Z",
                       "conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(job(&j)[1..4], [json!("Complete"), json!("1/1 of 3"), json!("2m30s")]);
        let j = json!({"spec": {"completions": 5}, "status": {"conditions": [
            {"type": "Suspended", "status": "True"}]}});
        assert_eq!(job(&j)[1..4], [json!("Suspended"), json!("0/5"), json!("")]);
        let c = json!({"spec": {"schedule": "*/5 * * * *", "suspend": false}});
        let r = cron_job(&c);
        assert_eq!(
            r[1..6],
            [json!("*/5 * * * *"), json!("<none>"), json!("False"), json!(0), json!("<none>")]
        );
        assert_eq!(r[9], "<none>");
    }

    #[test]
    fn controller_revisions() {
        let cr = json!({"metadata": {"ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "controller": true}]},
            "revision": 2});
        assert_eq!(controller_revision(&cr)[1..3], [json!("statefulset.apps/db"), json!(2)]);
        assert_eq!(controller_revision(&json!({}))[1], "<none>");
    }
}
