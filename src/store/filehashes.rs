//! The stat cache of raw input files' content hashes (`filehashes/`): it spares re-hashing an
//! input (a BOLD run, a table) whose file has not changed. It is a shortcut only: a fingerprint
//! always holds the content hash, and a miss costs a re-hash, never a wrong hash.
//!
//! # What an entry keys on, and why a hit is safe
//!
//! An entry maps a path (made absolute, symbolic links not resolved: no system call) to the
//! content hash of the file found there and that file's **size, modification time, status-change
//! time (ctime) and inode number**, as `stat` reports them (nanoseconds). A lookup hits only if all
//! four are unchanged:
//!
//! * Writing a file's content sets its ctime to the current time, and nothing a user runs can set
//!   a ctime back (`touch -d`, `cp -p`, `rsync -t` restore the mtime, not the ctime), so an edit
//!   that keeps the size and the mtime is still seen.
//! * A file replaced by another (renamed over, or a symbolic link pointed elsewhere) has another
//!   inode number; another path is another entry.
//! * An entry is made only for a file whose mtime and ctime were at least [`RACY_WINDOW`] old when
//!   it was looked at (before hashing). On a file system with coarse timestamps (1 s on NFSv3 or
//!   ext3, 2 s on FAT) an edit in the same tick as the hashing would leave every field unchanged
//!   (a "racy" entry, as git calls it); past the window, any later write gets a later ctime. The
//!   window also absorbs a few seconds of clock skew between a file server and this host.
//! * Paths that are not UTF-8 or hold a newline are never entered (they are hashed every time),
//!   and neither is anything on a platform without ctime and inode numbers.
//!
//! Inode numbers and ctimes come from the file server on NFS and Lustre, so every node of a
//! cluster sees the same ones (device numbers are not used: they differ between mounts).
//!
//! # Layout and concurrent writers
//!
//! ```text
//! filehashes/main                    every entry: written only by a holder of the cache lock
//! filehashes/j-<host>-<pid>-<ns>     the entries one writer without the lock added (a Slurm task)
//! ```
//!
//! Each file starts with the line `neurospec-filehashes 1`; then one entry per line: hash, size,
//! mtime (ns), ctime (ns), inode and path, separated by tabs (the path last). `main` and every
//! journal are read at the first lookup, not when the cache is opened. A writer without the lock
//! saves only what it added, as a new journal under its own name (atomic rename), so array tasks
//! finishing at once never lose one another's entries. A lock holder (a local run, a submission)
//! rewrites `main` with all it knows, then deletes the journals it read; one written meanwhile
//! stays for the next. Nothing is written when nothing was added. A damaged line or file is
//! skipped: it costs a re-hash.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How old a file's mtime and ctime must be when it is looked at for its hash to be entered
/// (see the module doc): more than the coarsest timestamp tick (2 s), plus a margin for skew.
pub const RACY_WINDOW: Duration = Duration::from_secs(5);

/// The cache's folder for the stat cache.
pub const FOLDER: &str = "filehashes";

const HEADER: &str = "neurospec-filehashes 1";
const MAIN: &str = "main";
const JOURNAL_PREFIX: &str = "j-";

/// What `stat` says of a file (times in nanoseconds since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    inode: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    stat: Stat,
    hash: String,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// Keys entered since the last save.
    added: Vec<String>,
    /// Journals read at load, deleted once a lock holder has written them into `main`.
    journals: Vec<PathBuf>,
}

/// The stat cache of one open cache (loaded at its first lookup).
pub struct FileHashes {
    dir: PathBuf,
    state: Mutex<Option<State>>,
}

#[cfg(unix)]
fn stat_of(meta: &fs::Metadata) -> Option<Stat> {
    use std::os::unix::fs::MetadataExt;
    let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
    Some(Stat {
        size: meta.len(),
        mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
        ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        inode: meta.ino(),
    })
}

#[cfg(not(unix))]
fn stat_of(_: &fs::Metadata) -> Option<Stat> {
    None
}

fn now_ns() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128)
}

/// The key of a path: absolute (without resolving links), if it can be written on one line.
fn key_of(path: &Path) -> Option<String> {
    let absolute = std::path::absolute(path).ok()?;
    let key = absolute.to_str()?;
    (!key.contains('\n')).then(|| key.to_string())
}

fn hash_content(path: &Path) -> Result<String> {
    let mut hasher = blake3::Hasher::new();
    let file = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    hasher.update_reader(file).map_err(|e| Error::io(path, e))?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// The entries of one file (`main` or a journal); nothing if it is not a stat cache file.
fn parse(text: &str, into: &mut HashMap<String, Entry>) {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return;
    }
    for line in lines {
        let mut fields = line.splitn(6, '\t');
        let mut next = || fields.next();
        let (Some(hash), Some(size), Some(mtime), Some(ctime), Some(inode), Some(path)) =
            (next(), next(), next(), next(), next(), next())
        else {
            continue;
        };
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let (Ok(size), Ok(mtime_ns), Ok(ctime_ns), Ok(inode)) =
            (size.parse(), mtime.parse(), ctime.parse(), inode.parse())
        else {
            continue;
        };
        let stat = Stat { size, mtime_ns, ctime_ns, inode };
        into.insert(path.to_string(), Entry { stat, hash: hash.to_string() });
    }
}

fn render<'a>(entries: impl Iterator<Item = (&'a String, &'a Entry)>) -> Vec<u8> {
    let mut text = String::from(HEADER);
    text.push('\n');
    for (path, Entry { stat, hash }) in entries {
        let Stat { size, mtime_ns, ctime_ns, inode } = stat;
        text.push_str(&format!("{hash}\t{size}\t{mtime_ns}\t{ctime_ns}\t{inode}\t{path}\n"));
    }
    text.into_bytes()
}

/// Replace `dest` by a temporary file renamed over it, without `fsync`: unlike a record, the
/// stat cache may lose entries in a crash (every line is validated when read, so a torn or
/// empty file costs one more hash per input, never a wrong one). An `fsync` here waited for
/// everything the array tasks had just written (ext4 commits its whole journal), which made the
/// first no-op after a 40,000-run submission take 4.7 s instead of 1.3 s.
fn write_unsynced(dir: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    super::replace_in(dir, dest, bytes, false)
}

impl FileHashes {
    /// The stat cache in `dir` (`<cache>/filehashes`); nothing is read yet.
    pub fn new(dir: PathBuf) -> FileHashes {
        FileHashes { dir, state: Mutex::new(None) }
    }

    fn load(&self) -> State {
        let mut state = State::default();
        if let Ok(text) = fs::read_to_string(self.dir.join(MAIN)) {
            parse(&text, &mut state.entries);
        }
        let Ok(listing) = fs::read_dir(&self.dir) else { return state };
        let mut journals: Vec<PathBuf> = listing
            .flatten()
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(JOURNAL_PREFIX)))
            .map(|e| e.path())
            .collect();
        journals.sort();
        for journal in journals {
            if let Ok(text) = fs::read_to_string(&journal) {
                parse(&text, &mut state.entries);
                state.journals.push(journal);
            }
        }
        state
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut guard = self.state.lock().expect("no panics hold this");
        f(guard.get_or_insert_with(|| self.load()))
    }

    /// The content hash (blake3) of a file, re-hashed unless the stat cache holds it.
    pub fn hash(&self, path: &Path) -> Result<String> {
        let looked_at = now_ns();
        let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let stat = stat_of(&meta);
        let key = stat.and_then(|_| key_of(path));
        if let (Some(stat), Some(key)) = (stat, &key) {
            let hit = self.with_state(|s| s.entries.get(key).filter(|e| e.stat == stat).map(|e| e.hash.clone()));
            if let Some(hash) = hit {
                return Ok(hash);
            }
        }
        let hash = hash_content(path)?;
        let settled = |t: i128| t <= looked_at - RACY_WINDOW.as_nanos() as i128;
        if let (Some(stat), Some(key)) = (stat, key)
            && settled(stat.mtime_ns)
            && settled(stat.ctime_ns)
        {
            self.with_state(|s| {
                s.entries.insert(key.clone(), Entry { stat, hash: hash.clone() });
                s.added.push(key);
            });
        }
        Ok(hash)
    }

    /// Persist what was entered since the last save: as `main` when holding the cache lock
    /// (`locked`), merging and then deleting the journals read; otherwise as a new journal.
    pub fn save(&self, locked: bool) -> Result<()> {
        let mut guard = self.state.lock().expect("no panics hold this");
        let Some(state) = guard.as_mut() else { return Ok(()) };
        if locked {
            if state.added.is_empty() && state.journals.is_empty() {
                return Ok(());
            }
            let mut entries: Vec<(&String, &Entry)> = state.entries.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            write_unsynced(&self.dir, &self.dir.join(MAIN), &render(entries.into_iter()))?;
            for journal in state.journals.drain(..) {
                match fs::remove_file(&journal) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&journal, e)),
                    _ => {}
                }
            }
        } else {
            if state.added.is_empty() {
                return Ok(());
            }
            let added = state.added.iter().filter_map(|k| state.entries.get_key_value(k));
            let name = format!("{JOURNAL_PREFIX}{}-{}-{}", super::this_host(), std::process::id(), now_ns());
            super::write_atomic_in(&self.dir, &self.dir.join(name), &render(added))?;
        }
        state.added.clear();
        Ok(())
    }
}
