//! Gather every subject's connectivity edges into one table (`connectome`), listing each run's
//! status. Subjects whose run was excluded (too few volumes) and subjects without a run are
//! absent from the table and listed in `summary` with the reason. Inputs: `edges:SUBJECT`,
//! `report:SUBJECT`. Outputs: `table` (binary), `tsv` (the same, human-readable), `summary`.

use super::{Context, Outputs};
use crate::error::{Error, Result};
use crate::tables::{Cell, Table, Tsv, TsvWriter};
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct Params {
    pub subjects: Vec<String>,
    /// Edge column names, in order.
    pub edges: Vec<String>,
    /// Subjects without a usable run (excluded at discovery).
    pub without_runs: Vec<String>,
    /// Name of the subject id column.
    pub id_column: String,
}

pub fn run(ctx: &Context<'_>) -> Result<Outputs> {
    let p: Params = ctx.params()?;
    let mut summary = TsvWriter::new(&["subject", "volumes", "kept", "status"]);
    let mut ids = Vec::new();
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); p.edges.len()];
    for subject in &p.subjects {
        let report: serde_json::Value = serde_json::from_slice(ctx.input(&format!("report:{subject}"))?)
            .map_err(|e| Error::data(format!("subject {subject}: unreadable run report ({e})")))?;
        let status = report["status"].as_str().unwrap_or("").to_string();
        summary.row(&[
            Cell::Text(subject),
            Cell::Int(report["volumes"].as_i64().unwrap_or(0)),
            Cell::Num(report["kept"].as_f64().unwrap_or(f64::NAN)),
            Cell::Text(&status),
        ]);
        if status != "included" {
            continue;
        }
        let edges = Tsv::parse(&ctx.text(&format!("edges:{subject}"))?);
        if edges.rows.len() != p.edges.len() {
            return Err(Error::data(format!(
                "subject {subject}: {} edges, expected {}",
                edges.rows.len(),
                p.edges.len()
            )));
        }
        ids.push(subject.clone());
        for (e, row) in edges.rows.iter().enumerate() {
            values[e].push(row[1].parse().unwrap_or(f64::NAN));
        }
    }
    for subject in &p.without_runs {
        summary.row(&[Cell::Text(subject), Cell::Int(0), Cell::Num(f64::NAN), Cell::Text("excluded: no usable run")]);
    }
    let mut table = Table::new("imaging:connectome", ids);
    for (name, column) in p.edges.iter().zip(values) {
        table.push_numeric(name.clone(), column);
    }
    Ok(Outputs::from([
        ("table".to_string(), crate::tables::encode(&table)),
        ("tsv".to_string(), table.to_tsv(&p.id_column).into_bytes()),
        ("summary".to_string(), summary.finish().into_bytes()),
    ]))
}
