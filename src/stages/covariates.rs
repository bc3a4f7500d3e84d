//! Covariate columns of a model, formed from the analysis dataset for one sample of subjects.
//!
//! Numeric terms (`age`, `age^2`, `age*sex`) are evaluated from their base columns, z-scored
//! within the sample when the model asks for it (the association models) or raw (the group and
//! prediction models). A categorical term `C(site)` is treatment-coded as statsmodels/patsy do:
//! its levels are the distinct values present in the sample, sorted (numerically when every
//! value is a number, else as text); the reference is the first level unless `ref` names one;
//! each other level gets a 0/1 indicator column named `C(site)[T.level]`. With an intercept in the
//! model this spans the same column space as any other full-rank coding, so a feature's β, SE
//! and t do not depend on the choice of reference. A level held by fewer than
//! [`MIN_LEVEL_SUBJECTS`] subjects of the sample, a reference that no subject holds, and a column
//! with a single level are errors naming the column, the level and the sample.
//!
//! Also here: the exchangeability blocks of a model's permutation test ([`exchange`]), read from
//! a dataset column the same way.

use crate::error::{Error, Result};
use crate::spec::terms::Term;
use crate::stats::exchange::{BlockPermutation, Exchange};
use crate::tables::{Cell, ColumnData, Table, TsvWriter};
use std::collections::BTreeMap;

/// Fewest subjects a level of a categorical covariate needs in a sample.
pub const MIN_LEVEL_SUBJECTS: usize = 2;

/// The covariate columns of one model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expanded {
    /// Column names (`age`, `C(site)[T.B]`).
    pub names: Vec<String>,
    /// n × names.len(), column-major.
    pub values: Vec<f64>,
    /// The coding of each categorical term.
    pub levels: Vec<Levels>,
}

/// How one categorical term was coded in a sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Levels {
    pub term: String,
    pub column: String,
    pub reference: String,
    /// Every level (reference included) in coding order, with its number of subjects.
    pub counts: Vec<(String, usize)>,
}

/// A cell of a categorical column as a level label; numbers in shortest round-trip form.
fn label(data: &ColumnData, row: usize) -> Option<String> {
    match data {
        ColumnData::Numeric(v) => (!v[row].is_nan()).then(|| {
            let mut s = String::new();
            crate::tables::push_number(&mut s, v[row]);
            s
        }),
        ColumnData::Text(v) => v[row].clone(),
    }
}

/// The level of every subject in `rows` (a missing value is an error: the dataset stage has
/// already excluded such subjects).
pub fn level_labels(dataset: &Table, column: &str, rows: &[usize]) -> Result<Vec<String>> {
    let data = &dataset
        .column(column)
        .ok_or_else(|| Error::data(format!("the dataset has no column `{column}`; this is a neurospec bug")))?
        .data;
    rows.iter()
        .map(|&r| {
            label(data, r).ok_or_else(|| {
                Error::data(format!("subject {} has no value of `{column}`; this is a neurospec bug", dataset.ids[r]))
            })
        })
        .collect()
}

/// Sorted distinct levels: numerically when every label is a number, else as text.
fn sorted_levels(labels: &[String]) -> Vec<(String, usize)> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for l in labels {
        *counts.entry(l).or_default() += 1;
    }
    let mut levels: Vec<(String, usize)> = counts.into_iter().map(|(l, n)| (l.to_string(), n)).collect();
    if levels.iter().all(|(l, _)| crate::tables::number(l).is_some()) {
        levels.sort_by(|a, b| {
            let (x, y) = (crate::tables::number(&a.0).unwrap_or(0.0), crate::tables::number(&b.0).unwrap_or(0.0));
            x.total_cmp(&y)
        });
    }
    levels
}

/// Treatment coding of one categorical term over `labels` (one per subject of the sample).
pub fn code(
    term: &str,
    column: &str,
    reference: Option<&str>,
    labels: &[String],
    sample: &str,
) -> Result<(Vec<String>, Vec<f64>, Levels)> {
    let mut levels = sorted_levels(labels);
    if let Some((level, n)) = levels.iter().find(|(_, n)| *n < MIN_LEVEL_SUBJECTS) {
        return Err(Error::data(format!(
            "`{term}`: level `{level}` has {n} subject in the {sample} sample; a level needs at least \
             {MIN_LEVEL_SUBJECTS} — merge rare levels into one (e.g. with a [derived] column) or exclude them"
        )));
    }
    if levels.len() < 2 {
        let only = levels.first().map_or("", |(l, _)| l.as_str());
        return Err(Error::data(format!(
            "`{term}`: every subject of the {sample} sample has level `{only}`, so it cannot be a covariate here; \
             remove it"
        )));
    }
    let reference = match reference {
        None => levels[0].0.clone(),
        Some(r) => {
            let at = levels.iter().position(|(l, _)| l == r).ok_or_else(|| {
                Error::data(format!(
                    "`{term}`: no subject of the {sample} sample has the reference level `{r}` (levels: {})",
                    levels.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>().join(", ")
                ))
            })?;
            let chosen = levels.remove(at);
            levels.insert(0, chosen);
            r.to_string()
        }
    };
    let mut names = Vec::with_capacity(levels.len() - 1);
    let mut values = Vec::with_capacity((levels.len() - 1) * labels.len());
    for (level, _) in &levels[1..] {
        names.push(format!("{term}[T.{level}]"));
        values.extend(labels.iter().map(|l| if l == level { 1.0 } else { 0.0 }));
    }
    Ok((names, values, Levels { term: term.to_string(), column: column.to_string(), reference, counts: levels }))
}

/// Indicator columns of `labels` under a coding fixed on another sample (the model's training
/// sample): a level that sample did not have is an error naming the subject.
fn apply(fixed: &Levels, labels: &[String], ids: &[&str], sample: &str) -> Result<(Vec<String>, Vec<f64>)> {
    if let Some(i) = labels.iter().position(|l| !fixed.counts.iter().any(|(level, _)| level == l)) {
        return Err(Error::data(format!(
            "`{}`: subject {} of the {sample} sample has level `{}`, which no subject of the training sample \
             has, so the model cannot adjust for it; merge it with another level or exclude it",
            fixed.term, ids[i], labels[i]
        )));
    }
    let mut names = Vec::new();
    let mut values = Vec::new();
    for (level, _) in &fixed.counts[1..] {
        names.push(format!("{}[T.{level}]", fixed.term));
        values.extend(labels.iter().map(|l| if l == level { 1.0 } else { 0.0 }));
    }
    Ok((names, values))
}

/// The covariate columns of `terms` for the dataset rows `rows` (the model's sample, named
/// `sample` in messages); numeric base columns z-scored within the sample when `zscore`.
pub fn expand(dataset: &Table, terms: &[Term], rows: &[usize], sample: &str, zscore: bool) -> Result<Expanded> {
    expand_with(dataset, terms, rows, sample, zscore, None)
}

/// [`expand`], with categorical terms coded as `fixed` (the codings [`expand`] made on the
/// training sample) when given.
pub fn expand_with(
    dataset: &Table,
    terms: &[Term],
    rows: &[usize],
    sample: &str,
    zscore: bool,
    fixed: Option<&[Levels]>,
) -> Result<Expanded> {
    let n = rows.len();
    let mut base: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for term in terms.iter().filter(|t| t.categorical().is_none()) {
        for c in term.columns() {
            if base.contains_key(c) {
                continue;
            }
            let column = dataset.numeric(c)?;
            let mut values: Vec<f64> = rows.iter().map(|&r| column[r]).collect();
            if zscore {
                let (mean, sd) = crate::stats::mean_sd(&values);
                let sd = if sd > 0.0 { sd } else { 1.0 };
                values.iter_mut().for_each(|v| *v = (*v - mean) / sd);
            }
            base.insert(c, values);
        }
    }
    let mut out = Expanded::default();
    for term in terms {
        match term {
            Term::Categorical { column, reference } => {
                let labels = level_labels(dataset, column, rows)?;
                let text = term.to_string();
                match fixed.and_then(|f| f.iter().find(|l| l.term == text)) {
                    Some(coding) => {
                        let ids: Vec<&str> = rows.iter().map(|&r| dataset.ids[r].as_str()).collect();
                        let (names, values) = apply(coding, &labels, &ids, sample)?;
                        out.names.extend(names);
                        out.values.extend(values);
                        out.levels.push(coding.clone());
                    }
                    None => {
                        let (names, values, levels) = code(&text, column, reference.as_deref(), &labels, sample)?;
                        out.names.extend(names);
                        out.values.extend(values);
                        out.levels.push(levels);
                    }
                }
            }
            _ => {
                out.names.push(term.to_string());
                out.values.extend((0..n).map(|i| term.eval(|c| base[c][i])));
            }
        }
    }
    Ok(out)
}

/// Parse covariates written as text (`age`, `C(site)`), as the group and prediction models keep
/// them (checked already; a term that does not parse is a bug).
pub fn parse(written: &[String]) -> Result<Vec<Term>> {
    written
        .iter()
        .map(|t| Term::parse(t).map_err(|e| Error::data(format!("covariate `{t}`: {e}; this is a neurospec bug"))))
        .collect()
}

/// Exchangeability blocks for a permutation test on the dataset rows `rows`: from the labels of
/// `blocks.0` (text or numbers), permuted as `blocks.1`; `None` means free permutation. A subject
/// without a label and unequal blocks under `whole` are errors naming them.
pub fn exchange(dataset: &Table, blocks: Option<&(String, BlockPermutation)>, rows: &[usize]) -> Result<Exchange> {
    let Some((column, mode)) = blocks else { return Ok(Exchange::Free) };
    let data = &dataset
        .column(column)
        .ok_or_else(|| Error::data(format!("the dataset has no block column `{column}`; this is a neurospec bug")))?
        .data;
    let labels: Vec<Option<String>> = rows.iter().map(|&r| label(data, r)).collect();
    let ids: Vec<&str> = rows.iter().map(|&r| dataset.ids[r].as_str()).collect();
    Exchange::from_labels(&labels, &ids, *mode).map_err(|e| Error::data(format!("permutation blocks `{column}`: {e}")))
}

/// The codings as a table: term, column, level, reference (true/false), subjects.
pub fn levels_tsv(levels: &[Levels], sample: &str) -> Vec<u8> {
    let mut w = TsvWriter::new(&["term", "column", "sample", "level", "reference", "subjects"]);
    for l in levels {
        for (level, n) in &l.counts {
            w.row(&[
                Cell::Text(&l.term),
                Cell::Text(&l.column),
                Cell::Text(sample),
                Cell::Text(level),
                Cell::Text(crate::tables::boolean(*level == l.reference)),
                Cell::Int(*n as i64),
            ]);
        }
    }
    w.finish().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let mut t = Table::new("t", (0..6).map(|i| format!("s{i}")).collect());
        t.push_text("site", ["B", "A", "C", "A", "B", "C"].iter().map(|s| Some(s.to_string())).collect());
        t.push_numeric("scanner", vec![10.0, 2.0, 2.0, 10.0, 2.0, 10.0]);
        t.push_numeric("age", vec![20.0, 30.0, 40.0, 50.0, 60.0, 70.0]);
        t
    }

    #[test]
    fn treatment_coding_follows_patsy() {
        let t = table();
        let rows: Vec<usize> = (0..6).collect();
        let terms = vec![Term::parse("age").unwrap(), Term::parse("C(site)").unwrap()];
        let e = expand(&t, &terms, &rows, "all", false).unwrap();
        assert_eq!(e.names, ["age", "C(site)[T.B]", "C(site)[T.C]"]);
        assert_eq!(&e.values[6..12], &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!(&e.values[12..18], &[0.0, 0.0, 1.0, 0.0, 0.0, 1.0]);
        assert_eq!(e.levels[0].reference, "A");
        // Numbers sort numerically (2 before 10), and `ref` moves a level first.
        let e = expand(&t, &[Term::parse("C(scanner)").unwrap()], &rows, "all", false).unwrap();
        assert_eq!(e.names, ["C(scanner)[T.10]"]);
        let e = expand(&t, &[Term::parse("C(site, ref=\"C\")").unwrap()], &rows, "all", false).unwrap();
        assert_eq!(e.names, ["C(site, ref=\"C\")[T.A]", "C(site, ref=\"C\")[T.B]"]);
    }

    #[test]
    fn rare_levels_and_bad_references_are_named() {
        let t = table();
        let rows = [0, 1, 3, 4, 2];
        let e = expand(&t, &[Term::parse("C(site)").unwrap()], &rows, "discovery", false).unwrap_err().to_string();
        assert!(e.contains("level `C` has 1 subject in the discovery sample"), "{e}");
        let rows = [0, 1, 3, 4];
        let e = expand(&t, &[Term::parse("C(site, ref=\"C\")").unwrap()], &rows, "held-out", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no subject of the held-out sample has the reference level `C` (levels: A, B)"), "{e}");
        let e = expand(&t, &[Term::parse("C(site)").unwrap()], &[1, 3], "all", false).unwrap_err().to_string();
        assert!(e.contains("every subject of the all sample has level `A`"), "{e}");
    }
}
