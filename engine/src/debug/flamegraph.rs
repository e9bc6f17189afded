//! `/debug/pprof/flamegraph?seconds=N`: a CPU profile drawn as an SVG flame graph, for
//! people without Go's tooling. Our own small renderer: the samples' stacks are folded
//! into a frame tree (root at the bottom, callees above, siblings in name order, widths
//! proportional to samples) and written as SVG rectangles, each with a `<title>`
//! tooltip (name, samples, share) and its name as text where it fits.
//!
//! Invariants: the output is well-formed XML whatever the symbol names (they are
//! escaped); frames narrower than [`MIN_WIDTH`] pixels are left out, with their callees.

use std::collections::BTreeMap;
use std::fmt::Write as _;

const WIDTH: f64 = 1200.0;
const FRAME_HEIGHT: f64 = 16.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 12.0;
const CHAR_WIDTH: f64 = 7.0;
/// Frames narrower than this (in pixels) are not drawn.
pub const MIN_WIDTH: f64 = 0.1;

/// A frame and the samples of every stack through it.
#[derive(Debug, Default)]
pub struct Node {
    pub samples: u64,
    pub children: BTreeMap<String, Node>,
}

impl Node {
    /// Fold one stack (outermost frame first) with its sample count into the tree.
    pub fn add(&mut self, stack: &[String], samples: u64) {
        self.samples += samples;
        if let Some((first, rest)) = stack.split_first() {
            self.children.entry(first.clone()).or_default().add(rest, samples);
        }
    }

    fn depth(&self) -> usize {
        self.children.values().map(|c| 1 + c.depth()).max().unwrap_or(0)
    }
}

/// `name` without a trailing `::h0123456789abcdef` symbol hash.
pub fn short_name(name: &str) -> &str {
    match name.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head
        }
        _ => name,
    }
}

/// Whether a frame belongs to the profiler's signal handler (the innermost frames of
/// every CPU sample), which the graph leaves out.
fn is_profiler(name: &str) -> bool {
    ["backtrace::", "pprof::", "<pprof::", "<backtrace::"].iter().any(|p| name.starts_with(p))
}

/// One CPU sample's frame names, outermost first, under its thread's name.
pub fn stack_of(thread: String, frames: &[Vec<String>]) -> Vec<String> {
    let handler = frames.iter().take_while(|f| f.iter().all(|n| is_profiler(n))).count();
    let mut stack = vec![thread];
    for symbols in frames[handler..].iter().rev() {
        stack.extend(symbols.iter().rev().map(|n| short_name(n).to_string()));
    }
    stack
}

/// The stacks of a CPU report, outermost first under their thread's name.
pub fn stacks_of(report: &pprof::Report) -> Vec<(Vec<String>, u64)> {
    report
        .data
        .iter()
        .map(|(frames, &count)| {
            let names: Vec<Vec<String>> = frames
                .frames
                .iter()
                .map(|symbols| symbols.iter().map(|s| s.name()).collect())
                .collect();
            (stack_of(frames.thread_name_or_id(), &names), count.max(0) as u64)
        })
        .collect()
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A warm colour picked by the name, stable across renders.
fn colour(name: &str) -> (u8, u8, u8) {
    let h = name
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3));
    (205 + (h % 50) as u8, 80 + ((h >> 8) % 150) as u8, ((h >> 16) % 60) as u8)
}

/// The label of a frame `width` pixels wide: the name, cut to fit with "..".
fn label(name: &str, width: f64) -> Option<String> {
    let fits = ((width - 6.0) / CHAR_WIDTH).floor();
    if fits < 3.0 {
        return None;
    }
    let fits = fits as usize;
    if name.chars().count() <= fits {
        return Some(name.to_string());
    }
    Some(name.chars().take(fits - 2).chain("..".chars()).collect())
}

struct Canvas {
    out: String,
    total: u64,
    height: f64,
}

impl Canvas {
    fn frame(&mut self, name: &str, samples: u64, x: f64, depth: usize, width: f64) {
        let y = self.height - BOTTOM - (depth as f64 + 1.0) * FRAME_HEIGHT;
        let share = 100.0 * samples as f64 / self.total.max(1) as f64;
        let (r, g, b) = colour(name);
        let name_x = escape(name);
        let _ = write!(
            self.out,
            "<g><title>{name_x} ({samples} samples, {share:.2}%)</title>\
             <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{h:.1}\" \
             fill=\"rgb({r},{g},{b})\" rx=\"2\" ry=\"2\"/>",
            h = FRAME_HEIGHT - 1.0
        );
        if let Some(text) = label(name, width) {
            let _ = write!(
                self.out,
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x + 3.0,
                y + FRAME_HEIGHT - 4.5,
                escape(&text)
            );
        }
        self.out.push_str("</g>\n");
    }

    fn node(&mut self, name: &str, node: &Node, x: f64, depth: usize) {
        let width = node.samples as f64 / self.total.max(1) as f64 * (WIDTH - 20.0);
        if width < MIN_WIDTH {
            return;
        }
        self.frame(name, node.samples, x, depth, width);
        let mut child_x = x;
        for (child_name, child) in &node.children {
            self.node(child_name, child, child_x, depth + 1);
            child_x += child.samples as f64 / self.total.max(1) as f64 * (WIDTH - 20.0);
        }
    }
}

/// The SVG flame graph of `stacks` (outermost frame first, with sample counts).
pub fn render(stacks: &[(Vec<String>, u64)], title: &str) -> String {
    let mut root = Node::default();
    for (stack, samples) in stacks {
        root.add(stack, *samples);
    }
    let height = TOP + BOTTOM + (root.depth() as f64 + 1.0) * FRAME_HEIGHT;
    let mut c = Canvas { out: String::with_capacity(64 * 1024), total: root.samples, height };
    let _ = write!(
        c.out,
        "<?xml version=\"1.0\" standalone=\"no\"?>\n\
         <svg version=\"1.1\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" \
         xmlns=\"http://www.w3.org/2000/svg\">\n\
         <style>text {{ font-family: monospace; font-size: 12px; fill: rgb(0,0,0); }} \
         rect:hover {{ stroke: black; stroke-width: 0.5; }}</style>\n\
         <rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"rgb(250,250,240)\"/>\n\
         <text x=\"{:.1}\" y=\"22\" text-anchor=\"middle\" font-size=\"16px\">{}</text>\n",
        WIDTH / 2.0,
        escape(title)
    );
    c.node("all", &root, 10.0, 0);
    c.out.push_str("</svg>\n");
    c.out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn count(hay: &str, needle: &str) -> usize {
        hay.matches(needle).count()
    }

    #[test]
    fn frames_fold_into_a_tree_with_summed_widths() {
        let stacks = vec![
            (stack(&["kapi-worker-0", "kapi::server::conn::serve", "kapi::handler::handle"]), 30),
            (stack(&["kapi-worker-0", "kapi::server::conn::serve", "rustls::read"]), 10),
            (stack(&["kapi-worker-1", "kapi::server::conn::serve"]), 60),
        ];
        let svg = render(&stacks, "CPU");
        assert!(svg.starts_with("<?xml"));
        assert!(svg.trim_end().ends_with("</svg>"));
        // The background, then: all, 2 threads, 2 serve frames, handle, read.
        assert_eq!(count(&svg, "<rect x="), 8);
        assert!(svg.contains("<title>kapi::handler::handle (30 samples, 30.00%)</title>"));
        assert!(svg.contains("<title>all (100 samples, 100.00%)</title>"));
        // The root spans the whole width; a 60% frame is 0.6 of it.
        assert!(svg.contains("width=\"1180.0\""));
        assert!(svg.contains("width=\"708.0\""));
        assert_eq!(count(&svg, "<g>"), count(&svg, "</g>"));
    }

    #[test]
    fn names_are_escaped_and_cut_to_fit() {
        let long = "<alloc::vec::Vec<T> as core::ops::Drop>::drop".to_string();
        let stacks = vec![(vec![long.clone()], 1), (vec!["tiny".to_string()], 999)];
        let svg = render(&stacks, "a & b");
        assert!(svg.contains("a &amp; b"));
        assert!(
            svg.contains("&lt;alloc::vec::Vec&lt;T&gt; as core::ops::Drop&gt;::drop (1 samples")
        );
        assert!(!svg.contains("<alloc::"));
        // The 1-sample frame is ~1.2 px wide: drawn, but without text.
        assert!(!svg.contains("\">&lt;alloc"));
        assert_eq!(label("abcdefghij", 6.0 + 5.0 * CHAR_WIDTH).as_deref(), Some("abc.."));
        assert_eq!(label("abc", 100.0).as_deref(), Some("abc"));
        assert_eq!(label("abc", 10.0), None);
    }

    #[test]
    fn stacks_run_outermost_first_without_the_profiler_handler() {
        let leaf_first = vec![
            stack(&["backtrace::trace", "pprof::profiler::perf_signal_handler"]),
            stack(&["kapi::a::h0123456789abcdef", "kapi::b"]), // a inlined into b
            stack(&["main"]),
        ];
        assert_eq!(
            stack_of("kapi-worker-0".into(), &leaf_first),
            stack(&["kapi-worker-0", "main", "kapi::b", "kapi::a"])
        );
    }

    #[test]
    fn narrow_frames_are_dropped_and_hashes_trimmed() {
        let stacks = vec![(vec!["big".to_string()], 1_000_000), (vec!["small".to_string()], 1)];
        let svg = render(&stacks, "t");
        assert!(!svg.contains("small"));
        assert_eq!(short_name("kapi::a::b::h0123456789abcdef"), "kapi::a::b");
        assert_eq!(short_name("kapi::a::hello"), "kapi::a::hello");
        assert_eq!(render(&[], "empty").matches("<rect").count(), 1);
    }
}
