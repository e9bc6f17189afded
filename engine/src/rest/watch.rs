//! WATCH: synthetic ADDED events for the current state when resourceVersion is unset or
//! "0", then the store's events from that revision, filtered by selectors (an object that
//! stops matching is sent as DELETED, one that starts matching as ADDED), optional
//! bookmarks, `timeoutSeconds`, and 410 Expired as an ERROR event for a compacted revision.
//!
//! A producer task on this core writes frames into a small bounded channel that backs the
//! response body; a client that stops reading stalls the producer, the store's bounded
//! per-watcher buffer fills, and the store closes the watch (the client re-lists).

use super::fields::Selectors;
use super::{Scope, object, table};
use crate::body::{Response, ResponseBody};
use crate::negotiation::Output;
use crate::status::ApiError;
use bytes::Bytes;
use futures_util::StreamExt;
use kapi_codec::ResourceType;
use kapi_storage::{Event, EventKind, Revision, StorageError, Watch};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const BOOKMARK_EVERY: Duration = Duration::from_secs(60);

/// What the producer needs, owned.
struct Producer {
    rt: &'static ResourceType,
    selectors: Selectors,
    output: Output,
    include: String,
    bookmarks: bool,
    deadline: Instant,
    shutdown: flume::Receiver<()>,
    tx: flume::Sender<Bytes>,
    headers_sent: bool,
    last_rv: Revision,
}

fn timeout(scope: &Scope<'_>) -> Result<Duration, ApiError> {
    match scope.param("timeoutSeconds") {
        Some(v) => v
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| ApiError::BadRequest(format!("invalid timeoutSeconds: {v}"))),
        None => Ok(Duration::from_secs(1800 + rand::random::<u64>() % 1800)),
    }
}

pub async fn watch(scope: &Scope<'_>) -> Result<Response, ApiError> {
    if scope.app.is_shutting_down() {
        return Err(ApiError::ServiceUnavailable("apiserver is shutting down".into()));
    }
    let selectors =
        Selectors::parse(scope.rt, scope.param("labelSelector"), scope.param("fieldSelector"))?;
    let (initial, from) = initial_state(scope, &selectors).await?;
    let watch = scope.app.store.watch(&scope.list_prefix(), from);
    let (tx, rx) = flume::bounded::<Bytes>(16);
    let producer = Producer {
        rt: scope.rt,
        selectors,
        output: scope.output,
        include: scope.info.param("includeObject").unwrap_or("Metadata").to_string(),
        bookmarks: matches!(scope.param("allowWatchBookmarks"), Some("true" | "1")),
        deadline: Instant::now() + timeout(scope)?,
        shutdown: scope.app.shutdown.clone(),
        tx,
        headers_sent: false,
        last_rv: from,
    };
    monoio::spawn(producer.run(initial, watch));
    let content_type = match scope.output {
        Output::Table => "application/json;as=Table;v=v1;g=meta.k8s.io",
        Output::Protobuf => "application/vnd.kubernetes.protobuf;stream=watch",
        _ => "application/json",
    };
    let body = ResponseBody::Stream(rx.into_stream().boxed_local());
    http::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CACHE_CONTROL, "no-cache, private")
        .body(body)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Synthetic initial events and the revision to watch from.
async fn initial_state(
    scope: &Scope<'_>,
    selectors: &Selectors,
) -> Result<(Vec<Value>, Revision), ApiError> {
    match scope.param("resourceVersion") {
        None | Some("0") => {
            let page = scope
                .app
                .store
                .range(&scope.list_prefix(), None, 0, None)
                .await
                .map_err(|e| ApiError::from_storage(e, &scope.target("")))?;
            let mut items = Vec::with_capacity(page.items.len());
            for kv in &page.items {
                let obj = object::from_stored(scope.rt, kv)?;
                if selectors.matches(scope.rt, &obj) {
                    items.push(obj);
                }
            }
            Ok((items, page.revision))
        }
        Some(v) => {
            let rv = v
                .parse::<Revision>()
                .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {v}")))?;
            Ok((Vec::new(), rv))
        }
    }
}

impl Producer {
    async fn run(mut self, initial: Vec<Value>, watch: Result<Watch, StorageError>) {
        for obj in initial {
            if !self.send("ADDED", obj).await {
                return;
            }
        }
        let watch = match watch {
            Ok(w) => w,
            Err(e) => {
                self.send_error(e).await;
                return;
            }
        };
        self.pump(watch).await;
    }

    async fn pump(&mut self, watch: Watch) {
        let mut next_bookmark = Instant::now() + BOOKMARK_EVERY;
        loop {
            let now = Instant::now();
            let wake =
                if self.bookmarks { next_bookmark.min(self.deadline) } else { self.deadline };
            let sleep = monoio::time::sleep(wake.saturating_duration_since(now));
            monoio::select! {
                ev = watch.events.recv_async() => match ev {
                    Ok(Ok(ev)) => {
                        if !self.event(ev).await {
                            return;
                        }
                    }
                    Ok(Err(e)) => {
                        self.send_error(e).await;
                        return;
                    }
                    Err(_) => return,
                },
                _ = sleep => {
                    if Instant::now() >= self.deadline {
                        return;
                    }
                    next_bookmark = Instant::now() + BOOKMARK_EVERY;
                    if !self.bookmark().await {
                        return;
                    }
                },
                _ = self.shutdown.recv_async() => return,
            }
        }
    }

    /// Classify a store event against the selectors and send it; false when the client is gone.
    async fn event(&mut self, ev: Event) -> bool {
        self.last_rv = ev.revision();
        let Ok(obj) = object::from_stored(self.rt, &ev.kv) else { return true };
        let now = self.selectors.matches(self.rt, &obj);
        let kind = match ev.kind {
            EventKind::Delete => now.then_some("DELETED"),
            EventKind::Put => {
                let before = match &ev.prev {
                    None => false,
                    Some(_) if self.selectors.is_everything() => true,
                    Some(p) => object::from_stored(self.rt, p)
                        .map(|o| self.selectors.matches(self.rt, &o))
                        .unwrap_or(false),
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
            Some(k) => self.send(k, obj).await,
            None => true,
        }
    }

    async fn bookmark(&mut self) -> bool {
        let obj = json!({
            "kind": self.rt.kind,
            "apiVersion": self.rt.api_version(),
            "metadata": {"resourceVersion": self.last_rv.to_string(), "creationTimestamp": null},
        });
        self.frame("BOOKMARK", obj).await
    }

    async fn send(&mut self, kind: &str, obj: Value) -> bool {
        let obj = if self.output == Output::Table {
            let t =
                table::render_rows(&self.include, std::slice::from_ref(&obj), !self.headers_sent);
            self.headers_sent = true;
            t
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
        if self.output == Output::Protobuf {
            let mut frame = Vec::new();
            if kapi_codec::protobuf::encode_watch_event(kind, &obj, &mut frame).is_err() {
                return false;
            }
            return self.tx.send_async(Bytes::from(frame)).await.is_ok();
        }
        let mut line =
            serde_json::to_vec(&json!({"type": kind, "object": obj})).unwrap_or_default();
        line.push(b'\n');
        self.tx.send_async(Bytes::from(line)).await.is_ok()
    }
}
