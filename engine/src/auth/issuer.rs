//! The ServiceAccount issuer's discovery endpoints, as upstream serves them for
//! authenticated clients: `/.well-known/openid-configuration` (only when the issuer is
//! an https URL) and `/openid/v1/jwks` (the public keys tokens are verified with).

use crate::app::App;
use crate::body::{Response, ResponseBody};

/// The response for `path` when it is one of the issuer's endpoints.
pub fn handle(app: &App, path: &str) -> Option<Response> {
    let tokens = app.authenticator.service_accounts.as_ref()?;
    let (doc, content_type) = match path {
        "/.well-known/openid-configuration" => {
            (tokens.openid_configuration(&jwks_uri(app))?, "application/json")
        }
        "/openid/v1/jwks" => (tokens.jwks(), "application/jwk-set+json"),
        _ => return None,
    };
    let body = serde_json::to_vec(&doc).unwrap_or_default();
    http::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CACHE_CONTROL, "public, max-age=3600")
        .body(ResponseBody::full(body))
        .ok()
}

/// `--service-account-jwks-uri`, or this server's own `/openid/v1/jwks`.
fn jwks_uri(app: &App) -> String {
    if let Some(uri) = &app.options.service_account_jwks_uri {
        return uri.clone();
    }
    let host = match app.options.bind_address {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("https://{host}:{}/openid/v1/jwks", app.options.secure_port)
}
