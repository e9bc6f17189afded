//! /debug endpoints for performance research (behind `--profiling`, authorized like any
//! non-resource request).
//!
//! - [`pprof`]: the /debug/pprof/ routes: CPU profiles in Go's pprof format (`go tool
//!   pprof` reads them), the heap profile, the flame graph.
//! - [`heap`]: the sampling global allocator behind `/debug/pprof/heap`.
//! - [`flamegraph`]: the SVG flame graph renderer.

pub mod flamegraph;
pub mod heap;
pub mod pprof;
