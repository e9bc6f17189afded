//! Command-line options: the flags every workload shares, each workload's own, and the
//! duration syntax (`10s`, `500ms`, `2m`, or plain seconds).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// Default pod template: the shared 4.5 KB benchmark pod.
pub const DEFAULT_POD_TEMPLATE: &str = "../shared/workloads/bench-pod.json";

/// kapi-perf: measure any Kubernetes API server given a kubeconfig.
#[derive(Debug, Parser)]
#[command(name = "kapi-perf", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// A workload, or a comparison of two servers on one.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Run(Workload),
    /// Run a workload against two servers A and B in alternating rounds; B/A ratios.
    Compare(CompareArgs),
}

/// The workloads.
#[derive(Debug, Clone, Subcommand)]
pub enum Workload {
    /// Create pods with unique names (32 clients by default).
    Create(PodArgs),
    /// GET one pod by name (64 clients by default).
    Get(PodArgs),
    /// LIST N pods (1 client by default); creates the missing ones first.
    List(ListArgs),
    /// W watchers on a namespace's pods while U pod updates per second are made.
    WatchFanout(WatchArgs),
    /// Time from launching a server to its first 200 on /readyz, and its idle RSS.
    ///
    /// Each round spawns `--server-cmd` (run as `sh -c "exec CMD"`, so the PID is the
    /// server's), then polls GET /readyz every --poll-interval with the kubeconfig's
    /// credentials (the kubeconfig is re-read until it exists and works: a server may
    /// write it at start). Time to ready runs from the spawn to the first 200, so it
    /// includes exec, loading the data and opening the listener. After --idle-wait the
    /// server's VmRSS is its idle RSS. Then SIGTERM, and the exit is waited for (SIGKILL
    /// after 30 s). The tool never populates the server: to measure a start with N
    /// objects, run a workload with --keep against the same data directory first.
    Startup(StartupArgs),
    /// RSS of the server (--server-pid, required) holding N pods, and its peak while C
    /// concurrent LISTs of them run for --duration.
    ///
    /// Reported: RSS before loading, after loading (settled for 1 s), the peak sampled
    /// every 50 ms during the LISTs, after them, and the lifetime peak (VmHWM); the size of
    /// one LIST of the pods in protobuf and JSON, for RSS-to-data ratios.
    Memory(MemoryArgs),
    /// N fake nodes as kwok runs them: Lease renewals, one pod watch per node by
    /// spec.nodeName, pod churn (create, bind, status Running, delete), over HTTP/2.
    ClusterSim(ClusterSimArgs),
    /// Replays clusterloader2's load profile: Services, ConfigMaps, Secrets, Deployments
    /// and their Pods (made by the tool, as no controllers run), created, scaled, deleted
    /// at the profile's rates. Shrink it with --nodes, --pods-per-node, sizes and rates.
    Mixed(MixedArgs),
    /// Overload with mixed priority levels (API Priority and Fairness): "elephants" LIST
    /// N pods in a closed loop as one user, while "mice" GET a ConfigMap as another user
    /// of the same level (global-default) and fake kubelets renew their Leases as nodes
    /// (the system level), both at fixed rates. Per stream: throughput, p99, 429s.
    /// Impersonates its users (the kubeconfig's user needs the impersonate verb).
    Overload(OverloadArgs),
}

impl Workload {
    pub fn name(&self) -> &'static str {
        match self {
            Workload::Create(_) => "create",
            Workload::Get(_) => "get",
            Workload::List(_) => "list",
            Workload::WatchFanout(_) => "watch-fanout",
            Workload::Startup(_) => "startup",
            Workload::Memory(_) => "memory",
            Workload::ClusterSim(_) => "cluster-sim",
            Workload::Mixed(_) => "mixed",
            Workload::Overload(_) => "overload",
        }
    }

    pub fn common(&self) -> &Common {
        match self {
            Workload::Create(a) | Workload::Get(a) => &a.common,
            Workload::List(a) => &a.pod.common,
            Workload::WatchFanout(a) => &a.pod.common,
            Workload::Startup(a) => &a.common,
            Workload::Memory(a) => &a.pod.common,
            Workload::ClusterSim(a) => &a.pod.common,
            Workload::Mixed(a) => &a.common,
            Workload::Overload(a) => &a.pod.common,
        }
    }

    pub fn common_mut(&mut self) -> &mut Common {
        match self {
            Workload::Create(a) | Workload::Get(a) => &mut a.common,
            Workload::List(a) => &mut a.pod.common,
            Workload::WatchFanout(a) => &mut a.pod.common,
            Workload::Startup(a) => &mut a.common,
            Workload::Memory(a) => &mut a.pod.common,
            Workload::ClusterSim(a) => &mut a.pod.common,
            Workload::Mixed(a) => &mut a.common,
            Workload::Overload(a) => &mut a.pod.common,
        }
    }

    /// Clients (closed loop) or requests in flight (open loop) when not given.
    pub fn default_concurrency(&self) -> usize {
        match self {
            Workload::Create(_) => 32,
            Workload::Get(_) => 64,
            Workload::List(_) => 1,
            Workload::WatchFanout(_) => 16,
            Workload::Startup(_) => 1,
            Workload::Memory(a) => a.lists,
            Workload::ClusterSim(_) => 256,
            Workload::Mixed(_) => 16,
            Workload::Overload(_) => 16,
        }
    }
}

/// Flags shared by every workload.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Kubeconfig to use (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig (default: its current-context).
    #[arg(long)]
    pub context: Option<String>,
    /// Measured duration.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Unrecorded warmup before the measurement.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Closed-loop clients, or with --rate the most requests in flight.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Requests per second, open loop (latency measured from each intended start).
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Connections in the pool (default: one per client for HTTP/1.1, clients/8 for HTTP/2).
    #[arg(long)]
    pub connections: Option<usize>,
    /// Use HTTP/2 (negotiated by ALPN) instead of HTTP/1.1.
    #[arg(long)]
    pub http2: bool,
    /// Ask for protobuf responses (request bodies stay JSON).
    #[arg(long)]
    pub protobuf: bool,
    /// Seed of the run's names and choices (default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Write an HTML report with SVG plots to this file.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Run on a custom resource instead of pods (get, list, create, watch-fanout): the
    /// workload installs the CRD `perfpods.perf.kapi.dev` (kind PerfPod, schema that keeps
    /// every field) and uses the pod template as its objects, so a custom type can be
    /// measured against the built-in one with the same bytes.
    #[arg(long)]
    pub custom_resource: bool,
    /// Namespace to work in; created if missing, deleted at the end unless --keep.
    #[arg(long, default_value = "kapi-perf")]
    pub namespace: String,
    /// Keep the namespace and its objects at the end.
    #[arg(long)]
    pub keep: bool,
    /// Time limit of one request.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Runtime worker threads of the load generator (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress bars on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// PID of the server (same machine): sample its CPU and RSS from /proc during the run.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Time between two samples of --server-pid.
    #[arg(long, default_value = "250ms", value_parser = parse_duration)]
    pub sample_interval: Duration,
}

/// Flags of the workloads that create or read pods.
#[derive(Debug, Clone, Args)]
pub struct PodArgs {
    #[command(flatten)]
    pub common: Common,
    /// Pod manifest (JSON) used as the template; its name is replaced.
    #[arg(long, default_value = DEFAULT_POD_TEMPLATE)]
    pub pod_template: PathBuf,
}

/// Flags of `list`.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub pod: PodArgs,
    /// Pods the namespace must hold.
    #[arg(long, default_value_t = 10_000)]
    pub pods: usize,
    /// Consistent LIST (no resourceVersion) instead of resourceVersion=0 (from cache).
    #[arg(long)]
    pub consistent: bool,
}

/// Flags of `overload`.
#[derive(Debug, Clone, Args)]
pub struct OverloadArgs {
    #[command(flatten)]
    pub pod: PodArgs,
    /// Pods the namespace must hold (what each elephant LIST returns).
    #[arg(long, default_value_t = 2_000)]
    pub pods: usize,
    /// The mice's GETs per second.
    #[arg(long, default_value_t = 20.0, value_parser = parse_rate)]
    pub mouse_rate: f64,
    /// Lease renewals per second, over all fake nodes.
    #[arg(long, default_value_t = 20.0, value_parser = parse_rate)]
    pub lease_rate: f64,
    /// Fake nodes renewing Leases.
    #[arg(long, default_value_t = 10)]
    pub nodes: usize,
}

/// Flags of `watch-fanout`.
#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub pod: PodArgs,
    /// Watchers on the namespace's pods.
    #[arg(long, default_value_t = 100)]
    pub watchers: usize,
    /// Pod updates per second (open loop; --rate overrides).
    #[arg(long, default_value_t = 100.0, value_parser = parse_rate)]
    pub updates_per_sec: f64,
    /// Pods the updates go round.
    #[arg(long, default_value_t = 10)]
    pub pods: usize,
}

/// Flags of `startup`.
#[derive(Debug, Clone, Args)]
pub struct StartupArgs {
    #[command(flatten)]
    pub common: Common,
    /// Command line that starts the server in the foreground (run by `sh -c "exec ..."`).
    #[arg(long)]
    pub server_cmd: String,
    /// Starts to measure.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Time between two /readyz polls.
    #[arg(long, default_value = "5ms", value_parser = parse_duration)]
    pub poll_interval: Duration,
    /// Wait after ready before reading the idle RSS.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub idle_wait: Duration,
    /// Give up on a start after this long.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub ready_timeout: Duration,
}

/// Flags of `memory`.
#[derive(Debug, Clone, Args)]
pub struct MemoryArgs {
    #[command(flatten)]
    pub pod: PodArgs,
    /// Pods to load (created if missing, as `list` does).
    #[arg(long, default_value_t = 10_000)]
    pub pods: usize,
    /// Concurrent LISTs of all the pods (closed loop) while the peak is sampled.
    #[arg(long, default_value_t = 4)]
    pub lists: usize,
    /// Consistent LISTs instead of resourceVersion=0.
    #[arg(long)]
    pub consistent: bool,
}

/// Flags of `compare`; the workload and its flags follow them.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Kubeconfig of server A.
    #[arg(long)]
    pub a_kubeconfig: PathBuf,
    /// Kubeconfig of server B.
    #[arg(long)]
    pub b_kubeconfig: PathBuf,
    /// PID of server A, to sample its CPU and RSS.
    #[arg(long)]
    pub a_server_pid: Option<u32>,
    /// PID of server B.
    #[arg(long)]
    pub b_server_pid: Option<u32>,
    /// Rounds per server (A, B, A, B...).
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// Write the comparison (every round's results and the ratios) as JSON here.
    #[arg(long = "compare-output")]
    pub output: Option<PathBuf>,
    /// Write the comparison's HTML report here.
    #[arg(long = "compare-html")]
    pub html: Option<PathBuf>,
    #[command(subcommand)]
    pub workload: Box<Workload>,
}

/// Flags of `mixed` (the clusterloader2 load profile's parameters).
#[derive(Debug, Clone, Args)]
pub struct MixedArgs {
    #[command(flatten)]
    pub common: Common,
    /// Nodes of the cluster the profile is sized for.
    #[arg(long, default_value_t = 100)]
    pub nodes: usize,
    /// NODES_PER_NAMESPACE.
    #[arg(long, default_value_t = 100)]
    pub nodes_per_namespace: usize,
    /// PODS_PER_NODE.
    #[arg(long, default_value_t = 30)]
    pub pods_per_node: usize,
    /// CL2_LOAD_TEST_THROUGHPUT: pods created per second (sets the saturation time).
    #[arg(long, default_value_t = 10.0, value_parser = parse_rate)]
    pub throughput: f64,
    /// CL2_DELETE_TEST_THROUGHPUT (default: --throughput).
    #[arg(long, value_parser = parse_rate)]
    pub delete_throughput: Option<f64>,
    /// CL2_DEFAULT_QPS of Services, ConfigMaps, Secrets (default: 10, 100 above 500 nodes).
    #[arg(long, value_parser = parse_rate)]
    pub qps: Option<f64>,
    /// SMALL_GROUP_SIZE.
    #[arg(long, default_value_t = 5)]
    pub small_size: usize,
    /// MEDIUM_GROUP_SIZE.
    #[arg(long, default_value_t = 30)]
    pub medium_size: usize,
    /// BIG_GROUP_SIZE.
    #[arg(long, default_value_t = 250)]
    pub big_size: usize,
}

/// How cluster-sim puts pods on nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Binding {
    Subresource,
    Nodename,
}

/// Flags of `cluster-sim`.
#[derive(Debug, Clone, Args)]
pub struct ClusterSimArgs {
    #[command(flatten)]
    pub pod: PodArgs,
    /// Fake nodes.
    #[arg(long, default_value_t = 100)]
    pub nodes: usize,
    /// Pods created per second by the churn (open loop; each is bound, run, deleted).
    #[arg(long, default_value_t = 10.0, value_parser = parse_rate)]
    pub pod_rate: f64,
    /// Time from a pod's binding to its deletion.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub pod_lifetime: Duration,
    /// Time between two renewals of a node's Lease (kubelet: 10 s).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub lease_period: Duration,
    /// leaseDurationSeconds of the Leases (kubelet: 40).
    #[arg(long, default_value_t = 40)]
    pub lease_duration: u64,
    /// Node pod watches per HTTP/2 connection.
    #[arg(long, default_value_t = 100)]
    pub watches_per_connection: usize,
    /// HTTP/2 connections of the writes (default: nodes/500, at least 2).
    #[arg(long)]
    pub write_connections: Option<usize>,
    /// How pods reach their node: `subresource` (POST pods/binding after the create, as
    /// the scheduler does) or `nodename` (created with spec.nodeName set, no binding).
    #[arg(long, value_enum, default_value_t = Binding::Subresource)]
    pub binding: Binding,
    /// Time between two reads (a LIST of the pods, a GET of a node) of the reader.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub list_period: Duration,
}

/// Parse `10s`, `250ms`, `2m`, `1h`, `1.5s` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "us" | "µs" => 0.000_001,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("bad duration unit in {s:?} (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("bad duration {s:?}: {e}"))
}

/// Parse a rate: a finite number above zero.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!("bad rate {s:?}: want a number of requests per second above 0")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(parse_rate("2.5"), Ok(2.5));
        for bad in ["0", "-1", "inf", "NaN", "x"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli =
            Cli::parse_from(["kapi-perf", "list", "--pods", "5", "--protobuf", "--rate", "2"]);
        let Command::Run(w) = &cli.command else { panic!("not a workload") };
        let Workload::List(list) = w else { panic!("not list") };
        assert_eq!(list.pods, 5);
        assert!(w.common().protobuf);
        assert_eq!(w.common().rate, Some(2.0));
        let cli = Cli::parse_from([
            "kapi-perf",
            "compare",
            "--a-kubeconfig",
            "a",
            "--b-kubeconfig",
            "b",
            "get",
            "--http2",
        ]);
        let Command::Compare(c) = &cli.command else { panic!("not compare") };
        assert!(c.workload.common().http2 && c.rounds == 2);
    }
}
