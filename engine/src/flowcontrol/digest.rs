//! Turning the stored PriorityLevelConfigurations and FlowSchemas into the server's
//! configuration, as upstream's config controller digests them (`digestConfigObjects`):
//! each level into a [`LevelConfig`] with upstream's defaults (Limited:
//! nominalConcurrencyShares 30, lendablePercent 0, queues 64, handSize 8,
//! queueLengthLimit 50; Exempt: 0 and 0), each FlowSchema into a [`Schema`], and each
//! FlowSchema's `Dangling` condition as it should read.
//!
//! Invariants: a level whose spec is broken (type and name disagree on `exempt`, a
//! missing `limited`, `Reject` with queuing, a hand the queues cannot deal) is ignored,
//! as upstream ignores it; the mandatory `exempt` and `catch-all` levels and FlowSchemas
//! are always present, taken from the bootstrap set when their objects are missing or
//! broken; a FlowSchema whose level is missing is left out of matching and reads
//! `Dangling=True` (reason `NotFound`), the others `Dangling=False` (reason `Found`).

use super::FlowControl;
use super::bootstrap::{self, CATCH_ALL, EXEMPT};
use super::classifier::Classifier;
use super::schema::Schema;
use kapi_flowcontrol::shuffle::Dealer;
use kapi_flowcontrol::{LevelConfig, Queuing};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Upstream's defaults.
const DEFAULT_SHARES: u32 = 30;
const DEFAULT_QUEUES: u32 = 64;
const DEFAULT_HAND_SIZE: u32 = 8;
const DEFAULT_QUEUE_LENGTH_LIMIT: u32 = 50;

/// What a FlowSchema's `Dangling` condition should say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dangling {
    pub schema: String,
    pub dangling: bool,
    pub level: String,
}

impl Dangling {
    pub fn status(&self) -> &'static str {
        if self.dangling { "True" } else { "False" }
    }

    pub fn reason(&self) -> &'static str {
        if self.dangling { "NotFound" } else { "Found" }
    }

    pub fn message(&self) -> String {
        let level = &self.level;
        if self.dangling {
            format!(
                "This FlowSchema references the PriorityLevelConfiguration object named {level:?} but there is no such object"
            )
        } else {
            format!(
                "This FlowSchema references the PriorityLevelConfiguration object named {level:?} and it exists"
            )
        }
    }

    /// Whether `fs`'s stored condition already says this.
    pub fn is_current(&self, fs: &Value) -> bool {
        let conditions = fs.pointer("/status/conditions").and_then(Value::as_array);
        let found = conditions.into_iter().flatten().find(|c| c["type"] == "Dangling");
        found.is_some_and(|c| {
            c["status"] == self.status()
                && c["reason"] == self.reason()
                && c["message"] == self.message()
        })
    }

    /// `fs` with this condition (other conditions kept), its transition time `now`.
    pub fn written_into(&self, fs: &Value, now: &str) -> Value {
        let mut out = fs.clone();
        let condition = json!({"type": "Dangling", "status": self.status(),
            "lastTransitionTime": now, "reason": self.reason(), "message": self.message()});
        let mut conditions: Vec<Value> = out
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .map(|c| c.iter().filter(|c| c["type"] != "Dangling").cloned().collect())
            .unwrap_or_default();
        conditions.push(condition);
        if !out.get("status").is_some_and(Value::is_object) {
            out["status"] = json!({});
        }
        out["status"]["conditions"] = Value::Array(conditions);
        out
    }
}

/// The digested configuration.
#[derive(Debug, Default)]
pub struct Digest {
    pub levels: Vec<LevelConfig>,
    /// The FlowSchemas used for matching (dangling ones left out), not yet sorted.
    pub schemas: Vec<Schema>,
    /// The condition every stored FlowSchema should carry.
    pub dangling: Vec<Dangling>,
}

fn number(v: &Value, field: &str) -> Option<u32> {
    v.get(field).and_then(Value::as_u64).map(|n| n.min(u64::from(u32::MAX)) as u32)
}

/// A level's settings, None when its spec is broken.
pub fn level_config(plc: &Value) -> Option<LevelConfig> {
    let name = plc.pointer("/metadata/name").and_then(Value::as_str)?.to_string();
    let uid = plc.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().into();
    let spec = &plc["spec"];
    let exempt = match spec["type"].as_str() {
        Some("Exempt") => true,
        Some("Limited") => false,
        _ => return None,
    };
    if exempt != (name == EXEMPT) {
        return None;
    }
    let base = LevelConfig {
        name,
        uid,
        exempt,
        nominal_concurrency_shares: 0,
        lendable_percent: 0,
        borrowing_limit_percent: None,
        queuing: None,
    };
    if exempt {
        let e = &spec["exempt"];
        return Some(LevelConfig {
            nominal_concurrency_shares: number(e, "nominalConcurrencyShares").unwrap_or(0),
            lendable_percent: number(e, "lendablePercent").unwrap_or(0),
            ..base
        });
    }
    let limited = spec.get("limited").filter(|l| l.is_object())?;
    Some(LevelConfig {
        nominal_concurrency_shares: number(limited, "nominalConcurrencyShares")
            .unwrap_or(DEFAULT_SHARES),
        lendable_percent: number(limited, "lendablePercent").unwrap_or(0),
        borrowing_limit_percent: number(limited, "borrowingLimitPercent"),
        queuing: queuing(&limited["limitResponse"])?,
        ..base
    })
}

/// `limitResponse`: Some(None) for Reject, Some(Some(q)) for Queue, None when broken.
fn queuing(response: &Value) -> Option<Option<Queuing>> {
    let q = response.get("queuing").filter(|q| q.is_object());
    match response["type"].as_str() {
        Some("Reject") if q.is_none() => Some(None),
        Some("Queue") => {
            let empty = json!({});
            let q = q.unwrap_or(&empty);
            let or = |field, default| number(q, field).filter(|n| *n > 0).unwrap_or(default);
            let queuing = Queuing {
                queues: or("queues", DEFAULT_QUEUES),
                hand_size: or("handSize", DEFAULT_HAND_SIZE),
                queue_length_limit: or("queueLengthLimit", DEFAULT_QUEUE_LENGTH_LIMIT),
            };
            Dealer::new(queuing.queues, queuing.hand_size)?;
            Some(Some(queuing))
        }
        _ => None,
    }
}

fn bootstrap_level(name: &str) -> Option<LevelConfig> {
    let all = bootstrap::mandatory_levels();
    all.iter().find(|l| l["metadata"]["name"] == name).and_then(level_config)
}

fn bootstrap_schema(name: &str) -> Option<Schema> {
    let all = bootstrap::mandatory_schemas();
    all.iter().find(|s| s["metadata"]["name"] == name).map(Schema::from_json)
}

/// Digest the stored objects.
pub fn digest(plcs: &[Value], fss: &[Value]) -> Digest {
    let mut levels: Vec<LevelConfig> = plcs.iter().filter_map(level_config).collect();
    levels.sort_by(|a, b| a.name.cmp(&b.name));
    levels.dedup_by(|a, b| a.name == b.name);
    for name in [EXEMPT, CATCH_ALL] {
        if !levels.iter().any(|l| l.name == name) {
            levels.extend(bootstrap_level(name));
        }
    }
    let known: HashMap<&str, ()> = levels.iter().map(|l| (l.name.as_str(), ())).collect();
    let mut out = Digest::default();
    for fs in fss {
        let schema = Schema::from_json(fs);
        let found = known.contains_key(schema.level.as_str());
        out.dangling.push(Dangling {
            schema: schema.name.clone(),
            dangling: !found,
            level: schema.level.clone(),
        });
        if found && !out.schemas.iter().any(|s| s.name == schema.name) {
            out.schemas.push(schema);
        }
    }
    for name in [EXEMPT, CATCH_ALL] {
        if !out.schemas.iter().any(|s| s.name == name) {
            out.schemas.extend(bootstrap_schema(name));
        }
    }
    out.levels = levels;
    out
}

impl FlowControl {
    /// Serve `digest` from now on: the dispatcher's levels first, then the classifier
    /// over them.
    pub fn load(&self, digest: &Digest) {
        self.dispatcher.configure(&digest.levels);
        let by_flow: HashMap<&str, bool> = digest
            .levels
            .iter()
            .map(|l| (l.name.as_str(), !l.exempt && l.queuing.is_some_and(|q| q.queues > 1)))
            .collect();
        let schemas = digest
            .schemas
            .iter()
            .filter_map(|s| {
                let level = self.dispatcher.level(&s.level)?;
                Some((s.clone(), level, by_flow.get(s.level.as_str()).copied().unwrap_or(false)))
            })
            .collect();
        self.set_classifier(Classifier::new(schemas));
    }
}

#[cfg(test)]
#[path = "digest_tests.rs"]
mod tests;
