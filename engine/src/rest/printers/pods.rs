//! The Pod printer: READY (ready/total containers, sidecars included), STATUS (phase,
//! refined by init container progress, container waiting/terminated reasons, scheduling
//! gates and deletion), RESTARTS ("N (5m ago)" after a restart), AGE, and the wide IP,
//! NODE, NOMINATED NODE and READINESS GATES cells, following upstream's `printPod`.

use super::cells::{
    age, ago, at, condition_status, deleting, int_at, list_at, name, opt_bool, str_at, timestamp,
};
use super::{AGE, Column, Desc, NAME, Printer, col, wide};
use serde_json::{Value, json};

static COLUMNS: &[Column] = &[
    NAME,
    col(
        "Ready",
        "string",
        Desc::Text("The aggregate readiness state of this pod for accepting traffic."),
    ),
    col("Status", "string", Desc::Text("The aggregate status of the containers in this pod.")),
    col(
        "Restarts",
        "string",
        Desc::Text(
            "The number of times the containers in this pod have been restarted and when the \
             last container in this pod has restarted.",
        ),
    ),
    AGE,
    wide("IP", "string", Desc::Doc("core.v1.PodStatus", "podIP")),
    wide("Node", "string", Desc::Doc("core.v1.PodSpec", "nodeName")),
    wide("Nominated Node", "string", Desc::Doc("core.v1.PodStatus", "nominatedNodeName")),
    wide("Readiness Gates", "string", Desc::Doc("core.v1.PodSpec", "readinessGates")),
];

pub static POD: Printer = Printer { columns: COLUMNS, cells, conditions, order: None };

/// Restart count and the latest restart (a container's last termination) of a set of
/// container statuses.
#[derive(Clone, Default)]
struct Restarts {
    count: i64,
    last: Option<(i64, i32)>,
}

impl Restarts {
    fn add(&mut self, status: &Value) {
        self.count += int_at(status, &["restartCount"]);
        let finished =
            at(status, &["lastState", "terminated", "finishedAt"]).and_then(Value::as_str);
        if let Some(t) = timestamp(finished) {
            self.last = Some(self.last.map_or(t, |l| l.max(t)));
        }
    }

    fn cell(&self) -> String {
        match self.last {
            Some((secs, _)) if self.count != 0 => format!("{} ({} ago)", self.count, ago(secs)),
            _ => self.count.to_string(),
        }
    }
}

/// The aggregate state `printPod` derives.
struct Summary<'a> {
    pod: &'a Value,
    reason: String,
    ready: i64,
    total: i64,
    all: Restarts,
    sidecars: Restarts,
    initializing: bool,
}

fn cells(pod: &Value) -> Vec<Value> {
    let s = summarize(pod);
    let restarts = s.all.cell();
    let mut row = vec![
        json!(name(pod)),
        json!(format!("{}/{}", s.ready, s.total)),
        json!(s.reason),
        json!(restarts),
        json!(age(pod)),
    ];
    row.extend(wide_cells(pod));
    row
}

fn summarize(pod: &Value) -> Summary<'_> {
    let mut s = Summary {
        pod,
        reason: initial_reason(pod),
        ready: 0,
        total: list_at(pod, &["spec", "containers"]).len() as i64
            + init_specs(pod).iter().filter(|c| is_sidecar(c)).count() as i64,
        all: Restarts::default(),
        sidecars: Restarts::default(),
        initializing: false,
    };
    init_containers(&mut s);
    if !s.initializing || condition_status(conditions_of(pod), "Initialized") == Some("True") {
        main_containers(&mut s);
    }
    deletion(&mut s);
    s
}

fn conditions_of(pod: &Value) -> &[Value] {
    list_at(pod, &["status", "conditions"])
}

fn init_specs(pod: &Value) -> &[Value] {
    list_at(pod, &["spec", "initContainers"])
}

/// A restartable init container (`restartPolicy: Always`).
fn is_sidecar(spec: &Value) -> bool {
    str_at(spec, &["restartPolicy"]) == "Always"
}

fn initial_reason(pod: &Value) -> String {
    let mut reason = match str_at(pod, &["status", "reason"]) {
        "" => str_at(pod, &["status", "phase"]),
        r => r,
    };
    let gated = conditions_of(pod).iter().any(|c| {
        str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated"
    });
    if gated {
        reason = "SchedulingGated";
    }
    reason.to_string()
}

fn state<'a>(status: &'a Value, which: &str) -> Option<&'a Value> {
    at(status, &["state", which]).filter(|v| v.is_object())
}

/// "Signal:N" or "ExitCode:N" for a termination without a reason.
fn exit_text(terminated: &Value) -> String {
    match int_at(terminated, &["signal"]) {
        0 => format!("ExitCode:{}", int_at(terminated, &["exitCode"])),
        sig => format!("Signal:{sig}"),
    }
}

fn init_containers(s: &mut Summary<'_>) {
    let specs = init_specs(s.pod);
    for (i, status) in list_at(s.pod, &["status", "initContainerStatuses"]).iter().enumerate() {
        s.all.add(status);
        let cname = str_at(status, &["name"]);
        let sidecar = specs.iter().any(|c| str_at(c, &["name"]) == cname && is_sidecar(c));
        if sidecar {
            s.sidecars.add(status);
        }
        let terminated = state(status, "terminated");
        if terminated.is_some_and(|t| int_at(t, &["exitCode"]) == 0) {
            continue;
        }
        if sidecar && opt_bool(status, &["started"]) == Some(true) {
            if opt_bool(status, &["ready"]) == Some(true) {
                s.ready += 1;
            }
            continue;
        }
        s.reason = init_reason(status, terminated, i, specs.len());
        s.initializing = true;
        break;
    }
}

fn init_reason(status: &Value, terminated: Option<&Value>, i: usize, n: usize) -> String {
    let waiting = str_at(status, &["state", "waiting", "reason"]);
    match terminated {
        Some(t) => match str_at(t, &["reason"]) {
            "" => format!("Init:{}", exit_text(t)),
            r => format!("Init:{r}"),
        },
        None if !waiting.is_empty() && waiting != "PodInitializing" => format!("Init:{waiting}"),
        None => format!("Init:{i}/{n}"),
    }
}

fn main_containers(s: &mut Summary<'_>) {
    s.all = s.sidecars.clone();
    let mut running = false;
    for status in list_at(s.pod, &["status", "containerStatuses"]).iter().rev() {
        s.all.add(status);
        let waiting = str_at(status, &["state", "waiting", "reason"]);
        let terminated = state(status, "terminated");
        if !waiting.is_empty() {
            s.reason = waiting.to_string();
        } else if let Some(t) = terminated {
            s.reason = match str_at(t, &["reason"]) {
                "" => exit_text(t),
                r => r.to_string(),
            };
        } else if opt_bool(status, &["ready"]) == Some(true) && state(status, "running").is_some() {
            running = true;
            s.ready += 1;
        }
    }
    if s.reason == "Completed" && running {
        let ready = conditions_of(s.pod)
            .iter()
            .any(|c| str_at(c, &["type"]) == "Ready" && str_at(c, &["status"]) == "True");
        s.reason = if ready { "Running" } else { "NotReady" }.into();
    }
}

fn deletion(s: &mut Summary<'_>) {
    if !deleting(s.pod) {
        return;
    }
    if str_at(s.pod, &["status", "reason"]) == "NodeLost" {
        s.reason = "Unknown".into();
    } else if !matches!(str_at(s.pod, &["status", "phase"]), "Succeeded" | "Failed") {
        s.reason = "Terminating".into();
    }
}

fn or_none(s: &str) -> String {
    if s.is_empty() { "<none>".into() } else { s.into() }
}

fn wide_cells(pod: &Value) -> [Value; 4] {
    let ip = list_at(pod, &["status", "podIPs"]).first().map_or("", |p| str_at(p, &["ip"]));
    [
        json!(or_none(ip)),
        json!(or_none(str_at(pod, &["spec", "nodeName"]))),
        json!(or_none(str_at(pod, &["status", "nominatedNodeName"]))),
        json!(readiness_gates(pod)),
    ]
}

fn readiness_gates(pod: &Value) -> String {
    let gates = list_at(pod, &["spec", "readinessGates"]);
    if gates.is_empty() {
        return "<none>".into();
    }
    let conditions = conditions_of(pod);
    let passed = gates
        .iter()
        .filter(|g| condition_status(conditions, str_at(g, &["conditionType"])) == Some("True"))
        .count();
    format!("{passed}/{}", gates.len())
}

/// `Completed` row conditions of finished pods.
fn conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match str_at(pod, &["status", "phase"]) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pod: Value) -> Vec<Value> {
        cells(&pod)
    }

    fn ago(secs: i64) -> String {
        kapi_codec::time::rfc3339(crate::time::now_unix() - secs)
    }

    #[test]
    fn pending_pod() {
        let r = row(json!({
            "metadata": {"name": "web", "creationTimestamp": ago(30)},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            "status": {"phase": "Pending"},
        }));
        assert_eq!(
            r[..5],
            [json!("web"), json!("0/1"), json!("Pending"), json!("0"), json!("30s")]
        );
        assert_eq!(r[5..], [json!("<none>"), json!("<none>"), json!("<none>"), json!("<none>")]);
    }

    #[test]
    fn running_pod_with_restarts() {
        let r = row(json!({
            "metadata": {"name": "web"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1",
                     "readinessGates": [{"conditionType": "x/y"}]},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.5"}],
                "conditions": [{"type": "x/y", "status": "True"}],
                "containerStatuses": [
                    {"name": "a", "ready": true, "restartCount": 3, "state": {"running": {}},
                     "lastState": {"terminated": {"finishedAt": ago(300), "exitCode": 1}}},
                    {"name": "b", "ready": false, "restartCount": 2,
                     "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]},
        }));
        assert_eq!(r[1], "1/2");
        assert_eq!(r[2], "CrashLoopBackOff");
        assert_eq!(r[3], "5 (5m ago)");
        assert_eq!(r[4], "<unknown>");
        assert_eq!(r[5..], [json!("10.0.0.5"), json!("n1"), json!("<none>"), json!("1/1")]);
    }

    #[test]
    fn completed_and_terminated_reasons() {
        let done = json!({
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [
                {"name": "a", "state": {"terminated": {"reason": "Completed", "exitCode": 0}}}]},
        });
        assert_eq!(row(done.clone())[2], "Completed");
        assert_eq!(conditions(&done).unwrap()[0]["reason"], "Succeeded");
        let killed = json!({
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "a", "state": {"terminated": {"signal": 9, "exitCode": 137}}}]},
        });
        assert_eq!(row(killed)[2], "Signal:9");
        assert!(conditions(&json!({"status": {"phase": "Running"}})).is_none());
    }

    #[test]
    fn init_containers_and_sidecars() {
        let waiting = json!({
            "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}],
                     "containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
                {"name": "i2", "state": {"waiting": {"reason": "PodInitializing"}}}]},
        });
        assert_eq!(row(waiting)[2], "Init:1/2");
        let failed = json!({
            "spec": {"initContainers": [{"name": "i1"}], "containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "state": {"terminated": {"exitCode": 2}}}]},
        });
        assert_eq!(row(failed)[2], "Init:ExitCode:2");
        let backoff = json!({
            "spec": {"initContainers": [{"name": "i1"}], "containers": [{"name": "a"}]},
            "status": {"initContainerStatuses": [
                {"name": "i1", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]},
        });
        assert_eq!(row(backoff)[2], "Init:ImagePullBackOff");
        let sidecar = json!({
            "spec": {"initContainers": [{"name": "s", "restartPolicy": "Always"}],
                     "containers": [{"name": "a"}]},
            "status": {"phase": "Running",
                "initContainerStatuses": [{"name": "s", "started": true, "ready": true,
                    "restartCount": 1, "state": {"running": {}}}],
                "containerStatuses": [{"name": "a", "ready": true, "state": {"running": {}}}]},
        });
        let r = row(sidecar);
        assert_eq!(r[1], "2/2");
        assert_eq!(r[2], "Running");
        assert_eq!(r[3], "1");
    }

    #[test]
    fn terminating_gated_and_running_completed() {
        let deleting = json!({
            "metadata": {"deletionTimestamp": ago(1)},
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Running"},
        });
        assert_eq!(row(deleting)[2], "Terminating");
        let lost = json!({
            "metadata": {"deletionTimestamp": ago(1)},
            "status": {"phase": "Running", "reason": "NodeLost"},
        });
        assert_eq!(row(lost)[2], "Unknown");
        let gated = json!({"status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}});
        assert_eq!(row(gated)[2], "SchedulingGated");
        let partly = json!({
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "a", "ready": true, "state": {"running": {}}},
                {"name": "b", "state": {"terminated": {"reason": "Completed"}}}]},
        });
        assert_eq!(row(partly)[2], "NotReady");
    }
}
