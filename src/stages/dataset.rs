//! The analysis dataset: join the tables on subject id, keep the columns the models read, and
//! exclude subjects — every exclusion recorded with its reason.
//!
//! Order: (1) a subject missing from a table that provides a required column is excluded as
//! `not_in_table`; (2) a missing value in any required column (outcomes, covariates, features,
//! declared complete-case columns, in that order) excludes it as `missing_value` naming the first
//! such column; (3) IQR rules: quartiles are computed per column over the complete cases, and a
//! subject outside [Q1 − k·IQR, Q3 + k·IQR] in any listed column is excluded as `iqr_outlier`
//! naming the first such column. Derived variables (`[derived]`) are evaluated first, for every
//! subject, in dependency order, and then behave like columns. Outputs: `dataset` (binary table), `exclusions` (one row per
//! excluded subject) and `summary` (counts per reason and column, and the included total).

use super::{Context, Outputs};
use crate::error::{Error, Result};
use crate::stats::quantile::quartiles;
use crate::tables::{Cell, Column, ColumnData, Table, Tsv, TsvWriter};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

pub const VERSION: u32 = 3;
/// Input names this stage reads (`*` ends a family, e.g. `table:*`).
pub const INPUTS: &[&str] = &["scores", "table:*"];
/// Output names this stage writes (`*` ends a family).
pub const OUTPUTS: &[&str] = &["dataset", "exclusions", "summary"];

#[derive(Debug, Serialize, Deserialize)]
pub struct Params {
    /// Derived variables (name, expression, undefined policy), in any order.
    #[serde(default)]
    pub derived: Vec<(String, String, crate::spec::UndefinedPolicy)>,
    pub outcomes: Vec<String>,
    /// Base columns of the covariate terms.
    pub covariates: Vec<String>,
    pub features: Vec<String>,
    pub complete_cases: Vec<String>,
    pub iqr: Vec<(Vec<String>, f64)>,
    /// Columns carried into the dataset without being required (e.g. a split column).
    pub carry: Vec<String>,
    /// Required columns used as categories (`C(column)`): they may hold text, and are carried
    /// into the dataset as they are (text or numbers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categorical: Vec<String>,
    pub tables: Vec<String>,
}

/// Parse the scores TSV written by the scores stage back into a table (ids as labels, without
/// the published `sub-`).
pub fn scores_table(text: &str) -> Table {
    let tsv = Tsv::parse(text);
    let ids = tsv.rows.iter().map(|r| crate::tables::subject_label(&r[0]).to_string()).collect();
    let mut table = Table::new("scores", ids);
    for (c, name) in tsv.header.iter().enumerate().skip(1) {
        table.push_numeric(name.clone(), (0..tsv.rows.len()).map(|r| tsv.num(r, c)).collect());
    }
    table
}

pub fn run(ctx: &Context<'_>) -> Result<Outputs> {
    let p: Params = ctx.params()?;
    let mut sources: Vec<Table> = Vec::new();
    if ctx.inputs.contains_key("scores") {
        sources.push(scores_table(&ctx.text("scores")?));
    }
    for t in &p.tables {
        sources.push(ctx.table(&format!("table:{t}"))?);
    }
    let mut ids: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for t in &sources {
        for id in &t.ids {
            if seen.insert(id.clone()) {
                ids.push(id.clone());
            }
        }
    }
    // Row of each subject in each table (looked up once, not per column).
    let mut rows: Vec<Vec<Option<usize>>> = sources
        .iter()
        .map(|t| {
            let index: HashMap<&str, usize> = t.index();
            ids.iter().map(|id| index.get(id.as_str()).copied()).collect()
        })
        .collect();
    if !p.derived.is_empty() {
        let table = derive(&p.derived, &sources, &rows, &ids)?;
        rows.push((0..ids.len()).map(Some).collect());
        sources.push(table);
    }
    let locate = |column: &str| -> Result<usize> {
        sources
            .iter()
            .position(|t| t.column(column).is_some())
            .ok_or_else(|| Error::data(format!("column `{column}` is in no input table")))
    };

    let mut required: Vec<&str> = Vec::new();
    for c in p.outcomes.iter().chain(&p.covariates).chain(&p.features).chain(&p.complete_cases) {
        if !required.contains(&c.as_str()) {
            required.push(c);
        }
    }
    // Categorical columns, for the exclusion rules: 0 where a value is present, NaN where not.
    let mut presence: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for c in p.categorical.iter().filter(|c| required.contains(&c.as_str())) {
        let at = locate(c)?;
        let present: Vec<f64> = match &sources[at].column(c).expect("located").data {
            ColumnData::Numeric(v) => v.iter().map(|x| if x.is_nan() { f64::NAN } else { 0.0 }).collect(),
            ColumnData::Text(v) => v.iter().map(|x| if x.is_none() { f64::NAN } else { 0.0 }).collect(),
        };
        presence.insert(c, present);
    }
    let mut columns: Vec<(usize, &[f64])> = Vec::with_capacity(required.len());
    for c in &required {
        let at = locate(c)?;
        let values = match presence.get(c) {
            Some(present) => present.as_slice(),
            None if p.covariates.iter().any(|v| v == c) => numeric_covariate(&sources[at], c)?,
            None => sources[at].numeric(c)?,
        };
        columns.push((at, values));
    }
    let value =
        |subject: usize, (at, values): (usize, &[f64])| -> Option<f64> { rows[at][subject].map(|row| values[row]) };

    // (reason, column, value) per excluded subject.
    let mut excluded: Vec<Option<(&str, String, f64)>> = vec![None; ids.len()];
    for (s, slot) in excluded.iter_mut().enumerate() {
        for (c, name) in required.iter().enumerate() {
            match value(s, columns[c]) {
                None => {
                    let table = &sources[columns[c].0].origin;
                    *slot = Some(("not_in_table", table.clone(), f64::NAN));
                    break;
                }
                Some(v) if v.is_nan() => {
                    *slot = Some(("missing_value", name.to_string(), f64::NAN));
                    break;
                }
                Some(_) => {}
            }
        }
    }
    for (rule_columns, k) in &p.iqr {
        for name in rule_columns {
            let c = required.iter().position(|r| r == name);
            let (at, values) = match c {
                Some(c) => columns[c],
                None => {
                    let at = locate(name)?;
                    (at, sources[at].numeric(name)?)
                }
            };
            let complete: Vec<f64> =
                (0..ids.len()).filter(|s| excluded[*s].is_none()).filter_map(|s| value(s, (at, values))).collect();
            let (q1, q3) = quartiles(&complete);
            let (low, high) = (q1 - k * (q3 - q1), q3 + k * (q3 - q1));
            for (s, slot) in excluded.iter_mut().enumerate() {
                if slot.is_some() {
                    continue;
                }
                if let Some(v) = value(s, (at, values))
                    && (v < low || v > high)
                {
                    *slot = Some(("iqr_outlier", name.clone(), v));
                }
            }
        }
    }

    let kept: Vec<usize> = (0..ids.len()).filter(|&s| excluded[s].is_none()).collect();
    let mut dataset = Table::new("dataset", kept.iter().map(|&s| ids[s].to_string()).collect());
    // A column as it is (text or numbers), for the kept subjects.
    let as_is = |name: &str| -> Result<Column> {
        let at = locate(name)?;
        let column = sources[at].column(name).expect("located");
        let data = match &column.data {
            ColumnData::Numeric(v) => {
                ColumnData::Numeric(kept.iter().map(|&s| rows[at][s].map_or(f64::NAN, |r| v[r])).collect())
            }
            ColumnData::Text(v) => {
                ColumnData::Text(kept.iter().map(|&s| rows[at][s].and_then(|r| v[r].clone())).collect())
            }
        };
        Ok(Column { name: name.to_string(), data })
    };
    for (c, name) in required.iter().enumerate() {
        if presence.contains_key(name) {
            dataset.columns.push(as_is(name)?);
        } else {
            dataset.push_numeric(*name, kept.iter().map(|&s| value(s, columns[c]).unwrap_or(f64::NAN)).collect());
        }
    }
    for name in &p.carry {
        if !required.contains(&name.as_str()) {
            dataset.columns.push(as_is(name)?);
        }
    }

    let mut list = TsvWriter::new(&[crate::tables::PARTICIPANT_ID, "reason", "column", "value"]);
    let mut counts: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for (s, e) in excluded.iter().enumerate() {
        if let Some((reason, column, v)) = e {
            list.row(&[
                Cell::Text(&crate::tables::participant_id(&ids[s])),
                Cell::Text(reason),
                Cell::Text(column),
                Cell::Num(*v),
            ]);
            *counts.entry((reason, column.clone())).or_default() += 1;
        }
    }
    let mut summary = TsvWriter::new(&["reason", "column", "subjects"]);
    summary.row(&[Cell::Text("available"), Cell::Text(""), Cell::Int(ids.len() as i64)]);
    for ((reason, column), n) in &counts {
        summary.row(&[Cell::Text(reason), Cell::Text(column), Cell::Int(*n as i64)]);
    }
    summary.row(&[Cell::Text("included"), Cell::Text(""), Cell::Int(kept.len() as i64)]);
    if kept.is_empty() {
        return Err(Error::data(format!(
            "no subject is left after exclusions ({} available); see the exclusion counts:\n{}",
            ids.len(),
            summary.finish()
        )));
    }
    Ok(Outputs::from([
        ("dataset".to_string(), crate::tables::encode(&dataset)),
        ("exclusions".to_string(), list.finish().into_bytes()),
        ("summary".to_string(), summary.finish().into_bytes()),
    ]))
}

/// A covariate column as numbers; a column that is mostly text (e.g. `M`/`F`, site names) gets a
/// hint to declare it categorical; one with a stray text cell, the usual numeric-cell error.
fn numeric_covariate<'t>(table: &'t Table, name: &str) -> Result<&'t [f64]> {
    if let Some(ColumnData::Text(values)) = table.column(name).map(|c| &c.data)
        && {
            let present = values.iter().flatten().count();
            let text = values.iter().flatten().filter(|v| crate::tables::number(v).is_none()).count();
            2 * text >= present
        }
        && let Some((row, value)) = values
            .iter()
            .enumerate()
            .find_map(|(i, v)| v.as_deref().filter(|v| crate::tables::number(v).is_none()).map(|v| (i, v)))
    {
        return Err(Error::data(format!(
            "{}:{}: covariate `{name}` holds text (subject {} has `{value}`); to use it as a categorical covariate \
             write `C({name})` (or `C({name}, ref=\"{value}\")` to choose the reference level); if `{value}` marks \
             a missing value, declare it in the table's `missing_values`",
            table.origin,
            row + 2,
            table.ids[row]
        )));
    }
    table.numeric(name)
}

/// Evaluate the derived variables over every subject (missing where a source table has no row).
fn derive(
    derived: &[(String, String, crate::spec::UndefinedPolicy)],
    sources: &[Table],
    rows: &[Vec<Option<usize>>],
    ids: &[String],
) -> Result<Table> {
    use crate::spec::expr;
    let available: Vec<String> = sources.iter().flat_map(|t| t.column_names().map(String::from)).collect();
    let pairs: Vec<(String, String)> = derived.iter().map(|(n, t, _)| (n.clone(), t.clone())).collect();
    let checked = expr::check(&pairs, &available)
        .map_err(|errors| Error::Problems(errors.iter().map(|e| e.to_string()).collect()))?;
    // Each referenced column aligned to `ids`.
    let mut aligned: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for c in &checked {
        for name in c.expr.columns() {
            if aligned.contains_key(name) || derived.iter().any(|(n, _, _)| n == name) {
                continue;
            }
            let Some(at) = sources.iter().position(|t| t.column(name).is_some()) else { continue };
            let values = sources[at].numeric(name)?;
            aligned.insert(name.to_string(), rows[at].iter().map(|r| r.map_or(f64::NAN, |r| values[r])).collect());
        }
    }
    let ids_owned: Vec<String> = ids.to_vec();
    let get = |name: &str| aligned.get(name).map(|v| v.as_slice());
    let policy = |name: &str| match derived.iter().find(|(n, _, _)| n == name).map(|d| d.2) {
        Some(crate::spec::UndefinedPolicy::Missing) => expr::Undefined::Missing,
        _ => expr::Undefined::Error,
    };
    let evaluated = expr::evaluate_all(&checked, &get, &ids_owned, &policy).map_err(|e| Error::data(e.to_string()))?;
    let mut table = Table::new("derived", ids_owned);
    for e in evaluated {
        table.push_numeric(e.name, e.values);
    }
    Ok(table)
}
