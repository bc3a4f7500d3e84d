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
    // With no outcomes or no features the errors above say so; checking the pairs and regions
    // against nothing would only repeat them.
    let differences = if outcomes.is_empty() { Vec::new() } else { differences(cx, &outcomes) };
    let region_means = match &association.region_means {
        Some(spec) if !features.is_empty() => region_means(cx, spec, &features),
        _ => Vec::new(),
    };
    Some(ResolvedAssociation {
        outcomes,
        covariates,
        features,
        settings: association.clone(),
        region_means,
        differences,
    })
}

/// `differences`: pairs of two distinct declared outcomes, each pair once, with bootstrap on.
fn differences(cx: &mut Checker<'_>, outcomes: &[String]) -> Vec<(String, String)> {
    let Some(association) = cx.study.association.as_ref() else { return Vec::new() };
    let pairs = association.differences.clone();
    if !pairs.is_empty() && association.bootstrap == 0 {
        cx.err(
            keys!["association", "differences"],
            "differences are bootstrapped, but `bootstrap` is 0".into(),
            Some(format!("set [association] bootstrap = 1000 (at least {MIN_BOOTSTRAP})")),
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut resolved = Vec::new();
    for (i, [a, b]) in pairs.iter().enumerate() {
        for (j, name) in [a, b].into_iter().enumerate() {
            if !outcomes.contains(name) {
                cx.err(
                    keys!["association", "differences", i, j],
                    format!("`{name}` is not one of the association's outcomes"),
                    Some(format!("choose from {}", outcomes.join(", "))),
                );
            }
        }
        if a == b {
            cx.err(keys!["association", "differences", i], format!("`{a}` is compared with itself"), None);
        } else if !seen.insert((a.min(b).clone(), a.max(b).clone())) {
            cx.err(keys!["association", "differences", i], format!("the pair `{a}`, `{b}` is listed twice"), None);
        }
        resolved.push((a.clone(), b.clone()));
    }
    resolved
}

/// `region_means`: every column of the edge group is named by the pattern, and names two regions.
fn region_means(
    cx: &mut Checker<'_>,
    spec: &crate::spec::RegionMeans,
    features: &[(String, String)],
) -> Vec<(String, Vec<usize>)> {
    let key = || keys!["association", "region_means", "edges"];
    let pattern = match EdgePattern::parse(&spec.edges) {
        Ok(pattern) => pattern,
        Err(problem) => {
            cx.err(key(), problem, Some("e.g. edges = \"fc_{a}_{b}\" for columns named fc_n01_n02".into()));
            return Vec::new();
        }
    };
    let edges: Vec<usize> = (0..features.len()).filter(|&j| features[j].0 == spec.group).collect();
    if edges.is_empty() {
        let groups: std::collections::BTreeSet<&str> = features.iter().map(|(g, _)| g.as_str()).collect();
        cx.err(
            keys!["association", "region_means", "group"],
            format!("`{}` is not a feature group of the association", spec.group),
            Some(format!("choose from {}", groups.into_iter().collect::<Vec<_>>().join(", "))),
        );
        return Vec::new();
    }
    let mut regions: Vec<(String, Vec<usize>)> = Vec::new();
    for j in edges {
        let column = &features[j].1;
        match pattern.regions(column) {
            Ok((a, b)) => {
                for region in [a, b] {
                    match regions.iter_mut().find(|(name, _)| name == region) {
                        Some((_, list)) => list.push(j),
                        None => regions.push((region.to_string(), vec![j])),
                    }
                }
            }
            Err(problem) => {
                cx.err(
                    key(),
                    format!("column `{column}` of group `{}`: {problem}", spec.group),
                    Some("every column of the edge group must be an edge; move others to another group".into()),
                );
                return Vec::new();
            }
        }
    }
    regions
}

/// An edge column name pattern: `prefix{a}separator{b}suffix`.
struct EdgePattern<'a> {
    prefix: &'a str,
    separator: &'a str,
    suffix: &'a str,
}

impl<'a> EdgePattern<'a> {
    fn parse(text: &'a str) -> Result<Self, String> {
        let (Some(a), Some(b)) = (text.find("{a}"), text.find("{b}")) else {
            return Err(format!("`{text}` must contain `{{a}}` and `{{b}}` where the two region names stand"));
        };
        if text.matches("{a}").count() > 1 || text.matches("{b}").count() > 1 || b < a + 3 {
            return Err(format!("`{text}` must contain `{{a}}` once, then `{{b}}` once"));
        }
        let separator = &text[a + 3..b];
        if separator.is_empty() {
            return Err(format!("`{text}` needs a separator between `{{a}}` and `{{b}}`"));
        }
        Ok(EdgePattern { prefix: &text[..a], separator, suffix: &text[b + 3..] })
    }

    fn regions<'c>(&self, column: &'c str) -> Result<(&'c str, &'c str), String> {
        let middle = column
            .strip_prefix(self.prefix)
            .and_then(|rest| rest.strip_suffix(self.suffix))
            .ok_or_else(|| format!("does not match `{}{{a}}{}{{b}}{}`", self.prefix, self.separator, self.suffix))?;
        let parts: Vec<&str> = middle.split(self.separator).collect();
        match parts[..] {
            [a, b] if !a.is_empty() && !b.is_empty() && a != b => Ok((a, b)),
            [a, b] if a == b && !a.is_empty() => Err(format!("joins region `{a}` to itself")),
            _ => Err(format!(
                "cannot tell its two regions apart (the separator `{}` must appear exactly once)",
                self.separator
            )),
        }
    }
}
