//! Repeated keys in request bodies (issue #14 item 5), as upstream's strict decoders
//! report them per `fieldValidation`: Strict is a 400 naming them, Warn (the default) a
//! `Warning` header per JSON field (a YAML body's one multi-line error cannot be a header
//! and upstream drops it), Ignore nothing; the last value of a repeated key wins.

use kapi_e2e::Server;
use serde_json::Value;

/// An answer: its code, `Warning` headers and JSON body.
struct Answer {
    code: u16,
    warnings: Vec<String>,
    body: Value,
}

impl Answer {
    fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }
}

/// `curl` a request with a body.
fn send(s: &Server, method: &str, path: &str, content_type: &str, body: &str) -> Answer {
    let pki = s.dir.path().join("data/pki");
    let token = std::fs::read_to_string(pki.join("admin.token")).unwrap();
    let file = s.dir.path().join("request-body");
    let headers = s.dir.path().join("response-headers");
    std::fs::write(&file, body).unwrap();
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "30", "-X", method, "-w", "\n%{http_code}"])
        .arg("--cacert")
        .arg(pki.join("ca.crt"))
        .arg("-D")
        .arg(&headers)
        .args(["-H", &format!("Authorization: Bearer {}", token.trim())])
        .args(["-H", &format!("Content-Type: {content_type}")])
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg(format!("{}{path}", s.url()))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, code) = text.rsplit_once('\n').expect("status line");
    let head = std::fs::read_to_string(&headers).unwrap_or_default();
    let warnings = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("warning"))
        .map(|(_, v)| v.trim().to_string())
        .collect();
    Answer {
        code: code.trim().parse().expect("code"),
        warnings,
        body: serde_json::from_str(body).unwrap_or(Value::Null),
    }
}

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

fn json_map(name: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"x","name":"{name}"}},"data":{{"a":"1","b":"2","a":"3"}}}}"#
    )
}

/// Regression (issue #14 item 5): repeated JSON keys were accepted silently (the last
/// value kept) whatever `fieldValidation` said.
#[test]
fn repeated_json_fields_are_refused_warned_or_ignored_per_field_validation() {
    let s = Server::start();
    let strict = send(
        &s,
        "POST",
        &format!("{CONFIGMAPS}?fieldValidation=Strict"),
        "application/json",
        &json_map("a"),
    );
    assert_eq!(strict.code, 400, "{}", strict.body);
    assert_eq!(strict.body["reason"], "BadRequest");
    assert_eq!(
        strict.message(),
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "metadata.name", duplicate field "data.a""#
    );

    let warned = send(&s, "POST", CONFIGMAPS, "application/json", &json_map("w"));
    assert_eq!(warned.code, 201, "{}", warned.body);
    assert_eq!(
        warned.warnings,
        [r#"299 - "duplicate field \"metadata.name\"""#, r#"299 - "duplicate field \"data.a\"""#]
    );
    assert_eq!(warned.body["metadata"]["name"], "w", "the last value wins");
    assert_eq!(warned.body["data"]["a"], "3");

    let ignored = send(
        &s,
        "POST",
        &format!("{CONFIGMAPS}?fieldValidation=Ignore"),
        "application/json",
        &json_map("i"),
    );
    assert_eq!(ignored.code, 201, "{}", ignored.body);
    assert!(ignored.warnings.is_empty(), "{:?}", ignored.warnings);

    // Repeats come with unknown fields; inside an unknown field only the field counts.
    let mixed = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"w","name":"w"},"bogus":{"k":1,"k":2}}"#;
    let put = send(
        &s,
        "PUT",
        &format!("{CONFIGMAPS}/w?fieldValidation=Strict"),
        "application/json",
        mixed,
    );
    assert_eq!(put.code, 400, "{}", put.body);
    assert_eq!(
        put.message(),
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "metadata.name", unknown field "bogus""#
    );
}

/// Regression (issue #14 item 5): repeated YAML keys were accepted silently; upstream's
/// YAML library names each with the line of its value.
#[test]
fn repeated_yaml_keys_are_refused_with_their_lines_when_strict() {
    let s = Server::start();
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n  name: y\ndata:\n  a: '1'\n  a: '2'\n";
    let strict =
        send(&s, "POST", &format!("{CONFIGMAPS}?fieldValidation=Strict"), "application/yaml", yaml);
    assert_eq!(strict.code, 400, "{}", strict.body);
    assert_eq!(
        strict.message(),
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: yaml: unmarshal errors:\n  line 5: key \"name\" already set in map\n  line 8: key \"a\" already set in map"
    );
    let warned = send(&s, "POST", CONFIGMAPS, "application/yaml", yaml);
    assert_eq!(warned.code, 201, "{}", warned.body);
    assert!(warned.warnings.is_empty(), "a multi-line warning is dropped: {:?}", warned.warnings);
    assert_eq!(warned.body["data"]["a"], "2");

    let apply = format!("{CONFIGMAPS}/z?fieldManager=m&fieldValidation=Strict");
    let body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: z\ndata: {k: a, k: b}\n";
    let applied = send(&s, "PATCH", &apply, "application/apply-patch+yaml", body);
    assert_eq!(applied.code, 400, "{}", applied.body);
    assert_eq!(
        applied.message(),
        "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  line 5: key \"k\" already set in map"
    );
}
