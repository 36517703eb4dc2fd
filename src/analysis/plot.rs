//! Hand-written SVG figures: the weight histogram with the fitted densities (thesis Figure
//! 3.3) and rate–distortion curves (Figures 3.6–3.11). No plotting crate: axes, ticks, polylines
//! and a legend are emitted directly.
use std::fmt::Write;

use super::fit::DistributionFit;
use super::sweep::Point;

const W: f64 = 900.0;
const H: f64 = 560.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 230.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

/// Line colours (Tableau 10) and dash patterns, cycled.
const COLORS: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];
const DASHES: [&str; 3] = ["", "6,3", "2,2"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// About `n` round tick values covering [lo, hi].
pub fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !lo.is_finite() || !hi.is_finite() || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

fn label(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// A plot area mapping data coordinates to pixels.
struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    log_y: bool,
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        LEFT + (x - self.x0) / (self.x1 - self.x0) * (W - LEFT - RIGHT)
    }
    fn py(&self, y: f64) -> f64 {
        let (y, y0, y1) = if self.log_y {
            (y.log10(), self.y0.log10(), self.y1.log10())
        } else {
            (y, self.y0, self.y1)
        };
        H - BOTTOM - (y - y0) / (y1 - y0) * (H - TOP - BOTTOM)
    }

    /// Opens the SVG and draws title, axes, ticks, grid and the clip path `plot`.
    fn open(&self, title: &str, xlabel: &str, ylabel: &str) -> String {
        let mut s = String::new();
        let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<defs><clipPath id="plot"><rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}"/></clipPath></defs>
<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>
"#,
            LEFT + pw / 2.0,
            esc(title)
        );
        for t in ticks(self.x0, self.x1, 8) {
            let x = self.px(t);
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                H - BOTTOM,
                H - BOTTOM + 16.0,
                label(t)
            );
        }
        let yt: Vec<f64> = if self.log_y {
            let (a, b) = (
                self.y0.log10().floor() as i32,
                self.y1.log10().ceil() as i32,
            );
            (a..=b)
                .map(|e| 10f64.powi(e))
                .filter(|v| *v >= self.y0 && *v <= self.y1)
                .collect()
        } else {
            ticks(self.y0, self.y1, 6)
        };
        for t in yt {
            let y = self.py(t);
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                W - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                label(t)
            );
        }
        let _ = write!(
            s,
            r#"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="black"/>
<text x="{}" y="{}" text-anchor="middle">{}</text>
<text transform="translate(18,{}) rotate(-90)" text-anchor="middle">{}</text>
"#,
            LEFT + pw / 2.0,
            H - 18.0,
            esc(xlabel),
            TOP + ph / 2.0,
            esc(ylabel)
        );
        s
    }
}

fn legend(s: &mut String, i: usize, text: &str, color: &str, dash: &str) {
    let (x, y) = (W - RIGHT + 14.0, TOP + 10.0 + 18.0 * i as f64);
    let _ = writeln!(
        s,
        r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/><text x="{}" y="{}">{}</text>"#,
        x + 24.0,
        x + 30.0,
        y + 4.0,
        esc(text)
    );
}

fn polyline(s: &mut String, pts: &[(f64, f64)], color: &str, dash: &str, markers: bool) {
    if pts.is_empty() {
        return;
    }
    let p: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.2},{y:.2}")).collect();
    let _ = writeln!(
        s,
        r#"<polyline clip-path="url(#plot)" points="{}" fill="none" stroke="{color}" stroke-width="1.8" stroke-dasharray="{dash}"/>"#,
        p.join(" ")
    );
    if markers {
        for (x, y) in pts {
            let _ = writeln!(
                s,
                r#"<circle clip-path="url(#plot)" cx="{x:.2}" cy="{y:.2}" r="2.5" fill="{color}"/>"#
            );
        }
    }
}

/// The histogram of the weights (bars, density units, linear y) over its window (mean ± k·σ)
/// with every fitted density, ranked in the legend by D_KL.
pub fn histogram_svg(fit: &DistributionFit, title: &str) -> String {
    let h = &fit.histogram;
    let top = (0..h.bins()).map(|i| h.density(i)).fold(0.0, f64::max);
    let f = Frame {
        x0: h.lo,
        x1: h.hi,
        y0: 0.0,
        y1: if top > 0.0 { top * 1.15 } else { 1.0 },
        log_y: false,
    };
    let mut s = f.open(title, "weight value", "density");
    // The bars as one filled step outline.
    let base = H - BOTTOM;
    let mut d = format!("M{:.2},{base:.2}", f.px(h.lo));
    for i in 0..h.bins() {
        let y = f.py(h.density(i));
        let _ = write!(
            d,
            " L{:.2},{y:.2} L{:.2},{y:.2}",
            f.px(h.edge(i)),
            f.px(h.edge(i + 1))
        );
    }
    let _ = write!(d, " L{:.2},{base:.2} Z", f.px(h.hi));
    let _ = writeln!(
        s,
        r##"<path d="{d}" fill="#c8c8c8" stroke="#a0a0a0" stroke-width="0.5"/>"##
    );
    legend(&mut s, 0, "histogram", "#c8c8c8", "");
    let n = 480;
    for (rank, &i) in fit.by_kl.iter().enumerate() {
        let d = &fit.fits[i];
        let (color, dash) = (COLORS[rank % COLORS.len()], DASHES[rank / COLORS.len() % 3]);
        let pts: Vec<(f64, f64)> = (0..=n)
            .map(|k| {
                let x = h.lo + (h.hi - h.lo) * k as f64 / n as f64;
                let y = d.density.pdf(x);
                // Clip far above the frame (a gamma pdf with shape < 1 is infinite at 0).
                let y = if y.is_finite() {
                    y.min(f.y1 * 3.0)
                } else {
                    f.y1 * 3.0
                };
                (f.px(x), f.py(y))
            })
            .collect();
        polyline(&mut s, &pts, color, dash, false);
        let text = format!(
            "{} (KL #{}, SSE #{})",
            d.candidate.name(),
            rank + 1,
            fit.by_sse.iter().position(|&j| j == i).unwrap_or(0) + 1
        );
        legend(&mut s, rank + 1, &text, color, dash);
    }
    s.push_str("</svg>\n");
    s
}

/// What the y axis of a rate–distortion plot shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdAxis {
    /// Weight MSE, log scale.
    Mse,
    /// The task metric, linear, with the original model's value as a dashed line.
    Metric,
}

/// Rate (model-wide entropy H, bits/weight) against distortion, one polyline per quantizer
/// family and mode (`Setting::curve`), as in Figures 3.6–3.11.
pub fn rate_distortion_svg(
    points: &[Point],
    axis: RdAxis,
    original_metric: Option<f64>,
    title: &str,
) -> String {
    let y_of = |p: &Point| match axis {
        RdAxis::Mse => Some(p.mse).filter(|v| *v > 0.0 && v.is_finite()),
        RdAxis::Metric => p.metric.filter(|v| v.is_finite()),
    };
    let usable: Vec<(&Point, f64)> = points
        .iter()
        .filter(|p| p.entropy.is_finite())
        .filter_map(|p| y_of(p).map(|y| (p, y)))
        .collect();
    let xs = usable.iter().map(|(p, _)| p.entropy);
    let (mut x0, mut x1) = (0.0f64, xs.fold(1.0f64, f64::max));
    x1 *= 1.03;
    let mut ys: Vec<f64> = usable.iter().map(|u| u.1).collect();
    if let (RdAxis::Metric, Some(m)) = (axis, original_metric) {
        ys.push(m);
    }
    let (mut y0, mut y1) = ys
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if !y0.is_finite() {
        (y0, y1) = (0.0, 1.0);
    }
    let log_y = axis == RdAxis::Mse;
    if log_y {
        y0 = 10f64.powf(y0.log10().floor());
        y1 = 10f64.powf(y1.log10().ceil());
        if y1 <= y0 {
            y1 = y0 * 10.0;
        }
    } else {
        let pad = ((y1 - y0) * 0.05).max(1e-9);
        (y0, y1) = (y0 - pad, y1 + pad);
    }
    if x1 <= x0 {
        (x0, x1) = (0.0, 1.0);
    }
    let f = Frame {
        x0,
        x1,
        y0,
        y1,
        log_y,
    };
    let ylabel = match axis {
        RdAxis::Mse => "weight MSE (log scale)",
        RdAxis::Metric => "task metric",
    };
    let mut s = f.open(
        title,
        "order-0 entropy H of the quantized weights (bits/weight)",
        ylabel,
    );
    // Colour by quantizer, dash pattern by mode (thesis solid, thesis-w dashed, per-channel
    // dotted).
    let mut families: Vec<String> = Vec::new();
    let mut curves: Vec<(String, String, &'static str)> = Vec::new();
    for (p, _) in &usable {
        let fam = p.setting.family_label();
        if !families.contains(&fam) {
            families.push(fam.clone());
        }
        let c = p.setting.curve();
        if !curves.iter().any(|x| x.0 == c) {
            curves.push((c, fam, p.setting.mode_name()));
        }
    }
    let mut row = 0;
    if let (RdAxis::Metric, Some(m)) = (axis, original_metric) {
        let y = f.py(m);
        let _ = writeln!(
            s,
            r#"<line x1="{LEFT}" y1="{y:.2}" x2="{:.2}" y2="{y:.2}" stroke="black" stroke-dasharray="4,4"/>"#,
            W - RIGHT
        );
        legend(&mut s, 0, "original model", "black", "4,4");
        row = 1;
    }
    for (i, (c, fam, mode)) in curves.iter().enumerate() {
        let mut pts: Vec<(f64, f64)> = usable
            .iter()
            .filter(|(p, _)| &p.setting.curve() == c)
            .map(|(p, y)| (p.entropy, *y))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let px: Vec<(f64, f64)> = pts.iter().map(|(x, y)| (f.px(*x), f.py(*y))).collect();
        let k = families.iter().position(|x| x == fam).unwrap_or(0);
        let color = COLORS[k % COLORS.len()];
        let dash = match *mode {
            "thesis" => DASHES[0],
            "thesis-w" => DASHES[1],
            _ => DASHES[2],
        };
        polyline(&mut s, &px, color, dash, true);
        legend(&mut s, row + i, c, color, dash);
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_values() {
        let t = ticks(0.0, 1.0, 5);
        assert_eq!(t.len(), 6);
        assert!((t[3] - 0.6).abs() < 1e-12 && t[5] == 1.0);
        let t = ticks(-0.37, 0.52, 8);
        assert_eq!(t.len(), 4);
        assert!(t.first().unwrap() >= &-0.37 && t.last().unwrap() <= &0.52);
        assert_eq!(label(0.25), "0.25");
        assert_eq!(label(2e-5), "2.0e-5");
    }

    #[test]
    fn histogram_figure_is_svg() {
        let v: Vec<f64> = (0..5000)
            .map(|i| ((i as f64) * 0.618).fract() - 0.5)
            .collect();
        let fit = super::super::fit::fit_all(&v, Some(50), 6.0);
        let svg = histogram_svg(&fit, "test <model>");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("test &lt;model&gt;") && svg.contains("laplace"));
        assert_eq!(svg.matches("<polyline").count(), fit.fits.len());
    }
}
