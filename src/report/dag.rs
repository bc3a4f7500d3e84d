//! The provenance section: the stage graph drawn as SVG (layout-rs, a pure-Rust Graphviz-like
//! layered layout) and a table of every stage with its fingerprint, time and outcome.
//!
//! Edges come from the provenance records (`stage:<id>/<output>` inputs), not from the plan, so
//! the drawing shows what was recorded. Stage kinds with many instances (one per imaging run)
//! are drawn as one node `kind ×N` and summarised in one table row: a 500-subject study stays a
//! readable graph and a small file.

use super::charts::esc;
use super::folder::Folder;
use layout::backends::svg::SVGWriter;
use layout::core::base::Orientation;
use layout::core::geometry::Point;
use layout::core::style::StyleAttr;
use layout::std_shapes::shapes::{Arrow, Element, ShapeKind};
use layout::topo::layout::VisualGraph;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Instances of one kind above which the kind is drawn and listed as one group.
const GROUP_ABOVE: usize = 8;

/// The node a stage is drawn as: its id, or `kind ×N` for a many-instance kind.
fn node_key(folder: &Folder, counts: &BTreeMap<String, usize>, id: &str) -> String {
    let kind = folder.records.get(id).map_or("", |r| r.kind.as_str());
    match counts.get(kind) {
        Some(&n) if n > GROUP_ABOVE => format!("{kind} ×{n}"),
        _ => id.to_string(),
    }
}

fn kind_counts(folder: &Folder) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for s in &folder.lock.stages {
        *counts.entry(s.kind.clone()).or_insert(0) += 1;
    }
    counts
}

/// Outcome of a stage in the last run (`executed`, `cached`, or `unknown` without run.json).
fn outcomes(folder: &Folder) -> BTreeMap<&str, &str> {
    folder.run.iter().flat_map(|r| r.stages.iter().map(|(id, o)| (id.as_str(), o.as_str()))).collect()
}

/// The stage graph as SVG.
pub fn graph_svg(folder: &Folder) -> String {
    let counts = kind_counts(folder);
    let outcome = outcomes(folder);
    let mut nodes: Vec<(String, bool)> = Vec::new();
    let mut edges = BTreeSet::new();
    for s in &folder.lock.stages {
        let key = node_key(folder, &counts, &s.id);
        let executed = outcome.get(s.id.as_str()) == Some(&"executed");
        match nodes.iter_mut().find(|(k, _)| *k == key) {
            Some(node) => node.1 |= executed,
            None => nodes.push((key.clone(), executed)),
        }
        if let Some(record) = folder.records.get(&s.id) {
            for input in &record.inputs {
                if let Some(rest) = input.source.strip_prefix("stage:") {
                    let upstream = rest.rsplit_once('/').map_or(rest, |(s, _)| s);
                    let from = node_key(folder, &counts, upstream);
                    if from != key {
                        edges.insert((from, key.clone()));
                    }
                }
            }
        }
    }
    let mut graph = VisualGraph::new(Orientation::TopToBottom);
    let mut handles = BTreeMap::new();
    for (key, executed) in &nodes {
        let width = 16.0 + 7.5 * key.chars().count() as f64;
        let fill = if *executed { "#dbe9f6" } else { "#eeeeee" };
        let style = StyleAttr::new(
            layout::core::color::Color::fast("black"),
            1,
            Some(layout::core::color::Color::fast(fill)),
            4,
            12,
        );
        let element =
            Element::create(ShapeKind::new_box(key), style, Orientation::TopToBottom, Point::new(width, 34.0));
        handles.insert(key.clone(), graph.add_node(element));
    }
    for (from, to) in &edges {
        if let (Some(&a), Some(&b)) = (handles.get(from), handles.get(to)) {
            graph.add_edge(Arrow::simple(""), a, b);
        }
    }
    let mut svg = SVGWriter::new();
    graph.do_it(false, false, false, &mut svg);
    deterministic_styles(&svg.finalize()).replace("Times, serif", "sans-serif")
}

/// layout-rs writes its font classes from a HashMap, in an order that changes between runs;
/// sort those lines so that the same graph always gives the same bytes.
fn deterministic_styles(svg: &str) -> String {
    let (Some(start), Some(end)) = (svg.find("<style>"), svg.find("</style>")) else { return svg.to_string() };
    let body = &svg[start + "<style>".len()..end];
    let mut lines: Vec<&str> = body.lines().filter(|l| !l.trim().is_empty()).collect();
    lines.sort_unstable();
    format!("{}<style>\n{}\n{}", &svg[..start], lines.join("\n"), &svg[end..])
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// The per-stage table (HTML rows), grouped like the graph.
pub fn stage_table(folder: &Folder) -> String {
    let counts = kind_counts(folder);
    let outcome = outcomes(folder);
    let mut out = String::from(
        "<table class=\"stages\"><thead><tr><th>stage</th><th>kind v</th><th>fingerprint</th><th>time (s)</th><th>last run</th></tr></thead><tbody>",
    );
    let mut grouped: BTreeMap<String, (usize, f64, usize)> = BTreeMap::new();
    for s in &folder.lock.stages {
        let record = folder.records.get(&s.id);
        let seconds = record.map_or(f64::NAN, |r| r.wall_seconds);
        let state = outcome.get(s.id.as_str()).copied().unwrap_or("unknown");
        let key = node_key(folder, &counts, &s.id);
        if key != s.id {
            let entry = grouped.entry(key.clone()).or_insert((0, 0.0, 0));
            entry.0 += 1;
            entry.1 += seconds;
            entry.2 += usize::from(state == "executed");
            if entry.0 == counts[&s.kind] {
                let _ = write!(
                    out,
                    "<tr class=\"group\"><td>{}</td><td>{} v{}</td><td>(each in neurospec.lock)</td><td>{:.2}</td><td>{} executed, {} cached</td></tr>",
                    esc(&key),
                    esc(&s.kind),
                    s.version,
                    entry.1,
                    entry.2,
                    entry.0 - entry.2
                );
            }
            continue;
        }
        let _ = write!(
            out,
            "<tr data-stage=\"{}\"><td>{}</td><td>{} v{}</td><td><code title=\"{}\">{}</code></td><td>{seconds:.2}</td><td class=\"{state}\">{state}</td></tr>",
            esc(&s.id),
            esc(&s.id),
            esc(&s.kind),
            s.version,
            esc(&s.fingerprint),
            short(&s.fingerprint),
        );
    }
    out.push_str("</tbody></table>");
    out
}
