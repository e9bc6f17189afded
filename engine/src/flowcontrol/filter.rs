//! The request path of flow control, where upstream's filter stands: after
//! authentication, audit and impersonation, before authorization.
//!
//! With priority and fairness on, a request is classified, its work estimated (`work`:
//! its seats, and for a write to a watched resource how long it keeps them after it
//! finished), and it waits for its level's seats at most a quarter of its request timeout; refused
//! (queue full, a Reject level at its limit, or waited too long) it gets upstream's 429:
//! a plain-text body, `Retry-After` from the level's dropped-requests tracker. Every
//! classified answer carries `X-Kubernetes-PF-FlowSchema-UID` and
//! `X-Kubernetes-PF-PriorityLevel-UID`. Long-running requests other than watches pass
//! unlimited; a watch holds its seats until its response starts (its initialization);
//! a streamed answer (a LIST) holds them until its body is sent, as upstream's handler
//! holds them while it writes the response.
//! With priority and fairness off, `--max-requests-inflight` and
//! `--max-mutating-requests-inflight` bound read-only and mutating requests
//! (`system:masters` exempt), as upstream's max-in-flight filter.

use super::Classified;
use super::work::Work;
use crate::app::App;
use crate::auth::UserInfo;
use crate::body::{Response, ResponseBody};
use crate::metrics::flowcontrol::{self as metrics, Counted, Phase};
use crate::request::RequestInfo;
use futures_util::StreamExt as _;
use kapi_flowcontrol::{RequestNote, Seat};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Upstream's 429 body (Go's `http.Error` adds the newline).
pub const TOO_MANY: &str = "Too many requests, please try again later.\n";
/// The response headers naming the matched FlowSchema and priority level by uid.
pub const HEADER_FLOW_SCHEMA: &str = "x-kubernetes-pf-flowschema-uid";
pub const HEADER_PRIORITY_LEVEL: &str = "x-kubernetes-pf-prioritylevel-uid";

/// A request's seats while it executes: dropped when its answer is sent, it records the
/// execution time (once) and gives the seats back.
struct Executed {
    classified: Option<Classified>,
    since: Instant,
    watch: bool,
    _seat: Seat,
    /// The request in the `current_executing_*` gauges.
    _counted: Option<Counted>,
}

impl Executed {
    /// Record the execution time now (once).
    fn record(&mut self) {
        if let Some(c) = self.classified.take() {
            crate::metrics::flowcontrol::executed(&c, self.watch, self.since.elapsed());
        }
    }
}

impl Drop for Executed {
    fn drop(&mut self) {
        self.record();
    }
}

/// A request let through: its seats (given back when this is dropped) and where it was
/// classified.
#[derive(Debug, Default)]
pub struct Admitted {
    /// Held for the request's life: dropping it gives the seats back.
    seat: Option<Seat>,
    /// The request in the `current_executing_*` gauges, as long as it holds the seats.
    counted: Option<Counted>,
    _inflight: Option<InflightSlot>,
    classified: Option<Classified>,
    /// How long the seats stay taken once the answer is ready (a write's watchers).
    additional_latency: Duration,
    /// When the request got its seats, and whether it is a watch (execution time).
    executing_since: Option<(Instant, bool)>,
}

impl Admitted {
    /// Put the classification headers on the answer. The seats go with `self`, except
    /// that a streamed answer other than a watch's (a LIST) keeps them until its body is
    /// sent, as upstream's handler holds them while it writes the response, and a write
    /// with watchers keeps them for its additional latency.
    pub fn respond(mut self, mut resp: Response) -> Response {
        headers(self.classified.as_ref(), resp.headers_mut());
        if let Some(slot) = self._inflight.take() {
            // The max-in-flight filter's slot, likewise, until a streamed answer is sent.
            return hold_until_sent(resp, slot);
        }
        let Some((since, watch)) = self.executing_since else { return resp };
        let Some(seat) = self.seat.take() else { return resp };
        let classified = self.classified.clone();
        let _counted = self.counted.take();
        let mut executed = Executed { classified, since, watch, _seat: seat, _counted };
        if !self.additional_latency.is_zero() {
            // Upstream keeps a write's seats while its change goes out to the watchers.
            let latency = self.additional_latency;
            executed.record();
            monoio::spawn(async move {
                monoio::time::sleep(latency).await;
                drop(executed);
            });
            return resp;
        }
        if watch {
            return resp;
        }
        hold_until_sent(resp, executed)
    }

    /// Where the request was classified.
    pub fn classified(&self) -> Option<&Classified> {
        self.classified.as_ref()
    }
}

/// `resp`, keeping `guard` until its body has been sent when the body is streamed (a
/// whole body is handed over at once; the guard goes now).
fn hold_until_sent<G: 'static>(resp: Response, guard: G) -> Response {
    let (parts, body) = resp.into_parts();
    let body = match body {
        ResponseBody::Stream(stream) => {
            let stream = stream.map(move |chunk| {
                let _ = &guard;
                chunk
            });
            ResponseBody::Stream(stream.boxed_local())
        }
        other => other,
    };
    http::Response::from_parts(parts, body)
}

fn headers(c: Option<&Classified>, h: &mut http::HeaderMap) {
    let Some(c) = c else { return };
    let uid = |v: &str| http::HeaderValue::from_str(v).ok();
    if let Some(v) = uid(&c.level.uid()) {
        h.insert(HEADER_PRIORITY_LEVEL, v);
    }
    if let Some(v) = uid(&c.schema_uid) {
        h.insert(HEADER_FLOW_SCHEMA, v);
    }
}

/// Upstream's 429: plain text, `Retry-After`.
pub fn too_many_requests(retry_after: i64, classified: Option<&Classified>) -> Response {
    let mut resp = http::Response::builder()
        .status(429)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header("x-content-type-options", "nosniff")
        .header(http::header::RETRY_AFTER, retry_after.to_string())
        .body(crate::body::ResponseBody::full(bytes::Bytes::from_static(TOO_MANY.as_bytes())))
        .expect("static response");
    headers(classified, resp.headers_mut());
    resp
}

/// Let the request through, or answer it 429.
pub async fn admit(app: &App, user: &UserInfo, info: &RequestInfo) -> Result<Admitted, Response> {
    let long_running = crate::server::timeout::is_long_running(info);
    if long_running && info.verb != "watch" {
        return Ok(Admitted::default());
    }
    let fc = &app.flowcontrol;
    if !fc.enabled {
        return max_inflight(app, user, info, long_running);
    }
    let Some(classified) = fc.classify(user, info) else { return Ok(Admitted::default()) };
    let work = super::work::estimate(app, info, &classified);
    crate::metrics::flowcontrol::estimated(&classified, work.seats(), work.watch_count);
    let wait_limit = wait_limit(app);
    let level = classified.level.clone();
    let started = Instant::now();
    // Made only if the request waits; the dispatcher counts on it the times it found too
    // few free seats.
    let made: std::cell::Cell<Option<Rc<RequestNote>>> = std::cell::Cell::new(None);
    let note = || {
        let n = Rc::new(note(user, info, &classified, &work));
        made.set(Some(n.clone()));
        Some(n)
    };
    let admit = level.admit_noted(classified.flow, work.seats(), note);
    let mutating = !matches!(info.verb.as_str(), "get" | "list" | "watch");
    let waiting = admit.queue_length().map(|length| {
        metrics::queued(&classified, length);
        Counted::new(&classified, work.seats(), Phase::Waiting, mutating)
    });
    let waited = monoio::time::timeout(wait_limit, admit).await;
    drop(waiting);
    if let Some(n) = made.take() {
        metrics::no_accommodation(&classified, n.no_accommodation.get());
    }
    metrics::waited(&classified, started.elapsed(), matches!(waited, Ok(Ok(_))));
    let rejected = match waited {
        Ok(Ok(seat)) => {
            metrics::dispatched(&classified);
            let counted = Counted::new(&classified, seat.width(), Phase::Executing, mutating);
            return Ok(Admitted {
                seat: Some(seat),
                counted: Some(counted),
                _inflight: None,
                classified: Some(classified),
                additional_latency: work.additional_latency,
                executing_since: Some((Instant::now(), info.verb == "watch")),
            });
        }
        Ok(Err(r)) => r.reason(),
        Err(_) => "time-out",
    };
    metrics::rejected(&classified, rejected);
    let unix = crate::time::now_unix();
    level.counters.retry_after.dropped(unix);
    Err(too_many_requests(level.counters.retry_after.get(), Some(&classified)))
}

/// What the request dump shows of a queued request.
fn note(user: &UserInfo, info: &RequestInfo, c: &Classified, work: &Work) -> RequestNote {
    let api_version = if info.group.is_empty() {
        info.version.clone()
    } else {
        format!("{}/{}", info.group, info.version)
    };
    RequestNote {
        flow_schema: c.schema_name.to_string(),
        distinguisher: c.distinguisher.of(user, info).to_string(),
        arrived: Some(std::time::SystemTime::now()),
        initial_seats: work.initial_seats,
        final_seats: work.final_seats,
        additional_latency: work.additional_latency,
        user: user.name.clone(),
        verb: info.verb.clone(),
        path: info.path.clone(),
        namespace: info.namespace.clone().unwrap_or_default(),
        name: info.name.clone().unwrap_or_default(),
        api_version,
        resource: info.resource.clone(),
        subresource: info.subresource.clone().unwrap_or_default(),
        no_accommodation: Default::default(),
    }
}

/// How long a request may wait for seats: a quarter of the request timeout (upstream's
/// request wait limit), at least a second.
fn wait_limit(app: &App) -> Duration {
    (app.options.request_timeout / 4).max(Duration::from_secs(1))
}

/// One request counted against a max-in-flight limit.
#[derive(Debug)]
struct InflightSlot(&'static AtomicU32);

impl Drop for InflightSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

static READ_ONLY: AtomicU32 = AtomicU32::new(0);
static MUTATING: AtomicU32 = AtomicU32::new(0);

/// Upstream's max-in-flight filter (priority and fairness off).
fn max_inflight(
    app: &App,
    user: &UserInfo,
    info: &RequestInfo,
    long_running: bool,
) -> Result<Admitted, Response> {
    if long_running || user.groups.iter().any(|g| g == "system:masters") {
        return Ok(Admitted::default());
    }
    let read_only = matches!(info.verb.as_str(), "get" | "list" | "watch");
    let (counter, limit) = if read_only {
        (&READ_ONLY, app.options.max_requests_inflight)
    } else {
        (&MUTATING, app.options.max_mutating_requests_inflight)
    };
    if limit == 0 {
        return Ok(Admitted::default());
    }
    let taken =
        counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1));
    match taken {
        Ok(_) => Ok(Admitted { _inflight: Some(InflightSlot(counter)), ..Default::default() }),
        Err(_) => Err(too_many_requests(1, None)),
    }
}
