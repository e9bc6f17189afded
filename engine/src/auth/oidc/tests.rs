//! Unit tests of OIDC settings and token validation (no network: key sets installed).

use super::*;
use crate::auth::jwt::SigningKey;
use serde_json::json;

const NOW: i64 = 1_700_000_000;
const ISSUER: &str = "https://issuer.example";

fn key() -> SigningKey {
    SigningKey::from_pem(&rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap()
}

fn flags(username_claim: &str, prefix: Option<&str>) -> Settings {
    from_flags(
        ISSUER,
        "kapi",
        username_claim,
        prefix,
        Some("groups"),
        Some("oidc:"),
        &["hd=example.com".to_string()],
        None,
        &["ES256".to_string()],
    )
    .unwrap()
}

fn issuer(settings: Settings, key: &SigningKey) -> Issuer {
    let i = Issuer::new(settings).unwrap();
    i.set_keys(vec![key.public.clone()]);
    i
}

fn claims() -> Value {
    json!({"iss": ISSUER, "aud": ["kapi", "other"], "sub": "u1", "email": "u1@example.com",
        "email_verified": true, "groups": ["dev", "ops"], "hd": "example.com", "exp": NOW + 60})
}

#[test]
fn flag_usernames_get_the_issuer_prefix_unless_email_or_told_otherwise() {
    assert_eq!(flags("sub", None).username.prefix, "https://issuer.example#");
    assert_eq!(flags("email", None).username.prefix, "");
    assert_eq!(flags("sub", Some("-")).username.prefix, "");
    assert_eq!(flags("sub", Some("corp:")).username.prefix, "corp:");
    assert!(from_flags(ISSUER, "", "sub", None, None, None, &[], None, &[]).is_err());
    assert!(from_flags("http://x", "a", "sub", None, None, None, &[], None, &[]).is_err());
}

#[test]
fn valid_tokens_map_claims_to_the_user() {
    let k = key();
    let i = issuer(flags("sub", None), &k);
    let u = i.authenticate(&k.sign(&claims()).unwrap(), NOW).unwrap();
    assert_eq!(u.name, "https://issuer.example#u1");
    assert_eq!(u.groups, ["oidc:dev", "oidc:ops"]);
    let i = issuer(flags("email", None), &k);
    assert_eq!(i.authenticate(&k.sign(&claims()).unwrap(), NOW).unwrap().name, "u1@example.com");
}

#[test]
fn tokens_failing_any_check_are_refused() {
    let k = key();
    let i = issuer(flags("email", None), &k);
    let bad = |f: &dyn Fn(&mut Value)| {
        let mut c = claims();
        f(&mut c);
        i.authenticate(&k.sign(&c).unwrap(), NOW)
    };
    assert!(bad(&|c| c["aud"] = json!("someone-else")).is_err());
    assert!(bad(&|c| c["exp"] = json!(NOW - 1)).is_err());
    assert!(bad(&|c| c.as_object_mut().unwrap().remove("exp").map(|_| ()).unwrap_or(())).is_err());
    assert!(bad(&|c| c["nbf"] = json!(NOW + 3600)).is_err());
    assert!(bad(&|c| c["hd"] = json!("evil.com")).is_err());
    assert!(bad(&|c| c["email_verified"] = json!(false)).is_err());
    assert!(bad(&|c| c["iss"] = json!("https://other")).is_err());
    assert!(bad(&|_| ()).is_ok());
    let other = key();
    assert!(i.authenticate(&other.sign(&claims()).unwrap(), NOW).is_err(), "unknown key");
    let fresh = Issuer::new(flags("sub", None)).unwrap();
    let e = fresh.authenticate(&k.sign(&claims()).unwrap(), NOW).unwrap_err();
    assert!(matches!(e, OidcError::NotInitialized(_)));
    // RS256 only (the flags' default) refuses an ES256 token.
    let rs_only = from_flags(ISSUER, "kapi", "sub", None, None, None, &[], None, &[]).unwrap();
    assert!(issuer(rs_only, &k).authenticate(&k.sign(&claims()).unwrap(), NOW).is_err());
}

#[test]
fn structured_configuration_maps_claims_and_refuses_what_it_cannot_do() {
    let text = r#"
apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
- issuer:
    url: https://issuer.example
    audiences: [kapi]
  claimValidationRules:
  - claim: hd
    requiredValue: example.com
  claimMappings:
    username:
      claim: email
      prefix: "corp:"
    groups:
      claim: groups
      prefix: ""
    uid:
      claim: sub
"#;
    let settings = from_config_file(text).unwrap();
    assert_eq!(settings.len(), 1);
    let k = key();
    let i = issuer(settings[0].clone(), &k);
    let u = i.authenticate(&k.sign(&claims()).unwrap(), NOW).unwrap();
    assert_eq!((u.name.as_str(), u.uid.as_str()), ("corp:u1@example.com", "u1"));
    assert_eq!(u.groups, ["dev", "ops"]);
    let no_prefix = text.replace("      prefix: \"corp:\"\n", "");
    assert!(from_config_file(&no_prefix).unwrap_err().to_string().contains("prefix is required"));
    assert!(from_config_file("kind: Other").is_err());
    let two = text.replace("audiences: [kapi]", "audiences: [kapi, other]");
    assert!(from_config_file(&two).unwrap_err().to_string().contains("MatchAny"));
    let two = two.replace(
        "audiences: [kapi, other]",
        "audiences: [kapi, other]\n    audienceMatchPolicy: MatchAny",
    );
    assert_eq!(from_config_file(&two).unwrap()[0].audiences, ["kapi", "other"]);
}

#[test]
fn tokens_route_to_the_issuer_they_name() {
    let k = key();
    let issuers = vec![Arc::new(issuer(flags("sub", None), &k))];
    assert!(route(&issuers, &k.sign(&claims()).unwrap()).is_some());
    assert!(route(&issuers, &k.sign(&json!({"iss": "https://x"})).unwrap()).is_none());
    assert!(route(&issuers, "not-a-jwt").is_none());
}

#[test]
fn a_token_naming_an_unknown_key_asks_for_a_fresh_key_set() {
    use futures_util::FutureExt as _;
    let k = key();
    let i = issuer(flags("sub", None), &k);
    assert!(i.authenticate(&k.sign(&claims()).unwrap(), NOW).is_ok());
    assert!(i.stale.notified().now_or_never().is_none(), "a known key asks nothing");
    let rotated = key();
    assert!(i.authenticate(&rotated.sign(&claims()).unwrap(), NOW).is_err());
    assert!(i.stale.notified().now_or_never().is_some(), "an unknown kid wakes the refresher");
}

const CEL_CONFIG: &str = r#"
apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
- issuer:
    url: https://issuer.example
    audiences: [kapi]
  claimValidationRules:
  - expression: 'claims.hd == "example.com"'
    message: wrong domain
  - expression: 'claims.email_verified == true'
  claimMappings:
    username:
      expression: '"cel:" + claims.email'
    groups:
      expression: 'claims.groups.map(g, "team:" + g)'
    uid:
      expression: 'claims.sub'
    extra:
    - key: example.org/level
      valueExpression: 'has(claims.level) ? claims.level : ""'
  userValidationRules:
  - expression: '!user.username.startsWith("cel:root")'
    message: no root
"#;

fn cel_issuer(k: &SigningKey) -> Issuer {
    issuer(from_config_file(CEL_CONFIG).unwrap().remove(0), k)
}

#[test]
fn cel_claim_mappings_build_the_user() {
    let k = key();
    let i = cel_issuer(&k);
    let mut c = claims();
    c["level"] = json!(["gold", ""]);
    c["jti"] = json!("t-1");
    let u = i.authenticate(&k.sign(&c).unwrap(), NOW).unwrap();
    assert_eq!((u.name.as_str(), u.uid.as_str()), ("cel:u1@example.com", "u1"));
    assert_eq!(u.groups, ["team:dev", "team:ops"]);
    assert_eq!(u.extra["example.org/level"], ["gold"]);
    assert_eq!(u.extra["authentication.kubernetes.io/credential-id"], ["JTI=t-1"]);
    // An empty extra value leaves the key out.
    let u = i.authenticate(&k.sign(&claims()).unwrap(), NOW).unwrap();
    assert!(!u.extra.contains_key("example.org/level"));
}

#[test]
fn cel_validation_rules_and_wrong_result_types_refuse_the_token() {
    let k = key();
    let i = cel_issuer(&k);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims();
        f(&mut c);
        i.authenticate(&k.sign(&c).unwrap(), NOW).map_err(|e| e.to_string())
    };
    let e = with(&|c| c["hd"] = json!("evil.com")).unwrap_err();
    assert_eq!(
        e,
        "oidc: error evaluating claim validation expression: validation expression 'claims.hd == \"example.com\"' failed: wrong domain"
    );
    let e = with(&|c| c["email"] = json!("root@example.com")).unwrap_err();
    assert!(
        e.contains("error evaluating user info validation rule") && e.contains("no root"),
        "{e}"
    );
    let e = with(&|c| c["sub"] = json!(7)).unwrap_err();
    assert!(e.contains("uid claim expression must return a string"), "{e}");
    let e = with(&|c| c["groups"] = json!([1])).unwrap_err();
    assert!(e.starts_with("oidc: error evaluating group claim expression: "), "{e}");
    let e = with(&|c| c["level"] = json!({"a": 1})).unwrap_err();
    assert!(e.contains("error evaluating extra claim expression"), "{e}");
    let e = with(&|c| c["email"] = json!(1)).unwrap_err();
    assert!(e.contains("error evaluating username claim expression"), "{e}");
}

#[test]
fn cel_configuration_errors_name_the_field() {
    let err = |from: &str, to: &str| {
        let text = CEL_CONFIG.replace(from, to);
        assert_ne!(text, CEL_CONFIG, "{from}");
        let e = from_config_file(&text).unwrap_err().to_string();
        e.strip_prefix("oidc: ").unwrap_or(&e).to_string()
    };
    assert_eq!(
        err("      expression: 'claims.sub'", "      expression: 'claims.sub'\n      claim: sub"),
        "jwt[0].claimMappings.uid: Invalid value: \"\": claim and expression can't both be set"
    );
    assert_eq!(
        err("      expression: '\"cel:\"", "      prefix: p\n      expression: '\"cel:\""),
        "jwt[0].claimMappings.username.prefix: Invalid value: \"p\": may not be specified when expression is set"
    );
    let e = err("'claims.sub'", "'claims.sub +'");
    assert!(e.starts_with("jwt[0].claimMappings.uid.expression: Invalid value: \"claims.sub +\": compilation failed: ERROR: <input>:1:"), "{e}");
    assert_eq!(
        err("'claims.email_verified == true'", "'\"x\"'"),
        "jwt[0].claimValidationRules[1].expression: Invalid value: \"\\\"x\\\"\": must evaluate to bool"
    );
    let e = err("'!user.username", "'user.nope == \"\" && !user.username");
    assert!(e.starts_with("jwt[0].userValidationRules[0].expression: Invalid value:"), "{e}");
    assert!(e.contains("undefined field 'nope'"), "{e}");
    let e = err("  - expression: 'claims.email_verified == true'\n", "");
    assert!(
        e.contains("claims.email_verified must be used in claimMappings.username.expression"),
        "{e}"
    );
    assert!(e.starts_with("jwt[0].claimMappings.username.expression: Invalid value:"), "{e}");
    assert!(err("key: example.org/level", "key: level").contains("domain-prefixed path"));
    assert!(err("    message: wrong domain\n", "    message: wrong domain\n    requiredValue: x\n")
        .contains("claimValidationRules[0].requiredValue: Invalid value: \"x\": may not be specified when expression is set"));
}
