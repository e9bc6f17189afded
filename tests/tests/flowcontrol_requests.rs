//! API Priority and Fairness on the request path, against the real binary: a write to a
//! watched resource is estimated wider (upstream's mutating work estimator, seen in
//! `apiserver_flowcontrol_work_estimated_seats` and `..._watch_count_samples`); a user
//! whose level's seats are all held (POSTs whose bodies are not sent yet: seats are taken
//! before the body is read) waits in its queue, where `dump_requests` shows it, and once
//! the queue is full gets upstream's 429 with `Retry-After`, while another user at
//! another level is still served.
//!
//! Queues are per core: with two serving threads the dumps still show a request queued
//! on either core, whichever core serves the dump.

use kapi_e2e::apf::{self, configmap, flow_value, metrics, request, value};
use kapi_e2e::raw::{Conn, Target};
use kapi_e2e::{Server, eventually};
use std::time::Duration;

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-0123456789";
const WAIT: Duration = Duration::from_secs(30);

fn server() -> Server {
    server_on("1")
}

/// A server with `workers` serving threads.
fn server_on(workers: &str) -> Server {
    let tokens = format!("{ALICE},alice,uid-a\n{BOB},bob,uid-b\n");
    apf::server_with_users(&tokens, &["alice", "bob"], &["--workers", workers])
}

/// Twenty watchers of configmaps: alice's configmap writes are estimated at two seats
/// (one per ten watchers), a read at one.
#[test]
fn a_write_to_a_watched_resource_takes_a_seat_per_ten_watchers() {
    let s = server();
    let target = Target::of(&s);
    let mut watches = target.connect(true).expect("h2");
    watches.send(&target.h2_gets("/api/v1/namespaces/default/configmaps?watch=true", 20)).unwrap();
    let key = r#"{flow_schema="global-default",priority_level="global-default""#;
    let mut n = 0;
    assert!(
        eventually(WAIT, || {
            n += 1;
            let name = format!("cm-{n}");
            s.kubectl_token(ALICE, &["create", "configmap", &name], None);
            let m = metrics(&s);
            let at_most = |metric: &str, le: &str| {
                value(&m, &format!("apiserver_flowcontrol_{metric}_bucket{key},le=\"{le}\"}} "))
            };
            let count =
                |metric: &str| value(&m, &format!("apiserver_flowcontrol_{metric}_count{key}}} "));
            // Some write saw more than ten watchers and was estimated above one seat.
            at_most("watch_count_samples", "10") < count("watch_count_samples")
                && at_most("work_estimated_seats", "1") < count("work_estimated_seats")
                && at_most("work_estimated_seats", "2") == count("work_estimated_seats")
        }),
        "{}",
        metrics(&s)
    );
    drop(watches);
}

const LIMITED: &str = r#"
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: PriorityLevelConfiguration
metadata: {name: alice-level}
spec:
  type: Limited
  limited:
    nominalConcurrencyShares: 1
    lendablePercent: 0
    borrowingLimitPercent: 0
    limitResponse:
      type: Queue
      queuing: {queues: 1, handSize: 1, queueLengthLimit: 1}
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata: {name: alice}
spec:
  matchingPrecedence: 100
  priorityLevelConfiguration: {name: alice-level}
  distinguisherMethod: {type: ByUser}
  rules:
  - subjects: [{kind: User, user: {name: alice}}]
    resourceRules:
    - {verbs: ["*"], apiGroups: ["*"], resources: ["*"], namespaces: ["*"], clusterScope: true}
"#;

/// Alice's level has a few seats and one queue of one: with its seats held by POSTs
/// whose bodies have not come, her next request waits (and `dump_requests` shows it, with
/// upstream's columns and details), the one after is refused with 429 and `Retry-After`,
/// and bob, at another level, is served meanwhile.
/// Alice's level in force: its nominal seats.
fn limited(s: &Server) -> f64 {
    apf::apply_level(s, LIMITED, "alice", WAIT);
    let nominal = "apiserver_flowcontrol_nominal_limit_seats{priority_level=\"alice-level\"} ";
    value(&metrics(s), nominal).expect("alice-level")
}

const PATH: &str = "/api/v1/namespaces/default/configmaps";

/// Alice's seats, each held by a POST that has sent its headers and half its body.
fn hold_seats(s: &Server, target: &Target, seats: f64) -> Vec<Conn> {
    let body = configmap("held");
    let mut held: Vec<Conn> = Vec::new();
    for _ in 0..seats as usize {
        let mut c = target.connect(false).expect("connect");
        c.send(&request("POST", PATH, ALICE, &body[..body.len() / 2], body.len())).unwrap();
        held.push(c);
    }
    let in_use = "apiserver_flowcontrol_current_executing_seats";
    assert!(
        eventually(WAIT, || flow_value(&metrics(s), in_use, "alice", "alice-level") == Some(seats)),
        "{seats} {}",
        metrics(s).lines().filter(|l| l.contains("alice")).collect::<Vec<_>>().join("\n")
    );
    held
}

#[test]
fn a_user_whose_seats_are_held_queues_then_gets_429_while_others_are_served() {
    let s = server();
    let seats = limited(&s);
    let target = Target::of(&s);
    let path = PATH;
    let body = configmap("held");
    let mut held = hold_seats(&s, &target, seats);
    // The next one waits in the queue.
    let mut queued = target.connect(false).expect("connect");
    queued.send(&request("GET", path, ALICE, "", 0)).unwrap();
    let dump = "/debug/api_priority_and_fairness/dump_requests?includeRequestDetails=1";
    let mut rows = String::new();
    assert!(
        eventually(WAIT, || {
            rows = s.kubectl_ok(&["get", "--raw", dump]);
            rows.lines().any(|l| l.starts_with("alice-level,"))
        }),
        "{rows}"
    );
    let header = rows.lines().next().unwrap();
    assert!(header.starts_with("PriorityLevelName, FlowSchemaName, QueueIndex,"), "{header}");
    assert!(header.contains(" AdditionalLatency, UserName,") && header.ends_with(" SubResource"));
    let row: Vec<&str> = rows
        .lines()
        .find(|l| l.starts_with("alice-level,"))
        .unwrap()
        .split(',')
        .map(str::trim)
        .collect();
    assert_eq!(&row[..5], ["alice-level", "alice", "0", "0", ""], "{rows}");
    assert_eq!(&row[6..9], ["1", "0", "0s"], "{rows}");
    assert_eq!(&row[9..], ["alice", "list", path, "default", "", "v1", "configmaps", ""]);
    // The queue is full: the next one is refused at once.
    let mut refused = target.connect(false).expect("connect");
    refused.send(&request("GET", path, ALICE, "", 0)).unwrap();
    let (status, head, text) = refused.response_with_head().unwrap();
    assert_eq!(status, 429, "{head}");
    assert!(head.contains("\r\nretry-after: "), "{head}");
    assert_eq!(String::from_utf8_lossy(&text), "Too many requests, please try again later.\n");
    // Bob, at global-default, is served.
    let bob = s.kubectl_token(BOB, &["get", "configmaps"], None);
    assert!(bob.status.success(), "{}", String::from_utf8_lossy(&bob.stderr));
    // Bodies arrive: the held requests finish, and the queued one gets its seat.
    for c in &mut held {
        c.send(&body.as_bytes()[body.len() / 2..]).unwrap();
    }
    let (status, _) = queued.response().unwrap();
    assert_eq!(status, 200);
}

/// Regression guard: the dumps showed only the queues of the core that served them, so
/// with two serving threads a queued request was missing from about half of them. Every
/// dump, each from a new connection (the kernel spreads them over the cores), shows it.
#[test]
fn the_dumps_show_a_request_queued_on_any_core() {
    let s = server_on("2");
    let seats = limited(&s);
    let target = Target::of(&s);
    let held = hold_seats(&s, &target, seats);
    let mut queued = target.connect(false).expect("connect");
    queued.send(&request("GET", PATH, ALICE, "", 0)).unwrap();
    let waiting = "apiserver_flowcontrol_current_inqueue_requests";
    assert!(eventually(WAIT, || {
        flow_value(&metrics(&s), waiting, "alice", "alice-level") == Some(1.0)
    }));
    let base = "/debug/api_priority_and_fairness";
    for _ in 0..6 {
        let rows = s.kubectl_ok(&["get", "--raw", &format!("{base}/dump_requests")]);
        let row = rows.lines().find(|l| l.starts_with("alice-level,"));
        let cells: Vec<&str> = row.unwrap_or_else(|| panic!("{rows}")).split(',').collect();
        assert_eq!(
            cells.iter().map(|c| c.trim()).take(4).collect::<Vec<_>>(),
            ["alice-level", "alice", "0", "0"]
        );
        let rows = s.kubectl_ok(&["get", "--raw", &format!("{base}/dump_queues")]);
        let queue: Vec<&str> = rows
            .lines()
            .find(|l| l.starts_with("alice-level,"))
            .unwrap_or_else(|| panic!("{rows}"))
            .split(',')
            .map(str::trim)
            .collect();
        assert_eq!(&queue[..3], ["alice-level", "0", "1"], "{rows}");
        let rows = s.kubectl_ok(&["get", "--raw", &format!("{base}/dump_priority_levels")]);
        let level: Vec<&str> = rows
            .lines()
            .find(|l| l.starts_with("alice-level,"))
            .unwrap_or_else(|| panic!("{rows}"))
            .split(',')
            .map(str::trim)
            .collect();
        assert_eq!(level[1], "1", "one active queue: {rows}");
    }
    // The bodies come: the queued request runs. Its queue's length when it joined it and
    // its execution time are in /metrics, and so are the level's timing histograms.
    let body = configmap("held");
    for mut c in held {
        c.send(&body.as_bytes()[body.len() / 2..]).unwrap();
        let status = c.response().unwrap().0;
        assert!(status == 201 || status == 409, "{status}"); // one creates, the rest conflict
    }
    assert_eq!(queued.response().unwrap().0, 200);
    let m = metrics(&s);
    let alice = r#"{flow_schema="alice",priority_level="alice-level""#;
    let name = "apiserver_flowcontrol_request_queue_length_after_enqueue";
    assert_eq!(value(&m, &format!("{name}_bucket{alice},le=\"0\"}} ")), Some(0.0), "{m}");
    assert_eq!(value(&m, &format!("{name}_bucket{alice},le=\"10\"}} ")), Some(1.0), "{m}");
    let name = "apiserver_flowcontrol_request_execution_seconds_count";
    let ran = value(&m, &format!("{name}{alice},type=\"regular\"}} "));
    assert_eq!(ran, Some(seats + 1.0), "{m}");
    for name in ["demand_seats", "priority_level_seat_utilization"] {
        let count = m.lines().find(|l| {
            l.starts_with(&format!("apiserver_flowcontrol_{name}_count{{"))
                && l.contains(r#"priority_level="alice-level""#)
        });
        let ns: f64 = count.and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0.0);
        assert!(ns > 0.0, "{name}: {m}");
    }
}
