//! Bootstrap tokens (`--enable-bootstrap-token-auth`), upstream's bootstrap token
//! authenticator: a bearer token `<id>.<secret>` (id 6, secret 16 characters of
//! `[a-z0-9]`) names the kube-system Secret `bootstrap-token-<id>` of type
//! `bootstrap.kubernetes.io/token`, read from the watch cache. The token authenticates
//! as `system:bootstrap:<id>` in `system:bootstrappers` plus the Secret's
//! `auth-extra-groups` (each `system:bootstrappers:...`), sorted, when the Secret holds
//! the same id and secret, is not being deleted, has not expired and is marked
//! `usage-bootstrap-authentication: true`.
//!
//! Invariant: any mismatch means "not a token of ours" (another authenticator may know
//! it), never an error; the secret is compared in constant time and never logged.

use super::UserInfo;
use super::serviceaccount::{Kind, Objects};
use base64::Engine as _;
use serde_json::Value;

const NAMESPACE: &str = "kube-system";
const SECRET_PREFIX: &str = "bootstrap-token-";
const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
const DEFAULT_GROUP: &str = "system:bootstrappers";

/// The id and secret of a well-formed bootstrap token.
fn parse(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let ok = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (ok(id, 6) && ok(secret, 16)).then_some((id, secret))
}

/// A decoded `data` value of the Secret ("" when absent or not base64).
fn data(secret: &Value, key: &str) -> String {
    let encoded = secret.pointer(&format!("/data/{key}")).and_then(Value::as_str).unwrap_or("");
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the Secret's `expiration` (RFC 3339) is past at `now`; an unparseable one
/// counts as expired, as upstream.
fn expired(secret: &Value, now: i64) -> bool {
    let exp = data(secret, "expiration");
    if exp.is_empty() {
        return false;
    }
    kapi_codec::time::parse_rfc3339(&exp).is_none_or(|(t, _)| now > t)
}

/// Whether an extra group name is one upstream accepts:
/// `system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]`.
fn valid_group(g: &str) -> bool {
    let Some(rest) = g.strip_prefix("system:bootstrappers:") else { return false };
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !rest.is_empty()
        && rest.len() <= 256
        && rest.bytes().all(|b| allowed(b) || b == b':' || b == b'-')
        && rest.bytes().last().is_some_and(allowed)
}

/// The user's groups: the default one and the Secret's extra groups, sorted and
/// deduplicated; None when an extra group is invalid.
fn groups(secret: &Value) -> Option<Vec<String>> {
    let mut groups = std::collections::BTreeSet::from([DEFAULT_GROUP.to_string()]);
    let extra = data(secret, "auth-extra-groups");
    if !extra.is_empty() {
        for g in extra.split(',') {
            if !valid_group(g) {
                return None;
            }
            groups.insert(g.to_string());
        }
    }
    Some(groups.into_iter().collect())
}

/// The user of a bootstrap token, if it is a valid one.
pub fn authenticate(token: &str, objects: &dyn Objects, now: i64) -> Option<UserInfo> {
    let (id, secret_part) = parse(token)?;
    let name = format!("{SECRET_PREFIX}{id}");
    let secret = objects.get(Kind::Secret, Some(NAMESPACE), &name)?;
    let refuse = |why: &str| {
        tracing::debug!("bootstrap secret {NAMESPACE}/{name} matching bearer token {why}");
    };
    if secret.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null()) {
        refuse("is deleted and awaiting removal");
        return None;
    }
    if secret.get("type").and_then(Value::as_str) != Some(SECRET_TYPE) {
        refuse("has an invalid type");
        return None;
    }
    if !constant_time_eq(data(&secret, "token-secret").as_bytes(), secret_part.as_bytes()) {
        refuse("has an invalid token-secret");
        return None;
    }
    if data(&secret, "token-id") != id {
        refuse("has an invalid token-id");
        return None;
    }
    if expired(&secret, now) {
        refuse("has expired");
        return None;
    }
    if data(&secret, "usage-bootstrap-authentication") != "true" {
        refuse("is not marked usage-bootstrap-authentication=true");
        return None;
    }
    let Some(groups) = groups(&secret) else {
        refuse("has an invalid auth-extra-groups");
        return None;
    };
    Some(UserInfo { name: format!("system:bootstrap:{id}"), groups, ..Default::default() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct One(Value);
    impl Objects for One {
        fn get(&self, kind: Kind, ns: Option<&str>, name: &str) -> Option<Value> {
            let ok = kind == Kind::Secret
                && ns == Some("kube-system")
                && self.0.pointer("/metadata/name").and_then(Value::as_str) == Some(name);
            ok.then(|| self.0.clone())
        }
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn secret(extra: &[(&str, &str)]) -> Value {
        let mut data = json!({
            "token-id": b64("abcdef"),
            "token-secret": b64("0123456789abcdef"),
            "usage-bootstrap-authentication": b64("true"),
        });
        for (k, v) in extra {
            data[*k] = json!(b64(v));
        }
        json!({"metadata": {"name": "bootstrap-token-abcdef", "namespace": "kube-system"},
            "type": "bootstrap.kubernetes.io/token", "data": data})
    }

    const TOKEN: &str = "abcdef.0123456789abcdef";
    const NOW: i64 = 1_700_000_000;

    #[test]
    fn a_valid_token_is_its_bootstrap_user() {
        let s = secret(&[("auth-extra-groups", "system:bootstrappers:b,system:bootstrappers:a")]);
        let u = authenticate(TOKEN, &One(s), NOW).unwrap();
        assert_eq!(u.name, "system:bootstrap:abcdef");
        assert_eq!(
            u.groups,
            ["system:bootstrappers", "system:bootstrappers:a", "system:bootstrappers:b"]
        );
    }

    #[test]
    fn malformed_wrong_expired_unmarked_or_badly_grouped_tokens_are_not_ours() {
        let plain = One(secret(&[]));
        assert!(authenticate("abcdef.0123456789abcdeX", &plain, NOW).is_none());
        assert!(authenticate("abcdef.0123456789abcdee", &plain, NOW).is_none());
        assert!(authenticate("abcdef0123456789abcdef", &plain, NOW).is_none());
        let expired = One(secret(&[("expiration", "2020-01-01T00:00:00Z")]));
        assert!(authenticate(TOKEN, &expired, NOW).is_none());
        let later = One(secret(&[("expiration", "2099-01-01T00:00:00Z")]));
        assert!(authenticate(TOKEN, &later, NOW).is_some());
        let garbled = One(secret(&[("expiration", "tomorrow")]));
        assert!(authenticate(TOKEN, &garbled, NOW).is_none());
        let unmarked = One(secret(&[("usage-bootstrap-authentication", "false")]));
        assert!(authenticate(TOKEN, &unmarked, NOW).is_none());
        let bad_group = One(secret(&[("auth-extra-groups", "system:masters")]));
        assert!(authenticate(TOKEN, &bad_group, NOW).is_none());
        let mut wrong_type = secret(&[]);
        wrong_type["type"] = json!("Opaque");
        assert!(authenticate(TOKEN, &One(wrong_type), NOW).is_none());
        let mut deleting = secret(&[]);
        deleting["metadata"]["deletionTimestamp"] = json!("2020-01-01T00:00:00Z");
        assert!(authenticate(TOKEN, &One(deleting), NOW).is_none());
    }

    #[test]
    fn extra_group_names_follow_upstreams_pattern() {
        assert!(valid_group("system:bootstrappers:kubeadm:default-node-token"));
        assert!(!valid_group("system:bootstrappers:"));
        assert!(!valid_group("system:bootstrappers:x-"));
        assert!(!valid_group("system:bootstrappers:Caps"));
    }
}
