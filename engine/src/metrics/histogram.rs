//! A fixed-bucket histogram (Prometheus semantics: cumulative `le` buckets, `+Inf`, sum,
//! count).

#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub bounds: &'static [f64],
    /// Observations per bucket (not cumulative); the last slot is `+Inf`.
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram { bounds, counts: vec![0; bounds.len() + 1], sum: 0.0, count: 0 }
    }

    pub fn observe(&mut self, v: f64) {
        let i = self.bounds.partition_point(|b| *b < v);
        self.counts[i] += 1;
        self.sum += v;
        self.count += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum += other.sum;
        self.count += other.count;
    }

    /// (upper bound, cumulative count) per bucket, `+Inf` last.
    pub fn cumulative(&self) -> Vec<(String, u64)> {
        let mut acc = 0;
        let mut out = Vec::with_capacity(self.counts.len());
        for (i, c) in self.counts.iter().enumerate() {
            acc += c;
            let le = self.bounds.get(i).map_or_else(|| "+Inf".to_string(), |b| format_bound(*b));
            out.push((le, acc));
        }
        out
    }
}

/// Bounds as Go's Prometheus client prints them (`0.005`, `1`, `1e+06`).
pub(crate) fn format_bound(b: f64) -> String {
    if b >= 1e6 {
        let exp = b.log10().round() as i32;
        if (10f64.powi(exp) - b).abs() < 1e-6 * b {
            return format!("1e+{exp:02}");
        }
    }
    format!("{b}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_with_inf() {
        let mut h = Histogram::new(&[0.1, 1.0, 1e6]);
        for v in [0.05, 0.1, 0.5, 2.0, 5e6] {
            h.observe(v);
        }
        let c = h.cumulative();
        assert_eq!(
            c,
            [("0.1".into(), 2), ("1".into(), 3), ("1e+06".into(), 4), ("+Inf".into(), 5)]
        );
        assert_eq!(h.count, 5);
        let mut other = Histogram::new(&[0.1, 1.0, 1e6]);
        other.observe(0.01);
        h.merge(&other);
        assert_eq!(h.cumulative()[0].1, 3);
    }
}
