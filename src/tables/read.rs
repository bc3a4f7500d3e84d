//! Reading input tables. polars parses the files (all cells as text, so nothing is coerced
//! behind the user's back); this module turns them into [`Table`]s and reports bad cells.

use super::TableFormat;
use super::{ColumnData, Table};
use crate::error::{Error, Result};
use polars::prelude::*;
use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

/// Cell texts read as missing when a table declares none.
pub const DEFAULT_MISSING: [&str; 5] = ["", "NA", "NaN", "nan", "n/a"];

/// The format of a table file: declared, or from its extension.
pub fn format_of(path: &Path, declared: Option<TableFormat>) -> Result<TableFormat> {
    if let Some(f) = declared {
        return Ok(f);
    }
    let name = path.to_string_lossy().to_lowercase();
    if name.ends_with(".tsv") || name.ends_with(".txt") || name.ends_with(".tab") {
        Ok(TableFormat::Tsv)
    } else if name.ends_with(".csv") {
        Ok(TableFormat::Csv)
    } else if name.ends_with(".parquet") || name.ends_with(".pq") {
        Ok(TableFormat::Parquet)
    } else {
        Err(Error::data(format!(
            "{}: cannot tell the table format from the extension; set `format = \"tsv\"`, \"csv\" or \"parquet\"",
            path.display()
        )))
    }
}

/// Column names of a table file (reads only the header or the Parquet schema).
pub fn read_header(path: &Path, format: TableFormat) -> Result<Vec<String>> {
    match format {
        TableFormat::Tsv | TableFormat::Csv => {
            let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
            let mut line = String::new();
            std::io::BufReader::new(file).read_line(&mut line).map_err(|e| Error::io(path, e))?;
            let separator = if format == TableFormat::Tsv { '\t' } else { ',' };
            let line = line.trim_end_matches(['\n', '\r']).trim_start_matches('\u{feff}');
            if line.is_empty() {
                return Err(Error::data(format!("{}: the file is empty (no header row)", path.display())));
            }
            Ok(line.split(separator).map(|s| s.trim().trim_matches('"').to_string()).collect())
        }
        TableFormat::Parquet => {
            let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
            let schema = ParquetReader::new(file)
                .schema()
                .map_err(|e| Error::data(format!("{}: not a readable Parquet file: {e}", path.display())))?;
            Ok(schema.iter_names().map(|n| n.to_string()).collect())
        }
    }
}

/// Read a whole table from a file's bytes; `origin` names the file in messages.
/// `id_column` must exist, with unique non-empty ids.
pub fn read_table(
    bytes: Vec<u8>,
    origin: &str,
    format: TableFormat,
    id_column: &str,
    missing: &[String],
) -> Result<Table> {
    let bad = |e: PolarsError| Error::data(format!("{origin}: cannot read table: {e}"));
    if format != TableFormat::Parquet {
        check_rows(&bytes, origin, if format == TableFormat::Tsv { b'\t' } else { b',' })?;
    }
    let frame = read_frame(bytes, origin, format)?;
    if frame.height() == 0 {
        return Err(Error::data(format!("{origin}: the table has a header but no rows")));
    }
    let origin = origin.to_string();
    let names: Vec<String> = frame.get_column_names().iter().map(|n| n.to_string()).collect();
    let id_at = names.iter().position(|n| n == id_column).ok_or_else(|| {
        Error::data(format!(
            "{origin}: no subject id column `{id_column}` (columns: {}); set the table's `id_column`",
            preview(&names)
        ))
    })?;
    let missing: Vec<&str> = missing.iter().map(String::as_str).collect();
    let texts = |i: usize| -> Result<Vec<Option<String>>> {
        let column = frame.columns()[i].as_materialized_series().cast(&DataType::String).map_err(bad)?;
        let strings = column.str().map_err(bad)?;
        Ok(strings.iter().map(|v| v.map(str::trim).filter(|s| !missing.contains(s)).map(str::to_string)).collect())
    };

    let ids: Vec<String> = texts(id_at)?
        .into_iter()
        .enumerate()
        .map(|(row, id)| {
            id.ok_or_else(|| {
                Error::data(format!("{origin}:{}: empty subject id in `{id_column}`; every row needs an id", row + 2))
            })
        })
        .collect::<Result<_>>()?;
    let written = ids;
    let ids: Vec<String> = written.iter().map(|id| super::subject_label(id).to_string()).collect();
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(ids.len());
    for (row, id) in ids.iter().enumerate() {
        if let Some(first) = seen.insert(id, row) {
            let same = if written[first] == written[row] {
                String::new()
            } else {
                format!(
                    " (`{}` and `{}` are one subject: the BIDS `sub-` prefix is ignored)",
                    written[first], written[row]
                )
            };
            return Err(Error::data(format!(
                "{origin}:{}: subject id `{}` appears twice (lines {} and {}){same}; ids must be unique — \
                 for repeated visits use one column per visit",
                row + 2,
                written[row],
                first + 2,
                row + 2
            )));
        }
    }
    let mut table = Table::new(origin, ids);
    for (i, name) in names.iter().enumerate() {
        if i == id_at {
            continue;
        }
        let values = texts(i)?;
        let numbers: Option<Vec<f64>> =
            values.iter().map(|v| v.as_deref().map_or(Some(f64::NAN), super::number)).collect();
        table.columns.push(super::Column {
            name: name.clone(),
            data: match numbers {
                Some(n) => ColumnData::Numeric(n),
                None => ColumnData::Text(values),
            },
        });
    }
    Ok(table)
}

/// Every row of a text table has as many fields as the header, and the file ends with a line
/// ending (a file cut off mid-row would otherwise be read as a shorter last value or as missing
/// cells). Quoted fields (`"a,b"`) count as one field.
fn check_rows(bytes: &[u8], origin: &str, separator: u8) -> Result<()> {
    let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let fields = |line: &[u8]| {
        let mut quoted = false;
        1 + line
            .iter()
            .filter(|&&b| {
                if b == b'"' {
                    quoted = !quoted;
                }
                b == separator && !quoted
            })
            .count()
    };
    let mut lines = text.split(|&b| b == b'\n').enumerate().filter(|(_, l)| !l.iter().all(|b| b.is_ascii_whitespace()));
    let Some((_, header)) = lines.next() else { return Ok(()) };
    let expected = fields(header);
    for (i, line) in lines {
        let n = fields(line);
        if n != expected {
            return Err(Error::data(format!(
                "{origin}:{}: {n} fields, but the header has {expected}; every row needs one value per column \
                 (leave a cell empty for a missing value)",
                i + 1
            )));
        }
    }
    if !text.is_empty() && !text.ends_with(b"\n") {
        let line = text.iter().filter(|&&b| b == b'\n').count() + 1;
        return Err(Error::data(format!(
            "{origin}:{line}: the file ends without a line ending, so its last row may be cut off; \
             if the row is complete, end the file with a newline"
        )));
    }
    Ok(())
}

/// Parse a table file's bytes with every cell as text (nothing coerced).
fn read_frame(bytes: Vec<u8>, origin: &str, format: TableFormat) -> Result<DataFrame> {
    let bad = |e: PolarsError| Error::data(format!("{origin}: cannot read table: {e}"));
    match format {
        TableFormat::Tsv | TableFormat::Csv => {
            let separator = if format == TableFormat::Tsv { b'\t' } else { b',' };
            CsvReadOptions::default()
                .with_has_header(true)
                .with_infer_schema_length(Some(0))
                .with_parse_options(CsvParseOptions::default().with_separator(separator).with_missing_is_null(false))
                .into_reader_with_file_handle(std::io::Cursor::new(bytes))
                .finish()
                .map_err(bad)
        }
        TableFormat::Parquet => ParquetReader::new(std::io::Cursor::new(bytes)).finish().map_err(bad),
    }
}

/// Header names that mark a subject id column in an item table (compared ignoring case).
pub const ID_COLUMN_NAMES: [&str; 4] = ["participant_id", "subject", "sub", "id"];

/// The id column of an item table when none is declared: a column named as in
/// [`ID_COLUMN_NAMES`], else a first column whose values are unique and not numbers (or all
/// `sub-…` labels); `None` when every column looks like an item.
pub fn detect_id_column(path: &Path) -> Result<Option<String>> {
    let format = format_of(path, None)?;
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let origin = path.display().to_string();
    let frame = read_frame(bytes, &origin, format)?;
    let header: Vec<String> = frame.get_column_names().iter().map(|n| n.to_string()).collect();
    if let Some(named) = header.iter().find(|h| ID_COLUMN_NAMES.iter().any(|id| h.eq_ignore_ascii_case(id))) {
        return Ok(Some(named.clone()));
    }
    let Some(first) = frame.columns().first() else { return Ok(None) };
    let Ok(column) = first.as_materialized_series().cast(&DataType::String) else { return Ok(None) };
    let Ok(texts) = column.str() else { return Ok(None) };
    let values: Vec<String> = texts.iter().map(|v| v.unwrap_or_default().trim().to_string()).collect();
    let unique = values.iter().collect::<std::collections::BTreeSet<_>>().len() == values.len();
    let labels = values.iter().all(|v| v.starts_with("sub-")) || values.iter().any(|v| v.parse::<f64>().is_err());
    Ok((unique && labels && !values.is_empty()).then(|| header[0].clone()))
}

/// Items for factor analysis: every column but `id_column` must be a complete number (nothing
/// is imputed). Returns the item names, the row ids (the id column, or 1-based row numbers) and
/// the values, rows × items, row-major. A missing or non-numeric cell is an error naming its
/// line and item.
pub fn read_items(path: &Path, id_column: Option<&str>) -> Result<(Vec<String>, Vec<String>, Vec<f64>)> {
    let format = format_of(path, None)?;
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let origin = path.display().to_string();
    let bad = |e: PolarsError| Error::data(format!("{origin}: cannot read table: {e}"));
    let frame = read_frame(bytes, &origin, format)?;
    let header: Vec<String> = frame.get_column_names().iter().map(|n| n.to_string()).collect();
    let id_at = match id_column {
        Some(id) => Some(
            header
                .iter()
                .position(|h| h == id)
                .ok_or_else(|| Error::data(format!("{origin}: no column `{id}` (columns: {})", preview(&header))))?,
        ),
        None => None,
    };
    let texts = |i: usize| -> Result<Vec<Option<String>>> {
        let column = frame.columns()[i].as_materialized_series().cast(&DataType::String).map_err(bad)?;
        Ok(column.str().map_err(bad)?.iter().map(|v| v.map(|s| s.trim().to_string())).collect())
    };
    let n = frame.height();
    let ids: Vec<String> = match id_at {
        Some(i) => texts(i)?.into_iter().map(Option::unwrap_or_default).collect(),
        None => (1..=n).map(|r| r.to_string()).collect(),
    };
    let names: Vec<String> =
        header.iter().enumerate().filter(|(i, _)| Some(*i) != id_at).map(|(_, h)| h.clone()).collect();
    let mut values = vec![0.0; n * names.len()];
    for (j, i) in (0..header.len()).filter(|i| Some(*i) != id_at).enumerate() {
        for (row, cell) in texts(i)?.into_iter().enumerate() {
            let text = cell.unwrap_or_default();
            values[row * names.len() + j] = text.parse().ok().filter(|v: &f64| v.is_finite()).ok_or_else(|| {
                Error::data(format!(
                    "{origin}:{}: item `{}` is `{text}`; factor analysis needs complete numeric items \
                     (nothing is imputed: score or exclude incomplete rows first)",
                    row + 2,
                    header[i]
                ))
            })?;
        }
    }
    Ok((names, ids, values))
}

/// The first column names, for messages. A one-column "table" is more likely some other file
/// (a table needs an id and a value), so its header is described, never echoed.
pub fn preview(names: &[String]) -> String {
    if names.len() < 2 {
        let bytes = names.first().map_or(0, String::len);
        return format!(
            "only one column, a header of {bytes} bytes; is this a table? (TSV separates columns with tabs)"
        );
    }
    let shown: Vec<&str> = names.iter().take(8).map(String::as_str).collect();
    if names.len() > 8 { format!("{}, … ({} in all)", shown.join(", "), names.len()) } else { shown.join(", ") }
}
