//! `/openapi/v2` in protobuf (gnostic's `openapi.v2.Document`, what kubectl's discovery
//! client asks for) against kubectl v1.32: an unknown kind gets upstream's "no matches for
//! kind", client-side apply, validation and `kubectl explain` (v2 and v3 output) work.

use kapi_e2e::Server;

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: c
        image: nginx:1
        ports:
        - containerPort: 80
";

fn text(o: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn unknown_kind_is_no_matches_for_kind() {
    let s = Server::start();
    let manifest = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], manifest);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains(r#"no matches for kind "Widget" in version "example.com/v1""#),
        "{stderr}"
    );
    assert!(stderr.contains("resource mapping not found for name"), "{stderr}");
    assert!(!stderr.contains("unable to respond with a content type"), "{stderr}");
}

#[test]
fn client_side_apply_validate_and_explain() {
    let s = Server::start();
    let out =
        s.kubectl_stdin(&["create", "--validate=true", "--dry-run=server", "-f", "-"], DEPLOYMENT);
    assert!(out.status.success(), "{:?}", text(&out));

    let out = s.kubectl_stdin(&["apply", "-f", "-"], DEPLOYMENT);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(text(&out).0.contains("deployment.apps/web created"), "{:?}", text(&out));
    // A second client-side apply computes a strategic merge patch from the OpenAPI schema.
    let changed = DEPLOYMENT.replace("replicas: 1", "replicas: 2").replace("nginx:1", "nginx:2");
    let out = s.kubectl_stdin(&["apply", "-f", "-"], &changed);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(text(&out).0.contains("deployment.apps/web configured"), "{:?}", text(&out));
    let got = s.kubectl_ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort}",
    ]);
    assert_eq!(got, "2 nginx:2 80");

    // A typo'd field: kubectl's validation names it.
    let typo = DEPLOYMENT.replace("replicas: 1", "replicaz: 1");
    let out = s.kubectl_stdin(&["create", "--validate=true", "-f", "-"], &typo);
    assert!(!out.status.success(), "{:?}", text(&out));
    assert!(text(&out).1.contains("replicaz"), "{:?}", text(&out));

    for output in ["plaintext", "plaintext-openapiv2"] {
        let out = s.kubectl(&["explain", "deployment.spec", "--output", output]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{output}: {stdout}{stderr}");
        assert!(stdout.contains("KIND:") && stdout.contains("Deployment"), "{output}: {stdout}");
        assert!(stdout.contains("replicas") && stdout.contains("template"), "{output}: {stdout}");
        let out = s.kubectl(&[
            "explain",
            "deployment.spec.template.spec.containers.ports",
            "--output",
            output,
        ]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{output}: {stdout}{stderr}");
        assert!(stdout.contains("containerPort"), "{output}: {stdout}");
    }
}

#[test]
fn json_is_still_served_to_json_clients() {
    let s = Server::start();
    let doc: serde_json::Value =
        serde_json::from_str(&s.kubectl_ok(&["get", "--raw", "/openapi/v2"])).expect("JSON");
    assert_eq!(doc["swagger"], "2.0");
    assert!(doc["definitions"]["io.k8s.api.apps.v1.Deployment"].is_object());
}
