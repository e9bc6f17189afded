//! Keeps the Node authorizer's graph current from the watch caches (upstream's graph
//! populator): a thread (`kapi-node-graph`) watches the caches of pods,
//! PersistentVolumeClaims, PersistentVolumes, VolumeAttachments and ResourceSlices and
//! applies each event to the graph as it comes: the changed object's edges are read once
//! (`node_refs`) off the graph's lock, then set under it, so an event costs O(that
//! object's references) and requests wait on the lock only for that.
//!
//! A cache is followed once it has loaded: its contents are the first sync. A watch that
//! ends (it fell behind, or the cache re-listed) resumes after the last revision applied;
//! when the cache's window no longer holds that revision, the resource is synced again
//! from the cache's contents (objects gone since are taken out). Until a resource's first
//! sync the graph lacks its relations, and decisions answer "no relationship", as while
//! the caches load; a resource the server does not serve is never followed.

use super::node_graph::{EdgeKey, NodeGraph};
use super::node_refs::{Source, edges_of};
use crate::app::App;
use crate::cache::{Cache, Cached};
use kapi_codec::ResourceType;
use kapi_storage::cache::{CacheEvent, CacheWatch, Start, WatchFilter};
use kapi_storage::{EventKind, Revision, StorageError};
use parking_lot::RwLock;
use std::sync::Arc;
use std::time::Duration;

/// The resources followed, by group, version and plural.
const FOLLOWED: [(&str, &str, &str, Source); 5] = [
    ("", "v1", "pods", Source::Pod),
    ("", "v1", "persistentvolumeclaims", Source::Pvc),
    ("", "v1", "persistentvolumes", Source::Pv),
    ("storage.k8s.io", "v1", "volumeattachments", Source::VolumeAttachment),
    ("resource.k8s.io", "v1", "resourceslices", Source::Slice),
];

/// How long the thread waits for an event before it looks at shutdown and at the
/// resources not followed yet.
const TICK: Duration = Duration::from_millis(100);
/// Changes applied per hold of the graph's lock (a sync of many objects lets requests in
/// between chunks).
const CHUNK: usize = 64;
/// Events taken from one watch per round, so one busy resource cannot starve the others.
const BATCH: usize = 1024;

/// One change to the graph: a source's edges set (or taken out when None).
type Change = (String, Option<Vec<EdgeKey>>);

/// One followed resource.
struct Follow {
    source: Source,
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    /// The storage prefix of its objects (the graph's source keys start with it).
    prefix: String,
    rt: Option<Arc<ResourceType>>,
    cache: Option<Arc<Cache>>,
    watch: Option<CacheWatch<Cached>>,
    /// The revision applied last (None before the first sync).
    applied: Option<Revision>,
}

/// Start the thread that keeps `graph` current for `app`.
pub fn start(app: Arc<App>, graph: Arc<RwLock<NodeGraph>>) -> std::io::Result<()> {
    let follows: Vec<Follow> = FOLLOWED
        .iter()
        .map(|&(group, version, plural, source)| Follow {
            source,
            group,
            version,
            plural,
            prefix: String::new(),
            rt: None,
            cache: None,
            watch: None,
            applied: None,
        })
        .collect();
    std::thread::Builder::new().name("kapi-node-graph".into()).spawn(move || {
        run(&app, &graph, follows);
    })?;
    Ok(())
}

fn run(app: &App, graph: &RwLock<NodeGraph>, mut follows: Vec<Follow>) {
    while !app.is_shutting_down() {
        for f in follows.iter_mut().filter(|f| f.watch.is_none()) {
            f.attach(app);
        }
        round(graph, &mut follows);
    }
}

/// One round: resume the watches not running, wait a [`TICK`] at most for an event, then
/// apply what every watch has ready.
fn round(graph: &RwLock<NodeGraph>, follows: &mut [Follow]) {
    for f in follows.iter_mut().filter(|f| f.watch.is_none()) {
        f.resume(graph);
    }
    let Some((i, event)) = next_event(follows) else { return };
    let mut changes = Vec::new();
    match event {
        Some(e) => follows[i].take(&e, &mut changes),
        None => follows[i].watch = None,
    }
    for f in follows.iter_mut() {
        f.drain(&mut changes);
    }
    apply(graph, changes);
}

/// The first event any followed watch has (None inside: that watch ended), waiting a
/// [`TICK`] at most.
fn next_event(follows: &[Follow]) -> Option<(usize, Option<Arc<CacheEvent<Cached>>>)> {
    let watching: Vec<(usize, &CacheWatch<Cached>)> =
        follows.iter().enumerate().filter_map(|(i, f)| Some((i, f.watch.as_ref()?))).collect();
    if watching.is_empty() {
        std::thread::sleep(TICK);
        return None;
    }
    let mut select = flume::Selector::new();
    for (i, w) in watching {
        select = select.recv(&w.events, move |r| (i, r.ok()));
    }
    select.wait_timeout(TICK).ok()
}

impl Follow {
    /// (Re)start following: resume after the last revision applied when the cache's
    /// window still has it, else sync from the cache's contents. Nothing while the
    /// resource is not served or its cache has not loaded.
    fn resume(&mut self, graph: &RwLock<NodeGraph>) {
        let Some(cache) = self.cache.clone() else { return };
        if !cache.is_loaded() {
            return;
        }
        let filter = WatchFilter { prefix: self.prefix.clone(), exact: false, index: None };
        let resumed = match self.applied {
            Some(rev) => match cache.watch(Start::After(rev), filter.clone()) {
                Err(StorageError::Compacted { .. }) => None,
                other => other.ok(),
            },
            None => None,
        };
        let mut changes = Vec::new();
        let watch = match resumed {
            Some(w) => {
                for e in &w.replay {
                    self.take(e, &mut changes);
                }
                w
            }
            None => match cache.watch(Start::Now, filter) {
                Ok(w) => {
                    self.sync(graph, &w);
                    w
                }
                Err(e) => {
                    tracing::warn!("node authorizer graph: watching {}: {e}", self.plural);
                    return;
                }
            },
        };
        self.applied = Some(self.applied.unwrap_or(0).max(watch.revision));
        self.watch = Some(watch);
        apply(graph, changes);
    }

    /// Find the resource's cache (started if need be), once it is served.
    fn attach(&mut self, app: &App) {
        if self.cache.is_some() {
            return;
        }
        let reg = app.registry();
        let Some(rt) = reg.get(self.group, self.version, self.plural) else { return };
        self.prefix = rt.storage_prefix(app.prefix(), None);
        self.cache = app.caches.get(app, rt);
        self.rt = Some(rt.clone());
    }

    /// Make the graph hold exactly the watch's initial contents: the sources gone since
    /// taken out, then every object's edges set, a [`CHUNK`] at a time (its edges read
    /// just before, so a sync never holds every object's edges at once).
    fn sync(&self, graph: &RwLock<NodeGraph>, w: &CacheWatch<Cached>) {
        let present: std::collections::HashSet<&str> =
            w.initial.iter().map(|e| e.kv.key.as_str()).collect();
        let known = graph.read().sources_under(&self.prefix);
        let gone = known.into_iter().filter(|k| !present.contains(k.as_str()));
        apply(graph, gone.map(|k| (k, None)).collect());
        for chunk in w.initial.chunks(CHUNK) {
            let changes =
                chunk.iter().map(|e| (e.kv.key.clone(), Some(self.edges(&e.data)))).collect();
            apply(graph, changes);
        }
    }

    /// The edges of one object. A pod not bound to a node names none, which its cached
    /// `spec.nodeName` tells without parsing it (the scheduler's churn costs nothing).
    fn edges(&self, data: &Cached) -> Vec<EdgeKey> {
        if self.source == Source::Pod
            && let Some(rt) = &self.rt
            && data.field(rt, "spec.nodeName").is_none_or(|n| n.is_empty())
        {
            return Vec::new();
        }
        edges_of(self.source, &data.obj())
    }

    /// The change `event` makes.
    fn take(&mut self, event: &CacheEvent<Cached>, changes: &mut Vec<Change>) {
        let key = event.cur.kv.key.clone();
        let edges = match event.kind {
            EventKind::Delete => None,
            EventKind::Put => Some(self.edges(&event.cur.data)),
        };
        changes.push((key, edges));
        self.applied = Some(self.applied.unwrap_or(0).max(event.revision));
    }

    /// Take the events the watch has ready (a [`BATCH`] at most); an ended watch is
    /// dropped, to be resumed.
    fn drain(&mut self, changes: &mut Vec<Change>) {
        for _ in 0..BATCH {
            let Some(w) = &self.watch else { return };
            match w.events.try_recv() {
                Ok(e) => self.take(&e, changes),
                Err(flume::TryRecvError::Empty) => return,
                Err(flume::TryRecvError::Disconnected) => self.watch = None,
            }
        }
    }
}

/// Apply `changes` in order, a [`CHUNK`] per hold of the lock.
fn apply(graph: &RwLock<NodeGraph>, changes: Vec<Change>) {
    for chunk in changes.chunks(CHUNK) {
        let mut g = graph.write();
        for (key, edges) in chunk {
            match edges {
                Some(edges) => g.set_source(key, edges),
                None => g.remove_source(key),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::node_graph::VKind;
    use super::super::node_refs::extractions;
    use super::*;
    use bytes::Bytes;
    use futures_executor::block_on;
    use kapi_storage::Precondition;
    use kapi_storage::Store;
    use kapi_storage::cache::{CacheOptions, WatchCache};
    use kapi_storage::embedded::{EmbeddedOptions, EmbeddedStore};
    use serde_json::json;

    /// A pods cache over its own embedded store, with a window of `window` events.
    fn setup(dir: &std::path::Path, window: usize) -> (Arc<dyn Store>, Follow) {
        let opts = EmbeddedOptions { fsync: false, ..Default::default() };
        let store: Arc<dyn Store> = EmbeddedStore::open(dir, opts).unwrap();
        let rt = kapi_codec::registry::Registry::builtin().by_kind("", "v1", "Pod").unwrap();
        let opts = CacheOptions { capacity: window, watcher_buffer: 16, shards: 1 };
        let decode = crate::cache::decode_fn(rt);
        let cache = WatchCache::start(store.clone(), "/registry/pods/", decode, None, opts);
        let follow = Follow {
            source: Source::Pod,
            group: "",
            version: "v1",
            plural: "pods",
            prefix: "/registry/pods/".into(),
            rt: Some(rt.clone()),
            cache: Some(cache.unwrap()),
            watch: None,
            applied: None,
        };
        (store, follow)
    }

    fn create(store: &Arc<dyn Store>, name: &str, node: &str, secret: &str) {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}],
                "volumes": [{"name": "s", "secret": {"secretName": secret}}]}});
        let value = Bytes::from(serde_json::to_vec(&pod).unwrap());
        block_on(store.create(&format!("/registry/pods/ns/{name}"), value)).unwrap();
    }

    fn delete(store: &Arc<dyn Store>, name: &str) {
        let key = format!("/registry/pods/ns/{name}");
        block_on(store.delete(&key, Precondition::None)).unwrap();
    }

    /// Run rounds until `done` holds of the graph (a bounded number of them).
    fn until(graph: &RwLock<NodeGraph>, f: &mut [Follow], done: impl Fn(&NodeGraph) -> bool) {
        for _ in 0..400 {
            round(graph, f);
            if done(&graph.read()) {
                return;
            }
        }
        panic!("the graph did not reach the expected state");
    }

    fn secret_on(g: &NodeGraph, secret: &str, node: &str) -> bool {
        g.reaches(VKind::Secret, "ns", secret, node)
    }

    /// Wait until the cache holds everything written to the store so far.
    fn caught_up(store: &Arc<dyn Store>, f: &Follow) {
        let cache = f.cache.as_ref().unwrap();
        while cache.revision() < store.current_revision() || !cache.is_loaded() {
            std::thread::yield_now();
        }
    }

    /// Regression (issue #17): every decision re-read every pod. Now the graph is fed
    /// from the cache's events: the first sync reads each pod once, and afterwards a pod
    /// event reads that pod only (a delete none), whatever the number of pods.
    #[test]
    fn a_pod_event_reads_that_pod_only() {
        let dir = tempfile::tempdir().unwrap();
        let (store, follow) = setup(dir.path(), 1000);
        for i in 0..100 {
            create(&store, &format!("p-{i}"), &format!("n{}", i % 10), &format!("s-{i}"));
        }
        caught_up(&store, &follow);
        let graph = RwLock::new(NodeGraph::default());
        let mut f = [follow];
        let before = extractions();
        until(&graph, &mut f, |g| g.source_count() == 100);
        assert_eq!(extractions() - before, 100, "the first sync reads each pod once");
        assert!(secret_on(&graph.read(), "s-13", "n3"));
        let before = extractions();
        create(&store, "new", "n1", "fresh");
        until(&graph, &mut f, |g| secret_on(g, "fresh", "n1"));
        assert_eq!(extractions() - before, 1, "one event, one pod read");
        delete(&store, "p-13");
        until(&graph, &mut f, |g| !secret_on(g, "s-13", "n3"));
        assert_eq!(extractions() - before, 1, "a delete reads nothing");
        assert!(secret_on(&graph.read(), "s-23", "n3"), "the other pods stay");
    }

    #[test]
    fn an_ended_watch_resumes_from_its_revision_or_syncs_again() {
        let dir = tempfile::tempdir().unwrap();
        let (store, follow) = setup(dir.path(), 4);
        create(&store, "a", "n1", "sa");
        create(&store, "b", "n2", "sb");
        caught_up(&store, &follow);
        let graph = RwLock::new(NodeGraph::default());
        let mut f = [follow];
        until(&graph, &mut f, |g| g.source_count() == 2);
        // The watch ended (as when it falls behind); one change since: replayed.
        f[0].watch = None;
        create(&store, "c", "n1", "sc");
        caught_up(&store, &f[0]);
        let before = extractions();
        until(&graph, &mut f, |g| secret_on(g, "sc", "n1"));
        assert_eq!(extractions() - before, 1, "resumed: only the change read");
        // Ended again, and more changes since than the window holds: synced again.
        f[0].watch = None;
        delete(&store, "a");
        for i in 0..6 {
            create(&store, &format!("d-{i}"), "n3", &format!("sd-{i}"));
        }
        caught_up(&store, &f[0]);
        until(&graph, &mut f, |g| secret_on(g, "sd-5", "n3"));
        let g = graph.read();
        assert!(!secret_on(&g, "sa", "n1"), "a pod deleted while not followed is gone");
        assert!(secret_on(&g, "sb", "n2") && secret_on(&g, "sc", "n1"));
        assert_eq!(g.source_count(), 8);
    }
}
