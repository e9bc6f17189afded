//! Changing objects the ways users do: `kubectl apply` cycles (client-side, strategic
//! merge patches), `patch --type json|merge|strategic`, `edit`, `set image`,
//! `rollout restart`, `scale`, `label --overwrite` and `diff`.

use kapi_e2e::Server;
use serde_json::Value;

const APP_V1: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, labels: {tier: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers:
      - name: main
        image: nginx:1
        env: [{name: A, value: "1"}]
      - name: side
        image: busybox:1
"#;

fn get(s: &Server, what: &str) -> Value {
    serde_json::from_str(&s.kubectl_ok(&["get", what, "-o", "json"])).expect("json")
}

fn apply(s: &Server, manifest: &str) -> String {
    let out = s.kubectl_stdin(&["apply", "-f", "-"], manifest);
    assert!(out.status.success(), "apply: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn client_side_apply_create_update_and_field_removal() {
    let s = Server::start();
    assert!(apply(&s, APP_V1).contains("created"));
    assert!(apply(&s, APP_V1).contains("unchanged"));
    // Someone else adds a container env var; apply must keep it (strategic merge by name).
    s.kubectl_ok(&["set", "env", "deployment/app", "-c", "main", "EXTRA=x"]);
    let v2 = APP_V1.replace("nginx:1", "nginx:2").replace("replicas: 2", "replicas: 3");
    let v2 = v2.replace("metadata: {name: app, labels: {tier: web}}", "metadata: {name: app}");
    assert!(apply(&s, &v2).contains("configured"));
    let d = get(&s, "deployment/app");
    assert_eq!(d["spec"]["replicas"], 3);
    let main = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(main["image"], "nginx:2");
    let env: Vec<&str> =
        main["env"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(env, ["A", "EXTRA"], "apply keeps fields it does not own");
    assert!(
        d["metadata"]["labels"].get("tier").is_none(),
        "a label removed from the manifest is pruned"
    );
}

#[test]
fn patch_types_edit_set_image_restart_and_scale() {
    let s = Server::start();
    apply(&s, APP_V1);
    s.kubectl_ok(&[
        "patch",
        "deployment",
        "app",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"minReadySeconds":5}}"#,
    ]);
    s.kubectl_ok(&["patch", "deployment", "app", "--type", "json", "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":4},{"op":"add","path":"/metadata/labels/j","value":"p"}]"#]);
    s.kubectl_ok(&["patch", "deployment", "app", "--type", "strategic", "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"main","env":[{"name":"B","value":"2"}]}]}}}}"#]);
    let d = get(&s, "deployment/app");
    assert_eq!(d["spec"]["minReadySeconds"], 5);
    assert_eq!(d["spec"]["replicas"], 4);
    assert_eq!(d["metadata"]["labels"]["j"], "p");
    let env = &d["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(env.as_array().unwrap().len(), 2, "strategic merge appends by name: {env}");
    let bad = s.kubectl(&[
        "patch",
        "deployment",
        "app",
        "--type",
        "json",
        "-p",
        r#"[{"op":"test","path":"/spec/replicas","value":9}]"#,
    ]);
    assert!(!bad.status.success(), "a failing JSON patch test op is rejected");

    s.kubectl_ok(&["set", "image", "deployment/app", "side=busybox:2"]);
    s.kubectl_ok(&["rollout", "restart", "deployment/app"]);
    let d = get(&s, "deployment/app");
    assert_eq!(d["spec"]["template"]["spec"]["containers"][1]["image"], "busybox:2");
    assert!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string()
    );

    s.kubectl_ok(&["scale", "deployment/app", "--replicas=7"]);
    assert_eq!(get(&s, "deployment/app")["spec"]["replicas"], 7);
    let scale: Value = serde_json::from_str(&s.kubectl_ok(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/default/deployments/app/scale",
    ]))
    .unwrap();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 7);
    assert_eq!(scale["status"]["selector"], "app=app");

    let editor = s.dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/minReadySeconds: 5/minReadySeconds: 9/' \"$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let edited = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(s.kubeconfig())
        .args(["edit", "deployment/app"])
        .env("KUBE_EDITOR", &editor)
        .output()
        .unwrap();
    assert!(edited.status.success(), "{}", String::from_utf8_lossy(&edited.stderr));
    assert_eq!(get(&s, "deployment/app")["spec"]["minReadySeconds"], 9);

    s.kubectl_ok(&["label", "deployment/app", "tier=db", "--overwrite"]);
    assert_eq!(get(&s, "deployment/app")["metadata"]["labels"]["tier"], "db");
}

#[test]
fn diff_shows_the_server_side_dry_run() {
    let s = Server::start();
    apply(&s, APP_V1);
    let same = s.kubectl_stdin(&["diff", "-f", "-"], APP_V1);
    assert_eq!(same.status.code(), Some(0), "{}", String::from_utf8_lossy(&same.stdout));
    let changed =
        s.kubectl_stdin(&["diff", "-f", "-"], &APP_V1.replace("replicas: 2", "replicas: 5"));
    assert_eq!(changed.status.code(), Some(1));
    let text = String::from_utf8_lossy(&changed.stdout);
    assert!(text.contains("-  replicas: 2") && text.contains("+  replicas: 5"), "{text}");
    assert_eq!(get(&s, "deployment/app")["spec"]["replicas"], 2, "diff changes nothing");
}

#[test]
fn server_side_apply_owns_fields_conflicts_and_forces() {
    let s = Server::start();
    let out = s.kubectl_stdin(&["apply", "--server-side", "-f", "-"], APP_V1);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = s.kubectl_ok(&["get", "deployment/app", "-o", "json", "--show-managed-fields"]);
    let d: Value = serde_json::from_str(&shown).unwrap();
    let managers: Vec<(&str, &str)> = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["manager"].as_str().unwrap(), e["operation"].as_str().unwrap()))
        .collect();
    assert_eq!(managers, [("kubectl", "Apply")]);
    let owned = &d["metadata"]["managedFields"][0]["fieldsV1"];
    assert!(
        owned["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"main\"}"]["f:image"]
            .is_object(),
        "{owned}"
    );
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate", "defaults still apply");

    s.kubectl_ok(&["scale", "deployment/app", "--replicas=7"]);
    let conflict = s.kubectl_stdin(&["apply", "--server-side", "-f", "-"], APP_V1);
    let err = String::from_utf8_lossy(&conflict.stderr);
    assert!(
        !conflict.status.success()
            && err.contains(r#"Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas"#),
        "{err}"
    );
    assert_eq!(get(&s, "deployment/app")["spec"]["replicas"], 7, "a conflict changes nothing");

    let forced =
        s.kubectl_stdin(&["apply", "--server-side", "--force-conflicts", "-f", "-"], APP_V1);
    assert!(forced.status.success(), "{}", String::from_utf8_lossy(&forced.stderr));
    assert_eq!(get(&s, "deployment/app")["spec"]["replicas"], 2);

    // Dropping a container from the applied manifest removes it.
    let one = APP_V1.replace("      - name: side\n        image: busybox:1\n", "");
    let out = s.kubectl_stdin(&["apply", "--server-side", "-f", "-"], &one);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let containers = get(&s, "deployment/app")["spec"]["template"]["spec"]["containers"].clone();
    assert_eq!(containers.as_array().unwrap().len(), 1, "{containers}");
}

#[test]
fn apply_prune_deletes_what_left_the_manifest() {
    let s = Server::start();
    let cm = |name: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, labels: {{set: p}}}}\ndata: {{k: v}}\n"
        )
    };
    let both = format!("{}---\n{}", cm("keep"), cm("drop"));
    let out = s.kubectl_stdin(&["apply", "-f", "-"], &both);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = s.kubectl_stdin(
        &["apply", "--prune", "-l", "set=p", "--prune-allowlist=core/v1/ConfigMap", "-f", "-"],
        &cm("keep"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("configmap/drop pruned"));
    let names = s.kubectl_ok(&["get", "configmaps", "-l", "set=p", "-o", "name"]);
    assert_eq!(names.trim(), "configmap/keep");
}

fn managers(d: &Value) -> Vec<(String, String)> {
    d["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
                    (s("manager"), s("operation"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn get_managed(s: &Server, what: &str) -> Value {
    let shown = s.kubectl_ok(&["get", what, "-o", "json", "--show-managed-fields"]);
    serde_json::from_str(&shown).expect("json")
}

fn server_apply(s: &Server, args: &[&str], manifest: &str) -> std::process::Output {
    let mut all = vec!["apply", "--server-side"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-f", "-"]);
    s.kubectl_stdin(&all, manifest)
}

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Client-side apply, then server-side apply, then client-side again on one object, as
/// upstream: kubectl moves its client-side fields to its server-side manager (a JSON
/// patch of managedFields), the server-side apply prunes what left the manifest and keeps
/// the last-applied annotation current, so the next client-side apply prunes too.
#[test]
fn client_side_then_server_side_then_client_side_apply() {
    let s = Server::start();
    let v1 = APP_V1.replace("labels: {tier: web}", "labels: {tier: web, team: a}");
    assert!(apply(&s, &v1).contains("created"));
    let d = get_managed(&s, "deployment/app");
    assert_eq!(managers(&d), [("kubectl-client-side-apply".into(), "Update".into())]);

    let v2 = APP_V1.replace("nginx:1", "nginx:2");
    let out = server_apply(&s, &[], &v2);
    assert!(
        out.status.success(),
        "no spurious conflicts: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = get_managed(&s, "deployment/app");
    let mut owners = managers(&d);
    owners.sort();
    let want = [("kubectl", "Apply"), ("kubectl-last-applied", "Apply")];
    let want: Vec<(String, String)> =
        want.iter().map(|(m, o)| (m.to_string(), o.to_string())).collect();
    assert_eq!(
        owners, want,
        "kubectl moved its client-side fields and the annotation to Apply managers"
    );
    assert!(d["metadata"]["labels"].get("team").is_none(), "the dropped label is pruned: {d}");
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:2");
    let last: Value =
        serde_json::from_str(d["metadata"]["annotations"][LAST_APPLIED].as_str().unwrap()).unwrap();
    assert_eq!(last["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:2");
    assert!(last["metadata"]["labels"].get("team").is_none(), "{last}");

    let v3 = v2
        .replace("      - name: side\n        image: busybox:1\n", "")
        .replace("replicas: 2", "replicas: 3");
    assert!(apply(&s, &v3).contains("configured"));
    let d = get(&s, "deployment/app");
    let names: Vec<&str> = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["main"], "client-side apply prunes from the server-side annotation");
    assert_eq!(d["spec"]["replicas"], 3);

    let out = server_apply(&s, &[], &v3);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let before = get(&s, "deployment/app");
    let text = before["metadata"]["annotations"][LAST_APPLIED].as_str().unwrap();
    assert!(
        text.starts_with(r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"labels""#),
        "{text}"
    );
    // Client-side apply only rewrites the annotation in its own form (with
    // `"annotations":{}`, as upstream); the object itself is unchanged.
    assert!(apply(&s, &v3).contains("configured"));
    assert!(apply(&s, &v3).contains("unchanged"));
    let after = get(&s, "deployment/app");
    assert_eq!(after["metadata"]["generation"], before["metadata"]["generation"]);
    assert_eq!(after["spec"], before["spec"]);

    // `kubectl diff --server-side` is a dry-run apply: after a server-side apply of the
    // same manifest (the annotation in its server-side form) nothing to show, then a change.
    assert!(server_apply(&s, &[], &v3).status.success());
    let same = s.kubectl_stdin(&["diff", "--server-side", "--force-conflicts", "-f", "-"], &v3);
    assert_eq!(same.status.code(), Some(0), "{}", String::from_utf8_lossy(&same.stdout));
    let more = v3.replace("replicas: 3", "replicas: 6");
    let changed =
        s.kubectl_stdin(&["diff", "--server-side", "--force-conflicts", "-f", "-"], &more);
    let text = String::from_utf8_lossy(&changed.stdout);
    assert_eq!(
        changed.status.code(),
        Some(1),
        "{text}{}",
        String::from_utf8_lossy(&changed.stderr)
    );
    assert!(text.contains("-  replicas: 3") && text.contains("+  replicas: 6"), "{text}");
    assert_eq!(get(&s, "deployment/app")["spec"]["replicas"], 3, "diff changes nothing");
}

const DNS_A: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: dns}
spec:
  selector: {matchLabels: {app: dns}}
  template:
    metadata: {labels: {app: dns}}
    spec:
      containers:
      - name: main
        image: coredns:1
        ports: [{containerPort: 53, protocol: UDP, name: dns}]
"#;

const DNS_B: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: dns}
spec:
  template:
    spec:
      containers:
      - name: main
        ports: [{containerPort: 53, name: dns-tcp}]
"#;

/// Two field managers share a list keyed by (containerPort, protocol): each owns its own
/// item, and changing the other's item conflicts on exactly that item's field.
#[test]
fn server_side_apply_conflict_on_a_composite_key_list_item() {
    let s = Server::start();
    let out = server_apply(&s, &["--field-manager=a"], DNS_A);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = server_apply(&s, &["--field-manager=b"], DNS_B);
    assert!(out.status.success(), "53/TCP is a new item: {}", String::from_utf8_lossy(&out.stderr));
    let d = get_managed(&s, "deployment/dns");
    let ports = &d["spec"]["template"]["spec"]["containers"][0]["ports"];
    assert_eq!(ports.as_array().unwrap().len(), 2, "{ports}");
    let b = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "b")
        .unwrap();
    let b_ports = &b["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"main\"}"]
        ["f:ports"];
    assert!(b_ports["k:{\"containerPort\":53,\"protocol\":\"TCP\"}"].is_object(), "{b_ports}");

    let steal = DNS_B.replace(
        "ports: [{containerPort: 53, name: dns-tcp}]",
        "ports: [{containerPort: 53, name: dns-tcp}, {containerPort: 53, protocol: UDP, name: other}]",
    );
    let out = server_apply(&s, &["--field-manager=b"], &steal);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(r#"conflict with "a": .spec.template.spec.containers[name="main"].ports[containerPort=53,protocol="UDP"].name"#),
        "{err}"
    );
    // An applied list with a key twice is refused as upstream's field manager does.
    let twice = DNS_B.replace(
        "ports: [{containerPort: 53, name: dns-tcp}]",
        "ports: [{containerPort: 53, name: p1}, {containerPort: 53, protocol: TCP, name: p2}]",
    );
    let out = server_apply(&s, &["--field-manager=b"], &twice);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"Error from server: failed to create typed patch object (apps/v1, Kind=Deployment): .spec.template.spec.containers[name="main"].ports: duplicate entries for key [containerPort=53,protocol="TCP"]"#),
        "{err}"
    );
    let out = server_apply(&s, &["--field-manager=b", "--force-conflicts"], &steal);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let d = get(&s, "deployment/dns");
    let names: Vec<&str> = d["spec"]["template"]["spec"]["containers"][0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["other", "dns-tcp"]);
}

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx
        ports: [{containerPort: 80}]
"#;

/// The (manager, operation, fieldsV1) entries of an object's managedFields.
fn managed_sets(d: &Value) -> Vec<(String, String, Value)> {
    let list = d["metadata"]["managedFields"].as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
            (s("manager"), s("operation"), e["fieldsV1"].clone())
        })
        .collect()
}

/// A Deployment created by `kubectl apply` and by `kubectl apply --server-side` carries
/// the managedFields upstream's field manager writes, byte for byte: an Update records
/// `.` on every map, struct, list and list item it created (not on the structs the empty
/// Deployment already has), an Apply only on list items.
#[test]
fn managed_fields_of_applied_deployments_are_upstreams() {
    let s = Server::start();
    assert!(apply(&s, WEB).contains("created"));
    let d = get_managed(&s, "deployment/web");
    let client_side = serde_json::json!({
        "f:metadata": {
            "f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
            "f:labels": {".": {}, "f:app": {}}
        },
        "f:spec": {
            "f:progressDeadlineSeconds": {}, "f:replicas": {}, "f:revisionHistoryLimit": {},
            "f:selector": {},
            "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}},
            "f:template": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:containers": {"k:{\"name\":\"nginx\"}": {
                        ".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {},
                        "f:ports": {".": {}, "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                            ".": {}, "f:containerPort": {}, "f:protocol": {}}},
                        "f:resources": {}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}
                    }},
                    "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {},
                    "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}
                }
            }
        }
    });
    assert_eq!(
        managed_sets(&d),
        [("kubectl-client-side-apply".to_string(), "Update".to_string(), client_side)]
    );
    // byte for byte as the API serves it: `.` first, then the fields in order
    let raw = s.kubectl_ok(&["get", "--raw", "/apis/apps/v1/namespaces/default/deployments/web"]);
    assert!(raw.contains(r#""f:labels":{".":{},"f:app":{}}"#), "{raw}");

    s.kubectl_ok(&["delete", "deployment/web"]);
    let out = server_apply(&s, &[], WEB);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let d = get_managed(&s, "deployment/web");
    let server_side = serde_json::json!({
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {
            "f:replicas": {}, "f:selector": {},
            "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                    ".": {}, "f:image": {}, "f:name": {},
                    "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                }}}
            }
        }
    });
    assert_eq!(managed_sets(&d), [("kubectl".to_string(), "Apply".to_string(), server_side)]);
}

/// `kubectl create deployment`, `kubectl run` and `kubectl create namespace` leave the
/// managedFields upstream writes: the creator owns the defaulted object, not what
/// admission and PrepareForCreate add afterwards (a pod's service account, priority and
/// tolerations, a namespace's finalizers).
#[test]
fn managed_fields_of_created_objects_are_upstreams() {
    let s = Server::start();
    s.kubectl_ok(&["create", "deployment", "made", "--image=nginx"]);
    let d = get_managed(&s, "deployment/made");
    let container = serde_json::json!({".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {},
        "f:resources": {}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}});
    let deployment = serde_json::json!({
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {
            "f:progressDeadlineSeconds": {}, "f:replicas": {}, "f:revisionHistoryLimit": {},
            "f:selector": {},
            "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}},
            "f:template": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:containers": {"k:{\"name\":\"nginx\"}": container.clone()},
                    "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {},
                    "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}
                }
            }
        }
    });
    assert_eq!(
        managed_sets(&d),
        [("kubectl-create".to_string(), "Update".to_string(), deployment)]
    );

    s.kubectl_ok(&["run", "pod", "--image=nginx"]);
    let p = get_managed(&s, "pod/pod");
    let pod = serde_json::json!({
        "f:metadata": {"f:labels": {".": {}, "f:run": {}}},
        "f:spec": {
            "f:containers": {"k:{\"name\":\"pod\"}": container},
            "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:restartPolicy": {},
            "f:schedulerName": {}, "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}
        }
    });
    assert_eq!(managed_sets(&p), [("kubectl-run".to_string(), "Update".to_string(), pod)]);

    s.kubectl_ok(&["create", "namespace", "team"]);
    let n = get_managed(&s, "namespace/team");
    let ns = serde_json::json!({"f:metadata": {"f:labels": {".": {}, "f:kubernetes.io/metadata.name": {}}}});
    assert_eq!(managed_sets(&n), [("kubectl-create".to_string(), "Update".to_string(), ns)]);

    // the IP families and cluster IPs are the service storage's, set after the field manager
    s.kubectl_ok(&["create", "service", "clusterip", "svc", "--tcp=80:8080"]);
    let v = get_managed(&s, "service/svc");
    let svc = serde_json::json!({
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {
            "f:internalTrafficPolicy": {},
            "f:ports": {".": {}, "k:{\"port\":80,\"protocol\":\"TCP\"}": {
                ".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}}},
            "f:selector": {}, "f:sessionAffinity": {}, "f:type": {}
        }
    });
    assert_eq!(managed_sets(&v), [("kubectl-create".to_string(), "Update".to_string(), svc)]);
    assert_eq!(v["spec"]["ipFamilies"], serde_json::json!(["IPv4"]));
    assert_eq!(v["spec"]["ipFamilyPolicy"], "SingleStack");
    s.kubectl_ok(&["label", "service/svc", "tier=web"]);
    let v = get_managed(&s, "service/svc");
    assert_eq!(v["spec"]["ipFamilyPolicy"], "SingleStack", "an update keeps them");
}

/// kubectl against kapi or upstream.
type Kubectl<'a> = &'a dyn Fn(&[&str]) -> std::process::Output;

/// Client-side apply of APP_V1, then server-side applies of it with 3 replicas by
/// `other` and by `kubectl`; again after a re-create, forced by `other`: each step's
/// success and stderr (stdout for a `get`).
fn takeover_steps(kubectl: Kubectl<'_>, dir: &std::path::Path) -> Vec<(bool, String)> {
    let v1 = dir.join("v1.yaml");
    let v3 = dir.join("v3.yaml");
    std::fs::write(&v1, APP_V1).unwrap();
    std::fs::write(&v3, APP_V1.replace("replicas: 2", "replicas: 3")).unwrap();
    let (v1, v3) = (v1.to_str().unwrap(), v3.to_str().unwrap());
    let ssa = ["apply", "--server-side"];
    let steps: Vec<Vec<&str>> = vec![
        vec!["apply", "-f", v1],
        [&ssa[..], &["--field-manager=other", "-f", v3]].concat(),
        [&ssa[..], &["--field-manager=kubectl", "-f", v3]].concat(),
        vec!["get", "deployment/app", "-o", "jsonpath={.spec.replicas}"],
        vec!["delete", "deployment/app"],
        vec!["apply", "-f", v1],
        [&ssa[..], &["--field-manager=other", "--force-conflicts", "-f", v3]].concat(),
        vec!["get", "deployment/app", "-o", "jsonpath={.spec.replicas}"],
    ];
    steps
        .iter()
        .map(|args| {
            let out = kubectl(args);
            let text = if args[0] == "get" { &out.stdout } else { &out.stderr };
            (out.status.success(), String::from_utf8_lossy(text).into_owned())
        })
        .collect()
}

/// Regression (issue #14 item 6): after a client-side `kubectl apply`, a server-side
/// apply by any field manager took over kubectl's fields without a conflict; upstream
/// lets only the `kubectl` manager do that (the client-side to server-side migration).
/// Compared step by step with upstream's answers when `../shared/upstream` is present.
#[test]
fn only_the_kubectl_manager_takes_over_client_side_applied_fields() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let got = takeover_steps(&|a| s.kubectl(a), dir.path());
    let conflict = "error: Apply failed with 1 conflict: conflict with \
                    \"kubectl-client-side-apply\" using apps/v1: .spec.replicas";
    assert!(!got[1].0 && got[1].1.starts_with(conflict), "other conflicts: {got:?}");
    assert!(got[2].0 && got[3].1 == "3", "kubectl takes over: {got:?}");
    assert!(got[6].0 && got[7].1 == "3", "other forces: {got:?}");
    if kapi_e2e::upstream::upstream_dir().is_none() {
        eprintln!("not compared: ../shared/upstream is absent");
        return;
    }
    let up = kapi_e2e::upstream::Apiserver::start("AlwaysAllow");
    let want = takeover_steps(&|a| up.kubectl(a), dir.path());
    assert_eq!(got, want, "kapi (left) and upstream (right) answer each step alike");
}
