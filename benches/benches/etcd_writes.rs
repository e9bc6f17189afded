//! Write throughput of the etcd backend against a real etcd (fsync on, as etcd runs):
//! 500 concurrent creates of 4.5 KB values, batched per shard into multi-op Txns vs one
//! Txn per write. Skipped with a message when no etcd binary is installed.
//!
//! `cargo bench -p kapi-benches --bench etcd_writes`

use bytes::Bytes;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use kapi_e2e::etcd::{self, Etcd};
use kapi_storage::Store;
use kapi_storage::etcd::{EtcdOptions, EtcdStore};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const WRITES: u64 = 500;

fn creates(c: &mut Criterion) {
    if !etcd::available() {
        eprintln!("skipped: no etcd binary (install etcd-server)");
        return;
    }
    let value = Bytes::from(vec![b'x'; 4500]);
    let round = AtomicU64::new(0);
    let mut g = c.benchmark_group("etcd_creates");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(WRITES));
    for (name, batching) in [("batched", true), ("one_txn_per_write", false)] {
        // A fresh etcd each: the runs write hundreds of MB of history.
        let e = Etcd::start();
        let opts = EtcdOptions { endpoints: e.endpoint_list(), batching, ..Default::default() };
        let store = EtcdStore::connect(opts).expect("connect");
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let r = round.fetch_add(1, Ordering::Relaxed);
                    let writes: Vec<_> = (0..WRITES)
                        .map(|i| {
                            store.create(&format!("/registry/pods/bench/{r}-{i}"), value.clone())
                        })
                        .collect();
                    for w in writes {
                        futures_executor::block_on(w).expect("create");
                    }
                }
                start.elapsed()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, creates);
criterion_main!(benches);
