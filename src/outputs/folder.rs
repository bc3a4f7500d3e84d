//! Replacing the output folder as a whole: the folder is always one complete run.
//!
//! # How
//!
//! 1. Take `<parent>/.<NAME>.neurospec-publish.lock` (an exclusive `flock`): two runs that
//!    publish to one folder, even from different caches, take turns; the second waits and says so.
//! 2. Clean up after killed runs: staging folders (`.<NAME>.neurospec-staging-*`) and a previous
//!    folder set aside (`.<NAME>.neurospec-old-*`) are deleted once they are proven ours (see
//!    `store::scratch`); if a run was killed between setting the old folder aside and renaming the
//!    new one in (the fallback below), the old folder is first put back.
//! 3. Refuse to replace a folder neurospec did not make: `<NAME>` must be absent, empty, or a real
//!    folder (not a symlink) holding `neurospec.lock`.
//! 4. Build the complete new folder in a staging sibling (same file system), every object
//!    re-verified by hash as it is copied, the lock file last; flush it to disk (`syncfs`).
//! 5. Swap it in with one `renameat2(RENAME_EXCHANGE)` (Linux), so the name points at the old
//!    complete folder or the new complete folder and never at anything else, then delete the old.
//!    Where the exchange is unavailable (another OS, a file system without it), the fallback is
//!    rename old aside → rename new in → delete old, with the recovery of step 2.
//!
//! Any error (a full disk, a corrupt object) deletes the staging folder and leaves the previous
//! run's folder untouched. A kill at any point leaves the previous or the new folder in place
//! plus at most a staging folder, which the next publish deletes.
//!
//! # Test hooks (test-only; not for users)
//!
//! * `NEUROSPEC_TEST_PUBLISH_DELAY_MS=N`: sleep N ms after each file staged and before the swap,
//!   so that a test can kill the process at many points of publishing.
//! * `NEUROSPEC_TEST_PUBLISH_FAIL_AFTER=N`: fail with "No space left on device" when staging
//!   file N+1, as a full disk would.
//! * `NEUROSPEC_TEST_PUBLISH_NO_EXCHANGE=1`: use the fallback swap even on Linux.

use super::LOCK_FILE;
use crate::error::{Error, Result};
use crate::store::scratch::{self, Scratch};
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A publication in progress: the publish lock is held and a staging folder is being filled.
pub struct Publication {
    target: PathBuf,
    parent: PathBuf,
    name: String,
    staging: Scratch,
    staged: usize,
    hooks: Hooks,
    _lock: File,
}

#[derive(Default)]
struct Hooks {
    delay: Option<Duration>,
    fail_after: Option<usize>,
    no_exchange: bool,
}

impl Hooks {
    fn from_env() -> Hooks {
        let number = |key: &str| std::env::var(key).ok().and_then(|v| v.parse::<u64>().ok());
        Hooks {
            delay: number("NEUROSPEC_TEST_PUBLISH_DELAY_MS").map(Duration::from_millis),
            fail_after: number("NEUROSPEC_TEST_PUBLISH_FAIL_AFTER").map(|n| n as usize),
            no_exchange: std::env::var_os("NEUROSPEC_TEST_PUBLISH_NO_EXCHANGE").is_some(),
        }
    }
    fn pause(&self) {
        if let Some(delay) = self.delay {
            std::thread::sleep(delay);
        }
    }
}

fn staging_prefix(name: &str) -> String {
    format!(".{name}.neurospec-staging-")
}

fn old_prefix(name: &str) -> String {
    format!(".{name}.neurospec-old-")
}

impl Publication {
    /// Lock the output folder's name, clean up after killed runs, check that the folder may be
    /// replaced, and create the staging folder.
    pub fn begin(target: &Path) -> Result<Publication> {
        let (parent, name) = match (target.parent(), target.file_name()) {
            (Some(parent), Some(name)) => (parent.to_path_buf(), name.to_string_lossy().into_owned()),
            _ => {
                return Err(Error::data(format!(
                    "{} cannot be an output folder (it has no parent folder); set `[outputs] dir` to a folder \
                     inside the study's folder",
                    target.display()
                )));
            }
        };
        let parent = if parent.as_os_str().is_empty() { PathBuf::from(".") } else { parent };
        fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        let lock_path = parent.join(format!(".{name}.neurospec-publish.lock"));
        let waiting = format!("waiting for another neurospec run that is publishing to {}", target.display());
        let lock = crate::store::lock_exclusive(&lock_path, &waiting)?;
        recover(&parent, &name, target)?;
        check_replaceable(target)?;
        let staging = Scratch::create(&parent, &format!("{}{}-", staging_prefix(&name), std::process::id()))?;
        Ok(Publication {
            target: target.to_path_buf(),
            parent,
            name,
            staging,
            staged: 0,
            hooks: Hooks::from_env(),
            _lock: lock,
        })
    }

    /// The permission bits this process gives new files and folders (0644 / 0755 under umask
    /// 022), read from the staging folder and its marker, which were just created.
    pub fn fresh_modes(&self) -> Option<(u32, u32)> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).ok().map(|m| m.permissions().mode() & 0o777);
            Some((mode(&self.staging.path().join(scratch::MARKER))?, mode(self.staging.path())?))
        }
        #[cfg(not(unix))]
        None
    }

    /// The staging folder (complete once every file is written).
    pub fn staging(&self) -> &Path {
        self.staging.path()
    }

    /// Write one file (path relative to the folder) into the staging folder.
    pub fn write(&mut self, rel: &str, bytes: &[u8]) -> Result<()> {
        let dest = self.staging.path().join(rel);
        if self.hooks.fail_after.is_some_and(|n| self.staged >= n) {
            let enospc = std::io::Error::from_raw_os_error(28);
            return Err(Error::io(&dest, std::io::Error::new(enospc.kind(), format!("{enospc} (injected by a test)"))));
        }
        let dir = dest.parent().expect("inside the staging folder");
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut file = File::create_new(&dest).map_err(|e| Error::io(&dest, e))?;
        file.write_all(bytes).map_err(|e| Error::io(&dest, e))?;
        if !cfg!(target_os = "linux") {
            file.sync_all().map_err(|e| Error::io(&dest, e))?;
        }
        self.staged += 1;
        self.hooks.pause();
        Ok(())
    }

    /// Flush the staging folder to disk and swap it in for the output folder; delete the old one.
    pub fn commit(mut self) -> Result<PathBuf> {
        self.staging.unmark()?;
        #[cfg(target_os = "linux")]
        sync_file_system(self.staging.path())?;
        self.hooks.pause();
        let staging = self.staging.path().to_path_buf();
        let exists = fs::symlink_metadata(&self.target).is_ok();
        if !exists {
            rename_noreplace(&staging, &self.target)?;
            self.staging.keep();
        } else if !self.hooks.no_exchange && exchange(&staging, &self.target)? {
            // `staging` now holds the previous run: delete it.
            let old = self.staging.keep();
            let _ = scratch::remove(&old);
        } else {
            self.swap_by_renames(&staging)?;
        }
        sync_dir(&self.parent);
        Ok(self.target.clone())
    }
}

impl Publication {
    /// The fallback swap: rename the old folder aside, rename the new one in, delete the old.
    /// A kill between the two renames leaves no output folder until the next publish puts the
    /// old one back (`recover`).
    fn swap_by_renames(&mut self, staging: &Path) -> Result<()> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let aside = self.parent.join(format!("{}{}-{nanos:09}", old_prefix(&self.name), std::process::id()));
        fs::rename(&self.target, &aside).map_err(|e| Error::io(&self.target, e))?;
        if let Err(e) = rename_noreplace(staging, &self.target) {
            // Put the previous run back before reporting the failure.
            let _ = fs::rename(&aside, &self.target);
            return Err(e);
        }
        self.staging.keep();
        let _ = scratch::remove(&aside);
        Ok(())
    }
}

/// Undo what a killed publish left: put a set-aside previous folder back if the output folder is
/// missing, then delete staging and set-aside folders that are provably ours.
fn recover(parent: &Path, name: &str, target: &Path) -> Result<()> {
    if fs::symlink_metadata(target).is_err() {
        let aside = fs::read_dir(parent).into_iter().flatten().flatten().map(|e| e.path()).find(|p| {
            p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&old_prefix(name)))
                && fs::symlink_metadata(p.join(LOCK_FILE)).is_ok_and(|m| m.is_file())
                && fs::symlink_metadata(p.join(scratch::MARKER)).is_err()
        });
        if let Some(aside) = aside {
            fs::rename(&aside, target).map_err(|e| Error::io(target, e))?;
            eprintln!("restored {} from an interrupted publish", target.display());
        }
    }
    scratch::sweep(parent, &staging_prefix(name), &[LOCK_FILE]);
    scratch::sweep(parent, &old_prefix(name), &[LOCK_FILE]);
    Ok(())
}

/// An existing output folder may be replaced only if neurospec made it (or it is empty).
fn check_replaceable(target: &Path) -> Result<()> {
    let Ok(meta) = fs::symlink_metadata(target) else { return Ok(()) };
    let refuse = |why: &str| {
        Err(Error::data(format!(
            "the output folder {} {why}; neurospec replaces only folders it made (they hold {LOCK_FILE}). \
             Move it away or set `[outputs] dir` to another folder, then rerun.",
            target.display()
        )))
    };
    if meta.file_type().is_symlink() {
        return refuse("is a symbolic link");
    }
    if !meta.is_dir() {
        return refuse("exists and is not a folder");
    }
    if fs::symlink_metadata(target.join(LOCK_FILE)).is_ok_and(|m| m.is_file()) {
        return Ok(());
    }
    let mut entries = fs::read_dir(target).map_err(|e| Error::io(target, e))?;
    if entries.next().is_none() {
        return Ok(());
    }
    refuse(&format!("exists and was not made by neurospec (it has no {LOCK_FILE})"))
}

/// Rename `from` to `to`, failing if `to` exists (even as an empty folder).
fn rename_noreplace(from: &Path, to: &Path) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        match renameat2(from, to, libc::RENAME_NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::ENOSYS) => {}
            Err(e) => return Err(Error::io(to, e)),
        }
    }
    if fs::symlink_metadata(to).is_ok() {
        return Err(Error::io(to, std::io::Error::from(std::io::ErrorKind::AlreadyExists)));
    }
    fs::rename(from, to).map_err(|e| Error::io(to, e))
}

/// Atomically exchange two paths. `Ok(false)` when the system or file system cannot.
fn exchange(a: &Path, b: &Path) -> Result<bool> {
    #[cfg(target_os = "linux")]
    {
        match renameat2(a, b, libc::RENAME_EXCHANGE) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::ENOSYS) => Ok(false),
            Err(e) => Err(Error::io(b, e)),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (a, b);
        Ok(false)
    }
}

#[cfg(target_os = "linux")]
fn c_path(path: &Path) -> std::io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)
}

#[cfg(target_os = "linux")]
fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> std::io::Result<()> {
    let (from, to) = (c_path(from)?, c_path(to)?);
    // SAFETY: both paths are NUL-terminated C strings that outlive the call; AT_FDCWD makes
    // relative paths relative to the working directory, as std's rename does.
    let rc = unsafe {
        libc::syscall(libc::SYS_renameat2, libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr(), flags)
    };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// Flush every file of the folder's file system to disk (one call instead of one per file).
#[cfg(target_os = "linux")]
fn sync_file_system(dir: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let handle = File::open(dir).map_err(|e| Error::io(dir, e))?;
    // SAFETY: the descriptor is open for the duration of the call.
    if unsafe { libc::syncfs(handle.as_raw_fd()) } != 0 {
        return Err(Error::io(dir, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Make a rename in `dir` durable (best effort: not every file system can sync a folder).
fn sync_dir(dir: &Path) {
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(target: &Path, content: &str, no_exchange: bool) -> Result<PathBuf> {
        let mut publication = Publication::begin(target)?;
        publication.hooks.no_exchange = no_exchange;
        publication.write("sub/result.tsv", content.as_bytes())?;
        publication.write(LOCK_FILE, content.as_bytes())?;
        publication.commit()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn both_swaps_replace_the_folder_whole_and_leave_only_the_lock_beside_it() {
        let parent = tempfile::tempdir().unwrap();
        let target = parent.path().join("out");
        for (round, no_exchange) in [false, true, false, true].into_iter().enumerate() {
            publish(&target, &format!("run {round}"), no_exchange).unwrap();
            assert_eq!(fs::read_to_string(target.join("sub/result.tsv")).unwrap(), format!("run {round}"));
            assert_eq!(names(&target), vec![LOCK_FILE.to_string(), "sub".into()]);
            assert_eq!(names(parent.path()), vec![".out.neurospec-publish.lock".to_string(), "out".into()]);
        }
    }

    #[test]
    fn an_error_while_staging_keeps_the_previous_folder_and_removes_the_staging_folder() {
        let parent = tempfile::tempdir().unwrap();
        let target = parent.path().join("out");
        publish(&target, "first", false).unwrap();
        let mut publication = Publication::begin(&target).unwrap();
        publication.hooks.fail_after = Some(1);
        publication.write("a", b"x").unwrap();
        let error = publication.write("b", b"y").unwrap_err().to_string();
        assert!(error.contains("No space left on device"), "{error}");
        drop(publication);
        assert_eq!(fs::read_to_string(target.join(LOCK_FILE)).unwrap(), "first");
        assert_eq!(names(parent.path()), vec![".out.neurospec-publish.lock".to_string(), "out".into()]);
    }

    #[test]
    fn the_next_publish_recovers_from_a_kill_at_any_step() {
        let parent = tempfile::tempdir().unwrap();
        let target = parent.path().join("out");
        publish(&target, "first", false).unwrap();
        // Killed between the fallback's two renames: the old folder is aside, none in place.
        let aside = parent.path().join(".out.neurospec-old-1-1");
        fs::rename(&target, &aside).unwrap();
        // Killed while staging (marker, unlocked), after unmarking (lock file written), and while
        // deleting the previous folder (marker made again, lock file already gone).
        for (name, file) in [("1-a", scratch::MARKER), ("2-b", LOCK_FILE), ("3-c", scratch::MARKER)] {
            let dir = parent.path().join(format!(".out.neurospec-staging-{name}"));
            fs::create_dir_all(dir.join("sub")).unwrap();
            fs::write(dir.join(file), b"").unwrap();
        }
        let mut publication = Publication::begin(&target).unwrap();
        assert_eq!(fs::read_to_string(target.join(LOCK_FILE)).unwrap(), "first", "the old folder is back");
        let mut left = names(parent.path());
        left.retain(|n| n.contains("staging") && !publication.staging.path().ends_with(n));
        assert_eq!(left, Vec::<String>::new(), "the killed runs' folders are gone");
        publication.write(LOCK_FILE, b"second").unwrap();
        publication.commit().unwrap();
        assert_eq!(names(parent.path()), vec![".out.neurospec-publish.lock".to_string(), "out".into()]);
    }

    #[test]
    fn a_folder_neurospec_did_not_make_is_refused_by_name() {
        let parent = tempfile::tempdir().unwrap();
        let target = parent.path().join("out");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("mine.txt"), b"keep").unwrap();
        let error = Publication::begin(&target).err().expect("refused").to_string();
        assert!(error.contains(&target.display().to_string()) && error.contains("not made by neurospec"), "{error}");
        assert_eq!(names(&target), vec!["mine.txt"]);
        assert_eq!(names(parent.path()), vec![".out.neurospec-publish.lock".to_string(), "out".into()]);
    }
}
