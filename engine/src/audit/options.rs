//! The audit flags, with upstream kube-apiserver's names and defaults (`--audit-*`).

use super::buffered::{BatchConfig, Mode};
use crate::config::parse_duration;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct AuditOptions {
    /// Path to the file that defines the audit policy (audit.k8s.io/v1 Policy, YAML or
    /// JSON). Without it nothing is audited.
    #[arg(long)]
    pub audit_policy_file: Option<PathBuf>,

    /// If set, all requests coming to the apiserver will be logged to this file. '-'
    /// means standard out.
    #[arg(long)]
    pub audit_log_path: Option<PathBuf>,

    /// The maximum number of days to retain old audit log files based on the timestamp
    /// encoded in their filename.
    #[arg(long, default_value_t = 0)]
    pub audit_log_maxage: u64,

    /// The maximum number of old audit log files to retain. 0 means no restriction.
    #[arg(long, default_value_t = 0)]
    pub audit_log_maxbackup: usize,

    /// The maximum size in megabytes of the audit log file before it gets rotated.
    #[arg(long, default_value_t = 0)]
    pub audit_log_maxsize: u64,

    /// Format of saved audits: "json" (one Event per line). "legacy" is not supported.
    #[arg(long, default_value = "json")]
    pub audit_log_format: String,

    /// If set to true, rotated log files would be compressed (not supported: refused).
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub audit_log_compress: bool,

    /// API group and version used for serializing audit events written to log.
    #[arg(long, default_value = "audit.k8s.io/v1")]
    pub audit_log_version: String,

    /// Strategy for sending audit events: batch, blocking, blocking-strict.
    #[arg(long, default_value = "blocking")]
    pub audit_log_mode: String,

    /// The size of the buffer to store events before batching and writing.
    #[arg(long, default_value_t = 10000)]
    pub audit_log_batch_buffer_size: usize,

    /// The maximum size of a batch.
    #[arg(long, default_value_t = 1)]
    pub audit_log_batch_max_size: usize,

    /// The amount of time to wait before force writing the batch that hadn't reached the
    /// max size.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub audit_log_batch_max_wait: Duration,

    /// Whether batching throttling is enabled.
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub audit_log_batch_throttle_enable: bool,

    /// Maximum average number of batches per second.
    #[arg(long, default_value_t = 10.0)]
    pub audit_log_batch_throttle_qps: f64,

    /// Maximum number of requests sent at the same moment if ThrottleQPS was not
    /// utilized before.
    #[arg(long, default_value_t = 15)]
    pub audit_log_batch_throttle_burst: usize,

    /// Path to a kubeconfig formatted file that defines the audit webhook configuration.
    #[arg(long)]
    pub audit_webhook_config_file: Option<PathBuf>,

    /// The amount of time to wait before retrying the first failed request.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub audit_webhook_initial_backoff: Duration,

    /// Strategy for sending audit events: batch, blocking, blocking-strict.
    #[arg(long, default_value = "batch")]
    pub audit_webhook_mode: String,

    /// The size of the buffer to store events before batching and writing.
    #[arg(long, default_value_t = 10000)]
    pub audit_webhook_batch_buffer_size: usize,

    /// The maximum size of a batch.
    #[arg(long, default_value_t = 400)]
    pub audit_webhook_batch_max_size: usize,

    /// The amount of time to wait before force writing the batch that hadn't reached the
    /// max size.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub audit_webhook_batch_max_wait: Duration,

    /// Whether batching throttling is enabled.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub audit_webhook_batch_throttle_enable: bool,

    /// Maximum average number of batches per second.
    #[arg(long, default_value_t = 10.0)]
    pub audit_webhook_batch_throttle_qps: f64,

    /// Maximum number of requests sent at the same moment if ThrottleQPS was not
    /// utilized before.
    #[arg(long, default_value_t = 15)]
    pub audit_webhook_batch_throttle_burst: usize,

    /// API group and version used for serializing audit events written to webhook.
    #[arg(long, default_value = "audit.k8s.io/v1")]
    pub audit_webhook_version: String,
}

impl AuditOptions {
    /// The log backend's mode and batching, checked.
    pub fn log_batching(&self) -> Result<(Mode, BatchConfig), String> {
        if self.audit_log_format != "json" {
            return Err(format!(
                "invalid --audit-log-format {:?}: kapi writes \"json\" only",
                self.audit_log_format
            ));
        }
        if self.audit_log_compress {
            return Err("--audit-log-compress is not supported".into());
        }
        version(&self.audit_log_version, "--audit-log-version")?;
        let mode = Mode::parse(&self.audit_log_mode, "--audit-log-mode")?;
        let cfg = BatchConfig {
            buffer_size: positive(
                self.audit_log_batch_buffer_size,
                "--audit-log-batch-buffer-size",
            )?,
            max_size: positive(self.audit_log_batch_max_size, "--audit-log-batch-max-size")?,
            max_wait: self.audit_log_batch_max_wait,
            throttle: self.audit_log_batch_throttle_enable.then_some((
                self.audit_log_batch_throttle_qps,
                self.audit_log_batch_throttle_burst,
            )),
        };
        Ok((mode, cfg))
    }

    /// The webhook backend's mode and batching, checked.
    pub fn webhook_batching(&self) -> Result<(Mode, BatchConfig), String> {
        version(&self.audit_webhook_version, "--audit-webhook-version")?;
        let mode = Mode::parse(&self.audit_webhook_mode, "--audit-webhook-mode")?;
        let cfg = BatchConfig {
            buffer_size: positive(
                self.audit_webhook_batch_buffer_size,
                "--audit-webhook-batch-buffer-size",
            )?,
            max_size: positive(
                self.audit_webhook_batch_max_size,
                "--audit-webhook-batch-max-size",
            )?,
            max_wait: self.audit_webhook_batch_max_wait,
            throttle: self.audit_webhook_batch_throttle_enable.then_some((
                self.audit_webhook_batch_throttle_qps,
                self.audit_webhook_batch_throttle_burst,
            )),
        };
        Ok((mode, cfg))
    }
}

fn version(v: &str, flag: &str) -> Result<(), String> {
    if v == "audit.k8s.io/v1" {
        Ok(())
    } else {
        Err(format!("invalid {flag} {v:?}: only audit.k8s.io/v1 is supported"))
    }
}

fn positive(n: usize, flag: &str) -> Result<usize, String> {
    if n == 0 { Err(format!("invalid {flag} 0: must be greater than 0")) } else { Ok(n) }
}
