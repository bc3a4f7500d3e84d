//! Gather every subject's connectivity edges into one table (`connectome`), listing each run's
//! status. With sessions, a subject's row holds every edge once per session
//! (`conn_a__b__pre`, `conn_a__b__post`): the sessions are paired by subject. Subjects with an
//! excluded run (too few volumes) in any session and subjects without runs are absent from the
//! table and listed in `summary` with the reason. Inputs: `edges:KEY`, `report:KEY` with KEY =
//! `SUBJECT` or `SUBJECT/SESSION`. Outputs: `table` (binary), `tsv` (human-readable), `summary`.

use super::{Context, Outputs};
use crate::error::{Error, Result};
use crate::tables::{Cell, Table, Tsv, TsvWriter};
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 2;
/// Input names this stage reads (`*` ends a family, e.g. `table:*`).
pub const INPUTS: &[&str] = &["edges:*", "report:*"];
/// Output names this stage writes (`*` ends a family).
pub const OUTPUTS: &[&str] = &["table", "tsv", "summary"];

#[derive(Debug, Serialize, Deserialize)]
pub struct Params {
    pub subjects: Vec<String>,
    /// Session labels (empty: one run per subject).
    pub sessions: Vec<String>,
    /// Edge column names, in order.
    pub edges: Vec<String>,
    /// Subjects without a usable run (excluded at discovery).
    pub without_runs: Vec<String>,
    /// Name of the subject id column.
    pub id_column: String,
}

pub fn run(ctx: &Context<'_>) -> Result<Outputs> {
    let p: Params = ctx.params()?;
    let mut summary = TsvWriter::new(&["subject", "session", "volumes", "kept", "status"]);
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
            let report: serde_json::Value = serde_json::from_slice(ctx.input(&format!("report:{key}"))?)
                .map_err(|e| Error::data(format!("subject {key}: unreadable run report ({e})")))?;
            let status = report["status"].as_str().unwrap_or("").to_string();
            summary.row(&[
                Cell::Text(subject),
                Cell::Text(session.unwrap_or("")),
                Cell::Int(report["volumes"].as_i64().unwrap_or(0)),
                Cell::Num(report["kept"].as_f64().unwrap_or(f64::NAN)),
                Cell::Text(&status),
            ]);
            if status != "included" {
                included = false;
                continue;
            }
            let edges = Tsv::parse(&ctx.text(&format!("edges:{key}"))?);
            if edges.rows.len() != p.edges.len() {
                return Err(Error::data(format!(
                    "subject {key}: {} edges, expected {}",
                    edges.rows.len(),
                    p.edges.len()
                )));
            }
            row.extend(edges.rows.iter().map(|r| r[1].parse().unwrap_or(f64::NAN)));
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
            Cell::Text(subject),
            Cell::Text(""),
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
        ("tsv".to_string(), table.to_tsv(&p.id_column).into_bytes()),
        ("summary".to_string(), summary.finish().into_bytes()),
    ]))
}
