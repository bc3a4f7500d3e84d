//! `[scores.NAME]`: items visit by visit, ranges, reverse keys and the missing-item policy; and
//! `[derived]`: expressions type-checked against the columns and scores, then usable like columns.

use super::{Checker, DERIVED};
use crate::behaviour::scoring::{MissingItems, ScoreDefinition};
use crate::keys;
use crate::spec::{ScoreSpec, UndefinedPolicy, expr};

pub(super) fn resolve(cx: &mut Checker<'_>) -> Vec<ScoreDefinition> {
    let mut scores = Vec::new();
    for (name, spec) in &cx.study.scores {
        scores.push(score(cx, name, spec));
    }
    cx.score_names = scores.iter().map(|s| s.name.clone()).collect();
    scores
}

fn score(cx: &mut Checker<'_>, name: &str, spec: &ScoreSpec) -> ScoreDefinition {
    let at = |field: &str| keys!["scores", name, field];
    if cx.all_columns.iter().any(|c| c == name) {
        cx.err(
            keys!["scores", name],
            format!("score `{name}` has the same name as a table column"),
            Some("rename the score".into()),
        );
    }
    if spec.items.is_empty() {
        cx.err(at("items"), format!("score `{name}` has no items"), None);
    }
    if !(spec.range[0] < spec.range[1]) {
        cx.err(at("range"), format!("range [{}, {}] is empty; write [min, max]", spec.range[0], spec.range[1]), None);
    }
    for (i, r) in spec.reverse.iter().enumerate() {
        if !spec.items.contains(r) {
            cx.err(
                keys!["scores", name, "reverse", i],
                format!("reverse-keyed item `{r}` is not one of this score's items"),
                None,
            );
        }
    }
    let labels: Vec<String> = if spec.visits.is_empty() { vec![String::new()] } else { spec.visits.clone() };
    let mut visits = Vec::new();
    for label in &labels {
        let mut columns = Vec::new();
        for (i, item) in spec.items.iter().enumerate() {
            if spec.visits.is_empty() && item.contains("{visit}") {
                cx.err(
                    keys!["scores", name, "items", i],
                    format!("item `{item}` uses {{visit}} but the score declares no `visits`"),
                    None,
                );
                continue;
            }
            let column = item.replace("{visit}", label);
            if !cx.is_column(&column) {
                cx.missing_column(keys!["scores", name, "items", i], &column, "item", &[]);
            }
            columns.push(column);
        }
        visits.push((label.clone(), columns));
    }
    let min_items = min_items(cx, name, spec);
    let min_visits = spec.min_visits.unwrap_or(labels.len());
    if min_visits == 0 || min_visits > labels.len() {
        cx.err(at("min_visits"), format!("min_visits must be between 1 and {} (the visit count)", labels.len()), None);
    }
    ScoreDefinition {
        name: name.to_string(),
        visits,
        reverse: spec.items.iter().map(|i| spec.reverse.contains(i)).collect(),
        method: spec.method,
        range: spec.range,
        missing_codes: spec.missing_codes.clone(),
        missing_items: spec.missing_items,
        min_items,
        min_visits,
    }
}

/// The fewest answered items that give a score: `min_items` with prorating, else all items.
fn min_items(cx: &mut Checker<'_>, name: &str, spec: &ScoreSpec) -> usize {
    let at = |field: &str| keys!["scores", name, field];
    let n_items = spec.items.len();
    match (spec.missing_items, spec.min_items) {
        (MissingItems::Prorate, Some(m)) if m == 0 || m > n_items => {
            cx.err(at("min_items"), format!("min_items must be between 1 and {n_items} (the item count)"), None);
            n_items
        }
        (MissingItems::Prorate, Some(m)) => m,
        (MissingItems::Prorate, None) => {
            cx.err(
                at("missing_items"),
                "`missing_items = \"prorate\"` needs `min_items`".into(),
                Some(format!("e.g. `min_items = {}`", n_items.div_ceil(2).max(1))),
            );
            n_items
        }
        (_, Some(_)) => {
            cx.err(at("min_items"), "`min_items` only applies with `missing_items = \"prorate\"`".into(), None);
            n_items
        }
        (_, None) => n_items,
    }
}

/// Derived variables in evaluation order; their names join the column namespace.
pub(super) fn derived(cx: &mut Checker<'_>) -> Vec<(expr::Checked, UndefinedPolicy)> {
    let study = cx.study;
    let mut derived = Vec::new();
    if !study.derived.is_empty() {
        let pairs: Vec<(String, String)> =
            study.derived.iter().map(|(n, d)| (n.clone(), d.text().to_string())).collect();
        let available: Vec<String> = cx.all_columns.iter().chain(&cx.score_names).cloned().collect();
        match expr::check(&pairs, &available) {
            Ok(checked) => {
                for c in checked {
                    let policy = study.derived[&c.name].undefined();
                    cx.column_table.insert(c.name.clone(), DERIVED.to_string());
                    derived.push((c, policy));
                }
            }
            Err(errors) => {
                // Register the names anyway, so their uses do not add knock-on errors.
                for name in study.derived.keys() {
                    cx.column_table.entry(name.clone()).or_insert_with(|| DERIVED.to_string());
                }
                for e in errors {
                    let diagnostic = expression_diagnostic(cx, &e);
                    cx.problems.push(diagnostic);
                }
            }
        }
    }
    cx.sync_columns();
    derived
}

/// An expression error located inside the expression's string in the study file.
fn expression_diagnostic(cx: &Checker<'_>, e: &expr::ExprError) -> crate::error::Diagnostic {
    let loaded = cx.loaded;
    let keys = keys!["derived", e.name.as_str()];
    let entry = keys!["derived", e.name.as_str(), "expr"];
    match loaded.span_of(&entry).or_else(|| loaded.span_of(&keys)) {
        Some(span) => {
            let quote = &loaded.source[span.start..];
            let open = if quote.starts_with("\"\"\"") || quote.starts_with("'''") { 3 } else { 1 };
            e.to_diagnostic(&loaded.path, &loaded.source, span.start + open)
        }
        None => loaded.diagnostic(&keys, e.to_string()),
    }
}
