//! The authorization chain the flags describe: either `--authorization-config` (the
//! structured file, with a [`Reloader`] to follow it) or `--authorization-mode` with the
//! `--authorization-webhook-*` flags — never both (upstream's error when both are given).
//! AlwaysAllow is warned about, as it lets every authenticated user do anything. The
//! Node authorizer's static rules are the bootstrap `system:node` role's, as upstream.

use super::config::load_file;
use super::reload::{Reloader, entries};
use super::webhook::{Settings, Webhook, endpoint_from_kubeconfig};
use super::{Chain, Entry, Mode};
use crate::config::Options;
use std::sync::Arc;
use std::time::Duration;

/// The default `--authorization-mode` (kubeadm's).
pub const DEFAULT_MODES: &str = "Node,RBAC";

/// The chain, and its file's reloader when it came from `--authorization-config`.
pub fn chain(options: &Options) -> Result<(Arc<Chain>, Option<Reloader>), String> {
    match &options.authorization_config {
        Some(path) => {
            if legacy_flags_set(options) {
                return Err("--authorization-config can not be specified when --authorization-mode or --authorization-webhook-* flags are defined".into());
            }
            let (config, data) = load_file(path)?;
            let mut modes: Vec<Mode> = config.authorizers.iter().map(|a| a.mode).collect();
            modes.dedup();
            let chain = Arc::new(with_node_rules(Chain::new(modes.clone())));
            chain.set_entries(entries(config, &modes)?);
            warn_always_allow(&modes, "--authorization-config");
            let reloader = Reloader::new(path.clone(), chain.clone(), data);
            Ok((chain, Some(reloader)))
        }
        None => Ok((Arc::new(from_flags(options)?), None)),
    }
}

fn legacy_flags_set(o: &Options) -> bool {
    o.authorization_mode.is_some()
        || o.authorization_webhook_config_file.is_some()
        || o.authorization_webhook_version.is_some()
        || o.authorization_webhook_cache_authorized_ttl.is_some()
        || o.authorization_webhook_cache_unauthorized_ttl.is_some()
}

fn warn_always_allow(modes: &[Mode], source: &str) {
    if modes.contains(&Mode::AlwaysAllow) {
        tracing::warn!("{source} includes AlwaysAllow: every authenticated user may do anything");
    }
}

fn with_node_rules(chain: Chain) -> Chain {
    let node_role = super::bootstrap::cluster_roles()
        .into_iter()
        .find(|r| r["metadata"]["name"] == "system:node");
    chain.graph.set_rules(node_role.map(|r| super::rules::Rule::all_of(&r)).unwrap_or_default());
    chain
}

/// The `--authorization-mode` chain with the `--authorization-webhook-*` webhook.
fn from_flags(options: &Options) -> Result<Chain, String> {
    let modes = Mode::parse_list(options.authorization_mode.as_deref().unwrap_or(DEFAULT_MODES))?;
    warn_always_allow(&modes, "--authorization-mode");
    let webhook_mode = modes.contains(&Mode::Webhook);
    let chain = with_node_rules(Chain::new(modes.clone()));
    match (&options.authorization_webhook_config_file, webhook_mode) {
        (Some(path), true) => {
            let settings = Settings::legacy(
                options.authorization_webhook_version.as_deref().unwrap_or("v1"),
                options
                    .authorization_webhook_cache_authorized_ttl
                    .unwrap_or(Duration::from_secs(300)),
                options
                    .authorization_webhook_cache_unauthorized_ttl
                    .unwrap_or(Duration::from_secs(30)),
            );
            let webhook = Arc::new(Webhook::new(endpoint_from_kubeconfig(path)?, settings)?);
            let entries = modes
                .iter()
                .map(|m| match m {
                    Mode::Webhook => Entry::Webhook(webhook.clone()),
                    other => Entry::Local(*other),
                })
                .collect();
            chain.set_entries(entries);
        }
        (None, true) => {
            return Err("authorization-mode Webhook's authorization config file not passed".into());
        }
        (Some(_), false) => {
            return Err(
                "cannot specify --authorization-webhook-config-file without mode Webhook".into()
            );
        }
        (None, false) => {}
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn the_config_file_and_the_legacy_flags_exclude_each_other() {
        let o = Options::parse_from([
            "kapi",
            "--authorization-config=/nonexistent.yaml",
            "--authorization-mode=RBAC",
        ]);
        let e = chain(&o).err().expect("refused");
        assert_eq!(
            e,
            "--authorization-config can not be specified when --authorization-mode or --authorization-webhook-* flags are defined"
        );
        let o = Options::parse_from(["kapi", "--authorization-mode=Webhook"]);
        assert!(chain(&o).err().expect("refused").contains("config file not passed"));
    }

    #[test]
    fn a_config_file_builds_the_chain_in_its_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("authz.yaml");
        let text = "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\nauthorizers:\n- type: Node\n  name: node\n- type: RBAC\n  name: rbac\n";
        std::fs::write(&path, text).expect("write");
        let o = Options::parse_from([
            "kapi".to_string(),
            format!("--authorization-config={}", path.display()),
        ]);
        let (chain, reloader) = chain(&o).expect("built");
        assert_eq!(chain.modes(), &[Mode::Node, Mode::Rbac]);
        assert!(reloader.is_some());
    }
}
