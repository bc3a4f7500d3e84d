//! `neurospec verify STUDY.toml|DERIVATIVES_DIR`: rerun the study from scratch in a temporary
//! cache, publishing into a temporary folder, and compare the published folder with it.
//!
//! Compared: every output in `neurospec.lock` (published files byte for byte as they are on disk
//! now, unpublished intermediate outputs by hash), `dataset_description.json`, the provenance
//! records without their timings, host and seal, and the study file's hash. Not compared: the views
//! made from those results plus the run's date and outcome (`report.html`, `methods.md`,
//! `figures/`, `ro-crate-metadata.json`, `run.json`) and the copy `study.toml` beyond its hash.

use super::folder::{Folder, RUN_FILE};
use crate::error::{Error, Result};
use crate::outputs::{LOCK_FILE, Lock, provenance_name};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One difference between the published folder and the rerun.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// The file (relative to the folder) or `stage/output` for unpublished outputs.
    pub file: String,
    /// The stage that made it (empty for folder-level files).
    pub stage: String,
    pub what: String,
}

/// How to rerun a study: a study file and the published folder it is compared with.
pub struct Target {
    pub study: PathBuf,
    pub folder: PathBuf,
}

/// Resolve `STUDY.toml` or a derivatives folder to both.
pub fn target(path: &Path, output_dir: impl Fn(&Path) -> Result<PathBuf>) -> Result<Target> {
    if path.is_dir() {
        let folder = Folder::read(path)?;
        let run = folder.run.ok_or_else(|| {
            Error::data(format!(
                "{}: no {RUN_FILE}, so the study file is unknown; run `neurospec verify STUDY.toml`",
                path.display()
            ))
        })?;
        let study = path.join(&run.study);
        if !study.is_file() {
            return Err(Error::data(format!(
                "{}: the study file recorded in {RUN_FILE} ({}) is not there; run `neurospec verify STUDY.toml`",
                path.display(),
                study.display()
            )));
        }
        Ok(Target { study, folder: path.to_path_buf() })
    } else {
        let folder = output_dir(path)?;
        Ok(Target { study: path.to_path_buf(), folder })
    }
}

fn read_lock(dir: &Path) -> Result<Lock> {
    let path = dir.join(LOCK_FILE);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::data(format!("{}: unreadable lock file: {e}", path.display())))
}

/// A provenance record without what legitimately changes between runs.
fn stable_record(dir: &Path, stage: &str) -> Option<serde_json::Value> {
    let bytes = std::fs::read(dir.join("provenance").join(provenance_name(stage))).ok()?;
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    if let Some(map) = v.as_object_mut() {
        // The seal hashes the record's text, timings included, so it differs with them.
        for key in ["started_unix", "wall_seconds", "host", "seal"] {
            map.remove(key);
        }
    }
    Some(v)
}

/// Compare the published folder `original` with the rerun's folder `rerun`.
pub fn compare(original: &Path, rerun: &Path, study_hash: &str) -> Result<Vec<Difference>> {
    let old = read_lock(original)?;
    let new = read_lock(rerun)?;
    let mut diffs = Vec::new();
    let mut push = |file: &str, stage: &str, what: String| {
        diffs.push(Difference { file: file.to_string(), stage: stage.to_string(), what });
    };
    if old.study_hash != study_hash {
        push(
            "study.toml",
            "",
            format!(
                "the study file changed since the run (lock blake3:{}, now blake3:{study_hash})",
                short(&old.study_hash)
            ),
        );
    }
    let fresh: BTreeMap<&str, _> = new.stages.iter().map(|s| (s.id.as_str(), s)).collect();
    for stage in &old.stages {
        let Some(again) = fresh.get(stage.id.as_str()) else {
            push(
                &format!("provenance/{}", provenance_name(&stage.id)),
                &stage.id,
                "stage is not in the rerun's plan".into(),
            );
            continue;
        };
        if stage.fingerprint != again.fingerprint {
            push(
                &format!("provenance/{}", provenance_name(&stage.id)),
                &stage.id,
                "fingerprint differs (parameters, inputs or code version changed)".into(),
            );
        }
        for (name, out) in &stage.outputs {
            let redone = again.outputs.get(name);
            match &out.path {
                Some(rel) => {
                    let bytes = std::fs::read(original.join(rel));
                    match (bytes, redone) {
                        (Err(_), _) => push(rel, &stage.id, "missing from the published folder".into()),
                        (Ok(_), None) => push(rel, &stage.id, "the rerun made no such output".into()),
                        (Ok(bytes), Some(r)) => {
                            let hash = crate::store::hash_bytes(&bytes);
                            if hash != r.hash {
                                let edited = if hash != out.hash {
                                    " (and differs from the lock: edited after the run)"
                                } else {
                                    ""
                                };
                                push(
                                    rel,
                                    &stage.id,
                                    format!(
                                        "content differs from the rerun: blake3:{} vs blake3:{}{edited}",
                                        short(&hash),
                                        short(&r.hash)
                                    ),
                                );
                            }
                        }
                    }
                }
                None => match redone {
                    Some(r) if r.hash == out.hash => {}
                    Some(r) => push(
                        &format!("{}/{name}", stage.id),
                        &stage.id,
                        format!("unpublished output differs: blake3:{} vs blake3:{}", short(&out.hash), short(&r.hash)),
                    ),
                    None => push(&format!("{}/{name}", stage.id), &stage.id, "the rerun made no such output".into()),
                },
            }
        }
        if stable_record(original, &stage.id) != stable_record(rerun, &stage.id) {
            push(
                &format!("provenance/{}", provenance_name(&stage.id)),
                &stage.id,
                "provenance record differs (beyond timings and host)".into(),
            );
        }
    }
    for stage in &new.stages {
        if !old.stages.iter().any(|s| s.id == stage.id) {
            push(
                &format!("provenance/{}", provenance_name(&stage.id)),
                &stage.id,
                "the rerun has a stage the published folder lacks".into(),
            );
        }
    }
    for (rel, hash) in &old.sidecars {
        match std::fs::read(original.join(rel)) {
            Err(_) => push(rel, "", "column sidecar missing from the published folder".into()),
            Ok(bytes) if crate::store::hash_bytes(&bytes) != *hash => {
                push(rel, "", "column sidecar differs from the lock (edited after the run)".into())
            }
            Ok(_) if new.sidecars.get(rel) != Some(hash) => {
                push(rel, "", "column sidecar differs from the rerun's".into())
            }
            Ok(_) => {}
        }
    }
    let description = "dataset_description.json";
    if std::fs::read(original.join(description)).ok() != std::fs::read(rerun.join(description)).ok() {
        push(description, "", "differs from the rerun's".into());
    }
    Ok(diffs)
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(16)]
}

/// The `verify` command: rerun in a temporary cache and folder, print every difference; an error
/// (exit code 1) when there is any.
pub fn command(path: &Path, jobs: Option<usize>) -> Result<()> {
    let load = |study: &Path| -> Result<(crate::spec::LoadedStudy, crate::plan::Plan)> {
        let loaded = crate::spec::load(study)?;
        crate::spec::check::settings(&loaded)?;
        crate::sim::materialise(&loaded)?;
        let resolved = crate::spec::check::resolve(&loaded)?;
        let plan = crate::plan::compile(&resolved);
        Ok((loaded, plan))
    };
    let target = target(path, |study| Ok(load(study)?.1.output_dir))?;
    let (loaded, mut plan) = load(&target.study)?;
    let scratch = tempfile::Builder::new()
        .prefix("neurospec-verify-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    plan.output_dir = scratch.path().join("derivatives");
    let store = crate::store::Store::open(&scratch.path().join("cache"))?;
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    eprintln!("verify: rerunning {} from scratch in {}", target.study.display(), scratch.path().display());
    let options = crate::exec::Options { jobs, keep_going: false, progress: crate::exec::progress::Mode::Lines };
    let report = crate::exec::run(&plan, &store, &options)?;
    let failures: Vec<(String, String)> = report
        .outcomes
        .iter()
        .filter_map(|(i, o)| match o {
            crate::exec::Outcome::Failed(m) => Some((plan.node(*i).id.clone(), m.clone())),
            _ => None,
        })
        .collect();
    if !failures.is_empty() {
        return Err(Error::Stages(failures));
    }
    crate::outputs::publish(&plan, &store, &report, None)?;
    let diffs = compare(&target.folder, &plan.output_dir, &loaded.hash)?;
    let published =
        read_lock(&target.folder)?.stages.iter().flat_map(|s| s.outputs.values()).filter(|o| o.path.is_some()).count();
    for d in &diffs {
        if d.stage.is_empty() {
            println!("DIFFERS  {}  {}", d.file, d.what);
        } else {
            println!("DIFFERS  {}  (stage {})  {}", d.file, d.stage, d.what);
        }
    }
    if diffs.is_empty() {
        println!(
            "verified: {} stages, {published} published files and every provenance record match a fresh rerun byte for byte ({})",
            plan.order.len(),
            target.folder.display()
        );
        Ok(())
    } else {
        Err(Error::data(format!(
            "verify: {} difference(s) between {} and a fresh rerun",
            diffs.len(),
            target.folder.display()
        )))
    }
}
