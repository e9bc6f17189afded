//! Command-line options. Flags take upstream kube-apiserver's names wherever the concept
//! is the same.

use clap::Parser;
use kapi_codec::Registry;
use kapi_codec::stored::StorageMediaType;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Parser)]
#[command(name = "kapi", version, about = "A Kubernetes API server")]
pub struct Options {
    /// Directory for the store, certificates and the admin kubeconfig.
    #[arg(long, default_value = "kapi-data")]
    pub data_dir: PathBuf,

    /// Address to serve HTTPS on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: IpAddr,

    /// Port to serve HTTPS on.
    #[arg(long, default_value_t = 6443)]
    pub secure_port: u16,

    /// Worker threads (one monoio runtime per core); 0 = one per available core.
    #[arg(long, default_value_t = 0)]
    pub workers: usize,

    /// Authorizers in order (upstream's `--authorization-mode`): AlwaysAllow,
    /// AlwaysDeny, Node, RBAC, Webhook. Unset: `Node,RBAC`, what kubeadm clusters run
    /// (unless `--authorization-config` is given).
    #[arg(long)]
    pub authorization_mode: Option<String>,

    /// The structured authorization configuration (apiserver.config.k8s.io/v1
    /// AuthorizationConfiguration): the authorizer chain, reloaded when the file changes.
    /// Mutually exclusive with `--authorization-mode` and `--authorization-webhook-*`.
    #[arg(long)]
    pub authorization_config: Option<PathBuf>,

    /// The Webhook authorizer's kubeconfig (its server, CA and client credentials).
    #[arg(long)]
    pub authorization_webhook_config_file: Option<PathBuf>,

    /// The SubjectAccessReview version sent to the Webhook authorizer (v1, v1beta1;
    /// unset: v1).
    #[arg(long)]
    pub authorization_webhook_version: Option<String>,

    /// How long the Webhook authorizer's allowed answers are cached (unset: 5m).
    #[arg(long, value_parser = parse_duration)]
    pub authorization_webhook_cache_authorized_ttl: Option<Duration>,

    /// How long the Webhook authorizer's other answers are cached (unset: 30s).
    #[arg(long, value_parser = parse_duration)]
    pub authorization_webhook_cache_unauthorized_ttl: Option<Duration>,

    /// Static bearer tokens: CSV lines `token,user,uid[,"group1,group2"]`.
    #[arg(long)]
    pub token_auth_file: Option<PathBuf>,

    /// CA bundle client certificates are verified against (upstream's
    /// `--client-ca-file`); default the generated cluster CA.
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,

    /// Requests without credentials are `system:anonymous` (group
    /// `system:unauthenticated`); false: they get 401.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub anonymous_auth: bool,

    /// Accept bootstrap tokens (kube-system Secrets `bootstrap-token-<id>`).
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub enable_bootstrap_token_auth: bool,

    /// A kubeconfig file naming the token webhook (server, CA, client certificate):
    /// tokens no other authenticator knows are sent to it as TokenReviews.
    #[arg(long)]
    pub authentication_token_webhook_config_file: Option<PathBuf>,

    /// The TokenReview version sent to the webhook: `v1` or `v1beta1`.
    #[arg(long, default_value = "v1", value_parser = ["v1", "v1beta1"])]
    pub authentication_token_webhook_version: String,

    /// How long the webhook's answers are cached.
    #[arg(long, default_value = "2m0s", value_parser = parse_duration)]
    pub authentication_token_webhook_cache_ttl: Duration,

    /// The OIDC issuer whose ID tokens are accepted (https; its discovery document and
    /// JWKS are fetched from it).
    #[arg(long)]
    pub oidc_issuer_url: Option<String>,

    /// The audience (client id) OIDC tokens must name.
    #[arg(long, default_value = "")]
    pub oidc_client_id: String,

    /// The claim naming the user (claims other than `email` get the issuer URL and `#`
    /// as prefix unless `--oidc-username-prefix` is given).
    #[arg(long, default_value = "sub")]
    pub oidc_username_claim: String,

    /// Prefix of OIDC user names (`-`: none).
    #[arg(long)]
    pub oidc_username_prefix: Option<String>,

    /// The claim listing the user's groups.
    #[arg(long)]
    pub oidc_groups_claim: Option<String>,

    /// Prefix of OIDC group names.
    #[arg(long)]
    pub oidc_groups_prefix: Option<String>,

    /// `claim=value` pairs every OIDC token must hold.
    #[arg(long, value_delimiter = ',')]
    pub oidc_required_claim: Vec<String>,

    /// The CA the OIDC issuer's certificate is verified with (default: the system's).
    #[arg(long)]
    pub oidc_ca_file: Option<PathBuf>,

    /// Signing algorithms OIDC tokens may use (RS256, ES256, ES384).
    #[arg(long, value_delimiter = ',', default_value = "RS256")]
    pub oidc_signing_algs: Vec<String>,

    /// Structured authentication configuration (`AuthenticationConfiguration` of
    /// `apiserver.config.k8s.io/v1`: JWT issuers); exclusive with the `--oidc-*` flags.
    #[arg(long)]
    pub authentication_config: Option<PathBuf>,

    /// CIDR for Service ClusterIPs.
    #[arg(long, default_value = "10.96.0.0/12")]
    pub service_cluster_ip_range: String,

    /// Port range for NodePort Services.
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: String,

    /// Built-in APIs to serve beyond or instead of the defaults, upstream's
    /// `--runtime-config`: comma-separated `key=value` pairs (repeatable), keys `api/all`,
    /// `api/ga`, `api/beta`, `api/alpha` (`true`/`false`), `GROUP/VERSION` and
    /// `GROUP/VERSION/RESOURCE` (`/v1` is the core group; an empty value means true), e.g.
    /// `resource.k8s.io/v1beta2=true,batch/v1=false`. Invalid values stop the start.
    #[arg(long)]
    pub runtime_config: Vec<String>,

    /// Key prefix of every object in the store.
    #[arg(long, default_value = "/registry")]
    pub etcd_prefix: String,

    /// Largest accepted request body in bytes (upstream: 3 MiB).
    #[arg(long, default_value_t = 3 * 1024 * 1024)]
    pub max_request_body_bytes: usize,

    /// Seconds between compactions of the store's history (both backends; upstream's
    /// `--etcd-compaction-interval` sets it too).
    #[arg(long, default_value_t = 300)]
    pub compaction_interval_seconds: u64,

    /// Interval of compaction requests, as a duration (`5m0s`); overrides
    /// `--compaction-interval-seconds`.
    #[arg(long, value_parser = parse_duration)]
    pub etcd_compaction_interval: Option<Duration>,

    /// etcd servers to connect to (`http://127.0.0.1:2379,...`); the embedded store is
    /// used when none is given.
    #[arg(long, value_delimiter = ',')]
    pub etcd_servers: Vec<String>,

    /// SSL Certificate Authority file used to secure etcd communication.
    #[arg(long)]
    pub etcd_cafile: Option<PathBuf>,

    /// SSL certification file used to secure etcd communication.
    #[arg(long)]
    pub etcd_certfile: Option<PathBuf>,

    /// SSL key file used to secure etcd communication.
    #[arg(long)]
    pub etcd_keyfile: Option<PathBuf>,

    /// Most writes batched into one etcd Txn (etcd's own `--max-txn-ops`, default 128).
    #[arg(long, default_value_t = 128)]
    pub max_txn_ops: usize,

    /// Write shards of the etcd backend, each sending one batched Txn at a time.
    #[arg(long, default_value_t = 8)]
    pub etcd_write_shards: usize,

    /// Batch concurrent etcd writes into multi-op Txns (false: one Txn per write).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub etcd_write_batching: bool,

    /// Bound on every etcd request; a request that cannot be answered in time fails
    /// with 503/504 instead of hanging.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub etcd_request_timeout: Duration,

    /// Media type objects are stored in: `application/json` or
    /// `application/vnd.kubernetes.protobuf` (upstream's default, and kapi's on etcd, so
    /// upstream kube-apiserver reads the same data); JSON when unset on the embedded store.
    /// Either is read whatever was written before.
    #[arg(long)]
    pub storage_media_type: Option<String>,

    /// Amount of time to retain events (upstream's `--event-ttl`).
    #[arg(long, default_value = "1h0m0s", value_parser = parse_duration)]
    pub event_ttl: Duration,

    /// How often `--client-ca-file` and `--requestheader-client-ca-file` are checked for
    /// new contents (upstream: a minute; hidden, tests shorten it).
    #[arg(long, hide = true, default_value = "60s", value_parser = parse_duration)]
    pub ca_reload_interval: Duration,

    /// Disable fsync of the write-ahead log (tests and benchmarks only: unsafe on crash).
    #[arg(long, default_value_t = false)]
    pub unsafe_no_fsync: bool,

    /// Longest time a request that is not long-running (watch, proxy, exec, attach,
    /// log, portforward) may take; one still running then gets 504 Timeout
    /// (upstream's `--request-timeout`). A request's `?timeout=` may shorten it.
    #[arg(long, default_value = "1m0s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Seconds a watch lasts at least when it sets no `timeoutSeconds`: it gets a random
    /// duration between this and twice this (upstream's `--min-request-timeout`).
    #[arg(long, default_value_t = 1800)]
    pub min_request_timeout: u64,

    /// Longest time a client may take to send a request's headers, from the connection's
    /// TLS handshake or the first byte of a keep-alive request (upstream's Go server:
    /// `ReadHeaderTimeout` 32 s); also bounds the TLS handshake. HTTP/1.1 only: HTTP/2
    /// connections are bounded by `--idle-connection-timeout`.
    #[arg(long, default_value = "32s", value_parser = parse_duration)]
    pub read_header_timeout: Duration,

    /// A connection with no request in flight for this long is closed (HTTP/1.1) or sent
    /// GOAWAY (HTTP/2): upstream's Go server and HTTP/2 `IdleTimeout` of 90 s.
    #[arg(long, default_value = "1m30s", value_parser = parse_duration)]
    pub idle_connection_timeout: Duration,

    /// A connection whose socket takes no byte for this long while it has bytes to send
    /// is closed, and a watch whose buffer stays full this long is ended: a client that
    /// stops reading is let go, and the memory it held returned.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub write_stall_timeout: Duration,

    /// Open connections each core serves at most; connections beyond it are closed as
    /// soon as they are accepted.
    #[arg(long, default_value_t = 16384)]
    pub max_connections_per_core: usize,

    /// Concurrent streams an HTTP/2 client may open on one connection; 0 = upstream's
    /// default, 100 (upstream's `--http2-max-streams-per-connection`).
    #[arg(long, default_value_t = 0)]
    pub http2_max_streams_per_connection: u32,

    /// Seconds to let in-flight requests finish on shutdown.
    #[arg(long, default_value_t = 10)]
    pub shutdown_grace_seconds: u64,

    /// Events each resource's watch cache keeps for watches resuming from a
    /// resourceVersion (older ones get 410 Gone and re-list).
    #[arg(long, default_value_t = 1000)]
    pub default_watch_cache_size: usize,

    /// Per-resource watch cache sizes, upstream's format: `resource[.group]#size`,
    /// comma-separated (`pods#5000,deployments.apps#2000`).
    #[arg(long, value_delimiter = ',')]
    pub watch_cache_sizes: Vec<String>,

    /// Shards of the watch caches of busy resources (pods, events, leases, nodes,
    /// endpointslices), each applying its events on its own thread; 0 = one per core (at
    /// most 8). Other resources' caches apply events on their feeder thread.
    #[arg(long, default_value_t = 0)]
    pub watch_cache_shards: usize,

    /// Serve CPU profiles at /debug/pprof/ (upstream's `--profiling`, default true).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub profiling: bool,

    /// Log format: `text` or `json` (upstream's `--logging-format`).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub logging_format: String,

    /// Log verbosity, as upstream's `-v`.
    #[arg(short = 'v', long = "v", default_value_t = 1)]
    pub verbosity: u8,

    /// Files with the public keys ServiceAccount tokens are verified with (PEM public
    /// keys, certificates or private keys; repeatable). The signing key's public half is
    /// always accepted.
    #[arg(long, value_delimiter = ',')]
    pub service_account_key_file: Vec<PathBuf>,

    /// The private key ServiceAccount tokens are signed with (PEM, RSA or EC P-256/P-384);
    /// default `DATA_DIR/pki/sa.key`, generated (EC P-256) on first start.
    #[arg(long)]
    pub service_account_signing_key_file: Option<PathBuf>,

    /// Issuers of ServiceAccount tokens (repeatable); the first signs new tokens, all are
    /// accepted.
    #[arg(long, default_value = "https://kubernetes.default.svc.cluster.local")]
    pub service_account_issuer: Vec<String>,

    /// The audiences of the API (tokens must name one); default: the issuers.
    #[arg(long, value_delimiter = ',')]
    pub api_audiences: Vec<String>,

    /// The longest expiry a TokenRequest gets (upstream's
    /// `--service-account-max-token-expiration`); unset: no cap.
    #[arg(long, value_parser = parse_duration)]
    pub service_account_max_token_expiration: Option<Duration>,

    /// Extend kubelets' pod-bound tokens (3607 s) to a year, with `warnafter`.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub service_account_extend_token_expiration: bool,

    /// The `jwks_uri` of the OIDC discovery document; default this server's
    /// `/openid/v1/jwks`.
    #[arg(long)]
    pub service_account_jwks_uri: Option<String>,

    /// Client certificate kapi presents to aggregated API servers (upstream's
    /// `--proxy-client-cert-file`); default `DATA_DIR/pki/front-proxy-client.crt`,
    /// generated and signed by the front-proxy CA on first start.
    #[arg(long)]
    pub proxy_client_cert_file: Option<PathBuf>,

    /// The key of `--proxy-client-cert-file`.
    #[arg(long)]
    pub proxy_client_key_file: Option<PathBuf>,

    /// The CA that signs the client certificates of front proxies (published in the
    /// `kube-system/extension-apiserver-authentication` ConfigMap as
    /// `requestheader-client-ca-file`); default: the generated front-proxy CA.
    #[arg(long)]
    pub requestheader_client_ca_file: Option<PathBuf>,

    /// Common names a front proxy's client certificate may have; empty: any (default
    /// with the generated front-proxy CA: `front-proxy-client`).
    #[arg(long, value_delimiter = ',')]
    pub requestheader_allowed_names: Vec<String>,

    /// Headers holding the user name set by a front proxy.
    #[arg(long, value_delimiter = ',', default_value = "X-Remote-User")]
    pub requestheader_username_headers: Vec<String>,

    /// Headers holding the user's uid set by a front proxy.
    #[arg(long, value_delimiter = ',')]
    pub requestheader_uid_headers: Vec<String>,

    /// Headers holding the groups set by a front proxy.
    #[arg(long, value_delimiter = ',', default_value = "X-Remote-Group")]
    pub requestheader_group_headers: Vec<String>,

    /// Header prefixes of the user's extra values set by a front proxy.
    #[arg(long, value_delimiter = ',', default_value = "X-Remote-Extra-")]
    pub requestheader_extra_headers_prefix: Vec<String>,

    /// Route aggregated requests to endpoint addresses rather than the Service's
    /// ClusterIP (accepted; kapi always resolves through the endpoints, as it cannot
    /// reach ClusterIPs).
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub enable_aggregator_routing: bool,

    #[command(flatten)]
    pub audit: crate::audit::options::AuditOptions,

    /// Admission plugins to turn on besides the default set (comma-separated; they run
    /// in upstream's order whatever order they are named in).
    #[arg(long, value_delimiter = ',')]
    pub enable_admission_plugins: Vec<String>,

    /// API Priority and Fairness (`--enable-priority-and-fairness`): requests wait for
    /// seats of their priority level; off, the max-inflight limits apply.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub enable_priority_and_fairness: bool,

    /// Requests (not mutating) served at once; with priority and fairness, part of the
    /// seats shared by the priority levels.
    #[arg(long, default_value_t = 400)]
    pub max_requests_inflight: u32,

    /// Mutating requests served at once; with priority and fairness, the rest of the seats.
    #[arg(long, default_value_t = 200)]
    pub max_mutating_requests_inflight: u32,

    /// Admission plugins to turn off, default ones included.
    #[arg(long, value_delimiter = ',')]
    pub disable_admission_plugins: Vec<String>,

    /// The tolerationSeconds of the not-ready:NoExecute toleration DefaultTolerationSeconds
    /// adds to every pod that has none.
    #[arg(long, default_value_t = crate::admission::DEFAULT_TOLERATION_SECONDS)]
    pub default_not_ready_toleration_seconds: i64,

    /// The tolerationSeconds of the unreachable:NoExecute toleration DefaultTolerationSeconds
    /// adds to every pod that has none.
    #[arg(long, default_value_t = crate::admission::DEFAULT_TOLERATION_SECONDS)]
    pub default_unreachable_toleration_seconds: i64,
}

impl Options {
    /// The watch cache size of `resource` (`pods`, `deployments.apps`).
    pub fn watch_cache_size(&self, resource: &str) -> usize {
        self.watch_cache_sizes
            .iter()
            .filter_map(|e| e.split_once('#'))
            .find(|(r, _)| *r == resource || r.split('.').next() == Some(resource))
            .and_then(|(_, n)| n.trim().parse().ok())
            .unwrap_or(self.default_watch_cache_size)
            .max(1)
    }

    /// How many shards the watch cache of `resource` (plural) has.
    pub fn watch_cache_shards(&self, resource: &str) -> usize {
        const BUSY: &[&str] = &["pods", "events", "leases", "nodes", "endpointslices"];
        if !BUSY.contains(&resource) {
            return 1;
        }
        match self.watch_cache_shards {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()).min(8),
            n => n.min(64),
        }
    }

    /// Serving threads (`--workers`, else one per available core).
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            return self.workers;
        }
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    }

    /// The built-in resources `--runtime-config` makes the server serve.
    pub fn base_registry(&self) -> Result<Arc<Registry>, String> {
        Registry::configured(&self.runtime_config.join(","))
            .map_err(|e| format!("--runtime-config: {e}"))
    }

    /// The storage media type in effect.
    pub fn storage_media_type(&self) -> Result<StorageMediaType, String> {
        match &self.storage_media_type {
            Some(m) => StorageMediaType::parse(m),
            None if self.etcd_servers.is_empty() => Ok(StorageMediaType::Json),
            None => Ok(StorageMediaType::Protobuf),
        }
    }

    /// HTTP/2 streams per connection in effect (upstream's default: 100).
    pub fn http2_max_streams(&self) -> u32 {
        match self.http2_max_streams_per_connection {
            0 => 100,
            n => n,
        }
    }

    /// Seconds between compactions.
    pub fn compaction_interval(&self) -> Duration {
        self.etcd_compaction_interval
            .unwrap_or(Duration::from_secs(self.compaction_interval_seconds))
    }

    /// Options for tests: everything default but the data directory and port.
    pub fn for_test(data_dir: PathBuf, port: u16) -> Self {
        let mut o = Options::parse_from(["kapi"]);
        o.data_dir = data_dir;
        o.secure_port = port;
        o
    }
}

/// A Go duration (`1h0m0s`, `5m`, `300ms`, `90s`), as upstream's flags take them.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    match kapi_codec::time::parse_go_duration(s) {
        Some(n) if n >= 0 => Ok(Duration::from_nanos(n as u64)),
        _ => Err(format!("invalid duration {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_cache_sizes_parse_as_upstream() {
        let o =
            Options::parse_from(["kapi", "--watch-cache-sizes", "pods#5000,deployments.apps#20"]);
        assert_eq!(o.watch_cache_size("pods"), 5000);
        assert_eq!(o.watch_cache_size("deployments"), 20);
        assert_eq!(o.watch_cache_size("configmaps"), 1000);
    }

    #[test]
    fn runtime_config_flags_add_up_and_bad_ones_are_refused() {
        let o = Options::parse_from([
            "kapi",
            "--runtime-config",
            "resource.k8s.io/v1beta2=true",
            "--runtime-config=batch/v1=false",
        ]);
        let r = o.base_registry().unwrap();
        assert!(r.get("resource.k8s.io", "v1beta2", "deviceclasses").is_some());
        assert!(r.get("batch", "v1", "jobs").is_none());
        let o = Options::parse_from(["kapi", "--runtime-config", "nope.io/v1=true"]);
        assert_eq!(o.base_registry().unwrap_err(), "--runtime-config: unknown api groups nope.io");
    }

    #[test]
    fn go_durations_parse_as_upstream_flags_take_them() {
        assert_eq!(parse_duration("1h0m0s"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn aggregation_flags_take_upstreams_forms() {
        let o = Options::parse_from(["kapi"]);
        assert_eq!(o.requestheader_username_headers, ["X-Remote-User"]);
        assert_eq!(o.requestheader_group_headers, ["X-Remote-Group"]);
        assert_eq!(o.requestheader_extra_headers_prefix, ["X-Remote-Extra-"]);
        assert!(!o.enable_aggregator_routing);
        let o = Options::parse_from([
            "kapi",
            "--enable-aggregator-routing",
            "--requestheader-allowed-names",
            "a,b",
        ]);
        assert!(o.enable_aggregator_routing);
        assert_eq!(o.requestheader_allowed_names, ["a", "b"]);
        let o = Options::parse_from(["kapi", "--enable-aggregator-routing=false"]);
        assert!(!o.enable_aggregator_routing);
    }

    #[test]
    fn authentication_flags_take_upstreams_defaults() {
        let o = Options::parse_from(["kapi"]);
        assert!(o.anonymous_auth);
        assert!(!o.enable_bootstrap_token_auth);
        assert!(o.requestheader_uid_headers.is_empty());
        let o = Options::parse_from([
            "kapi",
            "--anonymous-auth=false",
            "--enable-bootstrap-token-auth",
            "--requestheader-uid-headers=X-Remote-Uid",
        ]);
        assert!(!o.anonymous_auth);
        assert!(o.enable_bootstrap_token_auth);
        assert_eq!(o.requestheader_uid_headers, ["X-Remote-Uid"]);
    }

    #[test]
    fn webhook_and_oidc_flags_take_upstreams_defaults_and_forms() {
        let o = Options::parse_from(["kapi"]);
        assert_eq!(o.authentication_token_webhook_version, "v1");
        assert_eq!(o.authentication_token_webhook_cache_ttl, Duration::from_secs(120));
        assert_eq!(o.oidc_username_claim, "sub");
        assert_eq!(o.oidc_signing_algs, ["RS256"]);
        let o = Options::parse_from([
            "kapi",
            "--authentication-token-webhook-version=v1beta1",
            "--authentication-token-webhook-cache-ttl=30s",
            "--oidc-required-claim=hd=example.com,tier=gold",
            "--oidc-signing-algs=RS256,ES256",
        ]);
        assert_eq!(o.authentication_token_webhook_version, "v1beta1");
        assert_eq!(o.authentication_token_webhook_cache_ttl, Duration::from_secs(30));
        assert_eq!(o.oidc_required_claim, ["hd=example.com", "tier=gold"]);
        assert_eq!(o.oidc_signing_algs, ["RS256", "ES256"]);
        assert!(
            Options::try_parse_from(["kapi", "--authentication-token-webhook-version=v2"]).is_err()
        );
    }
}
