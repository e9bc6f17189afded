//! LIST with label/field selectors, `limit`/`continue` pagination (upstream's continue
//! token format: base64 of {"v","rv","start"}), and resourceVersion/resourceVersionMatch
//! semantics, served from the watch cache: first pages once it has reached what the read
//! must observe (consistent reads wait for the store's revision), continuations and
//! `Exact` reads as of their revision while the cache's event windows cover it (as
//! upstream's cache snapshots); older revisions are read from the store (410 Expired
//! once compacted).

use super::encoded;
use super::fields::Selectors;
use super::{Scope, table};
use crate::body::Response;
use crate::cache::Cached;
use crate::negotiation::{self, Output};
use crate::status::ApiError;
use base64::Engine as _;
use kapi_storage::Revision;
use kapi_storage::cache::CacheEntry;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::sync::Arc;

/// A decoded continue token.
pub struct Continue {
    pub(super) rv: Revision,
    /// Key (relative to the list prefix) to continue strictly after.
    pub(super) after: String,
    /// Items left after the page that made the token, when it counted them: every page
    /// reads the same snapshot, so later pages subtract instead of counting again.
    pub(super) remaining: Option<u64>,
}

const EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// Upstream's token ({"v","rv","start"}); kapi adds the count of items left when known
/// (upstream ignores the extra field).
pub(super) fn encode_continue(
    rv: Revision,
    last_key_relative: &str,
    remaining: Option<u64>,
) -> String {
    let mut doc =
        json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{last_key_relative}\u{0}")});
    if let Some(r) = remaining {
        doc["remaining"] = json!(r);
    }
    base64::engine::general_purpose::URL_SAFE.encode(serde_json::to_vec(&doc).unwrap_or_default())
}

pub(super) fn decode_continue(token: &str) -> Result<Continue, ApiError> {
    let bad = |why: &str| ApiError::BadRequest(format!("continue key is not valid: {why}"));
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    let doc: Value = serde_json::from_slice(&raw).map_err(|_| bad("invalid continue token"))?;
    if doc.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err(bad("server does not recognize this encoded version"));
    }
    let rv =
        doc.get("rv").and_then(Value::as_u64).filter(|rv| *rv > 0).ok_or_else(|| {
            bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
        })?;
    let start = doc
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("encoded start key is not valid"))?;
    if start.contains("..") || start.starts_with('/') {
        return Err(bad("continue key is not valid"));
    }
    let remaining = doc.get("remaining").and_then(Value::as_u64);
    Ok(Continue { rv, after: start.trim_end_matches('\u{0}').to_string(), remaining })
}

/// The revision to read at, from resourceVersion, resourceVersionMatch and continue.
fn read_revision(scope: &Scope<'_>, cont: &Option<Continue>) -> Result<Option<Revision>, ApiError> {
    list_revision(
        scope.param("resourceVersion"),
        scope.param("resourceVersionMatch"),
        cont.as_ref().map(|c| c.rv),
        || scope.app.store.current_revision(),
    )
}

/// [`read_revision`] from the query parameters: `continued` is a continue token's
/// revision, `current` the store's revision (asked only for a `NotOlderThan` read).
pub(super) fn list_revision(
    rv: Option<&str>,
    matching: Option<&str>,
    continued: Option<Revision>,
    current: impl FnOnce() -> Revision,
) -> Result<Option<Revision>, ApiError> {
    if let Some(c) = continued {
        if rv.is_some_and(|v| v != "0") {
            return Err(ApiError::BadRequest(
                "specifying resource version is not allowed when using continue".into(),
            ));
        }
        return Ok(Some(c));
    }
    if matching.is_some() && rv.is_none() {
        return Err(ApiError::BadRequest(
            "resourceVersionMatch is forbidden unless resourceVersion is provided".into(),
        ));
    }
    let parsed = match rv {
        None | Some("0") => None,
        Some(v) => Some(
            crate::cache::parse_revision(v)
                .ok_or_else(|| ApiError::BadRequest(format!("invalid resource version: {v}")))?,
        ),
    };
    match (matching, parsed) {
        (Some("Exact"), None) => Err(ApiError::BadRequest(
            "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"".into(),
        )),
        (Some("Exact"), Some(r)) => Ok(Some(r)),
        (None | Some("NotOlderThan"), Some(r)) => {
            let current = current();
            if r > current {
                return Err(ApiError::Timeout(format!(
                    "Too large resource version: {r}, current: {current}"
                )));
            }
            Ok(None)
        }
        (None | Some("NotOlderThan"), None) => Ok(None),
        (Some(other), _) => Err(ApiError::BadRequest(format!(
            "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
        ))),
    }
}

fn parse_limit(scope: &Scope<'_>) -> Result<usize, ApiError> {
    match scope.param("limit") {
        None => Ok(0),
        Some(v) => v
            .parse::<i64>()
            .map(|n| n.max(0) as usize)
            .map_err(|_| ApiError::BadRequest(format!("invalid limit: {v}"))),
    }
}

/// The objects of a page: decoded trees (store reads) or cache entries (whose shared
/// encodings a response can send as they are).
pub enum Items {
    Values(Vec<Value>),
    Cached(Vec<Arc<CacheEntry<Cached>>>),
}

impl Items {
    /// The objects as `rt` serves them.
    pub fn values(&self, rt: &kapi_codec::ResourceType) -> Cow<'_, [Value]> {
        match self {
            Items::Values(v) => Cow::Borrowed(v),
            Items::Cached(e) => {
                Cow::Owned(e.iter().map(|x| crate::twin::obj(rt, &x.data)).collect())
            }
        }
    }
}

/// One page of matching objects.
pub struct Page {
    pub items: Items,
    pub revision: Revision,
    pub cont: Option<String>,
    pub remaining: Option<u64>,
}

/// Read a page: from the watch cache when it can answer (first pages once it has caught
/// up with what the read must observe; continuations and `Exact` reads of any revision
/// its event windows still cover), otherwise from the store, scanning raw keys in
/// batches until `limit` matches or the prefix is exhausted.
pub async fn read_page(
    scope: &Scope<'_>,
    selectors: &Selectors,
    limit: usize,
    cont: Option<Continue>,
) -> Result<Page, ApiError> {
    let prefix = scope.list_prefix();
    let mut revision = read_revision(scope, &cont)?;
    let known_remaining = cont.as_ref().and_then(|c| c.remaining);
    let after_key = cont.map(|c| format!("{prefix}{}", c.after));
    let from = CacheRead { at: revision, after: after_key.as_deref(), known_remaining };
    if let Some(page) = from_cache(scope, selectors, limit, from).await? {
        return Ok(page);
    }
    let mut after = after_key;
    let mut items = Vec::new();
    let batch =
        if limit == 0 { 0 } else { limit.max(if selectors.is_everything() { limit } else { 500 }) };
    loop {
        let page =
            scope.app.store.range(&prefix, after.as_deref(), batch, revision).await.map_err(
                |e| match e {
                    kapi_storage::StorageError::Compacted { .. } if after.is_some() => {
                        ApiError::Gone(EXPIRED.into())
                    }
                    other => ApiError::from_storage(other, &scope.target("")),
                },
            )?;
        revision = Some(page.revision);
        for (i, kv) in page.items.iter().enumerate() {
            let obj = crate::conversion::from_stored(scope.app, &scope.rt, kv).await?;
            if selectors.matches(&scope.rt, &obj) {
                items.push(obj);
            }
            if limit > 0 && items.len() == limit {
                let more = page.more || i + 1 < page.items.len();
                let rel = kv.key.strip_prefix(&prefix).unwrap_or(&kv.key);
                let cont = more.then(|| encode_continue(page.revision, rel, None));
                let remaining = (more && selectors.is_everything())
                    .then(|| page.remaining + (page.items.len() - i - 1) as u64);
                let items = Items::Values(items);
                return Ok(Page { items, revision: page.revision, cont, remaining });
            }
        }
        match page.items.last() {
            Some(last) if page.more => after = Some(last.key.clone()),
            _ => {
                let items = Items::Values(items);
                return Ok(Page { items, revision: page.revision, cont: None, remaining: None });
            }
        }
    }
}

/// Where a LIST page from the cache starts: the revision a continuation or an `Exact`
/// read must reflect (None: the latest), the key to continue after, and the items left
/// after the previous page when its token carried the count.
struct CacheRead<'a> {
    at: Option<Revision>,
    after: Option<&'a str>,
    known_remaining: Option<u64>,
}

/// A page from the watch cache. None when the resource has no cache, a consistent read
/// finds it behind, or the revision is outside what the cache holds (the store serves
/// those).
async fn from_cache(
    scope: &Scope<'_>,
    selectors: &Selectors,
    limit: usize,
    read: CacheRead<'_>,
) -> Result<Option<Page>, ApiError> {
    let Some(cache) = scope.app.caches.get(scope.app, &scope.rt) else { return Ok(None) };
    if read.at.is_none() {
        let rv = scope.param("resourceVersion");
        let need = crate::cache::required_revision(scope.app, rv).await?;
        if !crate::cache::wait_for(&cache, need).await {
            if rv.is_some_and(|v| !v.is_empty()) {
                return Err(crate::cache::too_large(&cache, need));
            }
            return Ok(None);
        }
        if rv == Some("0") {
            crate::cache::settle(scope.app, &cache).await;
        }
    }
    let prefix = scope.list_prefix();
    let keep = |c: &Cached| selectors.matches_cached(&scope.rt, c);
    let counted = selectors.is_everything();
    let count_rest = counted && read.known_remaining.is_none();
    let Some(listing) = cache.list_at(&prefix, read.after, read.at, limit, count_rest, keep) else {
        return Ok(None);
    };
    let remaining = match read.known_remaining {
        Some(before) if counted => Some(before.saturating_sub(listing.items.len() as u64)),
        _ if count_rest => Some(listing.remaining as u64),
        _ => None,
    }
    .filter(|_| listing.more);
    let last = listing.items.last().map(|e| e.kv.key.strip_prefix(&prefix).unwrap_or(&e.kv.key));
    let cont =
        listing.more.then(|| encode_continue(listing.revision, last.unwrap_or(""), remaining));
    let items = Items::Cached(listing.items);
    Ok(Some(Page { items, revision: listing.revision, cont, remaining }))
}

pub async fn list(scope: &Scope<'_>) -> Result<Response, ApiError> {
    let selectors =
        Selectors::parse(&scope.rt, scope.param("labelSelector"), scope.param("fieldSelector"))?;
    let limit = parse_limit(scope)?;
    let cont = scope.param("continue").map(decode_continue).transpose()?;
    let read_start = std::time::Instant::now();
    let page = read_page(scope, &selectors, limit, cont).await;
    crate::metrics::phase("storage", read_start.elapsed());
    let page = page?;
    let rv = page.revision.to_string();
    if scope.output == Output::Table {
        let t = table::render(scope, &page.items.values(&scope.rt), &rv, page.cont.as_deref())?;
        return Ok(negotiation::respond(200, &t, Output::Table, scope.pretty));
    }
    let mut metadata = json!({"resourceVersion": rv});
    if let Some(c) = page.cont {
        metadata["continue"] = json!(c);
    }
    if let Some(r) = page.remaining {
        metadata["remainingItemCount"] = json!(r);
    }
    if let Items::Cached(entries) = &page.items
        && encoded::supported(scope.output, scope.pretty)
        && let Some(resp) = encoded::list(&scope.rt, entries, &metadata, scope.output)
    {
        return Ok(resp);
    }
    respond_list(scope, page.items, metadata)
}

fn respond_list(scope: &Scope<'_>, items: Items, metadata: Value) -> Result<Response, ApiError> {
    let items = items.values(&scope.rt);
    let list = if scope.output.is_metadata() {
        let items: Vec<Value> = items.iter().map(negotiation::partial).collect();
        json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": metadata,
            "items": items,
        })
    } else {
        json!({
            "kind": scope.rt.list_kind,
            "apiVersion": scope.rt.api_version(),
            "metadata": metadata,
            "items": items,
        })
    };
    Ok(negotiation::respond(200, &list, scope.output, scope.pretty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_junk() {
        let t = encode_continue(42, "default/web-1", None);
        let c = decode_continue(&t).unwrap();
        assert_eq!((c.rv, c.after.as_str(), c.remaining), (42, "default/web-1", None));
        let c = decode_continue(&encode_continue(42, "default/web-1", Some(7))).unwrap();
        assert_eq!(c.remaining, Some(7));
        assert!(decode_continue("not base64!").is_err());
        let bad = base64::engine::general_purpose::URL_SAFE
            .encode(br#"{"v":"meta.k8s.io/v1","rv":3,"start":"../x"}"#);
        assert!(decode_continue(&bad).is_err());
    }
}
