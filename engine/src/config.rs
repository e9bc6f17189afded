//! Command-line options. Flags take upstream kube-apiserver's names wherever the concept
//! is the same.

use clap::Parser;
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Parser)]
#[command(name = "kapi", version, about = "A Kubernetes API server")]
pub struct Options {
    /// Directory for the store, certificates and the admin kubeconfig.
    #[arg(long, default_value = "kapi-data")]
    pub data_dir: PathBuf,

    /// Address to serve HTTPS on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: IpAddr,

    /// Port to serve HTTPS on.
    #[arg(long, default_value_t = 6443)]
    pub secure_port: u16,

    /// Worker threads (one monoio runtime per core); 0 = one per available core.
    #[arg(long, default_value_t = 0)]
    pub workers: usize,

    /// Static bearer tokens: CSV lines `token,user,uid[,"group1,group2"]`.
    #[arg(long)]
    pub token_auth_file: Option<PathBuf>,

    /// CIDR for Service ClusterIPs.
    #[arg(long, default_value = "10.96.0.0/12")]
    pub service_cluster_ip_range: String,

    /// Port range for NodePort Services.
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: String,

    /// Key prefix of every object in the store.
    #[arg(long, default_value = "/registry")]
    pub etcd_prefix: String,

    /// Largest accepted request body in bytes (upstream: 3 MiB).
    #[arg(long, default_value_t = 3 * 1024 * 1024)]
    pub max_request_body_bytes: usize,

    /// Seconds between compactions of the store's history.
    #[arg(long, default_value_t = 300)]
    pub compaction_interval_seconds: u64,

    /// Disable fsync of the write-ahead log (tests and benchmarks only: unsafe on crash).
    #[arg(long, default_value_t = false)]
    pub unsafe_no_fsync: bool,

    /// Seconds to let in-flight requests finish on shutdown.
    #[arg(long, default_value_t = 10)]
    pub shutdown_grace_seconds: u64,

    /// Events each resource's watch cache keeps for watches resuming from a
    /// resourceVersion (older ones get 410 Gone and re-list).
    #[arg(long, default_value_t = 1000)]
    pub default_watch_cache_size: usize,

    /// Per-resource watch cache sizes, upstream's format: `resource[.group]#size`,
    /// comma-separated (`pods#5000,deployments.apps#2000`).
    #[arg(long, value_delimiter = ',')]
    pub watch_cache_sizes: Vec<String>,

    /// Serve CPU profiles at /debug/pprof/ (upstream's `--profiling`, default true).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub profiling: bool,

    /// Log format: `text` or `json` (upstream's `--logging-format`).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub logging_format: String,

    /// Log verbosity, as upstream's `-v`.
    #[arg(short = 'v', long = "v", default_value_t = 1)]
    pub verbosity: u8,
}

impl Options {
    /// The watch cache size of `resource` (`pods`, `deployments.apps`).
    pub fn watch_cache_size(&self, resource: &str) -> usize {
        self.watch_cache_sizes
            .iter()
            .filter_map(|e| e.split_once('#'))
            .find(|(r, _)| *r == resource || r.split('.').next() == Some(resource))
            .and_then(|(_, n)| n.trim().parse().ok())
            .unwrap_or(self.default_watch_cache_size)
            .max(1)
    }

    /// Options for tests: everything default but the data directory and port.
    pub fn for_test(data_dir: PathBuf, port: u16) -> Self {
        let mut o = Options::parse_from(["kapi"]);
        o.data_dir = data_dir;
        o.secure_port = port;
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_cache_sizes_parse_as_upstream() {
        let o =
            Options::parse_from(["kapi", "--watch-cache-sizes", "pods#5000,deployments.apps#20"]);
        assert_eq!(o.watch_cache_size("pods"), 5000);
        assert_eq!(o.watch_cache_size("deployments"), 20);
        assert_eq!(o.watch_cache_size("configmaps"), 1000);
    }
}
