//! Load one input table: parse the file (or take the simulator's table), check its subject ids,
//! and store it in the cache's binary form. Output: `table`.

use super::{Context, Outputs};
use crate::error::{Error, Result};
use crate::spec::TableFormat;
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;
/// Input names this stage reads (`*` ends a family, e.g. `table:*`).
pub const INPUTS: &[&str] = &["file", "table"];
/// Output names this stage writes (`*` ends a family).
pub const OUTPUTS: &[&str] = &["table"];

#[derive(Debug, Serialize, Deserialize)]
pub struct Params {
    /// The path as written in the study, or `simulated:NAME`; used in messages.
    pub origin: String,
    /// File format (None for simulated tables).
    pub format: Option<TableFormat>,
    pub id_column: String,
    pub missing_values: Vec<String>,
}

pub fn run(ctx: &Context<'_>) -> Result<Outputs> {
    let p: Params = ctx.params()?;
    let table = match p.format {
        Some(format) => {
            let bytes = ctx.input("file")?.to_vec();
            crate::tables::read_table(bytes, &p.origin, format, &p.id_column, &p.missing_values)?
        }
        None => {
            let mut table = ctx.table("table")?;
            table.origin = p.origin.clone();
            let mut seen = std::collections::HashSet::new();
            if let Some(id) = table.ids.iter().find(|id| !seen.insert(id.as_str())) {
                return Err(Error::data(format!("{}: subject id `{id}` appears twice", p.origin)));
            }
            table
        }
    };
    Ok(Outputs::from([("table".to_string(), crate::tables::encode(&table))]))
}
