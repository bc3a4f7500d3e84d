//! The reviewer's view of an output folder: `report.html` (one self-contained page), `methods.md`,
//! `figures/*.svg` and `ro-crate-metadata.json`; and `verify`, which reruns a study in a fresh
//! cache and compares the bytes with the lock.
//!
//! The renderer's only input is the published folder ([`folder::Folder`]): the lock, the
//! provenance records, the result tables, the copy of the study file and `run.json` (the record of
//! the last run). `neurospec report DIR` therefore rebuilds exactly what a run writes. The run
//! adds those two files ([`publish`]) and then calls [`render`].
//!
//! Which files are results and which are views: every file listed in `neurospec.lock`, the
//! provenance records (minus timings and host) and `dataset_description.json` are results, and
//! `verify` compares them. `study.toml` is compared with the lock's study hash. `run.json`,
//! `report.html`, `methods.md`, `figures/` and `ro-crate-metadata.json` are views made from those
//! results plus the run's date and cached/executed outcome; they are regenerated, not compared.

pub mod charts;
pub mod dag;
pub mod folder;
pub mod imaging;
pub mod methods;
pub mod page;
pub mod qcfc;
pub mod rocrate;
pub mod slices;
pub mod study;
pub mod tables;
pub mod verify;

use crate::error::{Error, Result};
use crate::exec::{Outcome, RunReport};
use crate::plan::Plan;
use crate::spec::LoadedStudy;
use folder::{Folder, RUN_FILE, RunInfo, STUDY_FILE};
use std::path::{Path, PathBuf};

pub const REPORT_FILE: &str = "report.html";
pub const METHODS_FILE: &str = "methods.md";
pub const FIGURES_DIR: &str = "figures";
pub const CRATE_FILE: &str = "ro-crate-metadata.json";

/// Whether a file of the output folder (relative path) is a view made by this module from the
/// results plus the run's date and outcome, which two runs of the same study need not share.
/// A file the report step adds to a published folder: a view, or the copy of the study file.
pub fn is_companion(rel: &str) -> bool {
    is_view(rel) || rel == STUDY_FILE
}

pub fn is_view(rel: &str) -> bool {
    let rel = rel.replace('\\', "/");
    [REPORT_FILE, METHODS_FILE, CRATE_FILE, RUN_FILE].contains(&rel.as_str()) || rel.starts_with("figures/")
}

/// One figure: an SVG shown inline and written to `figures/<name>.svg`.
pub struct Figure {
    pub name: String,
    pub caption: String,
    pub svg: String,
}

/// Put in a section's body where a figure of the section should appear (else figures lead).
pub fn figure_marker(name: &str) -> String {
    format!("<!--figure:{name}-->")
}

/// One part of the report.
pub struct Section {
    pub id: &'static str,
    pub title: String,
    /// HTML made by this module (text escaped where it was built).
    pub body: String,
    pub figures: Vec<Figure>,
}

/// What rendering wrote.
pub struct Rendered {
    pub files: Vec<PathBuf>,
    pub report_bytes: usize,
    pub figures: usize,
}

/// Write a file only if its bytes differ (atomically, via a temporary file in the same folder).
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let parent = path.parent().expect("inside the output folder");
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    crate::store::write_atomic_in(parent, path, bytes)
}

/// After a successful run has published `dir`: copy the study file in, record the run, render.
pub fn publish(
    dir: &Path,
    loaded: &LoadedStudy,
    plan: &Plan,
    report: &RunReport,
    wall_seconds: f64,
) -> Result<Rendered> {
    let bytes = std::fs::read(&loaded.path).map_err(|e| Error::io(&loaded.path, e))?;
    write_file(&dir.join(STUDY_FILE), &bytes)?;
    let stages = report
        .outcomes
        .iter()
        .map(|(i, o)| {
            let state = match o {
                Outcome::Executed(_) => "executed",
                Outcome::Cached(_) => "cached",
                Outcome::Failed(_) => "failed",
                Outcome::Skipped => "skipped",
            };
            (plan.node(*i).id.clone(), state.to_string())
        })
        .collect();
    let study = relative_path(dir, &loaded.path);
    let given = loaded.path.display().to_string();
    let info = RunInfo {
        study,
        study_name: loaded.path.file_name().map_or_else(|| given.clone(), |n| n.to_string_lossy().to_string()),
        command: format!("neurospec run {given}"),
        date: rfc3339_now(),
        stages,
        wall_seconds,
    };
    write_file(&dir.join(RUN_FILE), (serde_json::to_string_pretty(&info).expect("json") + "\n").as_bytes())?;
    render(dir)
}

/// Render the report, methods, figures and RO-Crate of a published folder from its files alone.
pub fn render(dir: &Path) -> Result<Rendered> {
    let folder = Folder::read(dir)?;
    let mut sections = vec![study::header(&folder), study::flow(&folder)];
    sections.extend(imaging::sections(&folder)?);
    sections.extend(tables::sections(&folder));
    let methods = methods::methods(&folder);
    sections.push(methods::section(&methods));
    sections.push(provenance_section(&folder));
    let sections: Vec<Section> = sections.into_iter().flatten().collect();

    let mut files = Vec::new();
    let mut figures = 0;
    for s in &sections {
        for f in &s.figures {
            let path = dir.join(FIGURES_DIR).join(format!("{}.svg", f.name));
            write_file(&path, f.svg.as_bytes())?;
            files.push(path);
            figures += 1;
        }
    }
    let methods_path = dir.join(METHODS_FILE);
    write_file(&methods_path, methods::markdown(&folder, &methods).as_bytes())?;
    files.push(methods_path);
    let html = page::render(&folder, &sections)?;
    let report_path = dir.join(REPORT_FILE);
    write_file(&report_path, html.as_bytes())?;
    files.push(report_path);
    let crate_path = dir.join(CRATE_FILE);
    write_file(
        &crate_path,
        (serde_json::to_string_pretty(&rocrate::metadata(&folder)).expect("json") + "\n").as_bytes(),
    )?;
    files.push(crate_path);
    Ok(Rendered { files, report_bytes: html.len(), figures })
}

fn provenance_section(folder: &Folder) -> Option<Section> {
    let svg = dag::graph_svg(folder);
    let body = format!(
        "<p>Each box is a stage instance (kinds with many instances are one box, ×N); blue: executed in the last run, grey: \
         taken from the cache. Fingerprints hash the stage kind, its code version, its parameters and its inputs' content.</p>{}",
        dag::stage_table(folder)
    );
    Some(Section {
        id: "provenance",
        title: "Provenance".into(),
        body,
        figures: vec![Figure { name: "provenance_dag".into(), caption: "Stage graph".into(), svg }],
    })
}

/// `path` relative to `dir` (both made absolute), with `/` separators.
fn relative_path(dir: &Path, path: &Path) -> String {
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (d, p) = (abs(dir), abs(path));
    let common = d.components().zip(p.components()).take_while(|(a, b)| a == b).count();
    let ups = d.components().count() - common;
    let mut parts: Vec<String> = std::iter::repeat_n("..".to_string(), ups).collect();
    parts.extend(p.components().skip(common).map(|c| c.as_os_str().to_string_lossy().to_string()));
    parts.join("/")
}

/// The current UTC time as RFC 3339 (seconds).
pub fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// UTC RFC 3339 of seconds since the Unix epoch (civil-from-days, Howard Hinnant's algorithm).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_796_083_200 + 3_661), "2026-12-01T01:01:01Z");
    }
}
