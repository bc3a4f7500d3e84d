//! Questionnaire scoring: items → visit scores → subject score, with every decision counted.
//!
//! Order of operations per subject and visit: read each item (a declared missing code counts as
//! missing); reject values outside the declared range (an error naming subject, column and
//! value); reverse-key (`min + max − value`); if no item was answered the visit is absent;
//! if some were, apply the missing-item policy (error / exclude the visit / prorate from at least
//! `min_items` answered items: the mean of answered items, times the item count for sums).
//! The subject's score is the mean of its visit scores when at least `min_visits` visits have one.

use crate::error::{Error, Result};
use crate::tables::{Cell, Table, TsvWriter};
use std::collections::{BTreeMap, HashMap};

/// One score's items, visit by visit.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ScoreDefinition {
    pub name: String,
    /// (visit label, item columns) — one entry with an empty label when there are no visits.
    pub visits: Vec<(String, Vec<String>)>,
    /// Per item position: reverse-keyed?
    pub reverse: Vec<bool>,
    pub method: ScoreMethod,
    pub range: [f64; 2],
    pub missing_codes: Vec<f64>,
    pub missing_items: MissingItems,
    pub min_items: usize,
    pub min_visits: usize,
}

/// How items combine within a visit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScoreMethod {
    /// Sum of items (prorated sums are scaled to the full item count).
    #[default]
    Sum,
    /// Mean of items.
    Mean,
}

/// Missing-item policy. Nothing is imputed silently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MissingItems {
    /// A missing item in an answered visit stops the run, naming subject and item.
    #[default]
    Error,
    /// The visit gets no score (the subject may then be excluded as incomplete, and is counted).
    Exclude,
    /// Score from the answered items when at least `min_items` were answered (mean of answered
    /// items, times the item count for sums); each prorated score is counted in the report.
    Prorate,
}

/// What happened while scoring, per score (written as `scoring_report.tsv`).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ScoreReport {
    pub subjects_scored: usize,
    pub subjects_unscored: usize,
    pub visits_scored: usize,
    pub visits_absent: usize,
    pub visits_excluded_missing_items: usize,
    pub visits_prorated: usize,
    pub missing_codes_read: usize,
}

/// Score all subjects found in `tables` (a subject absent from an item's table has that item
/// missing). Returns the score table (one column per score) and a report per score.
pub fn score(tables: &[&Table], scores: &[ScoreDefinition]) -> Result<(Table, Vec<(String, ScoreReport)>)> {
    let mut ids: Vec<String> = Vec::new();
    let mut seen = HashMap::new();
    for t in tables {
        for id in &t.ids {
            if !seen.contains_key(id.as_str()) {
                seen.insert(id.clone(), ids.len());
                ids.push(id.clone());
            }
        }
    }
    let indexes: Vec<HashMap<&str, usize>> = tables.iter().map(|t| t.index()).collect();
    let mut column_of: BTreeMap<&str, (usize, &[f64])> = BTreeMap::new();
    for spec in scores {
        for (_, items) in &spec.visits {
            for item in items {
                if column_of.contains_key(item.as_str()) {
                    continue;
                }
                let at = tables
                    .iter()
                    .position(|t| t.column(item).is_some())
                    .ok_or_else(|| Error::data(format!("item column `{item}` is in none of the score's tables")))?;
                column_of.insert(item, (at, tables[at].numeric(item)?));
            }
        }
    }

    let mut out = Table::new("scores", ids.clone());
    let mut reports = Vec::new();
    for spec in scores {
        let mut report = ScoreReport::default();
        let n_items = spec.reverse.len();
        let [low, high] = spec.range;
        let mut values = Vec::with_capacity(ids.len());
        for id in &ids {
            let mut visit_scores = Vec::with_capacity(spec.visits.len());
            for (label, items) in &spec.visits {
                let mut answered = Vec::with_capacity(n_items);
                let mut missing_item = None;
                for (position, item) in items.iter().enumerate() {
                    let (table_at, column) = column_of[item.as_str()];
                    let value = indexes[table_at].get(id.as_str()).map_or(f64::NAN, |&row| column[row]);
                    if spec.missing_codes.contains(&value) {
                        report.missing_codes_read += 1;
                        missing_item.get_or_insert(item);
                        continue;
                    }
                    if value.is_nan() {
                        missing_item.get_or_insert(item);
                        continue;
                    }
                    if value < low || value > high {
                        let row = indexes[table_at][id.as_str()];
                        return Err(Error::data(format!(
                            "{}:{}: subject {id}, column `{item}`: value {value} is outside the range \
                             [{low}, {high}] declared for score `{}`; fix the value, or list it in the score's \
                             `missing_codes` if it means \"no answer\"",
                            tables[table_at].origin,
                            row + 2,
                            spec.name
                        )));
                    }
                    answered.push(if spec.reverse[position] { low + high - value } else { value });
                }
                if answered.is_empty() {
                    report.visits_absent += 1;
                    continue;
                }
                if let Some(item) = missing_item {
                    match spec.missing_items {
                        MissingItems::Error => {
                            let visit = if label.is_empty() { String::new() } else { format!(" at visit {label}") };
                            return Err(Error::data(format!(
                                "subject {id}: item `{item}` of score `{}` is missing{visit} while other items \
                                 were answered; set the score's `missing_items` to \"exclude\" or \"prorate\"",
                                spec.name
                            )));
                        }
                        MissingItems::Exclude => {
                            report.visits_excluded_missing_items += 1;
                            continue;
                        }
                        MissingItems::Prorate => {
                            if answered.len() < spec.min_items {
                                report.visits_excluded_missing_items += 1;
                                continue;
                            }
                            report.visits_prorated += 1;
                        }
                    }
                }
                let mean = answered.iter().sum::<f64>() / answered.len() as f64;
                visit_scores.push(match spec.method {
                    ScoreMethod::Mean => mean,
                    ScoreMethod::Sum => mean * n_items as f64,
                });
                report.visits_scored += 1;
            }
            if visit_scores.len() >= spec.min_visits {
                report.subjects_scored += 1;
                values.push(visit_scores.iter().sum::<f64>() / visit_scores.len() as f64);
            } else {
                report.subjects_unscored += 1;
                values.push(f64::NAN);
            }
        }
        out.push_numeric(spec.name.clone(), values);
        reports.push((spec.name.clone(), report));
    }
    Ok((out, reports))
}

pub fn report_tsv(reports: &[(String, ScoreReport)]) -> String {
    let mut w = TsvWriter::new(&[
        "score",
        "subjects_scored",
        "subjects_unscored",
        "visits_scored",
        "visits_absent",
        "visits_excluded_missing_items",
        "visits_prorated",
        "missing_codes_read",
    ]);
    for (name, r) in reports {
        let n = |v: usize| Cell::Int(v as i64);
        w.row(&[
            Cell::Text(name),
            n(r.subjects_scored),
            n(r.subjects_unscored),
            n(r.visits_scored),
            n(r.visits_absent),
            n(r.visits_excluded_missing_items),
            n(r.visits_prorated),
            n(r.missing_codes_read),
        ]);
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(policy: MissingItems, min_items: usize) -> ScoreDefinition {
        ScoreDefinition {
            name: "dep".into(),
            visits: vec![
                ("0".into(), vec!["a_0".into(), "b_0".into()]),
                ("2".into(), vec!["a_2".into(), "b_2".into()]),
            ],
            reverse: vec![false, true],
            method: ScoreMethod::Sum,
            range: [0.0, 3.0],
            missing_codes: vec![-3.0],
            missing_items: policy,
            min_items,
            min_visits: 1,
        }
    }

    fn table(rows: &[[f64; 4]]) -> Table {
        let mut t = Table::new("t.tsv", (0..rows.len()).map(|i| format!("s{i}")).collect());
        for (c, name) in ["a_0", "b_0", "a_2", "b_2"].iter().enumerate() {
            t.push_numeric(*name, rows.iter().map(|r| r[c]).collect());
        }
        t
    }

    #[test]
    fn reverse_keys_prorates_and_averages_visits() {
        let nan = f64::NAN;
        let t = table(&[[1.0, 0.0, 2.0, 3.0], [2.0, nan, nan, nan], [nan, nan, nan, nan], [-3.0, 1.0, 1.0, 1.0]]);
        let (scores, reports) = score(&[&t], &[spec(MissingItems::Prorate, 1)]).unwrap();
        let v = match &scores.columns[0].data {
            crate::tables::ColumnData::Numeric(v) => v.clone(),
            _ => unreachable!(),
        };
        // s0: visit0 = 1 + (3-0) = 4, visit2 = 2 + 0 = 2 → 3. s1: prorated 2·2 = 4. s2: none.
        // s3: visit0 prorated from b=1 → reversed 2 → 4; visit2 = 1 + 2 = 3 → 3.5.
        assert_eq!(v[0], 3.0);
        assert_eq!(v[1], 4.0);
        assert!(v[2].is_nan());
        assert_eq!(v[3], 3.5);
        assert_eq!(reports[0].1.visits_prorated, 2);
        assert_eq!(reports[0].1.missing_codes_read, 1);
        assert_eq!(reports[0].1.subjects_unscored, 1);
    }

    #[test]
    fn policies_error_and_exclude() {
        let t = table(&[[2.0, f64::NAN, 1.0, 1.0]]);
        let e = score(&[&t], &[spec(MissingItems::Error, 2)]).unwrap_err().to_string();
        assert!(e.contains("subject s0") && e.contains("b_0"), "{e}");
        let (_, r) = score(&[&t], &[spec(MissingItems::Exclude, 2)]).unwrap();
        assert_eq!(r[0].1.visits_excluded_missing_items, 1);
        let bad = table(&[[7.0, 1.0, 1.0, 1.0]]);
        let e = score(&[&bad], &[spec(MissingItems::Error, 2)]).unwrap_err().to_string();
        assert!(e.contains("value 7") && e.contains("a_0") && e.contains("t.tsv:2:"), "{e}");
    }
}
