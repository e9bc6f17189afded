//! Allocators the apiserver runs itself: Service ClusterIPs from
//! `--service-cluster-ip-range` and NodePorts from `--service-node-port-range`.
//!
//! Invariants: an address or port is handed out at most once until released; the state
//! is rebuilt from the stored Services at start (`mark_used`), so it needs no storage of
//! its own. Allocation is rare, so a mutex is fine here.

mod cluster_ip;
mod node_port;

pub use cluster_ip::ClusterIpAllocator;
pub use node_port::NodePortAllocator;

/// Why an allocation failed (rendered into a 422 field error by the caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    #[error("provided IP is already allocated")]
    IpInUse,
    #[error("the provided IP ({0}) is not in the valid range. The range of valid IPs is {1}")]
    IpOutOfRange(String, String),
    #[error("provided port is already allocated")]
    PortInUse,
    #[error("provided port is not in the valid range. The range of valid ports is {0}")]
    PortOutOfRange(String),
    #[error("range is full")]
    Full,
}
