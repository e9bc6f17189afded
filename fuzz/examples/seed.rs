//! Writes the checked-in seed corpus (`fuzz/corpus/TARGET/`) from real inputs: every
//! built-in kind of `tests/manifests/every-type.yaml` in JSON, YAML, protobuf and stored
//! form, request heads kubectl and client-go send, selectors, patches of each type,
//! continue tokens kapi writes, ServiceAccount tokens, and WAL segments and snapshots
//! the embedded store writes. `cargo run --manifest-path fuzz/Cargo.toml --example seed`.
fn main() {
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let written = kapi_fuzz::seeds::write_all(&out);
    eprintln!("wrote {written} seeds under {}", out.display());
}
