//! The validating webhooks of one write: which apply is decided first (an error there
//! answers at once), then all are called concurrently (their POSTs run side by side on
//! the client thread; the serving core awaits them together). The first refusal or
//! failure in webhook order answers; a failed `Ignore` webhook is recorded as
//! `failed-open.validating.webhook.admission.k8s.io/round_0_index_I`.

use super::call;
use super::source::Source;
use super::{Attributes, Write};
use crate::status::ApiError;
use serde_json::Value;

/// Run the validating webhooks on `obj`.
pub async fn validate(source: &Source, a: &Attributes<'_>, obj: &Value) -> Result<(), ApiError> {
    let snap = source.current(a.scope.app).await?;
    if snap.hooks.is_empty() {
        return Ok(());
    }
    let w = Write::new(a, obj, &snap).await;
    let mut calls = Vec::new();
    for (i, hook) in snap.hooks.iter().enumerate() {
        if let Some(p) = call::prepare(&w, hook, obj).await? {
            calls.push((i, hook, p));
        }
    }
    let outcomes = futures_util::future::join_all(
        calls.iter().map(|(_, hook, p)| call::call(&w, hook, p, false)),
    )
    .await;
    let mut first = None;
    for ((i, hook, _), outcome) in calls.iter().zip(outcomes) {
        let key = format!("failed-open.validating.webhook.admission.k8s.io/round_0_index_{i}");
        if let Err(e) = call::settle(&w, hook, outcome, key) {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}
