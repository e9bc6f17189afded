//! Custom resources driven the way kube-rs' own tests do it: a `#[derive(CustomResource)]`
//! type whose CRD (`Foo::crd()`) is created through `Api<CustomResourceDefinition>`, waited
//! for with `await_condition(.., is_crd_established())`, then served objects used through
//! `Api<Foo>`: CRUD, defaulting, enum and CEL validation (upstream's messages), server-side
//! apply, the status and scale subresources, a runtime watcher, and CRD deletion.

use futures_util::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kapi_e2e::Server;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config, CustomResource, CustomResourceExt, KubeSchema, ResourceExt};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The spec of `Foo` (kind `Foo`, group `kapi.test`, plural `foos`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kapi.test",
    version = "v1",
    kind = "Foo",
    namespaced,
    status = "FooStatus",
    derive = "PartialEq",
    scale(spec_replicas_path = ".spec.replicas", status_replicas_path = ".status.replicas"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas"),
    selectable = ".spec.mode"
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.maxReplicas) || self.replicas <= self.maxReplicas")
    .message("replicas must not exceed maxReplicas"))]
pub struct FooSpec {
    pub mode: Mode,
    pub replicas: i32,
    /// Defaulted by the server (10) when left out.
    #[serde(default = "default_max_replicas", skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn default_max_replicas() -> Option<i32> {
    Some(10)
}

#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Fast,
    Slow,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct FooStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}

const CRD_NAME: &str = "foos.kapi.test";
const TIMEOUT: Duration = Duration::from_secs(30);

async fn client(server: &Server) -> Client {
    let kc = Kubeconfig::read_from(server.kubeconfig()).expect("kubeconfig");
    let config =
        Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.expect("config");
    Client::try_from(config).expect("client")
}

/// Create the CRD of `Foo` and wait (bounded) until it is Established.
async fn create_crd_and_await_established(client: &Client) -> Api<CustomResourceDefinition> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = Foo::crd();
    assert_eq!(crd.metadata.name.as_deref(), Some(CRD_NAME));
    crds.create(&PostParams::default(), &crd).await.expect("create CRD");
    let established = await_condition(crds.clone(), CRD_NAME, conditions::is_crd_established());
    tokio::time::timeout(TIMEOUT, established)
        .await
        .expect("CRD established in time")
        .expect("await_condition");
    crds
}

/// Create the CRD of `Foo`, wait until it is Established and then until `foos` are
/// served. (Upstream serves a CRD's type from NamesAccepted on, so Established alone would
/// do there; kapi can answer 404 for a moment after Established shows, see
/// `established_means_served`.)
async fn install_crd(client: &Client) -> Api<CustomResourceDefinition> {
    let crds = create_crd_and_await_established(client).await;
    let foos: Api<Foo> = Api::all(client.clone());
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        match foos.list(&ListParams::default()).await {
            Ok(_) => return crds,
            Err(kube::Error::Api(s)) if s.code == 404 => {
                assert!(tokio::time::Instant::now() < deadline, "foos never served");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("list foos: {e:?}"),
        }
    }
}

fn foo(name: &str, mode: Mode, replicas: i32) -> Foo {
    Foo::new(name, FooSpec { mode, replicas, max_replicas: None, note: None })
}

/// The API status of a failed request, or a panic naming what was expected.
fn api_error(err: kube::Error) -> kube::core::Status {
    match err {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn wait_gone<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        match api.get_opt(name).await.expect("get") {
            None => return,
            Some(_) => {
                assert!(tokio::time::Instant::now() < deadline, "{name} still there");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// As soon as `await_condition(.., is_crd_established())` returns, the custom type is
/// served (kube-rs' own tests create objects right then). Tried with twenty copies of
/// `Foo::crd()` under other names, as the window is short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn established_means_served() {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let server = Server::start();
    let client = client(&server).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut missed = Vec::new();
    for i in 0..20 {
        let (plural, kind) = (format!("foos{i}"), format!("Foo{i}"));
        let name = format!("{plural}.kapi.test");
        let mut crd = Foo::crd();
        crd.metadata.name = Some(name.clone());
        crd.spec.names.plural = plural.clone();
        crd.spec.names.singular = Some(format!("foo{i}"));
        crd.spec.names.kind = kind.clone();
        crd.spec.names.list_kind = Some(format!("{kind}List"));
        crds.create(&PostParams::default(), &crd).await.expect("create CRD");
        let established = await_condition(crds.clone(), &name, conditions::is_crd_established());
        tokio::time::timeout(TIMEOUT, established).await.expect("established").expect("await");
        let gvk = GroupVersionKind::gvk("kapi.test", "v1", &kind);
        let ar = ApiResource::from_gvk_with_plural(&gvk, &plural);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
        let mut obj = DynamicObject::new("now", &ar);
        obj.data = serde_json::json!({"spec": {"mode": "Fast", "replicas": 1}});
        if let Err(e) = api.create(&PostParams::default(), &obj).await {
            missed.push((name, e.to_string()));
        }
    }
    assert!(missed.is_empty(), "not served right after Established: {missed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crd_from_derive_crud_defaulting_and_validation() {
    let server = Server::start();
    let client = client(&server).await;
    install_crd(&client).await;
    let foos: Api<Foo> = Api::namespaced(client.clone(), "default");

    // Create: maxReplicas is left out and defaulted by the server.
    let created =
        foos.create(&PostParams::default(), &foo("a", Mode::Fast, 1)).await.expect("create");
    assert_eq!(created.spec.max_replicas, Some(10), "{created:?}");
    assert_eq!(created.spec.mode, Mode::Fast);
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    assert_eq!(created.metadata.generation, Some(1));
    let got = foos.get("a").await.expect("get");
    assert_eq!(got.spec, created.spec);
    assert_eq!(got.resource_version(), created.resource_version());

    let dup =
        api_error(foos.create(&PostParams::default(), &foo("a", Mode::Fast, 1)).await.unwrap_err());
    assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"), "{dup:?}");

    foos.create(&PostParams::default(), &foo("b", Mode::Slow, 2)).await.expect("create b");
    let listed = foos.list(&ListParams::default()).await.expect("list");
    let names: Vec<String> = listed.items.iter().map(|f| f.name_any()).collect();
    assert_eq!(names, ["a", "b"]);
    // The selectable field .spec.mode answers field selectors.
    let slow = foos.list(&ListParams::default().fields("spec.mode=Slow")).await.expect("list");
    let names: Vec<String> = slow.items.iter().map(|f| f.name_any()).collect();
    assert_eq!(names, ["b"]);

    // Replace with the read resourceVersion; a stale one conflicts.
    let mut changed = got.clone();
    changed.spec.replicas = 3;
    changed.spec.note = Some("replaced".into());
    let replaced = foos.replace("a", &PostParams::default(), &changed).await.expect("replace");
    assert_eq!(replaced.spec.replicas, 3);
    assert_eq!(replaced.spec.note.as_deref(), Some("replaced"));
    assert_eq!(replaced.metadata.generation, Some(2));
    let stale = api_error(foos.replace("a", &PostParams::default(), &changed).await.unwrap_err());
    assert_eq!((stale.code, stale.reason.as_str()), (409, "Conflict"), "{stale:?}");

    // JSON merge patch.
    let patch = serde_json::json!({"spec": {"mode": "Slow", "note": null}});
    let patched =
        foos.patch("a", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("merge patch");
    assert_eq!(patched.spec.mode, Mode::Slow);
    assert_eq!(patched.spec.note, None);
    assert_eq!(patched.spec.replicas, 3);

    // The enum: a value outside it is refused with upstream's message.
    let bad = serde_json::json!({"spec": {"mode": "Medium"}});
    let err =
        api_error(foos.patch("a", &PatchParams::default(), &Patch::Merge(&bad)).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"), "{err:?}");
    assert_eq!(
        err.message,
        r#"Foo.kapi.test "a" is invalid: spec.mode: Unsupported value: "Medium": supported values: "Fast", "Slow""#
    );
    // The CEL rule of the spec, on create and on update.
    let mut over = foo("c", Mode::Fast, 11);
    let err = api_error(foos.create(&PostParams::default(), &over).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"), "{err:?}");
    assert_eq!(
        err.message,
        r#"Foo.kapi.test "c" is invalid: spec: Invalid value: "object": replicas must not exceed maxReplicas"#
    );
    over.spec.max_replicas = Some(20);
    foos.create(&PostParams::default(), &over).await.expect("create within maxReplicas");
    let lower = serde_json::json!({"spec": {"maxReplicas": 5}});
    let err = api_error(
        foos.patch("c", &PatchParams::default(), &Patch::Merge(&lower)).await.unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"), "{err:?}");
    assert!(err.message.contains("replicas must not exceed maxReplicas"), "{err:?}");
    // A required field missing.
    let no_mode = serde_json::json!({"spec": {"mode": null}});
    let err = api_error(
        foos.patch("a", &PatchParams::default(), &Patch::Merge(&no_mode)).await.unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"), "{err:?}");
    assert_eq!(err.message, r#"Foo.kapi.test "a" is invalid: spec.mode: Required value"#);

    // The printer columns reach kubectl.
    let table = server.kubectl_ok(&["get", "foos", "-n", "default"]);
    let header: Vec<&str> = table.lines().next().unwrap_or_default().split_whitespace().collect();
    // Upstream adds no Age column when a CRD names its own columns.
    assert_eq!(header, ["NAME", "MODE", "REPLICAS"], "{table}");
    assert!(table.lines().any(|l| l.split_whitespace().take(3).eq(["a", "Slow", "3"])), "{table}");

    // Delete.
    foos.delete("a", &DeleteParams::default()).await.expect("delete");
    let gone = api_error(foos.get("a").await.unwrap_err());
    assert_eq!((gone.code, gone.reason.as_str()), (404, "NotFound"), "{gone:?}");
    let left: Vec<String> = foos
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(|f| f.name_any())
        .collect();
    assert_eq!(left, ["b", "c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_of_a_custom_resource() {
    let server = Server::start();
    let client = client(&server).await;
    install_crd(&client).await;
    let foos: Api<Foo> = Api::namespaced(client.clone(), "default");

    let mut desired = foo("s", Mode::Fast, 2);
    desired.spec.note = Some("first".into());
    let ssa = PatchParams::apply("mgr");
    let applied = foos.patch("s", &ssa, &Patch::Apply(&desired)).await.expect("apply");
    assert_eq!(applied.spec.note.as_deref(), Some("first"));
    assert_eq!(applied.spec.max_replicas, Some(10), "defaulted");
    let managers: Vec<(String, String)> = applied
        .managed_fields()
        .iter()
        .map(|m| (m.manager.clone().unwrap_or_default(), m.operation.clone().unwrap_or_default()))
        .collect();
    assert_eq!(managers, [("mgr".to_string(), "Apply".to_string())]);

    // The same manager applies again without the note: the note is removed.
    desired.spec.note = None;
    let applied = foos.patch("s", &ssa, &Patch::Apply(&desired)).await.expect("second apply");
    assert_eq!(applied.spec.note, None, "{applied:?}");
    assert_eq!(applied.spec.replicas, 2);

    // Another manager changing a field "mgr" owns conflicts.
    let other = serde_json::json!({
        "apiVersion": "kapi.test/v1",
        "kind": "Foo",
        "metadata": {"name": "s"},
        "spec": {"mode": "Slow"},
    });
    let err = api_error(
        foos.patch("s", &PatchParams::apply("other"), &Patch::Apply(&other)).await.unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"), "{err:?}");
    assert_eq!(
        err.message, r#"Apply failed with 1 conflict: conflict with "mgr": .spec.mode"#,
        "{err:?}"
    );
    assert_eq!(foos.get("s").await.expect("get").spec.mode, Mode::Fast);

    // With force the field is taken over.
    let forced = foos
        .patch("s", &PatchParams::apply("other").force(), &Patch::Apply(&other))
        .await
        .expect("forced apply");
    assert_eq!(forced.spec.mode, Mode::Slow);
    assert_eq!(forced.spec.replicas, 2);
    let owners: Vec<(String, String)> = forced
        .managed_fields()
        .iter()
        .map(|m| {
            let fields = m.fields_v1.as_ref().map(|f| f.0.to_string()).unwrap_or_default();
            (m.manager.clone().unwrap_or_default(), fields)
        })
        .collect();
    let mgr = &owners.iter().find(|(m, _)| m == "mgr").expect("mgr still manages").1;
    let oth = &owners.iter().find(|(m, _)| m == "other").expect("other manages").1;
    assert!(!mgr.contains("f:mode") && mgr.contains("f:replicas"), "{owners:?}");
    assert!(oth.contains("f:mode"), "{owners:?}");

    // "mgr" now applying its old value conflicts in turn.
    let err = api_error(foos.patch("s", &ssa, &Patch::Apply(&desired)).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"), "{err:?}");
    assert!(err.message.contains(r#"conflict with "other""#), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_scale_subresources() {
    let server = Server::start();
    let client = client(&server).await;
    install_crd(&client).await;
    let foos: Api<Foo> = Api::namespaced(client.clone(), "default");

    // Status given on create is dropped: it is set through the subresource only.
    let mut initial = foo("st", Mode::Fast, 2);
    initial.status = Some(FooStatus { replicas: Some(7), phase: Some("Ignored".into()) });
    let created = foos.create(&PostParams::default(), &initial).await.expect("create");
    assert_eq!(created.status, None, "{created:?}");

    // patch_status changes the status only, and not the generation.
    let patch = serde_json::json!({
        "spec": {"replicas": 5},
        "status": {"replicas": 1, "phase": "Running"},
    });
    let patched = foos
        .patch_status("st", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch_status");
    assert_eq!(
        patched.status,
        Some(FooStatus { replicas: Some(1), phase: Some("Running".into()) })
    );
    assert_eq!(patched.spec.replicas, 2, "spec untouched by the status subresource");
    assert_eq!(patched.metadata.generation, Some(1));

    // A main-resource update changes the spec but not the status.
    let mut changed = patched.clone();
    changed.spec.replicas = 3;
    changed.status = Some(FooStatus { replicas: Some(99), phase: Some("Bogus".into()) });
    let replaced = foos.replace("st", &PostParams::default(), &changed).await.expect("replace");
    assert_eq!(replaced.spec.replicas, 3);
    assert_eq!(replaced.status, patched.status, "status untouched by the main resource");
    assert_eq!(replaced.metadata.generation, Some(2));
    let merge = serde_json::json!({"status": {"phase": "Bogus"}});
    let merged =
        foos.patch("st", &PatchParams::default(), &Patch::Merge(&merge)).await.expect("patch");
    assert_eq!(merged.status, patched.status);

    // The scale subresource reads .spec.replicas and .status.replicas, and writes the spec.
    let scale = foos.get_scale("st").await.expect("get_scale");
    assert_eq!(scale.spec.as_ref().and_then(|s| s.replicas), Some(3));
    assert_eq!(scale.status.as_ref().map(|s| s.replicas), Some(1));
    let patch = serde_json::json!({"spec": {"replicas": 4}});
    let scaled = foos
        .patch_scale("st", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch_scale");
    assert_eq!(scaled.spec.as_ref().and_then(|s| s.replicas), Some(4));
    let got = foos.get("st").await.expect("get");
    assert_eq!(got.spec.replicas, 4);
    assert_eq!(got.status, patched.status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_watcher_sees_custom_objects_come_and_go() {
    let server = Server::start();
    let client = client(&server).await;
    install_crd(&client).await;
    let foos: Api<Foo> = Api::namespaced(client.clone(), "default");
    foos.create(&PostParams::default(), &foo("before", Mode::Fast, 1)).await.expect("create");

    let mut stream = watcher(foos.clone(), watcher::Config::default()).default_backoff().boxed();
    let mut seen = Vec::new();
    let mut next = async |seen: &mut Vec<(String, String)>| {
        let ev = tokio::time::timeout(TIMEOUT, stream.next())
            .await
            .expect("watch event in time")
            .expect("watch stream open")
            .expect("watch event");
        match ev {
            watcher::Event::Init | watcher::Event::InitDone => {}
            watcher::Event::InitApply(o) => seen.push(("InitApply".into(), o.name_any())),
            watcher::Event::Apply(o) => seen.push(("Apply".into(), o.name_any())),
            watcher::Event::Delete(o) => seen.push(("Delete".into(), o.name_any())),
        }
    };
    while seen.is_empty() {
        next(&mut seen).await;
    }
    assert_eq!(seen, [("InitApply".to_string(), "before".to_string())]);

    foos.create(&PostParams::default(), &foo("after", Mode::Slow, 1)).await.expect("create");
    let patch = serde_json::json!({"spec": {"replicas": 2}});
    foos.patch("after", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patch");
    foos.delete("before", &DeleteParams::default()).await.expect("delete");
    foos.delete("after", &DeleteParams::default()).await.expect("delete");
    while seen.len() < 5 {
        next(&mut seen).await;
    }
    let want: Vec<(String, String)> = [
        ("InitApply", "before"),
        ("Apply", "after"),
        ("Apply", "after"),
        ("Delete", "before"),
        ("Delete", "after"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(seen, want);
}

/// Deleting the CRD deletes its objects (the cleanup finalizer) before the CRD goes: the
/// same CRD created again serves none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_crd_removes_its_objects() {
    let server = Server::start();
    let client = client(&server).await;
    let crds = install_crd(&client).await;
    let foos: Api<Foo> = Api::namespaced(client.clone(), "default");
    for i in 0..3 {
        foos.create(&PostParams::default(), &foo(&format!("d-{i}"), Mode::Fast, 1))
            .await
            .expect("create");
    }
    let all: Api<Foo> = Api::all(client.clone());
    assert_eq!(all.list(&ListParams::default()).await.expect("list").items.len(), 3);

    crds.delete(CRD_NAME, &DeleteParams::default()).await.expect("delete CRD");
    wait_gone(&crds, CRD_NAME).await;

    install_crd(&client).await;
    let again = all.list(&ListParams::default()).await.expect("list after re-creating the CRD");
    assert!(again.items.is_empty(), "{:?}", again.items);
}

/// Once the CRD is gone its type is no longer served: a list of it is 404 (upstream's
/// handler finds no CRD and delegates to NotFound within the informer's latency).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_crd_stops_being_served() {
    let server = Server::start();
    let client = client(&server).await;
    let crds = install_crd(&client).await;
    let foos: Api<Foo> = Api::namespaced(client.clone(), "default");
    foos.create(&PostParams::default(), &foo("d", Mode::Fast, 1)).await.expect("create");

    crds.delete(CRD_NAME, &DeleteParams::default()).await.expect("delete CRD");
    wait_gone(&crds, CRD_NAME).await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match foos.list(&ListParams::default()).await {
            Err(kube::Error::Api(s)) if s.code == 404 => break,
            other => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "foos still served 10 s after the CRD is gone: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let err = api_error(foos.get("d").await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"), "{err:?}");
}
