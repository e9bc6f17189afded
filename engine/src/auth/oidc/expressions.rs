//! The CEL parts of one `jwt` authenticator of an `AuthenticationConfiguration`, as
//! upstream v1.35: `claimMappings.{username,groups,uid}.expression`,
//! `claimMappings.extra[].valueExpression`, `claimValidationRules[].expression` (over
//! `claims`, the token's claims) and `userValidationRules[].expression` (over `user`:
//! username, uid, groups, extra).
//!
//! Start: every expression is compiled once; errors carry upstream's field paths and
//! texts (`claim and expression can't both be set`, `may not be specified when
//! expression is set`, `compilation failed: ...`, `must evaluate to bool`, extra keys
//! domain-prefixed, lowercase and outside k8s.io/kubernetes.io, a username expression
//! reading `claims.email` must be paired with `claims.email_verified`).
//! Per token: a result of the wrong type, a failed evaluation or a false validation
//! rule refuses the token with upstream's error text (logged only; the client sees a
//! bare 401). Evaluations are metered ([`kapi_codec::cel::PER_CALL_LIMIT`]).
//! Static types: a validation rule whose static type is `dyn` is accepted at start and
//! must be a bool at runtime (kapi's checker types less precisely than cel-go's).

use super::super::UserInfo;
use super::OidcError;
use kapi_codec::cel::{Expression, Var};
use serde_json::{Value, json};

/// A validation rule: its expression text, message and program.
#[derive(Debug)]
pub struct Rule {
    pub expression: String,
    pub message: String,
    program: Expression,
}

/// An extra mapping: the key, its value expression's text and program.
#[derive(Debug)]
pub struct Extra {
    pub key: String,
    pub expression: String,
    program: Expression,
}

/// Every compiled expression of one authenticator.
#[derive(Debug, Default)]
pub struct Mapper {
    pub username: Option<Expression>,
    pub groups: Option<Expression>,
    pub uid: Option<Expression>,
    pub extra: Vec<Extra>,
    pub claim_rules: Vec<Rule>,
    pub user_rules: Vec<Rule>,
}

/// Most expressions of one kind (rules, extra mappings) per authenticator.
pub const MAX_EXPRESSIONS: usize = 64;

const CLAIMS: &str = "claims";

fn claims_vars() -> [Var<'static>; 1] {
    [Var { name: CLAIMS, schema: None }]
}

/// The `user` variable's type (upstream's `kubernetes.UserInfo`).
fn user_schema() -> Value {
    let strings = json!({"type": "array", "items": {"type": "string"}});
    json!({"type": "object", "properties": {
        "username": {"type": "string"},
        "uid": {"type": "string"},
        "groups": strings,
        "extra": {"type": "object", "additionalProperties": strings},
    }})
}

fn config(m: String) -> OidcError {
    OidcError::Config(m)
}

fn quoted(v: &str) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// `<path>: Invalid value: "<value>": <detail>`.
pub fn invalid_at(path: &str, value: &str, detail: &str) -> OidcError {
    config(format!("{path}: Invalid value: {}: {detail}", quoted(value)))
}

/// `<path>: Required value[: <detail>]`.
pub fn required_at(path: &str, detail: &str) -> OidcError {
    match detail {
        "" => config(format!("{path}: Required value")),
        d => config(format!("{path}: Required value: {d}")),
    }
}

fn duplicate_at(path: &str, value: &str) -> OidcError {
    config(format!("{path}: Duplicate value: {}", quoted(value)))
}

/// Compile `src` over `claims` (or `user`), reporting at `path` as upstream.
fn compile(src: &str, user: bool, path: &str) -> Result<Expression, OidcError> {
    let schema = user_schema();
    let vars = if user {
        vec![Var { name: "user", schema: Some(&schema) }]
    } else {
        claims_vars().to_vec()
    };
    Expression::compile(src, &vars)
        .map_err(|e| invalid_at(path, src, &format!("compilation failed: {e}")))
}

fn compile_rule(src: &str, user: bool, path: &str) -> Result<Expression, OidcError> {
    let program = compile(src, user, path)?;
    if !program.may_be_bool() {
        return Err(invalid_at(path, src, "must evaluate to bool"));
    }
    Ok(program)
}

fn str_at(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from)
}

/// A `PrefixedClaimOrExpression` / `ClaimOrExpression`: the claim and prefix (when
/// mapped by claim) or the compiled expression.
pub enum Mapping {
    None,
    Claim { claim: String, prefix: Option<String> },
    Expression(Expression),
}

/// Read one claim mapping at `path` (`prefixed`: it may carry a prefix, which a claim
/// then requires).
pub fn mapping(v: Option<&Value>, path: &str, prefixed: bool) -> Result<Mapping, OidcError> {
    let v = v.cloned().unwrap_or_default();
    let claim = str_at(&v, "claim");
    let expression = str_at(&v, "expression");
    let prefix = v.get("prefix").and_then(Value::as_str).map(String::from);
    match (claim, expression) {
        (Some(_), Some(_)) => Err(invalid_at(path, "", "claim and expression can't both be set")),
        (None, None) => Ok(Mapping::None),
        (None, Some(src)) => {
            if let Some(p) = prefix.filter(|_| prefixed) {
                let at = format!("{path}.prefix");
                return Err(invalid_at(&at, &p, "may not be specified when expression is set"));
            }
            Ok(Mapping::Expression(compile(&src, false, &format!("{path}.expression"))?))
        }
        (Some(claim), None) => {
            if prefixed && prefix.is_none() {
                return Err(required_at(
                    &format!("{path}.prefix"),
                    "prefix is required when claim is set. It can be set to an empty string to disable prefixing",
                ));
            }
            Ok(Mapping::Claim { claim, prefix })
        }
    }
}

/// Read `claimValidationRules` at `path`: the claims that must hold a value, and the
/// compiled expression rules.
pub fn claim_rules(
    rules: &[Value],
    path: &str,
) -> Result<(Vec<(String, String)>, Vec<Rule>), OidcError> {
    if rules.len() > MAX_EXPRESSIONS {
        return Err(config(format!(
            "{path}: Too many: {}: must have at most {MAX_EXPRESSIONS} items",
            rules.len()
        )));
    }
    let (mut required, mut compiled) = (Vec::new(), Vec::<Rule>::new());
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let message = str_at(rule, "message").unwrap_or_default();
        match (str_at(rule, "claim"), str_at(rule, "expression")) {
            (Some(claim), Some(_)) => {
                return Err(invalid_at(&at, &claim, "claim and expression can't both be set"));
            }
            (None, None) => return Err(required_at(&at, "claim or expression is required")),
            (Some(claim), None) => {
                if !message.is_empty() {
                    let at = format!("{at}.message");
                    return Err(invalid_at(
                        &at,
                        &message,
                        "may not be specified when claim is set",
                    ));
                }
                if required.iter().any(|(c, _)| c == &claim) {
                    return Err(duplicate_at(&format!("{at}.claim"), &claim));
                }
                required.push((claim, str_at(rule, "requiredValue").unwrap_or_default()));
            }
            (None, Some(src)) => {
                if let Some(v) = str_at(rule, "requiredValue") {
                    let at = format!("{at}.requiredValue");
                    return Err(invalid_at(&at, &v, "may not be specified when expression is set"));
                }
                let at = format!("{at}.expression");
                if compiled.iter().any(|r| r.expression == src) {
                    return Err(duplicate_at(&at, &src));
                }
                let program = compile_rule(&src, false, &at)?;
                compiled.push(Rule { expression: src, message, program });
            }
        }
    }
    Ok((required, compiled))
}

/// Read `userValidationRules` at `path`.
pub fn user_rules(rules: &[Value], path: &str) -> Result<Vec<Rule>, OidcError> {
    if rules.len() > MAX_EXPRESSIONS {
        return Err(config(format!(
            "{path}: Too many: {}: must have at most {MAX_EXPRESSIONS} items",
            rules.len()
        )));
    }
    let mut compiled = Vec::<Rule>::new();
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("{path}[{i}].expression");
        let Some(src) = str_at(rule, "expression") else {
            return Err(required_at(&at, ""));
        };
        if compiled.iter().any(|r| r.expression == src) {
            return Err(duplicate_at(&at, &src));
        }
        let program = compile_rule(&src, true, &at)?;
        let message = str_at(rule, "message").unwrap_or_default();
        compiled.push(Rule { expression: src, message, program });
    }
    Ok(compiled)
}

/// Read `claimMappings.extra` at `path`.
pub fn extra(mappings: &[Value], path: &str) -> Result<Vec<Extra>, OidcError> {
    if mappings.len() > MAX_EXPRESSIONS {
        return Err(config(format!(
            "{path}: Too many: {}: must have at most {MAX_EXPRESSIONS} items",
            mappings.len()
        )));
    }
    let mut out = Vec::<Extra>::new();
    for (i, m) in mappings.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let key = m.get("key").and_then(Value::as_str).unwrap_or_default().to_string();
        check_extra_key(&key, &format!("{at}.key"))?;
        if out.iter().any(|e| e.key == key) {
            return Err(duplicate_at(&format!("{at}.key"), &key));
        }
        let at = format!("{at}.valueExpression");
        let Some(src) = str_at(m, "valueExpression") else {
            return Err(required_at(&at, ""));
        };
        let program = compile(&src, false, &at)?;
        out.push(Extra { key, expression: src, program });
    }
    Ok(out)
}

/// Upstream's `IsDomainPrefixedPath`, lowercase, and the reserved domains.
fn check_extra_key(key: &str, path: &str) -> Result<(), OidcError> {
    if key.is_empty() {
        return Err(required_at(path, ""));
    }
    let Some((host, rest)) = key.split_once('/').filter(|(h, r)| !h.is_empty() && !r.is_empty())
    else {
        return Err(invalid_at(
            path,
            key,
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        ));
    };
    if !is_dns_subdomain(host) {
        return Err(invalid_at(
            path,
            host,
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ));
    }
    let path_ok =
        rest.chars().all(|c| c.is_ascii_alphanumeric() || "/-._~%!$&'()*+,;=:".contains(c));
    if !path_ok {
        return Err(invalid_at(
            path,
            rest,
            "Invalid path: must contain only valid characters (regex used for validation is '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')",
        ));
    }
    if key != key.to_lowercase() {
        return Err(invalid_at(path, key, "must be lowercase"));
    }
    let reserved = |d: &str| host == d || host.ends_with(&format!(".{d}"));
    if reserved("kubernetes.io") || reserved("k8s.io") {
        return Err(invalid_at(
            path,
            key,
            "k8s.io, kubernetes.io and their subdomains are reserved for Kubernetes use",
        ));
    }
    Ok(())
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

impl Mapper {
    /// Upstream's pairing rule: a username expression reading `claims.email` needs
    /// `claims.email_verified` read by it, an extra mapping or a claim validation rule.
    pub fn check_email_verified(&self, username_src: &str, path: &str) -> Result<(), OidcError> {
        let Some(u) = &self.username else { return Ok(()) };
        let verified = |e: &Expression| e.selects(CLAIMS, "email_verified");
        let checked = verified(u)
            || self.extra.iter().any(|x| verified(&x.program))
            || self.claim_rules.iter().any(|r| verified(&r.program));
        if u.selects(CLAIMS, "email") && !checked {
            return Err(invalid_at(
                path,
                username_src,
                "claims.email_verified must be used in claimMappings.username.expression or claimMappings.extra[*].valueExpression or claimValidationRules[*].expression when claims.email is used in claimMappings.username.expression",
            ));
        }
        Ok(())
    }

    /// The username from the username expression.
    pub fn username(&self, e: &Expression, claims: &Value) -> Result<String, OidcError> {
        let err = |m: String| invalid(format!("error evaluating username claim expression: {m}"));
        match e.eval(&[(CLAIMS, claims)]).map_err(err)? {
            Value::String(s) if s.is_empty() => {
                Err(invalid("empty username via CEL expression is not allowed"))
            }
            Value::String(s) => Ok(s),
            _ => Err(err("username claim expression must return a string".into())),
        }
    }

    /// The groups from the groups expression.
    pub fn groups(&self, e: &Expression, claims: &Value) -> Result<Vec<String>, OidcError> {
        let err = |m: String| invalid(format!("error evaluating group claim expression: {m}"));
        string_list(e.eval(&[(CLAIMS, claims)]).map_err(err)?).map_err(err)
    }

    /// The uid from the uid expression.
    pub fn uid(&self, e: &Expression, claims: &Value) -> Result<String, OidcError> {
        let err = |m: String| invalid(format!("error evaluating uid claim expression: {m}"));
        match e.eval(&[(CLAIMS, claims)]).map_err(err)? {
            Value::String(s) => Ok(s),
            _ => Err(err("uid claim expression must return a string".into())),
        }
    }

    /// Add the extra mappings' values (empty results are left out).
    pub fn add_extra(&self, claims: &Value, user: &mut UserInfo) -> Result<(), OidcError> {
        for x in &self.extra {
            let err = |m: String| {
                invalid(format!("error evaluating extra claim expression: {}: {m}", x.expression))
            };
            let values = string_list(x.program.eval(&[(CLAIMS, claims)]).map_err(err)?);
            let values = values.map_err(err)?;
            if !values.is_empty() {
                user.extra.insert(x.key.clone(), values);
            }
        }
        Ok(())
    }

    /// Every claim validation rule holds.
    pub fn validate_claims(&self, claims: &Value) -> Result<(), OidcError> {
        let err = |m: String| invalid(format!("error evaluating claim validation expression: {m}"));
        check_rules(&self.claim_rules, CLAIMS, claims).map_err(err)
    }

    /// Every user validation rule holds for `user` (before `system:authenticated`).
    pub fn validate_user(&self, user: &UserInfo) -> Result<(), OidcError> {
        if self.user_rules.is_empty() {
            return Ok(());
        }
        let err = |m: String| invalid(format!("error evaluating user info validation rule: {m}"));
        check_rules(&self.user_rules, "user", &user_json(user)).map_err(err)
    }
}

fn invalid(m: impl Into<String>) -> OidcError {
    OidcError::Invalid(m.into())
}

fn check_rules(rules: &[Rule], var: &str, value: &Value) -> Result<(), String> {
    for r in rules {
        match r.program.eval(&[(var, value)])? {
            Value::Bool(true) => {}
            Value::Bool(false) => {
                return Err(format!(
                    "validation expression '{}' failed: {}",
                    r.expression, r.message
                ));
            }
            _ => return Err("validation expression must return a boolean".into()),
        }
    }
    Ok(())
}

/// A user as upstream's `authentication/v1` UserInfo JSON (empty fields left out).
fn user_json(u: &UserInfo) -> Value {
    let mut o = serde_json::Map::new();
    if !u.name.is_empty() {
        o.insert("username".into(), json!(u.name));
    }
    if !u.uid.is_empty() {
        o.insert("uid".into(), json!(u.uid));
    }
    if !u.groups.is_empty() {
        o.insert("groups".into(), json!(u.groups));
    }
    if !u.extra.is_empty() {
        o.insert("extra".into(), json!(u.extra));
    }
    Value::Object(o)
}

/// A string or a list of strings (empty strings dropped; null: none), as upstream.
fn string_list(v: Value) -> Result<Vec<String>, String> {
    let wrong = || "expression must return a string or a list of strings".to_string();
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s]),
        Value::Array(items) => items
            .into_iter()
            .filter(|i| i.as_str() != Some(""))
            .map(|i| match i {
                Value::String(s) => Ok(s),
                _ => Err(wrong()),
            })
            .collect(),
        _ => Err(wrong()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_lists_are_upstreams() {
        assert_eq!(string_list(json!("a")), Ok(vec!["a".to_string()]));
        assert_eq!(string_list(json!("")), Ok(vec![]));
        assert_eq!(string_list(Value::Null), Ok(vec![]));
        assert_eq!(string_list(json!(["a", "", "b"])), Ok(vec!["a".into(), "b".into()]));
        assert!(string_list(json!([1])).is_err());
        assert!(string_list(json!(true)).is_err());
    }

    #[test]
    fn extra_keys_are_domain_prefixed_lowercase_and_not_reserved() {
        assert!(check_extra_key("example.org/team", "k").is_ok());
        let e = |k: &str| check_extra_key(k, "k").unwrap_err().to_string();
        assert!(e("").contains("Required value"));
        assert!(e("team").contains("must be a domain-prefixed path"));
        assert!(e("example.org/Team").contains("must be lowercase"));
        assert!(e("Example.org/team").contains("RFC 1123 subdomain"));
        assert!(e("foo.kubernetes.io/x").contains("reserved for Kubernetes use"));
        assert!(e("k8s.io/x").contains("reserved for Kubernetes use"));
    }

    #[test]
    fn user_json_leaves_empty_fields_out() {
        let u = UserInfo { name: "bob".into(), ..Default::default() };
        assert_eq!(user_json(&u), json!({"username": "bob"}));
    }
}
