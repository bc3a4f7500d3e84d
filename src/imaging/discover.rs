//! Finding runs in an fMRIPrep derivatives folder:
//! `sub-*/[ses-*/]func/sub-S[_ses-X]_task-T[_acq-A][_ce-C][_rec-R][_dir-D][_run-N][_echo-E]_space-S[_res-R][_den-D]_desc-preproc_bold.nii[.gz]`,
//! each with its confounds file and its JSON sidecar (for `RepetitionTime`).
//!
//! Every `key-value` part of a name is an entity. A BOLD image's confounds file is the
//! `_desc-confounds_timeseries.tsv` (21+) or `_desc-confounds_regressors.tsv` (older) in the same
//! folder whose entities all belong to the image and that carries every entity of the image
//! except those fMRIPrep leaves off confounds: `space`, `res`, `den`, `cohort` (and `echo`, for
//! multi-echo data combined into one series). `_timeseries` wins over `_regressors`.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Entities fMRIPrep's confounds files omit (they describe the run, not its resampling).
const NOT_ON_CONFOUNDS: [&str; 5] = ["space", "res", "den", "cohort", "echo"];
/// Entities left out of output names (the run is the same whatever its resampling).
const NOT_IN_PREFIX: [&str; 4] = ["space", "res", "den", "cohort"];

#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub subject: String,
    pub session: Option<String>,
    pub run: Option<String>,
    pub bold: PathBuf,
    pub confounds: Option<PathBuf>,
    /// Repetition time (s) from the JSON sidecar.
    pub tr: Option<f64>,
    /// BIDS entities for output names: `sub-01_ses-1_task-rest_run-2`.
    pub prefix: String,
    /// Every entity of the image's name, in order (`desc` excluded).
    pub entities: Vec<(String, String)>,
}

impl Run {
    pub fn entity(&self, key: &str) -> Option<&str> {
        self.entities.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// What discovery found per subject folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovery {
    pub runs: Vec<Run>,
    /// Subjects (`sub-XX` folders) with no run of the task in the space.
    pub subjects_without_runs: Vec<String>,
}

/// The `key-value` parts of a file stem, in order, without `desc`.
pub fn entities(stem: &str) -> Vec<(String, String)> {
    stem.split('_')
        .filter_map(|part| part.split_once('-'))
        .filter(|(k, _)| *k != "desc")
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> =
        std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    out.sort();
    Ok(out)
}

/// The confounds file of an image with `bold` entities among `files` (its folder's listing).
fn confounds_for(bold: &[(String, String)], files: &[PathBuf]) -> Option<PathBuf> {
    let mut best: Option<(bool, PathBuf)> = None;
    for file in files {
        let Some(name) = file.file_name().and_then(|n| n.to_str()) else { continue };
        let (stem, newer) = if let Some(s) = name.strip_suffix("_desc-confounds_timeseries.tsv") {
            (s, true)
        } else if let Some(s) = name.strip_suffix("_desc-confounds_regressors.tsv") {
            (s, false)
        } else {
            continue;
        };
        let own = entities(stem);
        let belongs = own.iter().all(|e| bold.contains(e));
        let complete = bold.iter().filter(|(k, _)| !NOT_ON_CONFOUNDS.contains(&k.as_str())).all(|e| own.contains(e));
        if belongs && complete && best.as_ref().is_none_or(|(was_newer, _)| newer && !was_newer) {
            best = Some((newer, file.clone()));
        }
    }
    best.map(|(_, p)| p)
}

/// Runs of `task` in `space` whose entities also match every `(key, value)` of `select`
/// (e.g. `("res", "2")`; an image without that entity does not match).
pub fn discover(root: &Path, task: &str, space: &str, select: &[(String, String)]) -> Result<Discovery> {
    if !root.is_dir() {
        return Err(Error::data(format!("{}: not a folder (expected fMRIPrep derivatives)", root.display())));
    }
    let mut runs = Vec::new();
    let mut without = Vec::new();
    for subject_dir in list_dir(root)? {
        let Some(subject_name) = subject_dir.file_name().and_then(|n| n.to_str()).filter(|n| n.starts_with("sub-"))
        else {
            continue;
        };
        if !subject_dir.is_dir() {
            continue;
        }
        let mut func_dirs = vec![subject_dir.join("func")];
        for entry in list_dir(&subject_dir)? {
            if entry.is_dir() && entry.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("ses-")) {
                func_dirs.push(entry.join("func"));
            }
        }
        let before = runs.len();
        for func in func_dirs.into_iter().filter(|d| d.is_dir()) {
            let files = list_dir(&func)?;
            for file in &files {
                let Some(name) = file.file_name().and_then(|n| n.to_str()) else { continue };
                let stem = name.strip_suffix(".nii.gz").or_else(|| name.strip_suffix(".nii"));
                let Some(stem) = stem.filter(|s| s.ends_with("_desc-preproc_bold")) else { continue };
                let base = stem.trim_end_matches("_desc-preproc_bold");
                let found = entities(base);
                let has = |k: &str, v: &str| found.iter().any(|(fk, fv)| fk == k && fv == v);
                if !has("task", task) || !has("space", space) || !select.iter().all(|(k, v)| has(k, v)) {
                    continue;
                }
                let prefix: String = base
                    .split('_')
                    .filter(|p| !NOT_IN_PREFIX.iter().any(|k| p.starts_with(&format!("{k}-"))))
                    .collect::<Vec<_>>()
                    .join("_");
                let sidecar = func.join(format!("{stem}.json"));
                let tr = match std::fs::read(&sidecar) {
                    Ok(bytes) => {
                        let json: serde_json::Value = serde_json::from_slice(&bytes)
                            .map_err(|e| Error::data(format!("{}: not valid JSON ({e})", sidecar.display())))?;
                        json.get("RepetitionTime").and_then(|v| v.as_f64())
                    }
                    Err(_) => None,
                };
                let value = |k: &str| found.iter().find(|(fk, _)| fk == k).map(|(_, v)| v.clone());
                runs.push(Run {
                    subject: subject_name.trim_start_matches("sub-").to_string(),
                    session: value("ses"),
                    run: value("run"),
                    bold: file.clone(),
                    confounds: confounds_for(&found, &files),
                    tr,
                    prefix,
                    entities: found,
                });
            }
        }
        if runs.len() == before {
            without.push(subject_name.to_string());
        }
    }
    Ok(Discovery { runs, subjects_without_runs: without })
}

/// Entities (other than `sub`/`ses`/`run`) whose values differ among `runs`, with the values:
/// what a study must choose between when one run has several images.
pub fn differing_entities(runs: &[&Run]) -> Vec<(String, Vec<String>)> {
    let mut keys: Vec<String> = Vec::new();
    for run in runs {
        for (k, _) in &run.entities {
            if !keys.contains(k) && !["sub", "ses", "run"].contains(&k.as_str()) {
                keys.push(k.clone());
            }
        }
    }
    keys.into_iter()
        .filter_map(|k| {
            let mut values: Vec<String> =
                runs.iter().map(|r| r.entity(&k).map_or("(none)".to_string(), str::to_string)).collect();
            values.sort();
            values.dedup();
            (values.len() > 1).then_some((k, values))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_runs_sessions_confounds_and_sidecars() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let touch = |p: &str, text: &str| {
            let path = root.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        let space = "MNI152NLin2009cAsym";
        touch(&format!("sub-01/func/sub-01_task-rest_space-{space}_desc-preproc_bold.nii.gz"), "");
        touch(
            &format!("sub-01/func/sub-01_task-rest_space-{space}_desc-preproc_bold.json"),
            r#"{"RepetitionTime": 0.72}"#,
        );
        touch("sub-01/func/sub-01_task-rest_desc-confounds_timeseries.tsv", "");
        touch(
            &format!("sub-02/ses-pre/func/sub-02_ses-pre_task-rest_run-2_space-{space}_desc-preproc_bold.nii.gz"),
            "",
        );
        touch(&format!("sub-02/ses-pre/func/sub-02_ses-pre_task-faces_space-{space}_desc-preproc_bold.nii.gz"), "");
        touch("sub-03/anat/sub-03_desc-preproc_T1w.nii.gz", "");
        let found = discover(root, "rest", space, &[]).unwrap();
        assert_eq!(found.runs.len(), 2);
        assert_eq!(found.runs[0].subject, "01");
        assert_eq!(found.runs[0].tr, Some(0.72));
        assert!(found.runs[0].confounds.is_some());
        assert_eq!(found.runs[0].prefix, "sub-01_task-rest");
        assert_eq!(found.runs[1].session.as_deref(), Some("pre"));
        assert_eq!(found.runs[1].run.as_deref(), Some("2"));
        assert_eq!(found.runs[1].confounds, None);
        assert_eq!(found.subjects_without_runs, vec!["sub-03"]);
    }

    #[test]
    fn entities_select_images_and_confounds_match_by_the_entities_they_carry() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let touch = |p: &str| {
            let path = root.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        };
        let f = "sub-01/func/sub-01_task-rest";
        for run in ["1", "2"] {
            for res in ["1", "2"] {
                touch(&format!("{f}_acq-mb_run-{run}_space-MNI_res-{res}_desc-preproc_bold.nii.gz"));
            }
            touch(&format!("{f}_acq-mb_run-{run}_desc-confounds_timeseries.tsv"));
        }
        touch(&format!("{f}_acq-mb_run-1_desc-confounds_regressors.tsv"));
        let all = discover(root, "rest", "MNI", &[]).unwrap();
        assert_eq!(all.runs.len(), 4);
        let run1: Vec<&Run> = all.runs.iter().filter(|r| r.run.as_deref() == Some("1")).collect();
        assert_eq!(differing_entities(&run1), vec![("res".to_string(), vec!["1".to_string(), "2".to_string()])]);
        let chosen = discover(root, "rest", "MNI", &[("res".into(), "2".into())]).unwrap();
        assert_eq!(chosen.runs.len(), 2);
        let first = &chosen.runs[0];
        assert_eq!(first.prefix, "sub-01_task-rest_acq-mb_run-1");
        assert_eq!(first.entity("res"), Some("2"));
        let confounds = first.confounds.as_ref().unwrap().file_name().unwrap().to_str().unwrap().to_string();
        assert_eq!(confounds, "sub-01_task-rest_acq-mb_run-1_desc-confounds_timeseries.tsv");
        assert!(chosen.runs[1].confounds.as_ref().unwrap().to_str().unwrap().contains("run-2_desc-confounds"));
        // A confounds file of another acquisition is not this run's.
        let none = discover(root, "rest", "MNI", &[("acq".into(), "sb".into())]).unwrap();
        assert!(none.runs.is_empty());
    }
}
