//! The engine's promises: precise reruns, resume after kill -9, determinism across thread
//! counts, safe concurrent runs, provenance that reaches the raw inputs.

mod common;

use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

/// A reduced-size embedded study (simulated, so nothing to download).
fn small_study(dir: &Path) {
    embedded_study(
        dir,
        &[
            ("subjects = 25000", "subjects = 3000"),
            ("permutations = 5000", "permutations = 199"),
            ("bootstrap = 1000", "bootstrap = 100"),
        ],
    );
}

fn descendants_of_idps() -> Vec<&'static str> {
    vec![
        "table/idps",
        "dataset",
        "split",
        "associate/insomnia/discovery",
        "associate/depression/discovery",
        "associate/anxiety/discovery",
        "associate/insomnia/held-out",
        "associate/depression/held-out",
        "associate/anxiety/held-out",
        "fdr/discovery",
        "fdr/held-out",
        "replicate",
    ]
}

#[test]
fn nothing_changed_runs_nothing_and_fdr_level_reruns_only_its_dependents() {
    let dir = tempfile::tempdir().unwrap();
    small_study(dir.path());
    let first = run_json(dir.path(), "study.toml", &[]);
    assert_eq!(first["executed"], 17);
    assert_eq!(first["failed"], 0);

    let again = run_json(dir.path(), "study.toml", &[]);
    assert_eq!(again["executed"], 0, "{again}");
    assert_eq!(again["cached"], 17);

    let study = dir.path().join("study.toml");
    let text = std::fs::read_to_string(&study).unwrap();
    std::fs::write(&study, text.replace("q = 0.05", "q = 0.1")).unwrap();
    let plan = neurospec(dir.path(), &["plan", "study.toml"]);
    let plan = String::from_utf8_lossy(&plan.stdout).to_string();
    assert!(plan.lines().any(|l| l.starts_with("fdr/discovery") && l.contains("parameter `q` changed")), "{plan}");
    assert!(plan.lines().any(|l| l.starts_with("dataset") && l.ends_with("cached")), "{plan}");
    let after = run_json(dir.path(), "study.toml", &[]);
    assert_eq!(executed(&after), vec!["fdr/discovery", "fdr/held-out", "replicate"]);

    // The number of permutations is read by the association stages only.
    let text = std::fs::read_to_string(&study).unwrap();
    std::fs::write(&study, text.replace("permutations = 199", "permutations = 299")).unwrap();
    let perms = run_json(dir.path(), "study.toml", &[]);
    let ran = executed(&perms);
    let downstream =
        |s: &String| ["associate/", "fdr/", "differences/"].iter().any(|p| s.starts_with(p)) || s == "replicate";
    assert!(ran.iter().all(downstream), "{ran:?}");
    assert_eq!(ran.iter().filter(|s| s.starts_with("associate/")).count(), 6);
}

#[test]
fn one_byte_of_an_input_table_reruns_its_dependents_only() {
    let dir = tempfile::tempdir().unwrap();
    simulated_ukb(dir.path(), 2000, QUICK_UKB);
    let first = run_json(dir.path(), "study.toml", &[]);
    assert_eq!(first["executed"], first["stages"], "{first}");

    // Touching a file without changing it reruns nothing (content hashes, not mtimes).
    let idps = dir.path().join("idps.tsv");
    let bytes = std::fs::read(&idps).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&idps, &bytes).unwrap();
    assert_eq!(run_json(dir.path(), "study.toml", &[])["executed"], 0);

    // Change one digit of one IDP value.
    let mut edited = bytes.clone();
    let line_start = edited.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(10).unwrap().0 + 1;
    let digit = (line_start + 12..edited.len()).find(|&i| edited[i].is_ascii_digit() && edited[i] != b'9').unwrap();
    edited[digit] += 1;
    std::fs::write(&idps, &edited).unwrap();
    let plan = String::from_utf8_lossy(&neurospec(dir.path(), &["plan", "study.toml"]).stdout).to_string();
    assert!(plan.lines().any(|l| l.starts_with("table/idps") && l.contains("input `file` changed")), "{plan}");
    let after = run_json(dir.path(), "study.toml", &[]);
    let ran = executed(&after);
    for stage in ["table/idps", "dataset", "split"] {
        assert!(ran.contains(&stage.to_string()), "{stage} should rerun: {ran:?}");
    }
    for stage in &ran {
        assert!(descendants_of_idps().contains(&stage.as_str()), "{stage} does not depend on idps.tsv: {ran:?}");
    }
    assert_eq!(ran.iter().filter(|s| s.starts_with("associate/")).count(), 6, "{ran:?}");
}

#[test]
fn outputs_are_identical_for_one_and_two_threads() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    small_study(one.path());
    small_study(two.path());
    run_json(one.path(), "study.toml", &["-j", "1"]);
    run_json(two.path(), "study.toml", &["-j", "2"]);
    let a = outputs(&one.path().join("derivatives/ukb-symptoms"));
    let b = outputs(&two.path().join("derivatives/ukb-symptoms"));
    assert!(a.len() >= 10, "{:?}", a.keys());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        assert!(bytes == &b[name], "{name} differs between -j 1 and -j 2");
    }
}

#[test]
fn a_run_killed_with_sigkill_resumes_to_identical_outputs() {
    let reference = tempfile::tempdir().unwrap();
    let killed = tempfile::tempdir().unwrap();
    let replacements = [("permutations = 5000", "permutations = 1999"), ("bootstrap = 1000", "bootstrap = 200")];
    embedded_study(reference.path(), &replacements);
    embedded_study(killed.path(), &replacements);
    run_json(reference.path(), "study.toml", &["-j", "2"]);

    let mut child = std::process::Command::new(bin())
        .args(["run", "study.toml", "-j", "2", "--json"])
        .current_dir(killed.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill once the cheap front stages have records, while associations are computing.
    let records = killed.path().join(".neurospec/records");
    let started = Instant::now();
    loop {
        // Records only, not the partial writes (`.neurospec-partial-…`) beside them.
        let n = std::fs::read_dir(&records)
            .map(|d| d.flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')).count())
            .unwrap_or(0);
        if n >= 6 || started.elapsed() > Duration::from_secs(120) {
            break;
        }
        if child.try_wait().unwrap().is_some() {
            panic!("the run finished before it could be killed; make the workload larger");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    assert!(!killed.path().join("derivatives/ukb-symptoms/neurospec.lock").exists(), "nothing is published mid-run");

    let resumed = run_json(killed.path(), "study.toml", &["-j", "2"]);
    assert!(resumed["cached"].as_u64().unwrap() >= 6, "the resumed run reused finished stages: {resumed}");
    let a = outputs(&reference.path().join("derivatives/ukb-symptoms"));
    let b = outputs(&killed.path().join("derivatives/ukb-symptoms"));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        assert!(bytes == &b[name], "{name} differs after kill -9 and resume");
    }
}

#[test]
fn concurrent_runs_on_one_cache_are_safe() {
    let dir = tempfile::tempdir().unwrap();
    small_study(dir.path());
    let spawn =
        || std::process::Command::new(bin()).args(["run", "study.toml", "--json"]).current_dir(dir.path()).output();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    assert!(a.status.success() && b.status.success());
    let a: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&b.stdout).unwrap();
    // One run computed everything; the other waited for the lock and found it all cached.
    let mut executed = [a["executed"].as_u64().unwrap(), b["executed"].as_u64().unwrap()];
    executed.sort();
    assert_eq!(executed, [0, 17]);
}

#[test]
fn explain_traces_an_output_back_to_the_raw_files() {
    let dir = tempfile::tempdir().unwrap();
    simulated_ukb(
        dir.path(),
        500,
        &[
            ("permutations = 5000", "permutations = 0"),
            ("bootstrap = 1000", "bootstrap = 0"),
            ("differences = [", "# differences = ["),
            ("p = \"permutation\"", "p = \"parametric\""),
        ],
    );
    run_json(dir.path(), "study.toml", &[]);
    let out = neurospec(dir.path(), &["explain", "derivatives/ukb-symptoms/replication.tsv"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for needle in [
        "made by   stage replicate",
        "as produced by the run",
        "fdr/discovery",
        "associate/anxiety/discovery",
        "dataset",
        "file:idps.tsv",
        "file:pheno.tsv",
        "\"alpha\":0.05",
    ] {
        assert!(text.contains(needle), "explain lacks `{needle}`:\n{text}");
    }
    // A hand-edited output is flagged.
    let path = dir.path().join("derivatives/ukb-symptoms/split.tsv");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.push(b'\n');
    std::fs::write(&path, bytes).unwrap();
    let out = neurospec(dir.path(), &["explain", "derivatives/ukb-symptoms/split.tsv"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("MODIFIED since the run"));
    // The next run restores it.
    run_json(dir.path(), "study.toml", &[]);
    let out = neurospec(dir.path(), &["explain", "derivatives/ukb-symptoms/split.tsv"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("as produced by the run"));
}

#[test]
fn a_corrupt_cache_object_is_detected_and_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    small_study(dir.path());
    run_json(dir.path(), "study.toml", &[]);
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("derivatives/ukb-symptoms/neurospec.lock")).unwrap())
            .unwrap();
    let stage = lock["stages"].as_array().unwrap().iter().find(|s| s["id"] == "split").unwrap();
    let hash = stage["outputs"]["split"]["hash"].as_str().unwrap();
    let object = dir.path().join(".neurospec/objects").join(&hash[..2]).join(&hash[2..]);
    std::fs::write(&object, b"garbage").unwrap();
    let out = neurospec(dir.path(), &["run", "study.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("corrupt") && stderr.contains("rerun"), "{stderr}");
    let again = run_json(dir.path(), "study.toml", &[]);
    assert_eq!(executed(&again), vec!["split"], "only the stage whose output was corrupt reruns");
}

/// A cached result that lacks an output the plan publishes or passes on (made by code that
/// produced fewer outputs) is not reused: the stage reruns and the output is published.
#[test]
fn a_cached_result_missing_an_output_is_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    small_study(dir.path());
    run_json(dir.path(), "study.toml", &[]);
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("derivatives/ukb-symptoms/neurospec.lock")).unwrap())
            .unwrap();
    let stage = lock["stages"].as_array().unwrap().iter().find(|s| s["id"] == "split").unwrap();
    let record_path = dir.path().join(".neurospec/records").join(stage["fingerprint"].as_str().unwrap());
    // The record older code would have written: intact (sealed) but without the output.
    let mut record: neurospec::store::Record = serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    record.outputs.remove("split");
    std::fs::write(&record_path, serde_json::to_vec_pretty(&record.sealed()).unwrap()).unwrap();
    std::fs::remove_file(dir.path().join("derivatives/ukb-symptoms/split.tsv")).unwrap();
    let plan = String::from_utf8_lossy(&neurospec(dir.path(), &["plan", "study.toml"]).stdout).to_string();
    assert!(plan.lines().any(|l| l.starts_with("split") && l.contains("lacks output split")), "{plan}");
    let again = run_json(dir.path(), "study.toml", &[]);
    assert_eq!(executed(&again), vec!["split"], "only the stage with the incomplete record reruns");
    assert!(dir.path().join("derivatives/ukb-symptoms/split.tsv").is_file());
}
