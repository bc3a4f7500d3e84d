//! fMRIPrep confound files of every generation, read into one vocabulary, and the volumes they
//! flag.
//!
//! - **Column names.** fMRIPrep 1.0–1.1 wrote camel case (`X`, `RotX`, `FramewiseDisplacement`,
//!   `stdDVARS`, `aCompCor00`, `NonSteadyStateOutlier00`, …); 1.2 and later write snake case
//!   (`trans_x`, `framewise_displacement`, `a_comp_cor_00`, …), which is what everything else
//!   reads. Old names are renamed on reading (only when the new name is absent).
//! - **Expansions.** Before 1.4 the files hold no `_derivative1` / `_power2` columns; when a
//!   strategy asks for one that is absent but its base column is present, it is computed as
//!   fMRIPrep does: the backward difference (first volume undefined), the square, or the square
//!   of the difference.
//! - **First row.** `n/a` in the first row (derivatives cannot be computed there) takes the
//!   second row's value, as nilearn's `load_confounds` does; any other missing value is an error
//!   naming file, line and column.
//! - **Sidecar.** `…_desc-confounds_timeseries.json` (20.x and later) describes each CompCor
//!   component (`Mask`, `Retained`, `VarianceExplained`, `CumulativeVarianceExplained`);
//!   aCompCor components are chosen from the `combined` mask in file order, as nilearn does.
//! - **Flags.** `non_steady_state_outlierNN` and `motion_outlierNN` are one-hot columns: each
//!   must hold only 0 and 1, and a volume is flagged when any column of the family marks it.

use crate::error::{Error, Result};
use crate::tables::Tsv;
use std::path::Path;

/// A confounds table with its JSON sidecar, if any.
pub struct Confounds {
    pub path: String,
    table: Tsv,
    sidecar: Option<serde_json::Map<String, serde_json::Value>>,
}

/// How many aCompCor components (from the `combined` mask) to regress.
#[derive(Debug, Clone, PartialEq)]
pub enum CompCor {
    /// The first `n` components.
    Count(usize),
    /// Every component in the file.
    All,
    /// The first components whose cumulative variance explained reaches this fraction (0–1).
    Variance(f64),
}

/// fMRIPrep 1.0–1.1 names and their later spelling.
const LEGACY: [(&str, &str); 12] = [
    ("X", "trans_x"),
    ("Y", "trans_y"),
    ("Z", "trans_z"),
    ("RotX", "rot_x"),
    ("RotY", "rot_y"),
    ("RotZ", "rot_z"),
    ("FramewiseDisplacement", "framewise_displacement"),
    ("stdDVARS", "std_dvars"),
    ("non-stdDVARS", "dvars"),
    ("CSF", "csf"),
    ("WhiteMatter", "white_matter"),
    ("GlobalSignal", "global_signal"),
];
/// fMRIPrep 1.0–1.1 numbered families: `aCompCor00` → `a_comp_cor_00`.
const LEGACY_FAMILIES: [(&str, &str); 5] = [
    ("aCompCor", "a_comp_cor_"),
    ("tCompCor", "t_comp_cor_"),
    ("Cosine", "cosine"),
    ("NonSteadyStateOutlier", "non_steady_state_outlier"),
    ("AROMAAggrComp", "aroma_motion_"),
];

fn modern_name(name: &str) -> Option<String> {
    if let Some((_, new)) = LEGACY.iter().find(|(old, _)| *old == name) {
        return Some(new.to_string());
    }
    LEGACY_FAMILIES.iter().find_map(|(old, new)| {
        let number = name.strip_prefix(old)?;
        (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())).then(|| format!("{new}{number}"))
    })
}

/// The sidecar of a confounds TSV: same name, `.json`.
fn sidecar_path(path: &Path) -> std::path::PathBuf {
    path.with_extension("json")
}

impl Confounds {
    pub fn read(path: &Path) -> Result<Confounds> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut table = Tsv::parse(&text);
        let present: Vec<String> = table.header.clone();
        for name in table.header.iter_mut() {
            if let Some(new) = modern_name(name).filter(|n| !present.contains(n)) {
                *name = new;
            }
        }
        let json = sidecar_path(path);
        let sidecar = match std::fs::read(&json) {
            Ok(bytes) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(serde_json::Value::Object(map)) => Some(map),
                Ok(_) => return Err(Error::data(format!("{}: expected a JSON object", json.display()))),
                Err(e) => return Err(Error::data(format!("{}: not valid JSON ({e})", json.display()))),
            },
            Err(_) => None,
        };
        Ok(Confounds { path: path.display().to_string(), table, sidecar })
    }

    pub fn rows(&self) -> usize {
        self.table.rows.len()
    }

    /// Column names, in file order (after renaming).
    pub fn header(&self) -> &[String] {
        &self.table.header
    }

    /// Columns whose name starts with `prefix`, in file order.
    pub fn family(&self, prefix: &str) -> Vec<String> {
        self.table.header.iter().filter(|h| h.starts_with(prefix)).cloned().collect()
    }

    fn missing(&self, name: &str) -> Error {
        let hint = crate::error::did_you_mean(name, self.table.header.iter().map(String::as_str))
            .map(|b| format!(" (did you mean `{b}`?)"))
            .unwrap_or_default();
        Error::data(format!("{}: no confound column `{name}`{hint}", self.path))
    }

    /// One column as written: `None` for `n/a`, empty or NaN cells.
    fn raw(&self, name: &str) -> Result<Vec<Option<f64>>> {
        let at = self.table.col(name).ok_or_else(|| self.missing(name))?;
        (0..self.rows())
            .map(|row| {
                let text = self.table.rows[row].get(at).map(String::as_str).unwrap_or("").trim();
                match text {
                    "n/a" | "" | "NaN" | "nan" => Ok(None),
                    _ => text.parse::<f64>().ok().filter(|v| v.is_finite()).map(Some).ok_or_else(|| {
                        Error::data(format!(
                            "{}:{}: confound `{name}` has `{text}`; expected a number",
                            self.path,
                            row + 2
                        ))
                    }),
                }
            })
            .collect()
    }

    /// One column with the first row's gap filled from the second; computed from its base
    /// column when it is an absent `_derivative1` / `_power2` expansion.
    fn column(&self, name: &str) -> Result<Vec<f64>> {
        let values = if self.table.col(name).is_some() {
            self.raw(name)?
        } else {
            let (base, derivative, square) = if let Some(b) = name.strip_suffix("_derivative1_power2") {
                (b, true, true)
            } else if let Some(b) = name.strip_suffix("_derivative1") {
                (b, true, false)
            } else if let Some(b) = name.strip_suffix("_power2") {
                (b, false, true)
            } else {
                return Err(self.missing(name));
            };
            if self.table.col(base).is_none() {
                return Err(self.missing(name));
            }
            let base_values = self.raw(base)?;
            let mut out: Vec<Option<f64>> = if derivative {
                (0..base_values.len())
                    .map(|i| match (i.checked_sub(1).and_then(|j| base_values[j]), base_values[i]) {
                        (Some(a), Some(b)) => Some(b - a),
                        _ => None,
                    })
                    .collect()
            } else {
                base_values
            };
            if square {
                out.iter_mut().for_each(|v| *v = v.map(|x| x * x));
            }
            out
        };
        let t = values.len();
        values
            .iter()
            .enumerate()
            .map(|(row, v)| match v {
                Some(x) => Ok(*x),
                None if row == 0 && t > 1 => values[1].ok_or_else(|| self.gap(name, 1)),
                None => Err(self.gap(name, row)),
            })
            .collect()
    }

    fn gap(&self, name: &str, row: usize) -> Error {
        Error::data(format!(
            "{}:{}: confound `{name}` is missing (`n/a`) outside the first volume; expected a number",
            self.path,
            row + 2
        ))
    }

    /// Columns as a T × C row-major matrix (see the module doc for `n/a` and expansions).
    pub fn matrix(&self, columns: &[String]) -> Result<Vec<f64>> {
        let t = self.rows();
        let mut out = vec![0.0; t * columns.len()];
        for (c, name) in columns.iter().enumerate() {
            for (row, v) in self.column(name)?.into_iter().enumerate() {
                out[row * columns.len() + c] = v;
            }
        }
        Ok(out)
    }

    /// A per-volume measure whose first volume is undefined (`framewise_displacement`,
    /// `std_dvars`), the first `n/a` read as 0 (never above a threshold, as in nilearn).
    pub fn measure(&self, name: &str, purpose: &str) -> Result<Vec<f64>> {
        if self.table.col(name).is_none() {
            return Err(Error::data(format!("{}: no `{name}` column for {purpose}", self.path)));
        }
        let values = self.raw(name)?;
        values
            .iter()
            .enumerate()
            .map(|(row, v)| match v {
                Some(x) => Ok(*x),
                None if row == 0 => Ok(0.0),
                None => Err(self.gap(name, row)),
            })
            .collect()
    }

    /// Framewise displacement per volume (the first volume's `n/a` read as 0).
    pub fn framewise_displacement(&self) -> Result<Vec<f64>> {
        self.measure("framewise_displacement", "scrubbing")
    }

    /// Volumes flagged by any one-hot column whose name starts with `prefix`
    /// (`non_steady_state_outlier`, `motion_outlier`); every cell must be 0 or 1.
    pub fn flagged(&self, prefix: &str) -> Result<Vec<bool>> {
        let mut flags = vec![false; self.rows()];
        for name in self.family(prefix) {
            for (row, v) in self.raw(&name)?.into_iter().enumerate() {
                match v {
                    Some(1.0) => flags[row] = true,
                    Some(0.0) => {}
                    _ => {
                        let text = v.map_or("n/a".to_string(), |x| x.to_string());
                        return Err(Error::data(format!(
                            "{}:{}: flag column `{name}` has `{text}`; fMRIPrep's outlier columns hold only 0 and 1",
                            self.path,
                            row + 2
                        )));
                    }
                }
            }
        }
        Ok(flags)
    }

    /// The sidecar's entry for a column, if any.
    fn describe(&self, column: &str) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.sidecar.as_ref()?.get(column)?.as_object()
    }

    /// aCompCor columns chosen by `choice`: `a_comp_cor_NN` in number order, restricted (when
    /// the sidecar describes them) to the `combined` mask and to components fMRIPrep retained.
    pub fn acompcor(&self, choice: &CompCor) -> Result<Vec<String>> {
        let mut candidates: Vec<(u32, String)> = self
            .family("a_comp_cor_")
            .into_iter()
            .filter_map(|c| Some((c.trim_start_matches("a_comp_cor_").parse().ok()?, c)))
            .collect();
        candidates.sort();
        let mut columns: Vec<String> = candidates
            .into_iter()
            .map(|(_, c)| c)
            .filter(|c| match self.describe(c) {
                Some(d) => {
                    d.get("Mask").and_then(|m| m.as_str()).is_none_or(|m| m == "combined")
                        && d.get("Retained").and_then(|r| r.as_bool()) != Some(false)
                }
                None => true,
            })
            .collect();
        let described = if self.sidecar.is_some() { " from the `combined` mask" } else { "" };
        match choice {
            CompCor::All => {}
            CompCor::Count(n) => {
                if columns.len() < *n {
                    return Err(Error::data(format!(
                        "{}: {n} aCompCor components requested but the file has {}{described}; ask for fewer",
                        self.path,
                        columns.len()
                    )));
                }
                columns.truncate(*n);
            }
            CompCor::Variance(fraction) => {
                if self.sidecar.is_none() {
                    return Err(Error::data(format!(
                        "{}: choosing aCompCor components by variance explained needs the JSON sidecar ({}); \
                         give a count instead, e.g. acompcor6",
                        self.path,
                        sidecar_path(Path::new(&self.path)).display()
                    )));
                }
                let mut chosen = Vec::new();
                for c in columns {
                    let cumulative = self
                        .describe(&c)
                        .and_then(|d| d.get("CumulativeVarianceExplained"))
                        .and_then(|v| v.as_f64())
                        .ok_or_else(|| {
                            Error::data(format!(
                                "{}: the sidecar gives no `CumulativeVarianceExplained` for `{c}`",
                                self.path
                            ))
                        })?;
                    chosen.push(c);
                    if cumulative >= *fraction {
                        break;
                    }
                }
                columns = chosen;
            }
        }
        if columns.is_empty() {
            return Err(Error::data(format!("{}: no aCompCor component (`a_comp_cor_NN`){described}", self.path)));
        }
        Ok(columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn legacy_names_are_renamed_and_expansions_computed() {
        let dir = tempfile::tempdir().unwrap();
        let path =
            write(dir.path(), "c.tsv", "X\tFramewiseDisplacement\taCompCor00\n1\tn/a\t5\n3\t0.2\t6\n7\t0.4\t7\n");
        let c = Confounds::read(&path).unwrap();
        assert_eq!(c.header(), ["trans_x", "framewise_displacement", "a_comp_cor_00"]);
        let m = c.matrix(&["trans_x_derivative1".into(), "trans_x_power2".into(), "trans_x_derivative1_power2".into()]);
        assert_eq!(m.unwrap(), vec![2.0, 1.0, 4.0, 2.0, 9.0, 4.0, 4.0, 49.0, 16.0]);
        assert_eq!(c.framewise_displacement().unwrap(), vec![0.0, 0.2, 0.4]);
    }

    #[test]
    fn flags_must_be_zero_or_one() {
        let dir = tempfile::tempdir().unwrap();
        let good =
            write(dir.path(), "a.tsv", "non_steady_state_outlier00\tnon_steady_state_outlier01\n1.0\t0\n0\t1\n0\t0\n");
        assert_eq!(Confounds::read(&good).unwrap().flagged("non_steady_state_outlier").unwrap(), [true, true, false]);
        let bad = write(dir.path(), "b.tsv", "motion_outlier00\n0\n0.5\n");
        let e = Confounds::read(&bad).unwrap().flagged("motion_outlier").unwrap_err().to_string();
        assert!(e.contains("b.tsv:3: flag column `motion_outlier00` has `0.5`"), "{e}");
    }

    #[test]
    fn acompcor_reads_the_sidecar() {
        let dir = tempfile::tempdir().unwrap();
        let path =
            write(dir.path(), "c.tsv", "a_comp_cor_00\ta_comp_cor_01\ta_comp_cor_02\ta_comp_cor_03\n1\t2\t3\t4\n");
        write(
            dir.path(),
            "c.json",
            r#"{"a_comp_cor_00": {"Mask": "CSF", "CumulativeVarianceExplained": 0.6},
                "a_comp_cor_01": {"Mask": "combined", "CumulativeVarianceExplained": 0.3},
                "a_comp_cor_02": {"Mask": "combined", "CumulativeVarianceExplained": 0.55},
                "a_comp_cor_03": {"Mask": "combined", "CumulativeVarianceExplained": 0.7}}"#,
        );
        let c = Confounds::read(&path).unwrap();
        assert_eq!(c.acompcor(&CompCor::All).unwrap(), ["a_comp_cor_01", "a_comp_cor_02", "a_comp_cor_03"]);
        assert_eq!(c.acompcor(&CompCor::Variance(0.5)).unwrap(), ["a_comp_cor_01", "a_comp_cor_02"]);
        assert_eq!(c.acompcor(&CompCor::Count(1)).unwrap(), ["a_comp_cor_01"]);
        let e = c.acompcor(&CompCor::Count(4)).unwrap_err().to_string();
        assert!(e.contains("4 aCompCor components requested but the file has 3 from the `combined` mask"), "{e}");
    }
}
