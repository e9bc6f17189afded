//! Hand-drawn SVG charts for the HTML report: a line chart of one or more series and a bar
//! chart, each with axes, a few ticks and a title. Plain strings, no scripts, no assets.

use std::fmt::Write as _;

/// Size of every chart, pixels.
pub const WIDTH: f64 = 640.0;
pub const HEIGHT: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 40.0;
/// Colours of successive series.
const COLOURS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// Escape text for XML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A short number for a tick label.
pub fn tick_label(v: f64) -> String {
    match v.abs() {
        a if a >= 1e9 => format!("{:.1}G", v / 1e9),
        a if a >= 1e6 => format!("{:.1}M", v / 1e6),
        a if a >= 1e4 => format!("{:.0}k", v / 1e3),
        a if a >= 100.0 || a == 0.0 => format!("{v:.0}"),
        a if a >= 1.0 => format!("{v:.1}"),
        _ => format!("{v:.3}"),
    }
}

/// A round upper bound at or above `v` (1, 2 or 5 times a power of ten).
pub fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * p).find(|m| *m >= v).unwrap_or(10.0 * p)
}

fn open(out: &mut String, title: &str) {
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}"><rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#fff"/><text x="{}" y="18" font-size="14" text-anchor="middle" font-family="sans-serif">{}</text>"##,
        WIDTH / 2.0,
        escape(title)
    );
}

/// Axes with 5 y ticks up to `ymax`, and the axis labels.
fn axes(out: &mut String, ymax: f64, x_label: &str, y_label: &str) {
    let (x0, y0, x1) = (LEFT, HEIGHT - BOTTOM, WIDTH - RIGHT);
    let _ = write!(out, r##"<path d="M{x0} {TOP}V{y0}H{x1}" stroke="#333" fill="none"/>"##);
    for i in 0..=4 {
        let v = ymax * f64::from(i) / 4.0;
        let y = y_of(v, ymax);
        let _ = write!(
            out,
            r##"<path d="M{} {y:.1}H{x1}" stroke="#ddd"/><text x="{}" y="{:.1}" font-size="10" text-anchor="end" font-family="sans-serif">{}</text>"##,
            x0,
            x0 - 4.0,
            y + 3.0,
            tick_label(v)
        );
    }
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" font-size="11" text-anchor="middle" font-family="sans-serif">{}</text><text x="12" y="{}" font-size="11" text-anchor="middle" font-family="sans-serif" transform="rotate(-90 12 {})">{}</text>"#,
        (x0 + x1) / 2.0,
        HEIGHT - 6.0,
        escape(x_label),
        (TOP + y0) / 2.0,
        (TOP + y0) / 2.0,
        escape(y_label)
    );
}

fn y_of(v: f64, ymax: f64) -> f64 {
    let h = HEIGHT - BOTTOM - TOP;
    HEIGHT - BOTTOM - (v / ymax).clamp(0.0, 1.0) * h
}

/// A line chart of named series of (x, y) points.
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> String {
    let pts = series.iter().flat_map(|(_, p)| p.iter());
    let (xmax, ymax) = pts.fold((0f64, 0f64), |(x, y), p| (x.max(p.0), y.max(p.1)));
    let (xmax, ymax) = (nice_max(xmax), nice_max(ymax));
    let mut out = String::new();
    open(&mut out, title);
    axes(&mut out, ymax, x_label, y_label);
    let w = WIDTH - LEFT - RIGHT;
    for i in 0..=4 {
        let v = xmax * f64::from(i) / 4.0;
        let x = LEFT + w * v / xmax;
        let _ = write!(
            out,
            r#"<text x="{x:.1}" y="{}" font-size="10" text-anchor="middle" font-family="sans-serif">{}</text>"#,
            HEIGHT - BOTTOM + 14.0,
            tick_label(v)
        );
    }
    for (n, (name, points)) in series.iter().enumerate() {
        let colour = COLOURS[n % COLOURS.len()];
        let mut d = String::new();
        for (k, (x, y)) in points.iter().enumerate() {
            let cmd = if k == 0 { 'M' } else { 'L' };
            let _ = write!(d, "{cmd}{:.1} {:.1}", LEFT + w * x / xmax, y_of(*y, ymax));
        }
        if !d.is_empty() {
            let _ = write!(
                out,
                r#"<path class="series" d="{d}" stroke="{colour}" stroke-width="2" fill="none"/>"#
            );
        }
        legend(&mut out, n, name, colour);
    }
    out.push_str("</svg>");
    out
}

fn legend(out: &mut String, n: usize, name: &str, colour: &str) {
    let y = TOP + 4.0 + 14.0 * n as f64;
    let x = WIDTH - RIGHT - 150.0;
    let _ = write!(
        out,
        r#"<rect x="{x}" y="{y}" width="10" height="10" fill="{colour}"/><text x="{}" y="{}" font-size="11" font-family="sans-serif">{}</text>"#,
        x + 14.0,
        y + 9.0,
        escape(name)
    );
}

/// A bar chart: one bar per label, grouped by series when there are several.
pub fn bar_chart(
    title: &str,
    y_label: &str,
    labels: &[String],
    series: &[(String, Vec<f64>)],
) -> String {
    let ymax = nice_max(series.iter().flat_map(|(_, v)| v.iter()).copied().fold(0.0, f64::max));
    let mut out = String::new();
    open(&mut out, title);
    axes(&mut out, ymax, "", y_label);
    let slot = (WIDTH - LEFT - RIGHT) / labels.len().max(1) as f64;
    let bar = slot * 0.8 / series.len().max(1) as f64;
    for (i, label) in labels.iter().enumerate() {
        let x = LEFT + slot * i as f64;
        let every = labels.len().div_ceil(12).max(1);
        if i % every == 0 {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle" font-family="sans-serif">{}</text>"#,
                x + slot / 2.0,
                HEIGHT - BOTTOM + 14.0,
                escape(label)
            );
        }
        for (n, (_, values)) in series.iter().enumerate() {
            let v = values.get(i).copied().unwrap_or(0.0);
            let y = y_of(v, ymax);
            let _ = write!(
                out,
                r#"<rect class="bar" x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"#,
                x + slot * 0.1 + bar * n as f64,
                bar.max(1.0),
                (HEIGHT - BOTTOM - y).max(0.0),
                COLOURS[n % COLOURS.len()]
            );
        }
    }
    if series.len() > 1 {
        for (n, (name, _)) in series.iter().enumerate() {
            legend(&mut out, n, name, COLOURS[n % COLOURS.len()]);
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_bounds_and_labels() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(3.2), 5.0);
        assert_eq!(nice_max(120.0), 200.0);
        assert_eq!(nice_max(1000.0), 1000.0);
        assert_eq!(tick_label(2_500_000.0), "2.5M");
        assert_eq!(tick_label(0.25), "0.250");
        assert_eq!(escape("a<b&\"c\""), "a&lt;b&amp;&quot;c&quot;");
    }

    #[test]
    fn line_chart_draws_each_series_in_bounds() {
        let s = vec![("a<1>".to_owned(), vec![(0.0, 1.0), (1.0, 3.0), (2.0, 2.0)])];
        let svg = line_chart("t", "s", "ops", &s);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("class=\"series\"").count(), 1);
        assert!(svg.contains("a&lt;1&gt;"));
        let d = svg.split("class=\"series\" d=\"").nth(1).unwrap().split('"').next().unwrap();
        for pair in d.split(['M', 'L']).filter(|p| !p.is_empty()) {
            let mut xy = pair.split(' ').map(|v| v.parse::<f64>().unwrap());
            let (x, y) = (xy.next().unwrap(), xy.next().unwrap());
            assert!((LEFT..=WIDTH).contains(&x) && (0.0..=HEIGHT).contains(&y), "{pair}");
        }
    }

    #[test]
    fn bar_chart_has_a_bar_per_value() {
        let labels: Vec<String> = ["p50", "p99"].map(String::from).into();
        let svg = bar_chart(
            "lat",
            "ms",
            &labels,
            &[("A".into(), vec![1.0, 4.0]), ("B".into(), vec![2.0, 8.0])],
        );
        assert_eq!(svg.matches("class=\"bar\"").count(), 4);
        assert!(svg.contains(">A<") && svg.contains(">B<"), "legend with two series");
        let empty = bar_chart("none", "ms", &[], &[]);
        assert!(empty.ends_with("</svg>"));
    }
}
