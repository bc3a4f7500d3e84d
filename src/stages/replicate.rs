//! Replication of discovery hits in the held-out sample. A hit is a discovery result with
//! `significant = 1`. It replicates when the held-out β has the same sign and the held-out p
//! (the same kind of p that was FDR-corrected), BH-adjusted over the hits of its family (or
//! unadjusted, if the study says so), is below `alpha`. Inputs: `discovery`, `held_out`
//! (results of the FDR stages). Outputs: `replication` (TSV per hit) and `summary` (JSON).

use super::{Context, Outputs};
use crate::error::Result;
use crate::spec::{FamilyKey, ReplicationCorrection};
use crate::stats::fdr::bh_adjust;
use crate::tables::{Cell, Tsv, TsvWriter};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

pub const VERSION: u32 = 2;
/// Input names this stage reads (`*` ends a family, e.g. `table:*`).
pub const INPUTS: &[&str] = &["discovery", "held_out"];
/// Output names this stage writes (`*` ends a family).
pub const OUTPUTS: &[&str] = &["replication", "summary"];

#[derive(Debug, Serialize, Deserialize)]
pub struct Params {
    pub alpha: f64,
    pub correction: ReplicationCorrection,
    pub families: Vec<FamilyKey>,
}

pub fn run(ctx: &Context<'_>) -> Result<Outputs> {
    let params: Params = ctx.params()?;
    let discovery = Tsv::parse(&ctx.text("discovery")?);
    let held_out = Tsv::parse(&ctx.text("held_out")?);
    let c = |t: &Tsv, name: &str| t.col(name).expect("results columns");
    let key = |t: &Tsv, r: usize| (t.rows[r][c(t, "outcome")].clone(), t.rows[r][c(t, "feature")].clone());
    let held_index: HashMap<(String, String), usize> =
        (0..held_out.rows.len()).map(|r| (key(&held_out, r), r)).collect();

    let hits: Vec<usize> = (0..discovery.rows.len())
        .filter(|&r| discovery.rows[r][c(&discovery, "significant")] == crate::tables::boolean(true))
        .collect();
    let matched: Vec<Option<usize>> = hits.iter().map(|&r| held_index.get(&key(&discovery, r)).copied()).collect();
    let p_held: Vec<f64> =
        matched.iter().map(|m| m.map_or(f64::NAN, |h| held_out.num(h, c(&held_out, "p_fdr")))).collect();
    let mut adjusted = p_held.clone();
    if params.correction == ReplicationCorrection::Fdr {
        let mut families: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, &r) in hits.iter().enumerate() {
            families.entry(discovery.rows[r][c(&discovery, "family")].clone()).or_default().push(i);
        }
        for members in families.values() {
            let q = bh_adjust(&members.iter().map(|&i| p_held[i]).collect::<Vec<_>>());
            for (&i, v) in members.iter().zip(q) {
                adjusted[i] = v;
            }
        }
    }

    let mut w = TsvWriter::new(&[
        "outcome",
        "group",
        "feature",
        "family",
        "beta_discovery",
        "q_discovery",
        "beta_held_out",
        "p_held_out",
        "p_held_out_adjusted",
        "replicated",
    ]);
    let mut replicated_count = 0;
    let mut by_family: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (i, &r) in hits.iter().enumerate() {
        let row = &discovery.rows[r];
        let beta_d = discovery.num(r, c(&discovery, "beta"));
        let beta_h = matched[i].map_or(f64::NAN, |h| held_out.num(h, c(&held_out, "beta")));
        let replicated = beta_d.signum() == beta_h.signum() && adjusted[i] < params.alpha;
        replicated_count += usize::from(replicated);
        let entry = by_family.entry(row[c(&discovery, "family")].clone()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(replicated);
        w.row(&[
            Cell::Text(&row[c(&discovery, "outcome")]),
            Cell::Text(&row[c(&discovery, "group")]),
            Cell::Text(&row[c(&discovery, "feature")]),
            Cell::Text(&row[c(&discovery, "family")]),
            Cell::Num(beta_d),
            Cell::Num(discovery.num(r, c(&discovery, "q"))),
            Cell::Num(beta_h),
            Cell::Num(p_held[i]),
            Cell::Num(adjusted[i]),
            Cell::Text(crate::tables::boolean(replicated)),
        ]);
    }
    let rate =
        if hits.is_empty() { serde_json::Value::Null } else { (replicated_count as f64 / hits.len() as f64).into() };
    let summary = serde_json::json!({
        "discovery_hits": hits.len(),
        "replicated": replicated_count,
        "replication_rate": rate,
        "alpha": params.alpha,
        "correction": params.correction,
        "by_family": by_family.iter().map(|(f, (h, r))| (f.clone(), serde_json::json!({"hits": h, "replicated": r}))).collect::<serde_json::Map<_, _>>(),
    });
    Ok(Outputs::from([
        ("replication".to_string(), w.finish().into_bytes()),
        ("summary".to_string(), (serde_json::to_string_pretty(&summary).expect("json") + "\n").into_bytes()),
    ]))
}
