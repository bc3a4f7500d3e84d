//! Split the analysis sample into discovery and held-out sets.
//!
//! `random`: the subject ids are sorted, shuffled with the split seed, and the first
//! round(n·fraction) are held out — so the split depends only on the set of ids and the seed,
//! not on table row order. `stratified`: the same within each value of the column.
//! `grouped`: the group ids (e.g. families) are sorted and shuffled, and whole groups are held
//! out while that brings the held-out count closer to round(n·fraction); no group straddles the
//! split. `column`: subjects whose value of the column is one of `held_out_values` are held out.
//! Either side ending up with fewer than 10 subjects is an error.
//! Output: `split` (TSV: subject, sample).

use super::{Context, Outputs};
use crate::design::{MIN_SPLIT_SIDE, Sample};
use crate::error::{Error, Result};
use crate::spec::SplitMethod;
use crate::stats::rng::Rng;
use crate::tables::{Cell, ColumnData, TsvWriter};
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 2;
/// Input names this stage reads (`*` ends a family, e.g. `table:*`).
pub const INPUTS: &[&str] = &["dataset"];
/// Output names this stage writes (`*` ends a family).
pub const OUTPUTS: &[&str] = &["split"];

#[derive(Debug, Serialize, Deserialize)]
pub struct Params {
    pub method: SplitMethod,
    pub held_out_fraction: Option<f64>,
    pub column: Option<String>,
    pub held_out_values: Vec<String>,
    pub seed: Option<u64>,
}

pub fn run(ctx: &Context<'_>) -> Result<Outputs> {
    let p: Params = ctx.params()?;
    let dataset = ctx.table("dataset")?;
    let n = dataset.rows();
    let held_out: Vec<bool> = match p.method {
        SplitMethod::Random => {
            let fraction = p.held_out_fraction.unwrap_or(0.0);
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| dataset.ids[a].cmp(&dataset.ids[b]));
            Rng::new(p.seed.unwrap_or(0)).shuffle(&mut order);
            let count = (n as f64 * fraction).round() as usize;
            let mut flags = vec![false; n];
            for &i in &order[..count.min(n)] {
                flags[i] = true;
            }
            flags
        }
        SplitMethod::Stratified | SplitMethod::Grouped => {
            let name = p.column.clone().unwrap_or_default();
            let column = dataset.column(&name).ok_or_else(|| Error::data(format!("split column `{name}` missing")))?;
            let label = |i: usize| -> Option<String> {
                match &column.data {
                    ColumnData::Text(v) => v[i].clone(),
                    ColumnData::Numeric(v) => (!v[i].is_nan()).then(|| {
                        let mut s = String::new();
                        crate::tables::push_number(&mut s, v[i]);
                        s
                    }),
                }
            };
            let labels: Vec<String> = (0..n)
                .map(|i| {
                    label(i).ok_or_else(|| {
                        Error::data(format!("subject {} has no value in split column `{name}`", dataset.ids[i]))
                    })
                })
                .collect::<Result<_>>()?;
            let fraction = p.held_out_fraction.unwrap_or(0.0);
            let mut rng = Rng::new(p.seed.unwrap_or(0));
            let mut groups: std::collections::BTreeMap<&str, Vec<usize>> = std::collections::BTreeMap::new();
            for (i, l) in labels.iter().enumerate() {
                groups.entry(l).or_default().push(i);
            }
            let mut flags = vec![false; n];
            if p.method == SplitMethod::Stratified {
                for members in groups.values_mut() {
                    members.sort_by(|&a, &b| dataset.ids[a].cmp(&dataset.ids[b]));
                    rng.shuffle(members);
                    let count = (members.len() as f64 * fraction).round() as usize;
                    for &i in &members[..count.min(members.len())] {
                        flags[i] = true;
                    }
                }
            } else {
                let mut order: Vec<&Vec<usize>> = groups.values().collect();
                rng.shuffle(&mut order);
                let target = (n as f64 * fraction).round() as usize;
                let mut held = 0usize;
                for members in order {
                    if held + members.len() <= target || held.abs_diff(target) > (held + members.len()).abs_diff(target)
                    {
                        held += members.len();
                        for &i in members {
                            flags[i] = true;
                        }
                    }
                }
            }
            flags
        }
        SplitMethod::Column => {
            let name = p.column.clone().unwrap_or_default();
            let column = dataset.column(&name).ok_or_else(|| Error::data(format!("split column `{name}` missing")))?;
            let matches = |text: &str| p.held_out_values.iter().any(|v| v == text);
            match &column.data {
                ColumnData::Text(v) => v.iter().map(|x| x.as_deref().is_some_and(matches)).collect(),
                ColumnData::Numeric(v) => v
                    .iter()
                    .map(|x| {
                        let mut s = String::new();
                        crate::tables::push_number(&mut s, *x);
                        matches(&s)
                    })
                    .collect(),
            }
        }
    };
    let held = held_out.iter().filter(|h| **h).count();
    if held < MIN_SPLIT_SIDE || n - held < MIN_SPLIT_SIDE {
        return Err(Error::data(format!(
            "[split] leaves {} subjects in discovery and {held} held out (of {n} after exclusions); \
             each side needs at least {MIN_SPLIT_SIDE} — change `held_out_fraction` or `held_out_values`",
            n - held
        )));
    }
    let mut w = TsvWriter::new(&[crate::tables::PARTICIPANT_ID, "sample"]);
    for (id, h) in dataset.ids.iter().zip(&held_out) {
        w.row(&[
            Cell::Text(&crate::tables::participant_id(id)),
            Cell::Text(if *h { Sample::HeldOut } else { Sample::Discovery }.name()),
        ]);
    }
    Ok(Outputs::from([("split".to_string(), w.finish().into_bytes())]))
}
