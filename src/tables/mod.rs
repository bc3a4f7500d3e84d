//! Subject tables: reading TSV / CSV / Parquet, a compact binary form for the cache, TSV output.
//!
//! A [`Table`] is one row per subject (unique, non-empty ids) and named columns, each numeric
//! (`f64`, NaN = missing) or text. Input files are read with every cell as text first so that a
//! non-numeric cell can be reported with its subject, column and value instead of being coerced.

mod binary;
pub mod read;
pub mod write;

pub use binary::{decode, encode};
pub use read::{read_header, read_table};

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::fmt::Write as _;

/// Table file formats.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    Tsv,
    Csv,
    Parquet,
}

/// A subject's label: its id without BIDS' `sub-` prefix, so that `participants.tsv`'s `sub-01`,
/// a table's `01` and the imaging folder `sub-01` name one subject. Tables keep ids this way, and
/// outputs show them this way.
pub fn subject_label(id: &str) -> &str {
    id.strip_prefix("sub-").filter(|rest| !rest.is_empty()).unwrap_or(id)
}

/// The subject column of every published table (BIDS' `participants.tsv` name).
pub const PARTICIPANT_ID: &str = "participant_id";

/// A missing cell in a published table (BIDS spells it `n/a`; pandas, polars and R read it with
/// `na_values="n/a"` / `null_values="n/a"` / `na = "n/a"`).
pub const MISSING: &str = "n/a";

/// A subject as published: BIDS' `sub-<label>`, whichever spelling the input tables used.
pub fn participant_id(id: &str) -> String {
    format!("sub-{}", subject_label(id))
}

/// A yes/no cell of a published table: `TRUE`/`FALSE`, the one spelling that pandas, polars
/// and R's `read.delim` all read as booleans (R reads `true`/`false` as text).
pub fn boolean(value: bool) -> &'static str {
    if value { "TRUE" } else { "FALSE" }
}

/// A cell as a number: finite numbers only (`inf` and `nan` are not values a study can use;
/// declare missing codes in the table's `missing_values`).
pub fn number(cell: &str) -> Option<f64> {
    cell.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Values of one column.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// Numbers; NaN marks a missing value.
    Numeric(Vec<f64>),
    /// Text; `None` marks a missing value.
    Text(Vec<Option<String>>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub data: ColumnData,
}

/// One row per subject.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// Where the table came from, for error messages (a file path or `simulated:NAME`).
    pub origin: String,
    pub ids: Vec<String>,
    pub columns: Vec<Column>,
}

impl Table {
    pub fn new(origin: impl Into<String>, ids: Vec<String>) -> Self {
        Table { origin: origin.into(), ids, columns: Vec::new() }
    }

    pub fn rows(&self) -> usize {
        self.ids.len()
    }

    pub fn push_numeric(&mut self, name: impl Into<String>, values: Vec<f64>) {
        debug_assert_eq!(values.len(), self.ids.len());
        self.columns.push(Column { name: name.into(), data: ColumnData::Numeric(values) });
    }

    pub fn push_text(&mut self, name: impl Into<String>, values: Vec<Option<String>>) {
        debug_assert_eq!(values.len(), self.ids.len());
        self.columns.push(Column { name: name.into(), data: ColumnData::Text(values) });
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn column_names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|c| c.name.as_str())
    }

    /// A numeric column, or an error naming the table and (for text) the first bad value.
    pub fn numeric(&self, name: &str) -> Result<&[f64]> {
        match self.column(name).map(|c| &c.data) {
            Some(ColumnData::Numeric(v)) => Ok(v),
            Some(ColumnData::Text(v)) => {
                let (row, value) = v
                    .iter()
                    .enumerate()
                    .find_map(|(i, s)| s.as_deref().filter(|s| number(s).is_none()).map(|s| (i, s)))
                    .unwrap_or((0, ""));
                Err(Error::data(format!(
                    "{}:{}: column `{name}` must be numeric, but subject {} has `{value}`; \
                     fix the value or declare it in the table's `missing_values`",
                    self.origin,
                    row + 2,
                    self.ids[row]
                )))
            }
            None => Err(Error::data(format!("{}: no column `{name}`", self.origin))),
        }
    }

    /// Map from subject id to row.
    pub fn index(&self) -> HashMap<&str, usize> {
        self.ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect()
    }

    /// The table as published: [`PARTICIPANT_ID`] first with `sub-` ids, missing cells `n/a`.
    pub fn to_published_tsv(&self) -> String {
        let mut published = self.clone();
        published.ids = self.ids.iter().map(|id| participant_id(id)).collect();
        published.to_tsv(PARTICIPANT_ID).split('\n').map(missing_as_na).collect::<Vec<_>>().join("\n")
    }

    /// The table as input TSV text for `neurospec simulate` (id column first, numbers in
    /// shortest round-trip form, missing empty).
    pub fn to_tsv(&self, id_name: &str) -> String {
        let mut out = String::with_capacity(self.rows() * (self.columns.len() + 1) * 8);
        out.push_str(id_name);
        for c in &self.columns {
            out.push('\t');
            out.push_str(&c.name);
        }
        out.push('\n');
        for (row, id) in self.ids.iter().enumerate() {
            out.push_str(id);
            for c in &self.columns {
                out.push('\t');
                match &c.data {
                    ColumnData::Numeric(v) => push_number(&mut out, v[row]),
                    ColumnData::Text(v) => out.push_str(v[row].as_deref().unwrap_or("")),
                }
            }
            out.push('\n');
        }
        out
    }
}

/// A TSV line with every empty cell written as [`MISSING`].
fn missing_as_na(line: &str) -> String {
    if line.is_empty() {
        return String::new();
    }
    line.split('\t').map(|cell| if cell.is_empty() { MISSING } else { cell }).collect::<Vec<_>>().join("\t")
}

/// Append a number in shortest round-trip form; NaN (missing) as an empty cell.
pub fn push_number(out: &mut String, x: f64) {
    if x.is_nan() {
        return;
    }
    if x == x.trunc() && x.abs() < 1e15 {
        let _ = write!(out, "{}", x as i64);
    } else {
        let _ = write!(out, "{x}");
    }
}

/// A TSV document built row by row (for result tables): a missing number (NaN) or an empty
/// text is written as [`MISSING`].
pub struct TsvWriter {
    out: String,
    columns: usize,
}

impl TsvWriter {
    pub fn new(header: &[&str]) -> Self {
        TsvWriter { out: header.join("\t") + "\n", columns: header.len() }
    }

    pub fn row(&mut self, cells: &[Cell<'_>]) {
        debug_assert_eq!(cells.len(), self.columns);
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                self.out.push('\t');
            }
            match cell {
                Cell::Text("") => self.out.push_str(MISSING),
                Cell::Text(s) => self.out.push_str(s),
                Cell::Num(x) if x.is_nan() => self.out.push_str(MISSING),
                Cell::Num(x) => push_number(&mut self.out, *x),
                Cell::Int(n) => {
                    let _ = write!(self.out, "{n}");
                }
            }
        }
        self.out.push('\n');
    }

    pub fn finish(self) -> String {
        self.out
    }
}

pub enum Cell<'a> {
    Text(&'a str),
    Num(f64),
    Int(i64),
}

/// A parsed TSV (header + rows of cells) for reading result tables back.
pub struct Tsv {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Tsv {
    pub fn parse(text: &str) -> Tsv {
        let mut lines = text.lines();
        let header = lines.next().unwrap_or("").split('\t').map(str::to_string).collect();
        let rows = lines.filter(|l| !l.is_empty()).map(|l| l.split('\t').map(str::to_string).collect()).collect();
        Tsv { header, rows }
    }

    pub fn col(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// Text of the cell in column `name` (empty when the column or cell is absent, or the cell
    /// is [`MISSING`]).
    pub fn text(&self, row: usize, name: &str) -> &str {
        let cell = self.col(name).and_then(|c| self.rows[row].get(c)).map_or("", |s| s.as_str());
        if cell == MISSING { "" } else { cell }
    }

    /// Number in column `name` (NaN when absent or not a number).
    pub fn value(&self, row: usize, name: &str) -> f64 {
        self.text(row, name).parse().unwrap_or(f64::NAN)
    }

    /// Every row's number in column `name`.
    pub fn column(&self, name: &str) -> Vec<f64> {
        (0..self.rows.len()).map(|r| self.value(r, name)).collect()
    }

    /// Cell as a number (empty or `n/a` = NaN).
    pub fn num(&self, row: usize, col: usize) -> f64 {
        let s = &self.rows[row][col];
        if s.is_empty() { f64::NAN } else { s.parse().unwrap_or(f64::NAN) }
    }
}
