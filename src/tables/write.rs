//! Writing tables as TSV, CSV or Parquet (for `neurospec simulate`).

use super::TableFormat;
use super::{ColumnData, Table};
use crate::error::{Error, Result};
use polars::prelude::{Column as PlColumn, DataFrame, ParquetWriter};
use std::path::Path;

pub fn write_table(table: &Table, id_name: &str, format: TableFormat, path: &Path) -> Result<()> {
    let bytes = match format {
        TableFormat::Tsv => table.to_tsv(id_name).into_bytes(),
        TableFormat::Csv => table.to_tsv(id_name).replace('\t', ",").into_bytes(),
        TableFormat::Parquet => {
            let mut columns = vec![PlColumn::new(id_name.into(), table.ids.clone())];
            for c in &table.columns {
                columns.push(match &c.data {
                    ColumnData::Numeric(v) => PlColumn::new(
                        c.name.as_str().into(),
                        v.iter().map(|x| (!x.is_nan()).then_some(*x)).collect::<Vec<Option<f64>>>(),
                    ),
                    ColumnData::Text(v) => PlColumn::new(c.name.as_str().into(), v.clone()),
                });
            }
            let mut frame = DataFrame::new(table.rows(), columns)
                .map_err(|e| Error::data(format!("{}: cannot build table: {e}", path.display())))?;
            let mut buffer = Vec::new();
            ParquetWriter::new(&mut buffer)
                .finish(&mut frame)
                .map_err(|e| Error::data(format!("{}: cannot write Parquet: {e}", path.display())))?;
            buffer
        }
    };
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}
