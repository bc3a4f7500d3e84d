//! `run --executor slurm`, `status`, and the hidden `exec` that array tasks and the publish job
//! run (see `exec::slurm` for how a plan is submitted and run).

use super::out;
use super::study::{cache_dir, load_settled, publish, resolve_loaded, summarise};
use crate::error::{Error, Result};
use crate::exec::slurm::cluster::{Cluster, Slurm};
use crate::exec::slurm::{self, Failure, Folder, SubmitOptions, Submitted, status};
use crate::exec::{Outcome, RunReport};
use crate::store::Store;
use crate::{plan, spec};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The Slurm choices of `run`.
pub struct SlurmChoices {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub max_array: Option<usize>,
    pub sbatch_args: Vec<String>,
    pub wait: bool,
}

/// Seconds between two looks at a submitted plan under `--wait` (each look reads the cache's
/// markers and makes one `squeue` call). `NEUROSPEC_SLURM_POLL_MS` overrides it (tests).
const POLL: Duration = Duration::from_secs(5);

fn poll_interval() -> Duration {
    std::env::var("NEUROSPEC_SLURM_POLL_MS").ok().and_then(|v| v.parse().ok()).map_or(POLL, Duration::from_millis)
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::io(path, e))
}

/// Check, compile, write and submit; with `--wait`, follow the run to its end.
pub fn run(path: &Path, options: &super::study::RunOptions, choices: &SlurmChoices) -> Result<()> {
    let started = Instant::now();
    if choices.max_array == Some(0) {
        return Err(Error::Usage("--max-array must be at least 1".into()));
    }
    let loaded = load_settled(path)?;
    let cache = absolute(&cache_dir(&loaded, options.cache.clone()))?;
    let store = Store::open(&cache)?;
    crate::sim::materialise(&loaded)?;
    let (loaded, mut resolved) = resolve_loaded(loaded, None)?;
    resolved.study.output_dir = absolute(options.out.as_deref().unwrap_or(&resolved.study.output_dir))?;
    let plan = plan::compile(&resolved);
    let submit = SubmitOptions {
        partition: choices.partition.clone(),
        account: choices.account.clone(),
        max_array: choices.max_array,
        sbatch_args: choices.sbatch_args.clone(),
        resources: resolved.resources.clone(),
        study_file: absolute(path)?,
        workdir: std::env::current_dir().map_err(|e| Error::io(".", e))?,
        program: std::env::current_exe().map_err(|e| Error::io("neurospec", e))?,
    };
    match slurm::submit(&plan, &store, &submit, &Slurm)? {
        Submitted::Nothing { records } => {
            // Everything is cached: publish here, as a local run would (a no-op when the folder
            // already holds this run).
            let report = cached_report(&plan, records)?;
            let dir = publish(&loaded, &plan, &store, &report, started.elapsed().as_secs_f64())?;
            if !options.json {
                eprintln!("every stage is cached: nothing submitted");
            }
            summarise(&plan, &report, Some(&dir), started.elapsed().as_secs_f64(), options.json)
        }
        Submitted::Jobs { folder, submission, stale } => {
            drop(store); // the cache lock: the tasks do not need it, other runs may take it
            let tasks: usize = submission.arrays.iter().map(|a| a.tasks.len()).sum();
            let jobs = submission.job_ids();
            if options.json && !choices.wait {
                let summary = serde_json::json!({
                    "stages": plan.order.len(),
                    "stale": stale,
                    "arrays": submission.arrays.len(),
                    "tasks": tasks,
                    "sbatch_calls": submission.sbatch_calls,
                    "jobs": jobs,
                    "submission": folder.dir.display().to_string(),
                    "wall_seconds": started.elapsed().as_secs_f64(),
                });
                out(&format!("{summary}\n"))?;
            } else if !options.json {
                eprintln!(
                    "submitted {stale} of {} stages as {} array jobs ({tasks} tasks) and a publish job: {}\n\
                     follow with `neurospec status {}`",
                    plan.order.len(),
                    submission.arrays.len(),
                    jobs.join(" "),
                    path.display()
                );
            }
            if choices.wait { wait(&folder, &plan, options.json, started) } else { Ok(()) }
        }
    }
}

/// The report of a plan whose stages are all cached.
fn cached_report(
    plan: &plan::Plan,
    mut records: std::collections::BTreeMap<petgraph::graph::NodeIndex, crate::store::Record>,
) -> Result<RunReport> {
    let mut outcomes = Vec::new();
    for &i in &plan.order {
        let record = records
            .remove(&i)
            .ok_or_else(|| Error::data(format!("stage {} is no longer cached; run again", plan.node(i).id)))?;
        outcomes.push((i, Outcome::Cached(record)));
    }
    Ok(RunReport { outcomes })
}

/// The outcome of every stage of a finished submission, from its markers.
fn finished_report(folder: &Folder, plan: &plan::Plan, store: &Store) -> Result<RunReport> {
    let submission = folder.submission()?;
    let mut outcomes = Vec::new();
    for &i in &plan.order {
        let found = match submission.cached.get(&i.index()) {
            Some(fp) => Some((fp.clone(), false)),
            None => folder.done(i.index()),
        };
        let (fp, executed) = found.ok_or_else(|| {
            Error::data(format!("stage {} has not finished; the publish job ran too early", plan.node(i).id))
        })?;
        let record = store.record(&fp).ok_or_else(|| {
            Error::data(format!("the record of stage {} is missing or damaged; submit again", plan.node(i).id))
        })?;
        outcomes.push((i, if executed { Outcome::Executed(record) } else { Outcome::Cached(record) }));
    }
    Ok(RunReport { outcomes })
}

/// Follow a submitted plan until it is published or fails, printing its progress.
fn wait(folder: &Folder, plan: &plan::Plan, json: bool, started: Instant) -> Result<()> {
    let submission = folder.submission()?;
    let ids = stage_ids(plan);
    let mut last = String::new();
    loop {
        let status = status::status(folder, &submission, &ids, &Slurm)?;
        let line = counts(&status);
        if line != last && !json {
            eprintln!("{line}");
            last = line;
        }
        if status.published.is_some() {
            let store = Store::open_shared(&folder.cache_root()?)?;
            let report = finished_report(folder, plan, &store)?;
            return summarise(plan, &report, status.published.as_deref(), started.elapsed().as_secs_f64(), json);
        }
        if !status.failures.is_empty() || !status.active {
            // Like a local run, the first failure ends the run: what is still queued can never
            // succeed (afterok) or is not needed.
            Slurm.cancel(&submission.job_ids())?;
            let mut failures: Vec<(String, String)> = status
                .failures
                .iter()
                .map(|f| (f.stage.clone(), format!("{} (Slurm log: {})", f.error, f.log.display())))
                .collect();
            if failures.is_empty() {
                failures.push((
                    "publish".into(),
                    "no job of the submission is queued, and the outputs were not published".into(),
                ));
            }
            return Err(Error::Stages(failures));
        }
        std::thread::sleep(poll_interval());
    }
}

fn stage_ids(plan: &plan::Plan) -> Vec<String> {
    plan.graph.node_indices().map(|i| plan.node(i).id.clone()).collect()
}

fn counts(s: &status::Status) -> String {
    format!("{} stages: {} done, {} running, {} failed, {} waiting", s.stages, s.done, s.running, s.failed, s.waiting)
}

/// `neurospec status STUDY.toml`.
pub fn status_command(path: &Path, cache: Option<PathBuf>) -> Result<()> {
    let loaded = spec::load(path)?;
    let cache = absolute(&cache_dir(&loaded, cache))?;
    let Some(folder) = slurm::latest(&cache, &absolute(path)?) else {
        return out(&format!(
            "{}: no Slurm submission in {} (submit with `neurospec run {} --executor slurm`)\n",
            path.display(),
            cache.display(),
            path.display()
        ));
    };
    let plan = folder.plan()?;
    let submission = folder.submission()?;
    let status = status::status(&folder, &submission, &stage_ids(&plan), &Slurm)?;
    let mut text = format!("{}: {}\n", path.display(), counts(&status));
    for f in &status.failures {
        text.push_str(&format!("failed: {}: {}\n  log: {}\n", f.stage, f.error, f.log.display()));
    }
    text.push_str(&match (&status.published, status.failures.is_empty(), status.active) {
        (Some(dir), _, _) => format!("published: {}\n", dir.display()),
        (None, false, _) => {
            format!("the run failed; `neurospec run {} --executor slurm` submits what is still stale\n", path.display())
        }
        (None, true, true) => format!("jobs: {}\n", submission.job_ids().join(" ")),
        (None, true, false) => "no job is queued and nothing was published: submit again\n".into(),
    });
    text.push_str(&format!("submission: {}\n", folder.dir.display()));
    out(&text)
}

/// The hidden `neurospec exec`: one array task, or the publish job.
pub fn exec(
    submission: &Path,
    array: Option<usize>,
    task: Option<usize>,
    publish_job: bool,
    jobs: Option<usize>,
) -> Result<()> {
    let folder = Folder::new(submission);
    if publish_job {
        return publish_submission(&folder);
    }
    let array = array.ok_or_else(|| Error::Usage("exec needs --array or --publish".into()))?;
    let task = task
        .or_else(slurm::task::task_from_env)
        .ok_or_else(|| Error::Usage("exec needs --task (or SLURM_ARRAY_TASK_ID)".into()))?;
    let jobs = jobs.or_else(|| std::env::var("SLURM_CPUS_PER_TASK").ok().and_then(|v| v.parse().ok())).unwrap_or(1);
    slurm::task::run(&folder, array, task, jobs, &|node, ctx| crate::stages::run(node.kind, ctx))
}

/// The publish job: the same folder a local run publishes, then the `published` marker.
fn publish_submission(folder: &Folder) -> Result<()> {
    let result = (|| -> Result<PathBuf> {
        let plan = folder.plan()?;
        let submission = folder.submission()?;
        let store = Store::open_shared(&folder.cache_root()?)?;
        let report = finished_report(folder, &plan, &store)?;
        let loaded = spec::load(&submission.study_file)?;
        if loaded.hash != plan.study_hash {
            return Err(Error::data(format!(
                "{} changed after it was submitted; submit it again",
                submission.study_file.display()
            )));
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let wall = now.saturating_sub(submission.submitted_unix) as f64;
        publish(&loaded, &plan, &store, &report, wall)
    })();
    match result {
        Ok(dir) => folder.mark_published(&dir),
        Err(e) => {
            let job = std::env::var("SLURM_JOB_ID").unwrap_or_else(|_| "publish".into());
            let host = hostname::get().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
            let failure = Failure { stage: "publish".into(), error: e.to_string(), log: folder.log(&job, None), host };
            folder.mark_failed("publish", &failure)?;
            Err(e)
        }
    }
}
