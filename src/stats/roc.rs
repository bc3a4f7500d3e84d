//! ROC analysis of one score against a binary outcome (e.g. seed connectivity predicting
//! treatment response): the area under the curve, its uncertainty, a permutation test, and a
//! cross-validated AUC for scores that were chosen using the same subjects.
//!
//! # AUC
//!
//! The AUC is the Mann–Whitney probability that a random positive scores higher than a random
//! negative, ties counted ½: AUC = (R₊ − n₊(n₊ + 1)/2)/(n₊ n₋), where R₊ is the sum of the
//! positives' mid-ranks among all scores (O(n log n)). Higher scores mean "positive"; an AUC
//! below ½ means the score points the other way. This equals scikit-learn's `roc_auc_score`.
//!
//! # DeLong variance and interval
//!
//! DeLong, DeLong & Clarke-Pearson (1988), computed from ranks (Sun & Xu 2014): the structural
//! components are V₁₀(i) = (R(i) − R₊(i))/n₋ for each positive i and
//! V₀₁(j) = 1 − (R(j) − R₋(j))/n₊ for each negative j, where R is the mid-rank among all scores
//! and R₊, R₋ the mid-rank within the subject's own class. Var(AUC) = S₁₀/n₊ + S₀₁/n₋ with S the
//! sample variances (ddof = 1). The interval is the plain normal interval AUC ± z·SE clipped to
//! [0, 1], as pROC's `ci.auc(method = "delong")` reports it, so numbers can be compared with pROC.
//! (A logit-transformed interval stays inside (0, 1) by construction but is undefined at AUC = 0
//! or 1, which small perfectly separated samples do reach; the bootstrap interval below is the
//! better choice then.)
//!
//! # Bootstrap interval
//!
//! Stratified by class: each resample draws n₊ positives and n₋ negatives with replacement
//! (its own seeded stream, `Rng::derived(seed, "roc-bootstrap/{b}")`), so every resample has
//! both classes; the interval is the percentile interval of the resampled AUCs (numpy's linear
//! quantile).
//!
//! # Permutation test
//!
//! The labels are permuted over subjects (resample b from `Rng::derived(seed, "roc-permutation/{b}")`)
//! and the AUC recomputed from the fixed mid-ranks. One-sided ([`Alternative::Greater`], the
//! default: higher scores mean positive): p = (1 + #{AUC_b ≥ AUC_obs})/(1 + B). Two-sided
//! ([`Alternative::TwoSided`], when the direction was not declared in advance):
//! p = (1 + #{|AUC_b − ½| ≥ |AUC_obs − ½|})/(1 + B). Ties count with a relative tolerance of 1e-10.
//!
//! # Circularity and cross-validation
//!
//! When the score itself was chosen with the same subjects (e.g. the connectivity of the voxel
//! cluster that differed most between responders and non-responders), the in-sample AUC is
//! optimistic: the caller marks it [`AucSummary::circular`]. [`cross_validated_auc`] gives an
//! honest estimate: stratified k-fold splits (seeded), the caller's `select` closure re-does the
//! selection on the training subjects only and returns a scorer, the held-out subjects are
//! scored, and the AUC is computed once from all pooled out-of-fold scores. Pooling assumes the
//! folds' scores share a scale (true when every fold scores the same kind of quantity, e.g. a
//! connectivity value); the per-fold AUCs are returned too.

use super::exchange::Exchange;
use super::quantile::percentile_interval;
use super::rng::Rng;
use crate::error::{Error, Result};
use rayon::prelude::*;
use statrs::distribution::{ContinuousCDF, Normal};

const TIE_TOLERANCE: f64 = 1e-10;

/// Direction of the permutation test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Alternative {
    /// Higher scores mean positive (AUC > ½).
    #[default]
    Greater,
    /// Either direction (|AUC − ½|).
    TwoSided,
}

fn check(scores: &[f64], labels: &[bool]) -> Result<(usize, usize)> {
    if scores.len() != labels.len() {
        return Err(Error::data(format!("{} scores for {} labels", scores.len(), labels.len())));
    }
    if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
        return Err(Error::data(format!("the score of subject {i} is {}", scores[i])));
    }
    let positives = labels.iter().filter(|l| **l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(Error::data(format!(
            "an AUC needs both classes; found {positives} positive and {negatives} negative subjects"
        )));
    }
    Ok((positives, negatives))
}

/// Mid-ranks (1-based, ties share their average rank).
pub fn midranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let rank = (start + end + 1) as f64 / 2.0; // mean of start+1 ..= end
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

fn auc_from_ranks(ranks: &[f64], labels: &[bool], positives: usize, negatives: usize) -> f64 {
    let sum: f64 = ranks.iter().zip(labels).filter(|(_, l)| **l).map(|(r, _)| r).sum();
    let (p, q) = (positives as f64, negatives as f64);
    (sum - p * (p + 1.0) / 2.0) / (p * q)
}

/// Area under the ROC curve (Mann–Whitney, ties ½); `labels[i]` is true for a positive.
pub fn auc(scores: &[f64], labels: &[bool]) -> Result<f64> {
    let (positives, negatives) = check(scores, labels)?;
    Ok(auc_from_ranks(&midranks(scores), labels, positives, negatives))
}

/// DeLong's variance of the AUC.
pub fn delong_variance(scores: &[f64], labels: &[bool]) -> Result<f64> {
    let (positives, negatives) = check(scores, labels)?;
    let all = midranks(scores);
    let class_scores = |class: bool| -> Vec<f64> {
        scores.iter().zip(labels).filter(|(_, l)| **l == class).map(|(s, _)| *s).collect()
    };
    let class_ranks =
        |class: bool| -> Vec<f64> { all.iter().zip(labels).filter(|(_, l)| **l == class).map(|(r, _)| *r).collect() };
    let (p, q) = (positives as f64, negatives as f64);
    let v10: Vec<f64> = class_ranks(true)
        .iter()
        .zip(midranks(&class_scores(true)))
        .map(|(overall, within)| (overall - within) / q)
        .collect();
    let v01: Vec<f64> = class_ranks(false)
        .iter()
        .zip(midranks(&class_scores(false)))
        .map(|(overall, within)| 1.0 - (overall - within) / p)
        .collect();
    let variance = |v: &[f64]| -> f64 {
        if v.len() < 2 {
            return 0.0;
        }
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (v.len() - 1) as f64
    };
    Ok(variance(&v10) / p + variance(&v01) / q)
}

/// DeLong interval at `level`: AUC ± z·SE, clipped to [0, 1].
pub fn delong_interval(scores: &[f64], labels: &[bool], level: f64) -> Result<(f64, f64)> {
    let value = auc(scores, labels)?;
    let se = delong_variance(scores, labels)?.sqrt();
    let z = normal_quantile(0.5 + level / 2.0)?;
    Ok(((value - z * se).max(0.0), (value + z * se).min(1.0)))
}

fn normal_quantile(p: f64) -> Result<f64> {
    if !(p > 0.5 && p < 1.0) {
        return Err(Error::data(format!("a confidence level must lie in (0, 1); got {}", 2.0 * p - 1.0)));
    }
    let normal = Normal::standard();
    Ok(normal.inverse_cdf(p))
}

/// Stratified bootstrap percentile interval of the AUC (`resamples` resamples, seeded).
pub fn bootstrap_interval(
    scores: &[f64],
    labels: &[bool],
    resamples: usize,
    seed: u64,
    level: f64,
) -> Result<(f64, f64)> {
    check(scores, labels)?;
    normal_quantile(0.5 + level / 2.0)?;
    if resamples == 0 {
        return Ok((f64::NAN, f64::NAN));
    }
    let positive: Vec<f64> = scores.iter().zip(labels).filter(|(_, l)| **l).map(|(s, _)| *s).collect();
    let negative: Vec<f64> = scores.iter().zip(labels).filter(|(_, l)| !**l).map(|(s, _)| *s).collect();
    let mut values: Vec<f64> = (0..resamples)
        .into_par_iter()
        .map(|b| {
            let mut rng = Rng::derived(seed, &format!("roc-bootstrap/{b}"));
            let mut resample = Vec::with_capacity(scores.len());
            let mut resample_labels = Vec::with_capacity(scores.len());
            for (class, members) in [(true, &positive), (false, &negative)] {
                for _ in 0..members.len() {
                    resample.push(members[rng.below(members.len())]);
                    resample_labels.push(class);
                }
            }
            auc_from_ranks(&midranks(&resample), &resample_labels, positive.len(), negative.len())
        })
        .collect();
    Ok(percentile_interval(&mut values, level))
}

/// Permutation p of the AUC (labels permuted over subjects; see the module doc).
pub fn permutation_p(
    scores: &[f64],
    labels: &[bool],
    permutations: usize,
    seed: u64,
    alternative: Alternative,
) -> Result<f64> {
    permutation_p_blocked(scores, labels, permutations, seed, alternative, &Exchange::Free)
}

/// [`permutation_p`] with the labels permuted only as exchangeability blocks allow.
pub fn permutation_p_blocked(
    scores: &[f64],
    labels: &[bool],
    permutations: usize,
    seed: u64,
    alternative: Alternative,
    exchange: &Exchange,
) -> Result<f64> {
    let (positives, negatives) = check(scores, labels)?;
    if permutations == 0 {
        return Ok(f64::NAN);
    }
    let ranks = midranks(scores);
    let statistic = |a: f64| match alternative {
        Alternative::Greater => a,
        Alternative::TwoSided => (a - 0.5).abs(),
    };
    let observed = statistic(auc_from_ranks(&ranks, labels, positives, negatives));
    let at_least = observed - TIE_TOLERANCE * observed.abs();
    let exceed: usize = (0..permutations)
        .into_par_iter()
        .map(|b| {
            let perm = exchange.permutation(&mut Rng::derived(seed, &format!("roc-permutation/{b}")), labels.len());
            let permuted: Vec<bool> = perm.iter().map(|&i| labels[i as usize]).collect();
            usize::from(statistic(auc_from_ranks(&ranks, &permuted, positives, negatives)) >= at_least)
        })
        .sum();
    Ok((1 + exceed) as f64 / (1 + permutations) as f64)
}

/// Settings of [`summarise`].
#[derive(Debug, Clone)]
pub struct RocSettings {
    pub ci_level: f64,
    pub bootstrap: usize,
    pub permutations: usize,
    pub seed: u64,
    pub alternative: Alternative,
    /// The score was chosen using these same subjects (the AUC is optimistic).
    pub circular: bool,
    /// Which label permutations the permutation p may use.
    pub exchange: Exchange,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AucSummary {
    pub auc: f64,
    pub positives: usize,
    pub negatives: usize,
    pub delong_se: f64,
    pub delong_ci: (f64, f64),
    pub bootstrap_ci: (f64, f64),
    pub p_perm: f64,
    pub circular: bool,
}

/// AUC with DeLong SE and interval, bootstrap interval and permutation p.
pub fn summarise(scores: &[f64], labels: &[bool], settings: &RocSettings) -> Result<AucSummary> {
    let (positives, negatives) = check(scores, labels)?;
    Ok(AucSummary {
        auc: auc(scores, labels)?,
        positives,
        negatives,
        delong_se: delong_variance(scores, labels)?.sqrt(),
        delong_ci: delong_interval(scores, labels, settings.ci_level)?,
        bootstrap_ci: bootstrap_interval(
            scores,
            labels,
            settings.bootstrap,
            derive(settings.seed, "bootstrap"),
            settings.ci_level,
        )?,
        p_perm: permutation_p_blocked(
            scores,
            labels,
            settings.permutations,
            derive(settings.seed, "permutation"),
            settings.alternative,
            &settings.exchange,
        )?,
        circular: settings.circular,
    })
}

fn derive(seed: u64, label: &str) -> u64 {
    super::rng::derive_seed(seed, label)
}

/// Stratified k-fold assignment: each class is shuffled (seeded) and dealt round-robin into
/// `folds` folds, the negatives continuing where the positives stopped so fold sizes differ
/// by at most one. Returns the fold of each subject.
pub fn stratified_folds(labels: &[bool], folds: usize, seed: u64) -> Result<Vec<usize>> {
    if folds < 2 || folds > labels.len() {
        return Err(Error::data(format!(
            "{folds} folds for {} subjects; use between 2 and {}",
            labels.len(),
            labels.len()
        )));
    }
    let mut rng = Rng::derived(seed, "roc-folds");
    let mut fold = vec![0; labels.len()];
    let mut next = 0;
    for class in [true, false] {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        rng.shuffle(&mut members);
        for i in members {
            fold[i] = next % folds;
            next += 1;
        }
    }
    Ok(fold)
}

#[derive(Debug, Clone, PartialEq)]
pub struct CrossValidatedAuc {
    /// AUC of the pooled out-of-fold scores.
    pub auc: f64,
    /// Each subject's out-of-fold score.
    pub scores: Vec<f64>,
    /// Each subject's fold.
    pub fold: Vec<usize>,
    /// AUC within each fold (NaN for a fold without both classes).
    pub fold_auc: Vec<f64>,
}

/// Cross-validated AUC: for each stratified fold, `select(training subjects)` re-does the
/// selection on the training subjects only and returns a scorer, which scores each held-out
/// subject (by index). Needs at least two subjects of each class, so that every training set
/// holds both.
pub fn cross_validated_auc<F, S>(labels: &[bool], folds: usize, seed: u64, mut select: F) -> Result<CrossValidatedAuc>
where
    F: FnMut(&[usize]) -> Result<S>,
    S: Fn(usize) -> f64,
{
    let positives = labels.iter().filter(|l| **l).count();
    let negatives = labels.len() - positives;
    if positives < 2 || negatives < 2 {
        return Err(Error::data(format!(
            "cross-validation needs at least 2 subjects of each class; found {positives} positive and {negatives} negative"
        )));
    }
    let fold = stratified_folds(labels, folds, seed)?;
    let mut scores = vec![f64::NAN; labels.len()];
    let mut fold_auc = Vec::with_capacity(folds);
    for k in 0..folds {
        let train: Vec<usize> = (0..labels.len()).filter(|&i| fold[i] != k).collect();
        let test: Vec<usize> = (0..labels.len()).filter(|&i| fold[i] == k).collect();
        let scorer = select(&train)?;
        for &i in &test {
            let s = scorer(i);
            if !s.is_finite() {
                return Err(Error::data(format!("the out-of-fold score of subject {i} (fold {k}) is {s}")));
            }
            scores[i] = s;
        }
        let fold_scores: Vec<f64> = test.iter().map(|&i| scores[i]).collect();
        let fold_labels: Vec<bool> = test.iter().map(|&i| labels[i]).collect();
        fold_auc.push(auc(&fold_scores, &fold_labels).unwrap_or(f64::NAN));
    }
    Ok(CrossValidatedAuc { auc: auc(&scores, labels)?, scores, fold, fold_auc })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_and_perfect_separation() {
        assert_eq!(midranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
        assert_eq!(auc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]).unwrap(), 1.0);
        assert_eq!(auc(&[0.1, 0.2, 0.8, 0.9], &[true, true, false, false]).unwrap(), 0.0);
        assert_eq!(auc(&[0.5; 4], &[true, false, true, false]).unwrap(), 0.5);
        assert!(auc(&[0.5; 3], &[true; 3]).is_err());
        assert!(auc(&[f64::NAN, 1.0], &[true, false]).is_err());
    }

    #[test]
    fn folds_are_stratified_and_balanced() {
        let labels: Vec<bool> = (0..23).map(|i| i % 3 == 0).collect();
        let fold = stratified_folds(&labels, 5, 1).unwrap();
        for k in 0..5 {
            let size = fold.iter().filter(|&&f| f == k).count();
            let pos = (0..23).filter(|&i| fold[i] == k && labels[i]).count();
            assert!((4..=5).contains(&size), "fold {k} has {size}");
            assert!((1..=2).contains(&pos), "fold {k} has {pos} positives");
        }
        assert_eq!(fold, stratified_folds(&labels, 5, 1).unwrap());
    }
}
