//! Gather every subject's connectivity edges into one table (`connectome`), listing each run's
//! status. With sessions, a subject's row holds every edge once per session
//! (`conn_a__b__pre`, `conn_a__b__post`): the sessions are paired by subject. A subject (and
//! session) with several runs (`[imaging] runs = "all"`) gets, per edge, the mean Fisher z over
//! its included runs (with `fisher_z = false`, the tanh of that mean); a single included run is
//! taken as it is. Subjects with no included run in some session and subjects without runs are
//! absent from the table and listed in `summary` with the reason; so is every excluded run.
//! Inputs: `edges:KEY`, `report:KEY` with KEY = `SUBJECT`, `SUBJECT/SESSION`, or for several
//! runs `…:[ses-S_]run-N`. Outputs: `table` (binary), `tsv` (human-readable), `summary` (one row
//! per run: volumes, non-steady-state volumes dropped, volumes censored, kept, status).

use super::{Context, Outputs};
use crate::error::{Error, Result};
use crate::tables::{Cell, Table, Tsv, TsvWriter};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const VERSION: u32 = 4;
/// Input names this stage reads (`*` ends a family, e.g. `table:*`).
pub const INPUTS: &[&str] = &["edges:*", "report:*"];
/// Output names this stage writes (`*` ends a family).
pub const OUTPUTS: &[&str] = &["table", "tsv", "summary"];

#[derive(Debug, Serialize, Deserialize)]
pub struct Params {
    pub subjects: Vec<String>,
    /// Session labels (empty: one key per subject).
    pub sessions: Vec<String>,
    /// Keys (`SUBJECT[/SESSION]`) with several runs → their run keys, in order.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub runs: BTreeMap<String, Vec<String>>,
    /// Edge values are Fisher z (otherwise r).
    #[serde(default)]
    pub fisher_z: bool,
    /// Edge column names, in order.
    pub edges: Vec<String>,
    /// Subjects without a usable run (excluded at discovery).
    pub without_runs: Vec<String>,
}

/// One run's edge values, or `None` when it was excluded (its row is written to `summary`).
fn run_edges(
    ctx: &Context<'_>,
    p: &Params,
    key: &str,
    subject: &str,
    summary: &mut TsvWriter,
) -> Result<Option<Vec<f64>>> {
    let report: serde_json::Value = serde_json::from_slice(ctx.input(&format!("report:{key}"))?)
        .map_err(|e| Error::data(format!("subject {key}: unreadable run report ({e})")))?;
    let status = report["status"].as_str().unwrap_or("").to_string();
    let (session, run) = match key.split_once(':') {
        Some((base, run)) => (base.split_once('/').map(|(_, s)| s), run),
        None => (key.split_once('/').map(|(_, s)| s), ""),
    };
    let count = |name: &str| Cell::Int(report[name].as_i64().unwrap_or(0));
    summary.row(&[
        Cell::Text(&crate::tables::participant_id(subject)),
        Cell::Text(session.unwrap_or("")),
        Cell::Text(run),
        count("volumes"),
        count("dummy_scans"),
        count("censored"),
        Cell::Num(report["kept"].as_f64().unwrap_or(f64::NAN)),
        Cell::Text(&status),
    ]);
    if status != "included" {
        return Ok(None);
    }
    let edges = Tsv::parse(&ctx.text(&format!("edges:{key}"))?);
    if edges.rows.len() != p.edges.len() {
        return Err(Error::data(format!("subject {key}: {} edges, expected {}", edges.rows.len(), p.edges.len())));
    }
    Ok(Some(edges.rows.iter().map(|r| r[1].parse().unwrap_or(f64::NAN)).collect()))
}

/// Several runs' edges combined: the mean Fisher z (one run: its values unchanged).
fn mean_fisher_z(runs: &[Vec<f64>], fisher_z: bool) -> Vec<f64> {
    if let [only] = runs {
        return only.clone();
    }
    let n = runs.len() as f64;
    (0..runs[0].len())
        .map(|e| {
            let z: f64 =
                runs.iter().map(|r| if fisher_z { r[e] } else { r[e].clamp(-1.0, 1.0).atanh() }).sum::<f64>() / n;
            if fisher_z { z } else { z.tanh() }
        })
        .collect()
}

pub fn run(ctx: &Context<'_>) -> Result<Outputs> {
    let p: Params = ctx.params()?;
    let mut summary = TsvWriter::new(&[
        crate::tables::PARTICIPANT_ID,
        "session",
        "run",
        "volumes",
        "dummy_scans",
        "censored",
        "kept",
        "status",
    ]);
    let sessions: Vec<Option<&str>> =
        if p.sessions.is_empty() { vec![None] } else { p.sessions.iter().map(|s| Some(s.as_str())).collect() };
    let mut ids = Vec::new();
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); p.edges.len() * sessions.len()];
    for subject in &p.subjects {
        let mut row: Vec<f64> = Vec::with_capacity(values.len());
        let mut included = true;
        for session in &sessions {
            let key = match session {
                Some(s) => format!("{subject}/{s}"),
                None => subject.clone(),
            };
            let run_keys = p.runs.get(&key).cloned().unwrap_or_else(|| vec![key.clone()]);
            let mut kept = Vec::new();
            for run_key in &run_keys {
                if let Some(edges) = run_edges(ctx, &p, run_key, subject, &mut summary)? {
                    kept.push(edges);
                }
            }
            if kept.is_empty() {
                included = false;
                continue;
            }
            row.extend(mean_fisher_z(&kept, p.fisher_z));
        }
        if !included {
            continue;
        }
        ids.push(subject.clone());
        for (column, v) in values.iter_mut().zip(row) {
            column.push(v);
        }
    }
    for subject in &p.without_runs {
        summary.row(&[
            Cell::Text(&crate::tables::participant_id(subject)),
            Cell::Text(""),
            Cell::Text(""),
            Cell::Int(0),
            Cell::Int(0),
            Cell::Int(0),
            Cell::Num(f64::NAN),
            Cell::Text("excluded: no usable run"),
        ]);
    }
    let mut table = Table::new("imaging:connectome", ids);
    let names = sessions.iter().flat_map(|s| p.edges.iter().map(move |e| crate::design::session_column(e, *s)));
    for (name, column) in names.zip(values) {
        table.push_numeric(name, column);
    }
    Ok(Outputs::from([
        ("table".to_string(), crate::tables::encode(&table)),
        ("tsv".to_string(), table.to_published_tsv().into_bytes()),
        ("summary".to_string(), summary.finish().into_bytes()),
    ]))
}

#[cfg(test)]
mod tests {
    use super::mean_fisher_z;

    #[test]
    fn runs_average_as_fisher_z_and_one_run_is_unchanged() {
        assert_eq!(mean_fisher_z(&[vec![0.3, -0.2]], false), vec![0.3, -0.2]);
        assert_eq!(mean_fisher_z(&[vec![0.5, 1.0], vec![1.5, -1.0]], true), vec![1.0, 0.0]);
        let r = mean_fisher_z(&[vec![0.2], vec![0.6]], false)[0];
        assert!((r - ((0.2f64.atanh() + 0.6f64.atanh()) / 2.0).tanh()).abs() < 1e-15);
    }
}
