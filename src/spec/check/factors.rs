//! `[factors]`: the items of the factor model (columns, patterns, scores or feature groups),
//! the number of factors, and the names of the factor score columns.

use super::{Checker, ResolvedFactors, push_unique};
use crate::keys;
use crate::spec::FactorCount;

/// Fewest items a factor model can be fitted to.
const MIN_ITEMS: usize = 3;
/// Fewest simulated data sets that can estimate parallel analysis' 95th percentile.
const MIN_PARALLEL_SIMULATIONS: usize = 100;

pub(super) fn resolve(cx: &mut Checker<'_>) -> Option<ResolvedFactors> {
    let spec = cx.study.factors.as_ref()?;
    let scores = cx.score_names.clone();
    let mut items: Vec<String> = Vec::new();
    for (i, pattern) in spec.items.iter().enumerate() {
        let matched = cx.expand_with_groups(pattern);
        if matched.is_empty() {
            cx.missing_column(keys!["factors", "items", i], pattern, "item", &scores);
        }
        push_unique(&mut items, matched);
    }
    if items.len() < MIN_ITEMS {
        cx.err(
            keys!["factors", "items"],
            format!("factor analysis needs at least {MIN_ITEMS} items; {} given", items.len()),
            None,
        );
    }
    match spec.count {
        FactorCount::Fixed(k) if k == 0 || (k >= items.len() && items.len() >= MIN_ITEMS) => cx.err(
            keys!["factors", "count"],
            format!("{k} factors cannot be extracted from {} items", items.len()),
            Some(format!("use between 1 and {}, or \"parallel\"", items.len().saturating_sub(1).max(1))),
        ),
        FactorCount::Fixed(k) if !spec.names.is_empty() && spec.names.len() != k => {
            cx.err(keys!["factors", "names"], format!("{} names for {k} factors", spec.names.len()), None)
        }
        _ => {}
    }
    if spec.parallel_simulations < MIN_PARALLEL_SIMULATIONS {
        cx.err(
            keys!["factors", "parallel_simulations"],
            format!(
                "{} simulations cannot estimate a 95th percentile; use at least {MIN_PARALLEL_SIMULATIONS}",
                spec.parallel_simulations
            ),
            None,
        );
    }
    for (i, name) in spec.names.iter().enumerate() {
        if cx.is_column(name) || cx.is_score(name) {
            cx.err(
                keys!["factors", "names", i],
                format!("factor name `{name}` is already a column or score"),
                Some("choose another name".into()),
            );
        }
        if spec.names[..i].contains(name) {
            cx.err(keys!["factors", "names", i], format!("factor name `{name}` is used twice"), None);
        }
    }
    let names = match spec.count {
        FactorCount::Fixed(k) if spec.names.is_empty() => (1..=k).map(|f| format!("F{f}")).collect(),
        _ => spec.names.clone(),
    };
    let target = target(cx, &items);
    Some(ResolvedFactors { items, names, settings: spec.clone(), target })
}

/// `target`: required by (and only by) the target rotations; its rows must be exactly the items
/// and its columns the factors.
fn target(cx: &mut Checker<'_>, items: &[String]) -> Option<Vec<Vec<Option<f64>>>> {
    let spec = cx.study.factors.as_ref()?;
    let rotation = spec.rotation;
    let written = match (&spec.target, rotation.uses_target()) {
        (None, false) => return None,
        (None, true) => {
            cx.err(
                keys!["factors", "rotation"],
                format!("rotation `{}` needs a target matrix", serde_plain(rotation)),
                Some("add `target = \"target.tsv\"` (item, then one column per factor)".into()),
            );
            return None;
        }
        (Some(_), false) => {
            cx.err(
                keys!["factors", "target"],
                format!("`target` is read only by the target rotations, not by `{}`", serde_plain(rotation)),
                Some("use rotation = \"target_ort\" or \"target_obl\", or remove `target`".into()),
            );
            return None;
        }
        (Some(written), true) => written.clone(),
    };
    let path = cx.loaded.resolve(&written);
    let here = keys!["factors", "target"];
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            cx.err(
                here,
                format!("target matrix `{written}` cannot be read ({}): {e}", path.display()),
                Some("paths are relative to the study file".into()),
            );
            return None;
        }
    };
    let factors = match spec.count {
        FactorCount::Fixed(k) => Some(k),
        FactorCount::Rule(_) => {
            cx.err(
                keys!["factors", "count"],
                "a target rotation needs a fixed number of factors (the target's columns)".into(),
                Some("set `count` to the number of factor columns in the target".into()),
            );
            None
        }
    };
    match crate::behaviour::rotations::parse_target(&text, items, factors) {
        Ok(m) => {
            Some((0..m.rows).map(|i| (0..m.cols).map(|j| Some(m.at(i, j)).filter(|v| !v.is_nan())).collect()).collect())
        }
        Err(e) => {
            cx.err(here, format!("target matrix {}: {e}", path.display()), None);
            None
        }
    }
}

/// A rotation as written in the study file.
fn serde_plain(rotation: crate::spec::Rotation) -> String {
    serde_json::to_value(rotation).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}
