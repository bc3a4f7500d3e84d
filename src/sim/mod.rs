//! Synthetic cohorts with planted ground truth.
//!
//! A preset knows its tables' columns without simulating (so `neurospec check` can validate a
//! study on simulated data instantly) and generates them deterministically from a seed.

pub mod amygdala;
pub mod ketamine;
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
        Preset::AmygdalaWellbeing | Preset::KetamineResponse => Vec::new(),
    }
}

/// Column names (id column first) of one table of a preset.
pub fn columns(preset: Preset, table: &str) -> Option<Vec<String>> {
    match preset {
        Preset::UkbSymptoms => ukb::columns(table),
        Preset::AmygdalaWellbeing | Preset::KetamineResponse => None,
    }
}

/// The subject id column of simulated tables.
pub const ID_COLUMN: &str = "eid";

/// Simulate a table-writing preset (see [`Preset::writes_files`] for the others).
pub fn simulate(preset: Preset, subjects: usize, seed: u64) -> crate::error::Result<Cohort> {
    match preset {
        Preset::UkbSymptoms => Ok(ukb::simulate(subjects, seed)),
        Preset::AmygdalaWellbeing | Preset::KetamineResponse => Err(crate::error::Error::data(format!(
            "the `{}` preset writes files; give `[simulate] dir`",
            preset.name()
        ))),
    }
}

/// Code version of the file-writing presets: a change rewrites simulated folders.
const FILES_VERSION: u32 = 2;

/// The cohort a file-writing preset would write: where (`[simulate] dir`, resolved) and the stamp
/// that identifies it (preset, subjects, seed, simulator version). `None` for other studies.
fn cohort(loaded: &crate::spec::LoadedStudy) -> crate::error::Result<Option<(std::path::PathBuf, String)>> {
    use crate::error::Error;
    let Some(sim) = &loaded.study.simulate else { return Ok(None) };
    if !sim.preset.writes_files() {
        return Ok(None);
    }
    let Some(dir) = &sim.dir else {
        let keys = crate::keys!["simulate"];
        let mut d =
            loaded.diagnostic(&keys, format!("the `{}` preset writes files and needs `dir`", sim.preset.name()));
        d.hint = Some(format!("e.g. dir = \"data/{}\"", sim.preset.name()));
        return Err(Error::Study(vec![d]));
    };
    let seed = sim.seed.unwrap_or_else(|| crate::stats::rng::derive_seed(loaded.study.study.seed, "simulate"));
    let stamp = format!(
        "{{\"preset\": \"{}\", \"subjects\": {}, \"seed\": {seed}, \"version\": {FILES_VERSION}}}\n",
        sim.preset.name(),
        sim.subjects
    );
    Ok(Some((loaded.dir.join(dir), stamp)))
}

const STAMP: &str = ".neurospec-simulation.json";
/// The files the simulator wrote into a cohort folder, one relative path per line.
const FILES: &str = ".neurospec-simulation-files.txt";

/// Every file under `dir`, relative to it, sorted (symbolic links are listed, not followed).
fn files_under(dir: &std::path::Path) -> crate::error::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).map_err(|e| crate::error::Error::io(&folder, e))? {
            let entry = entry.map_err(|e| crate::error::Error::io(&folder, e))?;
            let kind = entry.file_type().map_err(|e| crate::error::Error::io(entry.path(), e))?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else {
                out.push(entry.path().strip_prefix(dir).unwrap_or(&entry.path()).to_path_buf());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A file in a cohort folder that its simulator did not write (or, with no list of what it
/// wrote, any file but the stamp).
fn foreign_file(dir: &std::path::Path) -> crate::error::Result<Option<std::path::PathBuf>> {
    let listed = std::fs::read_to_string(dir.join(FILES)).unwrap_or_default();
    let listed: std::collections::HashSet<&str> = listed.lines().collect();
    Ok(files_under(dir)?.into_iter().find(|f| {
        let name = f.to_string_lossy().replace('\\', "/");
        name != STAMP && name != FILES && !listed.contains(name.as_str())
    }))
}

/// Whether `[simulate] dir` already holds the study's cohort (or the study simulates no files).
pub fn is_materialised(loaded: &crate::spec::LoadedStudy) -> crate::error::Result<bool> {
    Ok(match cohort(loaded)? {
        Some((target, stamp)) => std::fs::read_to_string(target.join(STAMP)).is_ok_and(|s| s == stamp),
        None => true,
    })
}

/// Write a file-writing preset's cohort into `[simulate] dir` unless that folder already holds
/// the same cohort (same preset, subjects, seed and simulator version, recorded in a stamp).
/// The cohort is written into a temporary sibling folder and renamed into place, so an
/// interrupted simulation leaves no half-written folder behind. `run` calls it holding the cache
/// lock, so two first runs of one study simulate once.
pub fn materialise(loaded: &crate::spec::LoadedStudy) -> crate::error::Result<()> {
    match cohort(loaded)? {
        Some((target, _)) => materialise_into(loaded, &target),
        None => Ok(()),
    }
}

/// Write the study's cohort into `target` (see [`materialise`]). `check` and `plan` use a
/// folder inside the cache, so that they write nothing into the study's folder.
pub fn materialise_into(loaded: &crate::spec::LoadedStudy, target: &std::path::Path) -> crate::error::Result<()> {
    use crate::error::Error;
    let Some(sim) = &loaded.study.simulate else { return Ok(()) };
    let Some((_, stamp)) = cohort(loaded)? else { return Ok(()) };
    let seed = sim.seed.unwrap_or_else(|| crate::stats::rng::derive_seed(loaded.study.study.seed, "simulate"));
    let stamp_path = target.join(STAMP);
    if target.exists() {
        match std::fs::read_to_string(&stamp_path) {
            Ok(existing) if existing == stamp => return Ok(()),
            Ok(_) => {
                // Another cohort of ours: replace it, unless someone added files to it.
                if let Some(extra) = foreign_file(target)? {
                    return Err(Error::data(format!(
                        "{}: holds a simulated cohort to replace, but also `{}`, which the simulator did not write; \
                         refusing to delete it (move it elsewhere, or choose another `dir`)",
                        target.display(),
                        extra.display()
                    )));
                }
                std::fs::remove_dir_all(target).map_err(|e| Error::io(target, e))?
            }
            Err(_) => {
                return Err(Error::data(format!(
                    "{}: the folder exists but was not written by `[simulate]`; refusing to overwrite it \
                     (remove it or choose another `dir`)",
                    target.display()
                )));
            }
        }
    }
    let parent = target.parent().unwrap_or(&loaded.dir);
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    // Folders of killed simulations are deleted once provably ours and abandoned (store::scratch).
    crate::store::scratch::sweep(parent, ".simulating-", &[".neurospec-simulation.json"]);
    let mut tmp = crate::store::scratch::Scratch::create(parent, ".simulating-")?;
    eprintln!("simulating {} subjects ({}) into {} …", sim.subjects, sim.preset.name(), target.display());
    write_files(sim.preset, sim.subjects, seed, tmp.path())?;
    let written: Vec<String> =
        files_under(tmp.path())?.iter().map(|p| p.to_string_lossy().replace('\\', "/")).collect();
    std::fs::write(tmp.path().join(FILES), written.join("\n") + "\n").map_err(|e| Error::io(tmp.path(), e))?;
    std::fs::write(tmp.path().join(STAMP), &stamp).map_err(|e| Error::io(tmp.path(), e))?;
    tmp.unmark()?;
    if let Err(e) = std::fs::rename(tmp.path(), target) {
        // Another run simulated the same cohort meanwhile: use theirs (ours is deleted on drop).
        if std::fs::read_to_string(&stamp_path).is_ok_and(|existing| existing == stamp) {
            return Ok(());
        }
        return Err(Error::io(target, e));
    }
    tmp.keep();
    Ok(())
}

/// Write a file-writing preset's cohort into `out`.
fn write_files(preset: Preset, subjects: usize, seed: u64, out: &std::path::Path) -> crate::error::Result<()> {
    match preset {
        Preset::AmygdalaWellbeing => amygdala::write(subjects, seed, out),
        Preset::KetamineResponse => ketamine::write(subjects, seed, out),
        Preset::UkbSymptoms => {
            Err(crate::error::Error::data(format!("the `{}` preset writes tables, not files", preset.name())))
        }
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
    if preset.writes_files() {
        write_files(preset, subjects, seed, out)?;
        let mut study: crate::spec::Study = toml::from_str(embedded_study(preset)).expect("embedded study parses");
        let prefix = format!("{}/", study.simulate.as_ref().and_then(|s| s.dir.clone()).unwrap_or_default());
        study.simulate = None;
        study.study.seed = seed;
        let text = format!(
            "# Written by `neurospec simulate {}`: the embedded study, reading the simulated files.\n{}",
            preset.name(),
            toml::to_string(&study).expect("studies serialise").replace(&prefix, "")
        );
        return std::fs::write(out.join("study.toml"), text).map_err(|e| Error::io(out.join("study.toml"), e));
    }
    let cohort = simulate(preset, subjects, seed)?;
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
        Preset::AmygdalaWellbeing => include_str!("../../studies/amygdala-wellbeing.toml"),
        Preset::KetamineResponse => include_str!("../../studies/ketamine-amygdala.toml"),
    }
}
