//! CustomResourceDefinitions: pure functions over `serde_json::Value`, no I/O.
//!
//! - [`structural`]: the structural schema of a CRD version (`openAPIV3Schema`).
//! - [`validate_crd`]: validation of a CustomResourceDefinition object on create/update.
//! - [`validate`]: validation of a custom object against its schema.
//! - [`prune`]: removal of unknown fields (and their paths for fieldValidation).
//! - [`default`]: structural defaulting.
//! - [`formats`], [`regex`]: string formats and the `pattern` matcher they share.
//!
//! Invariant: every schema walk is bounded by [`structural::MAX_DEPTH`]; no input panics.

pub mod default;
pub mod formats;
pub mod prune;
pub mod regex;
pub mod structural;
pub mod validate;
pub mod validate_crd;

pub use default::apply_defaults;
pub use prune::prune;
pub use structural::{AdditionalProperties, Structural};
pub use validate::validate;
pub use validate_crd::validate_crd;

const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";

/// Errors of a DNS-1035 label (upstream's `IsDNS1035Label`).
pub(crate) fn dns1035_label_errors(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 63 {
        out.push("must be no more than 63 characters".to_string());
    }
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    if !ok {
        out.push(format!("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '{DNS1035_LABEL_FMT}')"));
    }
    out
}
