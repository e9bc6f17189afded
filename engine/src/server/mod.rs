//! Process lifecycle: open the store, load credentials, bootstrap the objects the
//! apiserver owns, start one worker (monoio runtime) per core, wait for SIGTERM/SIGINT,
//! then shut down gracefully: stop accepting, let in-flight requests finish, end watches,
//! flush and close the store.

mod client_cert;
mod conn;
pub use conn::ConnInfo;
pub mod current;
mod gate;
mod head;
pub mod pipe;
pub mod timeout;
mod tls;
mod watchdog;
mod worker;

use crate::app::App;
use crate::auth::dynamic_ca::DynamicCa;
use crate::auth::jwt::{PublicKey, SigningKey};
use crate::auth::oidc;
use crate::auth::remote::Remote;
use crate::auth::requestheader::RequestHeader;
use crate::auth::serviceaccount::Tokens;
use crate::auth::webhook::Webhook;
use crate::auth::{Authenticator, UserInfo, token_file::TokenFile};
use crate::config::Options;
use crate::controllers::endpoints::{self, lease_prefix};
use crate::pki::Pki;
use kapi_storage::Store;
use kapi_storage::embedded::{EmbeddedOptions, EmbeddedStore};
use kapi_storage::etcd::{EtcdOptions, EtcdStore};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Run the API server until a termination signal; returns after a graceful shutdown.
pub fn run(options: Options) -> Result<(), String> {
    let started = Instant::now();
    options.base_registry()?; // a bad --runtime-config stops the start before anything is made
    // The authorization configuration is checked first: a bad one refuses to start
    // before anything is opened.
    let (authorizer, authz_reloader) = crate::authz::setup::chain(&options)?;
    std::fs::create_dir_all(&options.data_dir)
        .map_err(|e| format!("creating {}: {e}", options.data_dir.display()))?;
    let store = open_store(&options)?;
    let (shutdown_tx, shutdown_rx) = flume::bounded::<()>(1);
    let authenticator = authenticator(&options)?;
    let app = Arc::new(App::new(
        options.clone(),
        store.clone(),
        authenticator,
        authorizer.clone(),
        shutdown_rx,
    )?);
    let pki = Pki::load_or_create(
        &options.data_dir,
        options.bind_address,
        app.cluster_ips.first().into(),
    )
    .map_err(|e| e.to_string())?;
    let app = Arc::new(with_pki(app, &pki)?);
    futures_executor::block_on(crate::controllers::bootstrap::run(&app))?;
    if app.shared_store() {
        futures_executor::block_on(endpoints::reconcile(&app))?;
    }
    let crds = crate::controllers::crd::start(app.clone()).map_err(|e| e.to_string())?;
    let apiservices = start_aggregator(&app, &options, &pki)?;
    // Every stored resource's watch cache starts now (as upstream's cacher), loading in
    // the background; reads wait for the ones they need.
    for rt in app.registry().all() {
        app.caches.get(&app, rt);
    }
    if authorizer.modes().contains(&crate::authz::Mode::Node) {
        authorizer.graph.start(app.clone()).map_err(|e| e.to_string())?;
    }
    if authorizer.uses_rbac() {
        crate::authz::policy::start(app.clone(), authorizer.policy.clone())
            .map_err(|e| e.to_string())?;
    }
    if let Some(reloader) = authz_reloader {
        reloader.start(app.clone()).map_err(|e| e.to_string())?;
    }
    // The API Priority and Fairness configuration, loaded before serving.
    let apf = crate::flowcontrol::controller::start(app.clone()).map_err(|e| e.to_string())?;
    let controller =
        crate::controllers::namespace::start(app.clone()).map_err(|e| e.to_string())?;
    let quotas = crate::controllers::quota::start(app.clone()).map_err(|e| e.to_string())?;
    let policy_status =
        crate::controllers::policy_status::start(app.clone()).map_err(|e| e.to_string())?;
    crate::health::start_storage_probe(app.clone()).map_err(|e| e.to_string())?;
    let hints = Arc::new(client_cert::Hints::new(client_ca_hints(&app)));
    let tls = tls::server_config(&pki, hints.clone())?;
    reload_cas(&app, hints)?;
    let workers = worker::start(app.clone(), tls, worker_count(&options))?;
    // Handled from before "ready" is printed: a SIGTERM right after it is a graceful stop
    // (it used to find the default action still in place and kill the process).
    let signals = shutdown_signals()?;
    announce(&options, &pki, started)?;
    let signal = wait_for_signal(signals);
    tracing::info!("received {signal}, shutting down");
    app.begin_shutdown();
    drop(shutdown_tx);
    worker::join(workers, Duration::from_secs(options.shutdown_grace_seconds));
    app.audit.shutdown();
    let _ = controller.join();
    let _ = quotas.join();
    let _ = policy_status.join();
    let _ = apf.join();
    let _ = crds.join();
    let _ = apiservices.join();
    let leaving = app.shared_store().then(|| endpoints::remove_self(&app));
    if let Some(Err(e)) = leaving.map(futures_executor::block_on) {
        tracing::warn!("removing this server from the kubernetes endpoints: {e}");
    }
    futures_executor::block_on(store.close()).map_err(|e| e.to_string())?;
    tracing::info!("shutdown complete");
    Ok(())
}

/// The proxy client identity (the flags', or the generated front-proxy client), the
/// client thread, and the APIService controller with the authentication ConfigMap.
fn start_aggregator(
    app: &Arc<App>,
    options: &Options,
    pki: &Pki,
) -> Result<std::thread::JoinHandle<()>, String> {
    use crate::aggregator::{client, controller};
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
    };
    let generated = crate::pki::ensure_front_proxy(&options.data_dir).map_err(|e| e.to_string())?;
    let (cert, key) = match (&options.proxy_client_cert_file, &options.proxy_client_key_file) {
        (Some(c), Some(k)) => (read(c)?, read(k)?),
        (None, None) => (generated.client_cert_pem.clone(), generated.client_key_pem.clone()),
        _ => {
            return Err(
                "--proxy-client-cert-file and --proxy-client-key-file must be given together"
                    .into(),
            );
        }
    };
    let identity = client::ProxyIdentity::from_pem(&cert, &key)?;
    let client = Arc::new(client::Client::start(identity).map_err(|e| e.to_string())?);
    app.set_aggregator(client.clone());
    let (requestheader_client_ca, allowed) = match &options.requestheader_client_ca_file {
        Some(p) => (read(p)?, options.requestheader_allowed_names.clone()),
        None if options.requestheader_allowed_names.is_empty() => {
            (generated.ca_cert_pem.clone(), vec!["front-proxy-client".to_string()])
        }
        None => (generated.ca_cert_pem.clone(), options.requestheader_allowed_names.clone()),
    };
    let client_ca = match &options.client_ca_file {
        Some(p) => read(p)?,
        None => pki.ca_cert_pem.clone(),
    };
    let auth = controller::AuthenticationInfo {
        client_ca,
        requestheader_client_ca,
        requestheader_allowed_names: allowed,
        requestheader_username_headers: options.requestheader_username_headers.clone(),
        requestheader_group_headers: options.requestheader_group_headers.clone(),
        requestheader_extra_headers_prefix: options.requestheader_extra_headers_prefix.clone(),
    };
    controller::start(app.clone(), client, auth).map_err(|e| e.to_string())
}

fn open_store(options: &Options) -> Result<Arc<dyn Store>, String> {
    if !options.etcd_servers.is_empty() {
        return open_etcd(options);
    }
    // The store's watchers are the watch caches: give them room to absorb write bursts.
    let opts = EmbeddedOptions {
        fsync: !options.unsafe_no_fsync,
        watch_buffer: 100_000,
        ..Default::default()
    };
    let store =
        EmbeddedStore::open(&options.data_dir.join("store"), opts).map_err(|e| e.to_string())?;
    Ok(store)
}

fn open_etcd(options: &Options) -> Result<Arc<dyn Store>, String> {
    let events = format!("{}/events/", options.etcd_prefix.trim_end_matches('/'));
    let opts = EtcdOptions {
        endpoints: options.etcd_servers.clone(),
        ca_file: options.etcd_cafile.clone(),
        cert_file: options.etcd_certfile.clone(),
        key_file: options.etcd_keyfile.clone(),
        max_txn_ops: options.max_txn_ops.max(1),
        shards: options.etcd_write_shards.max(1),
        batching: options.etcd_write_batching,
        request_timeout: options.etcd_request_timeout,
        observer: Some(crate::metrics::etcd::observer(
            kapi_codec::Registry::builtin(),
            &options.etcd_prefix,
        )),
        ttl_prefixes: vec![
            (events, options.event_ttl),
            (lease_prefix(&options.etcd_prefix), endpoints::LEASE_TTL),
        ],
        ..Default::default()
    };
    let store = EtcdStore::connect(opts).map_err(|e| e.to_string())?;
    Ok(store)
}

fn authenticator(options: &Options) -> Result<Authenticator, String> {
    let tokens = match &options.token_auth_file {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            TokenFile::parse(&text)?
        }
        None => TokenFile::default(),
    };
    let service_accounts = Some(service_account_tokens(options)?);
    let audiences = service_accounts.as_ref().map(|t| t.audiences.clone()).unwrap_or_default();
    let remote = std::cell::OnceCell::new();
    let remote = || -> Result<Remote, String> {
        if let Some(r) = remote.get() {
            return Ok(Remote::clone(r));
        }
        let r = Remote::start().map_err(|e| format!("authentication client: {e}"))?;
        Ok(remote.get_or_init(|| r).clone())
    };
    let webhook = match &options.authentication_token_webhook_config_file {
        Some(path) => Some(token_webhook(options, path, audiences, remote()?)?),
        None => None,
    };
    let oidc = oidc_issuers(options)?;
    if !oidc.is_empty() {
        crate::auth::oidc::start(&oidc, &remote()?);
    }
    Ok(Authenticator {
        tokens,
        service_accounts,
        webhook,
        oidc,
        request_header: request_header(options)?,
        bootstrap_tokens: options.enable_bootstrap_token_auth,
        anonymous: options.anonymous_auth,
        ..Default::default()
    })
}

/// The token webhook the kubeconfig at `path` names.
fn token_webhook(
    options: &Options,
    path: &std::path::Path,
    audiences: Vec<String>,
    remote: Remote,
) -> Result<Webhook, String> {
    let flag = "--authentication-token-webhook-config-file";
    let endpoint =
        crate::client::WebhookKubeconfig::load(path).map_err(|e| format!("{flag}: {e}"))?;
    Webhook::new(
        &endpoint,
        &options.authentication_token_webhook_version,
        options.authentication_token_webhook_cache_ttl,
        audiences,
        remote,
    )
    .map_err(|e| format!("{flag}: {e}"))
}

/// The JWT issuers of `--authentication-config` or the `--oidc-*` flags.
fn oidc_issuers(options: &Options) -> Result<Vec<Arc<oidc::Issuer>>, String> {
    let settings = match (&options.authentication_config, &options.oidc_issuer_url) {
        (Some(_), Some(_)) => {
            return Err("--authentication-config and --oidc-* flags are mutually exclusive".into());
        }
        (Some(path), None) => oidc::from_config_file(&read_file(path)?)
            .map_err(|e| format!("--authentication-config: {e}"))?,
        (None, Some(url)) => {
            let ca = match &options.oidc_ca_file {
                Some(p) => Some(read_file(p)?.into_bytes()),
                None => None,
            };
            vec![
                oidc::from_flags(
                    url,
                    &options.oidc_client_id,
                    &options.oidc_username_claim,
                    options.oidc_username_prefix.as_deref(),
                    options.oidc_groups_claim.as_deref(),
                    options.oidc_groups_prefix.as_deref(),
                    &options.oidc_required_claim,
                    ca,
                    &options.oidc_signing_algs,
                )
                .map_err(|e| e.to_string())?,
            ]
        }
        (None, None) => Vec::new(),
    };
    settings
        .into_iter()
        .map(|s| oidc::Issuer::new(s).map(Arc::new).map_err(|e| e.to_string()))
        .collect()
}

fn read_file(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Front-proxy authentication, when `--requestheader-client-ca-file` is given.
fn request_header(options: &Options) -> Result<Option<RequestHeader>, String> {
    let Some(path) = &options.requestheader_client_ca_file else { return Ok(None) };
    let ca = DynamicCa::from_file(path.clone())
        .map_err(|e| format!("--requestheader-client-ca-file: {e}"))?;
    let ca = Arc::new(ca);
    Ok(Some(RequestHeader::new(
        ca,
        &options.requestheader_allowed_names,
        &options.requestheader_username_headers,
        &options.requestheader_uid_headers,
        &options.requestheader_group_headers,
        &options.requestheader_extra_headers_prefix,
    )))
}

/// The subjects of every CA client certificates may chain to (the handshake names them).
fn client_ca_hints(app: &App) -> Vec<rustls::DistinguishedName> {
    let authn = &app.authenticator;
    let client = authn.client_ca.iter().map(|ca| ca.load());
    let proxy = authn.request_header.iter().map(|rh| rh.ca.load());
    client.chain(proxy).flat_map(|ca| ca.subjects.clone()).collect()
}

/// Read `--client-ca-file` and `--requestheader-client-ca-file` again when they change
/// (every `--ca-reload-interval`), naming the new CAs in handshakes from then on.
fn reload_cas(app: &Arc<App>, hints: Arc<client_cert::Hints>) -> Result<(), String> {
    let authn = &app.authenticator;
    let cas: Vec<Arc<DynamicCa>> = authn
        .client_ca
        .iter()
        .cloned()
        .chain(authn.request_header.iter().map(|rh| rh.ca.clone()))
        .collect();
    let watched = app.clone();
    let interval = app.options.ca_reload_interval;
    crate::auth::dynamic_ca::start(cas, interval, move || hints.set(client_ca_hints(&watched)))
        .map_err(|e| format!("CA reloader: {e}"))
}

/// The ServiceAccount token keys and settings from the flags (the signing key generated
/// into `DATA_DIR/pki/sa.key` when none is given).
fn service_account_tokens(options: &Options) -> Result<Tokens, String> {
    let signing_pem = match &options.service_account_signing_key_file {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => {
            crate::pki::ensure_service_account_key(&options.data_dir).map_err(|e| e.to_string())?
        }
    };
    let signer = SigningKey::from_pem(&signing_pem)
        .map_err(|e| format!("--service-account-signing-key-file: {e}"))?;
    let mut keys = vec![signer.public.clone()];
    for path in &options.service_account_key_file {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let more =
            PublicKey::all_from_pem(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        keys.extend(more.into_iter().filter(|k| k.kid != signer.public.kid));
    }
    let issuers: Vec<String> =
        options.service_account_issuer.iter().filter(|i| !i.is_empty()).cloned().collect();
    if issuers.is_empty() {
        return Err("--service-account-issuer must not be empty".into());
    }
    let audiences = if options.api_audiences.is_empty() {
        issuers.clone()
    } else {
        options.api_audiences.clone()
    };
    Ok(Tokens {
        signer,
        keys,
        issuers,
        audiences,
        max_expiration: options.service_account_max_token_expiration.map(|d| d.as_secs() as i64),
        extend_expiration: options.service_account_extend_token_expiration,
    })
}

/// The admin bearer token is accepted alongside the token file; client certificates
/// are verified against `--client-ca-file`, or the generated cluster CA.
fn with_pki(app: Arc<App>, pki: &Pki) -> Result<App, String> {
    let mut app = Arc::try_unwrap(app).map_err(|_| "app still shared".to_string())?;
    let ca = match &app.options.client_ca_file {
        Some(path) => {
            DynamicCa::from_file(path.clone()).map_err(|e| format!("--client-ca-file: {e}"))
        }
        None => DynamicCa::fixed(&pki.ca_cert_pem).map_err(|e| format!("cluster CA: {e}")),
    };
    app.authenticator.client_ca = Some(Arc::new(ca?));
    let admin = UserInfo {
        name: "kubernetes-admin".into(),
        groups: vec!["system:masters".into()],
        ..Default::default()
    };
    app.authenticator.tokens.insert(pki.admin_token.clone(), admin);
    Ok(app)
}

fn worker_count(options: &Options) -> usize {
    options.worker_count()
}

fn announce(options: &Options, pki: &Pki, started: Instant) -> Result<(), String> {
    let host = match options.bind_address {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let url = format!("https://{host}:{}", options.secure_port);
    let kubeconfig = options.data_dir.join("admin.kubeconfig");
    pki.write_admin_kubeconfig(&kubeconfig, &url).map_err(|e| e.to_string())?;
    let abs = std::fs::canonicalize(&kubeconfig).unwrap_or(kubeconfig);
    println!("kapi is serving on {url} (ready in {} ms)", started.elapsed().as_millis());
    println!("admin kubeconfig: {}", abs.display());
    println!("try: kubectl --kubeconfig {} get namespaces", abs.display());
    println!("ready");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    Ok(())
}

/// Take over SIGTERM and SIGINT (from now on they start a graceful shutdown).
fn shutdown_signals() -> Result<signal_hook::iterator::Signals, String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    signal_hook::iterator::Signals::new([SIGTERM, SIGINT]).map_err(|e| e.to_string())
}

fn wait_for_signal(mut signals: signal_hook::iterator::Signals) -> &'static str {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let sig = signals.forever().next().unwrap_or(SIGTERM);
    if sig == SIGINT { "SIGINT" } else { "SIGTERM" }
}
