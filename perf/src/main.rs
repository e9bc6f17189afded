//! The `kapi-perf` binary: parse the flags, run the workload on a multi-threaded runtime,
//! print the summary and write the JSON results.

use clap::Parser;
use kapi_perf::options::Cli;
use kapi_perf::report;

fn main() {
    let cli = Cli::parse();
    let common = cli.workload.common().clone();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = common.threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(e) => fail(&format!("starting the runtime: {e}")),
    };
    let results = match runtime.block_on(kapi_perf::workloads::execute(cli.workload)) {
        Ok(r) => r,
        Err(e) => fail(&e.to_string()),
    };
    print!("{}", report::summary(&results));
    if let Some(path) = &common.output {
        if let Err(e) = report::write_json(&results, path) {
            fail(&format!("writing {}: {e}", path.display()));
        }
        println!("results written to {}", path.display());
    }
    if let Some(path) = &common.html {
        if let Err(e) = kapi_perf::html::write(&results, path) {
            fail(&format!("writing {}: {e}", path.display()));
        }
        println!("report written to {}", path.display());
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("kapi-perf: {msg}");
    std::process::exit(1);
}
