//! The command line: `check`, `plan`, `run`, `report`, `verify`, `explain`, `schema`, `simulate`,
//! and the
//! standalone commands `extract` and `efa`. Each command's file turns its arguments into calls
//! of the library; no library code knows about the command line (library errors are domain
//! errors; only this module produces usage errors).
//!
//! Exit codes: 0 success (also when stdout is closed early, as by `| head`), 1 a study or data
//! error, 2 a usage error.

mod bench;
mod efa;
mod extract;
mod extract_batch;
mod gc;
mod slurm;
mod study;

use crate::error::{Error, Result};
use crate::spec::{self, Preset};
use crate::tables::TableFormat;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "neurospec",
    version,
    about = "Run a whole brain-behaviour study from one TOML file: checked, cached, parallel, with provenance."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process; the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Validate a study (syntax, types, files, columns, terms, split) without computing anything.
    Check {
        /// The study file (TOML; see studies/ukb-symptoms.toml).
        study: PathBuf,
        /// Print one JSON object on stdout: `{"study", "ok", "stages", "warnings", "errors"}`
        /// (each problem with file, line, column, message and hint).
        #[arg(long)]
        json: bool,
    },
    /// Show every stage instance and whether it is cached or stale (and why).
    Plan {
        /// The study file.
        study: PathBuf,
        /// Print the DAG as Graphviz instead.
        #[arg(long)]
        dot: bool,
        /// Cache folder (default: .neurospec beside the study).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
    /// Run the stale stages and publish the outputs.
    Run {
        /// The study file.
        study: PathBuf,
        /// Worker threads (default: all cores).
        #[arg(short = 'j', long)]
        jobs: Option<usize>,
        /// Cache folder (default: .neurospec beside the study).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
        /// Keep running stages that do not depend on a failed one.
        #[arg(long)]
        keep_going: bool,
        /// Print one JSON summary object on stdout.
        #[arg(long)]
        json: bool,
        /// Output folder (default: `[outputs] dir`, or derivatives/<study name> beside the study).
        /// A study file can only write inside its own folder; this may point anywhere.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where the stages run: here, or as Slurm array jobs against the cache (which must be
        /// on a file system the cluster's nodes share).
        #[arg(long, value_enum, default_value_t = Executor::Local)]
        executor: Executor,
        /// Slurm partition (default: the cluster's).
        #[arg(long)]
        partition: Option<String>,
        /// Slurm account to charge.
        #[arg(long)]
        account: Option<String>,
        /// Most tasks per array job (default 1000, and at most the cluster's MaxArraySize).
        #[arg(long)]
        max_array: Option<usize>,
        /// Extra argument for every sbatch call (repeatable), e.g. `--sbatch-arg=--qos=short`.
        #[arg(long = "sbatch-arg", allow_hyphen_values = true)]
        sbatch_args: Vec<String>,
        /// Follow the Slurm run until it is published or fails, and exit like a local run.
        #[arg(long)]
        wait: bool,
    },
    /// Where a Slurm run of a study stands: stages done, running, failed, waiting; each failure's
    /// stage, error and Slurm log.
    Status {
        /// The study file that was submitted.
        study: PathBuf,
        /// Cache folder (default: .neurospec beside the study).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
    /// Run one array task of a submitted plan, or its publish job (what Slurm runs).
    #[command(hide = true)]
    Exec {
        /// The submitted plan's folder (`<cache>/slurm/<plan id>`).
        #[arg(long)]
        submission: PathBuf,
        /// Index of the array job in the submission.
        #[arg(long)]
        array: Option<usize>,
        /// Task index (default: $SLURM_ARRAY_TASK_ID).
        #[arg(long)]
        task: Option<usize>,
        /// Run the publish job instead.
        #[arg(long, conflicts_with = "array")]
        publish: bool,
        /// Worker threads (default: $SLURM_CPUS_PER_TASK, else 1).
        #[arg(short = 'j', long)]
        jobs: Option<usize>,
    },
    /// Rebuild report.html, methods.md, figures/ and ro-crate-metadata.json from a published folder.
    Report {
        /// The output folder of a run (derivatives/<study>).
        dir: PathBuf,
    },
    /// Rerun a study from scratch in a temporary cache and compare every published byte with it.
    Verify {
        /// The study file, or the output folder of a run (its run.json names the study file).
        target: PathBuf,
        /// Worker threads (default: all cores).
        #[arg(short = 'j', long)]
        jobs: Option<usize>,
    },
    /// Show how an output file was made: stage, parameters, inputs, and the chain to raw inputs.
    Explain {
        /// A file in a neurospec output folder.
        path: PathBuf,
    },
    /// Print the JSON Schema of study files.
    Schema,
    /// Delete cache records and objects that the named studies no longer need, and report the
    /// bytes freed. Keeps what their current plans use and every stage a published
    /// `neurospec.lock` in their output folders names (unless --all).
    Gc {
        /// The studies that use the cache (their current plans are kept).
        studies: Vec<PathBuf>,
        /// Cache folder (default: .neurospec beside the studies).
        #[arg(long = "cache", visible_alias = "cache-dir")]
        cache: Option<PathBuf>,
        /// Only report what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Also delete what published lock files name (keep only the current plans' needs; with
        /// no study, empty the cache).
        #[arg(long)]
        all: bool,
    },
    /// Exploratory factor analysis of an item table (TSV or CSV, one column per item).
    Efa(efa::EfaArgs),
    /// Region time series (and connectivity) for one BOLD image and a label atlas.
    Extract(extract::ExtractCommand),
    /// Write a synthetic cohort (tables, ground truth and a study file that reads them).
    Simulate {
        /// The cohort to simulate (each matches a shipped study in studies/).
        #[arg(value_enum)]
        preset: Preset,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Seed of every random draw (the same seed gives the same bytes).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Number of subjects (default: the preset's shipped study: 25,000 for ukb-symptoms, 500
        /// for amygdala-wellbeing, 49 for ketamine-response).
        #[arg(long)]
        subjects: Option<usize>,
        /// Table file format (ukb-symptoms only; the imaging presets write TSV tables and NIfTI
        /// images as fMRIPrep does).
        #[arg(long, value_enum)]
        format: Option<TableFormat>,
    },
    /// Time the voxelwise permutation engine on synthetic data (used by benches/voxelwise.py).
    #[command(name = "bench-voxelwise", hide = true)]
    BenchVoxelwise(bench::BenchVoxelwise),
    /// Time Slurm submission of a synthetic plan (used by benches/slurm.py).
    #[command(name = "bench-slurm", hide = true)]
    BenchSlurm(bench::BenchSlurm),
}

/// Where `run` runs the stages.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Executor {
    /// On this machine's cores.
    Local,
    /// As Slurm array jobs (`sbatch`), each task running its stages against the shared cache.
    Slurm,
}

/// Parse the command line, run, print errors; returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(()) => 0,
        // The reader of our output went away (`neurospec plan … | head`): a normal end.
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("{}", e.render());
            e.exit_code()
        }
    }
}

/// Write to stdout; a closed pipe comes back as an error `main` turns into a quiet exit.
fn out(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).map_err(|e| Error::io("<stdout>", e))
}

fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::BenchVoxelwise(args) => bench::run(args),
        Command::BenchSlurm(args) => bench::bench_slurm(args),
        Command::Check { study, json } => study::check(&study, json),
        Command::Plan { study, dot, cache_dir } => study::plan_command(&study, dot, cache_dir),
        Command::Run {
            study,
            jobs,
            cache_dir,
            keep_going,
            json,
            out,
            executor,
            partition,
            account,
            max_array,
            sbatch_args,
            wait,
        } => {
            let options = study::RunOptions { jobs, cache: cache_dir, keep_going, json, out };
            let slurm_only =
                partition.is_some() || account.is_some() || max_array.is_some() || !sbatch_args.is_empty() || wait;
            match executor {
                Executor::Local if slurm_only => Err(Error::Usage(
                    "--partition, --account, --max-array, --sbatch-arg and --wait need --executor slurm".into(),
                )),
                Executor::Local => study::run(&study, &options),
                Executor::Slurm => {
                    let choices = slurm::SlurmChoices { partition, account, max_array, sbatch_args, wait };
                    slurm::run(&study, &options, &choices)
                }
            }
        }
        Command::Status { study, cache_dir } => slurm::status_command(&study, cache_dir),
        Command::Exec { submission, array, task, publish, jobs } => {
            slurm::exec(&submission, array, task, publish, jobs)
        }
        Command::Report { dir } => {
            let rendered = crate::report::render(&dir)?;
            eprintln!(
                "wrote {} ({} KiB, {} figures) and {} other files in {}",
                crate::report::REPORT_FILE,
                rendered.report_bytes / 1024,
                rendered.figures,
                rendered.files.len() - 1,
                dir.display()
            );
            Ok(())
        }
        Command::Verify { target, jobs } => crate::report::verify::command(&target, jobs),
        Command::Explain { path } => out(&crate::outputs::explain(&path)?),
        Command::Efa(args) => efa::run(&args),
        Command::Extract(command) => extract::run(command),
        Command::Schema => out(&spec::schema::schema_json()),
        Command::Gc { studies, cache, dry_run, all } => gc::run(&gc::GcOptions { cache, studies, dry_run, all }),
        Command::Simulate { preset, out: dir, seed, subjects, format } => {
            if preset.writes_files() && format.is_some_and(|f| f != TableFormat::Tsv) {
                return Err(Error::Usage(format!(
                    "--format is for ukb-symptoms; {} writes TSV tables beside NIfTI images, as fMRIPrep does",
                    preset.name()
                )));
            }
            let format = format.unwrap_or(TableFormat::Tsv);
            let subjects = match subjects {
                Some(n) => n,
                None => preset_subjects(preset)?,
            };
            crate::sim::write_cohort(preset, subjects, seed, format, &dir)?;
            eprintln!("wrote a {} cohort of {subjects} subjects to {}", preset.name(), dir.display());
            Ok(())
        }
    }
}

/// The number of subjects of a preset's shipped study (`[simulate] subjects`).
fn preset_subjects(preset: Preset) -> Result<usize> {
    let study: spec::Study = toml::from_str(crate::sim::embedded_study(preset)).expect("embedded studies parse");
    study
        .simulate
        .map(|s| s.subjects)
        .ok_or_else(|| Error::data(format!("{}'s study has no [simulate]", preset.name())))
}
