//! Finding runs in an fMRIPrep derivatives folder:
//! `sub-*/[ses-*/]func/*_task-T[_run-R]_space-S_desc-preproc_bold.nii[.gz]`, each with its
//! `_desc-confounds_timeseries.tsv` (or the older `_desc-confounds_regressors.tsv`) and its JSON
//! sidecar (for `RepetitionTime`).

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

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
}

/// What discovery found per subject folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovery {
    pub runs: Vec<Run>,
    /// Subjects (`sub-XX` folders) with no run of the task in the space.
    pub subjects_without_runs: Vec<String>,
}

fn entity<'a>(name: &'a str, key: &str) -> Option<&'a str> {
    name.split('_').find_map(|part| part.strip_prefix(key).and_then(|v| v.strip_prefix('-')))
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> =
        std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    out.sort();
    Ok(out)
}

pub fn discover(root: &Path, task: &str, space: &str) -> Result<Discovery> {
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
            for file in list_dir(&func)? {
                let Some(name) = file.file_name().and_then(|n| n.to_str()) else { continue };
                let stem = name.strip_suffix(".nii.gz").or_else(|| name.strip_suffix(".nii"));
                let Some(stem) = stem.filter(|s| s.ends_with("_desc-preproc_bold")) else { continue };
                if entity(stem, "task") != Some(task) || entity(stem, "space") != Some(space) {
                    continue;
                }
                let base = stem.trim_end_matches("_desc-preproc_bold");
                let without_space: String =
                    base.split('_').filter(|p| !p.starts_with("space-")).collect::<Vec<_>>().join("_");
                let confounds = ["_desc-confounds_timeseries.tsv", "_desc-confounds_regressors.tsv"]
                    .iter()
                    .map(|suffix| func.join(format!("{without_space}{suffix}")))
                    .find(|p| p.is_file());
                let sidecar = func.join(format!("{stem}.json"));
                let tr = match std::fs::read(&sidecar) {
                    Ok(bytes) => {
                        let json: serde_json::Value = serde_json::from_slice(&bytes)
                            .map_err(|e| Error::data(format!("{}: not valid JSON ({e})", sidecar.display())))?;
                        json.get("RepetitionTime").and_then(|v| v.as_f64())
                    }
                    Err(_) => None,
                };
                runs.push(Run {
                    subject: subject_name.trim_start_matches("sub-").to_string(),
                    session: entity(stem, "ses").map(str::to_string),
                    run: entity(stem, "run").map(str::to_string),
                    bold: file.clone(),
                    confounds,
                    tr,
                    prefix: without_space,
                });
            }
        }
        if runs.len() == before {
            without.push(subject_name.to_string());
        }
    }
    Ok(Discovery { runs, subjects_without_runs: without })
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
        let found = discover(root, "rest", space).unwrap();
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
}
