//! The classifier: the FlowSchemas in matching order (`matchingPrecedence`, then name),
//! each with its priority level resolved, and the flow of a request.
//!
//! Invariants: a loaded classifier holds an `exempt` and a `catch-all` schema (the
//! configuration supplies upstream's mandatory ones when the objects are missing) and
//! FlowSchemas whose level exists only (dangling ones are left out, as upstream); a
//! request no schema matches (a user in neither `system:authenticated` nor
//! `system:unauthenticated`) goes to `catch-all`, as upstream's fallback; the flow hash
//! is FNV-1a over the schema name, a zero byte and the distinguisher, so the same flow
//! hashes equally on every core and across restarts; a level that is exempt or has at
//! most one queue gets flow 0 and no distinguisher, as upstream.

use super::Classified;
use super::bootstrap::CATCH_ALL;
use super::schema::Schema;
use crate::auth::UserInfo;
use crate::request::RequestInfo;
use kapi_flowcontrol::Level;
use std::sync::Arc;

/// One FlowSchema ready for the request path.
#[derive(Debug)]
struct Compiled {
    schema: Schema,
    name: Arc<str>,
    uid: Arc<str>,
    level: Arc<Level>,
    /// Whether requests are told apart by flow (a Limited level with more than one queue).
    by_flow: bool,
}

/// The compiled FlowSchemas over the dispatcher's levels.
#[derive(Debug, Default)]
pub struct Classifier {
    schemas: Vec<Compiled>,
    catch_all: Option<usize>,
}

impl Classifier {
    /// A classifier over `schemas` (sorted here), each paired with its level and whether
    /// that level queues by flow.
    pub fn new(mut schemas: Vec<(Schema, Arc<Level>, bool)>) -> Classifier {
        schemas.sort_by(|a, b| (a.0.precedence, &a.0.name).cmp(&(b.0.precedence, &b.0.name)));
        let schemas: Vec<Compiled> = schemas
            .into_iter()
            .map(|(schema, level, by_flow)| Compiled {
                name: schema.name.as_str().into(),
                uid: schema.uid.as_str().into(),
                schema,
                level,
                by_flow,
            })
            .collect();
        let catch_all = schemas.iter().position(|c| c.schema.name == CATCH_ALL);
        Classifier { schemas, catch_all }
    }

    /// The names of the schemas in matching order.
    pub fn order(&self) -> impl Iterator<Item = &str> {
        self.schemas.iter().map(|c| c.schema.name.as_str())
    }

    /// The first FlowSchema that matches, with its level and flow.
    pub fn classify(&self, user: &UserInfo, info: &RequestInfo) -> Option<Classified> {
        let found = self.schemas.iter().find(|c| c.schema.matches(user, info));
        let c = found.or_else(|| self.catch_all.map(|i| &self.schemas[i]))?;
        let flow = if c.by_flow {
            flow_hash(&c.schema.name, c.schema.distinguisher_of(user, info))
        } else {
            0
        };
        let distinguisher =
            if c.by_flow { c.schema.distinguisher } else { super::schema::Distinguisher::None };
        Some(Classified {
            schema_name: c.name.clone(),
            schema_uid: c.uid.clone(),
            level: c.level.clone(),
            flow,
            distinguisher,
        })
    }
}

/// FNV-1a (64 bit) of the schema name, a zero byte and the distinguisher.
pub fn flow_hash(schema: &str, distinguisher: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let bytes = schema.as_bytes().iter().chain(&[0u8]).chain(distinguisher.as_bytes());
    bytes.fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flow_hash_is_fixed_and_separates_name_from_distinguisher() {
        // FNV-1a 64 of the single zero byte (the separator), a published test vector.
        assert_eq!(flow_hash("a", "b"), flow_hash("a", "b"));
        assert_ne!(flow_hash("ab", ""), flow_hash("a", "b"));
        assert_eq!(flow_hash("", "").to_string(), "12638153115695167455");
    }
}
