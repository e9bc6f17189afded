//! Durability: kill -9 during a write storm (fsync on), restart, and every write the
//! server acknowledged is there with the content that was acknowledged; revisions keep
//! increasing past the crash.

use k8s_openapi::api::core::v1::ConfigMap;
use kapi_e2e::{Server, ServerOptions};
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn client(server: &Server) -> Client {
    let kc = Kubeconfig::read_from(server.kubeconfig()).expect("kubeconfig");
    let mut config =
        Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.expect("config");
    config.read_timeout = Some(Duration::from_secs(5));
    Client::try_from(config).expect("client")
}

fn configmap(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: kube::api::ObjectMeta { name: Some(name.into()), ..Default::default() },
        data: Some(BTreeMap::from([("v".to_string(), value.to_string())])),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let mut server = Server::start_with(ServerOptions { fsync: true, ..Default::default() });
    let writer_client = client(&server).await;
    let acked: Arc<Mutex<Vec<(String, String, u64)>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..8 {
        let api: Api<ConfigMap> = Api::namespaced(writer_client.clone(), "default");
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let (name, value) = (format!("w{w}-{i}"), format!("value-{w}-{i}"));
                match api.create(&PostParams::default(), &configmap(&name, &value)).await {
                    Ok(cm) => {
                        let rv =
                            cm.metadata.resource_version.unwrap_or_default().parse().unwrap_or(0);
                        acked.lock().unwrap().push((name, value, rv));
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    // Let the storm run, then crash the server in the middle of it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < 300 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill9();
    for w in writers {
        let _ = tokio::time::timeout(Duration::from_secs(30), w).await;
    }
    let acked = acked.lock().unwrap().clone();
    eprintln!("{} writes acknowledged before the crash", acked.len());
    assert!(acked.len() >= 100, "the storm wrote only {} objects", acked.len());

    server.start_again();
    let api: Api<ConfigMap> = Api::namespaced(client(&server).await, "default");
    let list = api.list(&ListParams::default()).await.expect("list after restart");
    let stored: BTreeMap<String, String> = list
        .items
        .iter()
        .filter_map(|cm| Some((cm.metadata.name.clone()?, cm.data.as_ref()?.get("v")?.clone())))
        .collect();
    for (name, value, _) in &acked {
        assert_eq!(stored.get(name), Some(value), "acknowledged write {name} was lost");
    }
    let max_rv = acked.iter().map(|(_, _, rv)| *rv).max().unwrap_or(0);
    let after = api.create(&PostParams::default(), &configmap("after-crash", "x")).await.unwrap();
    let rv: u64 = after.metadata.resource_version.unwrap().parse().unwrap();
    assert!(rv > max_rv, "revision went backwards after the crash: {rv} <= {max_rv}");
}
