//! `neurospec gc`: two studies share a cache; cleaning it for one keeps what the other's
//! published lock file names, deletes exactly the records and objects nobody needs, and reports
//! the bytes it removed.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Every file under `root` with its size.
fn files(root: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                out.insert(entry.path().strip_prefix(root).unwrap().display().to_string(), meta.len());
            }
        }
    }
    out
}

/// The byte count in gc's report line (`…: freed N bytes …` / `would free N bytes`).
fn freed(stdout: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(stdout);
    let after = text.split("free").nth(1).or_else(|| text.split("freed").nth(1)).expect(&text);
    after.trim_start_matches('d').split_whitespace().next().unwrap().parse().expect(&text)
}

fn all_cached(dir: &Path, study: &str) -> bool {
    let out = neurospec(dir, &["plan", study]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).contains(" 0 stale")
}

#[test]
fn gc_keeps_current_plans_and_lock_named_records_and_reports_freed_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let study = simulated_ukb(
        d,
        300,
        &[
            ("permutations = 5000", "permutations = 100"),
            ("bootstrap = 1000", "bootstrap = 0"),
            ("differences = [", "# differences = ["),
        ],
    );
    assert!(study.contains("permutations = 100") && study.contains("name = \"ukb-symptoms\""));
    std::fs::write(d.join("a.toml"), study.replacen("name = \"ukb-symptoms\"", "name = \"study-a\"", 1)).unwrap();
    std::fs::write(
        d.join("b.toml"),
        study.replacen("name = \"ukb-symptoms\"", "name = \"study-b\"", 1).replacen(
            "permutations = 100",
            "permutations = 120",
            1,
        ),
    )
    .unwrap();
    for s in ["a.toml", "b.toml"] {
        run_json(d, s, &["-j", "2"]);
    }
    // Study a changes: its old association records are now needed by nobody.
    let a = std::fs::read_to_string(d.join("a.toml")).unwrap();
    std::fs::write(d.join("a.toml"), a.replacen("permutations = 100", "permutations = 110", 1)).unwrap();
    run_json(d, "a.toml", &["-j", "2"]);
    let cache = d.join(".neurospec");
    let before = files(&cache);

    let dry = neurospec(d, &["gc", "a.toml", "--dry-run"]);
    assert!(dry.status.success(), "{}", String::from_utf8_lossy(&dry.stderr));
    assert_eq!(files(&cache), before, "--dry-run deleted something");
    let would = freed(&dry.stdout);

    let gc = neurospec(d, &["gc", "a.toml"]);
    assert!(gc.status.success(), "{}", String::from_utf8_lossy(&gc.stderr));
    let after = files(&cache);
    let removed: u64 = before.iter().filter(|(path, _)| !after.contains_key(*path)).map(|(_, size)| size).sum();
    assert!(removed > 0, "a's superseded records should go");
    assert_eq!(freed(&gc.stdout), removed, "reported bytes = bytes of the files removed");
    assert_eq!(would, removed, "the dry run announced exactly this");
    assert!(
        before.keys().filter(|p| p.starts_with("records")).count()
            > after.keys().filter(|p| p.starts_with("records")).count()
    );
    assert!(all_cached(d, "a.toml"), "a's current plan must stay cached");
    assert!(all_cached(d, "b.toml"), "b's lock-named records must stay");
    // Nothing left to collect.
    let again = neurospec(d, &["gc", "a.toml"]);
    assert_eq!(freed(&again.stdout), 0, "{}", String::from_utf8_lossy(&again.stdout));

    // --all ignores lock files: only a's current plan survives.
    let all = neurospec(d, &["gc", "a.toml", "--all"]);
    assert!(all.status.success(), "{}", String::from_utf8_lossy(&all.stderr));
    assert!(freed(&all.stdout) > 0);
    assert!(all_cached(d, "a.toml"));
    assert!(!all_cached(d, "b.toml"), "--all deletes what only b's lock named");
}

#[test]
fn gc_needs_a_study_or_all() {
    let dir = tempfile::tempdir().unwrap();
    let out = neurospec(dir.path(), &["gc"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("name the studies"));
}

/// Stand-ins for the Slurm commands in `dir/bin` (sbatch prints a job id and runs nothing), and
/// the PATH that finds them first.
fn slurm_stand_ins(dir: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, text) in [
        ("sbatch", "#!/bin/sh\necho 4242\n"),
        ("scontrol", "#!/bin/sh\necho 'MaxArraySize = 1001'\n"),
        ("squeue", "#!/bin/sh\nexit 0\n"),
        ("scancel", "#!/bin/sh\nexit 0\n"),
    ] {
        std::fs::write(bin.join(name), text).unwrap();
        std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

#[test]
fn gc_refuses_while_a_slurm_submission_has_not_published_and_proceeds_once_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    simulated_ukb(d, 300, QUICK_UKB);
    let path = slurm_stand_ins(d);
    let with_stand_ins = |args: &[&str]| {
        std::process::Command::new(bin()).args(args).current_dir(d).env("PATH", &path).output().unwrap()
    };
    let submitted = with_stand_ins(&["run", "study.toml", "--executor", "slurm", "--json"]);
    assert!(submitted.status.success(), "{}", String::from_utf8_lossy(&submitted.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&submitted.stdout).unwrap();
    let folder = summary["submission"].as_str().unwrap().to_string();

    let cache = d.join(".neurospec");
    let before = files(&cache);
    let gc = neurospec(d, &["gc", "study.toml"]);
    assert_eq!(gc.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&gc.stderr);
    let plan_id = Path::new(&folder).file_name().unwrap().to_str().unwrap();
    assert!(stderr.contains("may still be writing") && stderr.contains(plan_id), "{stderr}");
    assert_eq!(files(&cache), before, "a refused gc deletes nothing");

    // The jobs run (here, one after another, as Slurm would) and the publish job publishes.
    let submission: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(&folder).join("submission.json")).unwrap()).unwrap();
    for (a, array) in submission["arrays"].as_array().unwrap().iter().enumerate() {
        for t in 0..array["tasks"].as_array().unwrap().len() {
            let (a, t) = (a.to_string(), t.to_string());
            let task = with_stand_ins(&["exec", "--submission", &folder, "--array", &a, "--task", &t]);
            assert!(task.status.success(), "{}", String::from_utf8_lossy(&task.stderr));
        }
    }
    let publish = with_stand_ins(&["exec", "--submission", &folder, "--publish"]);
    assert!(publish.status.success(), "{}", String::from_utf8_lossy(&publish.stderr));
    let gc = neurospec(d, &["gc", "study.toml"]);
    assert!(gc.status.success(), "{}", String::from_utf8_lossy(&gc.stderr));
    assert!(all_cached(d, "study.toml"));
}
