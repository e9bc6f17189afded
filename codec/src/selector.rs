//! Label and field selectors: parsing with upstream's syntax and errors, and matching.
//!
//! Label selectors: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`,
//! `k>N`, `k<N`, comma-separated (AND). Field selectors: `f=v`, `f==v`, `f!=v`,
//! comma-separated, with `\,` `\=` `\\` escapes in values.

use crate::error::CodecError;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
    Gt(i64),
    Lt(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
}

impl Requirement {
    fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let v = labels.and_then(|l| l.get(&self.key)).and_then(Value::as_str);
        match &self.op {
            Op::Eq(x) => v == Some(x.as_str()),
            Op::NotEq(x) => v != Some(x.as_str()),
            Op::In(xs) => v.is_some_and(|v| xs.iter().any(|x| x == v)),
            Op::NotIn(xs) => v.is_none_or(|v| !xs.iter().any(|x| x == v)),
            Op::Exists => v.is_some(),
            Op::NotExists => v.is_none(),
            Op::Gt(n) => v.and_then(|v| v.parse::<i64>().ok()).is_some_and(|v| v > *n),
            Op::Lt(n) => v.and_then(|v| v.parse::<i64>().ok()).is_some_and(|v| v < *n),
        }
    }
}

/// A parsed label selector (all requirements must hold).
#[derive(Debug, Clone, Default)]
pub struct LabelSelector {
    reqs: Vec<Requirement>,
}

fn bad(msg: String) -> CodecError {
    CodecError::BadSelector(msg)
}

/// Split on commas that are not inside parentheses.
fn split_top(s: &str) -> Result<Vec<&str>, CodecError> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(bad(format!(
                        "unable to parse requirement: found ')', expected: '(' in {s:?}"
                    )));
                }
            }
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(bad(format!("unable to parse requirement: found '', expected: ')' in {s:?}")));
    }
    out.push(&s[start..]);
    Ok(out)
}

fn check_key(key: &str) -> Result<(), CodecError> {
    let errs = crate::validation::qualified_name_errors(key);
    if key.is_empty() || !errs.is_empty() {
        return Err(bad(format!(
            "unable to parse requirement: invalid label key \"{key}\": {}",
            errs.join("; ")
        )));
    }
    Ok(())
}

fn check_value(v: &str) -> Result<(), CodecError> {
    let errs = crate::validation::label_value_errors(v);
    if !errs.is_empty() {
        return Err(bad(format!(
            "unable to parse requirement: invalid label value: \"{v}\": at key: {}",
            errs.join("; ")
        )));
    }
    Ok(())
}

fn parse_set(rest: &str) -> Result<Vec<String>, CodecError> {
    let inner =
        rest.trim().strip_prefix('(').and_then(|r| r.strip_suffix(')')).ok_or_else(|| {
            bad(format!("unable to parse requirement: found '{}', expected: '('", rest.trim()))
        })?;
    let vals: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
    for v in &vals {
        check_value(v)?;
    }
    Ok(vals)
}

fn parse_requirement(raw: &str) -> Result<Requirement, CodecError> {
    let s = raw.trim();
    if let Some(key) = s.strip_prefix('!') {
        let key = key.trim();
        check_key(key)?;
        return Ok(Requirement { key: key.into(), op: Op::NotExists });
    }
    let words: Vec<&str> = s.splitn(2, char::is_whitespace).collect();
    if words.len() == 2 {
        let rest = words[1].trim_start();
        if let Some(set) = rest.strip_prefix("notin") {
            check_key(words[0])?;
            return Ok(Requirement { key: words[0].into(), op: Op::NotIn(parse_set(set)?) });
        }
        if let Some(set) = rest.strip_prefix("in") {
            check_key(words[0])?;
            return Ok(Requirement { key: words[0].into(), op: Op::In(parse_set(set)?) });
        }
    }
    for (token, mk) in [("==", 0), ("!=", 1), ("=", 0), (">", 2), ("<", 3)] {
        if let Some((k, v)) = s.split_once(token) {
            let (k, v) = (k.trim(), v.trim());
            check_key(k)?;
            let op = match mk {
                0 | 1 => {
                    check_value(v)?;
                    if mk == 0 { Op::Eq(v.into()) } else { Op::NotEq(v.into()) }
                }
                _ => {
                    let n = v.parse::<i64>().map_err(|_| bad(format!("unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer: {v}")))?;
                    if mk == 2 { Op::Gt(n) } else { Op::Lt(n) }
                }
            };
            return Ok(Requirement { key: k.into(), op });
        }
    }
    if s.contains(char::is_whitespace) || s.contains('(') {
        return Err(bad(format!(
            "unable to parse requirement: found '{s}', expected: in, notin, =, ==, !=, gt, lt"
        )));
    }
    check_key(s)?;
    Ok(Requirement { key: s.into(), op: Op::Exists })
}

impl LabelSelector {
    /// A `metav1.LabelSelector` object (`matchLabels`, `matchExpressions` with In,
    /// NotIn, Exists, DoesNotExist); an empty one matches everything. An unknown
    /// operator is an error.
    pub fn from_object(selector: &Value) -> Result<Self, CodecError> {
        let mut reqs: Vec<Requirement> = Vec::new();
        for (k, v) in selector.get("matchLabels").and_then(Value::as_object).into_iter().flatten() {
            let v = v.as_str().unwrap_or_default().to_string();
            reqs.push(Requirement { key: k.clone(), op: Op::Eq(v) });
        }
        for e in selector.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
            let key = e.get("key").and_then(Value::as_str).unwrap_or_default().to_string();
            let values: Vec<String> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|vs| vs.iter().filter_map(|v| v.as_str().map(String::from)).collect())
                .unwrap_or_default();
            let op = match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => Op::In(values),
                "NotIn" => Op::NotIn(values),
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::NotExists,
                other => {
                    return Err(bad(format!("\"{other}\" is not a valid label selector operator")));
                }
            };
            reqs.push(Requirement { key, op });
        }
        Ok(Self { reqs })
    }

    pub fn parse(s: &str) -> Result<Self, CodecError> {
        if s.trim().is_empty() {
            return Ok(Self::default());
        }
        let reqs = split_top(s)?.into_iter().map(parse_requirement).collect::<Result<_, _>>()?;
        Ok(Self { reqs })
    }

    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.reqs.iter().all(|r| r.matches(labels))
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// `key=value` requirements (for watch indexes).
    pub fn equality(&self) -> impl Iterator<Item = (&str, &str)> {
        self.reqs.iter().filter_map(|r| match &r.op {
            Op::Eq(v) => Some((r.key.as_str(), v.as_str())),
            _ => None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldReq {
    field: String,
    value: String,
    equal: bool,
}

/// A parsed field selector (`a=b,c!=d`).
#[derive(Debug, Clone, Default)]
pub struct FieldSelector {
    reqs: Vec<FieldReq>,
}

/// Split on unescaped commas.
fn split_escaped(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            cur.push(c);
            if let Some(n) = chars.next() {
                cur.push(n);
            }
        } else if c == sep {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

fn unescape(v: &str) -> Result<String, CodecError> {
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n @ ('\\' | ',' | '=')) => out.push(n),
                Some(n) => return Err(bad(format!("invalid escape sequence: \\{n}"))),
                None => return Err(bad("unterminated escape sequence".into())),
            },
            '=' | ',' => {
                return Err(bad(format!("invalid field selector: unescaped {c} in value {v:?}")));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

fn parse_field_req(part: &str) -> Result<FieldReq, CodecError> {
    let (field, value, equal) = if let Some((f, v)) = part.split_once("!=") {
        (f, v, false)
    } else if let Some((f, v)) = part.split_once("==") {
        (f, v, true)
    } else if let Some((f, v)) = part.split_once('=') {
        (f, v, true)
    } else {
        return Err(bad(format!("invalid selector: '{part}'; can't understand '{part}'")));
    };
    Ok(FieldReq { field: field.trim().to_string(), value: unescape(value)?, equal })
}

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, CodecError> {
        if s.trim().is_empty() {
            return Ok(Self::default());
        }
        let reqs = split_escaped(s, ',')
            .iter()
            .filter(|p| !p.trim().is_empty())
            .map(|p| parse_field_req(p))
            .collect::<Result<_, _>>()?;
        Ok(Self { reqs })
    }

    /// Field names the selector uses, to check them against the type's selectable fields.
    pub fn fields(&self) -> Vec<&str> {
        self.reqs.iter().map(|r| r.field.as_str()).collect()
    }

    /// Match with `value(field)` giving the object's value of each field.
    pub fn matches(&self, value: &dyn Fn(&str) -> Option<String>) -> bool {
        self.reqs.iter().all(|r| {
            let v = value(&r.field).unwrap_or_default();
            (v == r.value) == r.equal
        })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// The value required by `field=value`, if the selector has one.
    pub fn required_value(&self, field: &str) -> Option<&str> {
        self.reqs.iter().find(|r| r.equal && r.field == field).map(|r| r.value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn every_label_operator() {
        let l = labels(json!({"app": "web", "env": "prod", "tier": "3"}));
        let cases = [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("env in (prod, dev)", true),
            ("env notin (prod)", false),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("missing notin (x)", true),
            ("tier>2", true),
            ("tier<3", false),
            ("app=web,env in (dev)", false),
            ("", true),
        ];
        for (sel, want) in cases {
            assert_eq!(LabelSelector::parse(sel).unwrap().matches(Some(&l)), want, "{sel}");
        }
        assert!(!LabelSelector::parse("app=web").unwrap().matches(None));
    }

    #[test]
    fn bad_label_selectors_are_errors() {
        for sel in ["app in (a", "a b c", "tier>x", "bad key!=1", "a=b)"] {
            assert!(LabelSelector::parse(sel).is_err(), "{sel}");
        }
    }

    #[test]
    fn field_selectors_with_escapes() {
        let s = FieldSelector::parse(r"metadata.name=a\,b,status.phase!=Running").unwrap();
        assert_eq!(s.fields(), vec!["metadata.name", "status.phase"]);
        let get = |f: &str| match f {
            "metadata.name" => Some("a,b".to_string()),
            _ => Some("Pending".to_string()),
        };
        assert!(s.matches(&get));
        assert_eq!(s.required_value("metadata.name"), Some("a,b"));
        assert!(FieldSelector::parse("nonsense").is_err());
        assert!(FieldSelector::parse(r"a=b\x").is_err());
        let empty = FieldSelector::parse("spec.nodeName=").unwrap();
        assert!(empty.matches(&|_| None));
    }

    #[test]
    fn label_selector_objects_match_as_upstream() {
        let sel = serde_json::json!({"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "edge"]},
            {"key": "canary", "operator": "DoesNotExist"}]});
        let s = LabelSelector::from_object(&sel).unwrap();
        let labels = |v: serde_json::Value| v.as_object().cloned();
        assert!(s.matches(labels(serde_json::json!({"app": "web", "tier": "edge"})).as_ref()));
        assert!(!s.matches(labels(serde_json::json!({"app": "web", "tier": "back"})).as_ref()));
        assert!(!s.matches(
            labels(serde_json::json!({"app": "web", "tier": "front", "canary": "1"})).as_ref()
        ));
        assert!(LabelSelector::from_object(&serde_json::json!({})).unwrap().matches(None));
        let bad = serde_json::json!({"matchExpressions": [{"key": "a", "operator": "Near"}]});
        assert!(LabelSelector::from_object(&bad).is_err());
    }
}
