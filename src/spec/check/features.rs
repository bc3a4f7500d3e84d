//! `[features]`: named groups of columns (names or `*` patterns); and `[exclusions]`: complete
//! cases and IQR outlier rules over columns, patterns, scores or feature groups.

use super::{Checker, expand, push_unique};
use crate::keys;

pub(super) fn resolve(cx: &mut Checker<'_>) {
    for (group, patterns) in &cx.study.features {
        let mut columns = Vec::new();
        for (i, pattern) in patterns.iter().enumerate() {
            let matched = expand(pattern, &cx.all_columns);
            if matched.is_empty() {
                if pattern.contains('*') {
                    cx.err(
                        keys!["features", group.as_str(), i],
                        format!("pattern `{pattern}` matches no column"),
                        Some("`*` matches any run of characters, e.g. `area_*`".into()),
                    );
                } else {
                    cx.missing_column(keys!["features", group.as_str(), i], pattern, "feature", &[]);
                }
            }
            push_unique(&mut columns, matched);
        }
        cx.group_columns.insert(group.clone(), columns);
    }
}

/// Complete-case columns, and each IQR rule's columns with its k.
pub(super) fn exclusions(cx: &mut Checker<'_>) -> (Vec<String>, Vec<(Vec<String>, f64)>) {
    let exclusions = &cx.study.exclusions;
    let scores = cx.score_names.clone();
    let mut complete_cases = Vec::new();
    for (i, pattern) in exclusions.complete_cases.iter().enumerate() {
        let matched = cx.expand_with_groups(pattern);
        if matched.is_empty() {
            cx.missing_column(keys!["exclusions", "complete_cases", i], pattern, "column", &scores);
        }
        complete_cases.extend(matched);
    }
    let mut iqr = Vec::new();
    for (r, rule) in exclusions.iqr.iter().enumerate() {
        if !(rule.k > 0.0) {
            cx.err(keys!["exclusions", "iqr", r, "k"], "k must be positive (e.g. 1.5 or 2.5)".into(), None);
        }
        let mut columns = Vec::new();
        for (i, pattern) in rule.columns.iter().enumerate() {
            let matched = cx.expand_with_groups(pattern);
            if matched.is_empty() {
                cx.missing_column(keys!["exclusions", "iqr", r, "columns", i], pattern, "column", &scores);
            }
            columns.extend(matched);
        }
        iqr.push((columns, rule.k));
    }
    (complete_cases, iqr)
}
