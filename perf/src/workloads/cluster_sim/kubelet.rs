//! The part of a simulated kubelet that follows its pods: one watch per node on all
//! namespaces' pods with `fieldSelector=spec.nodeName=NODE` (as a kubelet does), JSON
//! events. A pod bound to the node that is not Running gets its status patched to Running
//! (`patch pods/status`); a pod marked for deletion is deleted with grace period 0
//! (`delete pods (kubelet)`), as kwok does for pods without a running container.

use super::{Sim, objects};
use crate::client::{ClientError, JSON, MERGE_PATCH, Req, Stream};
use crate::stats::Outcome;
use crate::watch::Framer;
use http::Method;
use http_body_util::BodyExt;
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::time::Instant;

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    object: Pod,
}

#[derive(Deserialize)]
struct Pod {
    metadata: Meta,
    #[serde(default)]
    status: Status,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(rename = "deletionTimestamp")]
    deletion: Option<String>,
}

#[derive(Deserialize, Default)]
struct Status {
    phase: Option<String>,
}

/// What the kubelet does about one event.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    MarkRunning { ns: String, name: String },
    Delete { ns: String, name: String },
    Nothing,
}

/// The action an event's JSON calls for.
pub fn action(event: &[u8]) -> Action {
    let Ok(e) = serde_json::from_slice::<Event>(event) else { return Action::Nothing };
    if e.kind != "ADDED" && e.kind != "MODIFIED" {
        return Action::Nothing;
    }
    let (ns, name) = (e.object.metadata.namespace, e.object.metadata.name);
    if e.object.metadata.deletion.is_some() {
        Action::Delete { ns, name }
    } else if e.object.status.phase.as_deref() != Some("Running") {
        Action::MarkRunning { ns, name }
    } else {
        Action::Nothing
    }
}

/// List node `i`'s pods, watch them from the list's version, and act on the events
/// until the run stops. A watch refused at that version is retried from
/// `resourceVersion=0` and counted in `watch_fallbacks`.
pub async fn run(sim: Arc<Sim>, i: usize) {
    let Ok(permit) = sim.open_slots.acquire().await else { return };
    let opened = open(&sim, i).await;
    drop(permit);
    if let Some(stream) = opened {
        sim.opened.fetch_add(1, Ordering::Relaxed);
        follow(&sim, i, stream).await;
    }
}

/// The node's list and watch request; `None` (and the failure counted) if refused.
async fn open(sim: &Sim, i: usize) -> Option<Stream> {
    let node = objects::node_name(i);
    let selector = format!("fieldSelector=spec.nodeName%3D{node}");
    let rv = match sim.watches.send(Req::get(format!("/api/v1/pods?{selector}")).json()).await {
        Ok(r) if r.status == 200 => super::rv_of(&r.body).unwrap_or_else(|| "0".into()),
        Ok(r) => return open_failed(sim, format!("list: http {}", r.status)),
        Err(e) => return open_failed(sim, format!("list: {e}")),
    };
    let path = |rv: &str| {
        format!(
            "/api/v1/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds={}&resourceVersion={rv}&{selector}",
            sim.watch_seconds
        )
    };
    let mut opened = sim.watches.stream(Req::get(path(&rv)).json()).await;
    if opened.as_ref().is_ok_and(|s| s.status != 200) {
        sim.watch_fallbacks.fetch_add(1, Ordering::Relaxed);
        opened = sim.watches.stream(Req::get(path("0")).json()).await;
    }
    match opened {
        Ok(s) if s.status == 200 => Some(s),
        Ok(s) => open_failed(sim, format!("http {}", s.status)),
        Err(e) => open_failed(sim, e.to_string()),
    }
}

fn open_failed(sim: &Sim, detail: String) -> Option<Stream> {
    let mut first = sim.watch_error.lock().unwrap_or_else(|e| e.into_inner());
    first.get_or_insert(detail);
    sim.failed.fetch_add(1, Ordering::Relaxed);
    None
}

async fn follow(sim: &Arc<Sim>, i: usize, stream: Stream) {
    let mut framer = Framer::for_content_type(&stream.content_type);
    let mut body = stream.body;
    let mut stop = sim.stop.clone();
    loop {
        let frame = tokio::select! {
            _ = stop.changed() => return,
            frame = body.frame() => frame,
        };
        let Some(Ok(frame)) = frame else {
            if !*stop.borrow() {
                sim.record_now("watch pods", failure("the watch ended early"), Instant::now());
            }
            return;
        };
        let Ok(data) = frame.into_data() else { continue };
        let mut actions = Vec::new();
        let _ = framer.push(&data, |event| {
            sim.events.fetch_add(1, Ordering::Relaxed);
            actions.push(action(event));
        });
        for a in actions {
            react(sim, i, a);
        }
    }
}

fn failure(detail: &str) -> Outcome {
    Outcome::Failed { kind: "watch".into(), detail: detail.into() }
}

fn react(sim: &Arc<Sim>, i: usize, action: Action) {
    let (op, req) = match action {
        Action::MarkRunning { ns, name } => {
            let seq = sim.events.load(Ordering::Relaxed);
            let body = objects::running_status(i, seq).to_string();
            let path = format!("/api/v1/namespaces/{ns}/pods/{name}/status");
            ("patch pods/status", Req::new(Method::PATCH, path).body(body, MERGE_PATCH).json())
        }
        Action::Delete { ns, name } => {
            let path = format!("/api/v1/namespaces/{ns}/pods/{name}");
            let body = r#"{"kind":"DeleteOptions","apiVersion":"v1","gracePeriodSeconds":0}"#;
            ("delete pods (kubelet)", Req::new(Method::DELETE, path).body(body, JSON).json())
        }
        Action::Nothing => return,
    };
    let sim = sim.clone();
    tokio::spawn(async move {
        let start = Instant::now();
        let result = sim.writes.send(req).await;
        sim.record_since(op, kubelet_outcome(result), start);
    });
}

/// A 404 or 409 of a kubelet write is a race with the churn's delete, not an error.
fn kubelet_outcome(result: Result<crate::client::Response, ClientError>) -> Outcome {
    match result {
        Ok(r) if r.status == 404 || r.status == 409 => Outcome::Ok { bytes: 0 },
        other => super::super::outcome(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_of_events() {
        let ev = |t: &str, extra: &str, phase: &str| {
            format!(
                r#"{{"type":"{t}","object":{{"kind":"Pod","metadata":{{"name":"p","namespace":"n"{extra}}},"status":{{{phase}}}}}}}"#
            )
        };
        let (ns, name) = ("n".to_owned(), "p".to_owned());
        assert_eq!(
            action(ev("ADDED", "", "").as_bytes()),
            Action::MarkRunning { ns: ns.clone(), name: name.clone() }
        );
        assert_eq!(action(ev("MODIFIED", "", r#""phase":"Running""#).as_bytes()), Action::Nothing);
        let deleting = ev("MODIFIED", r#","deletionTimestamp":"2026-01-01T00:00:00Z""#, "");
        assert_eq!(action(deleting.as_bytes()), Action::Delete { ns, name });
        assert_eq!(action(ev("DELETED", "", "").as_bytes()), Action::Nothing);
        assert_eq!(action(br#"{"type":"BOOKMARK","object":{"metadata":{}}}"#), Action::Nothing);
        assert_eq!(action(b"not json"), Action::Nothing);
    }
}
