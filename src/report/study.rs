//! The header (what was run, how to reproduce it) and the participant flow (CONSORT-style:
//! available → each exclusion → included → discovery / held-out).

use super::charts::esc;
use super::folder::{Folder, Tsv};
use super::{Figure, Section};
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub fn header(folder: &Folder) -> Option<Section> {
    let mut body = String::from("<dl class=\"facts\">");
    let mut fact = |k: &str, v: String| {
        let _ = write!(body, "<dt>{}</dt><dd>{v}</dd>", esc(k));
    };
    if let Some(d) = folder.study_description() {
        fact("description", esc(&d));
    }
    fact("study hash", format!("<code>blake3:{}</code>", esc(&folder.lock.study_hash)));
    fact("neurospec", esc(&folder.lock.neurospec_version));
    if let Some(seed) = folder.study_seed() {
        fact("seed", seed.to_string());
    }
    fact("stages", folder.lock.stages.len().to_string());
    if let Some(run) = &folder.run {
        fact("date", esc(&run.date));
        let executed = run.stages.iter().filter(|(_, s)| s == "executed").count();
        fact(
            "last run",
            format!("{executed} stages executed, {} cached, {:.1} s", run.stages.len() - executed, run.wall_seconds),
        );
        fact("reproduce", format!("<code>{}</code>", esc(&run.command)));
    }
    fact("verify", "<code>neurospec verify DERIVATIVES_DIR</code> (reruns in a fresh cache and compares every byte with neurospec.lock)".into());
    body.push_str("</dl><p class=\"links\">");
    for (file, what) in [
        ("study.toml", "study file"),
        ("methods.md", "methods"),
        ("neurospec.lock", "lock"),
        ("ro-crate-metadata.json", "RO-Crate"),
        ("dataset_description.json", "dataset description"),
    ] {
        let _ = write!(body, "<a href=\"{file}\">{what}</a> ");
    }
    body.push_str("</p>");
    if let Some(text) = &folder.study_text {
        let _ = write!(
            body,
            "<details><summary>Study file ({} lines)</summary><pre class=\"study\">{}</pre></details>",
            text.lines().count(),
            esc(text)
        );
    }
    Some(Section { id: "study", title: "Study".into(), body, figures: Vec::new() })
}

/// Counts of the flow, as the report and the methods text use them.
pub struct Flow {
    pub available: Option<usize>,
    /// Per reason, in the file's order.
    pub exclusions: Vec<Exclusion>,
    pub included: Option<usize>,
    /// sample → subjects
    pub samples: BTreeMap<String, usize>,
    /// Subjects without a usable imaging run (from imaging_runs.tsv).
    pub no_imaging: usize,
}

/// Subjects excluded for one reason.
pub struct Exclusion {
    pub reason: String,
    pub subjects: usize,
    /// (column, subjects), most subjects first.
    pub columns: Vec<(String, usize)>,
}

pub fn flow_counts(folder: &Folder) -> Option<Flow> {
    let summary = folder.tsv("exclusion_summary.tsv")?;
    let mut flow =
        Flow { available: None, exclusions: Vec::new(), included: None, samples: BTreeMap::new(), no_imaging: 0 };
    for r in 0..summary.rows.len() {
        let n = summary.value(r, "subjects");
        let n = if n.is_finite() { n as usize } else { 0 };
        match summary.text(r, "reason") {
            "available" => flow.available = Some(n),
            "included" => flow.included = Some(n),
            reason => {
                let column = summary.text(r, "column").to_string();
                match flow.exclusions.iter_mut().find(|e| e.reason == reason) {
                    Some(e) => {
                        e.subjects += n;
                        e.columns.push((column, n));
                    }
                    None => flow.exclusions.push(Exclusion {
                        reason: reason.to_string(),
                        subjects: n,
                        columns: vec![(column, n)],
                    }),
                }
            }
        }
    }
    for e in &mut flow.exclusions {
        e.columns.retain(|(c, _)| !c.is_empty());
        e.columns.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    }
    if let Some(split) = folder.tsv("split.tsv") {
        for r in 0..split.rows.len() {
            *flow.samples.entry(split.text(r, "sample").to_string()).or_insert(0) += 1;
        }
    }
    if let Some(runs) = folder.tsv("imaging_runs.tsv") {
        // A subject with several runs is without imaging only when none of its runs is included.
        let included: Vec<&str> = (0..runs.rows.len())
            .filter(|&r| runs.text(r, "status") == "included")
            .map(|r| runs.text(r, crate::tables::PARTICIPANT_ID))
            .collect();
        let mut subjects: Vec<&str> = (0..runs.rows.len())
            .filter(|&r| runs.text(r, "status").starts_with("excluded"))
            .map(|r| runs.text(r, crate::tables::PARTICIPANT_ID))
            .filter(|s| !included.contains(s))
            .collect();
        subjects.dedup();
        flow.no_imaging = subjects.len();
    }
    Some(flow)
}

/// `a (12), b (3), … (40 columns)` within about `width` characters.
pub fn column_summary(columns: &[(String, usize)], width: usize) -> String {
    let mut out = String::new();
    for (i, (c, n)) in columns.iter().enumerate() {
        let part = format!("{c} ({n})");
        if i > 0 && out.chars().count() + part.chars().count() + 2 > width {
            return format!("{out}, … ({} columns)", columns.len());
        }
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&part);
    }
    out
}

fn flow_svg(flow: &Flow) -> String {
    let w = 720.0;
    let bw = 220.0;
    let cx = 230.0;
    let (side_x, side_w) = (530.0, 360.0);
    let mut y = 10.0;
    let mut s = String::new();
    let mut boxes = String::new();
    let node = |s: &mut String, x: f64, y: f64, w: f64, lines: &[String], class: &str, n: usize| {
        let h = 10.0 + 15.0 * lines.len() as f64;
        let _ = write!(
            s,
            "<g class=\"{class}\" data-n=\"{n}\"><rect x=\"{:.0}\" y=\"{y:.0}\" width=\"{w:.0}\" height=\"{h:.0}\" rx=\"4\" fill=\"#f7f7f7\" stroke=\"#333\"/>",
            x - w / 2.0
        );
        for (i, l) in lines.iter().enumerate() {
            let _ = write!(
                s,
                "<text x=\"{x:.0}\" y=\"{:.0}\" text-anchor=\"middle\">{}</text>",
                y + 17.0 + 15.0 * i as f64,
                esc(l)
            );
        }
        s.push_str("</g>");
        h
    };
    let arrow = |s: &mut String, x1: f64, y1: f64, x2: f64, y2: f64| {
        let _ = write!(
            s,
            "<line x1=\"{x1:.0}\" y1=\"{y1:.0}\" x2=\"{x2:.0}\" y2=\"{y2:.0}\" stroke=\"#333\" marker-end=\"url(#arrow)\"/>"
        );
    };
    let mut top_of_line = y;
    if let Some(n) = flow.available {
        let h = node(&mut boxes, cx, y, bw, &[format!("Available: N = {n}")], "available", n);
        y += h + 24.0;
        top_of_line += h;
    }
    let mut side_y = y - 12.0;
    for Exclusion { reason, subjects: n, columns } in &flow.exclusions {
        let mut lines = vec![format!("Excluded: {reason} (n = {n})")];
        if !columns.is_empty() {
            lines.push(column_summary(columns, 50));
        }
        let lines: Vec<String> = lines.into_iter().map(|l| l.chars().take(52).collect()).collect();
        let h = node(&mut boxes, side_x, side_y, side_w, &lines, "excluded", *n);
        arrow(&mut boxes, cx, side_y + h / 2.0, side_x - side_w / 2.0, side_y + h / 2.0);
        side_y += h + 8.0;
    }
    y = y.max(side_y + 10.0);
    arrow(&mut boxes, cx, top_of_line, cx, y);
    if let Some(n) = flow.included {
        let h = node(&mut boxes, cx, y, bw, &[format!("Included: N = {n}")], "included", n);
        y += h;
    }
    if !flow.samples.is_empty() {
        let k = flow.samples.len() as f64;
        for (i, (sample, n)) in flow.samples.iter().enumerate() {
            let x = cx + (i as f64 - (k - 1.0) / 2.0) * 230.0;
            arrow(&mut boxes, cx, y, x, y + 30.0);
            node(&mut boxes, x, y + 30.0, 210.0, &[format!("{sample}: n = {n}")], "sample", *n);
        }
        y += 30.0 + 25.0;
    }
    let h = y + 12.0;
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" font-family=\"sans-serif\" font-size=\"12\">\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#333\"/></marker></defs>\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>{boxes}</svg>"
    );
    s
}

pub fn flow(folder: &Folder) -> Option<Section> {
    let flow = flow_counts(folder)?;
    let mut body = String::new();
    if flow.no_imaging > 0 {
        let _ = write!(
            body,
            "<p>{} subject(s) had no usable imaging run (see Imaging QC) and are not in the dataset.</p>",
            flow.no_imaging
        );
    }
    if let Some(list) = folder.tsv("exclusions.tsv") {
        body.push_str(&details_table(&list, "Every excluded subject (exclusions.tsv)", 200));
    }
    let svg = flow_svg(&flow);
    Some(Section {
        id: "flow",
        title: "Participant flow".into(),
        body,
        figures: vec![Figure {
            name: "participant_flow".into(),
            caption: "Participant flow (exclusion_summary.tsv, split.tsv)".into(),
            svg,
        }],
    })
}

/// A TSV as an HTML table (first `limit` rows), optionally collapsed.
pub fn table_html(tsv: &Tsv, limit: usize, class: &str) -> String {
    let mut s = format!("<table class=\"{class}\"><thead><tr>");
    for h in &tsv.header {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>");
    for row in tsv.rows.iter().take(limit) {
        s.push_str("<tr>");
        for cell in row {
            let shown = match cell.parse::<f64>() {
                Ok(v) if cell.contains('.') && v.is_finite() => format_number(v),
                _ => esc(cell),
            };
            let _ = write!(s, "<td>{shown}</td>");
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    if tsv.rows.len() > limit {
        let _ = write!(s, "<p class=\"note\">{} more rows in the file.</p>", tsv.rows.len() - limit);
    }
    s
}

pub fn details_table(tsv: &Tsv, summary: &str, limit: usize) -> String {
    format!(
        "<details><summary>{} ({} rows)</summary>{}</details>",
        esc(summary),
        tsv.rows.len(),
        table_html(tsv, limit, "data")
    )
}

/// Four significant digits, scientific for very small magnitudes.
pub fn format_number(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() < 1e-3 {
        format!("{v:.2e}")
    } else {
        let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
        format!("{v:.digits$}")
    }
}
