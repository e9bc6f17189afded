//! kapi's answers against upstream kube-apiserver's for the same requests: the bytes of
//! Status bodies, objects and views, and what each accepts. Upstream is the v1.21 binary
//! in `../shared/upstream` (started once per run with its own etcd, stopped when the
//! test process ends); the tests skip with a message when it is absent. Only what
//! v1.35 does the same way as v1.21 is compared: server-set values (uids, timestamps,
//! resourceVersions) are masked, and documentation texts are not compared.

use kapi_e2e::Server;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// One HTTP answer.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    code: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Where and how to reach a server.
struct Endpoint {
    url: String,
    token: String,
}

impl Endpoint {
    fn kapi(s: &Server) -> Endpoint {
        let token = std::fs::read_to_string(s.dir.path().join("data/pki/admin.token")).unwrap();
        Endpoint { url: s.url(), token: token.trim().to_string() }
    }

    /// `curl -X method` with the headers and body; `-k` (both servers' CAs are private).
    fn call(&self, method: &str, path: &str, headers: &[&str], body: Option<&str>) -> Answer {
        let out = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = Command::new("curl");
        cmd.args(["-sk", "--max-time", "30", "-A", "kapi-e2e", "-X", method, "-o"])
            .arg(out.path())
            .args(["-w", "%{http_code} %{content_type}"])
            .args(["-H", &format!("Authorization: Bearer {}", self.token)]);
        for h in headers {
            cmd.args(["-H", h]);
        }
        if let Some(b) = body {
            cmd.args(["--data-binary", b]);
        }
        let meta = cmd.arg(format!("{}{path}", self.url)).output().expect("curl");
        let meta = String::from_utf8_lossy(&meta.stdout).into_owned();
        let (code, ct) = meta.split_once(' ').unwrap_or((&meta, ""));
        Answer {
            code: code.parse().unwrap_or(0),
            content_type: ct.to_string(),
            body: std::fs::read(out.path()).unwrap(),
        }
    }
}

/// Upstream kube-apiserver (with its etcd), started once for the whole run.
fn upstream() -> Option<&'static Endpoint> {
    static UP: OnceLock<Option<Endpoint>> = OnceLock::new();
    UP.get_or_init(start_upstream).as_ref()
}

fn shared_upstream_dir() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?.parent()?;
    let dir = root.join("shared/upstream");
    dir.join("up.sh").is_file().then_some(dir)
}

fn start_upstream() -> Option<Endpoint> {
    let Some(shared) = shared_upstream_dir() else {
        eprintln!("skipping: no ../shared/upstream (upstream kube-apiserver) to compare with");
        return None;
    };
    let dir = tempfile::Builder::new().prefix("kapi-upstream-").tempdir().unwrap().keep();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let up = Command::new(shared.join("up.sh"))
        .arg(&dir)
        .arg(port.to_string())
        .env("AUTHZ", "AlwaysAllow")
        .output()
        .expect("up.sh");
    if !up.status.success() {
        eprintln!("skipping: upstream did not start: {}", String::from_utf8_lossy(&up.stderr));
        return None;
    }
    // Stop upstream when this test process ends, however it ends.
    let watchdog = format!(
        "while kill -0 {} 2>/dev/null; do sleep 1; done; {} {} >/dev/null 2>&1; rm -rf {}",
        std::process::id(),
        shared.join("down.sh").display(),
        dir.display(),
        dir.display()
    );
    // Detached: the shell returns at once, the loop lives on (reparented to init).
    let detached = format!("({watchdog}) >/dev/null 2>&1 </dev/null &");
    Command::new("sh").args(["-c", &detached]).status().expect("watchdog");
    let env = std::fs::read_to_string(dir.join("up.env")).unwrap();
    let var = |k: &str| {
        env.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).unwrap_or("").to_string()
    };
    let up = Endpoint { url: var("SERVER"), token: var("TOKEN") };
    // The default namespace appears shortly after the server answers.
    let ready = kapi_e2e::eventually(std::time::Duration::from_secs(60), || {
        up.call("GET", "/api/v1/namespaces/default", &[], None).code == 200
    });
    assert!(ready, "upstream's default namespace did not appear");
    Some(up)
}

/// Both servers, or None (skip) when upstream is absent.
fn pair() -> Option<(&'static Endpoint, Server)> {
    let up = upstream()?;
    Some((up, Server::start()))
}

/// Server-set values masked: uids, timestamps, resourceVersions.
fn masked(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let keys = ["\"uid\":\"", "Timestamp\":\"", "\"time\":\"", "\"resourceVersion\":\""];
    while let Some((at, key)) =
        keys.iter().filter_map(|k| rest.find(k).map(|i| (i, *k))).min_by_key(|(i, _)| *i)
    {
        let start = at + key.len();
        out.push_str(&rest[..start]);
        let end = rest[start..].find('"').map_or(rest.len(), |e| start + e);
        out.push('*');
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Sends the same request to both and asserts the same code and (masked) bytes.
fn same(up: &Endpoint, kapi: &Endpoint, method: &str, path: &str, headers: &[&str], body: &str) {
    let body = (!body.is_empty()).then_some(body);
    let (u, k) = (up.call(method, path, headers, body), kapi.call(method, path, headers, body));
    assert_eq!(
        (u.code, masked(&u.text())),
        (k.code, masked(&k.text())),
        "{method} {path} {body:?}: upstream (left) and kapi (right) differ"
    );
}

const JSON: &str = "Content-Type: application/json";

/// Regression: Status bodies had `details` after `code`, `kind` before `group`, causes'
/// messages with their field path, kapi's own 405 texts, and no trailing newline.
#[test]
fn status_bodies_are_byte_identical_to_upstreams() {
    let Some((up, s)) = pair() else { return };
    let k = Endpoint::kapi(&s);
    let cm = r#"{"metadata":{"name":"dup"}}"#;
    same(up, &k, "GET", "/api/v1/namespaces/default/pods/nope", &[], "");
    same(up, &k, "GET", "/apis/apps/v1/namespaces/default/deployments/nope", &[], "");
    up.call("POST", "/api/v1/namespaces/default/configmaps", &[JSON], Some(cm));
    k.call("POST", "/api/v1/namespaces/default/configmaps", &[JSON], Some(cm));
    same(up, &k, "POST", "/api/v1/namespaces/default/configmaps", &[JSON], cm);
    let bad_name = r#"{"metadata":{"name":"Bad_Name"}}"#;
    same(up, &k, "POST", "/api/v1/namespaces/default/configmaps", &[JSON], bad_name);
    same(up, &k, "PUT", "/api/v1/namespaces/default/configmaps", &[JSON], "{}");
    same(up, &k, "POST", "/api/v1/namespaces/default/configmaps/dup", &[JSON], cm);
    same(up, &k, "DELETE", "/api/v1/namespaces", &[], "");
    let table_only = "Accept: application/json;as=Table;v=v1;g=meta.k8s.io";
    same(up, &k, "GET", "/api/v1/namespaces/default/configmaps/nope", &[table_only], "");
    let bad_token = Endpoint { url: k.url.clone(), token: "wrong".into() };
    let up_bad = Endpoint { url: up.url.clone(), token: "wrong".into() };
    same(&up_bad, &bad_token, "GET", "/api/v1/pods", &[], "");
}

/// Regression: bodies without kind/apiVersion were refused ("Object 'Kind' is missing");
/// upstream takes them from the endpoint, and words its refusals of other types its way.
#[test]
fn kind_and_api_version_default_from_the_endpoint() {
    let Some((up, s)) = pair() else { return };
    let k = Endpoint::kapi(&s);
    let cms = "/api/v1/namespaces/default/configmaps";
    same(up, &k, "POST", cms, &[JSON], r#"{"metadata":{"name":"a"},"data":{"k":"v"}}"#);
    same(up, &k, "POST", cms, &[JSON], r#"{"kind":"","apiVersion":"","metadata":{"name":"b"}}"#);
    same(up, &k, "POST", cms, &[JSON], r#"{"kind":"ConfigMap","metadata":{"name":"c"}}"#);
    let yaml = "Content-Type: application/yaml";
    same(up, &k, "POST", cms, &[yaml], "metadata:\n  name: d\n");
    same(up, &k, "PUT", &format!("{cms}/a"), &[JSON], r#"{"metadata":{"name":"a"}}"#);
    let secret = r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"e"}}"#;
    same(up, &k, "POST", cms, &[JSON], secret);
    same(up, &k, "POST", cms, &[JSON], r#"{"apiVersion":"v2","metadata":{"name":"f"}}"#);
    let got = k.call("GET", &format!("{cms}/d"), &[], None);
    assert!(got.text().starts_with(r#"{"kind":"ConfigMap","apiVersion":"v1","#), "{}", got.text());
}

/// Regression: create, update, patch and delete answered the full object whatever view
/// the Accept header asked for.
#[test]
fn views_are_honoured_on_every_verb() {
    let Some((up, s)) = pair() else { return };
    let k = Endpoint::kapi(&s);
    let meta = "Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
    let table = "Accept: application/json;as=Table;g=meta.k8s.io;v=v1";
    let cms = "/api/v1/namespaces/default/configmaps";
    let both = |method: &str, path: &str, headers: &[&str], body: &str| {
        let body = (!body.is_empty()).then_some(body);
        (up.call(method, path, headers, body), k.call(method, path, headers, body))
    };
    let (u, kk) =
        both("POST", cms, &[JSON, meta], r#"{"metadata":{"name":"v","labels":{"a":"b"}}}"#);
    assert_eq!((kk.code, kk.json()["kind"].clone()), (u.code, u.json()["kind"].clone()));
    assert_eq!(kk.json()["metadata"]["labels"], u.json()["metadata"]["labels"]);
    assert!(kk.json().get("data").is_none());
    let merge = "Content-Type: application/merge-patch+json";
    let (u, kk) = both("PATCH", &format!("{cms}/v"), &[merge, meta], r#"{"data":{"x":"y"}}"#);
    assert_eq!((kk.code, kk.json()["kind"].clone()), (u.code, u.json()["kind"].clone()));
    assert!(kk.json().get("data").is_none(), "{}", kk.text());
    let (u, kk) = both("PUT", &format!("{cms}/v"), &[JSON, table], r#"{"metadata":{"name":"v"}}"#);
    assert_eq!(kk.code, u.code);
    for t in [&u, &kk] {
        assert_eq!(t.json()["kind"], "Table", "{}", t.text());
        assert_eq!(t.json()["rows"][0]["cells"][0], "v");
        assert_eq!(t.content_type, "application/json");
    }
    let (u, kk) = both("DELETE", &format!("{cms}/v"), &[meta], "");
    assert_eq!(kk.code, u.code);
    assert!(kk.json()["kind"] == "PartialObjectMetadata" || kk.json()["kind"] == "Status");
}

/// Regression: componentstatuses was an empty list.
#[test]
fn componentstatuses_list_the_control_plane_as_upstream() {
    let Some((up, s)) = pair() else { return };
    let k = Endpoint::kapi(&s);
    let (u, kk) = (
        up.call("GET", "/api/v1/componentstatuses", &[], None),
        k.call("GET", "/api/v1/componentstatuses", &[], None),
    );
    let names = |a: &Answer| {
        let mut n: Vec<String> = a.json()["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_string())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&kk), names(&u));
    assert_eq!(names(&kk), ["controller-manager", "etcd-0", "scheduler"]);
    let one = k.call("GET", "/api/v1/componentstatuses/etcd-0", &[], None).json();
    assert_eq!(one["conditions"][0]["type"], "Healthy");
    assert_eq!(one["conditions"][0]["status"], "True");
    let missing = |e: &Endpoint| e.call("GET", "/api/v1/componentstatuses/nope", &[], None);
    assert_eq!((missing(&k).code, missing(&k).text()), (missing(up).code, missing(up).text()));
    let printed = s.kubectl_ok(&["get", "componentstatuses"]);
    let header: Vec<&str> = printed.lines().next().unwrap_or("").split_whitespace().collect();
    assert_eq!(header, ["NAME", "STATUS", "MESSAGE", "ERROR"]);
    assert!(printed.contains("etcd-0") && printed.contains("Healthy"), "{printed}");
}

/// Every object's keys sorted, as kubectl sends a manifest.
fn sort_all_keys(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.sort_keys();
            m.values_mut().for_each(sort_all_keys);
        }
        Value::Array(a) => a.iter_mut().for_each(sort_all_keys),
        _ => {}
    }
}

/// Rich objects (embedded structs such as VolumeSource and ProbeHandler, maps, fields
/// whose protobuf tags are out of declaration order) as a client might send them.
fn rich_objects() -> Vec<(&'static str, &'static str, Value)> {
    let pod = serde_json::json!({"metadata": {"name": "rich", "labels": {"z": "1", "a": "2"},
        "annotations": {"b": "x", "a": "y"}},
        "spec": {"volumes": [{"name": "cfg", "configMap": {"name": "c"}}, {"name": "tmp", "emptyDir": {}}],
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "web", "image": "nginx:1.25", "command": ["nginx"],
                "ports": [{"containerPort": 80, "name": "http"}],
                "env": [{"name": "A", "value": "1"}],
                "resources": {"limits": {"memory": "64Mi", "cpu": "100m"}},
                "livenessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 5},
                "volumeMounts": [{"name": "cfg", "mountPath": "/etc/c"}]}],
            "nodeSelector": {"zone": "a", "disk": "ssd"},
            "tolerations": [{"key": "k", "operator": "Exists"}]}});
    let deployment = serde_json::json!({"metadata": {"name": "rich"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "rich"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {"metadata": {"labels": {"app": "rich"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}});
    let service = serde_json::json!({"metadata": {"name": "rich"},
        "spec": {"selector": {"app": "rich"}, "ports": [{"port": 80, "targetPort": 8080, "name": "http"}]}});
    vec![
        ("/api/v1/namespaces/default/pods", "io.k8s.api.core.v1.Pod", pod),
        (
            "/apis/apps/v1/namespaces/default/deployments",
            "io.k8s.api.apps.v1.Deployment",
            deployment,
        ),
        ("/api/v1/namespaces/default/services", "io.k8s.api.core.v1.Service", service),
    ]
}

/// Regression: objects kept the client's field order (kubectl sends keys sorted; kapi
/// wrote `resourceVersion` last in metadata). Upstream's bytes of rich objects are what
/// kapi's order gives the same trees with every key sorted (checks that the order is
/// Go's struct order: kind first, embedded structs inline, maps sorted), and kapi's own
/// answers match upstream's bytes.
#[test]
fn objects_are_written_in_upstreams_field_order() {
    let Some((up, s)) = pair() else { return };
    let k = Endpoint::kapi(&s);
    let sa = r#"{"metadata":{"name":"default"}}"#;
    up.call("POST", "/api/v1/namespaces/default/serviceaccounts", &[JSON], Some(sa));
    for (path, schema, mut obj) in rich_objects() {
        sort_all_keys(&mut obj);
        let body = obj.to_string();
        let created = up.call("POST", path, &[JSON], Some(&body));
        assert_eq!(created.code, 201, "{}", created.text());
        let got = up.call("GET", &format!("{path}/rich"), &[], None);
        let mut tree = got.json();
        sort_all_keys(&mut tree);
        kapi_codec::order::canonicalize(schema, &mut tree);
        let ours = format!("{}\n", serde_json::to_string(&tree).unwrap());
        assert_eq!(ours, got.text(), "{schema}: kapi's order (left), upstream's bytes (right)");
    }
    let cm = r#"{"apiVersion":"v1","data":{"z":"1","a":"2"},"kind":"ConfigMap","metadata":{"labels":{"b":"1","a":"2"},"name":"ordered"}}"#;
    same(up, &k, "POST", "/api/v1/namespaces/default/configmaps", &[JSON], cm);
    same(up, &k, "GET", "/api/v1/namespaces/default/configmaps/ordered", &[], "");
    let patch = r#"{"metadata":{"annotations":{"y":"1","x":"2"}}}"#;
    let merge = "Content-Type: application/merge-patch+json";
    same(up, &k, "PATCH", "/api/v1/namespaces/default/configmaps/ordered", &[merge], patch);
    same(up, &k, "GET", "/api/v1/namespaces/default/configmaps/ordered", &[], "");
}

/// Regression: a delete that keeps the object (finalizers) appended deletionTimestamp
/// and deletionGracePeriodSeconds after the rest of the metadata.
#[test]
fn deleting_objects_keep_upstreams_field_order() {
    let Some((up, s)) = pair() else { return };
    let k = Endpoint::kapi(&s);
    let cms = "/api/v1/namespaces/default/configmaps";
    let cm = r#"{"metadata":{"name":"held","finalizers":["example.com/hold"],"labels":{"a":"b"}}}"#;
    same(up, &k, "POST", cms, &[JSON], cm);
    same(up, &k, "DELETE", &format!("{cms}/held"), &[], "");
    same(up, &k, "GET", &format!("{cms}/held"), &[], "");
    let release = r#"{"metadata":{"finalizers":null}}"#;
    let merge = "Content-Type: application/merge-patch+json";
    same(up, &k, "PATCH", &format!("{cms}/held"), &[merge], release);
}
