//! Entry points for the fuzz targets (`fuzz/`, docs/RELIABILITY.md "Fuzzing"): the
//! parsers of untrusted input that live in private modules of [`crate::rest`], exposed
//! as they are (no copies of their logic). Not an API: hidden from the docs, shaped by
//! what the targets need.

use crate::status::ApiError;
use kapi_storage::Revision;

pub use super::object::resource_version;
pub use super::patch::{PatchType, apply as apply_patch, patch_type};

/// A `continue` query parameter as LIST decodes it: (revision, key to continue after,
/// items left when the token counted them).
pub fn decode_continue(token: &str) -> Result<(Revision, String, Option<u64>), ApiError> {
    super::list::decode_continue(token).map(|c| (c.rv, c.after, c.remaining))
}

/// The token LIST writes for a page ending at `after` (relative key) at `rv`.
pub fn encode_continue(rv: Revision, after: &str, remaining: Option<u64>) -> String {
    super::list::encode_continue(rv, after, remaining)
}

/// The revision a LIST reads at from `resourceVersion`, `resourceVersionMatch` and a
/// continue token's revision, with the store at `current`.
pub fn list_revision(
    rv: Option<&str>,
    matching: Option<&str>,
    continued: Option<Revision>,
    current: Revision,
) -> Result<Option<Revision>, ApiError> {
    super::list::list_revision(rv, matching, continued, || current)
}
