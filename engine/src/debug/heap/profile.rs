//! The heap profile as Go writes it: a pprof `Profile` with sample types alloc_objects,
//! alloc_space, inuse_objects and inuse_space, values unsampled by Go's formula, period
//! type space/bytes with the sampling rate as period, and each sample labelled with its
//! block size (`bytes`); or, with `debug=1`, Go's legacy text layout of raw samples.
//!
//! Invariants: symbols are resolved here, on the serving thread, never in the
//! allocator; the sampler's own frames (the allocator, the unwinder) are cut from the top
//! of every stack, so stacks start at the code that allocated.

use super::sampler::unsample;
use super::table::BucketStats;
use pprof::protos::{Function, Label, Line, Location, Profile, Sample, ValueType};
use std::collections::HashMap;
use std::fmt::Write as _;

/// One source position of an address (an address has several when calls were inlined,
/// innermost first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub function: String,
    pub file: String,
    pub line: i64,
}

/// Name prefixes of the frames the sampler itself adds on top of a stack: the global
/// allocator's entry points, the sampler, the unwinder.
const INTERNAL: &[&str] = &[
    "kapi::debug::heap::alloc::",
    "<kapi::debug::heap::alloc::",
    "kapi::debug::heap::sampler::",
    "kapi::debug::heap::table::",
    "backtrace::",
    "__rust_alloc",
    "__rust_realloc",
    "__rustc::__rust_",
    "__rustc::__rdl_",
    "__rdl_",
    "__rg_",
];

/// How deep in a stack the sampler's own frames can be found.
const INTERNAL_DEPTH: usize = 32;

fn is_internal(frames: &[Frame]) -> bool {
    frames.iter().any(|f| INTERNAL.iter().any(|p| f.function.starts_with(p)))
}

/// The symbols of `addr` from the binary's debug information.
pub fn resolve(addr: usize) -> Vec<Frame> {
    let mut out = Vec::new();
    backtrace::resolve(addr as *mut std::ffi::c_void, |sym| {
        out.push(Frame {
            function: sym.name().map(|n| format!("{n:#}")).unwrap_or_else(|| format!("{addr:#x}")),
            file: sym.filename().map(|p| p.display().to_string()).unwrap_or_default(),
            line: sym.lineno().map(i64::from).unwrap_or(0),
        });
    });
    if out.is_empty() {
        out.push(Frame { function: format!("{addr:#x}"), file: String::new(), line: 0 });
    }
    out
}

/// Interned strings, functions and locations of a profile under construction.
struct Builder<'a> {
    strings: Vec<String>,
    string_ids: HashMap<String, i64>,
    functions: Vec<Function>,
    function_ids: HashMap<(String, String), u64>,
    locations: Vec<Location>,
    /// Address -> (location id, whether it is one of the sampler's own frames).
    location_ids: HashMap<usize, (u64, bool)>,
    symbolize: &'a mut dyn FnMut(usize) -> Vec<Frame>,
}

impl<'a> Builder<'a> {
    fn new(symbolize: &'a mut dyn FnMut(usize) -> Vec<Frame>) -> Self {
        let mut b = Self {
            strings: Vec::new(),
            string_ids: HashMap::new(),
            functions: Vec::new(),
            function_ids: HashMap::new(),
            locations: Vec::new(),
            location_ids: HashMap::new(),
            symbolize,
        };
        b.string(""); // index 0 must be the empty string
        b
    }

    fn string(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.string_ids.get(s) {
            return i;
        }
        let i = self.strings.len() as i64;
        self.strings.push(s.to_string());
        self.string_ids.insert(s.to_string(), i);
        i
    }

    fn value_type(&mut self, ty: &str, unit: &str) -> ValueType {
        ValueType { ty: self.string(ty), unit: self.string(unit) }
    }

    fn function(&mut self, f: &Frame) -> u64 {
        let key = (f.function.clone(), f.file.clone());
        if let Some(&id) = self.function_ids.get(&key) {
            return id;
        }
        let id = self.functions.len() as u64 + 1;
        let (name, filename) = (self.string(&f.function), self.string(&f.file));
        self.functions.push(Function { id, name, system_name: name, filename, start_line: 0 });
        self.function_ids.insert(key, id);
        id
    }

    fn location_of(&mut self, addr: usize, frames: &[Frame]) -> u64 {
        let id = self.locations.len() as u64 + 1;
        let line =
            frames.iter().map(|f| Line { function_id: self.function(f), line: f.line }).collect();
        self.locations.push(Location {
            id,
            mapping_id: 0,
            address: addr as u64,
            line,
            is_folded: false,
        });
        id
    }

    /// The location of `addr`, symbolized on first sight.
    fn location(&mut self, addr: usize) -> (u64, bool) {
        if let Some(&known) = self.location_ids.get(&addr) {
            return known;
        }
        let frames = (self.symbolize)(addr);
        let known = (self.location_of(addr, &frames), is_internal(&frames));
        self.location_ids.insert(addr, known);
        known
    }

    /// A stack's location ids, innermost first, cut below the deepest of the sampler's own
    /// frames on top (helpers inlined between them, like `LocalKey::with`, go too).
    fn stack(&mut self, frames: &[usize]) -> Vec<u64> {
        if frames.is_empty() {
            let overflow = Frame {
                function: "kapi heap profiler: stack table full".into(),
                file: String::new(),
                line: 0,
            };
            return vec![self.location_of(0, &[overflow])];
        }
        let located: Vec<(u64, bool)> = frames.iter().map(|&a| self.location(a)).collect();
        let top = &located[..located.len().min(INTERNAL_DEPTH)];
        let skip = top.iter().rposition(|(_, internal)| *internal).map_or(0, |i| i + 1);
        let skip = if skip == located.len() { 0 } else { skip };
        located[skip..].iter().map(|(id, _)| *id).collect()
    }
}

/// Average block size of a bucket (Go's `bytes` label).
fn block_size(b: &BucketStats) -> u64 {
    b.alloc_bytes / b.alloc_objects.max(1)
}

/// The pprof profile of `buckets` sampled at `rate`, naming addresses by `symbolize`.
/// `default_type` is the sample type pprof shows first: "" (its default, inuse_space)
/// for Go's heap profile, "alloc_space" for Go's allocs profile.
pub fn build(
    buckets: &[BucketStats],
    rate: u64,
    time_nanos: i64,
    default_type: &str,
    symbolize: &mut dyn FnMut(usize) -> Vec<Frame>,
) -> Profile {
    let mut b = Builder::new(symbolize);
    let sample_type = vec![
        b.value_type("alloc_objects", "count"),
        b.value_type("alloc_space", "bytes"),
        b.value_type("inuse_objects", "count"),
        b.value_type("inuse_space", "bytes"),
    ];
    let period_type = Some(b.value_type("space", "bytes"));
    let bytes_key = b.string("bytes");
    let default_sample_type = if default_type.is_empty() { 0 } else { b.string(default_type) };
    let mut samples = Vec::with_capacity(buckets.len());
    for bucket in buckets {
        let (ao, ab) = unsample(bucket.alloc_objects, bucket.alloc_bytes, rate);
        let (io, ib) = unsample(bucket.inuse_objects, bucket.inuse_bytes, rate);
        let label = Label { key: bytes_key, str: 0, num: block_size(bucket) as i64, num_unit: 0 };
        samples.push(Sample {
            location_id: b.stack(&bucket.frames),
            value: vec![ao, ab, io, ib],
            label: vec![label],
        });
    }
    Profile {
        sample_type,
        sample: samples,
        mapping: Vec::new(),
        location: b.locations,
        function: b.functions,
        string_table: b.strings,
        drop_frames: 0,
        keep_frames: 0,
        time_nanos,
        duration_nanos: 0,
        period_type,
        period: rate as i64,
        comment: Vec::new(),
        default_sample_type,
    }
}

/// Go's legacy text heap profile (`debug=1`): raw sample counts, the header's
/// `heap/N` carrying twice the rate as Go writes it, then each stack symbolized.
pub fn text(
    buckets: &[BucketStats],
    rate: u64,
    symbolize: &mut dyn FnMut(usize) -> Vec<Frame>,
) -> String {
    let sum = |f: fn(&BucketStats) -> u64| buckets.iter().map(f).sum::<u64>();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "heap profile: {}: {} [{}: {}] @ heap/{}",
        sum(|b| b.inuse_objects),
        sum(|b| b.inuse_bytes),
        sum(|b| b.alloc_objects),
        sum(|b| b.alloc_bytes),
        2 * rate
    );
    for b in buckets {
        let addrs: Vec<String> = b.frames.iter().map(|a| format!("{a:#x}")).collect();
        let _ = writeln!(
            out,
            "{}: {} [{}: {}] @ {}",
            b.inuse_objects,
            b.inuse_bytes,
            b.alloc_objects,
            b.alloc_bytes,
            addrs.join(" ")
        );
        for &a in &b.frames {
            for f in symbolize(a) {
                let _ = writeln!(out, "#\t{a:#x}\t{}\t{}:{}", f.function, f.file, f.line);
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pprof::protos::Message as _;

    fn fake(addr: usize) -> Vec<Frame> {
        let name = match addr {
            1 => {
                "<kapi::debug::heap::alloc::SamplingAlloc as core::alloc::global::GlobalAlloc>::alloc"
            }
            2 => "__rustc::__rust_alloc",
            3 => "std::thread::local::LocalKey<T>::try_with",
            10 => "kapi::handler::handle",
            11 => "kapi::server::conn::serve",
            _ => "main",
        };
        vec![Frame { function: name.into(), file: "src/x.rs".into(), line: addr as i64 }]
    }

    fn bucket(frames: Vec<usize>, size: u64, allocs: u64, inuse: u64) -> BucketStats {
        BucketStats {
            frames,
            size,
            alloc_objects: allocs,
            alloc_bytes: allocs * size,
            inuse_objects: inuse,
            inuse_bytes: inuse * size,
        }
    }

    fn decoded(buckets: &[BucketStats], rate: u64) -> Profile {
        let raw = build(buckets, rate, 7, "", &mut fake).encode_to_vec();
        Profile::decode(raw.as_slice()).expect("decodes")
    }

    fn name_of(p: &Profile, location_id: u64) -> &str {
        let loc = &p.location[location_id as usize - 1];
        let f = &p.function[loc.line[0].function_id as usize - 1];
        &p.string_table[f.name as usize]
    }

    #[test]
    fn sample_types_and_period_are_gos() {
        let p = decoded(&[bucket(vec![1, 2, 10, 11], 1024, 3, 1)], 524288);
        let s = |i: i64| p.string_table[i as usize].as_str();
        let types: Vec<(&str, &str)> = p.sample_type.iter().map(|t| (s(t.ty), s(t.unit))).collect();
        assert_eq!(
            types,
            [
                ("alloc_objects", "count"),
                ("alloc_space", "bytes"),
                ("inuse_objects", "count"),
                ("inuse_space", "bytes")
            ]
        );
        let period = p.period_type.as_ref().expect("period type");
        assert_eq!((s(period.ty), s(period.unit), p.period), ("space", "bytes", 524288));
        assert_eq!(p.string_table[0], "");
        assert_eq!(p.time_nanos, 7);
        assert_eq!(p.default_sample_type, 0);
        let allocs = build(&[], 512, 0, "alloc_space", &mut fake);
        assert_eq!(allocs.string_table[allocs.default_sample_type as usize], "alloc_space");
    }

    #[test]
    fn values_are_unsampled_and_stacks_start_at_the_caller() {
        let rate = 4096;
        let p = decoded(
            &[bucket(vec![1, 2, 10, 11], 1024, 4, 2), bucket(vec![10, 11], 8192, 1, 0)],
            rate,
        );
        assert_eq!(p.sample.len(), 2);
        let first = &p.sample[0];
        let scale = 1.0 / (1.0 - (-1024.0f64 / rate as f64).exp());
        let expect = [4.0 * scale, 4096.0 * scale, 2.0 * scale, 2048.0 * scale];
        for (got, want) in first.value.iter().zip(expect) {
            assert_eq!(*got, want as i64);
        }
        let names: Vec<&str> = first.location_id.iter().map(|&l| name_of(&p, l)).collect();
        assert_eq!(names, ["kapi::handler::handle", "kapi::server::conn::serve"]);
        let label = &first.label[0];
        assert_eq!((p.string_table[label.key as usize].as_str(), label.num), ("bytes", 1024));
        assert_eq!(&p.sample[1].value[2..], &[0, 0]);
        // Locations are shared between stacks.
        assert_eq!(p.sample[1].location_id, first.location_id);
    }

    #[test]
    fn the_overflow_bucket_gets_a_named_frame() {
        let p = decoded(
            &[
                bucket(vec![], 0, 0, 0),
                BucketStats { alloc_objects: 2, alloc_bytes: 64, ..bucket(vec![], 0, 0, 0) },
            ],
            512,
        );
        assert!(name_of(&p, p.sample[1].location_id[0]).contains("stack table full"));
    }

    #[test]
    fn legacy_text_lists_raw_samples() {
        let t = text(&[bucket(vec![10, 11], 100, 3, 1)], 524288, &mut fake);
        assert!(t.starts_with("heap profile: 1: 100 [3: 300] @ heap/1048576\n"), "{t}");
        assert!(t.contains("1: 100 [3: 300] @ 0xa 0xb\n"));
        assert!(t.contains("#\t0xa\tkapi::handler::handle\tsrc/x.rs:10\n"));
    }
}
