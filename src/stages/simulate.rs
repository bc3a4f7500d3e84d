//! Simulate a cohort. Outputs one table per simulated table name, and `truth` (TSV).

use super::{Context, Outputs};
use crate::error::Result;
use crate::spec::Preset;
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;
/// Input names this stage reads (`*` ends a family, e.g. `table:*`).
pub const INPUTS: &[&str] = &[];
/// Output names this stage writes (`*` ends a family).
pub const OUTPUTS: &[&str] = &["truth", "pheno", "idps"];

#[derive(Debug, Serialize, Deserialize)]
pub struct Params {
    pub preset: Preset,
    pub subjects: usize,
    pub seed: u64,
}

pub fn run(ctx: &Context<'_>) -> Result<Outputs> {
    let p: Params = ctx.params()?;
    let cohort = crate::sim::simulate(p.preset, p.subjects, p.seed)?;
    let mut out = Outputs::new();
    for (name, table) in &cohort.tables {
        out.insert(name.clone(), crate::tables::encode(table));
    }
    out.insert("truth".into(), cohort.truth_tsv.into_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn outputs_name_every_simulated_table() {
        for preset in [crate::spec::Preset::UkbSymptoms] {
            for table in crate::sim::tables(preset) {
                assert!(super::OUTPUTS.contains(&table), "{table}");
            }
        }
    }
}
