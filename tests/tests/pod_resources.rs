//! A container's resources are validated and defaulted as upstream does (kubectl against
//! the real binary, on both backends): a request over its limit, negative quantities,
//! unknown resource names, extended resources (whole, request equal to limit, a limit
//! required), huge pages, and resource-list values rounded up to thousandths when
//! stored. Compared answer by answer with upstream kube-apiserver when
//! `../shared/upstream` is present (v1.21; one message gained its limit's value in later
//! releases, and kapi answers as v1.35).

use kapi_e2e::Server;
use serde_json::Value;
use std::process::Output;

/// Each case: the container's `resources` (YAML flow style) and the error lines kapi
/// answers (v1.35's texts), sorted (upstream lists a map's errors in Go's map order).
const REFUSED: &[(&str, &[&str])] = &[
    (
        "{limits: {memory: 2Mi}, requests: {memory: 1Gi}}",
        &[
            "spec.containers[0].resources.requests: Invalid value: \"1Gi\": must be less than or equal to memory limit of 2Mi",
        ],
    ),
    (
        "{requests: {cpu: \"-1\"}}",
        &[
            "spec.containers[0].resources.requests[cpu]: Invalid value: \"-1\": must be greater than or equal to 0",
        ],
    ),
    (
        "{requests: {foo: \"1\", pods: \"1\"}}",
        &[
            "spec.containers[0].resources.requests[foo]: Invalid value: \"foo\": must be a standard resource for containers",
            "spec.containers[0].resources.requests[foo]: Invalid value: \"foo\": must be a standard resource type or fully qualified",
            "spec.containers[0].resources.requests[pods]: Invalid value: \"pods\": must be a standard resource for containers",
        ],
    ),
    (
        "{limits: {example.com/dongle: \"2\"}, requests: {example.com/dongle: \"1\", example.com/fan: \"1\"}}",
        &[
            "spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources",
            "spec.containers[0].resources.requests: Invalid value: \"1\": must be equal to example.com/dongle limit of 2",
        ],
    ),
    (
        "{limits: {example.com/dongle: 500m, example.com/fan: \"0.5\"}}",
        &[
            "spec.containers[0].resources.limits[example.com/dongle]: Invalid value: resource.Quantity{i:resource.int64Amount{value:500, scale:-3}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"500m\", Format:\"DecimalSI\"}: must be an integer",
            "spec.containers[0].resources.limits[example.com/fan]: Invalid value: resource.Quantity{i:resource.int64Amount{value:5, scale:-1}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"\", Format:\"DecimalSI\"}: must be an integer",
            "spec.containers[0].resources.requests[example.com/dongle]: Invalid value: resource.Quantity{i:resource.int64Amount{value:500, scale:-3}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"500m\", Format:\"DecimalSI\"}: must be an integer",
            "spec.containers[0].resources.requests[example.com/fan]: Invalid value: resource.Quantity{i:resource.int64Amount{value:5, scale:-1}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"\", Format:\"DecimalSI\"}: must be an integer",
        ],
    ),
    (
        "{limits: {hugepages-2Mi: 3Mi}, requests: {hugepages-2Mi: 3Mi}}",
        &[
            "spec.containers[0].resources.limits[hugepages-2Mi]: Invalid value: \"3Mi\": 3Mi is not positive integer multiple of hugepages-2Mi",
            "spec.containers[0].resources.requests[hugepages-2Mi]: Invalid value: \"3Mi\": 3Mi is not positive integer multiple of hugepages-2Mi",
            "spec.containers[0].resources: Forbidden: HugePages require cpu or memory",
        ],
    ),
    (
        "{limits: {\"a/b/c\": \"1\"}}",
        &[
            "spec.containers[0].resources.limits[a/b/c]: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
            "spec.containers[0].resources.requests[a/b/c]: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
            "spec.containers[0].resources.limits[a/b/c]: Invalid value: \"a/b/c\": doesn't follow extended resource name standard",
            "spec.containers[0].resources.requests[a/b/c]: Invalid value: \"a/b/c\": doesn't follow extended resource name standard",
        ],
    ),
];

/// Resources stored with values finer than a thousandth.
const ROUNDED: &str = "{limits: {cpu: 100u, memory: \"1.5\"}, requests: {cpu: 1n}}";

fn pod(name: &str, resources: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    resources: {resources}\n"
    )
}

/// The error lines of a refused create (kubectl's `* ` bullets or its one line), sorted.
fn error_lines(out: &Output) -> Vec<String> {
    assert!(!out.status.success(), "accepted: {}", String::from_utf8_lossy(&out.stdout));
    let text = String::from_utf8_lossy(&out.stderr);
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| l.split_once("is invalid: ").map_or(l, |(_, rest)| rest))
        .map(|l| l.trim_start_matches("* ").trim().to_string())
        .filter(|l| l.starts_with("spec."))
        .collect();
    lines.sort();
    lines
}

/// Every case's answer, then the stored resources of [`ROUNDED`].
fn answers(kubectl: &dyn Fn(&[&str], &str) -> Output) -> (Vec<Vec<String>>, Value) {
    // Upstream runs here without its controller manager, which makes this account.
    let _ = kubectl(&["create", "serviceaccount", "default"], "");
    let refused = REFUSED
        .iter()
        .enumerate()
        .map(|(i, (res, _))| {
            error_lines(&kubectl(
                &["create", "--validate=false", "-f", "-"],
                &pod(&format!("r{i}"), res),
            ))
        })
        .collect();
    let made = kubectl(&["create", "--validate=false", "-f", "-"], &pod("rounded", ROUNDED));
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let got =
        kubectl(&["get", "pod", "rounded", "-o", "jsonpath={.spec.containers[0].resources}"], "");
    (refused, serde_json::from_slice(&got.stdout).unwrap_or(Value::Null))
}

/// Regression: kapi stored a memory request of 1Gi over a 2Mi limit, negative requests,
/// unknown resource names and fractional extended resources (upstream refuses each with
/// a 422 naming the field), and kept `100u` where upstream stores `1m`.
#[test]
fn container_resources_are_validated_and_rounded_as_upstream() {
    let s = Server::start();
    let (refused, stored) = answers(&|a, input| s.kubectl_stdin(a, input));
    for ((res, want), got) in REFUSED.iter().zip(&refused) {
        let mut want: Vec<String> = want.iter().map(|l| l.to_string()).collect();
        want.sort();
        assert_eq!(got, &want, "{res}");
    }
    let rounded = serde_json::json!({
        "limits": {"cpu": "1m", "memory": "1500m"},
        "requests": {"cpu": "1m", "memory": "1500m"},
    });
    assert_eq!(stored, rounded);
    if kapi_e2e::upstream::upstream_dir().is_none() {
        eprintln!("not compared: ../shared/upstream is absent");
        return;
    }
    let up = kapi_e2e::upstream::Apiserver::start("AlwaysAllow");
    let (upstream_refused, upstream_stored) = answers(&|a, input| up.kubectl_stdin(a, input));
    assert_eq!(stored, upstream_stored, "kapi (left) and upstream (right) store the same");
    for ((res, _), (kapi, upstream)) in REFUSED.iter().zip(refused.iter().zip(&upstream_refused)) {
        // v1.21 did not yet name the limit's value in this message.
        let kapi: Vec<String> = kapi
            .iter()
            .map(|l| l.replace(" limit of 2Mi", " limit").replace(" limit of 2", " limit"))
            .collect();
        assert_eq!(&kapi, upstream, "{res}: kapi (left), upstream (right)");
    }
}
