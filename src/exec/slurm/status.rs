//! Where a submitted plan stands, from the cache's markers and one `squeue` call.
//!
//! A stage is **done** when it was cached at submission or its task wrote its `done` marker;
//! **failed** when its task wrote a failure marker for it, or when its task left the queue
//! without finishing it and without a marker (cancelled, out of time or memory: Slurm killed
//! it); **running** when it is the next unfinished stage of a running task; **waiting**
//! otherwise. A failed task's dependents can never start (afterok), so the run has failed as
//! soon as one stage has.

use super::cluster::{Cluster, QueueState};
use super::{Failure, Folder, Submission};
use crate::error::Result;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Counts and failures of a submitted plan.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub stages: usize,
    pub done: usize,
    pub running: usize,
    pub failed: usize,
    pub waiting: usize,
    /// Each failure: stage id, error, Slurm log.
    pub failures: Vec<Failure>,
    /// The output folder, once published.
    pub published: Option<PathBuf>,
    /// Whether any job of the submission is still queued or running.
    pub active: bool,
}

impl Status {
    /// Whether the run has ended: published, or nothing of it is queued any more.
    pub fn finished(&self) -> bool {
        self.published.is_some() || !self.active
    }
}

/// The status of a submitted plan with `stages` stages in all.
/// `stage_ids` are the plan's stage ids by node index.
pub fn status(folder: &Folder, submission: &Submission, stage_ids: &[String], cluster: &dyn Cluster) -> Result<Status> {
    let stages = stage_ids.len();
    // The queue first: a task that ends meanwhile has written its markers before it ended.
    let queue = if folder.published().is_some() { Default::default() } else { cluster.queue(&submission.job_ids())? };
    let published = folder.published();
    let done_nodes = folder.done_nodes();
    let mut failures: Vec<(String, Failure)> = folder.failures().into_iter().collect();
    let mut status = Status {
        stages,
        published: published.clone(),
        active: !queue.is_empty(),
        done: submission.cached.len(),
        ..Status::default()
    };
    let marked: BTreeSet<String> = failures.iter().map(|(name, _)| name.clone()).collect();
    for (a, array) in submission.arrays.iter().enumerate() {
        for (t, nodes) in array.tasks.iter().enumerate() {
            let remaining: Vec<usize> = nodes.iter().copied().filter(|n| !done_nodes.contains(n)).collect();
            status.done += nodes.len() - remaining.len();
            if remaining.is_empty() {
                continue;
            }
            let task_state = queue.get(&format!("{}_{t}", array.job_id)).or_else(|| {
                // A one-task array may be listed by its job id alone.
                (array.tasks.len() == 1).then(|| queue.get(&array.job_id)).flatten()
            });
            // Out of the queue (where a pending task is listed too), unfinished and without a
            // marker: Slurm ended it, or it was cancelled.
            let log = folder.log(&array.job_id, Some(t));
            let killed = published.is_none() && task_state.is_none() && !array.job_id.is_empty();
            if marked.contains(&format!("{a}_{t}")) {
                status.failed += 1;
                status.waiting += remaining.len() - 1;
            } else if task_state == Some(&QueueState::Running) {
                status.running += 1;
                status.waiting += remaining.len() - 1;
            } else if killed {
                status.failed += 1;
                status.waiting += remaining.len() - 1;
                failures.push((
                    format!("{a}_{t}"),
                    Failure {
                        stage: stage_ids[remaining[0]].clone(),
                        error: if log.exists() {
                            "the Slurm task ended without finishing (cancelled, or out of time or memory?)".into()
                        } else {
                            "the Slurm task was cancelled before it started".into()
                        },
                        log,
                        host: String::new(),
                    },
                ));
            } else {
                status.waiting += remaining.len();
            }
        }
    }
    status.failures = failures.into_iter().map(|(_, f)| f).collect();
    Ok(status)
}
