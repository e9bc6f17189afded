//! What kapi's outbound HTTPS calls share (webhook authentication and authorization,
//! audit webhooks, OIDC, aggregated API servers, conversion and admission webhooks):
//! one runtime thread they run on (`runtime.rs`), one way to open a connection
//! (`conn.rs`), one TLS client builder (`tls.rs`) and one reader of the kubeconfig files
//! webhooks are configured with (`kubeconfig.rs`).
//!
//! Invariants: every client configuration speaks HTTP/1.1 (ALPN), trusts exactly what
//! it is given (a CA bundle, the system bundle, or, when asked, anything), and never
//! logs key material.

pub mod conn;
pub mod kubeconfig;
pub mod runtime;
pub mod tls;

pub use kubeconfig::WebhookKubeconfig;
pub use tls::{Trust, client_config};
