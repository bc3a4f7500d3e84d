//! Running a plan on a Slurm cluster: array jobs against a shared cache, no controller process.
//!
//! # Submission
//!
//! [`submit`] takes a compiled plan and the cache (opened with its lock, so that it sees the
//! state a local run would), finds the stale stages exactly as a local run does
//! ([`crate::exec::states`]) and, if there are any:
//!
//! 1. writes the plan into the cache: `slurm/<plan id>/plan.json` holds every node (kind,
//!    parameters, seed, input wiring, published paths), the plan id being the hash of that file;
//! 2. groups the stale stages by **DAG level** (longest chain of inputs above them) and **stage
//!    kind** — stages of one group never depend on one another — and makes one array job per
//!    group, packing the group's stages into at most `min(--max-array, MaxArraySize,
//!    `[`DEFAULT_MAX_ARRAY`]`)` tasks in plan order (40,000 runs become 1,000 tasks of 40, not
//!    40,000 tasks), each array depending (`--dependency=afterok`) on the arrays that make its
//!    inputs;
//! 3. submits a final job that publishes the output folder exactly as a local run does (same
//!    lock file, provenance, report), after all arrays succeeded;
//! 4. records the job ids and each task's stages in `submission.json`, and points
//!    `slurm/studies/<study key>` at the plan id, for `neurospec status`.
//!
//! Cached stages are never submitted, and a plan with nothing stale submits nothing (the caller
//! publishes locally, which is a no-op when the folder already holds this run).
//!
//! # Tasks
//!
//! Each array task runs `neurospec exec` ([`task::run`]) on its slice against the shared cache,
//! opened without the cache lock (`store::Store::open_shared`). It reads only its own slice of
//! the plan (`tasks/<array>.slices`, see [`slice`]), never the whole plan. For each of its stages
//! it looks up its inputs' fingerprints — from the slice for stages cached at submission, from the
//! marker `done/<node>` that the task which ran an upstream stage wrote — computes the stage's
//! own fingerprint, skips the stage if a verified record exists (another study or a killed
//! earlier attempt made it), otherwise runs it exactly as the local executor does, and writes
//! its `done/<node>` marker after the record. A stage that fails writes
//! `failed/<array>_<task>.json` (stage, error, Slurm log) and the task exits non-zero, so Slurm
//! never starts the arrays that need it (afterok). Nothing in a task needs the submitting
//! process.
//!
//! # Folder of a submitted plan (`<cache>/slurm/<plan id>/`)
//!
//! ```text
//! plan.json                      the nodes (written once; its hash is the plan id)
//! tasks/<array>.slices           each task's stages and what they read (`slice`): all a task reads
//! submission.json                arrays, their tasks' stages, job ids, fingerprints cached at submission
//! scripts/<array>.sh             the batch script of each array and of the publish job
//! logs/<job>_<task>.out          Slurm's output of each task
//! done/<node>                    "<fingerprint> executed|cached", written after the stage's record
//! failed/<array>_<task>.json     why a task failed; failed/publish.json for the publish job
//! published                      the output folder, written by the publish job when it is done
//! ```

pub mod cluster;
pub mod slice;
pub mod status;
pub mod task;

use crate::design::{PUBLISH_JOB, ResourceRequest, slurm_time};
use crate::error::{Error, Result};
use crate::plan::{Node, Plan};
use crate::store::{self, Store};
use cluster::Cluster;
use petgraph::graph::NodeIndex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Most tasks one array job gets unless `--max-array` says otherwise: enough to spread a large
/// cohort over a cluster, few enough that each task amortises its start (loading the plan) over
/// many small stages.
pub const DEFAULT_MAX_ARRAY: usize = 1000;

/// A resource request with every field decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    pub cpus: u32,
    pub memory_mb: u64,
    /// Per stage instance; a task packing k stages asks for k times this.
    pub time_seconds: u64,
}

/// Default resources of one stage instance of a kind (and of the publish job). Measured with
/// `benches/stage_resources.py` (each stage as its own one-core task; largest peak RSS / longest
/// wall over the three shipped studies, debug build, loaded 2-core machine): imaging-run 30 MB /
/// 1.0 s, group 39 MB / 1.5 s, predict 55 MB / 24.8 s, factors 19 MB / 5.2 s, connectome 37 MB /
/// 0.3 s, roc 30 MB / 0.3 s; on ukb-symptoms (25,000 people, 5,000 permutations) associate
/// 243 MB / 9.0 s, dataset 182 MB / 1.5 s, load-table 130 MB / 0.3 s, simulate 104 MB / 0.8 s,
/// split 91 MB / 0.2 s, scores 29 MB / 0.2 s, differences 26 MB / 0.2 s, replicate 18 MB,
/// fdr 17 MB (< 0.1 s); publish 124 MB / 3.6 s. Memory is 16× the measured peak rounded up to
/// a whole GB (1 GB floor); `imaging-run` and `group` keep 2 GB and 8 GB because their memory
/// grows with the image grid (the simulated images are small). Time is at least 24× the
/// measured (30 min floor), because a task over its limit is killed. One core each: give
/// `group`, `predict` and `associate` more with `[resources.<kind>] cpus`.
pub fn default_resources(kind: &str) -> Resolved {
    let (cpus, memory_mb, minutes) = match kind {
        "imaging-run" => (1, 2048, 10),
        "group" => (1, 8192, 120),
        "associate" => (1, 4096, 30),
        "dataset" | "load-table" => (1, 3072, 30),
        "simulate" | "split" => (1, 2048, 30),
        "predict" => (1, 1024, 120),
        PUBLISH_JOB => (1, 2048, 120),
        // connectome, factors, roc, scores, fdr, differences, replicate
        _ => (1, 1024, 30),
    };
    Resolved { cpus, memory_mb, time_seconds: minutes * 60 }
}

/// A kind's resources: the study's `[resources.<kind>]` over the default.
pub fn resources_for(kind: &str, requested: &BTreeMap<String, ResourceRequest>) -> Resolved {
    let default = default_resources(kind);
    let Some(r) = requested.get(kind) else { return default };
    Resolved {
        cpus: r.cpus.unwrap_or(default.cpus),
        memory_mb: r.memory_mb.unwrap_or(default.memory_mb),
        time_seconds: r.time_seconds.unwrap_or(default.time_seconds),
    }
}

/// How the person submitting wants the jobs submitted (`run --executor slurm` options).
#[derive(Debug, Clone, Default)]
pub struct SubmitOptions {
    pub partition: Option<String>,
    pub account: Option<String>,
    /// Most tasks per array job.
    pub max_array: Option<usize>,
    /// Passed to every `sbatch` call as is.
    pub sbatch_args: Vec<String>,
    /// `[resources.<kind>]` of the study.
    pub resources: BTreeMap<String, ResourceRequest>,
    /// The study file, read again by the publish job (for the report's copy of it).
    pub study_file: PathBuf,
    /// The folder the jobs run in (relative paths of the plan are relative to it).
    pub workdir: PathBuf,
    /// The neurospec program the tasks run (this one).
    pub program: PathBuf,
}

/// The plan as written into the cache: its nodes in index order and where it publishes.
#[derive(Debug, Serialize, Deserialize)]
pub struct PlanFile {
    pub study_name: String,
    pub study_hash: String,
    pub output_dir: PathBuf,
    pub nodes: Vec<Node>,
    /// `[study] sources`, for the publish job's `dataset_description.json`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<crate::design::SourceDataset>,
}

impl PlanFile {
    fn of(plan: &Plan) -> PlanFile {
        PlanFile {
            study_name: plan.study_name.clone(),
            study_hash: plan.study_hash.clone(),
            output_dir: plan.output_dir.clone(),
            nodes: plan.graph.node_indices().map(|i| plan.node(i).clone()).collect(),
            sources: plan.sources.clone(),
        }
    }

    fn into_plan(self, path: &Path) -> Result<Plan> {
        let sources = self.sources;
        let mut plan = crate::plan::from_nodes(self.nodes, self.output_dir, self.study_hash, self.study_name)
            .ok_or_else(|| {
                Error::data(format!("{}: the plan's wiring is damaged; submit the study again", path.display()))
            })?;
        plan.sources = sources;
        Ok(plan)
    }
}

/// One array job: stages of one kind at one DAG level.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Array {
    pub kind: String,
    pub level: usize,
    /// Slurm job id (empty until submitted).
    pub job_id: String,
    /// The arrays (indices into `Submission::arrays`) it depends on.
    pub after: Vec<usize>,
    /// Each task's stages (node indices), in plan order.
    pub tasks: Vec<Vec<usize>>,
    pub resources: Resolved,
}

/// What was submitted for a plan (`submission.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Submission {
    /// The study file, for the publish job.
    pub study_file: PathBuf,
    /// Seconds since the Unix epoch when it was submitted.
    pub submitted_unix: u64,
    /// Fingerprints of the stages cached at submission (node index → fingerprint).
    pub cached: BTreeMap<usize, String>,
    pub arrays: Vec<Array>,
    /// Job id of the publish job (empty until submitted).
    pub publish_job: String,
    /// How many `sbatch` calls the submission made.
    pub sbatch_calls: usize,
}

impl Submission {
    /// Every job id of the submission (arrays, then the publish job).
    pub fn job_ids(&self) -> Vec<String> {
        self.arrays
            .iter()
            .map(|a| a.job_id.clone())
            .chain([self.publish_job.clone()])
            .filter(|j| !j.is_empty())
            .collect()
    }

    /// The array and task that run a node, if it was submitted.
    pub fn task_of(&self) -> BTreeMap<usize, (usize, usize)> {
        let mut of = BTreeMap::new();
        for (a, array) in self.arrays.iter().enumerate() {
            for (t, nodes) in array.tasks.iter().enumerate() {
                for &n in nodes {
                    of.insert(n, (a, t));
                }
            }
        }
        of
    }
}

/// The folder of a submitted plan, and what it holds.
#[derive(Debug, Clone)]
pub struct Folder {
    pub dir: PathBuf,
}

impl Folder {
    pub fn new(dir: impl Into<PathBuf>) -> Folder {
        Folder { dir: dir.into() }
    }

    /// The cache a submitted plan belongs to (`<cache>/slurm/<plan id>`).
    pub fn cache_root(&self) -> Result<PathBuf> {
        self.dir
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .ok_or_else(|| Error::data(format!("{} is not inside a cache's slurm/ folder", self.dir.display())))
    }

    pub fn plan(&self) -> Result<Plan> {
        let path = self.dir.join("plan.json");
        let file: PlanFile = read_json(&path)?;
        file.into_plan(&path)
    }

    pub fn submission(&self) -> Result<Submission> {
        read_json(&self.dir.join("submission.json"))
    }

    fn done_path(&self, node: usize) -> PathBuf {
        self.dir.join("done").join(node.to_string())
    }

    /// The fingerprint a stage finished with in this plan, and whether it was executed (rather
    /// than found cached) by its task.
    pub fn done(&self, node: usize) -> Option<(String, bool)> {
        let text = std::fs::read_to_string(self.done_path(node)).ok()?;
        let (fingerprint, how) = text.trim().split_once(' ')?;
        Some((fingerprint.to_string(), how == "executed"))
    }

    /// Every node with a `done` marker.
    pub fn done_nodes(&self) -> std::collections::BTreeSet<usize> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("done")) else { return Default::default() };
        entries.flatten().filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok())).collect()
    }

    pub(crate) fn mark_done(&self, node: usize, fingerprint: &str, executed: bool) -> Result<()> {
        let how = if executed { "executed" } else { "cached" };
        let path = self.done_path(node);
        store::write_atomic_in(&self.dir.join("done"), &path, format!("{fingerprint} {how}\n").as_bytes())
    }

    /// Write a failure marker (`name` is `<array>_<task>` or `publish`).
    pub fn mark_failed(&self, name: &str, failure: &Failure) -> Result<()> {
        let path = self.dir.join("failed").join(format!("{name}.json"));
        let text = serde_json::to_string_pretty(failure).expect("json") + "\n";
        store::write_atomic_in(&self.dir.join("failed"), &path, text.as_bytes())
    }

    /// Every failure marker (name without `.json` → failure), in name order.
    pub fn failures(&self) -> BTreeMap<String, Failure> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("failed")) else { return BTreeMap::new() };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.strip_suffix(".json")?.to_string();
                let failure = serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
                Some((name, failure))
            })
            .collect()
    }

    /// The output folder, once the publish job has published it.
    pub fn published(&self) -> Option<PathBuf> {
        std::fs::read_to_string(self.dir.join("published")).ok().map(|t| PathBuf::from(t.trim_end_matches('\n')))
    }

    pub fn mark_published(&self, output_dir: &Path) -> Result<()> {
        let text = format!("{}\n", output_dir.display());
        store::write_atomic_in(&self.dir, &self.dir.join("published"), text.as_bytes())
    }

    /// Slurm's log of a task (`job` is the array's job id).
    pub fn log(&self, job: &str, task: Option<usize>) -> PathBuf {
        match task {
            Some(t) => self.dir.join("logs").join(format!("{job}_{t}.out")),
            None => self.dir.join("logs").join(format!("{job}.out")),
        }
    }
}

/// Why a task (or the publish job) failed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    /// The stage id (`publish` for the publish job).
    pub stage: String,
    pub error: String,
    /// Slurm's log of the task.
    pub log: PathBuf,
    pub host: String,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::data(format!(
            "{}: unreadable ({e}); it is written by `run --executor slurm`: submit again",
            path.display()
        ))
    })
}

/// Where the latest submission of a study is recorded: keyed by the study file's absolute path
/// (what two submissions of one study share even when the file was edited in between).
fn study_pointer(cache: &Path, study_file: &Path) -> PathBuf {
    let key = store::hash_bytes(study_file.display().to_string().as_bytes());
    cache.join("slurm").join("studies").join(&key[..32])
}

/// The folder of the latest submission of a study file (absolute path) to this cache, if any.
pub fn latest(cache: &Path, study_file: &Path) -> Option<Folder> {
    let id = std::fs::read_to_string(study_pointer(cache, study_file)).ok()?;
    let dir = cache.join("slurm").join(id.trim());
    dir.join("submission.json").is_file().then(|| Folder::new(dir))
}

/// What [`submit`] did.
#[derive(Debug)]
pub enum Submitted {
    /// Every stage is cached: nothing was submitted. The verified record of every stage (what
    /// a local run's report of cached stages holds).
    Nothing {
        records: BTreeMap<NodeIndex, store::Record>,
    },
    Jobs {
        folder: Folder,
        submission: Submission,
        stale: usize,
    },
}

/// Group the stale nodes into arrays (by level, then kind name) and pack each into tasks.
pub fn arrays(
    plan: &Plan,
    stale: &[NodeIndex],
    max_tasks: usize,
    requested: &BTreeMap<String, ResourceRequest>,
) -> Vec<Array> {
    let level = plan.levels();
    let mut groups: BTreeMap<(usize, &str), Vec<usize>> = BTreeMap::new();
    for &i in stale {
        groups.entry((level[i.index()], plan.node(i).kind.name())).or_default().push(i.index());
    }
    let mut array_of: BTreeMap<usize, usize> = BTreeMap::new();
    let mut arrays = Vec::new();
    for ((lvl, kind), nodes) in groups {
        let tasks = nodes.len().min(max_tasks.max(1));
        // Contiguous slices in plan order, sizes differing by at most one.
        let (per, extra) = (nodes.len() / tasks, nodes.len() % tasks);
        let mut slices = Vec::with_capacity(tasks);
        let mut at = 0;
        for t in 0..tasks {
            let size = per + usize::from(t < extra);
            slices.push(nodes[at..at + size].to_vec());
            at += size;
        }
        let mut after: Vec<usize> = nodes
            .iter()
            .flat_map(|&n| plan.dependencies(NodeIndex::new(n)))
            .filter_map(|d| array_of.get(&d.index()).copied())
            .collect();
        after.sort();
        after.dedup();
        for &n in &nodes {
            array_of.insert(n, arrays.len());
        }
        let resources = resources_for(kind, requested);
        arrays.push(Array {
            kind: kind.to_string(),
            level: lvl,
            job_id: String::new(),
            after,
            tasks: slices,
            resources,
        });
    }
    arrays
}

/// Check, write and submit the stale part of a plan (see the module doc).
pub fn submit(plan: &Plan, store: &Store, options: &SubmitOptions, cluster: &dyn Cluster) -> Result<Submitted> {
    let (states, records) = crate::exec::states_and_records(plan, store)?;
    // What finding the states hashed is kept for the tasks (and the next submission).
    store.save_file_hashes()?;
    let stale: Vec<NodeIndex> = states.iter().filter(|(_, s)| s.is_some()).map(|(i, _)| *i).collect();
    let cache = store.root();
    // A previous submission of this study that is still queued would race this one.
    if let Some(previous) = latest(cache, &options.study_file)
        && let Ok(sub) = previous.submission()
    {
        cluster.cancel(&sub.job_ids())?;
    }
    if stale.is_empty() {
        return Ok(Submitted::Nothing { records });
    }
    let plan_text = serde_json::to_vec(&PlanFile::of(plan)).expect("plans serialise");
    let id = store::hash_bytes(&plan_text)[..32].to_string();
    let folder = Folder::new(cache.join("slurm").join(&id));
    for sub in ["scripts", "logs", "done", "failed", "tasks"] {
        let dir = folder.dir.join(sub);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    // Markers of an earlier submission of the same plan: its failures are history, and what it
    // finished is found again through the cache (as cached stages below, or by its tasks).
    for sub in ["done", "failed", "tasks"] {
        clear_folder(&folder.dir.join(sub))?;
    }
    let _ = std::fs::remove_file(folder.dir.join("published"));
    store::write_atomic_in(&folder.dir, &folder.dir.join("plan.json"), &plan_text)?;
    let cached = records.into_iter().map(|(i, r)| (i.index(), r.fingerprint)).collect();
    let max_tasks = options.max_array.unwrap_or(DEFAULT_MAX_ARRAY).min(cluster.max_array_size()?).max(1);
    let mut submission = Submission {
        study_file: options.study_file.clone(),
        submitted_unix: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        cached,
        arrays: arrays(plan, &stale, max_tasks, &options.resources),
        publish_job: String::new(),
        sbatch_calls: 0,
    };
    // Written before the jobs exist, so that no task can start without them (job ids follow).
    for (a, array) in submission.arrays.iter().enumerate() {
        let slices: Vec<slice::TaskSlice> =
            array.tasks.iter().map(|nodes| slice::of(plan, nodes, &submission.cached)).collect();
        slice::write(&folder, a, &slices)?;
    }
    write_submission(&folder, &submission)?;
    submit_jobs(&folder, &mut submission, plan, options, cluster)?;
    write_submission(&folder, &submission)?;
    let pointer = study_pointer(cache, &options.study_file);
    store::write_atomic_in(pointer.parent().expect("inside slurm/studies"), &pointer, format!("{id}\n").as_bytes())?;
    Ok(Submitted::Jobs { folder, submission, stale: stale.len() })
}

fn clear_folder(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?.flatten() {
        std::fs::remove_file(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
    }
    Ok(())
}

fn write_submission(folder: &Folder, submission: &Submission) -> Result<()> {
    let text = serde_json::to_vec(submission).expect("submissions serialise");
    store::write_atomic_in(&folder.dir, &folder.dir.join("submission.json"), &text)
}

/// Single-quote a string for `sh`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Write each array's batch script and submit them in order, then the publish job. On an error
/// the jobs already submitted are cancelled.
fn submit_jobs(
    folder: &Folder,
    submission: &mut Submission,
    plan: &Plan,
    options: &SubmitOptions,
    cluster: &dyn Cluster,
) -> Result<()> {
    let program = shell_quote(&options.program.display().to_string());
    let dir = shell_quote(&folder.dir.display().to_string());
    let name = |what: &str| format!("neurospec-{}-{what}", plan.study_name);
    let result = (|| -> Result<()> {
        for a in 0..submission.arrays.len() {
            let array = &submission.arrays[a];
            let script = folder.dir.join("scripts").join(format!("{a}.sh"));
            let command = format!("exec {program} exec --submission {dir} --array {a}\n");
            write_script(&script, &command)?;
            let longest = array.tasks.iter().map(Vec::len).max().unwrap_or(1) as u64;
            let job = cluster::Job {
                name: name(&format!("{}-{a}", array.kind)),
                array: Some(array.tasks.len()),
                after: array.after.iter().map(|&b| submission.arrays[b].job_id.clone()).collect(),
                cpus: array.resources.cpus,
                memory_mb: array.resources.memory_mb,
                time: slurm_time(array.resources.time_seconds.saturating_mul(longest)),
                output: folder.dir.join("logs").join("%A_%a.out"),
                script,
            };
            submission.arrays[a].job_id = cluster.sbatch(&job, options)?;
            submission.sbatch_calls += 1;
        }
        let script = folder.dir.join("scripts").join("publish.sh");
        write_script(&script, &format!("exec {program} exec --submission {dir} --publish\n"))?;
        let resources = resources_for(PUBLISH_JOB, &options.resources);
        let job = cluster::Job {
            name: name(PUBLISH_JOB),
            array: None,
            after: submission.arrays.iter().map(|a| a.job_id.clone()).collect(),
            cpus: resources.cpus,
            memory_mb: resources.memory_mb,
            time: slurm_time(resources.time_seconds),
            output: folder.dir.join("logs").join("%j.out"),
            script,
        };
        submission.publish_job = cluster.sbatch(&job, options)?;
        submission.sbatch_calls += 1;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = cluster.cancel(&submission.job_ids());
        return Err(e);
    }
    Ok(())
}

fn write_script(path: &Path, command: &str) -> Result<()> {
    let text =
        format!("#!/bin/sh\n# Written by neurospec run --executor slurm; runs one job of a submitted plan.\n{command}");
    store::write_atomic_in(path.parent().expect("scripts/"), path, text.as_bytes())
}

#[cfg(test)]
mod tests;
