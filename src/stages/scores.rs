//! Score questionnaires (see `behaviour::scoring` for the rules). Inputs: `table:NAME` for each
//! table holding items. Outputs: `scores` (TSV: subject id + one column per score) and `report`.

use super::{Context, Outputs};
use crate::behaviour::scoring::ScoreDefinition;
use crate::error::Result;
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 2;
/// Input names this stage reads (`*` ends a family, e.g. `table:*`).
pub const INPUTS: &[&str] = &["table:*"];
/// Output names this stage writes (`*` ends a family).
pub const OUTPUTS: &[&str] = &["scores", "report"];

#[derive(Debug, Serialize, Deserialize)]
pub struct Params {
    pub scores: Vec<ScoreDefinition>,
    pub tables: Vec<String>,
}

pub fn run(ctx: &Context<'_>) -> Result<Outputs> {
    let p: Params = ctx.params()?;
    let tables = p.tables.iter().map(|t| ctx.table(&format!("table:{t}"))).collect::<Result<Vec<_>>>()?;
    let refs: Vec<&crate::tables::Table> = tables.iter().collect();
    let (scores, reports) = crate::behaviour::scoring::score(&refs, &p.scores)?;
    Ok(Outputs::from([
        ("scores".to_string(), scores.to_published_tsv().into_bytes()),
        ("report".to_string(), crate::behaviour::scoring::report_tsv(&reports).into_bytes()),
    ]))
}
