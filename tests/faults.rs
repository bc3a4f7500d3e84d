//! Promises under faults (issue 14): a panicking stage fails the run promptly and releases the
//! cache; the output folder is always one complete run (SIGKILL while publishing, a full disk, a
//! corrupt object, two runs publishing at once); edited records are not trusted; files get the
//! umask's permissions; a folder neurospec did not make is never replaced.

mod common;

use common::*;
use neurospec::error::Error;
use neurospec::exec::{self, Outcome};
use neurospec::plan::Node;
use neurospec::stages::{self, Context, Outputs};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const OUT: &str = "derivatives/ukb-symptoms";

/// A small embedded study (a few seconds to run); `q` is the FDR level, which changes only the
/// cheap tail of the DAG (`fdr/*`, `replicate`).
fn study(dir: &Path, file: &str, q: &str) {
    let path = embedded_study(
        dir,
        &[
            ("subjects = 25000", "subjects = 2000"),
            ("permutations = 5000", "permutations = 99"),
            ("bootstrap = 1000", "bootstrap = 100"),
            ("q = 0.05", &format!("q = {q}")),
        ],
    );
    if file != "study.toml" {
        std::fs::rename(path, dir.join(file)).unwrap();
    }
}

/// Run a command, failing the test if it takes longer than `limit` (a hang).
fn output_within(mut command: Command, limit: Duration) -> std::process::Output {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            panic!("{command:?} did not finish within {limit:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn neurospec_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(bin());
    command.args(args).current_dir(dir);
    command
}

fn hash(bytes: &[u8]) -> String {
    neurospec::store::hash_bytes(bytes)
}

/// Every file under `dir` (relative path → bytes), provenance included.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(
                    path.strip_prefix(root).unwrap().to_string_lossy().to_string(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    // The report's views (dated, and naming which stages ran) are not the run's results.
    out.retain(|rel, _| !neurospec::report::is_view(rel));
    out
}

/// Assert that a folder is one complete run: its lock lists exactly the files present (published
/// outputs with matching hashes, one provenance record per stage, the description), and return
/// the lock's bytes.
fn assert_complete(folder: &Path) -> Vec<u8> {
    let files = snapshot(folder);
    let lock_bytes =
        files.get("neurospec.lock").unwrap_or_else(|| panic!("{} has no lock: {:?}", folder.display(), files.keys()));
    let lock: serde_json::Value = serde_json::from_slice(lock_bytes).unwrap();
    let mut expected = vec!["neurospec.lock".to_string(), "dataset_description.json".to_string()];
    for stage in lock["stages"].as_array().unwrap() {
        let id = stage["id"].as_str().unwrap();
        expected.push(format!("provenance/{}", neurospec::outputs::provenance_name(id)));
        let provenance: serde_json::Value =
            serde_json::from_slice(&files[&format!("provenance/{}", neurospec::outputs::provenance_name(id))]).unwrap();
        assert_eq!(provenance["fingerprint"], stage["fingerprint"], "provenance of {id} is of another run");
        for (name, output) in stage["outputs"].as_object().unwrap() {
            if let Some(path) = output["path"].as_str() {
                let bytes = files.get(path).unwrap_or_else(|| panic!("{path} ({id}/{name}) is listed but missing"));
                assert_eq!(hash(bytes), output["hash"].as_str().unwrap(), "{path} does not match the lock");
                expected.push(path.to_string());
            }
        }
    }
    for (path, hash_of) in lock["sidecars"].as_object().into_iter().flatten() {
        let bytes = files.get(path).unwrap_or_else(|| panic!("sidecar {path} is listed but missing"));
        assert_eq!(hash(bytes), hash_of.as_str().unwrap(), "{path} does not match the lock");
        expected.push(path.clone());
    }
    expected.sort();
    // The report's files (views of the results and the study file) are not stage outputs.
    let present: Vec<String> = files.keys().filter(|f| !neurospec::report::is_companion(f)).cloned().collect();
    assert_eq!(present, expected, "files present differ from those the lock lists");
    lock_bytes.clone()
}

/// Hidden siblings a publish leaves while it works (staging or set-aside folders).
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir.join("derivatives"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("neurospec-staging") || n.contains("neurospec-old"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// A panicking stage.

/// The real stages, except that `split` panics inside a parallel loop on the worker pool.
fn panicking_split(node: &Node, ctx: &Context<'_>) -> neurospec::error::Result<Outputs> {
    if node.id == "split" {
        use rayon::prelude::*;
        (0..64u32).into_par_iter().for_each(|i| {
            if i == 37 {
                panic!("injected panic in {}", node.id);
            }
        });
    }
    stages::run(node.kind, ctx)
}

#[test]
fn a_panicking_stage_fails_the_run_promptly_names_the_stage_and_releases_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    study(dir.path(), "study.toml", "0.05");
    let root = dir.path().to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    // The run happens on its own thread so that a hang fails the test instead of stalling it.
    std::thread::spawn(move || {
        let loaded = neurospec::spec::load(&root.join("study.toml")).unwrap();
        let resolved = neurospec::spec::check::resolve(&loaded).unwrap();
        let plan = neurospec::plan::compile(&resolved);
        let store = neurospec::store::Store::open(&root.join(".neurospec")).unwrap();
        let options = exec::Options { jobs: 2, keep_going: false, progress: exec::progress::Mode::Quiet };
        let report = exec::run_with(&plan, &store, &options, &panicking_split).unwrap();
        let outcomes: Vec<(String, Outcome)> =
            report.outcomes.iter().map(|(i, o)| (plan.node(*i).id.clone(), o.clone())).collect();
        drop(store);
        tx.send(outcomes).unwrap();
    });
    let outcomes = rx.recv_timeout(Duration::from_secs(120)).expect("a run with a panicking stage hangs");
    let failed: Vec<(&str, &str)> = outcomes
        .iter()
        .filter_map(|(id, o)| match o {
            Outcome::Failed(message) => Some((id.as_str(), message.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "split");
    assert!(failed[0].1.starts_with("panicked: injected panic in split"), "{}", failed[0].1);
    let shown = Error::Stages(vec![(failed[0].0.into(), failed[0].1.into())]);
    assert!(shown.to_string().contains("stage split failed: panicked: injected panic in split"), "{shown}");
    assert_eq!(shown.exit_code(), 1);
    let by_id: BTreeMap<&str, &Outcome> = outcomes.iter().map(|(id, o)| (id.as_str(), o)).collect();
    assert!(matches!(by_id["dataset"], Outcome::Executed(_)), "stages before the panic finished");
    assert!(matches!(by_id["replicate"], Outcome::Skipped), "stages after it did not run");

    // The lock is released and the cache is valid: `plan` proceeds and reuses what finished.
    let plan = output_within(neurospec_cmd(dir.path(), &["plan", "study.toml"]), Duration::from_secs(60));
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(plan.status.success(), "{}", String::from_utf8_lossy(&plan.stderr));
    assert!(text.lines().any(|l| l.starts_with("dataset ") && l.ends_with("cached")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("split ") && l.contains("stale")), "{text}");
    // And a normal run completes from there, running only what did not finish.
    let run = output_within(neurospec_cmd(dir.path(), &["run", "study.toml", "--json"]), Duration::from_secs(120));
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert!(!executed(&summary).contains(&"dataset".to_string()), "{summary}");
    assert!(executed(&summary).contains(&"split".to_string()), "{summary}");
    assert_complete(&dir.path().join(OUT));
}

/// The reproduction: a study whose simulation panics (or, once `check` bounds it, is
/// refused) ends promptly with exit 1, and the cache is free for the next command.
#[test]
fn a_study_that_makes_a_stage_panic_ends_promptly_and_frees_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    embedded_study(dir.path(), &[("subjects = 25000", "subjects = 9223372036854775807")]);
    let run = output_within(neurospec_cmd(dir.path(), &["run", "study.toml"]), Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("simulate") || stderr.contains("subjects"),
        "the error names the stage or setting: {stderr}"
    );
    let plan = output_within(neurospec_cmd(dir.path(), &["plan", "study.toml"]), Duration::from_secs(60));
    assert!(!String::from_utf8_lossy(&plan.stderr).contains("waiting"), "the cache lock was left held");
}

// ---------------------------------------------------------------------------------------------
// Publishing.

fn spawn_run(dir: &Path, file: &str, env: &[(&str, &str)]) -> std::process::Child {
    let mut command = neurospec_cmd(dir, &["run", file, "--json"]);
    for (k, v) in env {
        command.env(k, v);
    }
    command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
}

#[test]
fn sigkill_at_any_point_of_publishing_leaves_one_complete_run() {
    let dir = tempfile::tempdir().unwrap();
    study(dir.path(), "a.toml", "0.05");
    study(dir.path(), "b.toml", "0.2");
    let folder = dir.path().join(OUT);
    // Both variants computed once and published cleanly: the reference locks.
    run_json(dir.path(), "b.toml", &[]);
    let lock_b = assert_complete(&folder);
    run_json(dir.path(), "a.toml", &[]);
    let lock_a = assert_complete(&folder);
    assert_ne!(lock_a, lock_b, "the two variants publish different results");

    // Kill at delays spread over the whole publish after the staging folder appears (each staged
    // file takes at least 10 ms and the swap comes after one more pause); the last delays fall
    // after the swap (and into the deletion of the previous folder) or after the run.
    // How long one publish takes here and now (from its staging folder appearing to the end of
    // the run), measured on an unkilled run from a to b and back, so that the kill points cover it
    // under any load.
    let timed_publish = |file: &str| -> u64 {
        let mut child = spawn_run(dir.path(), file, &[("NEUROSPEC_TEST_PUBLISH_DELAY_MS", "10")]);
        while leftovers(dir.path()).is_empty() && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let started = Instant::now();
        assert!(child.wait().unwrap().success());
        started.elapsed().as_millis() as u64
    };
    let publish_ms = timed_publish("b.toml").max(timed_publish("a.toml"));
    assert_eq!(assert_complete(&folder), lock_a);
    let mut kills = 0;
    let mut states = BTreeMap::new();
    // At least 18 rounds, and on until some kill landed after a swap (a loaded machine publishes
    // more slowly than measured), at most 40.
    for round in 0..40usize {
        let delay_ms = round as u64 * publish_ms / 12;
        if round >= 18 && states.contains_key("b") {
            break;
        }
        // Publish the variant the folder does not hold, so that every run replaces it.
        let current = std::fs::read(folder.join("neurospec.lock")).ok();
        let file = if current.as_ref() == Some(&lock_a) { "b.toml" } else { "a.toml" };
        let exchange = if round % 3 == 2 { "1" } else { "" };
        let mut env = vec![("NEUROSPEC_TEST_PUBLISH_DELAY_MS", "10")];
        if !exchange.is_empty() {
            env.push(("NEUROSPEC_TEST_PUBLISH_NO_EXCHANGE", exchange));
        }
        let mut child = spawn_run(dir.path(), file, &env);
        let started = Instant::now();
        while leftovers(dir.path()).is_empty() && child.try_wait().unwrap().is_none() {
            assert!(started.elapsed() < Duration::from_secs(60), "no publish started");
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        // In the fallback a kill between its two renames leaves the old folder set aside; the
        // next publish puts it back. Otherwise the folder is always exactly one of the two runs.
        if !folder.exists() {
            assert!(!exchange.is_empty(), "round {round}: the folder vanished");
            *states.entry("set aside").or_insert(0) += 1;
            continue;
        }
        let lock = assert_complete(&folder);
        let state = if lock == lock_a {
            "a"
        } else if lock == lock_b {
            "b"
        } else {
            panic!("round {round}: the folder is neither run")
        };
        *states.entry(state).or_insert(0) += 1;
    }
    eprintln!("{kills} kills while publishing; folder states seen: {states:?}");
    assert!(kills >= 6, "only {kills} runs were killed while publishing");
    assert!(
        states.contains_key("a") && states.contains_key("b"),
        "kills hit both before and after the swap: {states:?}"
    );

    // The next run cleans up and publishes; nothing is left beside the folder.
    run_json(dir.path(), "b.toml", &[]);
    assert_eq!(assert_complete(&folder), lock_b);
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
}

#[test]
fn a_full_disk_or_a_corrupt_object_while_publishing_keeps_the_previous_run() {
    let dir = tempfile::tempdir().unwrap();
    study(dir.path(), "a.toml", "0.05");
    study(dir.path(), "b.toml", "0.2");
    let folder = dir.path().join(OUT);
    run_json(dir.path(), "a.toml", &[]);
    let before = snapshot(&folder);

    // Disk full after three files.
    let mut command = neurospec_cmd(dir.path(), &["run", "b.toml"]);
    command.env("NEUROSPEC_TEST_PUBLISH_FAIL_AFTER", "3");
    let out = output_within(command, Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert_eq!(snapshot(&folder), before, "the previous run is untouched");
    assert_eq!(leftovers(dir.path()), Vec::<String>::new(), "the staging folder is removed");

    // A corrupt object that only the new run publishes.
    let lock_a: serde_json::Value = serde_json::from_slice(&before["neurospec.lock"]).unwrap();
    let b = run_json(dir.path(), "b.toml", &[]);
    assert!(b["executed"].as_u64().unwrap() == 0, "b was computed by the failed run: {b}");
    let lock_b: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("neurospec.lock")).unwrap()).unwrap();
    run_json(dir.path(), "a.toml", &[]);
    assert_eq!(snapshot(&folder), before);
    let hashes = |lock: &serde_json::Value, id: &str| -> Vec<String> {
        let stage = lock["stages"].as_array().unwrap().iter().find(|s| s["id"] == id).unwrap();
        stage["outputs"].as_object().unwrap().values().map(|o| o["hash"].as_str().unwrap().to_string()).collect()
    };
    let only_b =
        hashes(&lock_b, "fdr/discovery").into_iter().find(|h| !hashes(&lock_a, "fdr/discovery").contains(h)).unwrap();
    let object = dir.path().join(".neurospec/objects").join(&only_b[..2]).join(&only_b[2..]);
    let mut bytes = std::fs::read(&object).unwrap();
    bytes[0] ^= 1; // same size: only the hash check can find it
    std::fs::write(&object, bytes).unwrap();
    let out = output_within(neurospec_cmd(dir.path(), &["run", "b.toml"]), Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("corrupt") && stderr.contains("rerun"), "{stderr}");
    assert_eq!(snapshot(&folder), before, "the previous run is untouched");
    assert_eq!(leftovers(dir.path()), Vec::<String>::new(), "the staging folder is removed");
    // The rerun recomputes the damaged result and publishes the new run.
    run_json(dir.path(), "b.toml", &[]);
    let published: serde_json::Value = serde_json::from_slice(&assert_complete(&folder)).unwrap();
    assert_eq!(published, lock_b);
}

#[test]
fn two_runs_publishing_to_one_folder_from_two_caches_take_turns() {
    let dir = tempfile::tempdir().unwrap();
    study(dir.path(), "a.toml", "0.05");
    study(dir.path(), "b.toml", "0.2");
    let folder = dir.path().join(OUT);
    run_json(dir.path(), "a.toml", &["--cache-dir", "cache-a"]);
    run_json(dir.path(), "b.toml", &["--cache-dir", "cache-b"]);
    // The folder holds a third variant, so that both runs must replace it.
    study(dir.path(), "c.toml", "0.1");
    run_json(dir.path(), "c.toml", &["--cache-dir", "cache-c"]);
    assert_complete(&folder);
    let spawn = |file: &str, cache: &str| {
        let mut command = neurospec_cmd(dir.path(), &["run", file, "--cache-dir", cache]);
        command.env("NEUROSPEC_TEST_PUBLISH_DELAY_MS", "20");
        output_within(command, Duration::from_secs(120))
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| spawn("a.toml", "cache-a"));
        let b = s.spawn(|| spawn("b.toml", "cache-b"));
        (a.join().unwrap(), b.join().unwrap())
    });
    let (ea, eb) = (String::from_utf8_lossy(&a.stderr), String::from_utf8_lossy(&b.stderr));
    assert!(a.status.success() && b.status.success(), "{ea}\n{eb}");
    assert!(
        ea.contains("waiting for another neurospec run that is publishing")
            || eb.contains("waiting for another neurospec run that is publishing"),
        "the two publishes did not meet: {ea}\n{eb}"
    );
    assert_complete(&folder);
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
}

#[test]
fn a_folder_not_made_by_neurospec_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    study(dir.path(), "study.toml", "0.05");
    let folder = dir.path().join(OUT);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("notes.txt"), b"my own notes").unwrap();
    let out = output_within(neurospec_cmd(dir.path(), &["run", "study.toml"]), Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(OUT) && stderr.contains("not made by neurospec"), "{stderr}");
    assert!(stderr.contains("[outputs] dir"), "the message says what to do: {stderr}");
    assert_eq!(snapshot(&folder).into_keys().collect::<Vec<_>>(), vec!["notes.txt"], "the folder is untouched");
    assert_eq!(std::fs::read(folder.join("notes.txt")).unwrap(), b"my own notes");
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());

    // A symlink named as the output folder is not followed or replaced either.
    std::fs::remove_dir_all(&folder).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("keep.txt"), b"x").unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), &folder).unwrap();
    let out = output_within(neurospec_cmd(dir.path(), &["run", "study.toml"]), Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert!(std::fs::symlink_metadata(&folder).unwrap().file_type().is_symlink());
    assert_eq!(snapshot(elsewhere.path()).into_keys().collect::<Vec<_>>(), vec!["keep.txt"]);

    // An empty folder (made in advance) is fine, and so is a folder neurospec made.
    std::fs::remove_file(&folder).unwrap();
    std::fs::create_dir_all(&folder).unwrap();
    run_json(dir.path(), "study.toml", &[]);
    assert_complete(&folder);
}

// ---------------------------------------------------------------------------------------------
// Records.

fn lock_of(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join(OUT).join("neurospec.lock")).unwrap()).unwrap()
}

fn record_path(dir: &Path, lock: &serde_json::Value, id: &str) -> PathBuf {
    let stage = lock["stages"].as_array().unwrap().iter().find(|s| s["id"] == id).unwrap();
    dir.join(".neurospec/records").join(stage["fingerprint"].as_str().unwrap())
}

fn edit_record(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut record: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    edit(&mut record);
    std::fs::write(path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
}

#[test]
fn records_that_do_not_match_their_fingerprint_are_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    study(dir.path(), "study.toml", "0.05");
    run_json(dir.path(), "study.toml", &[]);
    let clean = outputs(&dir.path().join(OUT));
    let lock = lock_of(dir.path());

    // 1. The held-out result pointing at the discovery result (size and all).
    let discovery_path = record_path(dir.path(), &lock, "associate/anxiety/discovery");
    let discovery: serde_json::Value = serde_json::from_slice(&std::fs::read(discovery_path).unwrap()).unwrap();
    edit_record(&record_path(dir.path(), &lock, "associate/anxiety/held-out"), |r| {
        r["outputs"] = discovery["outputs"].clone();
    });
    // 2. Parameters and 3. seed edited in place.
    edit_record(&record_path(dir.path(), &lock, "fdr/discovery"), |r| r["params"]["q"] = serde_json::json!(0.5));
    edit_record(&record_path(dir.path(), &lock, "associate/insomnia/held-out"), |r| {
        r["seed"] = serde_json::json!(r["seed"].as_u64().unwrap() + 1)
    });
    // 4. A record copied over another stage's fingerprint and sealed again (as a buggy tool
    //    could): intact, but it describes another stage instance.
    let held_out_disc = record_path(dir.path(), &lock, "associate/depression/held-out");
    let mut copied: neurospec::store::Record = serde_json::from_slice(
        &std::fs::read(record_path(dir.path(), &lock, "associate/depression/discovery")).unwrap(),
    )
    .unwrap();
    copied.fingerprint = held_out_disc.file_name().unwrap().to_string_lossy().to_string();
    std::fs::write(&held_out_disc, serde_json::to_vec_pretty(&copied.sealed()).unwrap()).unwrap();

    let plan = String::from_utf8_lossy(&neurospec(dir.path(), &["plan", "study.toml"]).stdout).to_string();
    for id in ["associate/anxiety/held-out", "fdr/discovery", "associate/insomnia/held-out"] {
        assert!(
            plan.lines().any(|l| l.starts_with(&format!("{id} ")) && l.contains("does not match its fingerprint")),
            "{id}:\n{plan}"
        );
    }
    assert!(
        plan.lines().any(|l| l.starts_with("associate/depression/held-out ") && l.contains("another stage instance")),
        "{plan}"
    );
    let again = run_json(dir.path(), "study.toml", &[]);
    let ran = executed(&again);
    for id in
        ["associate/anxiety/held-out", "fdr/discovery", "associate/insomnia/held-out", "associate/depression/held-out"]
    {
        assert!(ran.contains(&id.to_string()), "{id} was trusted: {ran:?}");
    }
    assert_eq!(outputs(&dir.path().join(OUT)), clean, "published bytes are those of a clean run");
    // The provenance published is the recomputed, true one.
    let provenance: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            dir.path().join(OUT).join("provenance").join(neurospec::outputs::provenance_name("fdr/discovery")),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(provenance["params"]["q"], serde_json::json!(0.05));
    assert_complete(&dir.path().join(OUT));
    // Nothing is left to recompute.
    assert_eq!(executed(&run_json(dir.path(), "study.toml", &[])), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// Permissions.

/// (path, permission bits) of every file or folder.
type Modes = Vec<(PathBuf, u32)>;

/// The modes of the files and of the folders under `root`.
fn modes(root: &Path) -> (Modes, Modes) {
    use std::os::unix::fs::PermissionsExt;
    fn walk(dir: &Path, files: &mut Modes, dirs: &mut Modes) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o777;
            if meta.is_dir() {
                dirs.push((path.clone(), mode));
                walk(&path, files, dirs);
            } else {
                files.push((path, mode));
            }
        }
    }
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    walk(root, &mut files, &mut dirs);
    (files, dirs)
}

/// The same command again (a `Command` is spent once its output is taken).
fn command_again(command: &Command) -> Command {
    let mut again = Command::new(command.get_program());
    again.args(command.get_args());
    if let Some(dir) = command.get_current_dir() {
        again.current_dir(dir);
    }
    again
}

#[test]
fn files_get_the_permissions_of_the_umask() {
    for (umask, file_mode, dir_mode) in [("022", 0o644, 0o755), ("027", 0o640, 0o750)] {
        let dir = tempfile::tempdir().unwrap();
        study(dir.path(), "study.toml", "0.05");
        let mut command = Command::new("sh");
        command
            .args(["-c", &format!("umask {umask} && exec \"$0\" run study.toml --json"), bin()])
            .current_dir(dir.path());
        let out = output_within(command_again(&command), Duration::from_secs(120));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        for root in [dir.path().join(OUT), dir.path().join(".neurospec/objects"), dir.path().join(".neurospec/records")]
        {
            let (files, dirs) = modes(&root);
            assert!(files.len() > 5, "{}", root.display());
            for (path, mode) in files {
                assert_eq!(mode, file_mode, "umask {umask}: {} is {mode:o}", path.display());
            }
            for (path, mode) in dirs {
                assert_eq!(mode, dir_mode, "umask {umask}: {} is {mode:o}", path.display());
            }
        }
        let (_, folder) = modes(&dir.path().join("derivatives"));
        let top = folder.iter().find(|(p, _)| p.ends_with("ukb-symptoms")).unwrap();
        assert_eq!(top.1, dir_mode, "umask {umask}: the output folder itself");
        // A folder published owner-only (by an older neurospec) gets the umask's modes on the
        // next run, although its content is unchanged.
        use std::os::unix::fs::PermissionsExt;
        let split = dir.path().join(OUT).join("split.tsv");
        std::fs::set_permissions(&split, std::fs::Permissions::from_mode(0o600)).unwrap();
        let out = output_within(command_again(&command), Duration::from_secs(120));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mode = std::fs::metadata(&split).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, file_mode, "umask {umask}: republished split.tsv is {mode:o}");
    }
}

// ---------------------------------------------------------------------------------------------
// Simulated cohorts.

/// A simulation killed part way leaves a `.simulating-*` folder; the next command deletes it,
/// and leaves alone a folder of the same name pattern that neurospec cannot prove it made.
#[test]
fn a_killed_simulation_is_cleaned_up_by_the_next_command() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("studies/ketamine-amygdala.toml")).unwrap();
    assert!(text.contains("subjects = 49"));
    std::fs::write(dir.path().join("big.toml"), text.replace("subjects = 49", "subjects = 40")).unwrap();
    std::fs::write(dir.path().join("small.toml"), text.replace("subjects = 49", "subjects = 10")).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join(".simulating-users")).unwrap();
    std::fs::write(data.join(".simulating-users/notes.txt"), b"mine").unwrap();
    let simulating = || -> Vec<String> {
        std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with(".simulating-") && n != ".simulating-users")
            .collect()
    };

    let mut child =
        neurospec_cmd(dir.path(), &["run", "big.toml"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    while simulating().is_empty() {
        assert!(child.try_wait().unwrap().is_none(), "the simulation finished before it could be killed");
        assert!(started.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(100));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(simulating().len(), 1, "the killed simulation left its folder");
    assert!(!data.join("ketamine-response").exists());

    // `run` simulates into the study's folder (`check` would use the cache); whatever the small
    // study's analyses then make of 10 subjects, the sweep has happened by then.
    output_within(neurospec_cmd(dir.path(), &["run", "small.toml"]), Duration::from_secs(120));
    assert_eq!(simulating(), Vec::<String>::new(), "the killed simulation's folder is gone");
    assert_eq!(std::fs::read(data.join(".simulating-users/notes.txt")).unwrap(), b"mine");
    assert!(data.join("ketamine-response/.neurospec-simulation.json").is_file());
    assert!(!data.join("ketamine-response/.neurospec-scratch").exists(), "the marker is not left in the cohort");
}
