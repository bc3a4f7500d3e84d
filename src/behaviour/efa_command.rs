//! `neurospec efa`: exploratory factor analysis of an item table.

use super::efa::{self, Extraction, Rotation, Scores};
use crate::error::{Error, Result};
use crate::stats::dense::M;
use crate::store::write_atomic_in;
use std::path::{Path, PathBuf};

pub struct EfaArgs {
    pub data: PathBuf,
    /// A column to leave out (a subject id), if the table has one.
    pub id_column: Option<String>,
    /// A fixed number of factors, or None for parallel analysis.
    pub factors: Option<usize>,
    pub method: Extraction,
    pub rotation: Rotation,
    pub scores: Scores,
    pub sims: usize,
    pub seed: u64,
    pub out: PathBuf,
}

/// Items as n × p row-major numbers with their names; any missing or non-numeric cell is an
/// error naming its line and column (nothing is imputed).
pub fn read_items(path: &Path, id_column: Option<&str>) -> Result<(Vec<String>, Vec<String>, Vec<f64>)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let separator = if path.extension().is_some_and(|e| e == "csv") { ',' } else { '\t' };
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines.next().unwrap_or("").split(separator).map(|s| s.trim().to_string()).collect();
    let id_at = match id_column {
        Some(id) => Some(header.iter().position(|h| h == id).ok_or_else(|| {
            Error::data(format!("{}: no column `{id}` (columns: {})", path.display(), header.join(", ")))
        })?),
        None => None,
    };
    let names: Vec<String> =
        header.iter().enumerate().filter(|(i, _)| Some(*i) != id_at).map(|(_, h)| h.clone()).collect();
    let mut ids = Vec::new();
    let mut values = Vec::new();
    for (row, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(separator).collect();
        if cells.len() != header.len() {
            return Err(Error::data(format!(
                "{}:{}: {} cells, but the header has {}",
                path.display(),
                row + 2,
                cells.len(),
                header.len()
            )));
        }
        for (c, cell) in cells.iter().enumerate() {
            if Some(c) == id_at {
                ids.push(cell.trim().to_string());
                continue;
            }
            let v: f64 = cell.trim().parse().ok().filter(|v: &f64| v.is_finite()).ok_or_else(|| {
                Error::data(format!(
                    "{}:{}: item `{}` is `{}`; factor analysis needs complete numeric items \
                     (nothing is imputed: score or exclude incomplete rows first)",
                    path.display(),
                    row + 2,
                    header[c],
                    cell.trim()
                ))
            })?;
            values.push(v);
        }
        if id_at.is_none() {
            ids.push((row + 1).to_string());
        }
    }
    Ok((names, ids, values))
}

fn write(dir: &Path, name: &str, text: &str) -> Result<()> {
    write_atomic_in(dir, &dir.join(name), text.as_bytes())
}

pub fn matrix_tsv(first: &str, rows: &[String], columns: &[String], m: &M) -> String {
    let mut out = format!("{first}\t{}\n", columns.join("\t"));
    for (i, name) in rows.iter().enumerate() {
        out.push_str(name);
        for j in 0..m.cols {
            out.push_str(&format!("\t{}", m.at(i, j)));
        }
        out.push('\n');
    }
    out
}

pub fn run(args: &EfaArgs) -> Result<()> {
    let (names, ids, values) = read_items(&args.data, args.id_column.as_deref())?;
    let (n, p) = (ids.len(), names.len());
    let request = efa::Request {
        count: args.factors.map_or(efa::Count::Parallel, efa::Count::Fixed),
        method: args.method,
        rotation: args.rotation,
        scores: args.scores,
        simulations: args.sims,
        seed: args.seed,
    };
    let analysis = efa::analyse(&values, n, p, &names, &request)
        .map_err(|e| Error::data(format!("{}: {e}", args.data.display())))?;
    let k = analysis.k;
    let scores = efa::standardise_with(&values, n, p, &analysis.means, &analysis.sds).mul(&analysis.weights);
    let factors: Vec<String> = (1..=k).map(|f| format!("F{f}")).collect();
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    write(&args.out, "loadings.tsv", &matrix_tsv("item", &names, &factors, &analysis.fit.loadings))?;
    write(&args.out, "phi.tsv", &matrix_tsv("factor", &factors, &factors, &analysis.fit.phi))?;
    write(&args.out, "scores.tsv", &matrix_tsv("row", &ids, &factors, &scores))?;
    write(&args.out, "fit.json", &(serde_json::to_string_pretty(&analysis.summary).expect("json") + "\n"))?;
    eprintln!(
        "{}: {k} factors ({:?}, {:?}) from {n} rows × {p} items → {}",
        args.data.display(),
        args.method,
        args.rotation,
        args.out.display()
    );
    Ok(())
}
