//! kube-rs (kube 5, k8s-openapi v1_35) against the real kapi binary: typed CRUD,
//! paginated lists, optimistic concurrency, and a watcher that survives a server restart.

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, PodStatus};
use kapi_e2e::Server;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, VersionMatch, WatchEvent,
    WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config};
use std::collections::BTreeMap;
use std::time::Duration;

async fn client(server: &Server) -> Client {
    let kc = Kubeconfig::read_from(server.kubeconfig()).expect("kubeconfig");
    let config =
        Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.expect("config");
    Client::try_from(config).expect("client")
}

fn configmap(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: kube::api::ObjectMeta { name: Some(name.into()), ..Default::default() },
        data: Some(BTreeMap::from([("k".to_string(), value.to_string())])),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_crud_and_conflicts() {
    let server = Server::start();
    let client = client(&server).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let default = namespaces.get("default").await.expect("default namespace");
    assert_eq!(default.status.and_then(|s| s.phase).as_deref(), Some("Active"));

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let created = cms.create(&PostParams::default(), &configmap("one", "a")).await.expect("create");
    let meta = &created.metadata;
    assert!(meta.uid.is_some() && meta.creation_timestamp.is_some());
    let rv: u64 = meta.resource_version.as_deref().unwrap().parse().unwrap();
    assert!(rv > 1);

    let dup = cms.create(&PostParams::default(), &configmap("one", "a")).await.unwrap_err();
    assert!(
        matches!(dup, kube::Error::Api(ref s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{dup:?}"
    );

    let mut changed = created.clone();
    changed.data = Some(BTreeMap::from([("k".to_string(), "b".to_string())]));
    let updated = cms.replace("one", &PostParams::default(), &changed).await.expect("replace");
    assert_eq!(updated.data.unwrap()["k"], "b");
    // The stale resourceVersion now conflicts.
    let stale = cms.replace("one", &PostParams::default(), &changed).await.unwrap_err();
    assert!(
        matches!(stale, kube::Error::Api(ref s) if s.code == 409 && s.reason == "Conflict"),
        "{stale:?}"
    );

    cms.delete("one", &DeleteParams::default()).await.expect("delete");
    let gone = cms.get("one").await.unwrap_err();
    assert!(
        matches!(gone, kube::Error::Api(ref s) if s.code == 404 && s.reason == "NotFound"),
        "{gone:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paginated_list_sees_every_item_once() {
    let server = Server::start();
    let client = client(&server).await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    for i in 0..25 {
        cms.create(&PostParams::default(), &configmap(&format!("cm-{i:02}"), "v"))
            .await
            .expect("create");
    }
    let mut names = Vec::new();
    let mut params = ListParams::default().limit(7);
    let mut pages = 0;
    let mut snapshot_rv = None;
    loop {
        let page = cms.list(&params).await.expect("list");
        pages += 1;
        names.extend(page.items.iter().filter_map(|c| c.metadata.name.clone()));
        // Counted on the first page, carried by the token to the next ones.
        let left = [Some(18), Some(11), Some(4), None][pages - 1];
        assert_eq!(page.metadata.remaining_item_count, left, "page {pages}");
        if pages == 1 {
            snapshot_rv = page.metadata.resource_version.clone();
            // Changes after the first page do not show in the later pages: every page
            // reads the snapshot of the first one.
            cms.delete("cm-20", &Default::default()).await.expect("delete");
            cms.create(&PostParams::default(), &configmap("cm-99", "v")).await.expect("create");
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    let expected: Vec<String> = (0..25).map(|i| format!("cm-{i:02}")).collect();
    assert_eq!(names, expected);
    // An Exact read of the snapshot's revision still sees it; a fresh list sees the change.
    let rv = snapshot_rv.expect("list resourceVersion");
    let exact = cms
        .list(&ListParams::default().at(&rv).matching(VersionMatch::Exact))
        .await
        .expect("exact list");
    let exact: Vec<String> = exact.items.into_iter().filter_map(|c| c.metadata.name).collect();
    assert_eq!(exact, expected);
    let now = cms.list(&ListParams::default()).await.expect("list");
    let now: Vec<String> = now.items.into_iter().filter_map(|c| c.metadata.name).collect();
    assert!(now.contains(&"cm-99".to_string()) && !now.contains(&"cm-20".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_survives_a_server_restart() {
    let mut server = Server::start();
    let cms: Api<ConfigMap> = Api::namespaced(client(&server).await, "default");
    let mut stream = watcher(cms.clone(), watcher::Config::default()).default_backoff().boxed();
    cms.create(&PostParams::default(), &configmap("before", "1")).await.expect("create");
    let saw = |name: &'static str| {
        move |ev: &watcher::Event<ConfigMap>| match ev {
            watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                o.metadata.name.as_deref() == Some(name)
            }
            _ => false,
        }
    };
    wait_for(&mut stream, saw("before")).await;

    server.restart();
    let cms2: Api<ConfigMap> = Api::namespaced(client(&server).await, "default");
    cms2.create(&PostParams::default(), &configmap("after", "2"))
        .await
        .expect("create after restart");
    wait_for(&mut stream, saw("after")).await;
}

/// A kube-rs reflector (watcher + store, as controllers cache objects) holds exactly the
/// server's objects across a server restart: the watch it had resumes or re-lists (the
/// restarted cache answers an old resourceVersion with 410) and changes made after the
/// restart reach the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_matches_the_server_across_a_restart() {
    use kube::runtime::reflector;
    let mut server = Server::start();
    let cms: Api<ConfigMap> = Api::namespaced(client(&server).await, "default");
    for i in 0..5 {
        cms.create(&PostParams::default(), &configmap(&format!("r-{i}"), "1")).await.unwrap();
    }
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(cms.clone(), watcher::Config::default()).default_backoff(),
    );
    let task = tokio::spawn(stream.for_each(|_| async {}));
    reader.wait_until_ready().await.expect("reflector ready");
    let cached = |reader: &reflector::Store<ConfigMap>| {
        let mut v: Vec<(String, String)> = reader
            .state()
            .iter()
            .map(|c| {
                let data = c.data.as_ref().and_then(|d| d.get("v")).cloned().unwrap_or_default();
                (c.metadata.name.clone().unwrap_or_default(), data)
            })
            .collect();
        v.sort();
        v
    };
    async fn listed(cms: &Api<ConfigMap>) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = cms
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .into_iter()
            .map(|c| {
                let data = c.data.as_ref().and_then(|d| d.get("v")).cloned().unwrap_or_default();
                (c.metadata.name.unwrap_or_default(), data)
            })
            .collect();
        v.sort();
        v
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while cached(&reader) != listed(&cms).await {
        assert!(tokio::time::Instant::now() < deadline, "reflector never caught up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.restart();
    let cms: Api<ConfigMap> = Api::namespaced(client(&server).await, "default");
    cms.delete("r-0", &DeleteParams::default()).await.expect("delete");
    let patch = serde_json::json!({"data": {"v": "2"}});
    cms.patch("r-1", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patch");
    cms.create(&PostParams::default(), &configmap("r-9", "1")).await.expect("create");
    let want = listed(&cms).await;
    assert!(want.contains(&("r-1".into(), "2".into())) && !want.iter().any(|(n, _)| n == "r-0"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while cached(&reader) != want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "reflector {:?} != server {want:?}",
            cached(&reader)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    task.abort();
}

async fn wait_for<S>(stream: &mut S, mut pred: impl FnMut(&watcher::Event<ConfigMap>) -> bool)
where
    S: futures_util::Stream<Item = Result<watcher::Event<ConfigMap>, watcher::Error>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let next =
            tokio::time::timeout_at(deadline, stream.next()).await.expect("watch event in time");
        match next {
            Some(Ok(ev)) if pred(&ev) => return,
            Some(_) => continue,
            None => panic!("watch stream ended"),
        }
    }
}

/// The next `n` events of a watch other than bookmarks, as (type, name); 10 s each at
/// most, and an error or the end of the watch fails the test.
async fn next_events<K: kube::Resource + std::fmt::Debug>(
    events: &mut (impl futures_util::Stream<Item = kube::Result<WatchEvent<K>>> + Unpin),
    n: usize,
) -> Vec<(&'static str, Option<String>)> {
    let mut seen = Vec::new();
    while seen.len() < n {
        let (kind, obj) = match tokio::time::timeout(Duration::from_secs(10), events.next()).await {
            Ok(Some(Ok(WatchEvent::Added(o)))) => ("ADDED", o),
            Ok(Some(Ok(WatchEvent::Modified(o)))) => ("MODIFIED", o),
            Ok(Some(Ok(WatchEvent::Deleted(o)))) => ("DELETED", o),
            Ok(Some(Ok(WatchEvent::Bookmark(_)))) => continue,
            other => panic!("unexpected {other:?} after {seen:?}"),
        };
        seen.push((kind, obj.meta().name.clone()));
    }
    seen
}

fn pod(name: &str, node: Option<&str>) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"app": "k"}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
    }))
    .expect("pod")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_subresource_graceful_delete_and_collections() {
    let server = Server::start();
    let client = client(&server).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    // generateName.
    let mut generated = pod("", None);
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let made = pods.create(&PostParams::default(), &generated).await.expect("generateName");
    let name = made.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    // The main resource ignores status; the status subresource ignores the rest.
    let mut p = pods.create(&PostParams::default(), &pod("p", Some("node-1"))).await.unwrap();
    p.status = Some(PodStatus { phase: Some("Running".into()), ..Default::default() });
    let replaced = pods.replace("p", &PostParams::default(), &p).await.unwrap();
    assert_eq!(replaced.status.unwrap().phase.as_deref(), Some("Pending"));
    let status =
        serde_json::json!({"status": {"phase": "Running"}, "metadata": {"labels": {"x": "y"}}});
    let patched =
        pods.patch_status("p", &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
    assert_eq!(patched.status.unwrap().phase.as_deref(), Some("Running"));
    assert!(!patched.metadata.labels.unwrap_or_default().contains_key("x"));

    // A scheduled pod is deleted gracefully: marked first, gone after grace 0.
    pods.delete("p", &DeleteParams::default()).await.expect("graceful delete");
    let marked = pods.get("p").await.expect("still there while terminating");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(30));
    pods.delete("p", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() })
        .await
        .expect("forced delete");
    assert!(pods.get_opt("p").await.unwrap().is_none());

    // deletecollection with a label selector.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..6 {
        let mut cm = configmap(&format!("col-{i}"), "v");
        cm.metadata.labels = Some(BTreeMap::from([("half".into(), (i % 2).to_string())]));
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    cms.delete_collection(&DeleteParams::default(), &ListParams::default().labels("half=1"))
        .await
        .expect("deletecollection");
    let left: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(left, ["col-0", "col-2", "col-4"]);

    // A watch from a resourceVersion ends at timeoutSeconds and sends bookmarks when asked.
    let rv = cms.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    let started = std::time::Instant::now();
    let wp = WatchParams { bookmarks: true, ..WatchParams::default().timeout(2) };
    let mut events = cms.watch(&wp, &rv).await.expect("watch").boxed();
    cms.create(&PostParams::default(), &configmap("seen", "v")).await.unwrap();
    let mut added = false;
    while let Some(ev) = events.next().await {
        if let WatchEvent::Added(cm) = ev.expect("event") {
            added |= cm.metadata.name.as_deref() == Some("seen");
        }
    }
    assert!(added, "the watch delivered the create after its resourceVersion");
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(15), "{took:?}");
}

/// kube-rs' streaming lists (sendInitialEvents) and a kubelet-style watch of one node's
/// pods, served from the watch cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_list_watcher_and_node_scoped_pod_watch() {
    let server = Server::start();
    let client = client(&server).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for (name, node) in [("a", "node-1"), ("b", "node-2"), ("c", "node-1")] {
        pods.create(&PostParams::default(), &pod(name, Some(node))).await.unwrap();
    }
    let cfg = watcher::Config::default().streaming_lists().fields("spec.nodeName=node-1");
    let mut stream = watcher(pods.clone(), cfg).boxed();
    let mut initial = Vec::new();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("event in time")
            .expect("stream open")
            .expect("no error");
        match ev {
            watcher::Event::InitApply(p) => initial.push(p.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    initial.sort();
    assert_eq!(initial, ["a", "c"], "only node-1's pods, then the initial-events-end bookmark");
    pods.create(&PostParams::default(), &pod("d", Some("node-2"))).await.unwrap();
    pods.create(&PostParams::default(), &pod("e", Some("node-1"))).await.unwrap();
    let next = loop {
        match tokio::time::timeout(Duration::from_secs(30), stream.next()).await.unwrap() {
            Some(Ok(watcher::Event::Apply(p))) => break p.metadata.name.unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(next, "e", "node-2's pod is not delivered to node-1's watch");
}

/// The metadata API (PartialObjectMetadata) for get, list and watch, as garbage
/// collectors and kube-rs' metadata watchers use it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_api_get_list_and_watch() {
    let server = Server::start();
    let cms: Api<ConfigMap> = Api::namespaced(client(&server).await, "default");
    let mut cm = configmap("meta", "v");
    cm.metadata.labels = Some(BTreeMap::from([("k".to_string(), "v".to_string())]));
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let got = cms.get_metadata("meta").await.expect("get_metadata");
    assert_eq!(got.metadata.labels.unwrap()["k"], "v");
    assert_eq!(got.types.unwrap().kind, "PartialObjectMetadata");
    let list = cms.list_metadata(&ListParams::default()).await.expect("list_metadata");
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].metadata.name.as_deref(), Some("meta"));
    let metas: Api<kube::api::PartialObjectMeta<ConfigMap>> =
        Api::namespaced(client(&server).await, "default");
    let mut stream = watcher(metas, watcher::Config::default()).boxed();
    cms.create(&PostParams::default(), &configmap("later", "v")).await.unwrap();
    let mut seen = Vec::new();
    while !seen.iter().any(|n| n == "later") {
        let ev = tokio::time::timeout(Duration::from_secs(30), stream.next()).await.unwrap();
        match ev {
            Some(Ok(watcher::Event::Apply(m) | watcher::Event::InitApply(m))) => {
                seen.push(m.metadata.name.unwrap_or_default())
            }
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
}

/// kube-rs server-side apply: create, update, and a conflict with another manager
/// answered with 409 and FieldManagerConflict causes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_with_kube_rs() {
    let server = Server::start();
    let cms: Api<ConfigMap> = Api::namespaced(client(&server).await, "default");
    let doc = |v: &str| serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"k": v}});
    let alice = PatchParams::apply("alice");
    let made = cms.patch("ssa", &alice, &Patch::Apply(doc("1"))).await.expect("apply creates");
    assert_eq!(made.data.unwrap()["k"], "1");
    let again = cms.patch("ssa", &alice, &Patch::Apply(doc("2"))).await.expect("apply updates");
    assert_eq!(again.data.unwrap()["k"], "2");
    let bob = PatchParams::apply("bob");
    let err = cms.patch("ssa", &bob, &Patch::Apply(doc("3"))).await.unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
            assert!(s.message.contains("conflict with \"alice\""), "{}", s.message);
        }
        other => panic!("{other:?}"),
    }
    let forced = cms.patch("ssa", &bob.force(), &Patch::Apply(doc("3"))).await.expect("forced");
    assert_eq!(forced.data.unwrap()["k"], "3");
    let mf = forced.metadata.managed_fields.unwrap();
    let bob_entry = mf.iter().find(|e| e.manager.as_deref() == Some("bob")).unwrap();
    assert_eq!(bob_entry.operation.as_deref(), Some("Apply"));

    // The applied configuration must name the endpoint's version (upstream: 400).
    let mut old_version = doc("4");
    old_version["apiVersion"] = serde_json::json!("v2");
    match cms
        .patch("ssa", &PatchParams::apply("bob"), &Patch::Apply(old_version))
        .await
        .unwrap_err()
    {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));
            assert_eq!(
                s.message,
                "Incorrect version specified in apply patch. Specified patch version: v2, expected: v1"
            );
        }
        other => panic!("{other:?}"),
    }
    // An applied configuration may not carry managedFields (upstream: 400).
    let mut with_fields = doc("4");
    with_fields["metadata"]["managedFields"] = serde_json::json!([]);
    match cms
        .patch("ssa", &PatchParams::apply("bob"), &Patch::Apply(with_fields))
        .await
        .unwrap_err()
    {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));
            assert_eq!(s.message, "metadata.managedFields must be nil");
        }
        other => panic!("{other:?}"),
    }
}

/// kube-rs JSON patch, merge patch and strategic merge patch on a Deployment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_merge_and_strategic_patches() {
    use k8s_openapi::api::apps::v1::Deployment;
    let server = Server::start();
    let deps: Api<Deployment> = Api::namespaced(client(&server).await, "default");
    let d: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "p"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "p"}},
            "template": {"metadata": {"labels": {"app": "p"}},
                "spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}}}
    }))
    .unwrap();
    deps.create(&PostParams::default(), &d).await.unwrap();
    let pp = PatchParams::default();
    let strategic = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "b:2"}]}}}});
    let out = deps.patch("p", &pp, &Patch::Strategic(strategic)).await.expect("strategic");
    let images: Vec<String> = out
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .map(|c| c.image.clone().unwrap())
        .collect();
    assert_eq!(images, ["a:1", "b:2"], "strategic merge keeps the other container");
    let merge = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "c:1"}]}}}});
    let out = deps.patch("p", &pp, &Patch::Merge(merge)).await.expect("merge");
    assert_eq!(
        out.spec.unwrap().template.spec.unwrap().containers.len(),
        1,
        "merge patch replaces lists"
    );
    let ops: json_patch::Patch = serde_json::from_value(serde_json::json!([
        {"op": "replace", "path": "/spec/replicas", "value": 4},
        {"op": "test", "path": "/metadata/name", "value": "p"}
    ]))
    .unwrap();
    let out = deps.patch("p", &pp, &Patch::<()>::Json(ops)).await.expect("json patch");
    assert_eq!(out.spec.unwrap().replicas, Some(4));
    let failing: json_patch::Patch = serde_json::from_value(
        serde_json::json!([{"op": "test", "path": "/spec/replicas", "value": 9}]),
    )
    .unwrap();
    let err = deps.patch("p", &pp, &Patch::<()>::Json(failing)).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 422), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_of_one_name_sees_only_that_object() {
    let server = Server::start();
    let cms: Api<ConfigMap> = Api::namespaced(client(&server).await, "default");
    for name in ["one", "one-more", "other"] {
        cms.create(&PostParams::default(), &configmap(name, "1")).await.expect("create");
    }
    let rv = cms.list(&ListParams::default()).await.expect("list").metadata.resource_version;
    let params = WatchParams::default().fields("metadata.name=one").timeout(10);
    let mut events = cms.watch(&params, &rv.expect("rv")).await.expect("watch").boxed();
    for name in ["one-more", "other", "one"] {
        let patch = serde_json::json!({"data": {"v": "2"}});
        cms.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patch");
    }
    cms.delete("one", &DeleteParams::default()).await.expect("delete");
    let seen = next_events(&mut events, 2).await;
    let one = Some("one".to_string());
    assert_eq!(seen, vec![("MODIFIED", one.clone()), ("DELETED", one)]);
}

/// Regression: the pod index keyed pods by `spec.nodeName` only when set, so a
/// scheduler's watch of unscheduled pods (`spec.nodeName=`) never saw a pod created
/// without a node. Unscheduled pods are indexed under "" as upstream renders the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_watch_of_unscheduled_pods_sees_them_come_and_go() {
    let server = Server::start();
    let pods: Api<Pod> = Api::namespaced(client(&server).await, "default");
    let rv = pods.list(&ListParams::default()).await.expect("list").metadata.resource_version;
    let params = WatchParams::default().fields("spec.nodeName=").timeout(10);
    let mut events = pods.watch(&params, &rv.expect("rv")).await.expect("watch").boxed();
    pods.create(&PostParams::default(), &pod("pending", None)).await.expect("create");
    pods.create(&PostParams::default(), &pod("placed", Some("n1"))).await.expect("create");
    // The scheduler binds it: it leaves the selector (DELETED for this watch).
    let binding = serde_json::json!({
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "pending"},
        "target": {"kind": "Node", "name": "n2"},
    });
    let _: serde_json::Value = pods
        .create_subresource("binding", "pending", &PostParams::default(), &binding)
        .await
        .expect("bind");
    let seen = next_events(&mut events, 2).await;
    let pending = Some("pending".to_string());
    assert_eq!(seen, vec![("ADDED", pending.clone()), ("DELETED", pending)]);
}

/// Regression: a kube-rs streaming list (sendInitialEvents with resourceVersion "0")
/// started right after a create missed the new pod, because the sharded pods cache had
/// not applied it yet (CI saw ["a"] where ["a", "c"] were created). Reads with
/// resourceVersion "0" now let the cache catch up with writes this server already made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_version_0_read_right_after_a_write_sees_it() {
    let server = Server::start();
    let client = client(&server).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let any = ListParams::default().match_any();
    // Other writers keep the pods cache's pipeline busy.
    let busy: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let busy = busy.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let p = pod(&format!("bg-{w}-{i}"), Some("node-2"));
                    if busy.create(&PostParams::default(), &p).await.is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    for i in 0..15 {
        let name = format!("p{i}");
        pods.create(&PostParams::default(), &pod(&name, Some("node-1"))).await.unwrap();
        let listed = pods.list(&any).await.expect("list rv=0");
        assert!(
            listed.items.iter().any(|p| p.metadata.name.as_deref() == Some(name.as_str())),
            "a resourceVersion=0 list right after creating {name} lists it"
        );
        let wp = WatchParams::streaming_lists().timeout(5);
        let mut events = pods.watch(&wp, "0").await.expect("streaming watch").boxed();
        let mut seen = false;
        while let Some(ev) = events.next().await {
            match ev.expect("event") {
                WatchEvent::Added(p) => seen |= p.metadata.name.as_deref() == Some(name.as_str()),
                WatchEvent::Bookmark(_) => break,
                _ => {}
            }
        }
        assert!(seen, "the initial events of a streaming watch right after creating {name}");
    }
    writers.iter().for_each(|w| w.abort());
}
