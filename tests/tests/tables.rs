//! `kubectl get` against the real kapi binary prints upstream's per-type columns: the
//! headers kubectl builds from the server's Table column definitions (priority-1 columns
//! only with `-o wide`) and the cells the server computes.

use kapi_e2e::Server;
use std::path::Path;

/// The cells of a kubectl table line (columns are separated by at least two spaces;
/// column names and cells such as "NOMINATED NODE" hold single spaces).
fn cells(line: &str) -> Vec<String> {
    line.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(str::to_string).collect()
}

/// The header and the row starting with `name` of `kubectl get ...` output.
fn table(out: &str, name: &str) -> (Vec<String>, Vec<String>) {
    let mut lines = out.lines();
    let header = cells(lines.next().unwrap_or_default());
    let row = lines
        .map(cells)
        .find(|r| r.first().is_some_and(|n| n == name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{out}"));
    (header, row)
}

fn header_of(out: &str) -> Vec<String> {
    cells(out.lines().next().unwrap_or_default())
}

const NODE: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: n1
  labels:
    node-role.kubernetes.io/control-plane: ""
"#;

const NODE_STATUS: &str = r#"{"status": {
  "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                  "lastHeartbeatTime": "2024-01-01T00:00:00Z",
                  "lastTransitionTime": "2024-01-01T00:00:00Z"}],
  "addresses": [{"type": "InternalIP", "address": "192.168.10.5"}],
  "nodeInfo": {"kubeletVersion": "v1.35.0", "osImage": "Debian GNU/Linux 12",
               "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://2.0.0",
               "machineID": "", "systemUUID": "", "bootID": "", "kubeProxyVersion": "",
               "operatingSystem": "linux", "architecture": "amd64"}}}"#;

#[test]
fn pods_deployments_services_and_nodes() {
    let s = Server::start();
    s.kubectl_ok(&["run", "web", "--image=nginx", "--labels=app=web"]);
    let (header, row) = table(&s.kubectl_ok(&["get", "pods"]), "web");
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_eq!(row[..4], ["web", "0/1", "Pending", "0"]);

    let (header, row) = table(&s.kubectl_ok(&["get", "pods", "-o", "wide"]), "web");
    assert_eq!(
        header,
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED NODE",
            "READINESS GATES"
        ]
    );
    assert_eq!(row[5..], ["<none>", "<none>", "<none>", "<none>"]);

    s.kubectl_ok(&["create", "deployment", "api", "--image=nginx:1.27"]);
    let (header, row) = table(&s.kubectl_ok(&["get", "deploy"]), "api");
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert_eq!(row[1], "0/1");
    let (header, row) = table(&s.kubectl_ok(&["get", "deploy", "-o", "wide"]), "api");
    assert_eq!(header[5..], ["CONTAINERS", "IMAGES", "SELECTOR"]);
    assert_eq!(row[5..], ["nginx", "nginx:1.27", "app=api"]);

    s.kubectl_ok(&["create", "service", "clusterip", "api", "--tcp=80:8080"]);
    s.kubectl_ok(&["create", "service", "nodeport", "edge", "--tcp=443:8443"]);
    let out = s.kubectl_ok(&["get", "svc"]);
    let (header, row) = table(&out, "api");
    assert_eq!(header, ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]);
    assert_eq!(row[1], "ClusterIP");
    assert!(row[2].starts_with("10."), "{row:?}");
    assert_eq!(row[3..5], ["<none>", "80/TCP"]);
    let (_, edge) = table(&out, "edge");
    assert_eq!(edge[1], "NodePort");
    assert!(edge[4].starts_with("443:3") && edge[4].ends_with("/TCP"), "{edge:?}");
    let (_, kubernetes) = table(&out, "kubernetes");
    assert_eq!(kubernetes[1..5], ["ClusterIP", "10.96.0.1", "<none>", "443/TCP"]);
    let (header, row) = table(&s.kubectl_ok(&["get", "svc", "api", "-o", "wide"]), "api");
    assert_eq!(header[6], "SELECTOR");
    assert_eq!(row[6], "app=api");

    let out = s.kubectl_stdin(&["create", "-f", "-"], NODE);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (header, row) = table(&s.kubectl_ok(&["get", "nodes"]), "n1");
    assert_eq!(header, ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    assert_eq!(row[1..3], ["Unknown", "control-plane"]);
    s.kubectl_ok(&[
        "patch",
        "node",
        "n1",
        "--subresource=status",
        "--type=merge",
        "-p",
        NODE_STATUS,
    ]);
    s.kubectl_ok(&["cordon", "n1"]);
    let (header, row) = table(&s.kubectl_ok(&["get", "nodes", "-o", "wide"]), "n1");
    assert_eq!(
        header,
        [
            "NAME",
            "STATUS",
            "ROLES",
            "AGE",
            "VERSION",
            "INTERNAL-IP",
            "EXTERNAL-IP",
            "OS-IMAGE",
            "KERNEL-VERSION",
            "CONTAINER-RUNTIME"
        ]
    );
    assert_eq!(row[1..3], ["Ready,SchedulingDisabled", "control-plane"]);
    assert_eq!(
        row[4..],
        ["v1.35.0", "192.168.10.5", "<none>", "Debian GNU/Linux 12", "6.1.0", "containerd://2.0.0"]
    );
}

#[test]
fn other_types_and_the_generic_convertor() {
    let s = Server::start();
    s.kubectl_ok(&["create", "configmap", "cfg", "--from-literal=a=1", "--from-literal=b=2"]);
    let (header, row) = table(&s.kubectl_ok(&["get", "cm", "cfg"]), "cfg");
    assert_eq!(header, ["NAME", "DATA", "AGE"]);
    assert_eq!(row[1], "2");
    s.kubectl_ok(&["create", "secret", "generic", "pw", "--from-literal=p=x"]);
    let (header, row) = table(&s.kubectl_ok(&["get", "secret", "pw"]), "pw");
    assert_eq!(header, ["NAME", "TYPE", "DATA", "AGE"]);
    assert_eq!(row[1..3], ["Opaque", "1"]);
    let (header, row) = table(&s.kubectl_ok(&["get", "ns", "default"]), "default");
    assert_eq!(header, ["NAME", "STATUS", "AGE"]);
    assert_eq!(row[1], "Active");

    // Upstream has no printer for roles: the generic convertor's Name and Created At.
    s.kubectl_ok(&["create", "clusterrole", "reader", "--verb=get", "--resource=pods"]);
    let (header, row) = table(&s.kubectl_ok(&["get", "clusterrole", "reader"]), "reader");
    assert_eq!(header, ["NAME", "CREATED AT"]);
    assert!(row[1].ends_with('Z') && row[1].contains('T'), "{row:?}");
    s.kubectl_ok(&["create", "clusterrolebinding", "r", "--clusterrole=reader", "--user=alice"]);
    let (header, row) =
        table(&s.kubectl_ok(&["get", "clusterrolebinding", "r", "-o", "wide"]), "r");
    assert_eq!(header, ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]);
    assert_eq!(row[1], "ClusterRole/reader");
    assert_eq!(row[3], "alice");

    s.kubectl_ok(&["create", "job", "once", "--image=busybox"]);
    let (header, row) = table(&s.kubectl_ok(&["get", "jobs"]), "once");
    assert_eq!(header, ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]);
    assert_eq!(row[1..3], ["Running", "0/1"]);
    s.kubectl_ok(&["create", "cronjob", "tick", "--image=busybox", "--schedule=*/5 * * * *"]);
    let header = header_of(&s.kubectl_ok(&["get", "cronjobs"]));
    assert_eq!(
        header,
        ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"]
    );
}

#[test]
fn every_builtin_type_prints_a_table() {
    let s = Server::start();
    s.kubectl_ok(&["create", "namespace", "every"]);
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("manifests/every-type.yaml")
        .display()
        .to_string();
    s.kubectl_ok(&["create", "-f", &manifest]);
    let out = s.kubectl_ok(&["get", "-f", &manifest]);
    let headers: Vec<Vec<String>> = out
        .lines()
        .map(cells)
        .filter(|c| c.first().is_some_and(|n| n == "NAME" || n == "LAST SEEN"))
        .collect();
    let expect: &[&[&str]] = &[
        &["NAME", "CREATED AT"],
        &["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        &["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"],
        &["NAME", "SERVICE", "AVAILABLE", "AGE"],
        &["NAME", "REQUEST", "LIMIT", "AGE"],
        &[
            "NAME",
            "PROVISIONER",
            "RECLAIMPOLICY",
            "VOLUMEBINDINGMODE",
            "ALLOWVOLUMEEXPANSION",
            "AGE",
        ],
        &["NAME", "PRIORITYLEVEL", "MATCHINGPRECEDENCE", "DISTINGUISHERMETHOD", "AGE", "MISSINGPL"],
        &["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"],
        &["NAME", "CONTAINERS", "IMAGES", "POD LABELS"],
        &["NAME", "PARENTREF"],
    ];
    for want in expect {
        assert!(headers.iter().any(|h| h == want), "no header {want:?} in:\n{out}");
    }
}
