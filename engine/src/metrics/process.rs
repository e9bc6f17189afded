//! `process_*` metrics from /proc/self, as Go's process collector reports them.

/// (name, type, help, value).
pub type Sample = (&'static str, &'static str, &'static str, f64);

pub fn samples() -> Vec<Sample> {
    let mut out = Vec::new();
    let ticks = 100.0; // USER_HZ on Linux.
    let page = 4096.0;
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the `(comm)` field; utime is field 14, stime 15, starttime 22,
        // vsize 23, rss 24 (1-based over the whole line).
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        out.push((
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            (num(11) + num(12)) / ticks,
        ));
        out.push((
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            num(20),
        ));
        out.push((
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            num(21) * page,
        ));
        if let Some(boot) = boot_time() {
            out.push((
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since unix epoch in seconds.",
                boot + num(19) / ticks,
            ));
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        out.push((
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            fds.count() as f64,
        ));
    }
    if let Some(max) = max_fds() {
        out.push(("process_max_fds", "gauge", "Maximum number of open file descriptors.", max));
    }
    out
}

fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

fn max_fds() -> Option<f64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let s = super::samples();
        let get = |n: &str| s.iter().find(|x| x.0 == n).map(|x| x.3);
        assert!(get("process_resident_memory_bytes").is_some_and(|v| v > 1e6));
        assert!(get("process_open_fds").is_some_and(|v| v >= 3.0));
        assert!(get("process_start_time_seconds").is_some_and(|v| v > 1.6e9));
    }
}
