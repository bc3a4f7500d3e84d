//! Talking to Slurm: `scontrol show config` (MaxArraySize), `sbatch`, `squeue`, `scancel`. The
//! commands are found on `PATH`, so a test or benchmark can put stand-ins there.

use super::SubmitOptions;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

/// One batch job to submit.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    /// Number of array tasks (indices 0..n), or a plain job.
    pub array: Option<usize>,
    /// Job ids it runs after (afterok).
    pub after: Vec<String>,
    pub cpus: u32,
    pub memory_mb: u64,
    /// Slurm `--time` (`D-HH:MM:SS`).
    pub time: String,
    /// Slurm `--output` pattern.
    pub output: PathBuf,
    pub script: PathBuf,
}

/// State of a job or array task in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueState {
    Pending,
    Running,
}

/// What the executor needs from a cluster.
pub trait Cluster {
    /// Most tasks one array may have (`MaxArraySize`).
    fn max_array_size(&self) -> Result<usize>;
    /// Submit; returns the job id.
    fn sbatch(&self, job: &Job, options: &SubmitOptions) -> Result<String>;
    /// Cancel these jobs (those that already ended are ignored).
    fn cancel(&self, jobs: &[String]) -> Result<()>;
    /// The queued or running tasks of these jobs: `"<job>"` or `"<job>_<task>"` → state.
    /// Jobs that ended are absent.
    fn queue(&self, jobs: &[String]) -> Result<BTreeMap<String, QueueState>>;
}

/// The real cluster, through its commands.
pub struct Slurm;

fn run(command: &mut Command, what: &str) -> Result<std::process::Output> {
    command.output().map_err(|e| {
        Error::data(format!(
            "cannot run `{what}` ({e}); `--executor slurm` runs on a Slurm login node with sbatch, squeue and scancel on PATH"
        ))
    })
}

/// Slurm's default `MaxArraySize`, used when `scontrol` does not say.
const SLURM_DEFAULT_MAX_ARRAY_SIZE: usize = 1001;

impl Cluster for Slurm {
    fn max_array_size(&self) -> Result<usize> {
        let out = run(Command::new("scontrol").args(["show", "config"]), "scontrol show config")?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(parse_max_array_size(&text).unwrap_or(SLURM_DEFAULT_MAX_ARRAY_SIZE))
    }

    fn sbatch(&self, job: &Job, options: &SubmitOptions) -> Result<String> {
        let mut command = Command::new("sbatch");
        command.args(sbatch_args(job, options));
        let out = run(&mut command, "sbatch")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        // `--parsable` prints `<id>` or `<id>;<cluster>`.
        let id = stdout.trim().split(';').next().unwrap_or("").to_string();
        if !out.status.success() || id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::data(format!(
                "sbatch refused job {}: {}{}",
                job.name,
                String::from_utf8_lossy(&out.stderr).trim(),
                if options.partition.is_none() { " (choose a partition with --partition?)" } else { "" }
            )));
        }
        Ok(id)
    }

    fn cancel(&self, jobs: &[String]) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        // Jobs that already ended make scancel complain; that is not a failure here.
        run(Command::new("scancel").args(jobs), "scancel")?;
        Ok(())
    }

    fn queue(&self, jobs: &[String]) -> Result<BTreeMap<String, QueueState>> {
        if jobs.is_empty() {
            return Ok(BTreeMap::new());
        }
        let out = run(Command::new("squeue").args(["-h", "-r", "-o", "%i %T", "-j", &jobs.join(",")]), "squeue")?;
        // squeue fails when none of the ids is known any more: nothing is queued. Any other
        // failure (the controller does not answer) must not look like an empty queue.
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && !stderr.contains("Invalid job id") {
            return Err(Error::data(format!("squeue failed: {}", stderr.trim())));
        }
        Ok(parse_queue(&String::from_utf8_lossy(&out.stdout)))
    }
}

/// The arguments of `sbatch` for a job.
pub fn sbatch_args(job: &Job, options: &SubmitOptions) -> Vec<String> {
    let mut args = vec![
        "--parsable".to_string(),
        format!("--job-name={}", job.name),
        format!("--cpus-per-task={}", job.cpus),
        format!("--mem={}M", job.memory_mb),
        format!("--time={}", job.time),
        format!("--output={}", job.output.display()),
        format!("--chdir={}", options.workdir.display()),
    ];
    if let Some(n) = job.array {
        args.push(format!("--array=0-{}", n.saturating_sub(1)));
    }
    if !job.after.is_empty() {
        args.push(format!("--dependency=afterok:{}", job.after.join(":")));
    }
    if let Some(p) = &options.partition {
        args.push(format!("--partition={p}"));
    }
    if let Some(a) = &options.account {
        args.push(format!("--account={a}"));
    }
    args.extend(options.sbatch_args.iter().cloned());
    args.push(job.script.display().to_string());
    args
}

/// `MaxArraySize = N` from `scontrol show config`.
pub fn parse_max_array_size(config: &str) -> Option<usize> {
    config.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "MaxArraySize").then(|| value.trim().parse().ok()).flatten()
    })
}

/// `squeue -h -r -o "%i %T"` lines: `<job>[_<task>] <STATE>`.
pub fn parse_queue(text: &str) -> BTreeMap<String, QueueState> {
    text.lines()
        .filter_map(|line| {
            let (id, state) = line.trim().split_once(' ')?;
            let state = match state.trim() {
                "RUNNING" | "COMPLETING" | "CONFIGURING" | "SUSPENDED" | "STAGE_OUT" => QueueState::Running,
                "PENDING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "RESIZING" => QueueState::Pending,
                _ => return None,
            };
            Some((id.to_string(), state))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_answers_are_read() {
        let config = "MaxArraySize            = 1001\nMaxJobCount             = 10000\n";
        assert_eq!(parse_max_array_size(config), Some(1001));
        assert_eq!(parse_max_array_size("nothing"), None);
        let queue = parse_queue("17_0 RUNNING\n17_1 PENDING\n18 PENDING\n19_3 COMPLETED\n");
        assert_eq!(queue.get("17_0"), Some(&QueueState::Running));
        assert_eq!(queue.get("18"), Some(&QueueState::Pending));
        assert_eq!(queue.get("19_3"), None, "an ended task is not queued");
    }
}
