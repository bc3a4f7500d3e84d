//! `neurospec gc`: delete what a cache holds that no study needs (see `store::gc`).
//!
//! Kept: every record the named studies' current plans use (their cached stages), with its
//! objects, and — unless `--all` — every stage a `neurospec.lock` names in the studies' output
//! folders or their siblings (`derivatives/*/neurospec.lock`: what is published stays
//! explainable and `verify`-able without recomputing).

use super::out;
use super::study::{Scratch, cache_dir, load_settled, resolve_loaded};
use crate::error::{Error, Result};
use crate::outputs::{LOCK_FILE, Lock};
use crate::store::{Store, gc};
use std::path::PathBuf;

/// `neurospec gc`'s choices.
pub struct GcOptions {
    pub cache: Option<PathBuf>,
    pub studies: Vec<PathBuf>,
    pub dry_run: bool,
    pub all: bool,
}

pub fn run(options: &GcOptions) -> Result<()> {
    if options.studies.is_empty() && !options.all {
        return Err(Error::Usage(
            "name the studies whose results to keep (`neurospec gc STUDY.toml …`), or pass --all --cache DIR \
             to empty the cache"
                .into(),
        ));
    }
    let mut loaded = Vec::new();
    for path in &options.studies {
        loaded.push(load_settled(path)?);
    }
    let root = match (&options.cache, loaded.first()) {
        (Some(dir), _) => dir.clone(),
        (None, Some(first)) => {
            let root = cache_dir(first, None);
            if let Some(other) = loaded.iter().find(|l| cache_dir(l, None) != root) {
                return Err(Error::Usage(format!(
                    "{} and {} use different caches; name the one to clean with --cache DIR",
                    first.path.display(),
                    other.path.display()
                )));
            }
            root
        }
        (None, None) => return Err(Error::Usage("--all without a study needs --cache DIR".into())),
    };
    let lock = gc::lock(&root)?;
    let mut keep = gc::Keep::default();
    let mut folders = Vec::new();
    for study in loaded {
        let scratch = Scratch::new(Some(root.clone()));
        let (_, resolved) = resolve_loaded(study, Some(&scratch))?;
        let plan = crate::plan::compile(&resolved);
        // The lock is held above; this handle only reads.
        let store = Store::open_shared(&root)?;
        let (_, fingerprints) = crate::exec::states_and_fingerprints(&plan, &store)?;
        keep.records.extend(fingerprints.into_values());
        folders.push(resolved.study.output_dir.clone());
    }
    let mut locks = 0;
    if !options.all {
        for lock_file in lock_files(&folders) {
            let bytes = std::fs::read(&lock_file).map_err(|e| Error::io(&lock_file, e))?;
            let published: Lock = serde_json::from_slice(&bytes)
                .map_err(|e| Error::data(format!("{}: not a neurospec lock file ({e})", lock_file.display())))?;
            for stage in published.stages {
                keep.records.insert(stage.fingerprint);
                keep.objects.extend(stage.outputs.into_values().map(|o| o.hash));
            }
            locks += 1;
        }
    }
    let done = gc::collect(&root, &lock, &keep, options.dry_run)?;
    let verb = if options.dry_run { "would free" } else { "freed" };
    out(&format!(
        "{}: {verb} {} bytes ({:.1} MiB): {} records, {} objects, {} partial writes; kept {} records and {} objects \
         ({} lock files)\n",
        root.display(),
        done.freed_bytes,
        done.freed_bytes as f64 / (1024.0 * 1024.0),
        done.records,
        done.objects,
        done.partials,
        done.kept_records,
        done.kept_objects,
        locks
    ))
}

/// `neurospec.lock` in each output folder and in its siblings (other studies' folders under the
/// same `derivatives/`).
fn lock_files(folders: &[PathBuf]) -> Vec<PathBuf> {
    let mut found = std::collections::BTreeSet::new();
    for folder in folders {
        let siblings = folder.parent().and_then(|p| std::fs::read_dir(p).ok());
        let candidates = siblings.into_iter().flatten().flatten().map(|e| e.path()).chain([folder.clone()]);
        for dir in candidates {
            let lock = dir.join(LOCK_FILE);
            if lock.is_file() {
                found.insert(lock);
            }
        }
    }
    found.into_iter().collect()
}
