//! ResourceQuota and LimitRanger through kubectl, as upstream: a quota's `status` is
//! kept by the in-process quota controller (hard copied, used recalculated after
//! creates and deletes), writes past it are refused with upstream's messages (also
//! under concurrent creates racing for the last slot), pods must ask for what a quota
//! limits; a LimitRange's defaults land on pods (annotated) and a pod over its maximum
//! is refused.

use kapi_e2e::{Server, eventually};
use serde_json::Value;
use std::time::Duration;

fn json(s: &str) -> Value {
    serde_json::from_str(s).expect("json")
}

fn used(s: &Server, ns: &str, resource: &str) -> Option<String> {
    let q = json(&s.kubectl_ok(&["get", "resourcequota", "q", "-n", ns, "-o", "json"]));
    q["status"]["used"][resource].as_str().map(String::from)
}

/// Wait until the quota's `status.used[resource]` is `want`.
fn wait_used(s: &Server, ns: &str, resource: &str, want: &str) {
    let ok = eventually(Duration::from_secs(20), || used(s, ns, resource).as_deref() == Some(want));
    assert!(ok, "status.used[{resource}] is {:?}, want {want}", used(s, ns, resource));
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// ConfigMaps already in a new namespace: kube-root-ca.crt once a controller manager
/// publishes it (kapi alone does not), which upstream's quota counts like any other.
fn configmaps_in(s: &Server, ns: &str) -> usize {
    let list = json(&s.kubectl_ok(&["get", "configmaps", "-n", ns, "-o", "json"]));
    list["items"].as_array().map_or(0, Vec::len)
}

#[test]
fn configmaps_past_the_quota_are_refused_and_usage_follows_creates_and_deletes() {
    let s = Server::start();
    s.kubectl_ok(&["create", "namespace", "q1"]);
    let pre = configmaps_in(&s, "q1");
    let hard = format!("count/configmaps={}", pre + 2);
    s.kubectl_ok(&["create", "quota", "q", "-n", "q1", &format!("--hard={hard}")]);
    wait_used(&s, "q1", "count/configmaps", &pre.to_string());
    let q = json(&s.kubectl_ok(&["get", "quota", "q", "-n", "q1", "-o", "json"]));
    assert_eq!(q["status"]["hard"]["count/configmaps"], (pre + 2).to_string());
    for cm in ["c1", "c2"] {
        s.kubectl_ok(&["create", "configmap", cm, "-n", "q1"]);
    }
    // Admission charged both creates.
    assert_eq!(used(&s, "q1", "count/configmaps"), Some((pre + 2).to_string()));
    let refused = s.kubectl(&["create", "configmap", "c3", "-n", "q1"]);
    assert!(!refused.status.success());
    let want = format!(
        "configmaps \"c3\" is forbidden: exceeded quota: q, requested: count/configmaps=1, \
         used: count/configmaps={n}, limited: count/configmaps={n}",
        n = pre + 2
    );
    assert!(stderr(&refused).contains(&want), "{}", stderr(&refused));
    s.kubectl_ok(&["delete", "configmap", "c1", "-n", "q1"]);
    wait_used(&s, "q1", "count/configmaps", &(pre + 1).to_string());
    s.kubectl_ok(&["create", "configmap", "c3", "-n", "q1"]);
    assert_eq!(configmaps_in(&s, "q1"), pre + 2);
}

#[test]
fn concurrent_creates_cannot_take_more_than_the_quota() {
    let s = Server::start();
    s.kubectl_ok(&["create", "namespace", "race"]);
    let pre = configmaps_in(&s, "race");
    let hard = format!("--hard=count/configmaps={}", pre + 3);
    s.kubectl_ok(&["create", "quota", "q", "-n", "race", &hard]);
    wait_used(&s, "race", "count/configmaps", &pre.to_string());
    let outcomes: Vec<std::process::Output> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let s = &s;
                scope.spawn(move || {
                    s.kubectl(&["create", "configmap", &format!("r{i}"), "-n", "race"])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("kubectl thread")).collect()
    });
    let created = outcomes.iter().filter(|o| o.status.success()).count();
    assert_eq!(created, 3, "exactly the quota's free slots are taken");
    for o in outcomes.iter().filter(|o| !o.status.success()) {
        assert!(stderr(o).contains("exceeded quota: q"), "{}", stderr(o));
    }
    assert_eq!(configmaps_in(&s, "race"), pre + 3);
    assert_eq!(used(&s, "race", "count/configmaps"), Some((pre + 3).to_string()));
}

const POD_NO_CPU: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"nocpu"},
  "spec":{"containers":[{"name":"nocpu","image":"nginx"}]}}"#;

fn pod_with_cpu(name: &str, request: &str, limit: Option<&str>) -> String {
    let limits = limit.map(|l| format!(r#","limits":{{"cpu":"{l}"}}"#)).unwrap_or_default();
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"}},
        "spec":{{"containers":[{{"name":"c","image":"nginx",
        "resources":{{"requests":{{"cpu":"{request}"}}{limits}}}}}]}}}}"#
    )
}

#[test]
fn pods_are_charged_compute_resources_and_must_ask_for_them() {
    let s = Server::start();
    s.kubectl_ok(&["create", "namespace", "qp"]);
    s.kubectl_ok(&["create", "quota", "q", "-n", "qp", "--hard=requests.cpu=1,pods=5"]);
    wait_used(&s, "qp", "requests.cpu", "0");
    let out = s.kubectl_stdin(&["create", "-n", "qp", "-f", "-"], POD_NO_CPU);
    assert!(!out.status.success());
    let want = "pods \"nocpu\" is forbidden: failed quota: q: must specify requests.cpu for: nocpu";
    assert!(stderr(&out).contains(want), "{}", stderr(&out));
    let out = s.kubectl_stdin(&["create", "-n", "qp", "-f", "-"], &pod_with_cpu("a", "600m", None));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(used(&s, "qp", "requests.cpu").as_deref(), Some("600m"));
    assert_eq!(used(&s, "qp", "pods").as_deref(), Some("1"));
    let out = s.kubectl_stdin(&["create", "-n", "qp", "-f", "-"], &pod_with_cpu("b", "600m", None));
    let want = "pods \"b\" is forbidden: exceeded quota: q, requested: requests.cpu=600m, \
                used: requests.cpu=600m, limited: requests.cpu=1";
    assert!(stderr(&out).contains(want), "{}", stderr(&out));
    s.kubectl_ok(&["delete", "pod", "a", "-n", "qp", "--grace-period=0", "--force"]);
    wait_used(&s, "qp", "requests.cpu", "0");
    wait_used(&s, "qp", "pods", "0");
}

const LIMIT_RANGE: &str = r#"{"apiVersion":"v1","kind":"LimitRange","metadata":{"name":"lr"},
  "spec":{"limits":[{"type":"Container","default":{"cpu":"500m"},
  "defaultRequest":{"cpu":"100m"},"max":{"cpu":"500m"}}]}}"#;

#[test]
fn limit_range_defaults_land_on_pods_and_maximums_refuse_them() {
    let s = Server::start();
    s.kubectl_ok(&["create", "namespace", "lr"]);
    s.kubectl_stdin(&["create", "-n", "lr", "-f", "-"], LIMIT_RANGE);
    // The plugin reads LimitRanges from the watch cache, as upstream from its informer.
    let seen = eventually(Duration::from_secs(20), || {
        let out = s.kubectl(&[
            "run",
            "probe",
            "--image=nginx",
            "-n",
            "lr",
            "--dry-run=server",
            "-o",
            "json",
        ]);
        out.status.success()
            && json(&String::from_utf8_lossy(&out.stdout))["metadata"]["annotations"]
                ["kubernetes.io/limit-ranger"]
                .is_string()
    });
    assert!(seen, "the LimitRange reached the plugin");
    s.kubectl_ok(&["run", "web", "--image=nginx", "-n", "lr"]);
    let pod = json(&s.kubectl_ok(&["get", "pod", "web", "-n", "lr", "-o", "json"]));
    let res = &pod["spec"]["containers"][0]["resources"];
    assert_eq!(res["limits"]["cpu"], "500m");
    assert_eq!(res["requests"]["cpu"], "100m");
    assert_eq!(
        pod["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu request for container web; cpu limit for container web"
    );
    let big = pod_with_cpu("p", "100m", Some("4"));
    let out = s.kubectl_stdin(&["create", "-n", "lr", "-f", "-"], &big);
    assert!(!out.status.success());
    let want = "pods \"p\" is forbidden: maximum cpu usage per Container is 500m, but limit is 4";
    assert!(stderr(&out).contains(want), "{}", stderr(&out));
}
