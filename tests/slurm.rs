//! The Slurm executor on a real single-node Slurm cluster (`tests/slurm/start-local-slurm.sh`,
//! started here when `sinfo` is missing and we are root): a study run with
//! `--executor slurm --wait` publishes the same bytes as a local run; a no-op rerun submits
//! nothing; a task cancelled with `scancel` is reported by `status` (stage, error, log) and a
//! rerun submits only what is stale and completes with the same bytes; two studies sharing one
//! cache, submitted at once, both finish with the same bytes.
//!
//! The study is the shipped ketamine study with 12 simulated subjects (24 imaging runs, 35
//! stages; ~13 s locally). Without Slurm (and without root to start it) the tests print why they
//! skip and pass, unless NEUROSPEC_REQUIRE_TOOLS=1 (as in CI), where they fail.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// One Slurm test at a time: they share the cluster's two cores.
static CLUSTER: Mutex<()> = Mutex::new(());

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

fn sinfo_answers() -> bool {
    on_path("sinfo") && Command::new("sinfo").arg("-h").output().is_ok_and(|o| o.status.success())
}

/// Whether a Slurm cluster answers, starting the local one if we can.
fn slurm() -> bool {
    static UP: OnceLock<Result<(), String>> = OnceLock::new();
    let up = UP.get_or_init(|| {
        if sinfo_answers() {
            return Ok(());
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("no Slurm cluster answers `sinfo`, and starting one needs root".into());
        }
        let script = repo().join("tests/slurm/start-local-slurm.sh");
        let out = Command::new("bash").arg(&script).output().map_err(|e| format!("{}: {e}", script.display()))?;
        if out.status.success() && sinfo_answers() {
            Ok(())
        } else {
            Err(format!("{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr)))
        }
    });
    match up {
        Ok(()) => true,
        Err(why) => {
            assert!(
                std::env::var("NEUROSPEC_REQUIRE_TOOLS").as_deref() != Ok("1"),
                "{why} and NEUROSPEC_REQUIRE_TOOLS=1"
            );
            eprintln!("SKIP: {why}; the Slurm tests did not run");
            false
        }
    }
}

/// The reduced ketamine study written into a fresh folder.
fn study_in(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let text = std::fs::read_to_string(repo().join("studies/ketamine-amygdala.toml")).unwrap();
    assert!(text.contains("subjects = 49\n"));
    let path = dir.join("ketamine.toml");
    std::fs::write(&path, text.replace("subjects = 49\n", "subjects = 12\n")).unwrap();
    path
}

const OUTPUTS: &str = "derivatives/ketamine-amygdala";

/// A local run of the study, published once for all tests.
fn local_reference() -> &'static Path {
    static LOCAL: OnceLock<tempfile::TempDir> = OnceLock::new();
    LOCAL
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            study_in(dir.path());
            run_json(dir.path(), "ketamine.toml", &["-j", "2"]);
            dir
        })
        .path()
}

fn slurm_run(cwd: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["run", "ketamine.toml", "--executor", "slurm", "--json"];
    args.extend_from_slice(extra);
    Command::new(bin()).args(&args).current_dir(cwd).env("NEUROSPEC_SLURM_POLL_MS", "500").output().unwrap()
}

fn json_of(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Every file of a folder (relative path → bytes), without the report's views.
fn files(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
                if !neurospec::report::is_view(&rel) {
                    out.insert(rel, std::fs::read(&path).unwrap());
                }
            }
        }
    }
    let mut out = Default::default();
    walk(root, root, &mut out);
    out
}

/// The published folder equals the local run's: every output and the lock byte for byte, the
/// provenance records up to timings and host (`verify`'s comparison).
fn assert_same_as_local(published: &Path) {
    let local = local_reference().join(OUTPUTS);
    let (ours, theirs) = (files(published), files(&local));
    assert_eq!(ours.keys().collect::<Vec<_>>(), theirs.keys().collect::<Vec<_>>(), "the same files");
    for (rel, bytes) in &theirs {
        if !rel.starts_with("provenance/") {
            assert!(&ours[rel] == bytes, "{rel} differs from the local run's");
        }
    }
    let lock: serde_json::Value = serde_json::from_slice(&theirs["neurospec.lock"]).unwrap();
    let diffs = neurospec::report::verify::compare(&local, published, lock["study_hash"].as_str().unwrap()).unwrap();
    assert!(diffs.is_empty(), "{diffs:?}");
}

#[test]
fn a_slurm_run_publishes_the_bytes_of_a_local_run_and_a_noop_rerun_submits_nothing() {
    let _turn = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if !slurm() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    study_in(dir.path());
    let summary = json_of(&slurm_run(dir.path(), &["--wait"]));
    assert_eq!(summary["executed"], 35, "{summary}");
    assert_same_as_local(&dir.path().join(OUTPUTS));

    let slurm_dir = dir.path().join(".neurospec/slurm");
    let submissions = || std::fs::read_dir(&slurm_dir).unwrap().count();
    let before = submissions();
    let again = json_of(&slurm_run(dir.path(), &[]));
    assert_eq!((again["executed"].as_u64(), again["cached"].as_u64()), (Some(0), Some(35)), "{again}");
    assert!(again.get("jobs").is_none(), "nothing submitted: {again}");
    assert_eq!(submissions(), before);
    let status = neurospec(dir.path(), &["status", "ketamine.toml"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("35 stages: 35 done, 0 running, 0 failed, 0 waiting") && text.contains("published:"),
        "{text}"
    );
}

/// Cancels a submission's jobs when the test ends (a failed assertion would leave them queued,
/// waiting forever for the cancelled task).
struct CancelOnDrop(Vec<String>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("scancel").args(&self.0).output();
    }
}

fn squeue_states(job: &str) -> String {
    let out = Command::new("squeue").args(["-h", "-r", "-o", "%i %T", "-j", job]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_cancelled_task_is_reported_and_a_rerun_completes_the_study() {
    let _turn = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if !slurm() {
        return;
    }
    local_reference();
    let dir = tempfile::tempdir().unwrap();
    study_in(dir.path());
    // Four imaging tasks of six runs each: two run while two wait on this two-core cluster.
    let submitted = json_of(&slurm_run(dir.path(), &["--max-array", "4"]));
    let imaging_job = submitted["jobs"][0].as_str().unwrap().to_string();
    let _cleanup =
        CancelOnDrop(submitted["jobs"].as_array().unwrap().iter().map(|j| j.as_str().unwrap().to_string()).collect());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !squeue_states(&imaging_job).contains("RUNNING") {
        assert!(Instant::now() < deadline, "the imaging array never started");
        std::thread::sleep(Duration::from_millis(200));
    }
    let cancelled = Command::new("scancel").arg(format!("{imaging_job}_3")).status().unwrap();
    assert!(cancelled.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let out = neurospec(dir.path(), &["status", "ketamine.toml"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // The other three tasks (and the participants table) finish; what needs the cancelled task
        // waits (afterok).
        if text.contains(" 0 running, 1 failed") && text.contains("19 done") {
            break text;
        }
        assert!(Instant::now() < deadline, "status never reported the cancelled task:\n{text}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(text.contains("failed: imaging/sub-K"), "the failed stage is named:\n{text}");
    assert!(text.contains("cancelled") && text.contains("log: "), "error and log:\n{text}");
    assert!(text.contains(&format!("{imaging_job}_3.out")), "the task's Slurm log:\n{text}");

    // Done: 18 runs and the participants table. Stale: the cancelled task's 6 runs and the 9
    // stages that need the runs.
    let rerun = json_of(&slurm_run(dir.path(), &["--wait"]));
    assert_eq!((rerun["executed"].as_u64(), rerun["cached"].as_u64()), (Some(16), Some(19)), "{rerun}");
    assert_same_as_local(&dir.path().join(OUTPUTS));
}

#[test]
fn two_studies_sharing_one_cache_submitted_at_once_both_finish() {
    let _turn = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if !slurm() {
        return;
    }
    local_reference();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("shared-cache");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    study_in(&a);
    study_in(&b);
    let cache_arg = cache.display().to_string();
    let spawn = |cwd: &Path| {
        Command::new(bin())
            .args(["run", "ketamine.toml", "--executor", "slurm", "--wait", "--json", "--cache-dir", &cache_arg])
            .current_dir(cwd)
            .env("NEUROSPEC_SLURM_POLL_MS", "500")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(&a), spawn(&b));
    for (child, folder) in [(first, &a), (second, &b)] {
        let out = child.wait_with_output().unwrap();
        json_of(&out);
        assert_same_as_local(&folder.join(OUTPUTS));
    }
}
