//! The cache's table encoding: little-endian, length-prefixed, byte-for-byte deterministic.
//!
//! `NSTABLE1` · origin · rows (u64) · columns (u64) · ids · per column: name, kind (0 numeric,
//! 1 text), values (f64 LE, or u8 present flag + string).

use super::{Column, ColumnData, Table};
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"NSTABLE1";

pub fn encode(table: &Table) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + table.rows() * (8 * table.columns.len() + 12));
    out.extend_from_slice(MAGIC);
    put_str(&mut out, &table.origin);
    out.extend_from_slice(&(table.rows() as u64).to_le_bytes());
    out.extend_from_slice(&(table.columns.len() as u64).to_le_bytes());
    for id in &table.ids {
        put_str(&mut out, id);
    }
    for column in &table.columns {
        put_str(&mut out, &column.name);
        match &column.data {
            ColumnData::Numeric(values) => {
                out.push(0);
                for v in values {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            ColumnData::Text(values) => {
                out.push(1);
                for v in values {
                    match v {
                        Some(s) => {
                            out.push(1);
                            put_str(&mut out, s);
                        }
                        None => out.push(0),
                    }
                }
            }
        }
    }
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(corrupt)?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| corrupt())?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| corrupt())?))
    }
    fn string(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| corrupt())
    }
}

fn corrupt() -> Error {
    Error::data("a cached table is corrupt; delete the cache folder (.neurospec) and rerun")
}

pub fn decode(bytes: &[u8]) -> Result<Table> {
    if bytes.len() < 8 || &bytes[..8] != MAGIC {
        return Err(corrupt());
    }
    let mut r = Reader { bytes, at: 8 };
    let origin = r.string()?;
    let rows = r.u64()? as usize;
    let ncols = r.u64()? as usize;
    let ids = (0..rows).map(|_| r.string()).collect::<Result<Vec<_>>>()?;
    let mut columns = Vec::with_capacity(ncols);
    for _ in 0..ncols {
        let name = r.string()?;
        let data = match r.u8()? {
            0 => {
                let raw = r.take(rows * 8)?;
                ColumnData::Numeric(
                    raw.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect(),
                )
            }
            1 => ColumnData::Text(
                (0..rows)
                    .map(|_| if r.u8()? == 1 { r.string().map(Some) } else { Ok(None) })
                    .collect::<Result<Vec<_>>>()?,
            ),
            _ => return Err(corrupt()),
        };
        columns.push(Column { name, data });
    }
    Ok(Table { origin, ids, columns })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_exactly() {
        let mut t = Table::new("x.tsv", vec!["a".into(), "b".into()]);
        t.push_numeric("age", vec![1.5, f64::NAN]);
        t.push_text("site", vec![Some("s1".into()), None]);
        let back = decode(&encode(&t)).unwrap();
        assert_eq!(back.ids, t.ids);
        assert_eq!(back.columns[1], t.columns[1]);
        match &back.columns[0].data {
            ColumnData::Numeric(v) => assert!(v[0] == 1.5 && v[1].is_nan()),
            _ => panic!("numeric expected"),
        }
        assert!(decode(&encode(&t)[..20]).is_err());
    }
}
