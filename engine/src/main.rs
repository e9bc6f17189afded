//! The `kapi` binary: install the sampling allocator (mimalloc with Go-style heap
//! sampling, served at /debug/pprof/heap), parse flags, start the API server, wait for a
//! signal.

use clap::Parser;

#[global_allocator]
static ALLOCATOR: kapi::debug::heap::SamplingAlloc = kapi::debug::heap::SamplingAlloc::new();

fn main() {
    // As Go's runtime.MemProfileRate: mean bytes between heap samples; 0 turns it off.
    if let Some(rate) = std::env::var("KAPI_MEM_PROFILE_RATE").ok().and_then(|r| r.parse().ok()) {
        kapi::debug::heap::sampler::set_rate(rate);
    }
    let options = kapi::config::Options::parse();
    kapi::logging::init(options.verbosity, options.logging_format == "json");
    if let Err(e) = kapi::run(options) {
        eprintln!("kapi: {e}");
        std::process::exit(1);
    }
}
