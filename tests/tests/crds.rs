//! CustomResourceDefinitions with kubectl v1.32 against the real kapi binary (issue #16):
//! a CRD with an enum, a default, a CEL rule, printer columns, selectable fields and the
//! status and scale subresources; valid and invalid objects with upstream's messages;
//! Tables, `kubectl explain`, categories and short names; several versions; deletion of
//! the CRD with its objects; and the types served again after a restart. Runs on both
//! backends (the suite runs again with `KAPI_E2E_BACKEND=etcd`).

use kapi_e2e::{Server, eventually};
use serde_json::{Value, json};
use std::time::Duration;

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

const WIDGETS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd], categories: [all]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    selectableFields: [{jsonPath: .spec.color}]
    additionalPrinterColumns:
    - {name: Color, type: string, jsonPath: .spec.color}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - rule: "!has(self.minReplicas) || self.minReplicas <= self.replicas"
              message: minReplicas must not exceed replicas
            properties:
              color: {type: string, enum: [red, blue], default: red, description: The widget's colour.}
              replicas: {type: integer, minimum: 0, maximum: 10}
              minReplicas: {type: integer}
          status:
            type: object
            properties:
              replicas: {type: integer}
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

fn widget(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: {name}, namespace: default}}\nspec: {spec}\n"
    )
}

fn install(s: &Server) {
    let out = s.kubectl_stdin(&["apply", "-f", "-"], WIDGETS);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    s.kubectl_ok(&[
        "wait",
        "--for",
        "condition=established",
        "crd/widgets.example.com",
        "--timeout=20s",
    ]);
}

fn stderr_of(s: &Server, args: &[&str], stdin: &str) -> String {
    let out = s.kubectl_stdin(args, stdin);
    assert!(!out.status.success(), "{args:?} must fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_crd_is_established_and_its_objects_are_validated_defaulted_and_printed() {
    let s = Server::start();
    install(&s);
    let crd = json(&s.kubectl_ok(&["get", "crd", "widgets.example.com", "-o", "json"]));
    let conds = crd["status"]["conditions"].as_array().cloned().unwrap_or_default();
    for want in ["NamesAccepted", "Established"] {
        assert!(conds.iter().any(|c| c["type"] == want && c["status"] == "True"), "{crd}");
    }
    assert_eq!(crd["status"]["acceptedNames"]["listKind"], "WidgetList");
    assert_eq!(crd["status"]["storedVersions"], serde_json::json!(["v1"]));
    // As upstream: no finalizer until the CRD is deleted (the delete adds the cleanup one).
    assert!(crd["metadata"].get("finalizers").is_none(), "{crd}");
    let resources = s.kubectl_ok(&["api-resources", "--api-group=example.com"]);
    assert!(resources.contains("widgets") && resources.contains("wd"), "{resources}");

    s.kubectl_stdin(&["apply", "-f", "-"], &widget("w1", "{replicas: 2}"));
    let w1 = json(&s.kubectl_ok(&["get", "widget", "w1", "-o", "json"]));
    assert_eq!(w1["spec"]["color"], "red", "defaulted from the schema: {w1}");
    assert_eq!(w1["metadata"]["generation"], 1);

    // Upstream's messages for the schema, the enum and the CEL rule.
    let err = stderr_of(&s, &["create", "-f", "-"], &widget("bad", "{color: green, replicas: 20}"));
    assert!(
        err.contains(r#"spec.color: Unsupported value: "green": supported values: "red", "blue""#),
        "{err}"
    );
    assert!(
        err.contains("spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10"),
        "{err}"
    );
    let err =
        stderr_of(&s, &["create", "-f", "-"], &widget("bad", "{replicas: 2, minReplicas: 3}"));
    assert!(
        err.contains(r#"spec: Invalid value: "object": minReplicas must not exceed replicas"#),
        "{err}"
    );
    let err = stderr_of(&s, &["create", "-f", "-"], &widget("bad", "{replicas: 2, bogus: 1}"));
    assert!(err.contains(r#"unknown field "spec.bogus""#), "{err}");

    // Tables from additionalPrinterColumns, short names and categories.
    let table = s.kubectl_ok(&["get", "wd"]);
    let header: Vec<&str> = table.lines().next().unwrap_or("").split_whitespace().collect();
    assert_eq!(header, ["NAME", "COLOR", "REPLICAS", "AGE"], "{table}");
    assert!(
        table.lines().nth(1).is_some_and(|l| l.starts_with("w1") && l.contains("red")),
        "{table}"
    );
    let all = s.kubectl_ok(&["get", "all", "-n", "default"]);
    assert!(all.contains("widget.example.com/w1"), "{all}");

    // kubectl explain reads the custom kind from the OpenAPI documents.
    let explained = s.kubectl_ok(&["explain", "widget.spec.color"]);
    assert!(explained.contains("The widget's colour."), "{explained}");

    // Field selectors on the CRD's selectable fields.
    s.kubectl_stdin(&["apply", "-f", "-"], &widget("w2", "{color: blue, replicas: 1}"));
    let blue =
        s.kubectl_ok(&["get", "widgets", "--field-selector", "spec.color=blue", "-o", "name"]);
    assert_eq!(blue.trim(), "widget.example.com/w2");
    let bad = s.kubectl(&["get", "widgets", "--field-selector", "spec.size=1"]);
    assert!(!bad.status.success());
}

#[test]
fn status_and_scale_subresources_and_versions_of_a_custom_resource() {
    let s = Server::start();
    install(&s);
    s.kubectl_stdin(&["apply", "-f", "-"], &widget("w", "{replicas: 1}"));
    s.kubectl_ok(&["scale", "widget", "w", "--replicas=3"]);
    let w = json(&s.kubectl_ok(&["get", "widget", "w", "-o", "json"]));
    assert_eq!(w["spec"]["replicas"], 3);
    assert_eq!(w["metadata"]["generation"], 2);

    // The status subresource writes status only; the main resource ignores status.
    let patch = r#"{"status":{"replicas":3}}"#;
    s.kubectl_ok(&["patch", "widget", "w", "--subresource=status", "--type=merge", "-p", patch]);
    let w = json(&s.kubectl_ok(&["get", "widget", "w", "-o", "json"]));
    assert_eq!(w["status"]["replicas"], 3);
    assert_eq!(w["metadata"]["generation"], 2, "a status write keeps the generation");
    s.kubectl_ok(&["patch", "widget", "w", "--type=merge", "-p", r#"{"status":{"replicas":9}}"#]);
    let w = json(&s.kubectl_ok(&["get", "widget", "w", "-o", "json"]));
    assert_eq!(w["status"]["replicas"], 3);
    let scale = json(&s.kubectl_ok(&[
        "get",
        "--raw",
        "/apis/example.com/v1/namespaces/default/widgets/w/scale",
    ]));
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(scale["status"]["replicas"], 3);

    // The same object through the other served version (conversion None).
    let beta = json(&s.kubectl_ok(&["get", "widgets.v1beta1.example.com", "w", "-o", "json"]));
    assert_eq!(beta["apiVersion"], "example.com/v1beta1");
    assert_eq!(beta["spec"]["replicas"], 3);
}

#[test]
fn deleting_a_crd_removes_its_objects_and_its_type() {
    let mut s = Server::start();
    install(&s);
    s.kubectl_stdin(&["apply", "-f", "-"], &widget("keep", "{replicas: 1}"));

    // Served again after a restart, objects included.
    s.restart();
    assert!(eventually(Duration::from_secs(20), || {
        s.kubectl(&["get", "widget", "keep"]).status.success()
    }));

    s.kubectl_ok(&["delete", "crd", "widgets.example.com", "--timeout=30s"]);
    let gone = s.kubectl(&["get", "crd", "widgets.example.com"]);
    assert!(!gone.status.success(), "the CRD goes once its objects are deleted");
    assert!(eventually(Duration::from_secs(10), || {
        let out = s.kubectl(&["get", "--raw", "/apis/example.com/v1/widgets"]);
        !out.status.success()
    }));
    // Recreated, the type starts empty.
    install(&s);
    let left = s.kubectl_ok(&["get", "widgets", "-A", "-o", "name"]);
    assert_eq!(left.trim(), "", "objects of the deleted CRD must not come back");
}

#[test]
fn invalid_crds_are_refused_with_upstream_messages() {
    let s = Server::start();
    let two_storage = WIDGETS.replace("storage: false", "storage: true");
    let err = stderr_of(&s, &["create", "-f", "-"], &two_storage);
    assert!(err.contains("must have exactly one version marked as storage version"), "{err}");
    let bad_rule = WIDGETS.replace("self.minReplicas <= self.replicas", "self.nope == 1");
    let err = stderr_of(&s, &["create", "-f", "-"], &bad_rule);
    assert!(err.contains("compilation failed") && err.contains("undefined field 'nope'"), "{err}");
    let bad_name = WIDGETS.replace("name: widgets.example.com", "name: gizmos.example.com");
    let err = stderr_of(&s, &["create", "-f", "-"], &bad_name);
    assert!(err.contains("must be spec.names.plural+\".\"+spec.group"), "{err}");
}

const GADGETS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              ports:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name, protocol]
                items:
                  type: object
                  required: [name]
                  properties:
                    name: {type: string}
                    protocol: {type: string, default: TCP}
                    port: {type: integer}
              owners: {type: array, x-kubernetes-list-type: set, items: {type: string}}
"#;

fn gadget(spec: &str) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {{name: g, namespace: default}}\nspec: {spec}\n"
    )
}

/// Server-side apply merges a custom resource's lists by what its schema says (issue
/// #16: they used to be atomic, so a second manager's apply replaced the first one's
/// list-map items and set members).
#[test]
fn server_side_apply_merges_custom_list_maps_by_their_keys() {
    let s = Server::start();
    let out = s.kubectl_stdin(&["apply", "-f", "-"], GADGETS);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    s.kubectl_ok(&["wait", "--for", "condition=established", "crd/gadgets.example.com"]);
    let apply = |manager: &str, spec: &str, force: bool| {
        let mut args = vec!["apply", "--server-side", "--field-manager", manager, "-f", "-"];
        if force {
            args.push("--force-conflicts");
        }
        s.kubectl_stdin(&args, &gadget(spec))
    };
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    ok(apply("alice", "{ports: [{name: http, port: 80}], owners: [a]}", false));
    ok(apply("bob", "{ports: [{name: dns, protocol: UDP, port: 53}], owners: [b]}", false));
    let g = json(&s.kubectl_ok(&["get", "gadget", "g", "-o", "json", "--show-managed-fields"]));
    assert_eq!(
        g["spec"]["ports"],
        serde_json::json!([
            {"name": "http", "port": 80, "protocol": "TCP"},
            {"name": "dns", "port": 53, "protocol": "UDP"}
        ]),
        "{g}"
    );
    assert_eq!(g["spec"]["owners"], serde_json::json!(["a", "b"]), "{g}");
    let bob = g["metadata"]["managedFields"]
        .as_array()
        .and_then(|m| m.iter().find(|e| e["manager"] == "bob"))
        .cloned()
        .unwrap_or_default();
    let ports = &bob["fieldsV1"]["f:spec"]["f:ports"];
    assert!(ports.get(r#"k:{"name":"dns","protocol":"UDP"}"#).is_some(), "{bob}");

    // The same item's field, applied by another manager with another value: a conflict
    // naming the field by its keys, taken over when forced.
    let err = apply("bob", "{ports: [{name: http, port: 8080}]}", false);
    assert!(!err.status.success());
    let msg = String::from_utf8_lossy(&err.stderr);
    assert!(msg.contains(r#"conflict with "alice""#), "{msg}");
    assert!(msg.contains(r#".spec.ports[name="http",protocol="TCP"].port"#), "{msg}");
    ok(apply(
        "bob",
        "{ports: [{name: dns, protocol: UDP, port: 53}, {name: http, port: 8080}], owners: [b]}",
        true,
    ));
    // alice stops applying her item: bob owns its port now, so the item stays.
    ok(apply("alice", "{owners: [a]}", false));
    let g = json(&s.kubectl_ok(&["get", "gadget", "g", "-o", "json"]));
    let ports = g["spec"]["ports"].as_array().cloned().unwrap_or_default();
    assert_eq!(ports.len(), 2, "{g}");
    assert!(ports.iter().any(|p| p["name"] == "http" && p["port"] == 8080), "{g}");
}

/// `GET path` with `Accept: accept` as the admin: the status code, the Content-Type and
/// the body.
fn get_accepting(s: &Server, path: &str, accept: &str) -> (u16, String, Vec<u8>) {
    let pki = s.dir.path().join("data/pki");
    let token = std::fs::read_to_string(pki.join("admin.token")).unwrap();
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(pki.join("ca.crt"))
        .args(["-H", &format!("Authorization: Bearer {}", token.trim())])
        .args(["-H", &format!("Accept: {accept}")])
        .args(["-D", "-"])
        .arg(format!("{}{path}", s.url()))
        .output()
        .expect("curl");
    let text = out.stdout;
    let split = text.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
    let head = String::from_utf8_lossy(&text[..split]).into_owned();
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let ctype = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-type:").map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    (code, ctype, text[split + 4..].to_vec())
}

/// Regression: a custom resource asked for in protobuf alone was refused with a
/// message of kapi's own ("...: application/json, application/yaml; got
/// application/vnd.kubernetes.protobuf"). Upstream (v1.35's CRD handler, and its v1.21
/// binary) refuses it 406 with the NotAcceptable Status of every other type: the
/// message lists the serializer's media types, protobuf included (it serves protobuf for
/// Status and PartialObjectMetadata), and the Status is written in protobuf, the type
/// the client asked for; with JSON acceptable too, the object comes as JSON.
#[test]
fn a_custom_resource_in_protobuf_alone_is_406_as_upstream() {
    let s = Server::start();
    install(&s);
    let out = s.kubectl_stdin(&["apply", "-f", "-"], &widget("w1", "{replicas: 1}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pb = "application/vnd.kubernetes.protobuf";
    let path = "/apis/example.com/v1/namespaces/default/widgets";
    for p in [path.to_string(), format!("{path}/w1")] {
        let (code, ctype, body) = get_accepting(&s, &p, pb);
        assert_eq!((code, ctype.as_str()), (406, pb), "{p}");
        let status = kapi_codec::protobuf::decode_object(&body).expect("a protobuf Status");
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["reason"], "NotAcceptable");
        assert_eq!(status["code"], json!(406));
        assert_eq!(
            status["message"],
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"
        );
    }
    let (code, ctype, body) =
        get_accepting(&s, &format!("{path}/w1"), &format!("{pb}, application/json"));
    assert_eq!((code, ctype.as_str()), (200, "application/json"));
    let obj: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(obj["metadata"]["name"], "w1");
}
