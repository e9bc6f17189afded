//! Disk full (issue #14): the embedded store's directory on a small tmpfs, filled during a
//! write storm of big ConfigMaps. Writes then fail with upstream's Status for a full
//! store (500, "database space exceeded"), reads go on and /readyz fails; once the filler
//! file is deleted /readyz passes and writes are acknowledged again; after a SIGTERM
//! restart and then a kill -9 restart every acknowledged write is there, no refused one
//! is, and no deleted object came back.
//!
//! Needs `mount -t tmpfs` (root); skipped with a message otherwise, and on the etcd
//! backend (etcd's own quota is what fills there, not kapi's disk).

use k8s_openapi::api::core::v1::ConfigMap;
use kapi_e2e::{Server, ServerOptions, backend_is_etcd, eventually};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Size of the tmpfs the store lives on.
const TMPFS_MIB: u64 = 48;
/// Room left for the storm before the disk is full.
const ROOM_BYTES: u64 = 6 << 20;
/// Data of each storm ConfigMap.
const BIG_BYTES: usize = 200 << 10;

/// A tmpfs mounted on a directory; lazily unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, mib: u64) -> Result<Tmpfs, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}M"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs { path: path.to_path_buf() })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Put the (stopped) server's store directory on a fresh tmpfs, keeping its files.
fn store_on_tmpfs(server: &Server) -> Result<Tmpfs, String> {
    let store = server.dir.path().join("data").join("store");
    let aside = server.dir.path().join("data").join("store.disk");
    std::fs::rename(&store, &aside).map_err(|e| e.to_string())?;
    std::fs::create_dir(&store).map_err(|e| e.to_string())?;
    let tmpfs = Tmpfs::mount(&store, TMPFS_MIB)?;
    for entry in std::fs::read_dir(&aside).map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        std::fs::copy(entry.path(), store.join(entry.file_name())).map_err(|e| e.to_string())?;
    }
    std::fs::remove_dir_all(&aside).map_err(|e| e.to_string())?;
    Ok(tmpfs)
}

/// Append zeros to `file` until the disk refuses; then give back `room` bytes.
fn fill_leaving(file: &Path, room: u64) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(file).expect("filler");
    for chunk in [1 << 20, 4 << 10, 1] {
        let zeros = vec![0u8; chunk];
        while f.write_all(&zeros).is_ok() {}
    }
    let len = f.metadata().expect("filler size").len();
    f.set_len(len.saturating_sub(room)).expect("shrink filler");
}

async fn client(server: &Server) -> Client {
    let kc = Kubeconfig::read_from(server.kubeconfig()).expect("kubeconfig");
    let mut config =
        Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.expect("config");
    config.read_timeout = Some(Duration::from_secs(30));
    Client::try_from(config).expect("client")
}

fn configmap(name: &str, tag: &str, big: usize) -> ConfigMap {
    let data = BTreeMap::from([
        ("tag".to_string(), tag.to_string()),
        ("big".to_string(), "x".repeat(big)),
    ]);
    ConfigMap {
        metadata: kube::api::ObjectMeta { name: Some(name.into()), ..Default::default() },
        data: Some(data),
        ..Default::default()
    }
}

/// What the clients were told.
#[derive(Debug, Default, Clone)]
struct Ledger {
    /// Acknowledged and not deleted: name -> (tag, big length).
    live: BTreeMap<String, (String, usize)>,
    /// Acknowledged deletes.
    deleted: BTreeSet<String>,
    /// Creates refused for lack of space.
    refused: BTreeSet<String>,
    /// Status messages of refused writes.
    messages: Vec<(u16, String, String)>,
}

impl Ledger {
    /// Note a refusal; whether it was the store being full.
    fn refusal(&mut self, e: &kube::Error) -> bool {
        let kube::Error::Api(s) = e else { return false };
        self.messages.push((s.code, s.reason.clone(), s.message.clone()));
        s.code == 500 && s.message.contains("database space exceeded")
    }
}

async fn create(api: &Api<ConfigMap>, ledger: &Mutex<Ledger>, name: &str, big: usize) -> bool {
    let tag = format!("tag-{name}");
    match api.create(&PostParams::default(), &configmap(name, &tag, big)).await {
        Ok(_) => {
            ledger.lock().unwrap().live.insert(name.to_string(), (tag, big));
            true
        }
        Err(e) => {
            let mut l = ledger.lock().unwrap();
            if l.refusal(&e) {
                l.refused.insert(name.to_string());
            }
            false
        }
    }
}

async fn delete(api: &Api<ConfigMap>, ledger: &Mutex<Ledger>, name: &str) -> bool {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {
            let mut l = ledger.lock().unwrap();
            l.live.remove(name);
            l.deleted.insert(name.to_string());
            true
        }
        Err(e) => {
            ledger.lock().unwrap().refusal(&e);
            false
        }
    }
}

/// One storm writer: big creates, every third one followed by a delete of an earlier
/// one, until the store has refused a few writes for lack of space.
async fn storm_writer(api: Api<ConfigMap>, ledger: Arc<Mutex<Ledger>>, w: usize) {
    let mut full = 0;
    // Regression (the test's own): the previous name was deleted even when its create
    // had been refused, and the 404 that earned was taken for a bad refusal.
    let mut previous_created = false;
    for i in 0..400 {
        let name = format!("storm-{w}-{i}");
        if !create(&api, &ledger, &name, BIG_BYTES).await {
            previous_created = false;
            full += 1;
            if full >= 4 {
                return;
            }
            continue;
        }
        if i % 3 == 2 && previous_created {
            delete(&api, &ledger, &format!("storm-{w}-{}", i - 1)).await;
        }
        previous_created = true;
    }
}

fn readyz(server: &Server) -> (bool, String) {
    let out = server.kubectl(&["get", "--raw", "/readyz?verbose"]);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Everything acknowledged is there, nothing refused or deleted is.
async fn check_contents(server: &Server, ledger: &Ledger, when: &str) {
    let api: Api<ConfigMap> = Api::namespaced(client(server).await, "default");
    let list = api.list(&ListParams::default()).await.expect("list");
    let stored: BTreeMap<String, (String, usize)> = list
        .items
        .iter()
        .filter_map(|cm| {
            let data = cm.data.as_ref()?;
            let big = data.get("big").map_or(0, String::len);
            Some((cm.metadata.name.clone()?, (data.get("tag")?.clone(), big)))
        })
        .collect();
    for (name, want) in &ledger.live {
        assert_eq!(stored.get(name), Some(want), "{when}: acknowledged write {name} lost");
    }
    for name in &ledger.deleted {
        assert!(!stored.contains_key(name), "{when}: deleted {name} came back");
    }
    for name in &ledger.refused {
        assert!(!stored.contains_key(name), "{when}: refused create {name} is there");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_fails_writes_cleanly_and_loses_nothing_across_restarts() {
    if backend_is_etcd() {
        eprintln!("skipped: on etcd the store's space is etcd's quota, not kapi's disk");
        return;
    }
    let mut server = Server::start_with(ServerOptions { fsync: true, ..Default::default() });
    assert!(server.stop(), "graceful stop before moving the store");
    let tmpfs = match store_on_tmpfs(&server) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("skipped: cannot mount a tmpfs for the store ({e})");
            return;
        }
    };
    server.start_again();
    let api: Api<ConfigMap> = Api::namespaced(client(&server).await, "default");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    for i in 0..6 {
        assert!(create(&api, &ledger, &format!("seed-{i}"), 1000).await, "seed write");
    }
    assert!(delete(&api, &ledger, "seed-0").await);

    // The storm meets a full disk.
    let filler = tmpfs.path.join("filler");
    fill_leaving(&filler, ROOM_BYTES);
    let writers: Vec<_> =
        (0..3).map(|w| tokio::spawn(storm_writer(api.clone(), ledger.clone(), w))).collect();
    for w in writers {
        w.await.expect("storm writer");
    }
    {
        let l = ledger.lock().unwrap();
        assert!(!l.refused.is_empty(), "the disk never filled: {:?}", l.messages);
        let odd: Vec<_> = l.messages.iter().filter(|(code, ..)| *code != 500).collect();
        assert!(odd.is_empty(), "refusals other than 500: {odd:?}");
        eprintln!("storm: {} live, {} refused", l.live.len(), l.refused.len());
    }

    // Completely full: writes fail with the clear Status, reads go on, /readyz fails.
    fill_leaving(&filler, 0);
    // Larger than a page: a small record could still land in the slack of the WAL's
    // last page, which a full tmpfs does not need a new page for (a flake, about one run
    // in seven, once the suite got busier).
    assert!(!create(&api, &ledger, "while-full", 16 * 1024).await, "a write on a full disk");
    let (code, reason, message) = ledger.lock().unwrap().messages.last().cloned().unwrap();
    assert_eq!(code, 500, "{message}");
    assert_eq!(reason, "", "upstream gives a store error no reason: {message}");
    assert!(message.contains("database space exceeded"), "{message}");
    let seed = api.get("seed-1").await.expect("reads go on while the disk is full");
    assert_eq!(seed.data.unwrap()["tag"], "tag-seed-1");
    api.list(&ListParams::default()).await.expect("lists go on while the disk is full");
    let failing = eventually(Duration::from_secs(30), || {
        let (ok, text) = readyz(&server);
        !ok && text.contains("[-]etcd-writable failed")
    });
    assert!(failing, "/readyz did not report the full disk: {}", readyz(&server).1);

    // Space back: /readyz passes, writes are acknowledged again.
    std::fs::remove_file(&filler).expect("remove filler");
    assert!(eventually(Duration::from_secs(30), || readyz(&server).0), "{}", readyz(&server).1);
    for i in 0..8 {
        assert!(create(&api, &ledger, &format!("after-{i}"), BIG_BYTES).await, "write after");
    }
    assert!(delete(&api, &ledger, "after-0").await && delete(&api, &ledger, "seed-1").await);
    let seen = ledger.lock().unwrap().clone();
    check_contents(&server, &seen, "before restarts").await;

    assert!(server.stop(), "graceful stop");
    server.start_again();
    let seen = ledger.lock().unwrap().clone();
    check_contents(&server, &seen, "after SIGTERM restart").await;
    let api: Api<ConfigMap> = Api::namespaced(client(&server).await, "default");
    assert!(create(&api, &ledger, "between-restarts", 1000).await);
    server.kill9();
    server.start_again();
    let seen = ledger.lock().unwrap().clone();
    check_contents(&server, &seen, "after kill -9 restart").await;
    server.stop();
    drop(tmpfs);
}
