//! Cache cleanup (`neurospec gc`): delete the records and objects no one needs any more.
//!
//! The caller names what to keep — the fingerprints of records (the current plans' cached
//! stages, and unless told otherwise every stage a published `neurospec.lock` names) and any
//! object hashes; the objects a kept record lists as outputs are kept with it. Everything else
//! in `records/` and `objects/` goes, with the `latest/` pointers to deleted records and the
//! abandoned partial writes of killed writers (only provably abandoned ones, as `Store::open`
//! decides: a live writer's temp file is never touched).
//!
//! Safety against concurrent writers: gc holds the cache lock (so no local run is writing), and
//! it refuses while a Slurm submission in `slurm/` has not published (its array tasks write
//! without the lock); `slurm/`, `scratch/`, `filehashes/` and `lock` are never touched.

use super::{PARTIAL_PREFIX, Record, is_abandoned, lock_exclusive};
use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// What to keep.
#[derive(Debug, Default)]
pub struct Keep {
    pub records: BTreeSet<String>,
    pub objects: BTreeSet<String>,
}

/// What a collection removed (or, in a dry run, would remove).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Collected {
    pub records: usize,
    pub objects: usize,
    pub partials: usize,
    /// Bytes of every file removed.
    pub freed_bytes: u64,
    pub kept_records: usize,
    pub kept_objects: usize,
}

/// The cache lock, held while the caller decides what to keep and [`collect`] deletes the rest.
pub fn lock(root: &Path) -> Result<fs::File> {
    if !root.join("records").is_dir() {
        return Err(Error::data(format!("{} is not a neurospec cache (it has no records/ folder)", root.display())));
    }
    let lock_path = root.join("lock");
    lock_exclusive(&lock_path, &format!("waiting for the neurospec run that holds {}", lock_path.display()))
}

/// Delete what `keep` does not name from the cache at `root` (nothing with `dry_run`), holding
/// its lock (from [`lock`]).
pub fn collect(root: &Path, _lock: &fs::File, keep: &Keep, dry_run: bool) -> Result<Collected> {
    if let Some(live) = unpublished_submission(root) {
        return Err(Error::data(format!(
            "a Slurm run may still be writing to this cache ({} has not published); gc would delete its \
             fresh records. Wait for it (`neurospec status STUDY`), or delete that folder if it has ended",
            live.display()
        )));
    }
    let mut done = Collected::default();
    let mut objects = keep.objects.clone();
    for entry in entries(&root.join("records")) {
        let name = file_name(&entry);
        if name.starts_with(PARTIAL_PREFIX) {
            continue;
        }
        if keep.records.contains(&name) {
            done.kept_records += 1;
            let record = fs::read(&entry).ok().and_then(|b| serde_json::from_slice::<Record>(&b).ok());
            objects.extend(record.into_iter().flat_map(|r| r.outputs.into_values().map(|o| o.hash)));
            continue;
        }
        remove(&entry, dry_run, &mut done.freed_bytes);
        done.records += 1;
    }
    for folder in entries(&root.join("objects")) {
        let prefix = file_name(&folder);
        for entry in entries(&folder) {
            let name = file_name(&entry);
            if name.starts_with(PARTIAL_PREFIX) {
                continue;
            }
            if objects.contains(&format!("{prefix}{name}")) {
                done.kept_objects += 1;
            } else {
                remove(&entry, dry_run, &mut done.freed_bytes);
                done.objects += 1;
            }
        }
    }
    // `latest/<stage>` names the fingerprint a stage last ran with; drop those whose record went.
    for entry in entries(&root.join("latest")) {
        let named = fs::read_to_string(&entry).unwrap_or_default();
        if !file_name(&entry).starts_with(PARTIAL_PREFIX) && !keep.records.contains(named.trim()) {
            remove(&entry, dry_run, &mut done.freed_bytes);
        }
    }
    let mut folders = vec![root.to_path_buf(), root.join("tmp"), root.join("records"), root.join("latest")];
    folders.extend(entries(&root.join("objects")));
    for folder in folders {
        for entry in entries(&folder) {
            let name = file_name(&entry);
            let age = fs::metadata(&entry).ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok());
            if is_abandoned(&name, age) {
                remove(&entry, dry_run, &mut done.freed_bytes);
                done.partials += 1;
            }
        }
    }
    Ok(done)
}

/// A submitted Slurm plan that has not published (see `exec::slurm`'s folder layout).
fn unpublished_submission(root: &Path) -> Option<PathBuf> {
    entries(&root.join("slurm"))
        .into_iter()
        .filter(|d| d.join("plan.json").is_file())
        .find(|d| !d.join("published").exists())
}

fn entries(folder: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> =
        fs::read_dir(folder).map(|r| r.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    found.sort();
    found
}

fn file_name(path: &Path) -> String {
    path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string()
}

fn remove(path: &Path, dry_run: bool, freed: &mut u64) {
    let Ok(meta) = fs::symlink_metadata(path) else { return };
    if !meta.is_file() {
        return;
    }
    if dry_run || fs::remove_file(path).is_ok() {
        *freed += meta.len();
    }
}
