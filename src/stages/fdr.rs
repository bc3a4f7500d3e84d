//! Benjamini–Hochberg FDR across all features and outcomes of one sample, within the families the
//! study declares (e.g. outcome × feature group). Inputs: `stats:OUTCOME` per outcome. Output:
//! `results`: the stats rows plus `family`, `p_fdr` (the p-value corrected: permutation p when
//! permutations were run, unless the study asks for parametric), `q` and `significant` (q ≤ level).

use super::{Context, Outputs};
use crate::error::Result;
use crate::spec::{FamilyKey, PValueKind};
use crate::stats::fdr::bh_adjust;
use crate::tables::Tsv;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const VERSION: u32 = 2;
/// Input names this stage reads (`*` ends a family, e.g. `table:*`).
pub const INPUTS: &[&str] = &["stats:*"];
/// Output names this stage writes (`*` ends a family).
pub const OUTPUTS: &[&str] = &["results"];

#[derive(Debug, Serialize, Deserialize)]
pub struct Params {
    pub part: crate::design::Sample,
    pub outcomes: Vec<String>,
    pub q: f64,
    pub families: Vec<FamilyKey>,
    pub p: PValueKind,
}

/// The family label of a result row.
pub fn family(keys: &[FamilyKey], outcome: &str, group: &str) -> String {
    let parts: Vec<&str> = keys
        .iter()
        .map(|k| match k {
            FamilyKey::Outcome => outcome,
            FamilyKey::Group => group,
        })
        .collect();
    if parts.is_empty() { "all".to_string() } else { parts.join(":") }
}

pub fn run(ctx: &Context<'_>) -> Result<Outputs> {
    let params: Params = ctx.params()?;
    let mut header: Vec<String> = Vec::new();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for outcome in &params.outcomes {
        let stats = Tsv::parse(&ctx.text(&format!("stats:{outcome}"))?);
        header = stats.header.clone();
        rows.extend(stats.rows);
    }
    let col = |name: &str| header.iter().position(|h| h == name).expect("stats columns");
    let (c_outcome, c_group, c_p, c_perm) = (col("outcome"), col("group"), col("p"), col("p_perm"));
    let num = |s: &str| if s.is_empty() { f64::NAN } else { s.parse::<f64>().unwrap_or(f64::NAN) };
    let p_used: Vec<f64> = rows
        .iter()
        .map(|r| {
            let perm = num(&r[c_perm]);
            if params.p == PValueKind::Permutation && !perm.is_nan() { perm } else { num(&r[c_p]) }
        })
        .collect();
    let families: Vec<String> = rows.iter().map(|r| family(&params.families, &r[c_outcome], &r[c_group])).collect();
    let mut members: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, f) in families.iter().enumerate() {
        members.entry(f).or_default().push(i);
    }
    let mut q = vec![f64::NAN; rows.len()];
    for indices in members.values() {
        let adjusted = bh_adjust(&indices.iter().map(|&i| p_used[i]).collect::<Vec<_>>());
        for (&i, value) in indices.iter().zip(adjusted) {
            q[i] = value;
        }
    }
    let mut out = header.join("\t") + "\tfamily\tp_fdr\tq\tsignificant\n";
    for (i, row) in rows.iter().enumerate() {
        let mut line = row.join("\t");
        line.push('\t');
        line.push_str(&families[i]);
        for value in [p_used[i], q[i]] {
            line.push('\t');
            if value.is_nan() {
                line.push_str(crate::tables::MISSING);
            } else {
                crate::tables::push_number(&mut line, value);
            }
        }
        line.push('\t');
        line.push_str(crate::tables::boolean(q[i] <= params.q));
        line.push('\n');
        out.push_str(&line);
    }
    Ok(Outputs::from([("results".to_string(), out.into_bytes())]))
}
