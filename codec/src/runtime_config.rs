//! `--runtime-config`: which built-in group/versions (and resources) are served, as
//! upstream kube-apiserver v1.35 reads the flag.
//!
//! The flag is upstream's `ConfigurationMap`: comma-separated `key=value` pairs (a key
//! without `=` has the empty value; a later pair replaces an earlier one of the same
//! key). Keys are `api/all`, `api/ga`, `api/beta`, `api/alpha` (value `true` or `false`),
//! `GROUP/VERSION` (`/v1` is the core group) and `GROUP/VERSION/RESOURCE` (values as Go's
//! `strconv.ParseBool`, empty meaning true). They are checked and applied in upstream's
//! order: the whole map is validated first (`APIEnablementOptions.Validate`: a lone
//! `api/all=false`, malformed keys, unknown groups), then the `api/*` matchers in the
//! order all, ga, beta, alpha, then group/versions, then resources, so the most specific
//! key wins whatever its place in the flag. Errors carry upstream's texts.
//!
//! Invariants: the defaults are exactly `Registry::builtin()` (an empty flag gives that
//! very snapshot); an enabled group/version serves every resource of it that
//! [`Registry::known`] lists unless a resource key disables it, and a resource key
//! enables a resource of a disabled group/version; the result keeps the known order
//! (upstream's discovery order) and the known entries' `Arc`s (so the same resource
//! type is one entry, with one watch cache slot, in every snapshot).

use crate::registry::{Registry, ResourceType};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

const API_ALL: &str = "api/all";
const API_GA: &str = "api/ga";
const API_BETA: &str = "api/beta";
const API_ALPHA: &str = "api/alpha";
/// The version matchers, in the order upstream applies them.
const MATCHERS: [&str; 4] = [API_ALL, API_GA, API_BETA, API_ALPHA];

/// Groups served only when enabled, and the group each follows in upstream's group
/// priority order (`apiVersionPriorities`).
const OPTIONAL_GROUP_PLACES: &[(&str, &str)] = &[
    ("internal.apiserver.k8s.io", "flowcontrol.apiserver.k8s.io"),
    ("storagemigration.k8s.io", "resource.k8s.io"),
];

/// Whether `version` is of the form `v[0-9]+` then `rest` then digits (`rest` empty: GA).
fn version_matches(version: &str, rest: &str) -> bool {
    let Some(v) = version.strip_prefix('v') else { return false };
    let major_len = v.bytes().take_while(u8::is_ascii_digit).count();
    if major_len == 0 {
        return false;
    }
    let tail = &v[major_len..];
    if rest.is_empty() {
        return tail.is_empty();
    }
    match tail.strip_prefix(rest) {
        Some(n) => !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

fn matcher(flag: &str, version: &str) -> bool {
    match flag {
        API_ALL => true,
        API_GA => version_matches(version, ""),
        API_BETA => version_matches(version, "beta"),
        API_ALPHA => version_matches(version, "alpha"),
        _ => false,
    }
}

/// Upstream's `ConfigurationMap.Set`: pairs in first-seen key order, later values win.
pub fn parse_map(flag: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in flag.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = match pair.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (pair.trim(), ""),
        };
        match out.iter_mut().find(|(key, _)| key == k) {
            Some(e) => e.1 = v.to_string(),
            None => out.push((k.to_string(), v.to_string())),
        }
    }
    out
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `schema.GroupVersion.String()`.
fn gv_string(group: &str, version: &str) -> String {
    if group.is_empty() { version.to_string() } else { format!("{group}/{version}") }
}

impl Registry {
    /// Every built-in type kapi can serve: the default ones (the same entries as
    /// [`Registry::builtin`]) and the beta and alpha ones `--runtime-config` may enable,
    /// in upstream's discovery order (groups by priority, versions by priority within).
    pub fn known() -> &'static Arc<Registry> {
        static REG: OnceLock<Arc<Registry>> = OnceLock::new();
        REG.get_or_init(|| {
            let builtin = Registry::builtin().all();
            let optional: Vec<Arc<ResourceType>> =
                crate::registry_table::optional_types().into_iter().map(Arc::new).collect();
            let mut groups: Vec<&str> = Vec::new();
            for t in builtin {
                if !groups.contains(&&*t.group) {
                    groups.push(&t.group);
                }
            }
            for (group, after) in OPTIONAL_GROUP_PLACES {
                let at = groups.iter().position(|g| g == after).map_or(groups.len(), |i| i + 1);
                groups.insert(at, group);
            }
            for t in &optional {
                if !groups.contains(&&*t.group) {
                    groups.push(&t.group);
                }
            }
            let mut types = Vec::with_capacity(builtin.len() + optional.len());
            for g in groups {
                types.extend(builtin.iter().filter(|t| *t.group == *g).cloned());
                types.extend(optional.iter().filter(|t| *t.group == *g).cloned());
            }
            Arc::new(Registry::new(types))
        })
    }

    /// The registry `--runtime-config` asks for: the defaults with the flag's changes, or
    /// upstream's error text when the flag is invalid.
    pub fn configured(runtime_config: &str) -> Result<Arc<Registry>, String> {
        let overrides = parse_map(runtime_config);
        if overrides.is_empty() {
            return Ok(Registry::builtin().clone());
        }
        let known = Registry::known();
        let gvs = known.group_versions();
        let group_known = |g: &str| gvs.iter().any(|(kg, _)| *kg == g);

        // APIEnablementOptions.Validate.
        if overrides.len() == 1 && overrides[0].0 == API_ALL && overrides[0].1 == "false" {
            return Err(format!("invalid key with only {API_ALL}=false"));
        }
        let mut unknown: Vec<&str> = Vec::new();
        for (key, _) in overrides.iter().filter(|(k, _)| !MATCHERS.contains(&k.as_str())) {
            let tokens: Vec<&str> = key.split('/').collect();
            if tokens.len() != 2 && tokens.len() != 3 {
                return Err(format!("runtime-config invalid key {key}"));
            }
            if !group_known(tokens[0]) {
                unknown.push(tokens[0]);
            }
        }
        if !unknown.is_empty() {
            return Err(format!("unknown api groups {}", unknown.join(",")));
        }

        // MergeAPIResourceConfigs: the defaults, then the matchers.
        let defaults = Registry::builtin().group_versions();
        let mut enabled: HashMap<(&str, &str), bool> =
            gvs.iter().map(|gv| (*gv, defaults.contains(gv))).collect();
        for flag in MATCHERS {
            let Some((_, value)) = overrides.iter().find(|(k, _)| k == flag) else { continue };
            let on = match value.as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(format!("invalid value {flag}={value}")),
            };
            for ((_, version), e) in enabled.iter_mut() {
                if matcher(flag, version) {
                    *e = on;
                }
            }
        }
        // Then group/versions, then resources (the most specific key wins).
        let mut resources: HashMap<(&str, &str, &str), bool> = HashMap::new();
        for (key, value) in overrides.iter().filter(|(k, _)| !MATCHERS.contains(&k.as_str())) {
            let tokens: Vec<&str> = key.split('/').collect();
            let (group, version) = (tokens[0], tokens[1]);
            if !gvs.contains(&(group, version)) {
                let gv = gv_string(group, version);
                return Err(format!("group version {gv} that has not been registered"));
            }
            let on = match value.as_str() {
                "" => true,
                v => parse_bool(v).ok_or_else(|| {
                    format!(
                        "invalid value of {key}: {v}, err: strconv.ParseBool: parsing {v:?}: \
                         invalid syntax"
                    )
                })?,
            };
            if let Some(resource) = tokens.get(2) {
                if resource.to_lowercase() != *resource {
                    return Err(format!(
                        "invalid key {key}: group/version/resource and resource is always \
                         lowercase plural, not {resource:?}"
                    ));
                }
                resources.insert((group, version, resource), on);
            } else if let Some(e) = enabled.get_mut(&(group, version)) {
                *e = on;
            }
        }
        let served = |t: &ResourceType| {
            let key = (&*t.group, &*t.version, &*t.plural);
            match resources.get(&key) {
                Some(on) => *on,
                None => enabled.get(&(&*t.group, &*t.version)).copied().unwrap_or(false),
            }
        };
        let types: Vec<Arc<ResourceType>> =
            known.all().iter().filter(|t| served(t)).cloned().collect();
        let builtin = Registry::builtin();
        let same = types.len() == builtin.all().len()
            && types.iter().zip(builtin.all()).all(|(a, b)| Arc::ptr_eq(a, b));
        Ok(if same { builtin.clone() } else { Arc::new(Registry::new(types)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn gvs(r: &Registry) -> Vec<String> {
        r.group_versions().into_iter().map(|(g, v)| gv_string(g, v)).collect()
    }

    fn served(r: &Registry, gv: &str) -> bool {
        gvs(r).iter().any(|x| x == gv)
    }

    #[test]
    fn the_flag_is_read_as_upstreams_configuration_map() {
        let m = parse_map("api/all=true, batch/v1 ,,batch/v1=false,a=b=c");
        let want = [("api/all", "true"), ("batch/v1", "false"), ("a", "b=c")];
        let want: Vec<(String, String)> =
            want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(m, want);
    }

    #[test]
    fn version_classes_are_upstreams_patterns() {
        assert!(matcher(API_GA, "v1") && matcher(API_GA, "v12"));
        assert!(!matcher(API_GA, "v1beta1") && !matcher(API_GA, "v"));
        assert!(matcher(API_BETA, "v1beta2") && !matcher(API_BETA, "v1beta"));
        assert!(matcher(API_ALPHA, "v1alpha3") && !matcher(API_ALPHA, "v1beta1"));
        assert!(matcher(API_ALL, "anything"));
    }

    #[test]
    fn an_empty_flag_is_the_default_registry() {
        let r = Registry::configured("").unwrap();
        assert!(Arc::ptr_eq(&r, Registry::builtin()));
        let r = Registry::configured("batch/v1=true").unwrap();
        assert!(Arc::ptr_eq(&r, Registry::builtin()));
    }

    #[test]
    fn every_known_group_version_has_entries_and_facts() {
        let known = Registry::known();
        for (g, v) in known.group_versions() {
            let types: Vec<_> = known.in_group_version(g, v).collect();
            assert!(!types.is_empty(), "{g}/{v}");
            for t in types {
                assert!(!t.singular.is_empty() && t.kind.to_lowercase() == *t.singular, "{t:?}");
                assert!(crate::schema::builtin().get(&t.schema_name).is_some(), "{t:?}");
            }
        }
        // Each default entry is the very entry of the default registry.
        for t in Registry::builtin().all() {
            let k = known.get(&t.group, &t.version, &t.plural).unwrap();
            assert!(Arc::ptr_eq(k, t));
        }
    }

    #[test]
    fn the_optional_group_versions_match_upstreams_openapi_documents() {
        let Some(dir) = crate::spec_files::path("openapi-v3") else { return };
        let mut want: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| {
                let gv = n.strip_suffix("_openapi.json")?;
                let gv = gv.strip_prefix("apis__").or(gv.strip_prefix("api__"))?;
                Some(gv.replace("__", "/"))
            })
            .collect();
        want.sort();
        let mut have = gvs(Registry::known());
        have.sort();
        assert_eq!(have, want);
    }

    #[test]
    fn api_all_enables_every_known_version() {
        let r = Registry::configured("api/all=true").unwrap();
        assert_eq!(r.all().len(), Registry::known().all().len());
        assert_eq!(gvs(&r), gvs(Registry::known()));
    }

    #[test]
    fn a_group_version_is_enabled_or_disabled() {
        let r = Registry::configured("resource.k8s.io/v1beta2=true,batch/v1=false").unwrap();
        assert!(served(&r, "resource.k8s.io/v1beta2"));
        assert!(!served(&r, "resource.k8s.io/v1beta1"));
        assert!(!served(&r, "batch/v1"));
        assert!(r.get("batch", "v1", "jobs").is_none());
        assert_eq!(r.in_group_version("resource.k8s.io", "v1beta2").count(), 4);
        // The preferred (GA) version comes first within its group.
        let order = gvs(&r);
        let at = |gv: &str| order.iter().position(|x| x == gv).unwrap();
        assert_eq!(at("resource.k8s.io/v1beta2"), at("resource.k8s.io/v1") + 1);
        // An empty value means true; `/v1` is the core group.
        let r = Registry::configured("storage.k8s.io/v1beta1").unwrap();
        assert!(served(&r, "storage.k8s.io/v1beta1"));
        let r = Registry::configured("/v1=false").unwrap();
        assert!(!served(&r, "v1"));
    }

    #[test]
    fn the_most_specific_key_wins_whatever_its_place() {
        let r = Registry::configured("batch/v1=true,api/all=false,apps/v1=true").unwrap();
        assert_eq!(gvs(&r), ["apps/v1", "batch/v1"]);
        let r = Registry::configured("api/beta=true,api/all=false,networking.k8s.io/v1").unwrap();
        // api/beta is applied after api/all.
        assert!(served(&r, "networking.k8s.io/v1") && served(&r, "networking.k8s.io/v1beta1"));
        assert!(!served(&r, "apps/v1"));
        let r = Registry::configured("api/alpha=true,api/ga=false,v1=true").err();
        assert_eq!(r.as_deref(), Some("runtime-config invalid key v1"));
        let r = Registry::configured("api/alpha=true").unwrap();
        assert!(served(&r, "coordination.k8s.io/v1alpha2"));
        assert!(!served(&r, "coordination.k8s.io/v1beta1") && served(&r, "coordination.k8s.io/v1"));
    }

    #[test]
    fn resource_keys_enable_or_disable_one_resource() {
        let r = Registry::configured("resource.k8s.io/v1beta2/deviceclasses=true").unwrap();
        let beta: Vec<_> =
            r.in_group_version("resource.k8s.io", "v1beta2").map(|t| &*t.plural).collect();
        assert_eq!(beta, ["deviceclasses"]);
        let r = Registry::configured("batch/v1/cronjobs=false").unwrap();
        assert!(
            r.get("batch", "v1", "jobs").is_some() && r.get("batch", "v1", "cronjobs").is_none()
        );
        let e = Registry::configured("batch/v1/CronJobs=false").unwrap_err();
        assert_eq!(
            e,
            "invalid key batch/v1/CronJobs: group/version/resource and resource is always \
             lowercase plural, not \"CronJobs\""
        );
    }

    #[test]
    fn invalid_flags_get_upstreams_errors() {
        let e = |f: &str| Registry::configured(f).unwrap_err();
        assert_eq!(e("api/all=false"), "invalid key with only api/all=false");
        assert_eq!(e("api/all=yes"), "invalid value api/all=yes");
        assert_eq!(e("api/beta"), "invalid value api/beta=");
        assert_eq!(e("foo.example.com/v1=true,bar/v2"), "unknown api groups foo.example.com,bar");
        assert_eq!(e("api/legacy=false"), "unknown api groups api");
        assert_eq!(e("batch/v2=true"), "group version batch/v2 that has not been registered");
        assert_eq!(e("/v2=true"), "group version v2 that has not been registered");
        assert_eq!(e("a/b/c/d=true"), "runtime-config invalid key a/b/c/d");
        assert_eq!(
            e("batch/v1=maybe"),
            "invalid value of batch/v1: maybe, err: strconv.ParseBool: parsing \"maybe\": \
             invalid syntax"
        );
    }

    /// The definitions reachable from `name`, renamed from package version `from` to
    /// `to`, without descriptions: equal for two versions whose types differ only in name.
    fn shape(name: &str, from: &str, to: &str) -> std::collections::BTreeMap<String, Value> {
        let defs = &crate::schema::builtin().definitions;
        let rename = |n: &str| n.replace(&format!(".{from}."), &format!(".{to}."));
        let mut out = std::collections::BTreeMap::new();
        let mut todo = vec![name.to_string()];
        while let Some(n) = todo.pop() {
            if out.contains_key(&rename(&n)) {
                continue;
            }
            let Some(def) = defs.get(&n) else { continue };
            let mut def = def.clone();
            strip(&mut def, &mut todo, &rename);
            out.insert(rename(&n), def);
        }
        out
    }

    fn strip(v: &mut Value, refs: &mut Vec<String>, rename: &dyn Fn(&str) -> String) {
        match v {
            Value::Object(m) => {
                // Descriptions and the list/map topology (SSA facts) aside.
                m.retain(|k, _| k != "description" && !k.starts_with("x-kubernetes-"));
                if let Some(Value::String(r)) = m.get_mut("$ref") {
                    let target = r.rsplit('/').next().unwrap_or("").to_string();
                    *r = rename(&target);
                    refs.push(target);
                }
                m.values_mut().for_each(|x| strip(x, refs, rename));
            }
            Value::Array(a) => a.iter_mut().for_each(|x| strip(x, refs, rename)),
            _ => {}
        }
    }

    /// A version stored as another converts by `apiVersion` alone, so its types must be
    /// the storage version's but for their names.
    #[test]
    fn versions_stored_as_another_have_its_types() {
        let known = Registry::known();
        let mut twins = 0;
        let mut bad = Vec::new();
        for t in known.all() {
            let Some(sv) = &t.storage_version else { continue };
            let stored = known.get(&t.group, sv, &t.plural).expect("storage version is known");
            assert_eq!(stored.storage_resource, t.storage_resource, "{t:?}");
            assert_eq!(stored.namespaced, t.namespaced, "{t:?}");
            assert_eq!(stored.storage_version, None, "{t:?}");
            let a = shape(&t.schema_name, &t.version, sv);
            let b = shape(&stored.schema_name, sv, sv);
            let differ: Vec<&String> =
                a.keys().chain(b.keys()).filter(|k| a.get(*k) != b.get(*k)).collect();
            if !differ.is_empty() {
                bad.push(format!("{t:?} differs from {sv}: {differ:?}"));
            }
            twins += 1;
        }
        assert!(twins > 0);
        assert!(bad.is_empty(), "{bad:#?}");
    }
}
