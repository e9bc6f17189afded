//! kapi on an etcd that serves clients only over TLS and requires client certificates
//! (`--client-cert-auth`, as production clusters run it): with `--etcd-cafile`,
//! `--etcd-certfile` and `--etcd-keyfile` every verb works and the objects land in that
//! etcd; without the client certificate kapi never becomes ready.
//! Skipped with a message when no etcd binary is installed.

use kapi_e2e::etcd::{self, Etcd};
use kapi_e2e::tls::TlsFiles;
use kapi_e2e::{Server, ServerOptions};

fn tls_etcd() -> Option<Etcd> {
    if !etcd::available() {
        eprintln!("skipped: no etcd binary (install etcd-server)");
        return None;
    }
    Some(Etcd::start_tls())
}

fn kapi_on(e: &Etcd, args: Vec<String>) -> Result<Server, String> {
    Server::try_start_with(ServerOptions {
        etcd_servers: Some(e.endpoints()),
        extra_args: args,
        ..Default::default()
    })
}

/// Read a key with etcd-client over TLS with the client certificate.
fn etcd_get(e: &Etcd, key: &str) -> Option<Vec<u8>> {
    let tls: &TlsFiles = e.tls.as_ref().expect("tls etcd");
    let read = |p: &std::path::Path| std::fs::read(p).expect("read pem");
    let opts = etcd_client::ConnectOptions::new().with_tls(
        etcd_client::TlsOptions::new()
            .ca_certificate(etcd_client::Certificate::from_pem(read(&tls.ca)))
            .identity(etcd_client::Identity::from_pem(
                read(&tls.client_cert),
                read(&tls.client_key),
            )),
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut c = etcd_client::Client::connect(e.endpoint_list(), Some(opts)).await.unwrap();
        c.get(key, None).await.unwrap().kvs().first().map(|kv| kv.value().to_vec())
    })
}

#[test]
fn kapi_serves_every_verb_on_an_etcd_that_requires_client_certificates() {
    let Some(e) = tls_etcd() else { return };
    assert!(e.endpoints().starts_with("https://127.0.0.1:"), "{}", e.endpoints());
    let args = e.tls.as_ref().unwrap().kapi_args();
    let s = kapi_on(&e, args).expect("kapi on the TLS etcd");
    s.kubectl_ok(&["create", "configmap", "first", "--from-literal=k=v"]);
    let rv =
        s.kubectl_ok(&["get", "configmap", "first", "-o", "jsonpath={.metadata.resourceVersion}"]);
    s.kubectl_ok(&["create", "configmap", "second"]);
    s.kubectl_ok(&["label", "configmap", "second", "edited=yes"]);
    let got = s.kubectl_ok(&["get", "configmap", "second", "-o", "jsonpath={.metadata.labels}"]);
    assert!(got.contains("\"edited\":\"yes\""), "{got}");
    let list = s.kubectl_ok(&["get", "configmaps", "-o", "name"]);
    assert!(list.contains("configmap/first") && list.contains("configmap/second"), "{list}");
    s.kubectl_ok(&["delete", "configmap", "second"]);
    let url = format!(
        "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=1"
    );
    let events = s.kubectl_ok(&["get", "--raw", &url]);
    let order: Vec<usize> = ["\"ADDED\"", "\"MODIFIED\"", "\"DELETED\""]
        .iter()
        .map(|t| events.find(t).unwrap_or_else(|| panic!("no {t} event in {events}")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{events}");
    let stored = etcd_get(&e, "/registry/configmaps/default/first").expect("stored in etcd");
    assert!(stored.starts_with(b"k8s\0"), "not the protobuf envelope");
    assert!(etcd_get(&e, "/registry/configmaps/default/second").is_none(), "delete not stored");
}

#[test]
fn kapi_without_the_client_certificate_never_becomes_ready() {
    let Some(e) = tls_etcd() else { return };
    let tls = e.tls.as_ref().unwrap();
    let ca_only = vec!["--etcd-cafile".to_string(), tls.ca.to_string_lossy().into_owned()];
    let err = kapi_on(&e, ca_only).err().expect("kapi became ready without a client cert");
    assert!(err.contains("exited"), "{err}");
    // And the same etcd over plain http is refused too.
    let plain = e.endpoints().replace("https://", "http://");
    let err =
        Server::try_start_with(ServerOptions { etcd_servers: Some(plain), ..Default::default() })
            .err()
            .expect("kapi became ready over plain http");
    assert!(err.contains("exited"), "{err}");
}
