//! One array task: run its slice of a submitted plan against the shared cache (`neurospec exec`).

use super::{Failure, Folder, Submission};
use crate::error::{Error, Result};
use crate::exec::{Runner, cached_record, execute_caught, input_hashes, progress};
use crate::plan::Plan;
use crate::plan::fingerprint::fingerprint;
use crate::store::{Record, Store};
use petgraph::graph::NodeIndex;
use std::collections::BTreeMap;

/// The task index Slurm gives an array task.
pub fn task_from_env() -> Option<usize> {
    std::env::var("SLURM_ARRAY_TASK_ID").ok()?.parse().ok()
}

/// Slurm's log of the running task (from its environment), or where it would be.
fn own_log(folder: &Folder, submission: &Submission, array: usize, task: usize) -> std::path::PathBuf {
    let job = std::env::var("SLURM_ARRAY_JOB_ID").unwrap_or_else(|_| submission.arrays[array].job_id.clone());
    folder.log(&job, Some(task))
}

fn host() -> String {
    hostname::get().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Run task `task` of array `array` with `jobs` worker threads; on a failure, write its marker.
pub fn run(folder: &Folder, array: usize, task: usize, jobs: usize, runner: Runner<'_>) -> Result<()> {
    let submission = folder.submission()?;
    let nodes = submission
        .arrays
        .get(array)
        .and_then(|a| a.tasks.get(task))
        .ok_or_else(|| Error::data(format!("{}: no task {task} in array {array}", folder.dir.display())))?
        .clone();
    let result = (|| -> Result<()> {
        let plan = folder.plan()?;
        let store = Store::open_shared(&folder.cache_root()?)?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(jobs.max(1))
            .build()
            .map_err(|e| Error::data(format!("cannot start {jobs} worker threads: {e}")))?;
        let mut records = Records { folder, submission: &submission, store: &store, known: BTreeMap::new() };
        for &n in &nodes {
            pool.install(|| run_stage(&plan, &mut records, NodeIndex::new(n), runner))
                .map_err(|e| (plan.node(NodeIndex::new(n)).id.clone(), e))
                .map_err(|(stage, e)| Error::Stages(vec![(stage, e.to_string())]))?;
        }
        store.save_file_hashes()
    })();
    if let Err(e) = &result {
        let (stage, error) = match e {
            Error::Stages(list) if !list.is_empty() => list[0].clone(),
            other => (format!("task {task} of array {array}"), other.to_string()),
        };
        let failure = Failure { stage, error, log: own_log(folder, &submission, array, task), host: host() };
        folder.mark_failed(&format!("{array}_{task}"), &failure)?;
    }
    result
}

/// The records of stages this task has read, found through the submission's fingerprints.
struct Records<'a> {
    folder: &'a Folder,
    submission: &'a Submission,
    store: &'a Store,
    known: BTreeMap<NodeIndex, Record>,
}

impl Records<'_> {
    /// The record of a finished upstream stage (cached at submission, or done by its task).
    fn of(&mut self, node: NodeIndex, plan: &Plan) -> Result<Record> {
        if let Some(r) = self.known.get(&node) {
            return Ok(r.clone());
        }
        let fingerprint = match self.submission.cached.get(&node.index()) {
            Some(fp) => fp.clone(),
            None => self.folder.done(node.index()).map(|(fp, _)| fp).ok_or_else(|| {
                Error::data(format!(
                    "input stage {} has not finished (its task must succeed before this one starts)",
                    plan.node(node).id
                ))
            })?,
        };
        let record = self.store.record(&fingerprint).ok_or_else(|| {
            Error::data(format!(
                "the cached record of input stage {} is missing or damaged; submit the study again",
                plan.node(node).id
            ))
        })?;
        self.known.insert(node, record.clone());
        Ok(record)
    }
}

/// Run (or find cached) one stage and mark it done.
fn run_stage(plan: &Plan, records: &mut Records<'_>, i: NodeIndex, runner: Runner<'_>) -> Result<()> {
    for d in plan.dependencies(i) {
        records.of(d, plan)?;
    }
    let known = &records.known;
    let hashes = input_hashes(plan, records.store, i, &|n| known.get(&n).cloned())?
        .expect("every input's record was read above");
    let node = plan.node(i);
    let pairs: Vec<(String, String)> = hashes.iter().map(|(n, h, _)| (n.clone(), h.clone())).collect();
    let fp = fingerprint(node, &pairs);
    if cached_record(plan, records.store, i, &pairs, &fp).is_some() {
        return records.folder.mark_done(i.index(), &fp, false);
    }
    let quiet = progress::Progress::new(progress::Mode::Quiet, 1);
    let bar = quiet.start(&node.id);
    let started = std::time::Instant::now();
    let record = execute_caught(records.store, node, &fp, &hashes, &bar, runner)?;
    eprintln!("{}: done in {:.1} s", node.id, started.elapsed().as_secs_f64());
    records.folder.mark_done(i.index(), &record.fingerprint, true)
}
