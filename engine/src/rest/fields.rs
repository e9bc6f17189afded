//! Field selector support: which fields a type can be selected by and their values
//! (`metadata.name`, `metadata.namespace`, plus the type's own set from its strategy).

use crate::cache::Cached;
use crate::status::ApiError;
use kapi_codec::selector::{FieldSelector, LabelSelector};
use kapi_codec::{ResourceType, meta};
use serde_json::Value;

/// The value of `field` of `obj` as upstream's field set renders it.
pub fn value(rt: &ResourceType, obj: &Value, field: &str) -> Option<String> {
    rt.field_value(obj, field)
}

fn supported(rt: &ResourceType, field: &str) -> bool {
    rt.supports_field(field)
}

/// Parsed label and field selectors of a list or watch.
pub struct Selectors {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selectors {
    pub fn parse(
        rt: &ResourceType,
        label: Option<&str>,
        field: Option<&str>,
    ) -> Result<Selectors, ApiError> {
        let labels = LabelSelector::parse(label.unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let fields = FieldSelector::parse(field.unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        for f in fields.fields() {
            if !supported(rt, f) {
                return Err(ApiError::BadRequest(format!("field label not supported: {f}")));
            }
        }
        Ok(Selectors { labels, fields })
    }

    pub fn is_everything(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    pub fn matches(&self, rt: &ResourceType, obj: &Value) -> bool {
        self.labels.matches(meta::labels(obj)) && self.fields.matches(&|f| value(rt, obj, f))
    }

    /// Whether a cached object matches (from its kept labels and field values).
    pub fn matches_cached(&self, rt: &ResourceType, cached: &Cached) -> bool {
        self.is_everything()
            || (self.labels.matches(cached.labels())
                && self.fields.matches(&|f| cached.field(rt, f)))
    }
}
