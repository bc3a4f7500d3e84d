//! Synthetic cohorts with planted ground truth.
//!
//! A preset knows its tables' columns without simulating (so `neurospec check` can validate a
//! study on simulated data instantly) and generates them deterministically from a seed.

mod ukb;

use crate::spec::Preset;
use crate::tables::Table;
use std::collections::BTreeMap;

/// A simulated cohort: its tables and a ground-truth table (TSV) of planted effects.
pub struct Cohort {
    pub tables: BTreeMap<String, Table>,
    pub truth_tsv: String,
}

/// Table names a preset writes.
pub fn tables(preset: Preset) -> Vec<&'static str> {
    match preset {
        Preset::UkbSymptoms => vec!["pheno", "idps"],
    }
}

/// Column names (id column first) of one table of a preset.
pub fn columns(preset: Preset, table: &str) -> Option<Vec<String>> {
    match preset {
        Preset::UkbSymptoms => ukb::columns(table),
    }
}

/// The subject id column of simulated tables.
pub const ID_COLUMN: &str = "eid";

pub fn simulate(preset: Preset, subjects: usize, seed: u64) -> Cohort {
    match preset {
        Preset::UkbSymptoms => ukb::simulate(subjects, seed),
    }
}

/// Write a simulated cohort as files: its tables, `truth.tsv`, and `study.toml` — the embedded
/// study for this preset, rewritten to read the files instead of simulating.
pub fn write_cohort(
    preset: Preset,
    subjects: usize,
    seed: u64,
    format: crate::spec::TableFormat,
    out: &std::path::Path,
) -> crate::error::Result<()> {
    use crate::error::Error;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let cohort = simulate(preset, subjects, seed);
    let extension = match format {
        crate::spec::TableFormat::Tsv => "tsv",
        crate::spec::TableFormat::Csv => "csv",
        crate::spec::TableFormat::Parquet => "parquet",
    };
    for (name, table) in &cohort.tables {
        crate::tables::write::write_table(table, ID_COLUMN, format, &out.join(format!("{name}.{extension}")))?;
    }
    std::fs::write(out.join("truth.tsv"), &cohort.truth_tsv).map_err(|e| Error::io(out.join("truth.tsv"), e))?;
    let mut study: crate::spec::Study = toml::from_str(embedded_study(preset)).expect("embedded study parses");
    study.simulate = None;
    for (name, table) in study.tables.iter_mut() {
        let file = table.simulated.take().unwrap_or_else(|| name.clone());
        table.path = Some(format!("{file}.{extension}"));
    }
    study.study.seed = seed;
    let text = format!(
        "# Written by `neurospec simulate {}`: the embedded study, reading the simulated files.\n{}",
        preset.name(),
        toml::to_string(&study).expect("studies serialise")
    );
    std::fs::write(out.join("study.toml"), text).map_err(|e| Error::io(out.join("study.toml"), e))
}

/// The study file shipped for a preset (`studies/<preset>.toml`).
pub fn embedded_study(preset: Preset) -> &'static str {
    match preset {
        Preset::UkbSymptoms => include_str!("../../studies/ukb-symptoms.toml"),
    }
}
