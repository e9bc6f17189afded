//! API Priority and Fairness configuration against the real binary: the bootstrap
//! FlowSchemas and PriorityLevelConfigurations exist with upstream's values, the
//! mandatory ones come back when deleted or edited, the suggested ones follow their
//! `apf.kubernetes.io/autoupdate-spec` annotation (across a restart too), a bootstrap
//! object upstream no longer ships (annotated true, unknown name) is removed, and a
//! FlowSchema naming a missing level reads `Dangling=True`.

use kapi_e2e::{Server, eventually};
use serde_json::Value;
use std::time::Duration;

const AUTOUPDATE: &str = "apf.kubernetes.io/autoupdate-spec";
const WAIT: Duration = Duration::from_secs(30);

fn get(server: &Server, args: &[&str]) -> Option<Value> {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = server.kubectl(&all);
    out.status.success().then(|| serde_json::from_slice(&out.stdout).expect("json"))
}

fn names(list: &Value) -> Vec<String> {
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let mut n: Vec<String> =
        items.iter().filter_map(|o| o["metadata"]["name"].as_str().map(String::from)).collect();
    n.sort();
    n
}

fn shares(server: &Server, level: &str) -> Option<Value> {
    let plc = get(server, &["get", "prioritylevelconfiguration", level])?;
    Some(plc["spec"]["limited"]["nominalConcurrencyShares"].clone())
}

fn dangling(server: &Server, schema: &str) -> Option<Value> {
    let fs = get(server, &["get", "flowschema", schema])?;
    let conditions = fs["status"]["conditions"].as_array().cloned().unwrap_or_default();
    conditions.into_iter().find(|c| c["type"] == "Dangling")
}

#[test]
fn the_bootstrap_configuration_is_listed_with_upstreams_values() {
    let server = Server::start();
    let levels = get(&server, &["get", "prioritylevelconfigurations"]).unwrap();
    assert_eq!(
        names(&levels),
        [
            "catch-all",
            "exempt",
            "global-default",
            "leader-election",
            "node-high",
            "system",
            "workload-high",
            "workload-low"
        ]
    );
    let schemas = get(&server, &["get", "flowschemas"]).unwrap();
    assert_eq!(
        names(&schemas),
        [
            "catch-all",
            "endpoint-controller",
            "exempt",
            "global-default",
            "kube-controller-manager",
            "kube-scheduler",
            "kube-system-service-accounts",
            "probes",
            "service-accounts",
            "system-leader-election",
            "system-node-high",
            "system-nodes",
            "workload-leader-election"
        ]
    );
    let wl = get(&server, &["get", "prioritylevelconfiguration", "workload-low"]).unwrap();
    let limited = &wl["spec"]["limited"];
    assert_eq!(
        (limited["nominalConcurrencyShares"].as_u64(), limited["lendablePercent"].as_u64()),
        (Some(100), Some(90))
    );
    let queuing = &limited["limitResponse"]["queuing"];
    assert_eq!(queuing["queues"], 128);
    assert_eq!(queuing["handSize"], 6);
    assert_eq!(queuing["queueLengthLimit"], 50);
    assert_eq!(wl["metadata"]["annotations"][AUTOUPDATE], "true");
    let catch_all = get(&server, &["get", "prioritylevelconfiguration", "catch-all"]).unwrap();
    assert_eq!(catch_all["spec"]["limited"]["limitResponse"]["type"], "Reject");
    let nodes = get(&server, &["get", "flowschema", "system-node-high"]).unwrap();
    assert_eq!(nodes["spec"]["matchingPrecedence"], 400);
    assert_eq!(nodes["spec"]["distinguisherMethod"]["type"], "ByUser");
    assert_eq!(nodes["spec"]["rules"][0]["resourceRules"][0]["resources"][1], "nodes/status");
    // The table view kubectl users see.
    let table = server.kubectl_ok(&["get", "flowschemas,prioritylevelconfigurations"]);
    assert!(table.contains("flowschema.flowcontrol.apiserver.k8s.io/probes"), "{table}");
    assert!(table.contains("prioritylevelconfiguration.flowcontrol.apiserver.k8s.io/node-high"));
    // Every FlowSchema's level exists: Dangling=False, written by the server.
    assert!(eventually(WAIT, || {
        dangling(&server, "global-default")
            .is_some_and(|c| c["status"] == "False" && c["reason"] == "Found")
    }));
}

#[test]
fn mandatory_objects_come_back_when_deleted_or_edited() {
    let server = Server::start();
    let before = get(&server, &["get", "flowschema", "catch-all"]).unwrap();
    server.kubectl_ok(&["delete", "flowschema", "catch-all"]);
    server.kubectl_ok(&["delete", "prioritylevelconfiguration", "exempt"]);
    assert!(eventually(WAIT, || {
        get(&server, &["get", "flowschema", "catch-all"])
            .is_some_and(|fs| fs["metadata"]["uid"] != before["metadata"]["uid"])
    }));
    assert!(eventually(WAIT, || get(&server, &["get", "prioritylevelconfiguration", "exempt"])
        .is_some()));
    // A mandatory spec cannot be edited (upstream's validation), whatever the annotation.
    let patch = r#"{"metadata":{"annotations":{"apf.kubernetes.io/autoupdate-spec":"false"}},"spec":{"limited":{"nominalConcurrencyShares":50}}}"#;
    let out = server.kubectl(&[
        "patch",
        "prioritylevelconfiguration",
        "catch-all",
        "--type=merge",
        "-p",
        patch,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("spec of 'catch-all' must equal the fixed value"), "{err}");
    assert_eq!(shares(&server, "catch-all"), Some(5.into()));
    // A deleted suggested object is created again as well.
    server.kubectl_ok(&["delete", "flowschema", "probes"]);
    assert!(eventually(WAIT, || get(&server, &["get", "flowschema", "probes"]).is_some()));
}

#[test]
fn suggested_objects_follow_their_autoupdate_annotation_across_a_restart() {
    let mut server = Server::start();
    let own = r#"{"metadata":{"annotations":{"apf.kubernetes.io/autoupdate-spec":"false"}},"spec":{"limited":{"nominalConcurrencyShares":7}}}"#;
    server.kubectl_ok(&[
        "patch",
        "prioritylevelconfiguration",
        "global-default",
        "--type=merge",
        "-p",
        own,
    ]);
    let kept = r#"{"spec":{"limited":{"nominalConcurrencyShares":7}}}"#;
    server.kubectl_ok(&[
        "patch",
        "prioritylevelconfiguration",
        "workload-low",
        "--type=merge",
        "-p",
        kept,
    ]);
    assert!(eventually(WAIT, || shares(&server, "workload-low") == Some(100.into())));
    assert_eq!(shares(&server, "global-default"), Some(7.into()));
    server.restart();
    assert_eq!(shares(&server, "global-default"), Some(7.into()));
    let gd = get(&server, &["get", "prioritylevelconfiguration", "global-default"]).unwrap();
    assert_eq!(gd["metadata"]["annotations"][AUTOUPDATE], "false");
    assert_eq!(shares(&server, "workload-low"), Some(100.into()));
}

#[test]
fn an_unknown_object_marked_for_autoupdate_is_removed_and_others_stay() {
    let server = Server::start();
    let level = |name: &str, annotation: &str| {
        format!(
            r#"{{"apiVersion":"flowcontrol.apiserver.k8s.io/v1","kind":"PriorityLevelConfiguration",
            "metadata":{{"name":"{name}"{annotation}}},
            "spec":{{"type":"Limited","limited":{{"nominalConcurrencyShares":1,"limitResponse":{{"type":"Reject"}}}}}}}}"#
        )
    };
    let retired = level("retired", &format!(r#","annotations":{{"{AUTOUPDATE}":"true"}}"#));
    server.kubectl_stdin(&["create", "-f", "-"], &retired);
    server.kubectl_stdin(&["create", "-f", "-"], &level("mine", ""));
    assert!(eventually(WAIT, || get(&server, &["get", "prioritylevelconfiguration", "retired"])
        .is_none()));
    assert!(get(&server, &["get", "prioritylevelconfiguration", "mine"]).is_some());
}

#[test]
fn a_flowschema_naming_a_missing_level_is_dangling_until_the_level_exists() {
    let server = Server::start();
    let fs = r#"{"apiVersion":"flowcontrol.apiserver.k8s.io/v1","kind":"FlowSchema",
        "metadata":{"name":"to-nowhere"},
        "spec":{"priorityLevelConfiguration":{"name":"nowhere"},"matchingPrecedence":300,
          "rules":[{"subjects":[{"kind":"User","user":{"name":"alice"}}],
            "nonResourceRules":[{"verbs":["*"],"nonResourceURLs":["*"]}]}]}}"#;
    let out = server.kubectl_stdin(&["create", "-f", "-"], fs);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let message = "This FlowSchema references the PriorityLevelConfiguration object named \"nowhere\" but there is no such object";
    assert!(eventually(WAIT, || {
        dangling(&server, "to-nowhere").is_some_and(|c| {
            c["status"] == "True" && c["reason"] == "NotFound" && c["message"] == message
        })
    }));
    let level = r#"{"apiVersion":"flowcontrol.apiserver.k8s.io/v1","kind":"PriorityLevelConfiguration",
        "metadata":{"name":"nowhere"},
        "spec":{"type":"Limited","limited":{"nominalConcurrencyShares":1,"limitResponse":{"type":"Reject"}}}}"#;
    let out = server.kubectl_stdin(&["create", "-f", "-"], level);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(eventually(WAIT, || {
        dangling(&server, "to-nowhere")
            .is_some_and(|c| c["status"] == "False" && c["reason"] == "Found")
    }));
    // The condition's writer, as upstream names it.
    let obj = get(&server, &["get", "flowschema", "to-nowhere", "--show-managed-fields"]).unwrap();
    let managers = obj["metadata"]["managedFields"].as_array().cloned().unwrap_or_default();
    assert!(
        managers.iter().any(|m| m["manager"] == "api-priority-and-fairness-config-consumer-v1"
            && m["subresource"] == "status"),
        "{managers:?}"
    );
}

/// The value of `metric{priority_level="level"}` in a /metrics scrape.
fn gauge(metrics: &str, metric: &str, level: &str) -> Option<f64> {
    let prefix = format!("{metric}{{priority_level=\"{level}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(prefix.as_str())?.trim().parse().ok())
}

/// Borrowing: every level exports upstream's limit and seat demand gauges, an idle
/// level's current limit lies between its lower and upper limits, and the non-exempt
/// levels' current limits share the server's seats (the sum of the nominal limits, up
/// to rounding).
#[test]
fn borrowing_limits_and_seat_demand_are_exported_per_level() {
    let server = Server::start();
    let metrics = server.kubectl_ok(&["get", "--raw", "/metrics"]);
    let levels = ["catch-all", "global-default", "leader-election", "node-high", "system"];
    let levels = levels.iter().chain(&["workload-high", "workload-low", "exempt"]);
    let (mut nominal_sum, mut current_sum) = (0.0, 0.0);
    for level in levels {
        let g = |m: &str| gauge(&metrics, &format!("apiserver_flowcontrol_{m}"), level);
        let (lower, current, upper) =
            (g("lower_limit_seats"), g("current_limit_seats"), g("upper_limit_seats"));
        let (lower, current, upper) = (lower.unwrap(), current.unwrap(), upper.unwrap());
        assert!(lower <= current && current <= upper, "{level}: {lower} {current} {upper}");
        for m in ["demand_seats_high_watermark", "demand_seats_average", "demand_seats_stdev"] {
            assert!(g(m).is_some(), "{level}: no {m}\n{metrics}");
        }
        assert!(g("demand_seats_smoothed").is_some() && g("target_seats").is_some(), "{level}");
        nominal_sum += g("nominal_limit_seats").unwrap();
        current_sum += current;
    }
    // Upstream's default 600 seats: workload-low keeps 245 - 221 and lends the rest.
    assert_eq!(
        gauge(&metrics, "apiserver_flowcontrol_lower_limit_seats", "workload-low"),
        Some(24.0)
    );
    assert_eq!(
        gauge(&metrics, "apiserver_flowcontrol_upper_limit_seats", "catch-all"),
        Some(613.0)
    );
    assert!((current_sum - nominal_sum).abs() <= 8.0, "{current_sum} vs {nominal_sum}");
    assert!(metrics.contains("\napiserver_flowcontrol_seat_fair_frac "), "{metrics}");
}

/// `kubectl create` of invalid objects: 422 with upstream's messages; defaults filled in
/// on create.
#[test]
fn invalid_objects_are_refused_with_upstreams_messages_and_defaults_are_filled() {
    let server = Server::start();
    let refused = |yaml: &str, message: &str| {
        let out = server.kubectl_stdin(&["create", "-f", "-"], yaml);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success() && err.contains(message), "{err}");
    };
    let head = "apiVersion: flowcontrol.apiserver.k8s.io/v1\nkind: PriorityLevelConfiguration\n";
    refused(
        &format!("{head}metadata: {{name: no-limited}}\nspec: {{type: Limited}}\n"),
        "The PriorityLevelConfiguration \"no-limited\" is invalid: spec.limited: Required value: must not be empty when type is Limited",
    );
    refused(
        &format!(
            "{head}metadata: {{name: big-hand}}\nspec: {{type: Limited, limited: {{limitResponse: {{type: Queue, queuing: {{queues: 5, handSize: 10}}}}}}}}\n"
        ),
        "spec.limited.limitResponse.queuing.handSize: Invalid value: 10: should not be greater than queues (5)",
    );
    let fs = "apiVersion: flowcontrol.apiserver.k8s.io/v1\nkind: FlowSchema\n";
    refused(
        &format!(
            "{fs}metadata: {{name: first}}\nspec: {{matchingPrecedence: 1, priorityLevelConfiguration: {{name: global-default}}}}\n"
        ),
        "spec.matchingPrecedence: Invalid value: 1: only the schema named 'exempt' may have matchingPrecedence 1",
    );
    refused(
        &format!(
            "{fs}metadata: {{name: last}}\nspec: {{matchingPrecedence: 10001, priorityLevelConfiguration: {{name: global-default}}}}\n"
        ),
        "spec.matchingPrecedence: Invalid value: 10001: must not be greater than 10000",
    );
    let ok = server.kubectl_stdin(
        &["create", "-f", "-"],
        &format!("{head}metadata: {{name: defaulted}}\nspec: {{type: Limited, limited: {{limitResponse: {{type: Queue, queuing: {{}}}}}}}}\n"),
    );
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let plc = get(&server, &["get", "prioritylevelconfiguration", "defaulted"]).unwrap();
    let limited = &plc["spec"]["limited"];
    assert_eq!(limited["nominalConcurrencyShares"], 30);
    assert_eq!(limited["lendablePercent"], 0);
    let q = &limited["limitResponse"]["queuing"];
    assert_eq!(
        (&q["queues"], &q["handSize"], &q["queueLengthLimit"]),
        (&64.into(), &8.into(), &50.into())
    );
    let ok = server.kubectl_stdin(
        &["create", "-f", "-"],
        &format!("{fs}metadata: {{name: defaulted}}\nspec: {{priorityLevelConfiguration: {{name: defaulted}}}}\n"),
    );
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let schema = get(&server, &["get", "flowschema", "defaulted"]).unwrap();
    assert_eq!(schema["spec"]["matchingPrecedence"], 1000);
}
