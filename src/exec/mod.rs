//! Running a plan: the scheduler and the local executor.
//!
//! The scheduler walks the DAG in topological order, keeping every stage whose inputs are ready
//! in flight on a rayon pool of `-j` threads. When a stage becomes ready its fingerprint is
//! computed from the content hashes of its inputs; a complete record in the store means the stage
//! is cached and nothing runs. Otherwise the stage runs on the pool, its outputs are stored, and
//! its record is written last (see `store`). Stages parallelise internally on the same pool, and
//! their arithmetic never depends on the thread count, so `-j 1` and `-j 8` give identical bytes.
//!
//! Failure: by default the first failed stage stops new work (stages already running finish);
//! with `keep_going` every stage that does not depend on a failure still runs. A stage that
//! panics is a failed stage like any other ("panicked: MSG"): the panic is caught on the worker,
//! reported back to the scheduler, and the run ends normally, releasing the cache lock. No worker
//! can end without reporting, so the scheduler never waits forever.
//!
//! The stage code itself is reached through a [`Runner`]; [`run`] uses [`stages::run`]. Only
//! library callers (tests injecting a failing or panicking stage) pass another one to
//! [`run_with`]; nothing in a study file can choose the runner.

pub mod preflight;
pub mod progress;
pub mod slurm;

use crate::error::{Error, Result};
use crate::plan::fingerprint::{canonical_json, fingerprint, why_stale};
use crate::plan::{Node, Plan, Source};
use crate::stages;
use crate::store::{Record, RecordInput, RecordOutput, Store};
use petgraph::graph::NodeIndex;
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Instant;

pub struct Options {
    pub jobs: usize,
    pub keep_going: bool,
    /// Draw progress bars (a terminal) or print plain lines.
    pub progress: progress::Mode,
}

/// What happened to one stage in a run.
#[derive(Debug, Clone)]
pub enum Outcome {
    Cached(Record),
    Executed(Record),
    Failed(String),
    /// Not run because a stage it depends on failed (or the run stopped).
    Skipped,
}

pub struct RunReport {
    /// Outcome per node, in plan order.
    pub outcomes: Vec<(NodeIndex, Outcome)>,
}

impl RunReport {
    pub fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.outcomes.iter().filter(|(_, o)| f(o)).count()
    }
    pub fn executed(&self) -> Vec<&str> {
        self.outcomes
            .iter()
            .filter_map(|(_, o)| match o {
                Outcome::Executed(r) => Some(r.stage.as_str()),
                _ => None,
            })
            .collect()
    }
    pub fn record(&self, node: NodeIndex) -> Option<&Record> {
        self.outcomes.iter().find(|(n, _)| *n == node).and_then(|(_, o)| match o {
            Outcome::Cached(r) | Outcome::Executed(r) => Some(r),
            _ => None,
        })
    }
}

/// Input hashes of a node, if all its upstream records are known.
pub fn input_hashes<'r>(
    plan: &Plan,
    store: &Store,
    node: NodeIndex,
    record_of: &dyn Fn(NodeIndex) -> Option<&'r Record>,
) -> Result<Option<Vec<(String, String, String)>>> {
    node_input_hashes(plan.node(node), store, record_of)
}

/// [`input_hashes`] of a node on its own (a Slurm task holds its stages, not the whole plan):
/// (input name, content hash, source as recorded in provenance).
/// The upstream records are borrowed, not cloned: a connectome reads 40,000 of them.
pub fn node_input_hashes<'r>(
    node: &Node,
    store: &Store,
    record_of: &dyn Fn(NodeIndex) -> Option<&'r Record>,
) -> Result<Option<Vec<(String, String, String)>>> {
    let mut out = Vec::new();
    for (name, source) in &node.inputs {
        match source {
            Source::File { path, written } | Source::Path { path, written } => {
                let hash = store.hash_file(path).map_err(|e| match e {
                    Error::Io { source, .. } => Error::data(format!(
                        "input file `{written}` of stage {} cannot be read ({source}); \
                         was it moved or deleted after `check`?",
                        node.id
                    )),
                    other => other,
                })?;
                out.push((name.clone(), hash, format!("file:{written}")));
            }
            Source::Stage { node: upstream, output } => {
                let Some(record) = record_of(*upstream) else { return Ok(None) };
                let hash =
                    record.outputs.get(output).map(|o| o.hash.clone()).ok_or_else(|| {
                        Error::data(format!("stage {} did not produce output `{output}`", record.stage))
                    })?;
                out.push((name.clone(), hash, format!("stage:{}/{output}", record.stage)));
            }
        }
    }
    Ok(Some(out))
}

/// Whether a cached record holds every output the plan publishes or passes on from this node.
/// A record made by code that produced fewer outputs (a stage that gained one without a version
/// bump) is not reused: it would publish an incomplete folder or starve a downstream stage.
fn holds_all_outputs(required: &[String], record: &Record) -> bool {
    required.iter().all(|o| record.outputs.contains_key(o))
}

/// The outputs of a node that the plan publishes or passes on, sorted.
pub fn required_outputs(plan: &Plan, i: NodeIndex) -> Vec<String> {
    let published = plan.node(i).publish.iter().map(|(output, _)| output);
    let wired = plan.graph.edges_directed(i, petgraph::Direction::Outgoing).map(|e| e.weight());
    let mut required: Vec<String> = published.chain(wired).cloned().collect();
    required.sort();
    required.dedup();
    required
}

fn missing_outputs(plan: &Plan, i: NodeIndex, record: &Record) -> Vec<String> {
    required_outputs(plan, i).into_iter().filter(|o| !record.outputs.contains_key(o)).collect()
}

/// Whether a cached record describes exactly this node with these inputs: kind, code version,
/// parameters, seed and input hashes — everything its fingerprint is made of. The store has
/// already checked the record's seal and that it is filed under this fingerprint; this check
/// refuses a record whose content was sealed for another node (a copied record file).
fn describes(record: &Record, node: &Node, inputs: &[(String, String)]) -> bool {
    record.kind == node.kind.name()
        && record.version == node.kind.version()
        && record.seed == node.seed
        && canonical_json(&record.params) == canonical_json(&node.params)
        && record.inputs.len() == inputs.len()
        && record.inputs.iter().zip(inputs).all(|(r, (name, hash))| &r.name == name && &r.hash == hash)
}

/// The usable cached record of a node: intact, describing this node, holding every output.
fn cached_record(plan: &Plan, store: &Store, i: NodeIndex, inputs: &[(String, String)], fp: &str) -> Option<Record> {
    cached_record_of(plan.node(i), &required_outputs(plan, i), store, inputs, fp)
}

/// [`cached_record`] of a node on its own, given the outputs the plan needs of it
/// ([`required_outputs`]).
pub fn cached_record_of(
    node: &Node,
    required: &[String],
    store: &Store,
    inputs: &[(String, String)],
    fp: &str,
) -> Option<Record> {
    store.complete_record(fp).filter(|r| describes(r, node, inputs) && holds_all_outputs(required, r))
}

/// Why a node whose inputs are known has no usable cached record.
fn stale_reason(plan: &Plan, store: &Store, i: NodeIndex, inputs: &[(String, String)], fp: &str) -> String {
    let node = plan.node(i);
    if let Some(why) = store.untrusted_record(fp) {
        return format!("{why}; it will be recomputed");
    }
    let Some(record) = store.record(fp) else { return why_stale(store, node, inputs, fp) };
    if !describes(&record, node, inputs) {
        return "its cached record describes another stage instance; it will be recomputed".into();
    }
    if store.complete_record(fp).is_none() {
        let damaged: Vec<&str> =
            record.outputs.iter().filter(|(_, o)| !store.has_intact_size(o)).map(|(n, _)| n.as_str()).collect();
        return format!("output {} missing from the cache or damaged", damaged.join(", "));
    }
    format!("the cached result lacks output {} (made by older code)", missing_outputs(plan, i, &record).join(", "))
}

/// The state of every stage before running: cached, or stale with a reason.
pub fn states(plan: &Plan, store: &Store) -> Result<States> {
    Ok(states_and_records(plan, store)?.0)
}

/// Each stage's state: `None` when cached, else why it is stale.
pub type States = Vec<(NodeIndex, Option<String>)>;

/// [`states`], and the fingerprint of every cached stage.
pub fn states_and_fingerprints(plan: &Plan, store: &Store) -> Result<(States, BTreeMap<NodeIndex, String>)> {
    let (states, records) = states_and_records(plan, store)?;
    Ok((states, records.into_iter().map(|(i, r)| (i, r.fingerprint)).collect()))
}

/// [`states`], and the verified record of every cached stage.
///
/// Stages of one DAG level never depend on one another, so each level's records are read and
/// verified in parallel (on rayon's global pool), a level at a time; the answer does not depend
/// on the order they are read in. An error is that of the first failing stage (plan order) of
/// the first level with one.
pub fn states_and_records(plan: &Plan, store: &Store) -> Result<(States, BTreeMap<NodeIndex, Record>)> {
    use rayon::prelude::*;
    let level = plan.levels();
    let mut waves: Vec<Vec<NodeIndex>> = vec![Vec::new(); level.iter().max().map_or(0, |m| m + 1)];
    for &i in &plan.order {
        waves[level[i.index()]].push(i);
    }
    let mut known: Vec<Option<Record>> = vec![None; plan.graph.node_count()];
    let mut state: Vec<Option<String>> = vec![None; plan.graph.node_count()];
    for wave in waves {
        let found: Vec<Result<std::result::Result<Record, String>>> =
            wave.par_iter().map(|&i| state_of(plan, store, i, &known)).collect();
        for (&i, found) in wave.iter().zip(found) {
            match found? {
                Ok(record) => known[i.index()] = Some(record),
                Err(why) => state[i.index()] = Some(why),
            }
        }
    }
    let out = plan.order.iter().map(|&i| (i, state[i.index()].take())).collect();
    let records = plan.order.iter().filter_map(|&i| known[i.index()].take().map(|r| (i, r))).collect();
    Ok((out, records))
}

/// One stage's cached record, or why it is stale, given the records of the stages before it.
fn state_of(
    plan: &Plan,
    store: &Store,
    i: NodeIndex,
    known: &[Option<Record>],
) -> Result<std::result::Result<Record, String>> {
    let Some(hashes) = input_hashes(plan, store, i, &|n| known[n.index()].as_ref())? else {
        let upstream: Vec<String> = plan
            .dependencies(i)
            .into_iter()
            .filter(|d| known[d.index()].is_none())
            .map(|d| format!("`{}`", plan.node(d).id))
            .collect();
        return Ok(Err(format!("stale: {} will rerun", upstream.join(", "))));
    };
    let pairs: Vec<(String, String)> = hashes.iter().map(|(n, h, _)| (n.clone(), h.clone())).collect();
    let fp = fingerprint(plan.node(i), &pairs);
    Ok(match cached_record(plan, store, i, &pairs, &fp) {
        Some(record) => Ok(record),
        None => Err(format!("stale: {}", stale_reason(plan, store, i, &pairs, &fp))),
    })
}

enum Message {
    Finished(NodeIndex, Result<Record>),
}

/// The code that computes one stage instance from its context.
pub type Runner<'r> = &'r (dyn Fn(&Node, &stages::Context<'_>) -> Result<stages::Outputs> + Sync);

/// Execute the plan with the real stage code.
pub fn run(plan: &Plan, store: &Store, options: &Options) -> Result<RunReport> {
    run_with(plan, store, options, &|node: &Node, ctx: &stages::Context<'_>| stages::run(node.kind, ctx))
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string())
}

/// Run one stage on a worker, turning a panic into a failure of that stage.
fn execute_caught(
    store: &Store,
    node: &Node,
    fp: &str,
    hashes: &[(String, String, String)],
    bar: &progress::StageBar,
    runner: Runner<'_>,
) -> Result<Record> {
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| execute(store, node, fp, hashes, bar, runner)))
            .unwrap_or_else(|payload| {
                Err(Error::data(format!(
                    "panicked: {} (a bug in neurospec: please report it with the study file; the cache is intact)",
                    panic_message(&*payload)
                )))
            });
    // The bar is cosmetic: a panic while clearing it must not keep the result from the scheduler.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| bar.finish()));
    result
}

/// Execute the plan, computing stages with `runner`.
pub fn run_with(plan: &Plan, store: &Store, options: &Options, runner: Runner<'_>) -> Result<RunReport> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.jobs.max(1))
        .build()
        .map_err(|e| Error::data(format!("cannot start {} worker threads: {e}", options.jobs)))?;
    let progress = progress::Progress::new(options.progress, plan.order.len());
    let mut outcomes: BTreeMap<NodeIndex, Outcome> = BTreeMap::new();
    let mut in_flight: std::collections::BTreeSet<NodeIndex> = std::collections::BTreeSet::new();
    let mut stop = false;
    let (tx, rx) = mpsc::channel::<Message>();

    pool.in_place_scope(|scope| -> Result<()> {
        loop {
            // Start (or resolve from cache) everything that is ready.
            let mut progressed = true;
            while progressed && !stop {
                progressed = false;
                for &i in &plan.order {
                    if outcomes.contains_key(&i) || in_flight.contains(&i) {
                        continue;
                    }
                    let deps = plan.dependencies(i);
                    if deps.iter().any(|d| matches!(outcomes.get(d), Some(Outcome::Failed(_) | Outcome::Skipped))) {
                        outcomes.insert(i, Outcome::Skipped);
                        progress.finished(&plan.node(i).id, "skipped (an input failed)");
                        progressed = true;
                        continue;
                    }
                    if !deps.iter().all(|d| matches!(outcomes.get(d), Some(Outcome::Cached(_) | Outcome::Executed(_))))
                    {
                        continue;
                    }
                    let record_of = |n: NodeIndex| match outcomes.get(&n) {
                        Some(Outcome::Cached(r) | Outcome::Executed(r)) => Some(r),
                        _ => None,
                    };
                    let hashes = match input_hashes(plan, store, i, &record_of) {
                        Ok(h) => h.expect("all dependencies are done"),
                        Err(e) => {
                            outcomes.insert(i, Outcome::Failed(e.to_string()));
                            progress.finished(&plan.node(i).id, "failed");
                            stop |= !options.keep_going;
                            progressed = true;
                            continue;
                        }
                    };
                    let node = plan.node(i);
                    let pairs: Vec<(String, String)> = hashes.iter().map(|(n, h, _)| (n.clone(), h.clone())).collect();
                    let fp = fingerprint(node, &pairs);
                    if let Some(record) = cached_record(plan, store, i, &pairs, &fp) {
                        progress.finished(&node.id, "cached");
                        outcomes.insert(i, Outcome::Cached(record));
                        progressed = true;
                        continue;
                    }
                    in_flight.insert(i);
                    let tx = tx.clone();
                    let bar = progress.start(&node.id);
                    scope.spawn(move |_| {
                        let result = execute_caught(store, node, &fp, &hashes, &bar, runner);
                        let _ = tx.send(Message::Finished(i, result));
                    });
                    progressed = true;
                }
            }
            if in_flight.is_empty() {
                break;
            }
            // Every spawned worker sends exactly once (panics are caught in `execute_caught`).
            let Message::Finished(i, result) = rx.recv().expect("workers report back");
            in_flight.remove(&i);
            match result {
                Ok(record) => {
                    progress.finished(&record.stage, &format!("done in {:.1}s", record.wall_seconds));
                    outcomes.insert(i, Outcome::Executed(record));
                }
                Err(e) => {
                    progress.finished(&plan.node(i).id, "failed");
                    outcomes.insert(i, Outcome::Failed(e.to_string()));
                    stop |= !options.keep_going;
                }
            }
        }
        Ok(())
    })?;
    progress.clear();
    store.save_file_hashes()?;
    let outcomes = plan.order.iter().map(|&i| (i, outcomes.remove(&i).unwrap_or(Outcome::Skipped))).collect();
    Ok(RunReport { outcomes })
}

/// Run one stage: load inputs (hash-verified), compute, store outputs, then the record.
fn execute(
    store: &Store,
    node: &Node,
    fp: &str,
    hashes: &[(String, String, String)],
    bar: &progress::StageBar,
    runner: Runner<'_>,
) -> Result<Record> {
    let started = Instant::now();
    let started_unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut inputs = BTreeMap::new();
    let mut paths = BTreeMap::new();
    for ((name, source), (_, hash, _)) in node.inputs.iter().zip(hashes) {
        let bytes = match source {
            Source::Path { path, .. } => {
                paths.insert(name.clone(), path.clone());
                continue;
            }
            Source::File { path, .. } => {
                let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
                if crate::store::hash_bytes(&bytes) != *hash {
                    return Err(Error::data(format!("{} changed while the run was starting; rerun", path.display())));
                }
                bytes
            }
            Source::Stage { .. } => store.get(hash)?,
        };
        inputs.insert(name.clone(), bytes);
    }
    let report = |done: u64, total: u64| bar.set(done, total);
    let ctx = stages::Context { stage: &node.id, params: &node.params, inputs, paths, progress: &report };
    let outputs = runner(node, &ctx)?;
    stages::check_declared(node.kind, &node.id, &outputs)?;
    let mut recorded = BTreeMap::new();
    for (name, bytes) in &outputs {
        let hash = store.put(bytes)?;
        recorded.insert(name.clone(), RecordOutput { hash, bytes: bytes.len() as u64 });
    }
    let record = Record {
        stage: node.id.clone(),
        kind: node.kind.name().to_string(),
        version: node.kind.version(),
        fingerprint: fp.to_string(),
        params: node.params.clone(),
        seed: node.seed,
        inputs: hashes
            .iter()
            .map(|(name, hash, source)| RecordInput { name: name.clone(), hash: hash.clone(), source: source.clone() })
            .collect(),
        outputs: recorded,
        started_unix,
        wall_seconds: started.elapsed().as_secs_f64(),
        host: hostname::get().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
        neurospec_version: env!("CARGO_PKG_VERSION").to_string(),
        seal: String::new(),
    }
    .sealed();
    store.put_record(&record)?;
    Ok(record)
}
