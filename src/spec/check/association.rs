//! `[association]`: outcomes (columns, scores or factors), covariate terms, the feature groups
//! tested, and the permutation, bootstrap, FDR and replication settings.

use super::{Checker, ResolvedAssociation, ResolvedFactors};
use crate::keys;

/// Fewest bootstrap resamples for a percentile interval.
const MIN_BOOTSTRAP: usize = 100;

pub(super) fn resolve(cx: &mut Checker<'_>, factors: Option<&ResolvedFactors>) -> Option<ResolvedAssociation> {
    let study = cx.study;
    let association = study.association.as_ref()?;
    let scores = cx.score_names.clone();
    let mut outcomes = Vec::new();
    for (i, outcome) in association.outcomes.iter().enumerate() {
        let is_factor = factors.is_some_and(|f| f.provides(outcome));
        if !cx.is_score(outcome) && !cx.is_column(outcome) && !is_factor {
            cx.missing_column(keys!["association", "outcomes", i], outcome, "outcome", &scores);
        }
        outcomes.push(outcome.clone());
    }
    if association.outcomes.is_empty() {
        cx.err(keys!["association", "outcomes"], "no outcomes".into(), None);
    }
    cx.blocks(keys!["association"], &association.permutation_blocks, association.block_permutation);
    let covariates =
        cx.covariate_terms(|i| keys!["association", "covariates", i], &association.covariates, "covariate", false);
    let groups: Vec<String> = if association.features.is_empty() {
        cx.group_columns.keys().cloned().collect()
    } else {
        association.features.clone()
    };
    let mut features = Vec::new();
    for (i, group) in groups.iter().enumerate() {
        let fallback = "declare it under [features]";
        if let Some(columns) = cx.feature_group(keys!["association", "features", i], group, fallback) {
            features.extend(columns.into_iter().map(|c| (group.clone(), c)));
        }
    }
    if features.is_empty() && !study.features.is_empty() {
        cx.err(keys!["association"], "the association has no features".into(), None);
    }
    if study.features.is_empty() {
        cx.err(keys!["association"], "the association needs feature groups under [features]".into(), None);
    }
    cx.permutations(keys!["association", "permutations"], association.permutations, "0 (none) or ");
    cx.ci_level(keys!["association", "ci_level"], association.ci_level);
    if !(association.fdr.q > 0.0 && association.fdr.q < 1.0) {
        cx.err(keys!["association", "fdr", "q"], "the FDR level q must lie between 0 and 1 (e.g. 0.05)".into(), None);
    }
    if !(association.replication.alpha > 0.0 && association.replication.alpha < 1.0) {
        cx.err(keys!["association", "replication", "alpha"], "alpha must lie between 0 and 1".into(), None);
    }
    if association.bootstrap > 0 && association.bootstrap < MIN_BOOTSTRAP {
        cx.err(
            keys!["association", "bootstrap"],
            format!(
                "{} bootstrap resamples are too few for percentile CIs; use 0 or at least {MIN_BOOTSTRAP}",
                association.bootstrap
            ),
            None,
        );
    }
    Some(ResolvedAssociation { outcomes, covariates, features, settings: association.clone() })
}
