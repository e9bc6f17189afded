//! WATCH, served from the watch cache: initial ADDED events for the current state when
//! resourceVersion is unset or "0" (or with `sendInitialEvents=true`, ended by the
//! `k8s.io/initial-events-end` bookmark), then the cache's events after that revision,
//! filtered by selectors (an object that stops matching is sent as DELETED, one that
//! starts matching as ADDED), optional bookmarks, `timeoutSeconds`, and 410 Expired as an
//! ERROR event for a revision older than the cache's window.
//!
//! Events come through this core's fan-out hub (`crate::cache::hub`). A producer task on
//! this core writes frames (a cached object's as a head, the shared encoding and a
//! tail: no copy per watcher, `super::encoded::watch_frame`) into a byte-bounded pipe that backs the response body
//! (`crate::server::pipe`, [`PIPE_BYTES`]); a client that stops reading stalls the
//! producer. A watch whose pipe stays full for `--write-stall-timeout` is ended and its
//! connection closed (its queued frames dropped, its hub watcher removed; the client
//! resumes or re-lists, as upstream's cacher ends a watcher whose channel stays full); one
//! whose hub buffer fills first (the producer fell behind) is ended by the hub, its
//! response finished cleanly.
//!
//! A watch without `timeoutSeconds` (or with 0) lasts a random duration between
//! `--min-request-timeout` and twice that, as upstream's.

use super::fields::Selectors;
use super::{Scope, table};
use crate::body::{Chunk, Response, ResponseBody};
use crate::cache::{self, Cache, Cached};
use crate::negotiation::Output;
use crate::server::current::Closer;
use crate::server::pipe::{self, PipeSender};
use crate::status::ApiError;
use futures_util::StreamExt;
use kapi_codec::ResourceType;
use kapi_storage::cache::hub::HubWatch;
use kapi_storage::cache::{CacheEntry, CacheEvent, Start, WatchFilter};
use kapi_storage::{EventKind, Revision, StorageError};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BOOKMARK_EVERY: Duration = Duration::from_secs(60);
/// Frame bytes a watch queues for its response body before its producer waits.
pub const PIPE_BYTES: usize = 32 * 1024;

/// What the producer needs, owned.
struct Producer {
    rt: Arc<ResourceType>,
    /// `rt`'s apiVersion, computed once per watch.
    api_version: String,
    cache: Arc<Cache>,
    selectors: Selectors,
    output: Output,
    include: String,
    bookmarks: bool,
    initial_events_end: bool,
    /// Whether the watch starts from the cache's current contents (`Start::Now`).
    snapshot: bool,
    deadline: Instant,
    shutdown: flume::Receiver<()>,
    tx: Option<PipeSender>,
    /// How long a frame may wait for room in the pipe before the watch is ended.
    stall: Duration,
    /// Closes the watch's connection (a client that stopped reading).
    closer: Option<Closer>,
    headers_sent: bool,
    last_rv: Revision,
}

/// How long the watch lasts: `timeoutSeconds`, else (or when 0) a random duration in
/// [min, 2*min) of `--min-request-timeout`.
fn timeout(scope: &Scope<'_>) -> Result<Duration, ApiError> {
    let asked = match scope.param("timeoutSeconds") {
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| ApiError::BadRequest(format!("invalid timeoutSeconds: {v}")))?,
        None => 0,
    };
    Ok(match asked {
        0 => random_timeout(Duration::from_secs(scope.app.options.min_request_timeout)),
        n => Duration::from_secs(n),
    })
}

/// Longest watch duration kapi keeps a deadline for; longer ones (any u64
/// `timeoutSeconds`, any flag) are this, so no deadline overflows.
const LONGEST: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A random duration in [min, 2*min).
fn random_timeout(min: Duration) -> Duration {
    min.min(LONGEST).mul_f64(1.0 + rand::random::<f64>())
}

/// The instant `d` from now.
fn deadline_after(d: Duration) -> Instant {
    Instant::now() + d.min(LONGEST)
}

fn flag(scope: &Scope<'_>, name: &str) -> Option<bool> {
    scope.param(name).map(|v| matches!(v, "true" | "1"))
}

/// Where the watch starts, after upstream's validation of the parameters.
async fn start_point(
    scope: &Scope<'_>,
    bookmarks: bool,
) -> Result<(Start, Revision, bool), ApiError> {
    let rv = scope.param("resourceVersion").filter(|v| !v.is_empty());
    let initial = flag(scope, "sendInitialEvents");
    let rv_match = scope.param("resourceVersionMatch");
    match (initial, rv_match) {
        (Some(_), Some("NotOlderThan")) => {}
        (Some(_), _) => {
            return Err(ApiError::Invalid(
                Default::default(),
                vec![kapi_codec::FieldError::invalid(
                    "resourceVersionMatch",
                    &json!(rv_match.unwrap_or("")),
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                )],
            ));
        }
        (None, Some(_)) => {
            return Err(ApiError::BadRequest(
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
                    .into(),
            ));
        }
        (None, None) => {}
    }
    if initial == Some(true) && !bookmarks {
        return Err(ApiError::BadRequest(
            "sendInitialEvents requires allowWatchBookmarks=true".into(),
        ));
    }
    let need = cache::required_revision(scope.app, rv).await?;
    Ok(match (initial, rv) {
        (Some(true), _) => (Start::Now, need, true),
        (Some(false), Some("0") | None) => {
            (Start::After(scope.app.store.current_revision()), need, false)
        }
        (_, None | Some("0")) => (Start::Now, need, false),
        (_, Some(_)) => (Start::After(need), need, false),
    })
}

pub async fn watch(scope: &Scope<'_>) -> Result<Response, ApiError> {
    if scope.app.is_shutting_down() {
        return Err(ApiError::ServiceUnavailable("apiserver is shutting down".into()));
    }
    let selectors =
        Selectors::parse(&scope.rt, scope.param("labelSelector"), scope.param("fieldSelector"))?;
    let cache =
        scope.app.caches.get(scope.app, &scope.rt).ok_or_else(|| {
            ApiError::ServiceUnavailable("the watch cache is not available".into())
        })?;
    let bookmarks = flag(scope, "allowWatchBookmarks").unwrap_or(false);
    let (start, need, initial_events_end) = start_point(scope, bookmarks).await?;
    if !cache::wait_for(&cache, need).await {
        return Err(cache::too_large(&cache, need));
    }
    if start == Start::Now && scope.param("resourceVersion") == Some("0") {
        cache::settle(scope.app, &cache).await;
    }
    let index = cache::is_pods(&scope.rt)
        .then(|| selectors.fields.required_value("spec.nodeName").map(String::from))
        .flatten();
    let filter = watch_filter(scope, &selectors, index);
    let watch = cache::hub(&cache).watch(start, filter);
    let (tx, rx) = pipe::pipe(PIPE_BYTES);
    let producer = Producer {
        rt: scope.rt.clone(),
        api_version: scope.rt.api_version(),
        cache,
        selectors,
        output: scope.output,
        include: scope.info.param("includeObject").unwrap_or("Metadata").to_string(),
        bookmarks,
        initial_events_end,
        snapshot: start == Start::Now,
        deadline: deadline_after(timeout(scope)?),
        shutdown: scope.app.shutdown.clone(),
        tx: Some(tx),
        stall: scope.app.options.write_stall_timeout.min(LONGEST),
        closer: crate::server::current::closer(),
        headers_sent: false,
        last_rv: need,
    };
    monoio::spawn(producer.run(watch));
    let content_type = match scope.output {
        Output::Table => "application/json;as=Table;v=v1;g=meta.k8s.io",
        Output::Protobuf | Output::MetadataProtobuf => {
            "application/vnd.kubernetes.protobuf;stream=watch"
        }
        _ => "application/json",
    };
    let body = ResponseBody::Stream(rx.boxed_local());
    http::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CACHE_CONTROL, "no-cache, private")
        .body(body)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Which cache events the watch may want: one object's key when the field selector
/// names it (`kubectl get pod NAME -w`, informers of one object), else the namespace's or
/// the resource's prefix; pods also by the `spec.nodeName` the selector requires.
fn watch_filter(scope: &Scope<'_>, selectors: &Selectors, index: Option<String>) -> WatchFilter {
    let name = selectors.fields.required_value("metadata.name").filter(|n| !n.is_empty());
    let one_key = !scope.rt.namespaced || scope.namespace.is_some();
    match name {
        Some(n) if one_key => WatchFilter { prefix: scope.key(n), exact: true, index },
        _ => WatchFilter { prefix: scope.list_prefix(), exact: false, index },
    }
}

impl Producer {
    async fn run(mut self, watch: Result<HubWatch<Cached>, StorageError>) {
        let watch = match watch {
            Ok(w) => w,
            Err(e) => {
                self.send_error(e).await;
                return;
            }
        };
        if self.snapshot {
            // The initial state is the cache at `watch.revision`; resuming watches keep
            // their revision so the window's later events are replayed.
            self.last_rv = watch.revision;
        }
        if !self.initial(&watch.initial).await {
            return;
        }
        for ev in &watch.replay {
            if !self.event(ev).await {
                return;
            }
        }
        self.pump(watch).await;
    }

    async fn initial(&mut self, entries: &[Arc<CacheEntry<Cached>>]) -> bool {
        for e in entries {
            if self.selectors.matches_cached(&self.rt, &e.data)
                && !self.send_cached("ADDED", &e.data).await
            {
                return false;
            }
        }
        if self.initial_events_end {
            return self.bookmark_with(json!({"k8s.io/initial-events-end": "true"})).await;
        }
        true
    }

    async fn pump(&mut self, watch: HubWatch<Cached>) {
        let mut next_bookmark = Instant::now() + BOOKMARK_EVERY;
        loop {
            let now = Instant::now();
            let wake =
                if self.bookmarks { next_bookmark.min(self.deadline) } else { self.deadline };
            let sleep = monoio::time::sleep(wake.saturating_duration_since(now));
            monoio::select! {
                ev = watch.next() => match ev {
                    Some(ev) => {
                        if !self.event(&ev).await {
                            return;
                        }
                    }
                    None => return,
                },
                _ = sleep => {
                    if Instant::now() >= self.deadline {
                        return;
                    }
                    next_bookmark = Instant::now() + BOOKMARK_EVERY;
                    if watch.is_empty() {
                        self.last_rv = self.last_rv.max(self.cache.revision());
                    }
                    if !self.bookmark().await {
                        return;
                    }
                },
                _ = self.shutdown.recv_async() => return,
            }
        }
    }

    /// Classify a cache event against the selectors and send it; false when the client
    /// is gone.
    async fn event(&mut self, ev: &CacheEvent<Cached>) -> bool {
        if ev.revision <= self.last_rv {
            return true;
        }
        self.last_rv = ev.revision;
        let now = self.selectors.matches_cached(&self.rt, &ev.cur.data);
        let kind = match ev.kind {
            EventKind::Delete => now.then_some("DELETED"),
            EventKind::Put => {
                let before = match &ev.prev {
                    None => false,
                    Some(_) if self.selectors.is_everything() => true,
                    Some(p) => self.selectors.matches_cached(&self.rt, &p.data),
                };
                match (before, now) {
                    (false, true) => Some("ADDED"),
                    (true, true) => Some("MODIFIED"),
                    (true, false) => Some("DELETED"),
                    (false, false) => None,
                }
            }
        };
        match kind {
            Some(k) => self.send_cached(k, &ev.cur.data).await,
            None => true,
        }
    }

    /// Send an object from the cache: its shared encoding framed for JSON and protobuf,
    /// the object tree for every other view.
    async fn send_cached(&mut self, kind: &str, cached: &Cached) -> bool {
        let (rt, av) = (&*self.rt, self.api_version.as_str());
        match super::encoded::watch_frame(rt, av, kind, cached, self.output) {
            Some(frame) => self.send_frame(kind, frame).await,
            None => self.send(kind, crate::twin::obj(rt, cached)).await,
        }
    }

    async fn bookmark(&mut self) -> bool {
        self.bookmark_with(Value::Null).await
    }

    async fn bookmark_with(&mut self, annotations: Value) -> bool {
        let mut obj = json!({
            "kind": self.rt.kind,
            "apiVersion": self.api_version,
            "metadata": {"resourceVersion": self.last_rv.to_string(), "creationTimestamp": null},
        });
        if !annotations.is_null() {
            obj["metadata"]["annotations"] = annotations;
        }
        if self.output.is_metadata() {
            obj = crate::negotiation::partial(&obj);
        }
        self.frame("BOOKMARK", obj).await
    }

    async fn send(&mut self, kind: &str, obj: Value) -> bool {
        let obj = if self.output == Output::Table {
            let items = std::slice::from_ref(&obj);
            let t = table::render_rows(&self.rt, &self.include, items, !self.headers_sent);
            self.headers_sent = true;
            t
        } else if self.output.is_metadata() {
            crate::negotiation::partial(&obj)
        } else {
            obj
        };
        self.frame(kind, obj).await
    }

    async fn send_error(&mut self, e: StorageError) {
        let status = ApiError::from_storage(e, &Default::default()).to_status();
        self.frame("ERROR", status).await;
    }

    async fn frame(&mut self, kind: &str, obj: Value) -> bool {
        let frame = if self.output.encoding() == Output::Protobuf {
            let mut frame = Vec::new();
            if kapi_codec::protobuf::encode_watch_event(kind, &obj, &mut frame).is_err() {
                return false;
            }
            frame
        } else {
            let mut line =
                serde_json::to_vec(&json!({"type": kind, "object": obj})).unwrap_or_default();
            line.push(b'\n');
            line
        };
        self.send_frame(kind, Chunk::from(frame)).await
    }

    /// Queue one frame (its pieces, sent as one body chunk) for the response body.
    async fn send_frame(&mut self, kind: &str, frame: Chunk) -> bool {
        if kind != "BOOKMARK" {
            let rt = &self.rt;
            crate::metrics::watch_event(rt, frame.len());
        }
        let Some(tx) = &self.tx else { return false };
        match monoio::time::timeout(self.stall, tx.send(frame)).await {
            Ok(sent) => sent.is_ok(),
            Err(_) => {
                // The client has not taken a frame for the whole grace period: end the
                // watch now, free what it queued, and close its connection (the bytes
                // hyper and TLS hold for it cannot go anywhere, and on HTTP/2 a stream
                // whose window stays closed cannot be reset from here).
                tracing::debug!("ending a watch of {}: its client stopped reading", self.rt.plural);
                crate::metrics::watch_terminated(&self.rt);
                if let Some(tx) = self.tx.take() {
                    tx.abort();
                }
                if let Some(c) = &self.closer {
                    c.close();
                }
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `timeoutSeconds=18446744073709551615` made the deadline overflow (a panic).
    #[test]
    fn huge_timeouts_do_not_overflow_the_deadline() {
        assert!(deadline_after(Duration::from_secs(u64::MAX)) > Instant::now());
        let t = random_timeout(Duration::from_secs(u64::MAX));
        assert!(t >= LONGEST && t <= 2 * LONGEST);
        let t = random_timeout(Duration::from_secs(2));
        assert!(t >= Duration::from_secs(2) && t < Duration::from_secs(4));
    }
}
