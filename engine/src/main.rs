//! The `kapi` binary: parse flags, start the API server, wait for a signal.

use clap::Parser;

fn main() {
    let options = kapi::config::Options::parse();
    kapi::logging::init(options.verbosity, options.logging_format == "json");
    if let Err(e) = kapi::run(options) {
        eprintln!("kapi: {e}");
        std::process::exit(1);
    }
}
