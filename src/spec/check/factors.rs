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
    Some(ResolvedFactors { items, names, settings: spec.clone() })
}
