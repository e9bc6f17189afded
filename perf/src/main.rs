//! The `kapi-perf` binary: parse the flags, run the workload on a multi-threaded runtime,
//! print the summary and write the JSON results and the HTML report; or compare two
//! servers.

use clap::Parser;
use kapi_perf::options::{Cli, Command, CompareArgs};
use kapi_perf::report;

fn main() {
    let cli = Cli::parse();
    let workload = match cli.command {
        Command::Run(ref w) => w.clone(),
        Command::Compare(ref c) => (*c.workload).clone(),
    };
    let common = workload.common().clone();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = common.threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(e) => fail(&format!("starting the runtime: {e}")),
    };
    if let Command::Compare(args) = &cli.command {
        compare(&runtime, args);
        return;
    }
    let results = match runtime.block_on(kapi_perf::workloads::execute(workload)) {
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

fn compare(runtime: &tokio::runtime::Runtime, args: &CompareArgs) {
    let c = match runtime.block_on(kapi_perf::compare::run(args)) {
        Ok(c) => c,
        Err(e) => fail(&e.to_string()),
    };
    print!("{}", kapi_perf::compare::summary(&c));
    if let Some(path) = &args.output {
        let text = serde_json::to_string_pretty(&c).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text + "\n") {
            fail(&format!("writing {}: {e}", path.display()));
        }
        println!("comparison written to {}", path.display());
    }
    if let Some(path) = &args.html {
        if let Err(e) = std::fs::write(path, kapi_perf::compare::html(&c)) {
            fail(&format!("writing {}: {e}", path.display()));
        }
        println!("report written to {}", path.display());
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("kapi-perf: {msg}");
    std::process::exit(1);
}
