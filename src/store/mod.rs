//! The content-addressed cache: objects, provenance records, and the run lock.
//!
//! # Layout (`.neurospec/` beside the study, or `--cache-dir`)
//!
//! ```text
//! objects/ab/cdef…        stage outputs, named by the blake3 hash of their bytes
//! records/<fingerprint>   one provenance record (JSON) per executed stage instance
//! latest/<stage key>      the fingerprint a stage id last ran with (to explain staleness)
//! filehashes/             stat cache: path, size, mtime, ctime, inode → content hash of raw input files
//! slurm/                  submitted plans and their task markers (`exec::slurm`)
//! tmp/                    partial writes of older versions (swept like the others)
//! lock                    held exclusively by a local run and while a Slurm run is submitted
//! swept                   when the large folders were last swept for partial writes (Unix s)
//! ```
//!
//! # Guarantees
//!
//! * **Atomic writes.** Every object and record is written to a temp file *in its destination
//!   folder*, named `.neurospec-partial-<host>-<pid>-<random>`, synced and renamed into place, so
//!   a reader sees a whole file or none. Rename within one folder is atomic on local file systems
//!   and on NFS and Lustre, which is all the cache relies on: no `flock`, no shared clock.
//! * **Many concurrent writers.** Slurm array tasks on many nodes, two studies sharing a cache,
//!   and a local run beside them may all write at once, without a common lock: a stage's objects
//!   are named by their content and its record by its fingerprint, and stages are deterministic,
//!   so two writers of one name write the same object (or an equally valid record of the same
//!   result) and the last rename wins harmlessly. The stat cache `filehashes/` keeps one journal
//!   per writer without the lock, merged by the next lock holder ([`filehashes`]); losing an
//!   entry would cost a re-hash, never a wrong hash.
//! * **Garbage of killed writers.** A writer killed mid-write leaves a partial file. [`Store::open`]
//!   deletes one only when it is provably abandoned: written by this host and its process no
//!   longer exists, or (another host's) untouched for [`ABANDONED_AFTER`]. A live writer's temp
//!   file is never deleted under it, whichever host it runs on. The cache's own folder and
//!   `tmp/` are swept on every open; the large folders (`records/`, `latest/`, `objects/*/`,
//!   tens of thousands of entries for a large cohort) at most once per [`SWEEP_EVERY`], as
//!   recorded in `swept`, so that a no-op rerun does not list them all.
//! * **A record is written last.** A stage's record is written only after all its output objects
//!   are in place; a record therefore proves its outputs were complete. This is what makes resume
//!   after a crash safe: stages with records are reused, the rest rerun.
//! * **A record is verified before it is trusted.** Every record carries a seal, the blake3 of its
//!   stored JSON text with the seal left empty (fingerprint, kind, version, parameters, seed,
//!   inputs, output hashes and sizes, timings); it is checked on the text as read, so it never
//!   depends on floating-point numbers surviving a parse. [`Store::record`] returns a record only if it is filed under its own
//!   fingerprint and its seal holds; `exec` then checks that its kind, version, parameters, seed
//!   and input hashes are exactly those of the node being looked up (the fingerprint's content),
//!   and that every output object is present with its recorded size. Anything else — an output
//!   hash edited to point at another stage's object, edited parameters or seed, a record copied
//!   from another stage, a record from before seals — counts as missing: the stage reruns and
//!   its new record replaces the bad one. (The seal guards against accidents and hand edits, not
//!   against someone who recomputes it: whoever can write the cache can write its objects too.)
//! * **Verified reads.** Reading an object re-hashes it and fails loudly on a mismatch (disk
//!   corruption, a hand-edited cache), naming the object and what to do.
//! * **Local runs take turns.** A local run holds an exclusive lock on `lock` ([`Store::open`]);
//!   a second local run on the same cache waits (and says so), so that a cohort is simulated
//!   once. The lock is a courtesy, not what keeps the cache consistent: Slurm array tasks open
//!   the cache with [`Store::open_shared`], which takes no lock, and run beside anything else.
//!   The lock is released when the run ends, also when a stage fails or panics.
//! * **Permissions from the umask.** Objects, records and folders are created 0666 / 0777
//!   narrowed by the umask (0644 / 0755 under the usual 022), so a lab's group can share a cache.
//!
//! The stat cache `filehashes/` is only a shortcut to avoid re-hashing unchanged raw files (see
//! [`filehashes`] for what it keys on and why a hit is safe); the fingerprint always uses the
//! content hash, never an mtime or an absolute path.

pub mod filehashes;
pub mod gc;
pub mod scratch;

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A provenance record: everything about how one stage instance produced its outputs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub stage: String,
    pub kind: String,
    /// The stage kind's code version (bumped when its method changes).
    pub version: u32,
    pub fingerprint: String,
    pub params: serde_json::Value,
    /// Seed of the stage's random draws (stages that draw none have none).
    pub seed: Option<u64>,
    pub inputs: Vec<RecordInput>,
    pub outputs: BTreeMap<String, RecordOutput>,
    /// Seconds since the Unix epoch when the stage started.
    pub started_unix: u64,
    pub wall_seconds: f64,
    pub host: String,
    pub neurospec_version: String,
    /// blake3 of the record's stored JSON with this field empty (see [`Record::sealed`]); the
    /// last field, so that it is the last thing in the stored text.
    #[serde(default)]
    pub seal: String,
}

impl Record {
    /// The record with its seal set: the blake3 of its JSON as stored (pretty-printed, with an
    /// empty seal), which binds every field — fingerprint, kind, version, parameters, seed,
    /// inputs, output hashes — so that an edited record is detected. The seal is checked on the
    /// stored text itself (`verify_sealed_text`), so no number has to survive a parse.
    pub fn sealed(mut self) -> Record {
        self.seal = String::new();
        self.seal = seal_of_text(&serde_json::to_vec_pretty(&self).expect("records serialise"));
        self
    }

    /// Whether the record is sealed and its seal matches its fields.
    pub fn seal_holds(&self) -> bool {
        !self.seal.is_empty() && self.clone().sealed().seal == self.seal
    }
}

fn seal_of_text(unsealed: &[u8]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"neurospec-record-seal-v1\0");
    h.update(unsealed);
    h.finalize().to_hex().to_string()
}

/// Whether a stored record's text carries a seal that matches the rest of the text. The seal is
/// the record's last field, so its value is the last `"seal": "…"` in the file.
fn verify_sealed_text(text: &[u8]) -> bool {
    const KEY: &[u8] = b"\"seal\": \"";
    let Some(at) = text.windows(KEY.len()).rposition(|w| w == KEY) else { return false };
    let start = at + KEY.len();
    let Some(len) = text[start..].iter().position(|&b| b == b'"') else { return false };
    let seal = &text[start..start + len];
    let mut unsealed = text[..start].to_vec();
    unsealed.extend_from_slice(&text[start + len..]);
    !seal.is_empty() && seal == seal_of_text(&unsealed).as_bytes()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordInput {
    pub name: String,
    pub hash: String,
    /// `stage:<id>/<output>` or `file:<path as written in the study>`.
    pub source: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordOutput {
    pub hash: String,
    pub bytes: u64,
}

pub struct Store {
    root: PathBuf,
    _lock: Option<File>,
    file_hashes: filehashes::FileHashes,
}

/// blake3 hex digest of bytes.
pub fn hash_bytes(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Open (creating) `path` and lock it exclusively, printing `waiting` when another process holds
/// it and then waiting for it. The lock lasts as long as the returned file.
pub fn lock_exclusive(path: &Path, waiting: &str) -> Result<File> {
    let lock = File::options().create(true).truncate(false).write(true).open(path).map_err(|e| Error::io(path, e))?;
    if lock.try_lock().is_err() {
        eprintln!("{waiting}");
        lock.lock().map_err(|e| Error::io(path, e))?;
    }
    Ok(lock)
}

impl Store {
    /// Open (creating if needed) and lock a cache folder for a local run. Waits while another
    /// local run holds it; then deletes the abandoned partial writes of killed writers.
    pub fn open(root: &Path) -> Result<Store> {
        Self::create_folders(root)?;
        let lock_path = root.join("lock");
        let lock = lock_exclusive(
            &lock_path,
            &format!("waiting for another neurospec run that holds {}", lock_path.display()),
        )?;
        sweep_partials(root);
        sweep_partials(&root.join("tmp"));
        sweep_partials(&root.join(filehashes::FOLDER));
        // The stat cache of versions before `filehashes/` (read by none since).
        let _ = fs::remove_file(root.join("filehashes.json"));
        if sweep_due(root) {
            let mut folders = vec![root.join("records"), root.join("latest")];
            if let Ok(entries) = fs::read_dir(root.join("objects")) {
                folders.extend(entries.flatten().map(|e| e.path()));
            }
            for folder in folders {
                sweep_partials(&folder);
            }
            let now = unix_now().to_string() + "\n";
            write_atomic_in(root, &root.join(SWEPT), now.as_bytes())?;
        }
        Ok(Self::with_lock(root, Some(lock)))
    }

    /// Open (creating if needed) a cache folder without its lock, for one of many concurrent
    /// writers (a Slurm array task): see the module doc for why that is safe.
    pub fn open_shared(root: &Path) -> Result<Store> {
        Self::create_folders(root)?;
        Ok(Self::with_lock(root, None))
    }

    fn create_folders(root: &Path) -> Result<()> {
        for sub in ["objects", "records", "latest", "tmp"] {
            fs::create_dir_all(root.join(sub)).map_err(|e| Error::io(root.join(sub), e))?;
        }
        Ok(())
    }

    fn with_lock(root: &Path, lock: Option<File>) -> Store {
        let file_hashes = filehashes::FileHashes::new(root.join(filehashes::FOLDER));
        Store { root: root.to_path_buf(), _lock: lock, file_hashes }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn object_path(&self, hash: &str) -> PathBuf {
        // A hash from a damaged record must not index outside `objects/` (or panic on slicing).
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return self.root.join("objects").join("not-a-blake3-hash");
        }
        self.root.join("objects").join(&hash[..2]).join(&hash[2..])
    }

    /// Write bytes atomically to `dest` via a temp file beside it (one folder: atomic on NFS).
    pub fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<()> {
        write_atomic_in(dest.parent().unwrap_or(&self.root), dest, bytes)
    }

    /// Store an object; returns its hash. Existing objects are not rewritten.
    pub fn put(&self, bytes: &[u8]) -> Result<String> {
        let hash = hash_bytes(bytes);
        let path = self.object_path(&hash);
        if !path.exists() {
            let dir = path.parent().expect("object path has a parent");
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            self.write_atomic(&path, bytes)?;
        }
        Ok(hash)
    }

    pub fn has(&self, hash: &str) -> bool {
        self.object_path(hash).is_file()
    }

    /// Read an object and verify its hash.
    pub fn get(&self, hash: &str) -> Result<Vec<u8>> {
        let path = self.object_path(hash);
        let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        if hash_bytes(&bytes) != hash {
            // Remove it so that the stage that made it is stale on the next run.
            let removed = fs::remove_file(&path).is_ok();
            return Err(Error::data(format!(
                "cache object {} is corrupt (its content no longer matches its hash); {}",
                path.display(),
                if removed {
                    "it has been removed: rerun to recompute it"
                } else {
                    "delete it and rerun to recompute it"
                }
            )));
        }
        Ok(bytes)
    }

    /// The record stored under a fingerprint, if it is intact: it parses, names that fingerprint,
    /// and its seal holds. A record edited by hand (an output hash pointing at another object,
    /// changed parameters or seed) or written by a version without seals is not returned, so the
    /// stage reruns and its rewritten record replaces the bad one. The caller still checks the
    /// record's kind, parameters, seed and inputs against the node it looks up (`exec`).
    pub fn record(&self, fingerprint: &str) -> Option<Record> {
        let bytes = fs::read(self.root.join("records").join(fingerprint)).ok()?;
        let record: Record = serde_json::from_slice(&bytes).ok()?;
        (record.fingerprint == fingerprint && verify_sealed_text(&bytes)).then_some(record)
    }

    /// Why the record file under this fingerprint is not trusted, if one exists and is not intact
    /// (see [`Store::record`]).
    pub fn untrusted_record(&self, fingerprint: &str) -> Option<&'static str> {
        let bytes = fs::read(self.root.join("records").join(fingerprint)).ok()?;
        let Ok(record) = serde_json::from_slice::<Record>(&bytes) else {
            return Some("its cached record is unreadable");
        };
        if record.seal.is_empty() {
            Some("its cached record was written before records were sealed (an older neurospec)")
        } else if record.fingerprint != fingerprint || !verify_sealed_text(&bytes) {
            Some("its cached record does not match its fingerprint (edited or damaged)")
        } else {
            None
        }
    }

    /// An intact record whose output objects are all present with their recorded sizes (a usable
    /// cache hit). Contents are verified by hash whenever an object is read.
    pub fn complete_record(&self, fingerprint: &str) -> Option<Record> {
        self.record(fingerprint).filter(|r| r.outputs.values().all(|o| self.has_intact_size(o)))
    }

    /// Whether a recorded output's object is present with the recorded size.
    pub fn has_intact_size(&self, output: &RecordOutput) -> bool {
        fs::metadata(self.object_path(&output.hash)).is_ok_and(|m| m.is_file() && m.len() == output.bytes)
    }

    /// Store a record (sealed with [`Record::sealed`]) after its outputs.
    pub fn put_record(&self, record: &Record) -> Result<()> {
        debug_assert!(record.seal_holds(), "records are sealed before they are stored");
        let bytes = serde_json::to_vec_pretty(record).expect("records serialise");
        self.write_atomic(&self.root.join("records").join(&record.fingerprint), &bytes)?;
        self.write_atomic(&self.latest_path(&record.stage), record.fingerprint.as_bytes())
    }

    fn latest_path(&self, stage: &str) -> PathBuf {
        self.root.join("latest").join(hash_bytes(stage.as_bytes()))
    }

    /// The record a stage id last ran with, if any (used to explain why a stage is stale).
    pub fn latest(&self, stage: &str) -> Option<Record> {
        let fingerprint = fs::read_to_string(self.latest_path(stage)).ok()?;
        self.record(fingerprint.trim())
    }

    /// Content hash of a raw input file, re-hashed unless the stat cache says the file is
    /// unchanged (size, mtime, ctime and inode: see [`filehashes`]).
    pub fn hash_file(&self, path: &Path) -> Result<String> {
        self.file_hashes.hash(path)
    }

    /// Persist what the stat cache of file hashes learnt (nothing when it learnt nothing).
    pub fn save_file_hashes(&self) -> Result<()> {
        self.file_hashes.save(self._lock.is_some())
    }
}

/// A tempfile builder whose files (mode 0o666) or folders (0o777) get the permissions the umask
/// allows, as anything else a program creates (tempfile's own default is owner-only, 0600/0700,
/// which would hide a shared cache or results from the lab's group).
pub fn temp_builder(prefix: &str, mode: u32) -> tempfile::Builder<'_, 'static> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix);
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(mode));
    #[cfg(not(unix))]
    let _ = mode;
    builder
}

/// How long another host's partial write must be untouched before it counts as abandoned (no
/// stage writes one object for a day; a live writer's file is never this old).
pub const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

const PARTIAL_PREFIX: &str = ".neurospec-partial-";

fn this_host() -> String {
    let host = hostname::get().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    host.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).collect()
}

/// The temp-file prefix of this process: `.neurospec-partial-<host>-<pid>-`.
fn partial_prefix() -> String {
    format!("{PARTIAL_PREFIX}{}-{}-", this_host(), std::process::id())
}

/// Whether a process with this id exists on this host.
fn process_exists(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
        // SAFETY: signal 0 only checks that the process exists and may be signalled.
        let answer = unsafe { libc::kill(pid, 0) };
        answer == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Whether a partial write named `name` (without folder) is provably abandoned.
fn is_abandoned(name: &str, age: Option<std::time::Duration>) -> bool {
    let Some(rest) = name.strip_prefix(PARTIAL_PREFIX) else { return false };
    let old = age.is_some_and(|a| a >= ABANDONED_AFTER);
    let mine = this_host();
    match rest.strip_prefix(&mine).and_then(|r| r.strip_prefix('-')).and_then(|r| r.split('-').next()) {
        Some(pid) => pid.parse().is_ok_and(|pid| !process_exists(pid)) || old,
        None => old,
    }
}

/// The file that records when the large folders were last swept (seconds since the Unix epoch).
const SWEPT: &str = "swept";

/// How often [`Store::open`] lists the large folders (`records/`, `latest/`, `objects/*/`) for
/// abandoned partial writes: listing 40,000 records on every open would cost most of a no-op
/// rerun, and garbage of a killed writer only takes space until it is swept.
pub const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Whether the large folders are due for a sweep: never swept, unreadable, or swept
/// [`SWEEP_EVERY`] ago (or in the future, by another host's clock).
fn sweep_due(root: &Path) -> bool {
    let last = fs::read_to_string(root.join(SWEPT)).ok().and_then(|t| t.trim().parse::<u64>().ok());
    let now = unix_now();
    last.is_none_or(|t| t > now || now - t >= SWEEP_EVERY.as_secs())
}

/// Delete the abandoned partial writes in one folder (see the module doc).
fn sweep_partials(folder: &Path) {
    let Ok(entries) = fs::read_dir(folder) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(PARTIAL_PREFIX) {
            continue;
        }
        let age = entry.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok());
        if is_abandoned(name, age) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Write `bytes` to `dest` atomically: a temp file in `tmp_dir` (use `dest`'s own folder where
/// the file system may be NFS or Lustre), fsync, rename.
pub fn write_atomic_in(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    replace_in(tmp_dir, dest, bytes, true)
}

/// As [`write_atomic_in`]; `durable` = false skips the `fsync` before the rename, for files a
/// crash may tear (readers must validate what they read).
fn replace_in(tmp_dir: &Path, dest: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    fs::create_dir_all(tmp_dir).map_err(|e| Error::io(tmp_dir, e))?;
    let prefix = partial_prefix();
    let mut tmp = temp_builder(&prefix, 0o666).tempfile_in(tmp_dir).map_err(|e| Error::io(tmp_dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(tmp.path(), e))?;
    if durable {
        tmp.as_file().sync_data().map_err(|e| Error::io(dest, e))?;
    }
    tmp.persist(dest).map_err(|e| Error::io(dest, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(wall_seconds: f64) -> Record {
        let mut outputs = BTreeMap::new();
        outputs.insert("result".to_string(), RecordOutput { hash: hash_bytes(b"result"), bytes: 6 });
        Record {
            stage: "fdr/discovery".into(),
            kind: "fdr".into(),
            version: 1,
            fingerprint: hash_bytes(b"fingerprint"),
            params: serde_json::json!({"q": 0.05, "weights": [0.1, 1e-300, 12345.678901234567]}),
            seed: Some(7),
            inputs: vec![RecordInput { name: "p".into(), hash: hash_bytes(b"p"), source: "stage:x/p".into() }],
            outputs,
            started_unix: 1,
            wall_seconds,
            host: "h".into(),
            neurospec_version: "0".into(),
            seal: String::new(),
        }
        .sealed()
    }

    #[test]
    fn only_abandoned_partial_writes_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join(format!("{}abc", partial_prefix()));
        // A pid that cannot exist on Linux (above pid_max's hard limit of 2^22).
        let dead = dir.path().join(format!("{PARTIAL_PREFIX}{}-{}-abc", this_host(), 9_999_999));
        let other_host = dir.path().join(format!("{PARTIAL_PREFIX}some-other-node-1-abc"));
        let user = dir.path().join("notes.txt");
        for path in [&live, &dead, &other_host, &user] {
            fs::write(path, b"x").unwrap();
        }
        sweep_partials(dir.path());
        assert!(live.exists(), "this process is alive: its temp file stays");
        assert!(!dead.exists(), "a dead writer of this host is swept");
        assert!(other_host.exists(), "another host's recent temp file stays (its writer may be alive)");
        assert!(user.exists());
        let name = other_host.file_name().unwrap().to_str().unwrap();
        assert!(is_abandoned(name, Some(ABANDONED_AFTER)), "a day-old file of another host is swept");
    }

    #[test]
    fn the_large_folders_are_swept_at_most_once_a_day() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let dead = |folder: &str| dir.path().join(folder).join(format!("{PARTIAL_PREFIX}{}-9999999-x", this_host()));
        for folder in ["records", "tmp"] {
            fs::write(dead(folder), b"x").unwrap();
        }
        drop(Store::open(dir.path()).unwrap());
        assert!(!dead("tmp").exists(), "tmp/ is swept on every open");
        assert!(dead("records").exists(), "records/ was swept less than a day ago");
        let a_day_ago = unix_now() - SWEEP_EVERY.as_secs();
        fs::write(dir.path().join(SWEPT), format!("{a_day_ago}\n")).unwrap();
        drop(Store::open(dir.path()).unwrap());
        assert!(!dead("records").exists(), "a day later, records/ is swept");
        let stamp: u64 = fs::read_to_string(dir.path().join(SWEPT)).unwrap().trim().parse().unwrap();
        assert!(stamp >= a_day_ago + SWEEP_EVERY.as_secs(), "and the sweep is recorded");
    }

    #[test]
    fn a_stored_seal_verifies_whatever_the_numbers_and_any_edit_breaks_it() {
        // Floats whose text the JSON parser may not read back exactly: the seal is on the text.
        let mut x = 0.123_456_789_012_345_67_f64;
        for _ in 0..20_000 {
            x = (x * 1.000_000_119 + 0.000_731).fract() * 977.0;
            let text = serde_json::to_vec_pretty(&record(x)).unwrap();
            assert!(verify_sealed_text(&text), "{}", String::from_utf8_lossy(&text));
        }
        let text = String::from_utf8(serde_json::to_vec_pretty(&record(1.5)).unwrap()).unwrap();
        let edits = [
            text.replace(&hash_bytes(b"result"), &hash_bytes(b"other")),
            text.replace("\"q\": 0.05", "\"q\": 0.5"),
            text.replace("\"seed\": 7", "\"seed\": 8"),
            text.replace("\"bytes\": 6", "\"bytes\": 7"),
        ];
        for edited in edits {
            assert_ne!(edited, text);
            assert!(!verify_sealed_text(edited.as_bytes()), "{edited}");
        }
        let unsealed = text.replace(&record(1.5).seal, "");
        assert!(!verify_sealed_text(unsealed.as_bytes()), "an empty seal never holds");
    }
}
