//! CA bundles read again when their file changes, as upstream's dynamic CA content
//! (`--client-ca-file`, `--requestheader-client-ca-file`): a reloader thread checks the
//! files every interval (upstream: a minute; `--ca-reload-interval`, hidden, lets tests
//! shorten it) and swaps in the new bundle when the contents changed and parse.
//!
//! Invariants: readers never block ([`ArcSwap`]); a file that is missing, unreadable or
//! holds no valid CA keeps the last good bundle (a warning is logged, as upstream); the
//! file is read at most [`MAX_CA_FILE`] bytes; a bundle without a file (the generated
//! cluster CA) never changes.

use super::x509::CaBundle;
use arc_swap::ArcSwap;
use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Upstream's check interval for CA files.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Largest CA file read.
pub const MAX_CA_FILE: u64 = 4 << 20;

/// A CA bundle, and the file it is read from when it has one.
pub struct DynamicCa {
    path: Option<PathBuf>,
    bundle: ArcSwap<CaBundle>,
    /// The contents last loaded (compared to see a change).
    loaded: Mutex<String>,
}

impl std::fmt::Debug for DynamicCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicCa").field("path", &self.path).finish_non_exhaustive()
    }
}

fn read(path: &PathBuf) -> Result<String, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_CA_FILE)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text)
}

impl DynamicCa {
    /// A bundle that never changes.
    pub fn fixed(pem: &str) -> Result<DynamicCa, String> {
        let bundle = CaBundle::from_pem(pem)?;
        Ok(DynamicCa {
            path: None,
            bundle: ArcSwap::from_pointee(bundle),
            loaded: Mutex::new(pem.to_string()),
        })
    }

    /// The bundle of the file at `path`, read again by [`DynamicCa::reload`].
    pub fn from_file(path: PathBuf) -> Result<DynamicCa, String> {
        let text = read(&path)?;
        let bundle = CaBundle::from_pem(&text)?;
        Ok(DynamicCa {
            path: Some(path),
            bundle: ArcSwap::from_pointee(bundle),
            loaded: Mutex::new(text),
        })
    }

    /// The current bundle.
    pub fn load(&self) -> Arc<CaBundle> {
        self.bundle.load_full()
    }

    /// Read the file again: Ok(true) when its contents changed and the new bundle is in
    /// place; Err (the old bundle kept) when it cannot be read or parsed.
    pub fn reload(&self) -> Result<bool, String> {
        let Some(path) = &self.path else { return Ok(false) };
        let text = read(path)?;
        if *self.loaded.lock() == text {
            return Ok(false);
        }
        let bundle = CaBundle::from_pem(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        self.bundle.store(Arc::new(bundle));
        *self.loaded.lock() = text;
        Ok(true)
    }
}

/// Check `cas` every `interval` on a thread of its own; `changed` runs after any swap.
pub fn start(
    cas: Vec<Arc<DynamicCa>>,
    interval: Duration,
    changed: impl Fn() + Send + 'static,
) -> std::io::Result<()> {
    if cas.iter().all(|c| c.path.is_none()) {
        return Ok(());
    }
    std::thread::Builder::new().name("kapi-ca-reload".into()).spawn(move || {
        loop {
            std::thread::sleep(interval);
            if reload_all(&cas) {
                changed();
            }
        }
    })?;
    Ok(())
}

/// Reload every bundle; whether any changed.
fn reload_all(cas: &[Arc<DynamicCa>]) -> bool {
    let mut any = false;
    for ca in cas {
        match ca.reload() {
            Ok(true) => {
                tracing::info!("loaded a new CA bundle from {:?}", ca.path);
                any = true;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!("CA bundle not reloaded, the last one stays: {e}"),
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem(name: &str) -> String {
        let kp = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.self_signed(&kp).unwrap().pem()
    }

    #[test]
    fn a_changed_file_swaps_the_bundle_and_a_broken_one_keeps_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.crt");
        std::fs::write(&path, ca_pem("one")).unwrap();
        let ca = DynamicCa::from_file(path.clone()).unwrap();
        let first = ca.load();
        assert_eq!(ca.reload(), Ok(false), "unchanged");
        std::fs::write(&path, ca_pem("two")).unwrap();
        assert_eq!(ca.reload(), Ok(true));
        assert!(!Arc::ptr_eq(&ca.load(), &first), "a new bundle");
        let second = ca.load();
        std::fs::write(&path, "not a certificate").unwrap();
        assert!(ca.reload().is_err());
        assert!(Arc::ptr_eq(&ca.load(), &second), "the last good bundle stays");
        std::fs::remove_file(&path).unwrap();
        assert!(ca.reload().is_err());
        assert!(Arc::ptr_eq(&ca.load(), &second));
    }

    #[test]
    fn fixed_bundles_never_reload() {
        let ca = DynamicCa::fixed(&ca_pem("c")).unwrap();
        assert_eq!(ca.reload(), Ok(false));
    }
}
