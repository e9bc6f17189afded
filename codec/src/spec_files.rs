//! Test support: the upstream v1.35 spec files in `../shared/spec/` (reference data,
//! never copied into the repo). Each accessor says when they are absent, so a test that
//! cross-checks against them skips with a message instead of failing.

use serde_json::Value;
use std::path::PathBuf;

/// `../shared/spec/NAME` when it exists; prints that the check is skipped otherwise.
pub fn path(name: &str) -> Option<PathBuf> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/spec").join(name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: {} is not present", p.display());
        None
    }
}

/// Upstream's swagger.json, parsed.
pub fn swagger() -> Option<Value> {
    let text = std::fs::read_to_string(path("swagger.json")?).ok()?;
    Some(serde_json::from_str(&text).expect("swagger.json parses"))
}
