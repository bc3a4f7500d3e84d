//! `[split]`: the discovery / held-out split — its column, its fraction or held-out values, and
//! (when the cohort size is known from `[simulate]`) whether both sides keep enough people.

use super::{Checker, MIN_SPLIT_SIDE};
use crate::keys;
use crate::spec::SplitMethod;

pub(super) fn check(cx: &mut Checker<'_>) {
    let Some(split) = &cx.study.split else { return };
    if matches!(split.method, SplitMethod::Stratified | SplitMethod::Grouped) {
        match &split.column {
            Some(column) if !cx.is_column(column) => {
                cx.missing_column(keys!["split", "column"], column, "split column", &[]);
            }
            Some(_) => {}
            None => cx.err(
                keys!["split"],
                "a stratified or grouped split needs `column` (the strata or the group id)".into(),
                None,
            ),
        }
    }
    match split.method {
        SplitMethod::Random | SplitMethod::Stratified | SplitMethod::Grouped => match split.held_out_fraction {
            Some(f) if f > 0.0 && f < 1.0 => sides(cx, f),
            Some(f) => cx.err(
                keys!["split", "held_out_fraction"],
                format!("held_out_fraction {f} must lie strictly between 0 and 1"),
                Some("e.g. 0.15 holds out 15% of subjects".into()),
            ),
            None => cx.err(keys!["split"], "this split needs `held_out_fraction`".into(), None),
        },
        SplitMethod::Column => match &split.column {
            Some(column) if !cx.is_column(column) => {
                cx.missing_column(keys!["split", "column"], column, "split column", &[]);
            }
            Some(_) if split.held_out_values.is_empty() => cx.err(
                keys!["split"],
                "a column split needs `held_out_values`".into(),
                Some("e.g. held_out_values = [\"site3\"]".into()),
            ),
            Some(_) => {}
            None => cx.err(keys!["split"], "a column split needs `column`".into(), None),
        },
    }
}

/// With a simulated cohort of known size: both sides of the split keep `MIN_SPLIT_SIDE` people.
fn sides(cx: &mut Checker<'_>, fraction: f64) {
    let Some(sim) = &cx.study.simulate else { return };
    let held = (sim.subjects as f64 * fraction).round() as usize;
    if held < MIN_SPLIT_SIDE || sim.subjects - held < MIN_SPLIT_SIDE {
        cx.err(
            keys!["split", "held_out_fraction"],
            format!(
                "holding out {fraction} of {} subjects leaves {held} held out and {} in discovery; \
                 each side needs at least {MIN_SPLIT_SIDE}",
                sim.subjects,
                sim.subjects - held
            ),
            None,
        );
    }
}
