use super::*;
use std::collections::HashMap;

#[derive(Default)]
struct Model(HashMap<(String, String), Value>);

impl Model {
    fn put(&mut self, kind: Kind, ns: &str, obj: Value) {
        let name = obj["metadata"]["name"].as_str().unwrap().to_string();
        self.0.insert((format!("{kind:?}/{ns}"), name), obj);
    }
}

impl Objects for Model {
    fn get(&self, kind: Kind, ns: Option<&str>, name: &str) -> Option<Value> {
        self.0.get(&(format!("{kind:?}/{}", ns.unwrap_or("")), name.to_string())).cloned()
    }
}

fn tokens() -> Tokens {
    let kp = rcgen::KeyPair::generate().unwrap();
    let signer = SigningKey::from_pem(&kp.serialize_pem()).unwrap();
    Tokens {
        keys: vec![signer.public.clone()],
        signer,
        issuers: vec!["https://kubernetes.default.svc.cluster.local".into()],
        audiences: vec!["https://kubernetes.default.svc.cluster.local".into()],
        max_expiration: None,
        extend_expiration: true,
    }
}

fn obj(name: &str, uid: &str) -> Value {
    json!({"metadata": {"name": name, "uid": uid}})
}

const NOW: i64 = 1_800_000_000;

fn issue(t: &Tokens, bound: Option<Bound>, exp: i64) -> (String, i64) {
    let req = Issue {
        namespace: "ns",
        name: "sa",
        uid: "sa-uid",
        audiences: t.audiences.clone(),
        expiration_seconds: exp,
        bound,
        now: NOW,
        jti: "j1".into(),
    };
    t.issue(&req).unwrap()
}

#[test]
fn a_token_request_token_authenticates_as_its_service_account() {
    let t = tokens();
    let mut m = Model::default();
    m.put(Kind::ServiceAccount, "ns", obj("sa", "sa-uid"));
    let (token, exp) = issue(&t, None, 3600);
    assert_eq!(exp, NOW + 3600);
    let u = t.authenticate(&token, &m, NOW + 10).unwrap().unwrap();
    assert_eq!(u.name, "system:serviceaccount:ns:sa");
    assert_eq!(u.uid, "sa-uid");
    assert_eq!(u.groups, ["system:serviceaccounts", "system:serviceaccounts:ns"]);
    assert_eq!(u.extra["authentication.kubernetes.io/credential-id"], ["JTI=j1"]);
    // Expired, deleted, or recreated under the same name: refused.
    assert!(matches!(t.authenticate(&token, &m, NOW + 3600), Err(TokenError::Invalid(_))));
    m.put(Kind::ServiceAccount, "ns", obj("sa", "other-uid"));
    assert!(matches!(t.authenticate(&token, &m, NOW), Err(TokenError::Invalid(_))));
    m.0.clear();
    assert!(matches!(t.authenticate(&token, &m, NOW), Err(TokenError::Missing(_))));
}

#[test]
fn pod_bound_tokens_die_with_the_pod_and_kubelet_expiry_is_extended() {
    let t = tokens();
    let mut m = Model::default();
    m.put(Kind::ServiceAccount, "ns", obj("sa", "sa-uid"));
    m.put(Kind::Pod, "ns", obj("p", "p-uid"));
    let bound = Bound {
        kind: Kind::Pod,
        name: "p".into(),
        uid: "p-uid".into(),
        node: Some(("n1".into(), "n-uid".into())),
    };
    let (token, reported) = issue(&t, Some(bound), 3607);
    assert_eq!(reported, NOW + 3607, "status reports the requested expiry");
    let claims = jwt::peek_claims(&token).unwrap();
    assert_eq!(claims["exp"], NOW + EXTENDED_EXPIRATION);
    assert_eq!(claims["kubernetes.io"]["warnafter"], NOW + 3607);
    assert_eq!(claims["kubernetes.io"]["node"]["name"], "n1");
    let u = t.authenticate(&token, &m, NOW + 7200).unwrap().unwrap();
    assert_eq!(u.extra["authentication.kubernetes.io/pod-name"], ["p"]);
    assert_eq!(u.extra["authentication.kubernetes.io/node-name"], ["n1"]);
    // Deleting: valid for a grace minute, then not.
    let mut deleting = obj("p", "p-uid");
    deleting["metadata"]["deletionTimestamp"] = json!(crate::time::rfc3339(NOW));
    m.put(Kind::Pod, "ns", deleting);
    assert!(t.authenticate(&token, &m, NOW + 30).is_ok());
    assert!(t.authenticate(&token, &m, NOW + 61).is_err());
    m.0.retain(|k, _| !k.0.starts_with("Pod"));
    assert!(t.authenticate(&token, &m, NOW).is_err());
}

#[test]
fn audiences_and_issuers_decide() {
    let t = tokens();
    let mut m = Model::default();
    m.put(Kind::ServiceAccount, "ns", obj("sa", "sa-uid"));
    let req = Issue {
        namespace: "ns",
        name: "sa",
        uid: "sa-uid",
        audiences: vec!["vault".into()],
        expiration_seconds: 600,
        bound: None,
        now: NOW,
        jti: "j".into(),
    };
    let (token, _) = t.issue(&req).unwrap();
    assert!(t.authenticate(&token, &m, NOW).is_err(), "not for this API server");
    let foreign = tokens();
    let (theirs, _) = issue(&foreign, None, 600);
    assert!(t.authenticate(&theirs, &m, NOW).is_err(), "signed by another key");
    let other_iss = Tokens { issuers: vec!["https://elsewhere".into()], ..tokens() };
    let (elsewhere, _) = issue(&other_iss, None, 600);
    assert_eq!(t.authenticate(&elsewhere, &m, NOW), Ok(None), "another issuer: not ours");
    assert_eq!(t.authenticate("static-token", &m, NOW), Ok(None));
}

#[test]
fn max_expiration_caps_the_token() {
    let t = Tokens { max_expiration: Some(1200), ..tokens() };
    let (token, reported) = issue(&t, None, 86_400);
    assert_eq!(reported, NOW + 1200);
    assert_eq!(jwt::peek_claims(&token).unwrap()["exp"], NOW + 1200);
}

#[test]
fn legacy_secret_tokens_need_the_secret_to_hold_them() {
    use base64::Engine as _;
    let t = tokens();
    let claims = json!({
        "iss": LEGACY_ISSUER,
        "kubernetes.io/serviceaccount/namespace": "ns",
        "kubernetes.io/serviceaccount/secret.name": "sa-token",
        "kubernetes.io/serviceaccount/service-account.name": "sa",
        "kubernetes.io/serviceaccount/service-account.uid": "sa-uid",
        "sub": "system:serviceaccount:ns:sa",
    });
    let token = t.signer.sign(&claims).unwrap();
    let mut m = Model::default();
    m.put(Kind::ServiceAccount, "ns", obj("sa", "sa-uid"));
    let mut secret = obj("sa-token", "s-uid");
    secret["data"] =
        json!({"token": base64::engine::general_purpose::STANDARD.encode(token.as_bytes())});
    m.put(Kind::Secret, "ns", secret.clone());
    let u = t.authenticate(&token, &m, NOW).unwrap().unwrap();
    assert_eq!(u.name, "system:serviceaccount:ns:sa");
    secret["data"]["token"] = json!("b3RoZXI=");
    m.put(Kind::Secret, "ns", secret);
    assert!(t.authenticate(&token, &m, NOW).is_err(), "the secret holds another token");
}

#[test]
fn discovery_documents_name_the_issuer_and_keys() {
    let t = tokens();
    let doc = t.openid_configuration("https://127.0.0.1:6443/openid/v1/jwks").unwrap();
    assert_eq!(doc["issuer"], "https://kubernetes.default.svc.cluster.local");
    assert_eq!(doc["id_token_signing_alg_values_supported"], json!(["ES256"]));
    assert_eq!(t.jwks()["keys"][0]["kid"], t.signer.public.kid);
    let plain = Tokens { issuers: vec!["kubernetes/serviceaccount".into()], ..tokens() };
    assert!(plain.openid_configuration("x").is_none());
}
