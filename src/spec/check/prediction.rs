//! `[prediction]`: outcomes (columns, scores or factors), feature groups, confounds, the
//! grouping column for folds, and the cross-validation, model and permutation settings.

use super::{Checker, ResolvedFactors, ResolvedPrediction};
use crate::keys;

pub(super) fn resolve(cx: &mut Checker<'_>, factors: Option<&ResolvedFactors>) -> Option<ResolvedPrediction> {
    let spec = cx.study.prediction.as_ref()?;
    let at = |field: &str| keys!["prediction", field];
    let scores = cx.score_names.clone();
    let factor_hint: Vec<String> = factors.map(|f| f.names.clone()).unwrap_or_default();
    let mut outcomes = Vec::new();
    for (i, outcome) in spec.outcomes.iter().enumerate() {
        let is_factor = factors.is_some_and(|f| f.provides(outcome));
        if !cx.is_score(outcome) && !cx.is_column(outcome) && !is_factor {
            let extra: Vec<String> = scores.iter().chain(&factor_hint).cloned().collect();
            cx.missing_column(keys!["prediction", "outcomes", i], outcome, "outcome", &extra);
        }
        outcomes.push(outcome.clone());
    }
    if outcomes.is_empty() {
        cx.err(at("outcomes"), "no outcomes".into(), None);
    }
    let mut features = Vec::new();
    for (i, group) in spec.features.iter().enumerate() {
        let fallback = "declare it under [features], e.g. `edges = [\"conn_*\"]`";
        if let Some(columns) = cx.feature_group(keys!["prediction", "features", i], group, fallback) {
            features.extend(columns);
        }
    }
    if spec.features.is_empty() {
        cx.err(at("features"), "no feature groups".into(), None);
    }
    cx.covariate_terms(|i| keys!["prediction", "confounds", i], &spec.confounds, "confound", true);
    cx.blocks(keys!["prediction"], &spec.permutation_blocks, spec.block_permutation);
    let confounds = spec.confounds.clone();
    if let Some(g) = &spec.group_column
        && !cx.is_column(g)
    {
        cx.missing_column(at("group_column"), g, "group column", &[]);
    }
    if spec.folds < 2 {
        cx.err(at("folds"), format!("{} folds: cross-validation needs at least 2", spec.folds), None);
    }
    if spec.repeats == 0 {
        cx.err(at("repeats"), "repeats must be at least 1".into(), None);
    }
    if spec.models.is_empty() {
        cx.err(at("models"), "no models; use [\"cpm\"], [\"ridge\"] or both".into(), None);
    }
    if !(spec.cpm_p > 0.0 && spec.cpm_p < 1.0) {
        cx.err(at("cpm_p"), format!("cpm_p {} must lie between 0 and 1 (e.g. 0.01)", spec.cpm_p), None);
    }
    if spec.ridge_alphas.is_empty() || spec.ridge_alphas.iter().any(|a| !(*a > 0.0)) {
        cx.err(at("ridge_alphas"), "ridge_alphas must be positive numbers, e.g. [0.1, 1, 10, 100]".into(), None);
    }
    cx.permutations(at("permutations"), spec.permutations, "0 (none) or ");
    cx.ci_level(at("ci_level"), spec.ci_level);
    Some(ResolvedPrediction { outcomes, features, confounds, settings: spec.clone() })
}
