//! Structured logs with upstream-style `--v` verbosity (0 = warnings and errors, 1-2 =
//! info, 3+ = per-request lines, 5+ = debug, 8+ = trace). `KAPI_LOG` (an env filter)
//! overrides. `--logging-format=json` writes one JSON object per line.

use tracing_subscriber::EnvFilter;

pub fn init(verbosity: u8, json: bool) {
    let level = match verbosity {
        0 => "warn",
        1..=4 => "info",
        5..=7 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("KAPI_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.with_ansi(ansi).try_init()
    };
}
