//! Samples a server process from /proc while a run goes on: CPU as cores used (the
//! change of utime + stime of /proc/PID/stat over the wall time between two samples) and
//! resident memory (VmRSS of /proc/PID/status), every ~250 ms by default. The series and
//! its peak and mean end up in the results (`server_process`).
//!
//! Only a process on the same machine can be sampled; a PID that vanishes ends the
//! series (the samples so far are kept).

use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Default time between two samples.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(250);

/// One sample, `t_s` seconds after the sampler started.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Sample {
    pub t_s: f64,
    /// Cores used since the previous sample (0 for the first).
    pub cpu_cores: f64,
    pub rss_bytes: u64,
}

/// The sampled series and its summary.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProcessReport {
    pub pid: u32,
    pub interval_ms: f64,
    pub samples: Vec<Sample>,
    pub cpu_cores_peak: f64,
    pub cpu_cores_mean: f64,
    pub rss_bytes_peak: u64,
    pub rss_bytes_mean: u64,
    /// CPU seconds (user + system) the process used while sampled.
    pub cpu_seconds: f64,
}

/// Clock ticks per second of /proc/PID/stat times.
pub fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// utime + stime (clock ticks) from the text of /proc/PID/stat.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: skip to the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After the name: state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `kB` field (VmRSS, VmHWM) of /proc/PID/status, in bytes.
pub fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    let line =
        status.lines().find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    let kb: u64 = line[field.len() + 1..].split_whitespace().next()?.parse().ok()?;
    Some(kb * 1024)
}

/// Current CPU ticks and RSS of `pid`, or `None` when it cannot be read.
pub fn read_process(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some((parse_stat_ticks(&stat)?, parse_status_kb(&status, "VmRSS")?))
}

/// Resident memory of `pid` in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    read_process(pid).map(|(_, rss)| rss)
}

/// Peak resident memory of `pid` over its life (VmHWM) in bytes.
pub fn hwm_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kb(&status, "VmHWM")
}

/// Turns successive raw readings into samples.
#[derive(Debug, Clone)]
pub struct Series {
    ticks_per_s: f64,
    first: Option<(f64, u64)>,
    last: Option<(f64, u64)>,
    samples: Vec<Sample>,
}

impl Series {
    pub fn new(ticks_per_s: f64) -> Series {
        Series { ticks_per_s, first: None, last: None, samples: Vec::new() }
    }

    /// Add a reading of `ticks` and `rss` taken `t_s` seconds in.
    pub fn push(&mut self, t_s: f64, ticks: u64, rss: u64) {
        let cpu_cores = match self.last {
            Some((t, prev)) if t_s > t => {
                ticks.saturating_sub(prev) as f64 / self.ticks_per_s / (t_s - t)
            }
            _ => 0.0,
        };
        self.first.get_or_insert((t_s, ticks));
        self.last = Some((t_s, ticks));
        self.samples.push(Sample { t_s, cpu_cores, rss_bytes: rss });
    }

    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Highest RSS seen so far.
    pub fn peak_rss(&self) -> u64 {
        self.samples.iter().map(|s| s.rss_bytes).max().unwrap_or(0)
    }

    /// The report of the series.
    pub fn report(&self, pid: u32, interval: Duration) -> ProcessReport {
        let s = &self.samples;
        let n = s.len().max(1) as f64;
        // The first sample has no CPU figure: the mean is over the intervals.
        let cpu: Vec<f64> = s.iter().skip(1).map(|x| x.cpu_cores).collect();
        let cpu_mean =
            if cpu.is_empty() { 0.0 } else { cpu.iter().sum::<f64>() / cpu.len() as f64 };
        let cpu_seconds = match (self.first, self.last) {
            (Some((_, a)), Some((_, b))) => b.saturating_sub(a) as f64 / self.ticks_per_s,
            _ => 0.0,
        };
        ProcessReport {
            pid,
            interval_ms: interval.as_secs_f64() * 1000.0,
            samples: s.clone(),
            cpu_cores_peak: cpu.iter().copied().fold(0.0, f64::max),
            cpu_cores_mean: cpu_mean,
            rss_bytes_peak: self.peak_rss(),
            rss_bytes_mean: (s.iter().map(|x| x.rss_bytes as f64).sum::<f64>() / n) as u64,
            cpu_seconds,
        }
    }
}

/// A background task sampling one process.
pub struct Sampler {
    pid: u32,
    interval: Duration,
    t0: Instant,
    series: Arc<Mutex<Series>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    /// Start sampling `pid` every `interval`; fails when the process cannot be read.
    pub fn start(pid: u32, interval: Duration) -> Result<Sampler, String> {
        read_process(pid).ok_or_else(|| format!("cannot read /proc/{pid}/stat and status"))?;
        let series = Arc::new(Mutex::new(Series::new(clock_ticks())));
        let (shared, t0) = (series.clone(), Instant::now());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some((ticks, rss)) = read_process(pid) else { break };
                let t = t0.elapsed().as_secs_f64();
                shared.lock().unwrap_or_else(|e| e.into_inner()).push(t, ticks, rss);
            }
        });
        Ok(Sampler { pid, interval, t0, series, task })
    }

    /// Highest RSS sampled so far.
    pub fn peak_rss(&self) -> u64 {
        self.series.lock().unwrap_or_else(|e| e.into_inner()).peak_rss()
    }

    /// Take one last sample, stop and report.
    pub fn stop(self) -> ProcessReport {
        self.task.abort();
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some((ticks, rss)) = read_process(self.pid) {
            series.push(self.t0.elapsed().as_secs_f64(), ticks, rss);
        }
        series.report(self.pid, self.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_ticks_skip_odd_command_names() {
        let stat = "1234 (my (odd) srv) S 1 1234 1234 0 -1 4194560 500 0 0 0 \
                    250 50 0 0 20 0 8 0 100 1000000 2000 18446744073709551615";
        assert_eq!(parse_stat_ticks(stat), Some(300));
        assert_eq!(parse_stat_ticks("garbage"), None);
        assert_eq!(parse_stat_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn status_fields_in_bytes() {
        let status = "Name:\tkapi\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t3\n";
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(100 * 1024 * 1024));
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(200 * 1024 * 1024));
        assert_eq!(parse_status_kb(status, "VmSwap"), None);
        assert_eq!(parse_status_kb("VmRSSx: 5 kB", "VmRSS"), None);
    }

    #[test]
    fn series_turns_ticks_into_cores() {
        let mut s = Series::new(100.0);
        s.push(0.0, 1000, 10);
        s.push(0.5, 1050, 30); // 50 ticks = 0.5 s of CPU in 0.5 s: one core
        s.push(1.0, 1150, 20); // 100 ticks in 0.5 s: two cores
        let r = s.report(7, Duration::from_millis(500));
        let cores: Vec<f64> = r.samples.iter().map(|x| x.cpu_cores).collect();
        assert_eq!(cores, [0.0, 1.0, 2.0]);
        assert_eq!((r.cpu_cores_peak, r.cpu_cores_mean), (2.0, 1.5));
        assert_eq!((r.rss_bytes_peak, r.rss_bytes_mean), (30, 20));
        assert!((r.cpu_seconds - 1.5).abs() < 1e-9);
        assert_eq!((r.pid, r.interval_ms), (7, 500.0));
    }

    #[test]
    fn empty_series_reports_zeroes() {
        let r = Series::new(100.0).report(1, DEFAULT_INTERVAL);
        assert!(r.samples.is_empty());
        assert_eq!((r.cpu_cores_peak, r.rss_bytes_peak, r.cpu_seconds), (0.0, 0, 0.0));
    }

    #[tokio::test]
    async fn samples_this_process() {
        let pid = std::process::id();
        assert!(rss_bytes(pid).is_some_and(|r| r > 0));
        assert!(hwm_bytes(pid).is_some_and(|r| r > 0));
        let sampler = Sampler::start(pid, Duration::from_millis(10)).expect("start");
        tokio::time::sleep(Duration::from_millis(60)).await;
        let r = sampler.stop();
        assert!(r.samples.len() >= 2, "{r:?}");
        assert!(r.rss_bytes_peak > 0);
        assert!(Sampler::start(u32::MAX - 1, DEFAULT_INTERVAL).is_err());
    }
}
