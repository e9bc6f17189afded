//! The request timeout (upstream's `--request-timeout` and the `timeout` query
//! parameter): a request that is not long-running and is still being handled when it
//! runs out is answered 504 Timeout, as upstream's `WithTimeoutForNonLongRunningRequests`
//! answers it. Long-running requests are upstream's: the verbs watch and proxy, and the
//! subresources attach, exec, proxy, log and portforward.

use crate::request::RequestInfo;
use std::time::Duration;

const LONG_RUNNING_VERBS: &[&str] = &["watch", "proxy"];
const LONG_RUNNING_SUBRESOURCES: &[&str] = &["attach", "exec", "proxy", "log", "portforward"];

/// Upstream's message for a request that ran out of time.
pub const MESSAGE: &str =
    "Timeout: request did not complete within requested timeout - context deadline exceeded";

/// Whether `info` is a long-running request (no request timeout).
pub fn is_long_running(info: &RequestInfo) -> bool {
    LONG_RUNNING_VERBS.contains(&info.verb.as_str())
        || info.subresource.as_deref().is_some_and(|s| LONG_RUNNING_SUBRESOURCES.contains(&s))
}

/// How long `info` may take: None for long-running requests; else the request timeout,
/// shortened by a valid positive `?timeout=` (a Go duration).
pub fn limit(info: &RequestInfo, request_timeout: Duration) -> Option<Duration> {
    if is_long_running(info) || request_timeout.is_zero() {
        return None;
    }
    let asked = info.param("timeout").and_then(|t| crate::config::parse_duration(t).ok());
    // A year at most, so the timer's deadline cannot overflow.
    let request_timeout = request_timeout.min(Duration::from_secs(365 * 24 * 3600));
    Some(match asked {
        Some(t) if !t.is_zero() => t.min(request_timeout),
        _ => request_timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(method: &str, path: &str, query: Option<&str>) -> RequestInfo {
        let m = http::Method::from_bytes(method.as_bytes()).expect("method");
        crate::request::parse(&m, path, query)
    }

    #[test]
    fn watches_and_streaming_subresources_are_long_running() {
        let t = Duration::from_secs(60);
        assert_eq!(limit(&info("GET", "/api/v1/pods", Some("watch=true")), t), None);
        assert_eq!(limit(&info("GET", "/api/v1/watch/pods", None), t), None);
        assert_eq!(limit(&info("GET", "/api/v1/namespaces/a/pods/p/log", None), t), None);
        assert_eq!(limit(&info("POST", "/api/v1/namespaces/a/pods/p/exec", None), t), None);
        assert_eq!(limit(&info("GET", "/api/v1/pods", None), t), Some(t));
        assert_eq!(limit(&info("PUT", "/api/v1/namespaces/a/pods/p/status", None), t), Some(t));
    }

    #[test]
    fn the_timeout_parameter_only_shortens_the_request_timeout() {
        let t = Duration::from_secs(60);
        let short = info("GET", "/api/v1/pods", Some("timeout=5s"));
        assert_eq!(limit(&short, t), Some(Duration::from_secs(5)));
        let long = info("GET", "/api/v1/pods", Some("timeout=10m"));
        assert_eq!(limit(&long, t), Some(t));
        let bad = info("GET", "/api/v1/pods", Some("timeout=soon"));
        assert_eq!(limit(&bad, t), Some(t));
    }
}
