//! API Priority and Fairness on the request path, against the real binary: a write to a
//! watched resource is estimated wider (upstream's mutating work estimator, seen in
//! `apiserver_flowcontrol_work_estimated_seats` and `..._watch_count_samples`); a user
//! whose level's seats are all held (POSTs whose bodies are not sent yet: seats are taken
//! before the body is read) waits in its queue, where `dump_requests` shows it, and once
//! the queue is full gets upstream's 429 with `Retry-After`, while another user at
//! another level is still served.
//!
//! The server runs one serving thread (`--workers 1`): queues are per core, and the dump
//! shows the queues of the core that serves it.

use kapi_e2e::raw::{Conn, Target};
use kapi_e2e::{Server, ServerOptions, eventually};
use std::time::Duration;

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-0123456789";
const WAIT: Duration = Duration::from_secs(30);

fn server() -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tokens.csv");
    std::fs::write(&file, format!("{ALICE},alice,uid-a\n{BOB},bob,uid-b\n")).expect("tokens");
    let extra_args = vec![
        "--token-auth-file".into(),
        file.display().to_string(),
        "--workers".into(),
        "1".into(),
    ];
    let s = Server::start_with(ServerOptions { extra_args, ..Default::default() });
    std::mem::forget(dir); // read at start; the directory outlives the test
    s.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        "apf-users",
        "--clusterrole=cluster-admin",
        "--user=alice",
        "--user=bob",
    ]);
    s
}

/// The value of the first line of `metrics` that starts with `prefix`.
fn value(metrics: &str, prefix: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
}

fn metrics(s: &Server) -> String {
    s.kubectl_ok(&["get", "--raw", "/metrics"])
}

/// An HTTP/1.1 request as `token`.
fn request(method: &str, path: &str, token: &str, body: &str, content_length: usize) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Accept: application/json\r\nContent-Type: application/json\r\n\
         Content-Length: {content_length}\r\n\r\n{body}"
    )
    .into_bytes()
}

fn configmap(name: &str) -> String {
    format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}}}}"#)
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
#[test]
fn a_user_whose_seats_are_held_queues_then_gets_429_while_others_are_served() {
    let s = server();
    let out = s.kubectl_stdin(&["apply", "-f", "-"], LIMITED);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // In force once the schema reads as not dangling (its level exists in the config).
    assert!(eventually(WAIT, || {
        let out = s.kubectl(&[
            "get",
            "flowschema",
            "alice",
            "-o",
            "jsonpath={.status.conditions[0].status}",
        ]);
        out.stdout == b"False"
    }));
    let nominal = "apiserver_flowcontrol_nominal_limit_seats{priority_level=\"alice-level\"} ";
    let seats = value(&metrics(&s), nominal).expect("alice-level");
    let target = Target::of(&s);
    let path = "/api/v1/namespaces/default/configmaps";
    // Each held request has sent its headers and half its body: it holds a seat.
    let body = configmap("held");
    let mut held: Vec<Conn> = Vec::new();
    for _ in 0..seats as usize {
        let mut c = target.connect(false).expect("connect");
        c.send(&request("POST", path, ALICE, &body[..body.len() / 2], body.len())).unwrap();
        held.push(c);
    }
    let in_use = "apiserver_flowcontrol_current_executing_seats{priority_level=\"alice-level\"} ";
    assert!(
        eventually(WAIT, || value(&metrics(&s), in_use) == Some(seats)),
        "{seats} {}",
        metrics(&s).lines().filter(|l| l.contains("alice")).collect::<Vec<_>>().join("\n")
    );
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
