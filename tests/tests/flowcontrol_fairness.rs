//! API Priority and Fairness keeps its promises under load, against the real binary:
//!
//! - an elephant does not starve the mice at its own priority level: at the level `zoo`
//!   (22 seats, 64 queues, hands of two, flows by user), the user `elephant` keeps
//!   [`ELEPHANTS`] requests in flight, each a ConfigMap write that [`WATCHERS`] watchers
//!   make four seats wide (upstream's most for the level) and that holds its seats for
//!   [`HOLD`] (its body comes that late: seats are taken before the body is read), so
//!   five run at a time and the rest fill the elephant's queues; the user `mouse` GETs a
//!   ConfigMap from four connections. Fair queuing serves the mouse's queue in turn, so a
//!   mouse waits for the next seats to come back, not for the elephant's queue: no mouse
//!   is refused and the mice's p99 stays within [`ZOO_FLOOR`] (2 s) plus twice their
//!   unloaded p99. The twin at a level of one queue
//!   (`at_a_one_queue_level_the_elephant_starves_the_mice`, first come first served)
//!   puts every mouse behind the elephant's queued writes (about ten rounds of
//!   [`HOLD`]) and asserts that the same verdict fails. The seats are held for a time the
//!   client sets, not by CPU work, so a loaded machine moves both sides little.
//! - nodes renewing their Leases (`system:node:*`, group `system:nodes`: the
//!   `system-node-high` FlowSchema, level `node-high`) keep their latency (within
//!   [`FACTOR`] (20) times their unloaded p99 or [`FLOOR`] (2 s)) while a service account
//!   (`service-accounts`, level `workload-low`) floods its level: writes that hold its
//!   seats and LISTs that wait in its queues, time out of them and get 429 with
//!   `Retry-After`.
//!
//! The servers get few seats (`--max-requests-inflight 20`,
//! `--max-mutating-requests-inflight 4`). The flood check is run once more without
//! priority and fairness (`--enable-priority-and-fairness=false`), where upstream's
//! max-in-flight filter refuses the nodes once the held writes fill the mutating limit,
//! and asserts that its verdict fails (`without_apf_a_flood_starves_node_lease_renewals`).
//! While the elephant runs, the zoo test also reads upstream's per-flow gauges and
//! counters from /metrics (`current_*`, `request_dispatch_no_accommodation_total`) and
//! `read_vs_write_current_requests`.

use kapi_e2e::apf::{self, configmap, flow_value, metrics, request, value};
use kapi_e2e::raw::{Conn, Target};
use kapi_e2e::{Server, eventually};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

const ELEPHANT: &str = "elephant-token-0123456789";
const MOUSE: &str = "mouse-token-0123456789";
const FLOOD: &str = "flood-token-0123456789";
const FLOOD_USER: &str = "system:serviceaccount:default:flood";
const NODES: [(&str, &str); 2] =
    [("node-a-token-0123456789", "fair-a"), ("node-b-token-0123456789", "fair-b")];
const WAIT: Duration = Duration::from_secs(60);

/// How much slower the nodes' renewals may get under load (their p99 against their
/// unloaded p99).
const FACTOR: u32 = 20;
/// ... but never below this (an unloaded p99 of a millisecond would make the factor a
/// measure of the machine's noise).
const FLOOR: Duration = Duration::from_secs(2);

/// A server with the test's users (cluster-admins) and few seats: 20 read + 4 mutating;
/// requests time out after `timeout` (they wait a quarter of it for seats at most).
fn server(enabled: bool, timeout: &str) -> Server {
    let mut tokens = format!(
        "{ELEPHANT},elephant,uid-e\n{MOUSE},mouse,uid-m\n\
         {FLOOD},{FLOOD_USER},uid-f,\"system:serviceaccounts,system:serviceaccounts:default\"\n"
    );
    for (token, node) in NODES {
        tokens.push_str(&format!("{token},system:node:{node},uid-{node},system:nodes\n"));
    }
    let nodes: Vec<String> = NODES.iter().map(|(_, n)| format!("system:node:{n}")).collect();
    let mut users = vec!["elephant", "mouse", FLOOD_USER];
    users.extend(nodes.iter().map(String::as_str));
    let mut args = vec![
        "--max-requests-inflight",
        "20",
        "--max-mutating-requests-inflight",
        "4",
        "--request-timeout",
        timeout,
    ];
    if !enabled {
        args.push("--enable-priority-and-fairness=false");
    }
    apf::server_with_users(&tokens, &users, &args)
}

/// The 99th percentile (nearest rank).
fn p99(samples: &[Duration]) -> Duration {
    let mut v = samples.to_vec();
    v.sort();
    let rank = (v.len() * 99).div_ceil(100).max(1);
    v.get(rank - 1).copied().unwrap_or_default()
}

/// What the protected requests saw: latencies of their successes, and their failures
/// (status or error).
#[derive(Default, Debug)]
struct Seen {
    ok: Vec<Duration>,
    failed: Vec<String>,
}

/// How long each client of [`measure`] sends.
#[derive(Debug, Clone, Copy)]
enum Until {
    /// This many requests.
    Requests(usize),
    /// Requests until this long has passed (the one under way finishes).
    Elapsed(Duration),
}

/// `threads` clients, each sending requests made by `make` (request `i`) one after
/// another on its own keep-alive connection (`pause` between them) `until` it is done; an
/// answer other than `expect` is a failure.
fn measure(
    target: &Target,
    threads: usize,
    until: Until,
    pause: Duration,
    expect: u16,
    make: impl Fn(usize) -> Vec<u8> + Send + Sync + 'static,
) -> Seen {
    let per_thread = match until {
        Until::Requests(n) => n,
        Until::Elapsed(_) => usize::MAX / (threads + 1),
    };
    let deadline = match until {
        Until::Requests(_) => None,
        Until::Elapsed(d) => Some(Instant::now() + d),
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let make = Arc::new(make);
    let handles: Vec<JoinHandle<()>> = (0..threads)
        .map(|t| {
            let (target, seen, make) = (target.clone(), seen.clone(), make.clone());
            std::thread::spawn(move || {
                let mut conn = target.connect(false).expect("connect");
                for i in 0..per_thread {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                    let started = Instant::now();
                    let outcome = conn.request(&make(t * per_thread + i));
                    let took = started.elapsed();
                    let mut seen = seen.lock().unwrap();
                    match outcome {
                        Ok((status, _)) if status == expect => seen.ok.push(took),
                        Ok((status, body)) => {
                            let body = String::from_utf8_lossy(&body);
                            seen.failed.push(format!("{status} {}", body.trim()));
                        }
                        Err(e) => {
                            seen.failed.push(e.to_string());
                            drop(seen);
                            conn = target.connect(false).expect("connect");
                        }
                    }
                    std::thread::sleep(pause);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client thread");
    }
    Arc::try_unwrap(seen).map(|m| m.into_inner().unwrap()).unwrap_or_default()
}

/// The nodes' bound: `FACTOR` times their unloaded p99, or `FLOOR`.
fn lease_bound(unloaded: Duration) -> Duration {
    (unloaded * FACTOR).max(FLOOR)
}

/// Whether the protected requests kept their service under load: none refused, and the
/// p99 under load within `bound` of the unloaded one.
fn verdict(
    unloaded: &Seen,
    loaded: &Seen,
    bound: fn(Duration) -> Duration,
) -> Result<String, String> {
    assert!(unloaded.failed.is_empty(), "unloaded requests failed: {:?}", unloaded.failed);
    let (before, after) = (p99(&unloaded.ok), p99(&loaded.ok));
    let bound = bound(before);
    let summary = format!(
        "p99 unloaded {before:?}, under load {after:?} (bound {bound:?}); {} served, {} failed",
        loaded.ok.len(),
        loaded.failed.len()
    );
    if !loaded.failed.is_empty() {
        let first: Vec<_> = loaded.failed.iter().take(3).collect();
        return Err(format!("{summary}: refused under load: {first:?}"));
    }
    if after > bound {
        return Err(format!("{summary}: too slow under load"));
    }
    Ok(summary)
}

/// Read one HTTP/1.1 response from `stream`, skipping its body without keeping it
/// (`buf` carries bytes read past it): status and head (lower-cased). A cursor walks
/// the chunks, so a large LIST costs the client little.
fn skip_response(
    stream: &mut impl std::io::Read,
    buf: &mut Vec<u8>,
) -> std::io::Result<(u16, String)> {
    let mut chunk = vec![0u8; 64 * 1024];
    let mut fill = |buf: &mut Vec<u8>| -> std::io::Result<()> {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        Ok(())
    };
    let find = |hay: &[u8], from: usize, needle: &[u8]| {
        hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| i + from)
    };
    let head_end = loop {
        if let Some(i) = find(buf, 0, b"\r\n\r\n") {
            break i + 4;
        }
        fill(buf)?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut pos = head_end;
    if head.contains("transfer-encoding: chunked") {
        loop {
            if pos > 256 * 1024 {
                // Keep the buffer small: drop what was walked past.
                buf.drain(..pos);
                pos = 0;
            }
            let line = loop {
                if let Some(i) = find(buf, pos, b"\r\n") {
                    break i;
                }
                fill(buf)?;
            };
            let size = String::from_utf8_lossy(&buf[pos..line]);
            let size = usize::from_str_radix(size.trim(), 16).map_err(std::io::Error::other)?;
            let end = line + 2 + size + 2;
            while buf.len() < end {
                fill(buf)?;
            }
            pos = end;
            if size == 0 {
                break;
            }
        }
    } else {
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            fill(buf)?;
        }
        pos = head_end + len;
    }
    buf.drain(..pos);
    Ok((status, head))
}

/// Send the request `bytes` and read its answer (status and head). With `hold`, the
/// request asks `Expect: 100-continue` and its body is sent `hold` after the server
/// asks for it (kapi reads a body once the request has its seats), so it holds its seats
/// that long; an answer without a `100 Continue` first (a refusal) is the answer.
fn exchange(
    c: &mut Conn,
    bytes: &[u8],
    hold: Option<Duration>,
    buf: &mut Vec<u8>,
) -> std::io::Result<(u16, String)> {
    let Some(hold) = hold else {
        c.send(bytes)?;
        return skip_response(&mut c.stream, buf);
    };
    let end =
        bytes.windows(4).position(|w| w == b"\r\n\r\n").ok_or(std::io::ErrorKind::InvalidInput)?;
    let (head, body) = (&bytes[..end + 2], &bytes[end + 4..]);
    c.send(&[head, b"Expect: 100-continue\r\n\r\n"].concat())?;
    let (status, interim) = skip_response(&mut c.stream, buf)?;
    if status != 100 {
        return Ok((status, interim));
    }
    std::thread::sleep(hold);
    c.send(body)?;
    skip_response(&mut c.stream, buf)
}

/// Closed-loop clients sending `make()` until `stop`; counts answers by status.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    answers: Arc<Mutex<Vec<(u16, Option<String>)>>>,
}

impl Load {
    /// `threads` clients; each request on a keep-alive connection, or on a fresh one when
    /// `fresh` (a request whose body never comes leaves its connection unusable); with
    /// `hold`, a request holds its seats that long ([`exchange`]).
    fn start(
        target: &Target,
        threads: usize,
        fresh: bool,
        hold: Option<Duration>,
        make: impl Fn() -> Vec<u8> + Send + Sync + 'static,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let answers: Arc<Mutex<Vec<(u16, Option<String>)>>> = Arc::default();
        let make = Arc::new(make);
        let threads = (0..threads)
            .map(|_| {
                let (target, stop, answers, make) =
                    (target.clone(), stop.clone(), answers.clone(), make.clone());
                std::thread::spawn(move || {
                    let mut conn: Option<Conn> = None;
                    let mut buf = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let mut c = match conn.take() {
                            Some(c) => c,
                            None => match target.connect(false) {
                                Ok(c) => c,
                                Err(_) => {
                                    std::thread::sleep(Duration::from_millis(50));
                                    continue;
                                }
                            },
                        };
                        let Ok((status, head)) = exchange(&mut c, &make(), hold, &mut buf) else {
                            buf.clear();
                            continue;
                        };
                        let retry_after = head
                            .lines()
                            .find_map(|l| l.strip_prefix("retry-after:"))
                            .map(|v| v.trim().to_string());
                        answers.lock().unwrap().push((status, retry_after));
                        if status == 429 {
                            // A refused client backs off a little, as clients do.
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        if fresh {
                            buf.clear();
                        } else {
                            conn = Some(c);
                        }
                    }
                })
            })
            .collect();
        Load { stop, threads, answers }
    }

    fn answers(&self) -> Vec<(u16, Option<String>)> {
        self.answers.lock().unwrap().clone()
    }

    /// Stop sending; the threads end with their current request (the server's request
    /// timeout bounds it), or when the server goes.
    fn stop(self) -> Vec<(u16, Option<String>)> {
        self.stop.store(true, Ordering::Relaxed);
        let answers = self.answers();
        drop(self.threads);
        answers
    }
}

// ---- (a) the elephant and the mice ----

/// The elephant and the mice at one level of their own: 22 seats (so a request of it
/// may take four: upstream's max seats are 15% of the level's nominal limit), `queues`
/// queues, hands of `hand`, flows distinguished by user.
fn zoo_config(queues: u32, hand: u32) -> String {
    format!(
        r#"
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: PriorityLevelConfiguration
metadata: {{name: zoo}}
spec:
  type: Limited
  limited:
    nominalConcurrencyShares: 2205
    lendablePercent: 0
    borrowingLimitPercent: 0
    limitResponse:
      type: Queue
      queuing: {{queues: {queues}, handSize: {hand}, queueLengthLimit: 100}}
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata: {{name: zoo}}
spec:
  matchingPrecedence: 100
  priorityLevelConfiguration: {{name: zoo}}
  distinguisherMethod: {{type: ByUser}}
  rules:
  - subjects: [{{kind: User, user: {{name: elephant}}}}, {{kind: User, user: {{name: mouse}}}}]
    resourceRules:
    - {{verbs: ["*"], apiGroups: ["*"], resources: ["*"], namespaces: ["*"], clusterScope: true}}
"#
    )
}

/// Watchers of the zoo's ConfigMaps: a write is estimated at one seat per ten, capped at
/// the level's four.
const WATCHERS: u32 = 40;
/// The elephant's requests in flight: five run (20 of the 22 seats), the rest queue.
const ELEPHANTS: usize = 64;
/// How long each of the elephant's writes holds its four seats.
const HOLD: Duration = Duration::from_millis(500);
const MICE: usize = 4;
/// How long the mice send under load.
const MICE_FOR: Duration = Duration::from_secs(10);
/// The mice's bound under the elephant: this plus twice their unloaded p99. Fair
/// queuing keeps them under about one [`HOLD`]; first come first served puts them
/// behind about ten rounds of it.
const ZOO_FLOOR: Duration = Duration::from_secs(2);

fn zoo_bound(unloaded: Duration) -> Duration {
    ZOO_FLOOR + unloaded * 2
}

/// A server with the zoo level of `queues` queues (hands of `hand`), a ConfigMap for the
/// mice, and [`WATCHERS`] watchers of the zoo's ConfigMaps (the connection that holds
/// them is returned) counted by the work estimator.
fn zoo(queues: u32, hand: u32) -> (Server, Target, Conn) {
    let s = server(true, "60s");
    apf::apply_level(&s, &zoo_config(queues, hand), "zoo", WAIT);
    s.kubectl_ok(&["create", "namespace", "zoo"]);
    s.kubectl_ok(&["create", "configmap", "animal", "-n", "zoo"]);
    let target = Target::of(&s);
    let mut watches = target.connect(true).expect("h2");
    let path = "/api/v1/namespaces/zoo/configmaps?watch=true";
    watches.send(&target.h2_gets(path, WATCHERS)).unwrap();
    // The watchers count once a mouse's write is estimated above two seats.
    let key = r#"{flow_schema="zoo",priority_level="zoo""#;
    let mut c = target.connect(false).expect("connect");
    assert!(
        eventually(WAIT, || {
            let body = configmap("probe");
            c.send(&request("POST", ZOO_CMS, MOUSE, &body, body.len())).unwrap();
            let _ = c.response();
            let m = metrics(&s);
            let seats = |suffix: &str| {
                value(&m, &format!("apiserver_flowcontrol_work_estimated_seats_{suffix}}} "))
            };
            seats(&format!("bucket{key},le=\"2\"")) < seats(&format!("count{key}"))
        }),
        "the watchers never counted"
    );
    (s, target, watches)
}

const ZOO_CMS: &str = "/api/v1/namespaces/zoo/configmaps";

fn mouse_get(_: usize) -> Vec<u8> {
    request("GET", "/api/v1/namespaces/zoo/configmaps/animal", MOUSE, "", 0)
}

/// What a zoo run saw: the mice unloaded and under the elephant, the elephant's answers,
/// and /metrics once the mice were done.
struct ZooRun {
    unloaded: Seen,
    loaded: Seen,
    elephant: Vec<(u16, Option<String>)>,
    after: String,
}

/// The mice alone, then under the elephant's held writes; with `gauges`, upstream's
/// per-flow gauges are checked under load before the mice come back.
fn elephant_and_mice(s: &Server, target: &Target, gauges: bool) -> ZooRun {
    let unloaded =
        measure(target, MICE, Until::Requests(50), Duration::from_millis(5), 200, mouse_get);
    let elephant = Load::start(target, ELEPHANTS, false, Some(HOLD), || {
        let body = configmap("trunk");
        request("POST", ZOO_CMS, ELEPHANT, &body, body.len())
    });
    // The elephant fills its queues before the mice come back.
    let waiting = "apiserver_flowcontrol_current_inqueue_requests";
    let mut filled = String::new();
    assert!(
        eventually(WAIT, || {
            filled = metrics(s);
            flow_value(&filled, waiting, "zoo", "zoo").is_some_and(|n| n >= 30.0)
        }),
        "the elephant never queued: {}",
        filled.lines().filter(|l| l.contains("\"zoo\"")).collect::<Vec<_>>().join("\n")
    );
    if gauges {
        wide_elephant_in_gauges(s);
    }
    let loaded =
        measure(target, MICE, Until::Elapsed(MICE_FOR), Duration::from_millis(5), 200, mouse_get);
    let after = metrics(s);
    let elephant = elephant.stop();
    ZooRun { unloaded, loaded, elephant, after }
}

/// Upstream's gauges, per FlowSchema and level, while the elephant runs: its writes wait
/// four seats wide each (the mice add one each at most), and some run, four seats each,
/// within the level's 22.
fn wide_elephant_in_gauges(s: &Server) {
    let mut m = String::new();
    let ok = eventually(WAIT, || {
        m = metrics(s);
        let g = |name: &str| {
            flow_value(&m, &format!("apiserver_flowcontrol_{name}"), "zoo", "zoo").unwrap_or(0.0)
        };
        let (waiting, waiting_seats) = (g("current_inqueue_requests"), g("current_inqueue_seats"));
        let (running, running_seats) =
            (g("current_executing_requests"), g("current_executing_seats"));
        waiting >= 10.0
            && waiting_seats >= 4.0 * (waiting - MICE as f64)
            && running >= 4.0
            && (16.0..=22.0).contains(&running_seats)
    });
    let zoo: Vec<_> = m.lines().filter(|l| l.contains("\"zoo\"")).collect();
    assert!(ok, "{}", zoo.join("\n"));
}

/// Regression guard for fair queuing across flows (and cores) at one level: the mice are
/// served within [`zoo_bound`] while the elephant's wide writes keep the level's seats
/// busy and its queues full; upstream's per-flow gauges show the elephant waiting and
/// executing wide, and the dispatch attempts its four-seat heads failed.
#[test]
fn an_elephant_of_wide_requests_does_not_starve_the_mice_at_its_level() {
    let (s, target, _watches) = zoo(64, 2);
    let nominal =
        value(&metrics(&s), "apiserver_flowcontrol_nominal_limit_seats{priority_level=\"zoo\"} ");
    assert_eq!(nominal, Some(22.0), "24 seats, 2205 of 2450 shares");
    let run = elephant_and_mice(&s, &target, true);
    let served = run.elephant.iter().filter(|(status, _)| matches!(status, 201 | 409)).count();
    assert!(served > 0, "the elephant was never served: {:?}", run.elephant);
    // Four-seat heads found the last two seats free, but too few.
    let refused = "apiserver_flowcontrol_request_dispatch_no_accommodation_total";
    assert!(
        flow_value(&run.after, refused, "zoo", "zoo").is_some_and(|n| n > 0.0),
        "{}",
        run.after
    );
    // The requests waiting and executing, by kind, over upstream's limits.
    let rw = |phase: &str, kind: &str| {
        let key = format!("{{phase=\"{phase}\",request_kind=\"{kind}\"}} ");
        value(&run.after, &format!("apiserver_flowcontrol_read_vs_write_current_requests_sum{key}"))
            .unwrap_or(0.0)
    };
    assert!(rw("waiting", "mutating") > 0.0 && rw("executing", "mutating") > 0.0, "{}", run.after);
    let read_only = "apiserver_flowcontrol_read_vs_write_current_requests_count{phase=\"executing\",request_kind=\"readOnly\"} ";
    assert!(value(&run.after, read_only).is_some_and(|ns| ns > 0.0), "{}", run.after);
    match verdict(&run.unloaded, &run.loaded, zoo_bound) {
        Ok(summary) => eprintln!("mice: {summary}; elephant writes served: {served}"),
        Err(e) => panic!("the elephant starved the mice: {e}"),
    }
}

/// The twin at a level of one queue (first come first served): the mice wait behind the
/// elephant's queued writes, and the verdict the fair level passes fails.
#[test]
fn at_a_one_queue_level_the_elephant_starves_the_mice() {
    let (s, target, _watches) = zoo(1, 1);
    let run = elephant_and_mice(&s, &target, false);
    let outcome = verdict(&run.unloaded, &run.loaded, zoo_bound);
    assert!(outcome.is_err(), "the mice were served at a one-queue level: {outcome:?}");
    eprintln!("one queue: {outcome:?}");
}

// ---- (b) node Lease renewals under a flood at workload-low ----

const LEASE_NS: &str = "kube-node-lease";

/// MicroTime now (`2006-01-02T15:04:05.000000Z`).
fn micro_time() -> String {
    let d = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let (secs, micros) = (d.as_secs() as i64, d.subsec_micros());
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Each node renews its own Lease `n` times, 20 ms apart.
fn renewals(target: &Target, n: usize) -> Seen {
    let mut all = Seen::default();
    let seen: Vec<Seen> = NODES
        .iter()
        .map(|(token, node)| {
            let (token, node) = (token.to_string(), node.to_string());
            let target = target.clone();
            std::thread::spawn(move || {
                measure(&target, 1, Until::Requests(n), Duration::from_millis(20), 200, move |_| {
                    let path =
                        format!("/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases/{node}");
                    let body = format!(r#"{{"spec":{{"renewTime":"{}"}}}}"#, micro_time());
                    request("PATCH", &path, &token, &body, body.len())
                })
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().expect("node thread"))
        .collect();
    for s in seen {
        all.ok.extend(s.ok);
        all.failed.extend(s.failed);
    }
    all
}

/// More seat holders than the server has seats.
const HOLDERS: usize = 40;
/// Clients whose requests queue behind the holders.
const FLOODERS: usize = 24;

/// The service account's flood: POSTs whose bodies never come, each holding a seat of
/// workload-low until the request timeout (a refused one is answered only once its body
/// is read, so they are not what is refused), and LISTs from many clients that wait in
/// its queues, time out of them and are refused with 429.
fn flood(target: &Target) -> (Load, Load) {
    let holders = Load::start(target, HOLDERS, true, None, || {
        let body = configmap("flood");
        let path = "/api/v1/namespaces/default/configmaps";
        request("POST", path, FLOOD, &body[..body.len() / 2], body.len())
    });
    let lists = Load::start(target, FLOODERS, false, None, || {
        request("GET", "/api/v1/namespaces/default/configmaps", FLOOD, "", 0)
    });
    (holders, lists)
}

fn leases(apf: bool) -> (Server, Target) {
    // Requests wait 2 s for seats at most.
    let s = server(apf, "8s");
    for (_, node) in NODES {
        let lease = format!(
            "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {{name: {node}, namespace: {LEASE_NS}}}\n\
             spec: {{holderIdentity: {node}, leaseDurationSeconds: 40}}\n"
        );
        let out = s.kubectl_stdin(&["create", "-f", "-"], &lease);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let target = Target::of(&s);
    (s, target)
}

/// Regression guard for isolation between priority levels: while a service account
/// floods workload-low (its queues full, its requests timing out of them with 429 and
/// `Retry-After`), the nodes' Lease renewals (node-high) keep their latency: within
/// `FACTOR` of their unloaded p99 (or `FLOOR`), none refused.
#[test]
fn node_lease_renewals_keep_their_latency_while_workload_low_is_flooded() {
    let (s, target) = leases(true);
    let unloaded = renewals(&target, 40);
    // The renewals were classified into node-high.
    let node_high = s.kubectl_ok(&[
        "get",
        "prioritylevelconfiguration",
        "node-high",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let (token, node) = NODES[0];
    let mut c = target.connect(false).expect("connect");
    let path = format!("/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases/{node}");
    let (status, head, _) = {
        c.send(&request("GET", &path, token, "", 0)).unwrap();
        c.response_with_head().unwrap()
    };
    assert_eq!(status, 200, "{head}");
    assert!(head.contains(&format!("x-kubernetes-pf-prioritylevel-uid: {node_high}")), "{head}");

    let (holders, flooding) = flood(&target);
    let waiting = "apiserver_flowcontrol_current_inqueue_requests";
    assert!(
        eventually(WAIT, || {
            flow_value(&metrics(&s), waiting, "service-accounts", "workload-low")
                .is_some_and(|n| n >= 5.0)
        }),
        "workload-low never queued"
    );
    // Some of the flood was refused before the nodes come back.
    assert!(eventually(WAIT, || flooding.answers().iter().any(|(status, _)| *status == 429)));
    let loaded = renewals(&target, 60);
    let answers = flooding.stop();
    holders.stop();
    let refused: Vec<_> = answers.iter().filter(|(status, _)| *status == 429).collect();
    assert!(!refused.is_empty(), "{answers:?}");
    assert!(
        refused.iter().all(|(_, retry)| retry.as_deref().is_some_and(|r| r.parse::<u32>().is_ok())),
        "a 429 without Retry-After: {refused:?}"
    );
    match verdict(&unloaded, &loaded, lease_bound) {
        Ok(summary) => eprintln!("leases: {summary}; flood refused {} times", refused.len()),
        Err(e) => panic!("the flood at workload-low slowed the nodes: {e}"),
    }
}

/// The same flood without priority and fairness: the held POSTs take every mutating
/// seat of the max-in-flight filter, and the nodes' renewals are refused.
#[test]
fn without_apf_a_flood_starves_node_lease_renewals() {
    let (_s, target) = leases(false);
    let unloaded = renewals(&target, 20);
    let (holders, flooding) = flood(&target);
    // The holders take the mutating seats at once.
    std::thread::sleep(Duration::from_secs(2));
    let loaded = renewals(&target, 40);
    flooding.stop();
    holders.stop();
    let outcome = verdict(&unloaded, &loaded, lease_bound);
    assert!(outcome.is_err(), "the nodes were served without APF: {outcome:?}");
}
