//! Scratch folders that a killed run leaves behind, and how the next run proves they are ours.
//!
//! A scratch folder is a hidden sibling of the folder it will become (an output folder being
//! staged, a simulated cohort being written), named `<prefix><random>`. Its first file is the
//! marker [`MARKER`], which the creating process holds an exclusive `flock` on for as long as it
//! works in the folder. [`sweep`] deletes a folder with the prefix only when neurospec can prove
//! it made it and nobody is using it: it holds the marker and the marker's lock is free (its
//! process ended, however it ended), or it holds one of the files named by the caller that only a
//! finished neurospec folder has (the marker is removed just before a folder is renamed into
//! place). An empty folder with the prefix (killed before its marker was made) is removed too. A
//! folder with the prefix but none of these is left alone: it may be a user's.
//!
//! Files and folders are created with the permissions the umask allows (0644 / 0755 under the
//! usual umask 022), like any other program's.

use crate::error::{Error, Result};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

/// The marker file inside a scratch folder.
pub const MARKER: &str = ".neurospec-scratch";

/// A scratch folder this process is working in (its marker locked while this value lives).
pub struct Scratch {
    path: PathBuf,
    marker: Option<File>,
}

impl Scratch {
    /// Create `<parent>/<prefix><random>` with a locked marker.
    pub fn create(parent: &Path, prefix: &str) -> Result<Scratch> {
        let dir = super::temp_builder(prefix, 0o777).tempdir_in(parent).map_err(|e| Error::io(parent, e))?.keep();
        let marker_path = dir.join(MARKER);
        let marker = File::create(&marker_path).map_err(|e| Error::io(&marker_path, e))?;
        marker.lock().map_err(|e| Error::io(&marker_path, e))?;
        Ok(Scratch { path: dir, marker: Some(marker) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Remove the marker (the folder is complete and about to be renamed into place). From now
    /// on [`sweep`] recognises the folder only by the finished-folder files its caller names.
    pub fn unmark(&mut self) -> Result<()> {
        let marker = self.path.join(MARKER);
        fs::remove_file(&marker).map_err(|e| Error::io(&marker, e))?;
        self.marker = None;
        Ok(())
    }

    /// The folder is no longer scratch (it was renamed into place, or away): do not delete it.
    pub fn keep(&mut self) -> PathBuf {
        self.marker = None;
        std::mem::take(&mut self.path)
    }
}

impl Drop for Scratch {
    /// An abandoned scratch folder (an error on the way) is deleted at once.
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = remove(&self.path);
        }
    }
}

/// Delete the scratch folders `<parent>/<prefix>*` that killed runs left behind (see the module
/// doc for when a folder counts as ours). Returns the folders deleted.
pub fn sweep(parent: &Path, prefix: &str, finished_files: &[&str]) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir(parent) else { return removed };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(prefix) {
            continue;
        }
        let path = entry.path();
        // Never follow a symlink: only a real folder can be ours.
        if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        // An empty folder was killed before its marker was made; `remove_dir` removes only
        // empty folders, so nothing is ever lost to it.
        if (abandoned(&path, finished_files) && remove(&path).is_ok()) || fs::remove_dir(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// Delete a folder of ours so that a kill part way leaves it recognisable: an (unlocked) marker
/// is made first and deleted last, so [`sweep`] finishes the job on the next run.
pub fn remove(dir: &Path) -> std::io::Result<()> {
    let marker = dir.join(MARKER);
    File::create(&marker)?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name() == MARKER {
            continue;
        }
        if entry.file_type()?.is_dir() {
            fs::remove_dir_all(entry.path())?;
        } else {
            fs::remove_file(entry.path())?;
        }
    }
    fs::remove_file(&marker)?;
    fs::remove_dir(dir)
}

/// Whether a folder is a scratch folder of a process that has ended.
fn abandoned(dir: &Path, finished_files: &[&str]) -> bool {
    match File::open(dir.join(MARKER)) {
        // The marker's lock is free only when its process has ended.
        Ok(marker) => marker.try_lock().is_ok(),
        Err(_) => finished_files.iter().any(|f| fs::symlink_metadata(dir.join(f)).is_ok_and(|m| m.is_file())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_removes_only_abandoned_folders_that_are_provably_ours() {
        let parent = tempfile::tempdir().unwrap();
        let live = Scratch::create(parent.path(), ".x.scratch-").unwrap();
        // A killed process: the marker exists but nobody holds its lock.
        let dead = parent.path().join(".x.scratch-dead");
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join(MARKER), b"").unwrap();
        // A finished folder renamed nowhere (killed just before its rename).
        let finished = parent.path().join(".x.scratch-finished");
        fs::create_dir(&finished).unwrap();
        fs::write(finished.join("done.json"), b"{}").unwrap();
        // Same prefix, but no proof it is ours.
        let users = parent.path().join(".x.scratch-users");
        fs::create_dir(&users).unwrap();
        fs::write(users.join("notes.txt"), b"mine").unwrap();

        // Killed before its marker was made.
        let empty = parent.path().join(".x.scratch-empty");
        fs::create_dir(&empty).unwrap();

        let mut removed = sweep(parent.path(), ".x.scratch-", &["done.json"]);
        removed.sort();
        assert_eq!(removed, vec![dead, empty, finished]);
        assert!(live.path().join(MARKER).is_file(), "a live scratch folder is left alone");
        assert!(users.join("notes.txt").is_file(), "a folder without proof is left alone");
        let path = live.path().to_path_buf();
        drop(live);
        assert!(!path.exists(), "an abandoned scratch value deletes its folder");
    }
}
