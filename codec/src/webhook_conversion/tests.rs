use super::*;

fn crd(versions: Value) -> Value {
    json!({"metadata": {"name": "widgets.example.com"}, "spec": {
        "group": "example.com",
        "conversion": {"strategy": "Webhook", "webhook": {
            "clientConfig": {"url": "https://127.0.0.1:9443/convert", "caBundle": "LS0tCg=="},
            "conversionReviewVersions": versions}}}})
}

fn hook() -> Webhook {
    Webhook::from_crd(&crd(json!(["v1", "v1beta1"]))).unwrap()
}

fn widget() -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget",
           "metadata": {"name": "w", "namespace": "ns", "uid": "u-1", "resourceVersion": "9",
                        "labels": {"a": "1"}, "creationTimestamp": "2026-01-01T00:00:00Z"},
           "spec": {"size": "3"}})
}

fn plan() -> Plan {
    hook().plan(&widget(), "example.com/v2", "req-1").unwrap().unwrap()
}

fn answer(converted: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
        "response": {"uid": "req-1", "result": {"status": "Success"}, "convertedObjects": [converted]}
    }))
    .unwrap()
}

fn v2(meta: Value) -> Value {
    json!({"apiVersion": "example.com/v2", "kind": "Widget", "metadata": meta, "spec": {"sizeCount": 3}})
}

fn message(e: CodecError) -> String {
    e.to_string()
}

#[test]
fn the_client_config_and_versions_come_from_the_crd() {
    let w = hook();
    assert_eq!(w.crd_name, "widgets.example.com");
    assert_eq!(w.endpoint, Endpoint::Url("https://127.0.0.1:9443/convert".into()));
    assert_eq!(w.ca_bundle, b"---\n");
    let svc = json!({"metadata": {"name": "x"}, "spec": {"conversion": {"strategy": "Webhook",
        "webhook": {"clientConfig": {"service": {"namespace": "n", "name": "s"}}, "conversionReviewVersions": ["v1"]}}}});
    let w = Webhook::from_crd(&svc).unwrap();
    let want = ServiceRef { namespace: "n".into(), name: "s".into(), path: "/".into(), port: 443 };
    assert_eq!(w.endpoint, Endpoint::Service(want));
    let none = json!({"spec": {"conversion": {"strategy": "None"}}});
    assert!(Webhook::from_crd(&none).is_none());
}

#[test]
fn the_review_version_is_the_first_supported_one_in_the_crds_order() {
    let pick = |v: Value| Webhook::from_crd(&crd(v)).unwrap().review_version();
    assert_eq!(pick(json!(["v1", "v1beta1"])), Some(ReviewVersion::V1));
    assert_eq!(pick(json!(["v1beta1", "v1"])), Some(ReviewVersion::V1beta1));
    assert_eq!(pick(json!(["v9", "v1"])), Some(ReviewVersion::V1));
    assert_eq!(pick(json!(["v9"])), None);
    let err =
        Webhook::from_crd(&crd(json!(["v9"]))).unwrap().plan(&widget(), "example.com/v2", "u");
    assert_eq!(message(err.unwrap_err()), "no supported conversion review versions");
}

#[test]
fn the_request_carries_uid_desired_version_and_the_object_without_its_revision() {
    let p = plan();
    let review: Value = serde_json::from_slice(&p.body).unwrap();
    assert_eq!(review["apiVersion"], "apiextensions.k8s.io/v1");
    assert_eq!(review["kind"], "ConversionReview");
    assert_eq!(review["request"]["uid"], "req-1");
    assert_eq!(review["request"]["desiredAPIVersion"], "example.com/v2");
    let sent = &review["request"]["objects"][0];
    assert_eq!(sent["spec"]["size"], "3");
    assert!(sent["metadata"].get("resourceVersion").is_none());
}

#[test]
fn an_object_already_in_the_desired_version_is_not_sent() {
    assert!(hook().plan(&widget(), "example.com/v1", "u").unwrap().is_none());
}

#[test]
fn a_converted_object_keeps_the_original_metadata_but_the_webhooks_labels_and_annotations() {
    let meta = json!({"name": "w", "namespace": "ns", "uid": "u-1", "generation": 7,
                      "creationTimestamp": "1999-01-01T00:00:00Z",
                      "labels": {"a": "2"}, "annotations": {"b": "x"}});
    let out = plan().finish(&answer(v2(meta))).unwrap();
    assert_eq!(out["spec"], json!({"sizeCount": 3}));
    assert_eq!(out["apiVersion"], "example.com/v2");
    let m = &out["metadata"];
    assert_eq!(m["creationTimestamp"], "2026-01-01T00:00:00Z");
    assert!(m.get("generation").is_none());
    assert!(m.get("resourceVersion").is_none());
    assert_eq!(m["labels"], json!({"a": "2"}));
    assert_eq!(m["annotations"], json!({"b": "x"}));
    // Labels the webhook drops are dropped.
    let out =
        plan().finish(&answer(v2(json!({"name": "w", "namespace": "ns", "uid": "u-1"})))).unwrap();
    assert!(out["metadata"].get("labels").is_none());
}

#[test]
fn identity_metadata_changes_and_bad_labels_are_refused_with_upstreams_words() {
    let gvk = "example.com/v1, Kind=Widget";
    let idx = format!("conversion webhook for {gvk} returned invalid converted object at index 0");
    let cases = [
        (
            v2(json!({"name": "x", "namespace": "ns", "uid": "u-1"})),
            format!("{idx}: must have the same name: w != x"),
        ),
        (
            v2(json!({"name": "w", "namespace": "ns", "uid": "u-2"})),
            format!("{idx}: must have the same UID: u-1 != u-2"),
        ),
        (
            json!({"apiVersion": "example.com/v3", "kind": "Widget", "metadata": {}}),
            format!(
                "{idx}: invalid groupVersion (expected example.com/v2, received example.com/v3)"
            ),
        ),
        (
            json!({"apiVersion": "example.com/v2", "kind": "Gadget", "metadata": {}}),
            format!("{idx}: invalid kind (expected Widget, received Gadget)"),
        ),
        (
            json!({"apiVersion": "example.com/v2", "kind": "Widget", "metadata": {"name": "w", "namespace": "ns", "uid": "u-1", "labels": {"a": 1}}}),
            format!(
                "conversion webhook for {gvk} returned invalid metadata in object at index 0: metadata.labels[a] must be a string, but is int64 in converted object"
            ),
        ),
        (
            json!({"apiVersion": "example.com/v2", "kind": "Widget", "metadata": {"name": "w", "namespace": "ns", "uid": "u-1", "labels": {"a": "-bad-"}}}),
            format!(
                "conversion webhook for {gvk} returned invalid metadata in object at index 0: metadata.labels: Invalid value: \"-bad-\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
            ),
        ),
        (
            json!({"apiVersion": "example.com/v2", "kind": "Widget", "metadata": "x"}),
            format!("{idx}: must have the same name: w != "),
        ),
        (
            json!({"apiVersion": "example.com/v2", "kind": "Widget", "metadata": {"name": "w", "namespace": "ns", "uid": "u-1", "annotations": []}}),
            format!(
                "conversion webhook for {gvk} returned invalid metadata in object at index 0: invalid metadata.annotations of type []interface {{}} in converted object"
            ),
        ),
    ];
    for (converted, want) in cases {
        assert_eq!(message(plan().finish(&answer(converted)).unwrap_err()), want);
    }
}

#[test]
fn bad_review_answers_fail_with_upstreams_words_and_never_panic() {
    let failed = "conversion webhook for example.com/v1, Kind=Widget failed";
    let review = |response: Value| {
        serde_json::to_vec(&json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "response": response})).unwrap()
    };
    let cases: Vec<(Vec<u8>, String)> = vec![
        (
            review(json!({"uid": "req-1", "result": {"status": "Failure", "message": "no way"}})),
            format!("{failed}: no way"),
        ),
        (
            review(json!({"uid": "req-1", "result": {"status": "Failure"}})),
            format!("{failed}: response.result.status was 'Failure', not 'Success'"),
        ),
        (
            review(json!({"uid": "other", "result": {"status": "Success"}})),
            format!("{failed}: expected response.uid=\"req-1\", got \"other\""),
        ),
        (
            serde_json::to_vec(
                &json!({"kind": "ConversionReview", "apiVersion": "apiextensions.k8s.io/v1"}),
            )
            .unwrap(),
            format!("{failed}: no response provided"),
        ),
        (
            serde_json::to_vec(&json!({"kind": "Nope", "apiVersion": "v1"})).unwrap(),
            format!(
                "{failed}: expected webhook response of apiextensions.k8s.io/v1, Kind=ConversionReview, got /v1, Kind=Nope"
            ),
        ),
        (
            review(
                json!({"uid": "req-1", "result": {"status": "Success"}, "convertedObjects": []}),
            ),
            "conversion webhook for example.com/v1, Kind=Widget returned 0 objects, expected 1"
                .into(),
        ),
    ];
    for (body, want) in cases {
        assert_eq!(message(plan().finish(&body).unwrap_err()), want);
    }
    for garbage in [&b"garbage"[..], b"", b"[]", b"{\"response\": 3}", b"\xff\xfe", b"{\"kind\":"] {
        assert!(plan().finish(garbage).is_err());
    }
    let two = review(
        json!({"uid": "req-1", "result": {"status": "Success"}, "convertedObjects": [1, 2]}),
    );
    assert!(message(plan().finish(&two).unwrap_err()).ends_with("returned 2 objects, expected 1"));
    let not_obj =
        review(json!({"uid": "req-1", "result": {"status": "Success"}, "convertedObjects": ["x"]}));
    assert!(plan().finish(&not_obj).is_err());
}

#[test]
fn a_v1beta1_review_checks_neither_the_reviews_kind_nor_the_uid() {
    let w = Webhook::from_crd(&crd(json!(["v1beta1"]))).unwrap();
    let p = w.plan(&widget(), "example.com/v2", "req-1").unwrap().unwrap();
    let review: Value = serde_json::from_slice(&p.body).unwrap();
    assert_eq!(review["apiVersion"], "apiextensions.k8s.io/v1beta1");
    let body = serde_json::to_vec(&json!({"response": {"result": {"status": "Success"},
        "convertedObjects": [v2(json!({"name": "w", "namespace": "ns", "uid": "u-1"}))]}}))
    .unwrap();
    assert_eq!(p.finish(&body).unwrap()["spec"]["sizeCount"], 3);
}
