//! A log-linear latency histogram in nanoseconds, in the manner of HdrHistogram: values
//! below 256 have a bucket each, and every power of two above is split into 128 buckets,
//! so a recorded value is known to within 1/128 (< 0.8%) over the whole `u64` range.
//! Buckets are allocated as high values arrive, so a histogram of sub-second latencies
//! stays around 25 KB. Exact count, sum, min and max are kept beside the buckets.

/// Sub-buckets per power of two are `1 << (SUB_BITS - 1)`.
const SUB_BITS: u32 = 8;
const HALF: u64 = 1 << (SUB_BITS - 1);
const LINEAR: u64 = 1 << SUB_BITS;

/// Latency histogram (values in nanoseconds).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

/// One bucket of the coarse, plottable view: values `<= le_ns` (`None`: above the last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub le_ns: Option<u64>,
    pub count: u64,
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb + 1 - SUB_BITS;
    (u64::from(shift) * HALF + (v >> shift)) as usize
}

fn lowest(idx: usize) -> u64 {
    let idx = idx as u64;
    if idx < LINEAR {
        return idx;
    }
    let shift = idx / HALF - 1;
    (idx % HALF + HALF) << shift
}

fn highest(idx: usize) -> u64 {
    if idx >= index(u64::MAX) {
        return u64::MAX;
    }
    lowest(idx + 1) - 1
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram::default()
    }

    /// Record one value.
    pub fn record(&mut self, v: u64) {
        let i = index(v);
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
        self.min = if self.count == 0 { v } else { self.min.min(v) };
        self.max = self.max.max(v);
        self.count += 1;
        self.sum += u128::from(v);
    }

    /// Add every value of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.min = if self.count == 0 { other.min } else { self.min.min(other.min) };
        self.max = self.max.max(other.max);
        self.count += other.count;
        self.sum += other.sum;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn min(&self) -> u64 {
        self.min
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum as f64 / self.count as f64 }
    }

    /// The value at percentile `q` (0-100): the highest value of the bucket holding the
    /// sample of rank ceil(q% of count), capped by the true maximum. 0 when empty.
    pub fn percentile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 100.0) / 100.0) * self.count as f64).ceil() as u64;
        if rank <= 1 {
            return self.min;
        }
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return highest(i).min(self.max).max(self.min);
            }
        }
        self.max
    }

    /// Counts in a 1-2-5 series of upper bounds from 1 µs to 100 s, and one open bucket.
    pub fn buckets(&self) -> Vec<Bucket> {
        let bounds = bounds_1_2_5();
        let mut out: Vec<Bucket> =
            bounds.iter().map(|b| Bucket { le_ns: Some(*b), count: 0 }).collect();
        out.push(Bucket { le_ns: None, count: 0 });
        for (i, c) in self.counts.iter().enumerate().filter(|(_, c)| **c > 0) {
            let v = lowest(i);
            let slot = bounds.iter().position(|b| v <= *b).unwrap_or(bounds.len());
            out[slot].count += c;
        }
        out
    }
}

/// 1 µs, 2 µs, 5 µs, 10 µs ... 100 s in nanoseconds.
fn bounds_1_2_5() -> Vec<u64> {
    let mut out = Vec::new();
    let mut decade = 1_000u64;
    while decade <= 100_000_000_000 {
        out.extend([decade, decade * 2, decade * 5]);
        decade *= 10;
    }
    out.truncate(out.len() - 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_and_bounds_are_contiguous() {
        for v in [0, 1, 255, 256, 257, 511, 512, 1000, 1 << 20, 123_456_789, u64::MAX] {
            let i = index(v);
            assert!(lowest(i) <= v && v <= highest(i), "{v} in bucket {i}");
            assert!(highest(i) - lowest(i) <= v / 128, "bucket of {v} too wide");
        }
        for i in 0..5000 {
            assert_eq!(highest(i) + 1, lowest(i + 1));
        }
    }

    #[test]
    fn percentiles_of_known_data() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v * 1000); // 1 µs .. 100 ms
        }
        let near = |got: u64, want: u64| {
            let err = (got as f64 - want as f64).abs() / want as f64;
            assert!(err < 0.008, "got {got}, want {want}");
        };
        near(h.percentile(50.0), 50_000_000);
        near(h.percentile(90.0), 90_000_000);
        near(h.percentile(99.0), 99_000_000);
        near(h.percentile(99.9), 99_900_000);
        assert_eq!(h.percentile(100.0), 100_000_000);
        assert_eq!(h.percentile(0.0), 1000);
        assert_eq!((h.min(), h.max(), h.count()), (1000, 100_000_000, 100_000));
        assert!((h.mean() - 50_000_500.0).abs() < 1.0);
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in [5, 1, 3, 2, 4] {
            h.record(v);
        }
        assert_eq!([20.0, 40.0, 60.0, 80.0, 100.0].map(|q| h.percentile(q)), [1, 2, 3, 4, 5]);
        assert_eq!(Histogram::new().percentile(99.0), 0);
    }

    #[test]
    fn merge_equals_recording_everything() {
        let (mut a, mut b, mut all) = (Histogram::new(), Histogram::new(), Histogram::new());
        for v in 0..1000u64 {
            let v = v * v * 37;
            if v % 3 == 0 {
                a.record(v)
            } else {
                b.record(v)
            }
            all.record(v);
        }
        a.merge(&b);
        assert_eq!(a.percentile(99.0), all.percentile(99.0));
        assert_eq!((a.count(), a.min(), a.max()), (all.count(), all.min(), all.max()));
    }

    #[test]
    fn coarse_buckets() {
        let mut h = Histogram::new();
        h.record(500); // <= 1 µs
        h.record(1_500); // <= 2 µs
        h.record(3_000_000); // <= 5 ms
        h.record(4_000_000); // <= 5 ms
        h.record(300_000_000_000); // above 100 s
        let b = h.buckets();
        assert_eq!(b.first().unwrap().le_ns, Some(1_000));
        assert_eq!(b[b.len() - 2].le_ns, Some(100_000_000_000));
        let count = |le: Option<u64>| b.iter().find(|x| x.le_ns == le).unwrap().count;
        assert_eq!(count(Some(1_000)), 1);
        assert_eq!(count(Some(2_000)), 1);
        assert_eq!(count(Some(5_000_000)), 2);
        assert_eq!(count(None), 1);
        assert_eq!(b.iter().map(|x| x.count).sum::<u64>(), 5);
    }
}
