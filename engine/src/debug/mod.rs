//! /debug endpoints for performance research (behind `--profiling`, authorized like any
//! non-resource request).
//!
//! - [`pprof`]: CPU profiles in Go's pprof format (`go tool pprof` reads them).

pub mod pprof;
