//! One array task: run its slice of a submitted plan against the shared cache (`neurospec exec`).

use super::slice::{self, SliceStage, TaskSlice};
use super::{Failure, Folder};
use crate::error::{Error, Result};
use crate::exec::{Runner, cached_record_of, execute_caught, node_input_hashes, progress};
use crate::plan::fingerprint::fingerprint;
use crate::store::{Record, Store};
use std::collections::BTreeMap;

/// The task index Slurm gives an array task.
pub fn task_from_env() -> Option<usize> {
    std::env::var("SLURM_ARRAY_TASK_ID").ok()?.parse().ok()
}

/// Slurm's log of the running task (from its environment, else from `submission.json`).
fn own_log(folder: &Folder, array: usize, task: usize) -> std::path::PathBuf {
    let job = std::env::var("SLURM_ARRAY_JOB_ID")
        .ok()
        .or_else(|| folder.submission().ok().and_then(|s| s.arrays.get(array).map(|a| a.job_id.clone())));
    folder.log(&job.unwrap_or_else(|| "unknown".into()), Some(task))
}

fn host() -> String {
    hostname::get().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Run task `task` of array `array` with `jobs` worker threads; on a failure, write its marker.
/// It reads its own slice of the plan (`slice::read`), nothing else of the submission.
pub fn run(folder: &Folder, array: usize, task: usize, jobs: usize, runner: Runner<'_>) -> Result<()> {
    let result = (|| -> Result<()> {
        let (slice, _) = slice::read(folder, array, task)?;
        let store = Store::open_shared(&folder.cache_root()?)?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(jobs.max(1))
            .build()
            .map_err(|e| Error::data(format!("cannot start {jobs} worker threads: {e}")))?;
        let mut records = Records { folder, slice: &slice, store: &store, known: BTreeMap::new() };
        for stage in &slice.stages {
            pool.install(|| run_stage(stage, &mut records, runner))
                .map_err(|e| Error::Stages(vec![(stage.node.id.clone(), e.to_string())]))?;
        }
        store.save_file_hashes()
    })();
    if let Err(e) = &result {
        let (stage, error) = match e {
            Error::Stages(list) if !list.is_empty() => list[0].clone(),
            other => (format!("task {task} of array {array}"), other.to_string()),
        };
        let failure = Failure { stage, error, log: own_log(folder, array, task), host: host() };
        folder.mark_failed(&format!("{array}_{task}"), &failure)?;
    }
    result
}

/// The records of stages this task has read, found through the slice's fingerprints.
struct Records<'a> {
    folder: &'a Folder,
    slice: &'a TaskSlice,
    store: &'a Store,
    known: BTreeMap<usize, Record>,
}

impl Records<'_> {
    /// The record of a finished upstream stage (cached at submission, or done by its task).
    fn read(&mut self, node: usize) -> Result<()> {
        if self.known.contains_key(&node) {
            return Ok(());
        }
        let upstream = self.slice.upstream.get(&node);
        let id = upstream.map_or_else(|| format!("#{node}"), |u| u.id.clone());
        let fingerprint = match upstream.and_then(|u| u.cached.clone()) {
            Some(fp) => fp,
            None => self.folder.done(node).map(|(fp, _)| fp).ok_or_else(|| {
                Error::data(format!("input stage {id} has not finished (its task must succeed before this one starts)"))
            })?,
        };
        let record = self.store.record(&fingerprint).ok_or_else(|| {
            Error::data(format!("the cached record of input stage {id} is missing or damaged; submit the study again"))
        })?;
        self.known.insert(node, record);
        Ok(())
    }
}

/// Run (or find cached) one stage and mark it done.
fn run_stage(stage: &SliceStage, records: &mut Records<'_>, runner: Runner<'_>) -> Result<()> {
    for d in slice::dependencies(&stage.node) {
        records.read(d)?;
    }
    let known = &records.known;
    let hashes = node_input_hashes(&stage.node, records.store, &|n| known.get(&n.index()))?
        .expect("every input's record was read above");
    let node = &stage.node;
    let pairs: Vec<(String, String)> = hashes.iter().map(|(n, h, _)| (n.clone(), h.clone())).collect();
    let fp = fingerprint(node, &pairs);
    if cached_record_of(node, &stage.required, records.store, &pairs, &fp).is_some() {
        return records.folder.mark_done(stage.index, &fp, false);
    }
    let quiet = progress::Progress::new(progress::Mode::Quiet, 1);
    let bar = quiet.start(&node.id);
    let started = std::time::Instant::now();
    let record = execute_caught(records.store, node, &fp, &hashes, &bar, runner)?;
    eprintln!("{}: done in {:.1} s", node.id, started.elapsed().as_secs_f64());
    records.folder.mark_done(stage.index, &record.fingerprint, true)
}
