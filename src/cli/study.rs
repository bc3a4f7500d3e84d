//! The study commands: `check`, `plan` and `run`.

use super::out;
use crate::error::{Error, Result};
use crate::exec::{self, Outcome, progress::Mode};
use crate::spec::{self, LoadedStudy};
use crate::{outputs, plan, store::Store};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Load and check a study. A simulated cohort that `run` has not yet written into the study's
/// folder is simulated into `scratch` (a folder in the cache) and read from there, so that
/// `check` and `plan` write nothing into the study's folder.
fn load_checked(path: &Path, scratch: Option<&Scratch>) -> Result<(LoadedStudy, spec::check::Resolved)> {
    resolve_loaded(load_settled(path)?, scratch)
}

/// Load a study and check what needs no file (confinement, ranges): safe to write for it next.
pub(super) fn load_settled(path: &Path) -> Result<LoadedStudy> {
    let loaded = spec::load(path)?;
    spec::check::settings(&loaded)?;
    Ok(loaded)
}

/// The rest of [`load_checked`], for a study that passed [`load_settled`].
pub(super) fn resolve_loaded(
    mut loaded: LoadedStudy,
    scratch: Option<&Scratch>,
) -> Result<(LoadedStudy, spec::check::Resolved)> {
    if let Some(scratch) = scratch
        && !crate::sim::is_materialised(&loaded)?
        && let Some(dir) = loaded.study.simulate.as_ref().and_then(|s| s.dir.clone())
    {
        let folder = scratch.folder(&loaded)?;
        crate::sim::materialise_into(&loaded, &folder)?;
        loaded.redirect = Some((loaded.dir.join(dir), folder));
    }
    let resolved = spec::check::resolve(&loaded)?;
    for warning in &resolved.warnings {
        eprintln!("{}", warning.render());
    }
    Ok((loaded, resolved))
}

/// A folder for a simulated cohort inside the cache, made only when needed and removed when
/// dropped.
pub(super) struct Scratch {
    cache: Option<PathBuf>,
    made: std::cell::OnceCell<tempfile::TempDir>,
}

impl Scratch {
    pub(super) fn new(cache: Option<PathBuf>) -> Self {
        Scratch { cache, made: std::cell::OnceCell::new() }
    }

    /// A fresh folder (inside it) for the cohort.
    fn folder(&self, loaded: &LoadedStudy) -> Result<PathBuf> {
        if self.made.get().is_none() {
            let root = cache_dir(loaded, self.cache.clone()).join("scratch");
            std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
            let dir = tempfile::Builder::new().prefix("check-").tempdir_in(&root).map_err(|e| Error::io(&root, e))?;
            let _ = self.made.set(dir);
        }
        Ok(self.made.get().expect("made above").path().join("cohort"))
    }
}

pub fn check(path: &Path, json: bool) -> Result<()> {
    if !json {
        let scratch = Scratch::new(None);
        let (_, resolved) = load_checked(path, Some(&scratch))?;
        let plan = plan::compile(&resolved);
        for warning in crate::exec::preflight::check_data(&plan)? {
            eprintln!("{warning}");
        }
        return out(&format!("{}: ok ({} stages)\n", path.display(), plan.order.len()));
    }
    // `--json`: one object on stdout whatever happens; the exit code still says ok or not.
    let scratch = Scratch::new(None);
    let mut warnings: Vec<serde_json::Value> = Vec::new();
    let result = load_checked(path, Some(&scratch)).and_then(|(_, resolved)| {
        warnings.extend(resolved.warnings.iter().map(diagnostic_json));
        let plan = plan::compile(&resolved);
        let data = crate::exec::preflight::check_data(&plan)?;
        warnings.extend(data.iter().map(|w| serde_json::json!({ "message": w.to_string() })));
        Ok(plan.order.len())
    });
    let (stages, errors) = match &result {
        Ok(n) => (Some(*n), Vec::new()),
        Err(Error::Study(problems)) => (None, problems.iter().map(diagnostic_json).collect()),
        Err(e) => (None, vec![serde_json::json!({ "message": e.to_string() })]),
    };
    let summary = serde_json::json!({
        "study": path.display().to_string(),
        "ok": result.is_ok(),
        "stages": stages,
        "warnings": warnings,
        "errors": errors,
    });
    out(&format!("{summary}\n"))?;
    result.map(|_| ())
}

fn diagnostic_json(d: &crate::error::Diagnostic) -> serde_json::Value {
    serde_json::json!({
        "file": d.file.display().to_string(),
        "line": d.line,
        "column": d.col,
        "message": d.message,
        "hint": d.hint,
    })
}

pub(super) fn cache_dir(loaded: &LoadedStudy, explicit: Option<PathBuf>) -> PathBuf {
    explicit.unwrap_or_else(|| loaded.dir.join(".neurospec"))
}

pub fn plan_command(path: &Path, dot: bool, cache: Option<PathBuf>) -> Result<()> {
    let scratch = Scratch::new(cache.clone());
    let (loaded, resolved) = load_checked(path, Some(&scratch))?;
    let plan = plan::compile(&resolved);
    let store = Store::open(&cache_dir(&loaded, cache))?;
    let states = exec::states(&plan, &store)?;
    if dot {
        let labels: Vec<String> = states.iter().map(|(_, s)| s.clone().unwrap_or_else(|| "cached".into())).collect();
        out(&plan.dot(Some(&labels)))?;
        return Ok(());
    }
    let width = plan.order.iter().map(|&i| plan.node(i).id.len()).max().unwrap_or(0);
    let mut stale = 0;
    let mut text = String::new();
    for (i, state) in &states {
        let node = plan.node(*i);
        stale += usize::from(state.is_some());
        text.push_str(&format!("{:<width$}  {}\n", node.id, state.as_deref().unwrap_or("cached")));
    }
    text.push_str(&format!("{} stages: {} cached, {stale} stale\n", states.len(), states.len() - stale));
    out(&text)
}

/// `neurospec run`'s choices.
pub struct RunOptions {
    pub jobs: Option<usize>,
    pub cache: Option<PathBuf>,
    pub keep_going: bool,
    pub json: bool,
    /// Output folder chosen on the command line.
    pub out: Option<PathBuf>,
}

pub fn run(path: &Path, options: &RunOptions) -> Result<()> {
    let RunOptions { jobs, cache, keep_going, json, out: out_dir } = options;
    let (jobs, keep_going, json) = (*jobs, *keep_going, *json);
    let started = Instant::now();
    if jobs == Some(0) {
        return Err(Error::Usage("-j must be at least 1".into()));
    }
    // The cache lock is taken before the cohort is simulated, so two first runs simulate once.
    let loaded = load_settled(path)?;
    let store = Store::open(&cache_dir(&loaded, cache.clone()))?;
    crate::sim::materialise(&loaded)?;
    let (loaded, mut resolved) = resolve_loaded(loaded, None)?;
    if let Some(dir) = out_dir {
        resolved.study.output_dir = dir.clone();
    }
    let plan = plan::compile(&resolved);
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mode = if json {
        Mode::Quiet
    } else if std::io::stderr().is_terminal() {
        Mode::Bars
    } else {
        Mode::Lines
    };
    let report = exec::run(&plan, &store, &exec::Options { jobs, keep_going, progress: mode })?;
    let failures: Vec<(String, String)> = report
        .outcomes
        .iter()
        .filter_map(|(i, o)| match o {
            Outcome::Failed(message) => Some((plan.node(*i).id.clone(), message.clone())),
            _ => None,
        })
        .collect();
    let output_dir = if failures.is_empty() {
        Some(publish(&loaded, &plan, &store, &report, started.elapsed().as_secs_f64())?)
    } else {
        None
    };
    let wall = started.elapsed().as_secs_f64();
    summarise(&plan, &report, output_dir.as_deref(), wall, json)?;
    if failures.is_empty() { Ok(()) } else { Err(Error::Stages(failures)) }
}

/// Publish a successful run's outputs with its report (a local run, or a Slurm run's publish
/// job): the same bytes either way.
pub(super) fn publish(
    loaded: &LoadedStudy,
    plan: &plan::Plan,
    store: &Store,
    report: &exec::RunReport,
    wall: f64,
) -> Result<PathBuf> {
    let write = |staging: &Path| crate::report::publish(staging, loaded, plan, report, wall).map(|_| ());
    let views = outputs::Views { owns: &crate::report::is_companion, write: &write };
    outputs::publish(plan, store, report, Some(&views))
}

/// What a finished run prints: a JSON object on stdout, or a line on stderr.
pub(super) fn summarise(
    plan: &plan::Plan,
    report: &exec::RunReport,
    output_dir: Option<&Path>,
    wall: f64,
    json: bool,
) -> Result<()> {
    let failed = report.count(|o| matches!(o, Outcome::Failed(_)));
    let executed = report.count(|o| matches!(o, Outcome::Executed(_)));
    let cached = report.count(|o| matches!(o, Outcome::Cached(_)));
    let skipped = report.count(|o| matches!(o, Outcome::Skipped));
    if json {
        let summary = serde_json::json!({
            "stages": plan.order.len(),
            "executed": executed,
            "cached": cached,
            "failed": failed,
            "skipped": skipped,
            "executed_stages": report.executed(),
            "output_dir": output_dir.map(|d| d.display().to_string()),
            "wall_seconds": wall,
        });
        out(&format!("{summary}\n"))?;
    } else if let Some(dir) = output_dir {
        eprintln!(
            "{} stages: {executed} executed, {cached} cached in {wall:.2} s; outputs in {}",
            plan.order.len(),
            dir.display()
        );
    }
    Ok(())
}
