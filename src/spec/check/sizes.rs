//! Sample sizes that can be known before reading data: subjects simulated or runs found, times
//! the split's discovery fraction, against what the factor model and cross-validation need.

use super::{Checker, Resolved};
use crate::keys;
use crate::spec::FactorCount;

pub(super) fn check(cx: &mut Checker<'_>, resolved: &Resolved) {
    let study = cx.study;
    let available = match (&study.simulate, &resolved.imaging) {
        (_, Some(im)) => im.runs.len(),
        (Some(sim), None) => sim.subjects,
        _ => return,
    };
    let fraction = study.split.as_ref().and_then(|s| s.held_out_fraction).filter(|f| *f > 0.0 && *f < 1.0);
    let fit = available - fraction.map_or(0, |f| (available as f64 * f).round() as usize);
    let sample = if fraction.is_some() { "the discovery set" } else { "the study" };
    if let Some(f) = &resolved.factors {
        let needed = crate::behaviour::efa::min_rows(f.items.len());
        if fit < needed {
            cx.err(
                keys!["factors", "items"],
                format!(
                    "{sample} has at most {fit} subjects, too few to factor-analyse {} items (needs at least {needed})",
                    f.items.len(),
                ),
                Some(format!(
                    "{} factors requested; reduce the items or hold out fewer subjects",
                    match f.settings.count {
                        FactorCount::Fixed(k) => k.to_string(),
                        FactorCount::Rule(_) => "data-driven".into(),
                    }
                )),
            );
        }
    }
    if let Some(p) = &resolved.prediction {
        let folds = p.settings.folds;
        let needed = crate::stats::predict::min_subjects(folds);
        if folds >= 2 && fit < needed {
            cx.err(
                keys!["prediction", "folds"],
                format!(
                    "{sample} has at most {fit} subjects, too few for {folds}-fold cross-validation (needs at least {needed})"
                ),
                None,
            );
        }
    }
}
