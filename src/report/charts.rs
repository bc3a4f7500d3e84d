//! Figures as standalone SVG strings. Axis charts (scatter, lines, histogram) use plotters' SVG
//! backend (text is written as `<text>`, so no system font is needed); the heatmap and the forest
//! plot are drawn directly because each cell / row carries its data (`data-row`, `data-col`,
//! `data-value`) so that a reader's tools and the tests can check a figure against its table.

use plotters::prelude::*;
use std::fmt::Write as _;

pub const BLUE: RGBColor = RGBColor(31, 119, 180);
pub const ORANGE: RGBColor = RGBColor(255, 127, 14);
pub const GREEN: RGBColor = RGBColor(44, 160, 44);
pub const RED: RGBColor = RGBColor(214, 39, 40);
pub const GREY: RGBColor = RGBColor(127, 127, 127);
pub const PALETTE: [RGBColor; 5] = [BLUE, ORANGE, GREEN, RED, RGBColor(148, 103, 189)];

/// Escape text for XML / HTML.
pub fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Add `data-*` attributes to the root `<svg>` element, so that a figure carries the numbers it
/// shows and can be checked against the published tables.
pub fn annotate(svg: &str, attributes: &[(&str, String)]) -> String {
    let extra: String = attributes.iter().map(|(k, v)| format!(" {k}=\"{}\"", esc(v))).collect();
    match svg.find("<svg") {
        Some(at) => format!("{}<svg{extra}{}", &svg[..at], &svg[at + 4..]),
        None => svg.to_string(),
    }
}

fn finite_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        return (lo - 0.5, hi + 0.5);
    }
    let pad = 0.05 * (hi - lo);
    (lo - pad, hi + pad)
}

/// One line or point set of an axis chart.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    /// Draw points (true) or a line (false).
    pub dots: bool,
    pub dashed: bool,
}

pub struct Axes<'a> {
    pub title: &'a str,
    pub x: &'a str,
    pub y: &'a str,
    /// Draw the identity line y = x.
    pub identity: bool,
    /// Fixed ranges (else from the data).
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
    /// Vertical reference lines (value, label).
    pub vlines: Vec<(f64, String)>,
    /// Horizontal reference lines (value, label).
    pub hlines: Vec<(f64, String)>,
}

impl<'a> Axes<'a> {
    pub fn new(title: &'a str, x: &'a str, y: &'a str) -> Self {
        Axes { title, x, y, identity: false, x_range: None, y_range: None, vlines: Vec::new(), hlines: Vec::new() }
    }
}

/// A scatter / line chart of several series.
pub fn xy(axes: &Axes<'_>, series: &[Series]) -> String {
    let all = || series.iter().flat_map(|s| s.points.iter());
    let mut xs =
        axes.x_range.unwrap_or_else(|| finite_range(all().map(|p| p.0).chain(axes.vlines.iter().map(|v| v.0))));
    let mut ys =
        axes.y_range.unwrap_or_else(|| finite_range(all().map(|p| p.1).chain(axes.hlines.iter().map(|v| v.0))));
    if axes.identity {
        let (lo, hi) = (xs.0.min(ys.0), xs.1.max(ys.1));
        xs = (lo, hi);
        ys = (lo, hi);
    }
    let mut svg = String::new();
    let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
        let root = SVGBackend::with_string(&mut svg, (480, 340)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(axes.title, ("sans-serif", 15))
            .margin(12)
            .x_label_area_size(38)
            .y_label_area_size(52)
            .build_cartesian_2d(xs.0..xs.1, ys.0..ys.1)?;
        chart
            .configure_mesh()
            .x_desc(axes.x)
            .y_desc(axes.y)
            // Only the labelled grid lines: plotters' light mesh (~170 lines per chart, drawn
            // white on white before) would be most of every chart's bytes.
            .max_light_lines(0)
            .bold_line_style(RGBColor(230, 230, 230))
            .label_style(("sans-serif", 11))
            .draw()?;
        if axes.identity {
            chart.draw_series(DashedLineSeries::new(vec![(xs.0, xs.0), (xs.1, xs.1)], 4, 3, GREY.into()))?;
        }
        for (v, label) in &axes.vlines {
            chart.draw_series(DashedLineSeries::new(vec![(*v, ys.0), (*v, ys.1)], 5, 3, RED.stroke_width(2)))?;
            chart.draw_series(std::iter::once(Text::new(
                label.clone(),
                (*v, ys.1),
                ("sans-serif", 11).into_font().color(&RED),
            )))?;
        }
        for (v, label) in &axes.hlines {
            chart.draw_series(DashedLineSeries::new(vec![(xs.0, *v), (xs.1, *v)], 5, 3, GREY.into()))?;
            chart.draw_series(std::iter::once(Text::new(
                label.clone(),
                (xs.0, *v),
                ("sans-serif", 11).into_font().color(&GREY),
            )))?;
        }
        let mut legend = false;
        for s in series {
            let color = s.color;
            let points = s.points.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite());
            let drawn = if s.dots {
                chart.draw_series(points.map(|p| Circle::new(p, 3, color.mix(0.7).filled())))?
            } else if s.dashed {
                chart.draw_series(DashedLineSeries::new(points.collect::<Vec<_>>(), 6, 4, color.stroke_width(2)))?
            } else {
                chart.draw_series(LineSeries::new(points, color.stroke_width(2)))?
            };
            if !s.name.is_empty() {
                legend = true;
                drawn
                    .label(s.name.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
            }
        }
        if legend {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.85))
                .border_style(GREY)
                .label_font(("sans-serif", 11))
                .draw()?;
        }
        root.present()?;
        Ok(())
    })();
    if let Err(e) = drawn {
        return format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\"><text x=\"4\" y=\"14\">figure failed: {}</text></svg>",
            esc(&e.to_string())
        );
    }
    svg
}

/// A histogram of `values` in `bins` bins, with optional marked values.
pub fn histogram(axes: &Axes<'_>, values: &[f64], bins: usize) -> String {
    let (lo, hi) =
        axes.x_range.unwrap_or_else(|| finite_range(values.iter().copied().chain(axes.vlines.iter().map(|v| v.0))));
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for v in values.iter().filter(|v| v.is_finite()) {
        counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
    }
    let mut points = Vec::with_capacity(2 * bins + 2);
    points.push((lo, 0.0));
    for (b, &c) in counts.iter().enumerate() {
        points.push((lo + b as f64 * width, c as f64));
        points.push((lo + (b + 1) as f64 * width, c as f64));
    }
    points.push((hi, 0.0));
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.08;
    let axes = Axes {
        x_range: Some((lo, hi)),
        y_range: Some((0.0, top)),
        vlines: axes.vlines.clone(),
        hlines: Vec::new(),
        ..*axes
    };
    xy(&axes, &[Series { name: String::new(), points, color: BLUE, dots: false, dashed: false }])
}

/// Colour of a value in a diverging blue–white–red map over [-limit, limit].
pub fn diverging(value: f64, limit: f64) -> String {
    if !value.is_finite() {
        return "#dddddd".into();
    }
    let t = (value / limit).clamp(-1.0, 1.0);
    let (r, g, b) = if t >= 0.0 {
        (255.0 - t * (255.0 - 178.0), 255.0 - t * (255.0 - 24.0), 255.0 - t * (255.0 - 43.0))
    } else {
        let t = -t;
        (255.0 - t * (255.0 - 33.0), 255.0 - t * (255.0 - 102.0), 255.0 - t * (255.0 - 172.0))
    };
    format!("#{:02x}{:02x}{:02x}", r as u8, g as u8, b as u8)
}

/// A heatmap of a rows × columns matrix in a symmetric diverging colour map; each cell carries
/// `data-row`, `data-col` and `data-value`.
pub fn heatmap(title: &str, rows: &[String], cols: &[String], values: &[Vec<f64>]) -> String {
    let cell = if rows.len().max(cols.len()) > 30 { 10.0 } else { 22.0 };
    let left = 8.0 + 6.5 * rows.iter().map(|r| r.chars().count()).max().unwrap_or(4) as f64;
    let top_labels = 8.0 + 6.0 * cols.iter().map(|c| c.chars().count()).max().unwrap_or(4) as f64;
    let top = 28.0 + top_labels;
    let width = (left + cell * cols.len() as f64 + 90.0).max(16.0 + 7.5 * title.chars().count() as f64);
    let height = top + cell * rows.len() as f64 + 16.0;
    let limit = values.iter().flatten().filter(|v| v.is_finite()).fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\" font-size=\"11\">\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/><text x=\"{:.0}\" y=\"16\" font-size=\"14\" text-anchor=\"middle\">{}</text>",
        width / 2.0,
        esc(title)
    );
    for (c, name) in cols.iter().enumerate() {
        let x = left + cell * (c as f64 + 0.5);
        let _ = write!(s, "<text transform=\"translate({x:.1},{:.1}) rotate(-60)\">{}</text>", top - 4.0, esc(name));
    }
    for (r, name) in rows.iter().enumerate() {
        let y = top + cell * (r as f64 + 0.7);
        let _ = write!(s, "<text x=\"{:.1}\" y=\"{y:.1}\" text-anchor=\"end\">{}</text>", left - 4.0, esc(name));
        for (c, v) in values[r].iter().enumerate() {
            let _ = write!(
                s,
                "<rect class=\"cell\" x=\"{:.1}\" y=\"{:.1}\" width=\"{cell}\" height=\"{cell}\" fill=\"{}\" data-row=\"{}\" data-col=\"{}\" data-value=\"{v}\"><title>{} × {}: {v:.4}</title></rect>",
                left + cell * c as f64,
                top + cell * r as f64,
                diverging(*v, limit),
                esc(name),
                esc(&cols[c]),
                esc(name),
                esc(&cols[c]),
            );
        }
    }
    // Colour bar.
    let bx = left + cell * cols.len() as f64 + 20.0;
    for i in 0..20 {
        let v = limit * (1.0 - i as f64 / 9.5);
        let _ = write!(
            s,
            "<rect x=\"{bx}\" y=\"{:.1}\" width=\"14\" height=\"6\" fill=\"{}\"/>",
            top + 6.0 * i as f64,
            diverging(v, limit)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{:.0}\" y=\"{:.0}\">{limit:.3}</text><text x=\"{:.0}\" y=\"{:.0}\">{:.3}</text></svg>",
        bx + 18.0,
        top + 8.0,
        bx + 18.0,
        top + 120.0,
        -limit
    );
    s
}

/// One row of a forest plot.
pub struct ForestRow {
    pub label: String,
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

/// A forest plot: estimate and interval per row, a dashed line at `reference` (0 for effects,
/// 0.5 for AUCs).
pub fn forest(title: &str, x_label: &str, rows: &[ForestRow], reference: f64) -> String {
    let left = 10.0 + 6.5 * rows.iter().map(|r| r.label.chars().count()).max().unwrap_or(4).min(48) as f64;
    let plot_w = 300.0;
    let row_h = 16.0;
    let top = 30.0;
    let height = top + row_h * rows.len() as f64 + 40.0;
    let width = left + plot_w + 20.0;
    let (lo, hi) = finite_range(rows.iter().flat_map(|r| [r.low, r.high, r.estimate, reference]));
    let x = |v: f64| left + (v - lo) / (hi - lo) * plot_w;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\" font-size=\"11\">\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/><text x=\"{:.0}\" y=\"16\" font-size=\"14\" text-anchor=\"middle\">{}</text>\
         <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{top}\" y2=\"{:.1}\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>",
        width / 2.0,
        esc(title),
        x(reference),
        x(reference),
        height - 36.0
    );
    for (i, r) in rows.iter().enumerate() {
        let y = top + row_h * (i as f64 + 0.5);
        let label: String = r.label.chars().take(48).collect();
        let _ = write!(
            s,
            "<g class=\"row\" data-label=\"{}\" data-value=\"{}\"><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            esc(&r.label),
            r.estimate,
            left - 6.0,
            y + 4.0,
            esc(&label),
        );
        // A missing interval or estimate (NaN in the table) is not drawn.
        if r.low.is_finite() && r.high.is_finite() {
            let _ = write!(
                s,
                "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#1f77b4\" stroke-width=\"1.5\"/>",
                x(r.low),
                x(r.high)
            );
        }
        if r.estimate.is_finite() {
            let _ = write!(s, "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"#1f77b4\"/>", x(r.estimate));
        }
        s.push_str("</g>");
    }
    let axis_y = height - 34.0;
    let _ = write!(
        s,
        "<line x1=\"{left:.1}\" x2=\"{:.1}\" y1=\"{axis_y}\" y2=\"{axis_y}\" stroke=\"black\"/>",
        left + plot_w
    );
    for k in 0..=4 {
        let v = lo + (hi - lo) * k as f64 / 4.0;
        let _ = write!(s, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{v:.3}</text>", x(v), axis_y + 14.0);
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text></svg>",
        left + plot_w / 2.0,
        axis_y + 30.0,
        esc(x_label)
    );
    s
}
