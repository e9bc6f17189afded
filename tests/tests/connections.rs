//! Connection limits of the real binary (issue #14): clients that send headers a byte a
//! second, sit idle, or open too many connections cannot hold the server; watches end
//! within [min, 2*min] of `--min-request-timeout` without `timeoutSeconds`; requests
//! still running after `--request-timeout` get 504; request heads up to upstream's 1 MiB
//! are served, larger ones (and URLs past the `http` crate's limit) get an answer with a
//! body on HTTP/1.1 and HTTP/2. Timeouts are set to a few seconds by
//! flags; every bound checked is generous.

use kapi_e2e::raw::{TCP_ESTABLISHED, Target};
use kapi_e2e::{Server, ServerOptions};
use std::time::{Duration, Instant};

fn server(flags: &[&str]) -> Server {
    let extra_args = flags.iter().map(|s| s.to_string()).collect();
    Server::start_with(ServerOptions { extra_args, ..Default::default() })
}

#[test]
fn a_slowloris_client_is_closed_after_the_header_timeout() {
    let s = server(&["--read-header-timeout", "3s"]);
    let t = Target::of(&s);
    let mut conn = t.connect(false).expect("connect");
    let start = Instant::now();
    let request = t.h1_request("GET", "/api/v1/namespaces", None);
    let mut closed_after = None;
    for b in request.iter().take(20) {
        std::thread::sleep(Duration::from_secs(1));
        if conn.send(std::slice::from_ref(b)).is_err() || conn.tcp_state() != TCP_ESTABLISHED {
            closed_after = Some(start.elapsed());
            break;
        }
    }
    let closed_after = closed_after.expect("a byte a second kept the connection open for 20 s");
    assert!(closed_after >= Duration::from_millis(2500), "closed after {closed_after:?}");
    assert!(closed_after <= Duration::from_secs(10), "closed after {closed_after:?}");
}

#[test]
fn idle_connections_are_closed_after_the_idle_timeout_and_busy_ones_are_not() {
    let s = server(&["--idle-connection-timeout", "3s"]);
    let t = Target::of(&s);

    // HTTP/1.1 keep-alive: one request, then nothing.
    let mut h1 = t.connect(false).expect("connect");
    let (code, _) = h1.request(&t.h1_request("GET", "/api/v1/namespaces/default", None)).unwrap();
    assert_eq!(code, 200);
    let idle_since = Instant::now();
    assert!(h1.closed_within(Duration::from_secs(15)), "an idle keep-alive connection stayed open");
    let idle = idle_since.elapsed();
    assert!(idle >= Duration::from_millis(2500), "closed after {idle:?} idle");

    // HTTP/2 with no stream: GOAWAY and close (pings or settings are not activity).
    let mut h2 = t.connect(true).expect("connect h2");
    h2.send(&t.h2_gets("/", 0)).unwrap();
    let start = Instant::now();
    assert!(h2.closed_within(Duration::from_secs(15)), "an idle HTTP/2 connection stayed open");
    assert!(start.elapsed() >= Duration::from_millis(2500));

    // A watch in flight is not idle: it lasts its timeoutSeconds (6 s, twice the idle
    // timeout), then the connection idles out.
    let mut w = t.connect(false).expect("connect");
    let start = Instant::now();
    let watch = "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=6";
    let (code, _) = w.request(&t.h1_request("GET", watch, None)).expect("watch");
    assert_eq!(code, 200);
    let lasted = start.elapsed();
    assert!(lasted >= Duration::from_millis(5500), "the watch ended after {lasted:?}");
    assert!(w.closed_within(Duration::from_secs(15)));
}

/// Regression (CI, etcd backend, issue #14's slow watchers): a connection whose client
/// stopped reading was closed at its idle timeout with a plain close, which queues the
/// FIN behind the response bytes the client never took; the client's socket stayed
/// established for good. A connection closed with bytes still unsent is reset.
#[test]
fn an_idle_connection_whose_client_stopped_reading_is_reset_not_left_open() {
    let s = server(&["--idle-connection-timeout", "2s"]);
    let t = Target::of(&s);
    let mut c = t.connect(false).expect("connect");
    let big = "x".repeat(200 * 1024);
    for i in 0..4 {
        let body = format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big-{i}"}},"data":{{"k":"{big}"}}}}"#
        );
        let req = t.h1_request("POST", "/api/v1/namespaces/default/configmaps", Some(body.as_bytes()));
        assert_eq!(c.request(&req).expect("create").0, 201);
    }
    // A response of about 800 KB that fits the server's socket buffers but not the
    // client's 16 KiB receive buffer: the server finishes it and the connection idles.
    let tcp = t.tcp_with_receive_buffer(16 * 1024).expect("tcp");
    let stalled = t.connect_over(false, tcp).expect("connect");
    let mut stalled = stalled;
    stalled.send(&t.h1_request("GET", "/api/v1/namespaces/default/configmaps", None)).unwrap();
    let closed = kapi_e2e::eventually(Duration::from_secs(20), || {
        stalled.tcp_state() != TCP_ESTABLISHED
    });
    assert!(closed, "the stalled client's connection was never closed");
}

#[test]
fn a_watch_without_timeout_seconds_ends_within_min_and_twice_min_request_timeout() {
    let s = server(&["--min-request-timeout", "2"]);
    let t = Target::of(&s);
    for path in [
        "/api/v1/namespaces/default/configmaps?watch=true",
        "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=0",
    ] {
        let mut c = t.connect(false).expect("connect");
        let start = Instant::now();
        let (code, _) = c.request(&t.h1_request("GET", path, None)).expect("watch");
        let lasted = start.elapsed();
        assert_eq!(code, 200, "{path}");
        assert!(lasted >= Duration::from_millis(1900), "{path}: ended after {lasted:?}");
        assert!(lasted <= Duration::from_secs(6), "{path}: ended after {lasted:?}");
    }
}

#[test]
fn a_request_still_running_after_the_request_timeout_gets_504_and_watches_are_exempt() {
    let s = server(&["--request-timeout", "1s"]);
    let t = Target::of(&s);
    let mut c = t.connect(false).expect("connect");
    // A create whose body never finishes arriving: the handler waits for it and runs out.
    let mut req = t.h1_request("POST", "/api/v1/namespaces/default/configmaps", Some(&[b' '; 100]));
    req.truncate(req.len() - 90);
    let start = Instant::now();
    let (code, body) = c.request(&req).expect("create");
    assert_eq!(code, 504, "{}", String::from_utf8_lossy(&body));
    assert!(start.elapsed() < Duration::from_secs(10));
    let status: serde_json::Value = serde_json::from_slice(&body).expect("Status");
    assert_eq!(status["reason"], "Timeout");
    assert_eq!(
        status["message"],
        "Timeout: request did not complete within requested timeout - context deadline exceeded"
    );
    // The server still serves requests.
    let mut c = t.connect(false).expect("connect");
    let (code, _) = c.request(&t.h1_request("GET", "/api/v1/namespaces/default", None)).unwrap();
    assert_eq!(code, 200);
    // A watch is long-running: it lasts its own 3 s.
    let start = Instant::now();
    let watch = "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=3";
    let (code, _) = c.request(&t.h1_request("GET", watch, None)).expect("watch");
    assert_eq!(code, 200);
    assert!(start.elapsed() >= Duration::from_millis(2500));
}

#[test]
fn connections_beyond_the_per_core_limit_are_refused_while_open_ones_work() {
    // Two workers (the harness's), three connections each.
    let s = server(&["--max-connections-per-core", "3"]);
    let t = Target::of(&s);
    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..20 {
        match t.connect(false) {
            Ok(mut c) => match c.request(&t.h1_request("GET", "/version", None)) {
                Ok((200, _)) => open.push(c),
                _ => refused += 1,
            },
            Err(_) => refused += 1,
        }
    }
    assert!((3..=6).contains(&open.len()), "{} connections served, {refused} refused", open.len());
    assert_eq!(open.len() + refused, 20);
    for c in &mut open {
        let (code, _) =
            c.request(&t.h1_request("GET", "/api/v1/namespaces/default", None)).unwrap();
        assert_eq!(code, 200, "an open connection stopped working");
    }
    // Room again once they are gone.
    drop(open);
    let ok = kapi_e2e::eventually(Duration::from_secs(10), || {
        t.connect(false)
            .and_then(|mut c| c.request(&t.h1_request("GET", "/version", None)))
            .is_ok_and(|(code, _)| code == 200)
    });
    assert!(ok, "no connection was served after the others closed");
}

/// An HTTP/1.1 GET of `path` with `extra` header lines (each `name: value`).
fn h1_get_with(t: &Target, path: &str, extra: &[String]) -> Vec<u8> {
    let mut req = t.h1_request("GET", path, None);
    req.truncate(req.len() - 2);
    for line in extra {
        req.extend_from_slice(line.as_bytes());
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req
}

/// Send `req` on a new HTTP/1.1 connection, ignoring a failed send (the server may answer
/// and close before a refused head is all sent), and read the response.
fn h1_answer(t: &Target, req: &[u8]) -> (u16, Vec<u8>) {
    let mut conn = t.connect(false).expect("connect");
    let _ = conn.send(req);
    conn.response().expect("a response")
}

/// Go's `MaxHeaderBytes` (1 MiB), which upstream reads heads up to (plus 4 KiB).
const MIB: usize = 1 << 20;

#[test]
fn http1_heads_up_to_upstreams_limit_are_served_and_larger_ones_get_431_with_a_body() {
    let s = server(&[]);
    let t = Target::of(&s);
    let path = "/api/v1/namespaces/default";
    // A 1 MiB head (a header of 1 MiB less the rest): served.
    let small = h1_get_with(&t, path, &[]);
    let pad = MIB - small.len() - "x-pad: \r\n".len();
    let req = h1_get_with(&t, path, &[format!("x-pad: {}", "a".repeat(pad))]);
    assert_eq!(req.len(), MIB);
    let (code, body) = h1_answer(&t, &req);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));

    // 16 KiB more than upstream reads: 431, Go's plain-text body (before: hyper's bare
    // 431, empty body).
    let req = h1_get_with(&t, path, &[format!("x-pad: {}", "a".repeat(pad + 20 * 1024))]);
    let (code, body) = h1_answer(&t, &req);
    assert_eq!(code, 431);
    assert_eq!(body, b"431 Request Header Fields Too Large");

    // Many headers, each small: upstream counts bytes only; hyper takes 100 fields.
    let many: Vec<String> = (0..200).map(|i| format!("x-h{i}: v")).collect();
    let (code, body) = h1_answer(&t, &h1_get_with(&t, path, &many));
    assert_eq!(code, 431);
    assert_eq!(body, b"431 Request Header Fields Too Large");

    // The connection that answered a 1 MiB head goes on serving.
    let mut conn = t.connect(false).expect("connect");
    let req = h1_get_with(&t, path, &[format!("x-pad: {}", "a".repeat(pad))]);
    for _ in 0..2 {
        let (code, _) = conn.request(&req).expect("keep-alive request");
        assert_eq!(code, 200);
    }
}

#[test]
fn http1_urls_past_the_uri_limit_get_414_with_a_status_body() {
    let s = server(&[]);
    let t = Target::of(&s);
    // 60 KiB: reaches the handler (the ConfigMap does not exist).
    let name = "a".repeat(60 * 1024);
    let path = format!("/api/v1/namespaces/default/configmaps/{name}");
    let (code, body) = h1_answer(&t, &t.h1_request("GET", &path, None));
    assert_eq!(code, 404, "{}", String::from_utf8_lossy(&body));

    // 100 KiB: past the 65,534 bytes the `http` crate takes. Upstream would serve it (its
    // limit is the whole head's 1 MiB); kapi answers 414 with a Status (before: hyper's
    // bare 414, empty body).
    let name = "a".repeat(100 * 1024);
    let path = format!("/api/v1/namespaces/default/configmaps/{name}");
    let (code, body) = h1_answer(&t, &t.h1_request("GET", &path, None));
    assert_eq!(code, 414);
    let status: serde_json::Value = serde_json::from_slice(&body).expect("a Status");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["code"], 414);
    assert!(status["message"].as_str().unwrap().contains("65534"), "{status}");
}

/// One HTTP/2 GET of `path` with an `x-pad` header of `pad` bytes: status and body.
async fn h2_get(t: &Target, path: &str, pad: usize) -> (u16, Vec<u8>) {
    let tcp = tokio::net::TcpStream::connect(t.addr()).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(t.tls_config(true));
    let tls = tls.connect(name, tcp).await.expect("TLS");
    let (mut client, conn) = h2::client::handshake(tls).await.expect("HTTP/2 handshake");
    tokio::spawn(conn);
    let req = http::Request::get(format!("https://127.0.0.1{path}"))
        .header("authorization", format!("Bearer {}", t.token))
        .header("accept", "application/json")
        .header("x-pad", "a".repeat(pad))
        .body(())
        .unwrap();
    let (resp, _) = client.send_request(req, true).expect("send");
    let resp = resp.await.expect("a response");
    let code = resp.status().as_u16();
    let mut stream = resp.into_body();
    let mut body = Vec::new();
    while let Some(chunk) = stream.data().await {
        let chunk = chunk.expect("body");
        let _ = stream.flow_control().release_capacity(chunk.len());
        body.extend_from_slice(&chunk);
    }
    (code, body)
}

#[tokio::test(flavor = "current_thread")]
async fn http2_header_lists_up_to_upstreams_limit_are_served_and_larger_ones_get_431_with_a_body() {
    let s = server(&[]);
    let t = Target::of(&s);
    let path = "/api/v1/namespaces/default";
    let (code, body) = h2_get(&t, path, MIB - 1024).await;
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    // Past upstream's 1 MiB + 320: Go's 431 and body (before: h2's bare 431 at 1 MiB).
    let (code, body) = h2_get(&t, path, MIB + 1024).await;
    assert_eq!(code, 431);
    assert_eq!(body, b"<h1>HTTP Error 431</h1><p>Request Header Field(s) Too Large</p>");
    // The connection-level limit of h2 (twice upstream's) still answers 431, bare.
    let (code, _) = h2_get(&t, path, 2 * MIB + 4096).await;
    assert_eq!(code, 431);
}
