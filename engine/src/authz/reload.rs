//! Applying a `--authorization-config` file to the chain, at start and whenever the file
//! changes (upstream v1.30+): [`entries`] turns a checked configuration into the chain's
//! authorizers; [`Reloader`] checks the file every [`INTERVAL`] and swaps in the new
//! authorizers only when the bytes changed and the new configuration is valid and
//! buildable; otherwise the running chain stays and the failure is logged.
//!
//! Invariants, as upstream's reloadable authorizer: the non-webhook types the server
//! started with must all remain (their state — the Node graph, the RBAC policy — is
//! kept current only for them), and Node or RBAC cannot be added later.

use super::config::{AuthorizationConfig, load};
use super::webhook::Webhook;
use super::{Chain, Entry, Mode};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How often the file is read for changes.
pub const INTERVAL: Duration = Duration::from_secs(2);

/// The chain's authorizers for `config`, on a server started with `started`.
pub fn entries(config: AuthorizationConfig, started: &[Mode]) -> Result<Vec<Entry>, String> {
    let required: Vec<Mode> =
        started.iter().copied().filter(|m| matches!(m, Mode::Node | Mode::Rbac)).collect();
    let missing: Vec<&str> = required
        .iter()
        .filter(|m| !config.authorizers.iter().any(|a| a.mode == **m))
        .map(|m| m.type_name())
        .collect();
    if !missing.is_empty() {
        return Err(format!("missing required types: [{}]", missing.join(" ")));
    }
    let mut out = Vec::new();
    for a in config.authorizers {
        let entry = match (a.mode, a.webhook) {
            (Mode::Webhook, Some(spec)) => {
                Entry::Webhook(Arc::new(Webhook::from_spec(&a.name, spec)?))
            }
            (Mode::Node | Mode::Rbac, _) if !started.contains(&a.mode) => {
                return Err(format!(
                    "authorizer type {} is not allowed if it was not enabled at initial server startup",
                    a.mode.type_name()
                ));
            }
            (mode, _) => Entry::Local(mode),
        };
        out.push(entry);
    }
    Ok(out)
}

/// Watches one configuration file for a chain.
pub struct Reloader {
    path: PathBuf,
    chain: Arc<Chain>,
    /// The bytes last read (a change is only looked at once).
    last: Vec<u8>,
}

impl Reloader {
    /// `loaded` is the file's content the chain was built from.
    pub fn new(path: PathBuf, chain: Arc<Chain>, loaded: Vec<u8>) -> Reloader {
        Reloader { path, chain, last: loaded }
    }

    /// Read the file; if it changed, load it and swap the chain's authorizers.
    /// Ok(true) when swapped, Ok(false) when unchanged, Err when the new content was
    /// refused (the chain is untouched).
    pub fn check(&mut self) -> Result<bool, String> {
        let data =
            std::fs::read(&self.path).map_err(|e| format!("{}: {e}", self.path.display()))?;
        if data == self.last {
            return Ok(false);
        }
        self.last = data.clone();
        let config = load(&data)?;
        let entries = entries(config, self.chain.modes())?;
        self.chain.set_entries(entries);
        Ok(true)
    }

    /// Check every [`INTERVAL`] on a thread of its own until the app shuts down.
    pub fn start(
        mut self,
        app: Arc<crate::app::App>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new().name("kapi-authz-reload".into()).spawn(move || {
            while !app.is_shutting_down() {
                std::thread::sleep(INTERVAL);
                match self.check() {
                    Ok(true) => {
                        tracing::info!("reloaded authz config from {}", self.path.display())
                    }
                    Ok(false) => {}
                    Err(e) => tracing::error!("reloading authorization config: {e}"),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Authorizer, Decision, UserInfo};
    use crate::request::RequestInfo;

    const HEAD: &str =
        "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\nauthorizers:\n";

    fn decision(chain: &Chain) -> Decision {
        let info = RequestInfo { is_resource: true, verb: "get".into(), ..Default::default() };
        let bob = UserInfo { name: "bob".into(), ..Default::default() };
        chain.authorize(&bob, &info)
    }

    #[test]
    fn a_changed_valid_file_is_swapped_in_and_a_bad_one_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("authz.yaml");
        let first = format!("{HEAD}- type: RBAC\n  name: rbac\n");
        std::fs::write(&path, &first).expect("write");
        let chain = Arc::new(Chain::new(vec![Mode::Rbac]));
        let mut r = Reloader::new(path.clone(), chain.clone(), first.into_bytes());
        assert_eq!(r.check(), Ok(false), "unchanged");
        assert!(matches!(decision(&chain), Decision::Deny(_)));

        let allow =
            format!("{HEAD}- type: AlwaysAllow\n  name: alwaysallow\n- type: RBAC\n  name: rbac\n");
        std::fs::write(&path, allow).expect("write");
        assert_eq!(r.check(), Ok(true));
        assert_eq!(decision(&chain), Decision::Allow);

        std::fs::write(&path, "apiVersion: apiserver.config.k8s.io").expect("write");
        assert!(r.check().is_err(), "a bad file is refused");
        assert_eq!(decision(&chain), Decision::Allow, "the running chain stays");
        assert_eq!(r.check(), Ok(false), "the same bad bytes are not looked at twice");
    }

    #[test]
    fn the_started_node_and_rbac_must_stay_and_cannot_be_added() {
        let cfg = |text: &str| load(format!("{HEAD}{text}").as_bytes()).expect("valid");
        let deny = cfg("- type: AlwaysDeny\n  name: alwaysdeny\n");
        assert_eq!(
            entries(deny, &[Mode::Node, Mode::Rbac]).unwrap_err(),
            "missing required types: [Node RBAC]"
        );
        let node = cfg("- type: Node\n  name: node\n- type: RBAC\n  name: rbac\n");
        assert_eq!(
            entries(node, &[Mode::Rbac]).unwrap_err(),
            "authorizer type Node is not allowed if it was not enabled at initial server startup"
        );
    }
}
