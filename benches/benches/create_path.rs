//! A pod create, stage by stage (issue #20): each stage is the function the engine's
//! CREATE runs (`kapi::rest::stages`), fed the object as the previous stage left it,
//! with `../shared/workloads/bench-pod.json` as the client's body (skipped when the file
//! is absent). Allocations per stage (on the bench thread; the store's committer is
//! counted process-wide) come from the counting allocator and are printed first:
//! unlike the timings they are deterministic. The whole create through the REST
//! handler closes the list.
//!
//! The writer's hand-off to the watch cache (encode-once) is measured in its parts: the
//! stored JSON written noting where the revision goes, the selector values the writer
//! reads, and the feed's splice that replaces the decode of the two "watch-cache apply"
//! rows for JSON values; for protobuf values, the walk that finds the object in the
//! protobuf round trip's normal form and the JSON written beside the stored protobuf,
//! then the same splice. The 201 answer spliced from the writer's JSON closes the parts.
//!
//! `cargo bench -p kapi-benches --bench create_path -- --warm-up-time 1 --measurement-time 2`

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use futures_executor::block_on;
use kapi::cache::{Cached, Selectors};
use kapi::rest::stages;
use kapi_benches::app::{self, Create};
use kapi_benches::counting::{self, Counting};
use kapi_codec::format::{self, Format};
use kapi_codec::stored::{self, StorageMediaType};
use kapi_storage::embedded::{EmbeddedOptions, EmbeddedStore};
use kapi_storage::{KeyValue, Store};
use serde_json::Value;
use std::cell::Cell;
use std::hint::black_box;

#[global_allocator]
static ALLOC: Counting = Counting;

/// Calls per allocation count.
const N: u64 = 50;

/// Allocations and bytes of one call of `f` on this thread (its input made by `setup`
/// outside the count), averaged over [`N`] calls.
fn allocs<S, R>(mut setup: impl FnMut() -> S, mut f: impl FnMut(S) -> R) -> (f64, f64) {
    let (mut a, mut b) = (0, 0);
    for _ in 0..N {
        let input = setup();
        let (out, da, db) = counting::measure(|| black_box(f(input)));
        drop(out);
        a += da;
        b += db;
    }
    (a as f64 / N as f64, b as f64 / N as f64)
}

/// The same, counted process-wide (for work another thread does, as the store's commit).
fn allocs_process<S, R>(mut setup: impl FnMut() -> S, mut f: impl FnMut(S) -> R) -> (f64, f64) {
    let (mut a, mut b) = (0, 0);
    for _ in 0..N {
        let input = setup();
        let (a0, b0) = counting::snapshot();
        let out = black_box(f(input));
        let (a1, b1) = counting::snapshot();
        drop(out);
        a += a1 - a0;
        b += b1 - b0;
    }
    (a as f64 / N as f64, b as f64 / N as f64)
}

fn report(rows: &[(&str, (f64, f64))]) {
    println!("\nallocations per pod create, by stage (bench-pod.json):");
    println!("{:<34} {:>12} {:>14}", "stage", "allocations", "bytes");
    for (name, (a, b)) in rows {
        println!("{name:<34} {a:>12.1} {b:>14.0}");
    }
    println!();
}

fn create_path(c: &mut Criterion) {
    let Some(template) = kapi_benches::shared_bench_pod() else {
        println!("create_path: bench-pod.json not found (../shared/workloads); skipped");
        return;
    };
    let template: Value = serde_json::from_slice(&template).expect("bench-pod.json");
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app::app(dir.path());
    let create = Create::new();
    let scope = create.scope(&app);
    let rt = scope.rt.clone();

    // Each stage's input, as the previous stage leaves it.
    let body = app::pod_body(&template, "bench-pod-0");
    let decoded = stages::decode(&scope, &body).expect("decoded");
    let mut defaulted = decoded.clone();
    stages::default(&scope, &mut defaulted).expect("defaulted");
    let mut managed = defaulted.clone();
    stages::managed_fields(&scope, &mut managed);
    let mut admitted = managed.clone();
    block_on(stages::admit_and_prepare(&scope, &mut admitted)).expect("admitted");
    let mut canonical = admitted.clone();
    stages::canonicalize(&scope, &mut canonical);
    let stored_json = block_on(stages::to_stored(&scope, &canonical)).expect("stored");
    let stored_pb = Bytes::from(stored::encode_object(&rt, &canonical, StorageMediaType::Protobuf));
    let mut answered = canonical.clone();
    kapi_codec::order::set_meta(&mut answered, "resourceVersion", Value::from("12"));
    let commit_dir = tempfile::tempdir().expect("tempdir");
    let commit_opts = EmbeddedOptions { fsync: false, ..Default::default() };
    let commit_store = EmbeddedStore::open(commit_dir.path(), commit_opts).expect("store");
    let decode = kapi::cache::decode_fn(&rt);
    let kv = |value: &Bytes| KeyValue {
        key: "/registry/pods/default/bench-pod-0".into(),
        value: value.clone(),
        create_revision: 12,
        mod_revision: 12,
    };
    let (kv_json, kv_pb) = (kv(&stored_json), kv(&stored_pb));
    // The writer's hand-off to the cache (issue #20): the stored JSON noting where the
    // revision goes, the object's selector values; the feed splices the revision in.
    let noting = || stored::encode_object_noting(&rt, &canonical, StorageMediaType::Json);
    let (noted, slot) = noting();
    assert_eq!(noted, stored_json, "the noting writer writes the same bytes");
    let slot = slot.expect("bench-pod.json gets a revision slot").slot;
    let selectors = || Selectors::of(&rt, &canonical);
    let splice = |sel| Cached::spliced(&kv_json.value, slot, 12, sel).expect("spliced");
    assert_eq!(splice(selectors()).json_line(), decode(&kv_json).expect("decoded").json_line());
    // Stored as protobuf: the normal-form walk and the JSON written beside the value.
    let noting_pb = || stored::encode_object_noting(&rt, &canonical, StorageMediaType::Protobuf);
    let (noted_pb, json_pb) = noting_pb();
    assert_eq!(noted_pb, stored_pb, "the noting writer writes the same protobuf");
    let json_pb = json_pb.expect("bench-pod.json is in the protobuf round trip's normal form");
    let (json_pb, slot_pb) = (Bytes::from(json_pb.json.expect("JSON beside")), json_pb.slot);
    let splice_pb = |sel| Cached::spliced(&json_pb, slot_pb, 12, sel).expect("spliced");
    assert_eq!(splice_pb(selectors()).json_line(), decode(&kv_pb).expect("decoded").json_line());
    let walk = || kapi_codec::protobuf::normal::round_trips(&rt, &canonical);
    // The 201 answer spliced from the writer's JSON (as `Written::answer`).
    let answer = || {
        kapi::buffers::encode(|out| {
            slot_pb.splice(&json_pb, 12, out);
            out.push(b'\n');
        })
    };
    let answered_body = app::body(stages::respond(&scope, &answered).expect("answer"));
    assert_eq!(answered_body, answer(), "the spliced answer is the answer's bytes");
    let serial = Cell::new(0u64);
    let next = || {
        serial.set(serial.get() + 1);
        serial.get()
    };
    let commit = |bytes: Bytes| {
        let key = format!("/registry/pods/default/bench-pod-{}", next());
        block_on(commit_store.create(&key, bytes)).expect("committed")
    };
    let handler_body = || app::pod_body(&template, &format!("bench-pod-h{}", next()));
    let handle = |body: Bytes| {
        let resp = create.send(&app, body);
        assert_eq!(resp.status(), 201);
        resp
    };
    // Warm up every lazily built table (schemas, facts) before counting.
    assert_eq!(handle(handler_body()).status(), 201);

    let rows = [
        (
            "decode: JSON parse",
            allocs(|| (), |_| format::decode_noting_duplicates(&body, Format::Json)),
        ),
        (
            "decode: prune unknown (schema walk)",
            allocs(
                || decoded.clone(),
                |mut o| kapi_codec::schema::prune_unknown(&rt.schema_name, &mut o).map(|_| o),
            ),
        ),
        ("decode (parse, type meta, prune)", allocs(|| (), |_| stages::decode(&scope, &body))),
        (
            "defaults",
            allocs(|| decoded.clone(), |mut o| stages::default(&scope, &mut o).map(|_| o)),
        ),
        (
            "managedFields",
            allocs(
                || defaulted.clone(),
                |mut o| {
                    stages::managed_fields(&scope, &mut o);
                    o
                },
            ),
        ),
        (
            "admission + prepare + validate",
            allocs(
                || managed.clone(),
                |mut o| block_on(stages::admit_and_prepare(&scope, &mut o)).map(|_| o),
            ),
        ),
        (
            "prepare + validate",
            allocs(|| managed.clone(), |mut o| stages::prepare(&scope, &mut o).map(|_| o)),
        ),
        (
            "canonical field order",
            allocs(
                || admitted.clone(),
                |mut o| {
                    stages::canonicalize(&scope, &mut o);
                    o
                },
            ),
        ),
        ("encode: stored JSON", allocs(|| (), |_| block_on(stages::to_stored(&scope, &canonical)))),
        (
            "encode: stored protobuf",
            allocs(|| (), |_| stored::encode_object(&rt, &canonical, StorageMediaType::Protobuf)),
        ),
        ("encode: 201 answer (JSON)", allocs(|| (), |_| stages::respond(&scope, &answered))),
        ("store commit (process-wide)", allocs_process(|| stored_json.clone(), commit)),
        ("watch-cache apply, JSON stored", allocs(|| (), |_| decode(&kv_json))),
        ("watch-cache apply, protobuf stored", allocs(|| (), |_| decode(&kv_pb))),
        ("encode: stored JSON noting the slot", allocs(|| (), |_| noting())),
        ("hand-off: selector values (writer)", allocs(|| (), |_| selectors())),
        ("watch-cache apply, hand-off (splice)", allocs(selectors, splice)),
        ("encode: stored protobuf noting + JSON", allocs(|| (), |_| noting_pb())),
        ("of which: normal-form walk", allocs(|| (), |_| walk())),
        ("watch-cache apply, protobuf hand-off", allocs(selectors, splice_pb)),
        ("encode: 201 answer spliced", allocs(|| (), |_| answer())),
        ("whole create, REST handler", allocs(handler_body, handle)),
    ];
    report(&rows);

    let mut g = c.benchmark_group("create-path");
    g.bench_function("decode/parse", |b| {
        b.iter(|| format::decode_noting_duplicates(black_box(&body), Format::Json))
    });
    g.bench_function("decode/prune-unknown", |b| {
        b.iter_batched(
            || decoded.clone(),
            |mut o| kapi_codec::schema::prune_unknown(&rt.schema_name, &mut o).map(|_| o),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("decode", |b| b.iter(|| stages::decode(&scope, black_box(&body))));
    g.bench_function("defaults", |b| {
        b.iter_batched(
            || decoded.clone(),
            |mut o| stages::default(&scope, &mut o).map(|_| o),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("managed-fields", |b| {
        b.iter_batched(
            || defaulted.clone(),
            |mut o| {
                stages::managed_fields(&scope, &mut o);
                o
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("admission+prepare+validate", |b| {
        b.iter_batched(
            || managed.clone(),
            |mut o| block_on(stages::admit_and_prepare(&scope, &mut o)).map(|_| o),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("prepare+validate", |b| {
        b.iter_batched(
            || managed.clone(),
            |mut o| stages::prepare(&scope, &mut o).map(|_| o),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("canonicalize", |b| {
        b.iter_batched(
            || admitted.clone(),
            |mut o| {
                stages::canonicalize(&scope, &mut o);
                o
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("encode/stored-json", |b| {
        b.iter(|| block_on(stages::to_stored(&scope, black_box(&canonical))))
    });
    g.bench_function("encode/stored-protobuf", |b| {
        b.iter(|| stored::encode_object(&rt, black_box(&canonical), StorageMediaType::Protobuf))
    });
    g.bench_function("encode/answer-json", |b| {
        b.iter(|| stages::respond(&scope, black_box(&answered)))
    });
    g.bench_function("store-commit", |b| {
        b.iter_batched(|| stored_json.clone(), commit, BatchSize::SmallInput)
    });
    g.bench_function("cache-apply/json", |b| b.iter(|| decode(black_box(&kv_json))));
    g.bench_function("cache-apply/protobuf", |b| b.iter(|| decode(black_box(&kv_pb))));
    g.bench_function("encode/stored-json-noting", |b| b.iter(noting));
    g.bench_function("hand-off/selectors", |b| b.iter(selectors));
    g.bench_function("cache-apply/hand-off", |b| {
        b.iter_batched(selectors, splice, BatchSize::SmallInput)
    });
    g.bench_function("encode/stored-protobuf-noting", |b| b.iter(noting_pb));
    g.bench_function("hand-off/normal-form-walk", |b| b.iter(walk));
    g.bench_function("cache-apply/hand-off-protobuf", |b| {
        b.iter_batched(selectors, splice_pb, BatchSize::SmallInput)
    });
    g.bench_function("encode/answer-spliced", |b| b.iter(answer));
    g.bench_function("handler/whole-create", |b| {
        b.iter_batched(handler_body, handle, BatchSize::SmallInput)
    });
    g.finish();
}

criterion_group!(benches, create_path);
criterion_main!(benches);
