//! Wall-clock time as Kubernetes writes it (RFC 3339, UTC, second precision); the
//! formatting lives in `kapi_codec::time`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// `2024-05-01T12:00:00Z` for the current time.
pub fn now_rfc3339() -> String {
    rfc3339(now_unix())
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch.
pub fn rfc3339(secs: i64) -> String {
    kapi_codec::time::rfc3339(secs)
}

/// Seconds since the epoch of an RFC 3339 time (sub-seconds dropped).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    kapi_codec::time::parse_rfc3339(s).map(|(secs, _)| secs)
}
