//! Priority and fairness on the request path: what a request pays to get its seats and
//! give them back when nobody waits (the fast path: one atomic update each way), and the
//! cost per request when two threads contend for one seat (every request queues, is
//! dispatched by fair queuing, and seats come back across threads).

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt as _;
use kapi_flowcontrol::{Dispatcher, LevelConfig, Queuing};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn level(seats: u32) -> (Dispatcher, Arc<kapi_flowcontrol::Level>) {
    let d = Dispatcher::new(seats, 2);
    d.configure(&[LevelConfig {
        name: "workload-low".into(),
        uid: "uid".into(),
        exempt: false,
        nominal_concurrency_shares: 100,
        lendable_percent: 90,
        borrowing_limit_percent: None,
        queuing: Some(Queuing { queues: 128, hand_size: 6, queue_length_limit: 50 }),
    }]);
    let l = d.level("workload-low").expect("configured");
    (d, l)
}

fn fast_path(c: &mut Criterion) {
    let (_d, l) = level(600);
    let mut flow = 0u64;
    c.bench_function("flowcontrol/admit+release, free seats", |b| {
        b.iter(|| {
            flow = flow.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let seat =
                l.admit(black_box(flow), 1).now_or_never().expect("fast path").expect("seat");
            drop(black_box(seat));
        })
    });
}

/// Two threads, one seat: every request but the running one waits in its thread's queues.
fn contended(c: &mut Criterion) {
    c.bench_function("flowcontrol/admit+release, 2 threads, 1 seat", |b| {
        b.iter_custom(|iters| {
            let (_d, l) = level(1);
            let per_thread = iters.div_ceil(2);
            let start = Instant::now();
            let threads: Vec<_> = (0..2)
                .map(|core| {
                    let l = l.clone();
                    std::thread::spawn(move || {
                        kapi_flowcontrol::dispatch::set_core(core);
                        futures_executor::block_on(async {
                            for i in 0..per_thread {
                                let seat = l.admit(i ^ (core as u64) << 32, 1).await.expect("seat");
                                drop(seat);
                            }
                        })
                    })
                })
                .collect();
            for t in threads {
                t.join().expect("thread");
            }
            start.elapsed()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = fast_path, contended
}
criterion_main!(benches);
