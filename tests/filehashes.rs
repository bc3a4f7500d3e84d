//! The stat cache of input files' hashes (`<cache>/filehashes/`): a hit is taken only for a file
//! whose size, mtime, ctime and inode are unchanged, so an edit that keeps the size and the mtime
//! is still seen; a freshly written file is not entered; writers without the cache lock (Slurm
//! array tasks) keep one another's entries.

mod common;

use common::*;
use neurospec::store::Store;
use neurospec::store::filehashes::RACY_WINDOW;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Wait until files written now are old enough to be entered in the stat cache.
fn settle() {
    std::thread::sleep(RACY_WINDOW + Duration::from_millis(300));
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

/// Rewrite a file with other bytes of the same length and put its mtime back.
fn edit_keeping_size_and_mtime(path: &Path, bytes: &[u8]) {
    let before = mtime(path);
    assert_eq!(std::fs::metadata(path).unwrap().len(), bytes.len() as u64);
    std::fs::write(path, bytes).unwrap();
    std::fs::File::options().write(true).open(path).unwrap().set_modified(before).unwrap();
    assert_eq!(mtime(path), before);
}

fn blake3_hex(bytes: &[u8]) -> String {
    // The store's object hash of these bytes (blake3): put them and read the name back.
    let dir = tempfile::tempdir().unwrap();
    Store::open(dir.path()).unwrap().put(bytes).unwrap()
}

/// The stat cache's lines (after the header) in `main` and every journal.
fn cache_lines(cache: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(cache.join("filehashes")).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        lines.extend(text.lines().skip(1).map(str::to_string));
    }
    lines
}

fn journals(cache: &Path) -> usize {
    std::fs::read_dir(cache.join("filehashes"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_str().unwrap().starts_with("j-"))
        .count()
}

#[test]
fn an_edit_that_keeps_size_and_mtime_is_not_served_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let input = dir.path().join("bold.nii");
    std::fs::write(&input, b"volume A").unwrap();
    settle();
    let store = Store::open(&cache).unwrap();
    assert_eq!(store.hash_file(&input).unwrap(), blake3_hex(b"volume A"));
    store.save_file_hashes().unwrap();
    drop(store);
    let lines = cache_lines(&cache);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].ends_with(&format!("\t{}", input.display())), "{lines:?}");

    // Plant a different hash in the entry: a lookup that returns it came from the cache.
    let main = cache.join("filehashes/main");
    let text = std::fs::read_to_string(&main).unwrap();
    let planted = "f".repeat(64);
    std::fs::write(&main, text.replace(&blake3_hex(b"volume A"), &planted)).unwrap();
    let store = Store::open(&cache).unwrap();
    assert_eq!(store.hash_file(&input).unwrap(), planted, "an unchanged file is a cache hit");
    drop(store);

    // Same size, mtime put back: the ctime moved, so the file is hashed again.
    edit_keeping_size_and_mtime(&input, b"volume B");
    let store = Store::open(&cache).unwrap();
    assert_eq!(store.hash_file(&input).unwrap(), blake3_hex(b"volume B"));

    // A file renamed over it (same size, mtime put back) has another inode.
    let other = dir.path().join("other.nii");
    std::fs::write(&other, b"volume C").unwrap();
    std::fs::File::options().write(true).open(&other).unwrap().set_modified(mtime(&input)).unwrap();
    std::fs::rename(&other, &input).unwrap();
    assert_eq!(store.hash_file(&input).unwrap(), blake3_hex(b"volume C"));
}

#[test]
fn a_file_written_within_the_racy_window_is_hashed_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let input = dir.path().join("table.tsv");
    std::fs::write(&input, b"id\tx\n1\t2\n").unwrap();
    let store = Store::open(&cache).unwrap();
    assert_eq!(store.hash_file(&input).unwrap(), blake3_hex(b"id\tx\n1\t2\n"));
    store.save_file_hashes().unwrap();
    assert!(!cache.join("filehashes/main").exists(), "nothing was entered, nothing written");
    // On a file system with 1-s timestamps this edit could keep mtime and ctime: it must be seen.
    edit_keeping_size_and_mtime(&input, b"id\tx\n1\t3\n");
    assert_eq!(store.hash_file(&input).unwrap(), blake3_hex(b"id\tx\n1\t3\n"));
}

#[test]
fn writers_without_the_lock_keep_each_others_entries_and_a_lock_holder_merges_them() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let inputs: Vec<_> = (0..2).map(|i| dir.path().join(format!("run-{i}.nii"))).collect();
    for (i, input) in inputs.iter().enumerate() {
        std::fs::write(input, format!("run {i}")).unwrap();
    }
    settle();
    // Two array tasks: both load the (empty) stat cache before either saves.
    let tasks: Vec<Store> = (0..2).map(|_| Store::open_shared(&cache).unwrap()).collect();
    for (task, input) in tasks.iter().zip(&inputs) {
        task.hash_file(input).unwrap();
    }
    for task in &tasks {
        task.save_file_hashes().unwrap();
    }
    assert_eq!(journals(&cache), 2);
    assert_eq!(cache_lines(&cache).len(), 2);

    // A lock holder reads both journals, writes them into `main` and deletes them.
    let store = Store::open(&cache).unwrap();
    for (i, input) in inputs.iter().enumerate() {
        assert_eq!(store.hash_file(input).unwrap(), blake3_hex(format!("run {i}").as_bytes()));
    }
    store.save_file_hashes().unwrap();
    drop(store);
    assert_eq!(journals(&cache), 0);
    let lines = cache_lines(&cache);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for input in &inputs {
        assert!(lines.iter().any(|l| l.ends_with(&format!("\t{}", input.display()))), "{lines:?}");
    }
}

#[test]
fn a_study_input_edited_with_its_size_and_mtime_kept_reruns_its_stage() {
    let dir = tempfile::tempdir().unwrap();
    simulated_ukb(dir.path(), 600, QUICK_UKB);
    run_json(dir.path(), "study.toml", &[]);
    settle();
    // This run finds everything cached and enters the (now settled) input files.
    assert_eq!(run_json(dir.path(), "study.toml", &[])["executed"], 0);
    let idps = dir.path().join("idps.tsv");
    let lines = cache_lines(&dir.path().join(".neurospec"));
    assert!(lines.iter().any(|l| l.ends_with("/idps.tsv")), "the input is in the stat cache: {lines:?}");

    let mut edited = std::fs::read(&idps).unwrap();
    let line_start = edited.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(10).unwrap().0 + 1;
    let digit = (line_start + 12..edited.len()).find(|&i| edited[i].is_ascii_digit() && edited[i] != b'9').unwrap();
    edited[digit] += 1;
    edit_keeping_size_and_mtime(&idps, &edited);
    let plan = String::from_utf8_lossy(&neurospec(dir.path(), &["plan", "study.toml"]).stdout).to_string();
    assert!(plan.lines().any(|l| l.starts_with("table/idps") && l.contains("input `file` changed")), "{plan}");
    let after = run_json(dir.path(), "study.toml", &[]);
    assert!(executed(&after).contains(&"table/idps".to_string()), "{after}");
}
