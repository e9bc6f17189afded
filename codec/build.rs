//! Turns the protobuf field numbers of the v1.35 types into a compact table.
//!
//! The source is the `k8s-pb` crate (prost types generated from upstream's
//! `generated.proto`, a build-dependency so that it is always downloaded): each
//! `#[prost(KIND, ..., tag = "N")]` attribute and the field under it become one row.
//! Messages are named by their OpenAPI definition prefix (`io.k8s.api.core.v1.Pod`);
//! field names stay prost's snake case and are matched onto JSON names at run time
//! against the schemas (see `src/protobuf/table.rs`).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

const PB_CRATE: &str = "k8s-pb-0.9.0";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CARGO_HOME");
    let src = locate_pb_source().unwrap_or_else(|| {
        panic!("the source of {PB_CRATE} was not found under CARGO_HOME/registry/src; run `cargo fetch`")
    });
    let mut messages = Vec::new();
    for top in ["api", "apimachinery", "apiextensions_apiserver", "kube_aggregator"] {
        walk(&src.join(top), &[top.to_string()], &mut messages);
    }
    messages.sort_by(|a, b| a.name.cmp(&b.name));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("pb_tables.rs");
    fs::write(out, render(&messages)).expect("write pb_tables.rs");
}

fn locate_pb_source() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let registry = home.join("registry").join("src");
    fs::read_dir(registry)
        .ok()?
        .flatten()
        .map(|index| index.path().join(PB_CRATE).join("src"))
        .find(|p| p.join("lib.rs").exists())
}

struct Field {
    tag: u32,
    name: String,
    kind: String,
    repeated: bool,
    map_value: Option<String>,
    type_ref: String,
}

struct Message {
    name: String,
    fields: Vec<Field>,
}

fn walk(dir: &Path, module: &[String], out: &mut Vec<Message>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            let mut sub = module.to_vec();
            sub.push(path.file_name().unwrap().to_string_lossy().into_owned());
            walk(&path, &sub, out);
        } else if path.file_name().is_some_and(|n| n == "mod.rs") {
            let text = fs::read_to_string(&path).expect("read k8s-pb module");
            parse_module(&text, module, out);
        }
    }
}

/// `["api","core","v1"]` -> `io.k8s.api.core.v1`.
fn package(module: &[String]) -> String {
    let parts: Vec<String> = module.iter().map(|m| m.replace('_', "-")).collect();
    format!("io.k8s.{}", parts.join("."))
}

fn parse_module(text: &str, module: &[String], out: &mut Vec<Message>) {
    let pkg = package(module);
    let mut current: Option<Message> = None;
    let mut pending: Option<String> = None;
    let mut decl = String::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("pub struct ") {
            if let Some(m) = current.take() {
                out.push(m);
            }
            let name = rest.split([' ', '{']).next().unwrap_or_default();
            current = Some(Message { name: format!("{pkg}.{name}"), fields: Vec::new() });
            continue;
        }
        if let Some(attr) = t.strip_prefix("#[prost(") {
            pending = Some(attr.trim_end_matches(")]").to_string());
            decl.clear();
            continue;
        }
        if let Some(attr) = &pending {
            decl.push_str(t);
            let balanced = decl.matches('<').count() == decl.matches('>').count();
            if decl.ends_with(',') && balanced {
                if let Some(m) = current.as_mut() {
                    m.fields.push(parse_field(attr, &decl, module));
                }
                pending = None;
            }
        }
    }
    if let Some(m) = current {
        out.push(m);
    }
}

fn parse_field(attr: &str, decl: &str, module: &[String]) -> Field {
    let tag = attr
        .split("tag = \"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|n| n.parse().ok())
        .expect("prost tag");
    let name = decl
        .trim_start_matches("pub ")
        .split(':')
        .next()
        .unwrap_or_default()
        .trim_start_matches("r#")
        .to_string();
    let ty = decl.split_once(':').map(|(_, t)| t).unwrap_or_default();
    let head = attr.split([',', ' ']).next().unwrap_or_default();
    let repeated = attr.contains("repeated");
    let (kind, map_value) = if head == "btree_map" || head == "map" {
        let spec = attr.split('"').nth(1).unwrap_or_default();
        let value = spec.split(',').nth(1).unwrap_or_default().trim().to_string();
        ("map".to_string(), Some(value))
    } else {
        (head.to_string(), None)
    };
    let is_message = kind == "message" || map_value.as_deref() == Some("message");
    let type_ref = if is_message { resolve_type(innermost(ty), module) } else { String::new() };
    Field { tag, name, kind, repeated, map_value, type_ref }
}

/// The last type path inside the generics of a field's Rust type.
fn innermost(ty: &str) -> &str {
    let ty = ty.trim().trim_end_matches([',', '>', ' ']);
    let last = ty.rsplit(['<', ',']).next().unwrap_or(ty);
    last.trim()
}

/// Resolve a (possibly `super::`-relative) Rust path to a dotted OpenAPI prefix name.
fn resolve_type(path: &str, module: &[String]) -> String {
    let mut base: Vec<String> = module.to_vec();
    let mut rest = path;
    while let Some(r) = rest.strip_prefix("super::") {
        base.pop();
        rest = r;
    }
    let mut segs: Vec<&str> = rest.split("::").collect();
    let name = segs.pop().unwrap_or_default();
    base.extend(segs.into_iter().map(String::from));
    format!("{}.{name}", package(&base))
}

fn render(messages: &[Message]) -> String {
    let mut s = String::from("// @generated by codec/build.rs from the k8s-pb crate.\n");
    s.push_str("pub(crate) static MESSAGES: &[RawMessage] = &[\n");
    for m in messages {
        let _ = writeln!(s, "    RawMessage {{ name: {:?}, fields: &[", m.name);
        for f in &m.fields {
            let _ = writeln!(
                s,
                "        RawField {{ tag: {}, name: {:?}, kind: {:?}, repeated: {}, map_value: {:?}, type_ref: {:?} }},",
                f.tag,
                f.name,
                f.kind,
                f.repeated,
                f.map_value.as_deref().unwrap_or(""),
                f.type_ref
            );
        }
        s.push_str("    ] },\n");
    }
    s.push_str("];\n");
    s
}
