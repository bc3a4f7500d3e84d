//! `neurospec extract` over many runs: a manifest of runs, or every run of an fMRIPrep folder,
//! in parallel, each failure reported with its row or run.

use super::extract::{ExtractArgs, Measure, extract, write};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Many subjects at once: a manifest TSV with columns `bold` and `out`, and optionally
/// `confounds` and `connectivity_out`, one row per run; paths relative to the manifest. Runs
/// are processed in parallel on `jobs` threads; every failure is reported with its row.
pub fn extract_batch(template: &ExtractArgs, manifest: &Path, jobs: usize) -> Result<()> {
    let text = std::fs::read_to_string(manifest).map_err(|e| Error::io(manifest, e))?;
    let table = crate::tables::Tsv::parse(&text);
    let base = manifest.parent().unwrap_or(Path::new("."));
    let column = |name: &str| table.col(name);
    let (Some(bold), Some(out)) = (column("bold"), column("out")) else {
        return Err(Error::data(format!("{}: the manifest needs columns `bold` and `out`", manifest.display())));
    };
    let (confounds, connectivity_out) = (column("confounds"), column("connectivity_out"));
    let path = |row: &[String], c: Option<usize>| -> Option<PathBuf> {
        c.and_then(|c| row.get(c)).filter(|v| !v.is_empty()).map(|v| base.join(v))
    };
    let runs: Vec<ExtractArgs> = table
        .rows
        .iter()
        .map(|row| ExtractArgs {
            bold: base.join(&row[bold]),
            out: base.join(&row[out]),
            confounds: path(row, confounds).or_else(|| template.confounds.clone()),
            connectivity_out: path(row, connectivity_out).or_else(|| template.connectivity_out.clone()),
            ..template.clone()
        })
        .collect();
    let labels: Vec<String> = (0..runs.len()).map(|i| format!("{}:{}", manifest.display(), i + 2)).collect();
    run_all(&runs, &labels, jobs)
}

/// Run many extractions in parallel; every failure is reported with its label.
fn run_all(runs: &[ExtractArgs], labels: &[String], jobs: usize) -> Result<()> {
    use rayon::prelude::*;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| Error::Usage(format!("cannot start {jobs} threads: {e}")))?;
    let failures: Vec<String> = pool.install(|| {
        runs.par_iter()
            .zip(labels)
            .filter_map(|(run, label)| extract(run).err().map(|e| format!("{label}: {}", e)))
            .collect()
    });
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Data(format!("{} of {} runs failed:\n{}", failures.len(), runs.len(), failures.join("\n"))))
    }
}

/// Every run of `task` in `space` under an fMRIPrep folder, written BIDS-derivatives style:
/// `OUT/sub-XX/[ses-YY/]func/<entities>_space-SPACE_atlas-NAME_timeseries.tsv` (and BEP017's
/// `_meas-MEASURE_relmat.tsv`). A subject without a usable run is an error unless
/// `skip_missing`, in which case it is listed as excluded.
#[allow(clippy::too_many_arguments)]
pub fn extract_fmriprep(
    template: &ExtractArgs,
    root: &Path,
    (task, space, select): (&str, &str, &[(String, String)]),
    out_dir: &Path,
    atlas_name: &str,
    skip_missing: bool,
    jobs: usize,
) -> Result<()> {
    let found = crate::imaging::discover::discover(root, task, space, select)?;
    // Two images of one run (another resolution or density) would write the same files.
    for (i, run) in found.runs.iter().enumerate() {
        let same: Vec<&crate::imaging::discover::Run> =
            found.runs.iter().filter(|r| r.prefix == run.prefix && r.bold.parent() == run.bold.parent()).collect();
        if same.len() > 1 && found.runs.iter().position(|r| r.prefix == run.prefix) == Some(i) {
            let differing = crate::imaging::discover::differing_entities(&same);
            let list: Vec<String> = differing.iter().map(|(k, v)| format!("{k} ({})", v.join(", "))).collect();
            let example =
                differing.first().map_or(String::new(), |(k, v)| format!(", e.g. --entity {k}={}", v[v.len() - 1]));
            return Err(Error::Usage(format!(
                "{}: {} images of {} differ in {}; choose one with --entity KEY=VALUE{example}",
                root.display(),
                same.len(),
                run.prefix,
                list.join(", ")
            )));
        }
    }
    if !found.subjects_without_runs.is_empty() {
        let list = found.subjects_without_runs.join(", ");
        if !skip_missing {
            return Err(Error::data(format!(
                "{}: no `task-{task}` run in `space-{space}` for {list}; use --missing skip to exclude them",
                root.display()
            )));
        }
        eprintln!("excluded (no run of task-{task} in space-{space}): {list}");
    }
    if found.runs.is_empty() {
        return Err(Error::data(format!("{}: no run of task-{task} in space-{space}", root.display())));
    }
    // BEP017 `meas-` labels.
    let measure = template.connectivity.map(|m| match m {
        Measure::Pearson => "pearsoncorrelation",
        Measure::Correlation => "ledoitwolfcorrelation",
        Measure::Partial => "partialcorrelation",
    });
    let needs_confounds = template.strategy.is_some() || template.censoring.is_active();
    // Non-steady-state volumes are read from the confounds file whenever there is one.
    let wants_confounds = needs_confounds || template.dummy_scans == crate::imaging::run::DummyScans::Auto;
    let mut runs = Vec::new();
    let mut labels = Vec::new();
    for run in &found.runs {
        if needs_confounds && run.confounds.is_none() {
            return Err(Error::data(format!("{}: no confounds file beside it", run.bold.display())));
        }
        let mut folder = out_dir.join(format!("sub-{}", run.subject));
        if let Some(session) = &run.session {
            folder = folder.join(format!("ses-{session}"));
        }
        let folder = folder.join("func");
        let stem = format!("{}_space-{}_atlas-{atlas_name}", run.prefix, run.entity("space").unwrap_or(space));
        runs.push(ExtractArgs {
            bold: run.bold.clone(),
            confounds: if wants_confounds { run.confounds.clone() } else { None },
            tr: template.tr.or(run.tr),
            out: folder.join(format!("{stem}_timeseries.tsv")),
            connectivity_out: measure.map(|m| folder.join(format!("{stem}_meas-{m}_relmat.tsv"))),
            ..template.clone()
        });
        labels.push(run.prefix.clone());
    }
    run_all(&runs, &labels, jobs)?;
    let description = serde_json::json!({
        "Name": format!("neurospec extract ({atlas_name})"),
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "neurospec", "Version": env!("CARGO_PKG_VERSION")}],
        "SourceDatasets": [{"URL": root.to_string_lossy()}],
    });
    write(
        &out_dir.join("dataset_description.json"),
        &(serde_json::to_string_pretty(&description).expect("json") + "\n"),
    )
}

/// The `atlas-` label of an atlas file: a TemplateFlow name's `atlas-` and `desc-` values
/// (`tpl-MNI152NLin2009cAsym_res-01_atlas-Schaefer2018_desc-100Parcels7Networks_dseg.nii.gz` →
/// `Schaefer2018100Parcels7Networks`, as giga_connectome names it), else the file's stem as a
/// BIDS label; a generic stem (`atlas`, `dseg`, `parcellation`) takes its folder's name instead.
pub fn atlas_label(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let stem = name.split('.').next().unwrap_or_default();
    let entity = |key: &str| stem.split('_').find_map(|part| part.strip_prefix(key)?.strip_prefix('-'));
    if let Some(atlas) = entity("atlas") {
        return crate::design::bids_label([atlas, entity("desc").unwrap_or_default()]);
    }
    let label = crate::design::bids_label([stem]);
    if ["", "atlas", "dseg", "parcellation"].contains(&label.to_ascii_lowercase().as_str()) {
        let folder = path.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().to_string());
        let folder = crate::design::bids_label([folder.as_deref().unwrap_or_default()]);
        return if folder.is_empty() { "custom".to_string() } else { folder };
    }
    label
}

#[cfg(test)]
mod tests {
    use super::atlas_label;
    use std::path::Path;

    #[test]
    fn atlas_labels_are_clean_bids_labels() {
        let tf = "tpl-MNI152NLin2009cAsym_res-01_atlas-Schaefer2018_desc-100Parcels7Networks_dseg.nii.gz";
        assert_eq!(atlas_label(Path::new(tf)), "Schaefer2018100Parcels7Networks");
        assert_eq!(atlas_label(Path::new("tpl-MNI152NLin6Asym_atlas-HOSPA_res-2_dseg.nii.gz")), "HOSPA");
        assert_eq!(atlas_label(Path::new("data/amygdala_nuclei/atlas.nii.gz")), "amygdalaNuclei");
        assert_eq!(atlas_label(Path::new("/x/harvard-oxford_sub.nii.gz")), "harvardOxfordSub");
        assert_eq!(atlas_label(Path::new("atlas.nii")), "custom");
    }
}
