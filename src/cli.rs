//! The command line: `check`, `plan`, `run`, `report`, `verify`, `explain`, `schema`, `simulate`.
//!
//! Exit codes: 0 success, 1 a study or data error, 2 a usage error.

use crate::error::{Error, Result};
use crate::exec::{self, Outcome, progress::Mode};
use crate::spec::{self, LoadedStudy, Preset, TableFormat};
use crate::{outputs, plan, store::Store};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

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
        /// The study file.
        study: PathBuf,
    },
    /// Show every stage instance and whether it is cached or stale (and why).
    Plan {
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
    /// Exploratory factor analysis of an item table (TSV or CSV, one column per item).
    Efa {
        /// Item table (header row; every other column is an item).
        #[arg(long)]
        data: PathBuf,
        /// A column that is not an item (e.g. the subject id).
        #[arg(long)]
        id_column: Option<String>,
        /// Number of factors, or `parallel` for Horn's parallel analysis.
        #[arg(long, default_value = "parallel")]
        factors: String,
        #[arg(long, value_enum, default_value_t = MethodArg::Minres)]
        method: MethodArg,
        /// none, varimax, promax, oblimin, quartimin or geomin.
        #[arg(long, default_value = "oblimin")]
        rotation: String,
        /// Oblimin γ.
        #[arg(long, default_value_t = 0.0)]
        gamma: f64,
        /// Geomin δ.
        #[arg(long, default_value_t = 0.01)]
        delta: f64,
        #[arg(long, value_enum, default_value_t = ScoresArg::Regression)]
        scores: ScoresArg,
        /// Simulated data sets for parallel analysis.
        #[arg(long, default_value_t = 1000)]
        sims: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output folder (loadings.tsv, phi.tsv, scores.tsv, fit.json).
        #[arg(long)]
        out: PathBuf,
    },
    /// Region time series (and connectivity) for one BOLD image and a label atlas.
    Extract {
        /// 4D BOLD image (.nii or .nii.gz).
        #[arg(long, required_unless_present_any = ["manifest", "fmriprep"])]
        bold: Option<PathBuf>,
        /// Many runs: a TSV with columns `bold`, `out` (and optionally `confounds`,
        /// `connectivity_out`), processed in parallel; replaces --bold/--out.
        #[arg(long, conflicts_with_all = ["bold", "out"])]
        manifest: Option<PathBuf>,
        /// Every run in an fMRIPrep derivatives folder (with --task, --space, --out-dir).
        #[arg(long, conflicts_with_all = ["bold", "out", "manifest"], requires_all = ["task", "space", "out_dir"])]
        fmriprep: Option<PathBuf>,
        /// fMRIPrep task label (e.g. rest).
        #[arg(long)]
        task: Option<String>,
        /// fMRIPrep output space (e.g. MNI152NLin2009cAsym).
        #[arg(long)]
        space: Option<String>,
        /// Output folder for --fmriprep (BIDS-derivatives layout).
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// With --fmriprep: a subject without a usable run is an `error` or is `skip`ped (and listed).
        #[arg(long, default_value = "error", value_parser = ["error", "skip"])]
        missing: String,
        /// Threads for --manifest (default: all cores).
        #[arg(short = 'j', long)]
        jobs: Option<usize>,
        /// Label image (integer labels; 0 = background).
        #[arg(long)]
        atlas: Option<PathBuf>,
        /// Probabilistic maps: a 4D image with one region per volume (needs --map-names).
        #[arg(long, requires = "map_names")]
        maps: Option<PathBuf>,
        /// Comma-separated region names, one per volume of --maps.
        #[arg(long, value_delimiter = ',')]
        map_names: Option<Vec<String>>,
        /// Probability (%) from which a voxel belongs to a map's region.
        #[arg(long, conflicts_with = "map_maxprob")]
        map_threshold: Option<f64>,
        /// Assign each voxel to its most probable map instead of thresholding.
        #[arg(long)]
        map_maxprob: bool,
        /// A sphere region, NAME:X,Y,Z:RADIUS in MNI mm (repeatable).
        #[arg(long = "sphere", value_name = "NAME:X,Y,Z:RADIUS")]
        spheres: Vec<String>,
        /// A binary mask region, NAME:PATH (repeatable).
        #[arg(long = "mask", value_name = "NAME:PATH")]
        masks: Vec<String>,
        /// Seed regions (comma-separated): connectivity is seeds × all other regions.
        #[arg(long, value_delimiter = ',')]
        seeds: Option<Vec<String>>,
        /// Write a Fisher-z seed-to-voxel NIfTI map per seed into this folder.
        #[arg(long)]
        seed_maps_out: Option<PathBuf>,
        /// Label table: `index name` per line (TSV with header, or whitespace separated).
        #[arg(long)]
        labels: Option<PathBuf>,
        /// fMRIPrep confounds TSV.
        #[arg(long)]
        confounds: Option<PathBuf>,
        /// Confound strategy: 6P, 24P, 36P, acompcorN, gsr, or a comma-separated column list.
        #[arg(long)]
        strategy: Option<String>,
        /// Scrub volumes with framewise displacement above this (mm).
        #[arg(long)]
        fd_threshold: Option<f64>,
        /// After scrubbing, also drop kept segments shorter than this many volumes.
        #[arg(long, default_value_t = 5)]
        min_segment: usize,
        /// Band-pass in Hz: high-pass cut-off and low-pass cut-off (0 or inf to omit one).
        #[arg(long, num_args = 2, value_names = ["HIGH_PASS", "LOW_PASS"])]
        band: Option<Vec<f64>>,
        /// Repetition time in seconds (default: from the image header).
        #[arg(long)]
        tr: Option<f64>,
        /// Do not remove linear trends (on by default whenever any cleaning is requested).
        #[arg(long)]
        no_detrend: bool,
        /// Do not z-score the cleaned series (on by default whenever any cleaning is requested).
        #[arg(long)]
        no_standardize: bool,
        /// Refuse to resample an atlas that is not on the BOLD grid.
        #[arg(long)]
        no_resample: bool,
        /// Output time series TSV (one column per region, one row per retained volume).
        #[arg(long, required_unless_present_any = ["manifest", "fmriprep"])]
        out: Option<PathBuf>,
        /// Connectivity measure: pearson, correlation (Ledoit-Wolf) or partial (Ledoit-Wolf).
        #[arg(long, value_enum)]
        connectivity: Option<MeasureArg>,
        /// Write Fisher z (atanh) instead of r.
        #[arg(long)]
        fisher_z: bool,
        /// Output connectivity matrix TSV.
        #[arg(long)]
        connectivity_out: Option<PathBuf>,
        /// Write each region's voxel count before and after resampling here.
        #[arg(long)]
        regions_out: Option<PathBuf>,
    },
    /// Write a synthetic cohort (tables, ground truth and a study file that reads them).
    Simulate {
        #[arg(value_enum)]
        preset: PresetArg,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 25_000)]
        subjects: usize,
        /// Table file format.
        #[arg(long, value_enum, default_value_t = FormatArg::Tsv)]
        format: FormatArg,
    },
    /// Time the voxelwise permutation engine on synthetic data (used by benches/voxelwise.py).
    #[command(name = "bench-voxelwise", hide = true)]
    BenchVoxelwise {
        #[arg(long, default_value_t = 49)]
        subjects: usize,
        /// Approximate mask size (an ellipsoid scaled to this many voxels).
        #[arg(long, default_value_t = 230_000)]
        voxels: usize,
        #[arg(long, default_value_t = 5000)]
        permutations: usize,
        /// Nuisance covariates (0, 1 = age, 2 = age and sex).
        #[arg(long, default_value_t = 2)]
        covariates: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Worker threads (default: all cores).
        #[arg(short = 'j', long)]
        jobs: Option<usize>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum MethodArg {
    Minres,
    Ml,
    Principal,
}

#[derive(Clone, Copy, ValueEnum)]
enum ScoresArg {
    Regression,
    Bartlett,
    Tenberge,
}

#[derive(Clone, Copy, ValueEnum)]
enum MeasureArg {
    Pearson,
    Correlation,
    Partial,
}

#[derive(Clone, Copy, ValueEnum)]
enum PresetArg {
    UkbSymptoms,
    AmygdalaWellbeing,
    KetamineResponse,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Tsv,
    Csv,
    Parquet,
}

/// Parse the command line, run, print errors; returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            e.exit_code()
        }
    }
}

fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::BenchVoxelwise { subjects, voxels, permutations, covariates, seed, jobs } => {
            bench_voxelwise(subjects, voxels, permutations, covariates, seed, jobs)
        }
        Command::Check { study } => check(&study),
        Command::Plan { study, dot, cache_dir } => plan_command(&study, dot, cache_dir),
        Command::Run { study, jobs, cache_dir, keep_going, json } => run(&study, jobs, cache_dir, keep_going, json),
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
        Command::Explain { path } => {
            print!("{}", outputs::explain(&path)?);
            Ok(())
        }
        Command::Extract {
            bold,
            manifest,
            fmriprep,
            task,
            space,
            out_dir,
            missing,
            jobs,
            atlas,
            maps,
            map_names,
            map_threshold,
            map_maxprob,
            spheres,
            masks,
            seeds,
            seed_maps_out,
            labels,
            confounds,
            strategy,
            fd_threshold,
            min_segment,
            band,
            tr,
            no_detrend,
            no_standardize,
            no_resample,
            out,
            connectivity,
            fisher_z,
            connectivity_out,
            regions_out,
        } => {
            use crate::imaging::command::{ExtractArgs, Measure, extract, extract_batch, extract_fmriprep};
            let cleaning = confounds.is_some() || band.is_some() || fd_threshold.is_some();
            let maps = match maps {
                Some(path) => {
                    let rule = match (map_threshold, map_maxprob) {
                        (Some(p), false) => crate::imaging::regions::MapRule::Threshold(p),
                        (None, true) => crate::imaging::regions::MapRule::MaxProbability,
                        _ => return Err(Error::Usage("--maps needs --map-threshold PERCENT or --map-maxprob".into())),
                    };
                    Some((path, map_names.unwrap_or_default(), rule))
                }
                None => None,
            };
            let args = ExtractArgs {
                bold: bold.unwrap_or_default(),
                atlas,
                maps,
                spheres: spheres.iter().map(|s| parse_sphere(s)).collect::<Result<_>>()?,
                masks: masks
                    .iter()
                    .map(|m| {
                        m.split_once(':')
                            .map(|(n, p)| (n.to_string(), PathBuf::from(p)))
                            .ok_or_else(|| Error::Usage(format!("--mask `{m}`: write NAME:PATH")))
                    })
                    .collect::<Result<_>>()?,
                seeds,
                seed_maps_out,
                labels,
                confounds,
                strategy,
                fd_threshold,
                min_segment,
                band: band.map(|b| (b[0], b[1])),
                tr,
                detrend: cleaning && !no_detrend,
                standardise: cleaning && !no_standardize,
                resampling: if no_resample {
                    crate::imaging::regions::Resampling::Forbid
                } else {
                    crate::imaging::regions::Resampling::Nearest
                },
                out: out.unwrap_or_default(),
                connectivity: connectivity.map(|m| match m {
                    MeasureArg::Pearson => Measure::Pearson,
                    MeasureArg::Correlation => Measure::Correlation,
                    MeasureArg::Partial => Measure::Partial,
                }),
                fisher_z,
                connectivity_out,
                regions_out,
                min_kept_fraction: 0.5,
            };
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            match (manifest, fmriprep) {
                (Some(manifest), _) => extract_batch(&args, &manifest, jobs),
                (None, Some(root)) => {
                    let atlas_name = args
                        .atlas
                        .as_ref()
                        .and_then(|a| a.file_name())
                        .map(|n| n.to_string_lossy().split('.').next().unwrap_or("atlas").to_string())
                        .unwrap_or_else(|| "regions".to_string());
                    extract_fmriprep(
                        &args,
                        &root,
                        task.as_deref().unwrap_or_default(),
                        space.as_deref().unwrap_or_default(),
                        out_dir.as_deref().unwrap_or(Path::new(".")),
                        &atlas_name,
                        missing == "skip",
                        jobs,
                    )
                }
                (None, None) => extract(&args),
            }
        }
        Command::Efa { data, id_column, factors, method, rotation, gamma, delta, scores, sims, seed, out } => {
            use crate::behaviour::efa::{Extraction, Rotation, Scores};
            let factors = match factors.as_str() {
                "parallel" => None,
                k => Some(
                    k.parse::<usize>().map_err(|_| Error::Usage(format!("--factors `{k}`: a number or `parallel`")))?,
                ),
            };
            let rotation = match rotation.to_ascii_lowercase().as_str() {
                "none" => Rotation::None,
                "varimax" => Rotation::Varimax,
                "promax" => Rotation::Promax { power: 4.0 },
                "oblimin" => Rotation::Oblimin { gamma },
                "quartimin" => Rotation::Quartimin,
                "geomin" => Rotation::Geomin { delta },
                other => {
                    return Err(Error::Usage(format!(
                        "--rotation `{other}`: use none, varimax, promax, oblimin, quartimin or geomin"
                    )));
                }
            };
            crate::behaviour::efa_command::run(&crate::behaviour::efa_command::EfaArgs {
                data,
                id_column,
                factors,
                method: match method {
                    MethodArg::Minres => Extraction::MinRes,
                    MethodArg::Ml => Extraction::Ml,
                    MethodArg::Principal => Extraction::Principal,
                },
                rotation,
                scores: match scores {
                    ScoresArg::Regression => Scores::Regression,
                    ScoresArg::Bartlett => Scores::Bartlett,
                    ScoresArg::Tenberge => Scores::TenBerge,
                },
                sims,
                seed,
                out,
            })
        }
        Command::Schema => {
            print!("{}", spec::schema::schema_json());
            Ok(())
        }
        Command::Simulate { preset, out, seed, subjects, format } => {
            let preset = match preset {
                PresetArg::UkbSymptoms => Preset::UkbSymptoms,
                PresetArg::AmygdalaWellbeing => Preset::AmygdalaWellbeing,
                PresetArg::KetamineResponse => Preset::KetamineResponse,
            };
            let format = match format {
                FormatArg::Tsv => TableFormat::Tsv,
                FormatArg::Csv => TableFormat::Csv,
                FormatArg::Parquet => TableFormat::Parquet,
            };
            crate::sim::write_cohort(preset, subjects, seed, format, &out)?;
            eprintln!("wrote a {} cohort of {subjects} subjects to {}", preset.name(), out.display());
            Ok(())
        }
    }
}

/// `NAME:X,Y,Z:RADIUS` → a sphere.
fn parse_sphere(text: &str) -> Result<(String, [f64; 3], f64)> {
    let bad = || Error::Usage(format!("--sphere `{text}`: write NAME:X,Y,Z:RADIUS, e.g. raphe:0,-26,-18:4"));
    let mut parts = text.split(':');
    let (Some(name), Some(centre), Some(radius), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let xyz: Vec<f64> =
        centre.split(',').map(|v| v.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(|_| bad())?;
    let radius: f64 = radius.trim().parse().map_err(|_| bad())?;
    if xyz.len() != 3 || !(radius > 0.0) || name.is_empty() {
        return Err(bad());
    }
    Ok((name.to_string(), [xyz[0], xyz[1], xyz[2]], radius))
}

fn load_checked(path: &Path) -> Result<(LoadedStudy, spec::check::Resolved)> {
    let loaded = spec::load(path)?;
    crate::sim::materialise(&loaded)?;
    let resolved = spec::check::resolve(&loaded)?;
    Ok((loaded, resolved))
}

fn check(path: &Path) -> Result<()> {
    let (loaded, resolved) = load_checked(path)?;
    let plan = plan::compile(&loaded, &resolved);
    crate::spec::deep::check_data(&plan)?;
    println!("{}: ok ({} stages)", path.display(), plan.order.len());
    Ok(())
}

fn cache_dir(loaded: &LoadedStudy, explicit: Option<PathBuf>) -> PathBuf {
    explicit.unwrap_or_else(|| loaded.dir.join(".neurospec"))
}

fn plan_command(path: &Path, dot: bool, cache: Option<PathBuf>) -> Result<()> {
    let (loaded, resolved) = load_checked(path)?;
    let plan = plan::compile(&loaded, &resolved);
    let store = Store::open(&cache_dir(&loaded, cache))?;
    let states = exec::states(&plan, &store)?;
    if dot {
        let labels: Vec<String> = states.iter().map(|(_, s)| s.clone().unwrap_or_else(|| "cached".into())).collect();
        print!("{}", plan.dot(Some(&labels)));
        return Ok(());
    }
    let width = plan.order.iter().map(|&i| plan.node(i).id.len()).max().unwrap_or(0);
    let mut stale = 0;
    for (i, state) in &states {
        let node = plan.node(*i);
        stale += usize::from(state.is_some());
        println!("{:<width$}  {}", node.id, state.as_deref().unwrap_or("cached"));
    }
    println!("{} stages: {} cached, {stale} stale", states.len(), states.len() - stale);
    Ok(())
}

fn run(path: &Path, jobs: Option<usize>, cache: Option<PathBuf>, keep_going: bool, json: bool) -> Result<()> {
    let started = Instant::now();
    if jobs == Some(0) {
        return Err(Error::Usage("-j must be at least 1".into()));
    }
    let (loaded, resolved) = load_checked(path)?;
    let plan = plan::compile(&loaded, &resolved);
    let store = Store::open(&cache_dir(&loaded, cache))?;
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
    let executed = report.count(|o| matches!(o, Outcome::Executed(_)));
    let cached = report.count(|o| matches!(o, Outcome::Cached(_)));
    let skipped = report.count(|o| matches!(o, Outcome::Skipped));
    let output_dir = if failures.is_empty() {
        let dir = outputs::publish(&plan, &store, &report)?;
        crate::report::publish(&dir, &loaded, &plan, &report, started.elapsed().as_secs_f64())?;
        Some(dir)
    } else {
        None
    };
    let wall = started.elapsed().as_secs_f64();
    if json {
        let summary = serde_json::json!({
            "stages": plan.order.len(),
            "executed": executed,
            "cached": cached,
            "failed": failures.len(),
            "skipped": skipped,
            "executed_stages": report.executed(),
            "output_dir": output_dir.as_ref().map(|d| d.display().to_string()),
            "wall_seconds": wall,
        });
        println!("{summary}");
    } else if let Some(dir) = &output_dir {
        eprintln!(
            "{} stages: {executed} executed, {cached} cached in {wall:.2} s; outputs in {}",
            plan.order.len(),
            dir.display()
        );
    }
    if failures.is_empty() { Ok(()) } else { Err(Error::Stages(failures)) }
}

/// The synthetic voxelwise study of `benches/voxelwise.py` (the script builds the same recipe in
/// numpy): an ellipsoid mask with semi-axes (35.4, 43.8, 35.4)·∛(voxels/230031) voxels (230,031
/// voxels at scale 1, about an MNI 2 mm brain), per subject white noise on the grid smoothed by
/// [1, 2, 1]/4 twice along each axis (zero outside the grid), group 1 = the first 31/49 of the
/// subjects with +0.15 (about one noise SD) in a sphere of radius 4 voxels 10 voxels right of the
/// centre; covariates age ~ N(40, 10) and sex = i mod 2. Two-sample test, 26-connectivity,
/// cluster-forming two-sided p = 0.001. Only `fit` is timed. Prints one JSON line.
fn bench_voxelwise(
    subjects: usize,
    voxels: usize,
    permutations: usize,
    covariates: usize,
    seed: u64,
    jobs: Option<usize>,
) -> Result<()> {
    use crate::imaging::regions::Grid;
    use crate::stats::rng::Rng;
    use crate::stats::voxelwise::{
        ClusterSettings, ClusterThreshold, Connectivity, Covariates, Design, MaskedGrid, Settings, Tail, fit,
    };
    if subjects < 6 || covariates > 2 || voxels == 0 {
        return Err(Error::Usage("bench-voxelwise: --subjects ≥ 6, --covariates 0..=2, --voxels ≥ 1".into()));
    }
    let scale = (voxels as f64 / 230_031.0).cbrt();
    let axes = [35.4 * scale, 43.8 * scale, 35.4 * scale];
    let centre = axes.map(|a| a.ceil() + 1.0);
    let shape = axes.map(|a| 2 * a.ceil() as usize + 3);
    let grid = Grid { shape, affine: [[-2.0, 0.0, 0.0, 90.0], [0.0, 2.0, 0.0, -126.0], [0.0, 0.0, 2.0, -72.0]] };
    let mut inside = vec![0.0; grid.len()];
    let mut blob = vec![false; grid.len()];
    for k in 0..shape[2] {
        for j in 0..shape[1] {
            for i in 0..shape[0] {
                let d = [i as f64 - centre[0], j as f64 - centre[1], k as f64 - centre[2]];
                let e = (d[0] / axes[0]).powi(2) + (d[1] / axes[1]).powi(2) + (d[2] / axes[2]).powi(2);
                inside[grid.index(i, j, k)] = if e <= 1.0 { 1.0 } else { 0.0 };
                blob[grid.index(i, j, k)] = (d[0] - 10.0).powi(2) + d[1].powi(2) + d[2].powi(2) <= 16.0;
            }
        }
    }
    let mask = MaskedGrid::from_mask(grid.clone(), &inside)?;
    let v = mask.len();
    let group: Vec<bool> = (0..subjects).map(|i| i < (subjects * 31).div_ceil(49)).collect();
    let mut y = vec![0.0; subjects * v];
    let mut volume = vec![0.0; grid.len()];
    let mut scratch = vec![0.0; grid.len()];
    for (s, &in_group) in group.iter().enumerate() {
        let mut rng = Rng::derived(seed, &format!("bench-voxelwise/subject/{s}"));
        volume.iter_mut().for_each(|x| *x = rng.normal_fast());
        for axis in 0..3 {
            for _ in 0..2 {
                smooth_axis(&volume, &mut scratch, shape, axis);
                std::mem::swap(&mut volume, &mut scratch);
            }
        }
        for (m, &flat) in mask.voxels.iter().enumerate() {
            y[m * subjects + s] = volume[flat] + if in_group && blob[flat] { 0.15 } else { 0.0 };
        }
    }
    let mut rng = Rng::derived(seed, "bench-voxelwise/covariates");
    let age: Vec<f64> = (0..subjects).map(|_| 40.0 + 10.0 * rng.normal()).collect();
    let sex: Vec<f64> = (0..subjects).map(|i| (i % 2) as f64).collect();
    let names = ["age", "sex"][..covariates].iter().map(|s| s.to_string()).collect();
    let values = [age, sex][..covariates].concat();
    let design = Design::TwoSample { group, covariates: Covariates { names, values } };
    let settings = Settings {
        permutations,
        seed,
        tail: Tail::TwoSided,
        cluster: Some(ClusterSettings {
            threshold: ClusterThreshold::P(0.001),
            connectivity: Connectivity::Corners26,
            mask: &mask,
        }),
    };
    let threads = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Usage(format!("cannot start {threads} threads: {e}")))?;
    let started = Instant::now();
    let result = pool.install(|| fit(&y, subjects, &design, &settings, &|_| {}))?;
    let seconds = started.elapsed().as_secs_f64();
    let clusters = result.clusters.as_ref().map(|c| c.clusters.as_slice()).unwrap_or_default();
    let summary = serde_json::json!({
        "engine": "neurospec",
        "seconds": seconds,
        "threads": threads,
        "subjects": subjects,
        "voxels": v,
        "permutations": permutations,
        "covariates": covariates,
        "max_abs_t": result.t.iter().fold(0.0f64, |m, t| m.max(t.abs())),
        "voxels_p_fwe_05": result.p_fwe.iter().filter(|p| **p <= 0.05).count(),
        "cluster_t_threshold": result.clusters.as_ref().map(|c| c.t_threshold),
        "clusters": clusters.len(),
        "largest_cluster": clusters.first().map(|c| c.voxels.len()),
        "largest_cluster_p_fwe": clusters.first().map(|c| c.p_fwe),
    });
    println!("{summary}");
    Ok(())
}

/// `out` = `input` convolved with [1, 2, 1]/4 along `axis` (zero outside the grid).
fn smooth_axis(input: &[f64], out: &mut [f64], shape: [usize; 3], axis: usize) {
    let stride = [1, shape[0], shape[0] * shape[1]][axis];
    let len = shape[axis];
    for (flat, o) in out.iter_mut().enumerate() {
        let position = (flat / stride) % len;
        let before = if position > 0 { input[flat - stride] } else { 0.0 };
        let after = if position + 1 < len { input[flat + stride] } else { 0.0 };
        *o = 0.25 * before + 0.5 * input[flat] + 0.25 * after;
    }
}
