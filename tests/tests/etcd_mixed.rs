//! One etcd, two API servers: upstream kube-apiserver (v1.21, from `../shared/upstream`)
//! and kapi share the same etcd and key prefix (DESIGN.md §1.6). Objects written through
//! either are read, updated, watched and deleted through the other, with the same uid
//! and resourceVersion, and optimistic concurrency holds across them. Skipped with a
//! message without `../shared/upstream` or an etcd binary.

use kapi_e2e::upstream::{self, Apiserver};
use kapi_e2e::{Server, ServerOptions, etcd, eventually};
use serde_json::Value;
use std::time::Duration;

fn pair() -> Option<(Apiserver, Server)> {
    if upstream::upstream_dir().is_none() || !etcd::available() {
        eprintln!("skipped: needs ../shared/upstream and etcd-server");
        return None;
    }
    let up = Apiserver::start("AlwaysAllow");
    let opts =
        ServerOptions { etcd_servers: Some(up.etcd_endpoint().to_string()), ..Default::default() };
    let kapi = Server::start_with(opts);
    Some((up, kapi))
}

fn json(out: String) -> Value {
    serde_json::from_str(&out).expect("JSON")
}

/// `v` without `null` members: upstream v1.21 writes a zero `creationTimestamp` (pod
/// templates) as `null`, which v1.33 and later omit as kapi does (kubernetes PR 130989).
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| (k.clone(), without_nulls(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

fn same_object(a: &Value, b: &Value) {
    for f in ["uid", "resourceVersion", "name", "namespace", "creationTimestamp"] {
        assert_eq!(a["metadata"][f], b["metadata"][f], "metadata.{f}");
    }
}

#[test]
fn objects_written_by_either_server_are_served_by_the_other() {
    let Some((up, kapi)) = pair() else { return };
    // upstream -> kapi
    up.kubectl_ok(&["create", "configmap", "from-up", "--from-literal=a=1"]);
    up.kubectl_ok(&["create", "deployment", "web", "--image=nginx", "--replicas=2"]);
    up.kubectl_ok(&["create", "secret", "generic", "s1", "--from-literal=k=v"]);
    up.kubectl_ok(&["create", "namespace", "from-up"]);
    for (kind, name) in [
        ("configmap", "from-up"),
        ("deployment", "web"),
        ("secret", "s1"),
        ("namespace", "from-up"),
    ] {
        let theirs = json(up.kubectl_ok(&["get", kind, name, "-o", "json"]));
        let ours = json(kapi.kubectl_ok(&["get", kind, name, "-o", "json"]));
        same_object(&theirs, &ours);
        assert_eq!(theirs["data"], ours["data"], "{kind} data");
        assert_eq!(without_nulls(&theirs["spec"]), ours["spec"], "{kind} spec");
    }
    // kapi -> upstream
    kapi.kubectl_ok(&["create", "configmap", "from-kapi", "--from-literal=b=2"]);
    kapi.kubectl_ok(&["run", "p", "--image=nginx", "--labels=app=p"]);
    for (kind, name) in [("configmap", "from-kapi"), ("pod", "p")] {
        let ours = json(kapi.kubectl_ok(&["get", kind, name, "-o", "json"]));
        let theirs = json(up.kubectl_ok(&["get", kind, name, "-o", "json"]));
        same_object(&theirs, &ours);
        assert_eq!(theirs["data"], ours["data"]);
        assert_eq!(theirs["spec"]["containers"], ours["spec"]["containers"]);
    }
    // Updates through one are seen by the other; a stale write through either conflicts.
    let before = json(kapi.kubectl_ok(&["get", "configmap", "from-up", "-o", "json"]));
    kapi.kubectl_ok(&[
        "patch",
        "configmap",
        "from-up",
        "--type=merge",
        "-p",
        r#"{"data":{"a":"2"}}"#,
    ]);
    let seen = json(up.kubectl_ok(&["get", "configmap", "from-up", "-o", "json"]));
    assert_eq!(seen["data"]["a"], "2");
    let mut stale = before.clone();
    stale["data"]["a"] = "3".into();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), stale.to_string()).unwrap();
    let path = file.path().to_str().unwrap();
    let conflict = up.kubectl(&["replace", "-f", path]);
    assert!(!conflict.status.success(), "upstream took a stale write");
    assert!(String::from_utf8_lossy(&conflict.stderr).contains("the object has been modified"));
    let conflict = kapi.kubectl(&["replace", "-f", path]);
    assert!(!conflict.status.success(), "kapi took a stale write");
    up.kubectl_ok(&["label", "configmap", "from-kapi", "by=upstream"]);
    let ours = json(kapi.kubectl_ok(&["get", "configmap", "from-kapi", "-o", "json"]));
    assert_eq!(ours["metadata"]["labels"]["by"], "upstream");
    // Deletes.
    up.kubectl_ok(&["delete", "configmap", "from-kapi"]);
    assert!(!kapi.kubectl(&["get", "configmap", "from-kapi"]).status.success());
    kapi.kubectl_ok(&["delete", "secret", "s1"]);
    assert!(!up.kubectl(&["get", "secret", "s1"]).status.success());
}

/// A watch through one server sees the other's writes, in order.
fn watch_sees(
    watcher: &(dyn Fn(&[&str]) -> String + Sync),
    writer: &dyn Fn(&[&str]),
    prefix: &str,
) {
    let rv = json(watcher(&["get", "configmaps", "-o", "json"]))["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!(
        "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=6"
    );
    std::thread::scope(|scope| {
        let stream = scope.spawn(|| watcher(&["get", "--raw", &path]));
        std::thread::sleep(Duration::from_millis(500));
        for i in 0..5 {
            writer(&["create", "configmap", &format!("{prefix}-{i}")]);
        }
        writer(&["delete", "configmap", &format!("{prefix}-0")]);
        let text = stream.join().unwrap();
        let events: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|e| {
                let name = e["object"]["metadata"]["name"].as_str().unwrap_or("").to_string();
                (e["type"].as_str().unwrap_or("").to_string(), name)
            })
            .filter(|(_, n)| n.starts_with(prefix))
            .collect();
        let mut want: Vec<(String, String)> =
            (0..5).map(|i| ("ADDED".to_string(), format!("{prefix}-{i}"))).collect();
        want.push(("DELETED".into(), format!("{prefix}-0")));
        assert_eq!(events, want, "{text}");
    });
}

#[test]
fn watches_through_either_server_see_the_others_writes() {
    let Some((up, kapi)) = pair() else { return };
    let on_kapi = |a: &[&str]| kapi.kubectl_ok(a);
    let on_up = |a: &[&str]| up.kubectl_ok(a);
    watch_sees(&on_kapi, &|a| drop(up.kubectl_ok(a)), "by-up");
    watch_sees(&on_up, &|a| drop(kapi.kubectl_ok(a)), "by-kapi");
    // Both list each other's objects after the fact, at one resourceVersion.
    assert!(eventually(Duration::from_secs(10), || {
        let a = json(up.kubectl_ok(&["get", "configmaps", "-o", "json"]));
        let b = json(kapi.kubectl_ok(&["get", "configmaps", "-o", "json"]));
        let names = |v: &Value| -> Vec<String> {
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].to_string())
                .collect()
        };
        names(&a) == names(&b)
    }));
}
