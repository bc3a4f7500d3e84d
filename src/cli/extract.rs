//! `neurospec extract`: one subject's region time series (and optionally connectivity) from a
//! BOLD image and a label atlas, with optional nilearn-style denoising; many runs from a
//! manifest; every run of an fMRIPrep folder. The imaging work is the library's
//! (`imaging::run::process_run`, the same code the study stages run); this file reads the
//! command line's choices and writes the files.

use super::extract_batch::{extract_batch, extract_fmriprep};
use crate::error::{Error, Result};
use crate::imaging::connectivity::{
    centred, covariance_to_correlation, fisher_z, ledoit_wolf, matrix_tsv, partial_correlation, pearson,
};
use crate::imaging::extract::open_bold;
use crate::imaging::regions::{MapRule, MapRuleSpec, Region, RegionSources, Resampling, read_label_table};
use crate::imaging::run::{MatrixMeasure, Processed, RunSettings, Sidecar, clean_spec, process_run, seed_map_values};
use crate::store::write_atomic_in;
use std::path::{Path, PathBuf};

/// Connectivity measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Measure {
    /// Pearson correlation of the time series.
    Pearson,
    /// Correlation from the Ledoit–Wolf covariance of the z-scored series (nilearn "correlation").
    Correlation,
    /// Partial correlation from the Ledoit–Wolf covariance (nilearn "partial correlation").
    Partial,
}

/// `neurospec extract`'s command line.
#[derive(clap::Args)]
pub struct ExtractCommand {
    /// 4D BOLD image (.nii or .nii.gz).
    #[arg(long, required_unless_present_any = ["manifest", "fmriprep"])]
    pub bold: Option<PathBuf>,
    /// Many runs: a TSV with columns `bold`, `out` (and optionally `confounds`,
    /// `connectivity_out`), processed in parallel; replaces --bold/--out.
    #[arg(long, conflicts_with_all = ["bold", "out"])]
    pub manifest: Option<PathBuf>,
    /// Every run in an fMRIPrep derivatives folder (with --task, --space, --out-dir).
    #[arg(long, conflicts_with_all = ["bold", "out", "manifest"], requires_all = ["task", "space", "out_dir"])]
    pub fmriprep: Option<PathBuf>,
    /// fMRIPrep task label (e.g. rest).
    #[arg(long)]
    pub task: Option<String>,
    /// fMRIPrep output space (e.g. MNI152NLin2009cAsym).
    #[arg(long)]
    pub space: Option<String>,
    /// With --fmriprep: keep only images with this entity value, e.g. `res=2` (repeatable;
    /// also den, acq, ce, rec, dir, echo, run).
    #[arg(long = "entity", value_name = "KEY=VALUE", requires = "fmriprep")]
    pub entities: Vec<String>,
    /// Output folder for --fmriprep (BIDS-derivatives layout).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// With --fmriprep: a subject without a usable run is an `error` or is `skip`ped (and listed).
    #[arg(long, default_value = "error", value_parser = ["error", "skip"])]
    pub missing: String,
    /// Threads for --manifest (default: all cores).
    #[arg(short = 'j', long)]
    pub jobs: Option<usize>,
    /// Label image (integer labels; 0 = background).
    #[arg(long)]
    pub atlas: Option<PathBuf>,
    /// With --fmriprep: the `atlas-` label of output names (default: from the atlas file name,
    /// e.g. TemplateFlow's `atlas-` and `desc-`; letters and digits only).
    #[arg(long, requires = "fmriprep")]
    pub atlas_name: Option<String>,
    /// Probabilistic maps: a 4D image with one region per volume (needs --map-names).
    #[arg(long, requires = "map_names")]
    pub maps: Option<PathBuf>,
    /// Comma-separated region names, one per volume of --maps.
    #[arg(long, value_delimiter = ',')]
    pub map_names: Option<Vec<String>>,
    /// Probability (%) from which a voxel belongs to a map's region.
    #[arg(long, conflicts_with = "map_maxprob")]
    pub map_threshold: Option<f64>,
    /// Assign each voxel to its most probable map instead of thresholding.
    #[arg(long)]
    pub map_maxprob: bool,
    /// A sphere region, NAME:X,Y,Z:RADIUS in MNI mm (repeatable).
    #[arg(long = "sphere", value_name = "NAME:X,Y,Z:RADIUS")]
    pub spheres: Vec<String>,
    /// A binary mask region, NAME:PATH (repeatable).
    #[arg(long = "mask", value_name = "NAME:PATH")]
    pub masks: Vec<String>,
    /// Seed regions (comma-separated): connectivity is seeds × all other regions.
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<String>>,
    /// Write a Fisher-z seed-to-voxel NIfTI map per seed into this folder.
    #[arg(long)]
    pub seed_maps_out: Option<PathBuf>,
    /// Label table: `index name` per line (TSV with header, or whitespace separated).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// fMRIPrep confounds TSV.
    #[arg(long)]
    pub confounds: Option<PathBuf>,
    /// Confound strategy: 6P, 24P, 36P, acompcorN, gsr, or a comma-separated column list.
    #[arg(long)]
    pub strategy: Option<String>,
    /// Scrub volumes with framewise displacement above this (mm).
    #[arg(long)]
    pub fd_threshold: Option<f64>,
    /// Scrub volumes whose standardised DVARS (`std_dvars`) is above this.
    #[arg(long)]
    pub std_dvars_threshold: Option<f64>,
    /// Also scrub the volumes flagged in fMRIPrep's `motion_outlierNN` columns.
    #[arg(long)]
    pub motion_outliers: bool,
    /// Non-steady-state volumes to drop first: auto (fMRIPrep's `non_steady_state_outlierNN`
    /// columns), or a number of first volumes (0 keeps all).
    #[arg(long, default_value = "auto", value_parser = crate::imaging::run::DummyScans::parse)]
    pub dummy_scans: crate::imaging::run::DummyScans,
    /// Fail (or, for many runs, exclude) a run left with less clean data than this (s).
    #[arg(long)]
    pub min_clean_seconds: Option<f64>,
    /// Fewest volumes that must survive scrubbing.
    #[arg(long, default_value_t = crate::imaging::run::DEFAULT_MIN_VOLUMES)]
    pub min_volumes: usize,
    /// After scrubbing, also drop kept segments shorter than this many volumes.
    #[arg(long, default_value_t = 5)]
    pub min_segment: usize,
    /// Band-pass in Hz: high-pass cut-off and low-pass cut-off (0 or inf to omit one).
    #[arg(long, num_args = 2, value_names = ["HIGH_PASS", "LOW_PASS"])]
    pub band: Option<Vec<f64>>,
    /// Repetition time in seconds (default: from the image header).
    #[arg(long)]
    pub tr: Option<f64>,
    /// Do not remove linear trends (on by default whenever any cleaning is requested).
    #[arg(long)]
    pub no_detrend: bool,
    /// Do not z-score the cleaned series (on by default whenever any cleaning is requested).
    #[arg(long)]
    pub no_standardize: bool,
    /// Refuse to resample an atlas that is not on the BOLD grid.
    #[arg(long)]
    pub no_resample: bool,
    /// Output time series TSV (one column per region, one row per retained volume).
    #[arg(long, required_unless_present_any = ["manifest", "fmriprep"])]
    pub out: Option<PathBuf>,
    /// Connectivity measure: pearson, correlation (Ledoit-Wolf) or partial (Ledoit-Wolf).
    #[arg(long, value_enum)]
    pub connectivity: Option<Measure>,
    /// Write Fisher z (atanh) instead of r.
    #[arg(long)]
    pub fisher_z: bool,
    /// Output connectivity matrix TSV.
    #[arg(long)]
    pub connectivity_out: Option<PathBuf>,
    /// Write each region's voxel count before and after resampling here.
    #[arg(long)]
    pub regions_out: Option<PathBuf>,
}

/// Run the command: one run, a manifest of runs, or an fMRIPrep folder.
pub fn run(command: ExtractCommand) -> Result<()> {
    let ExtractCommand {
        bold,
        manifest,
        fmriprep,
        task,
        space,
        entities,
        out_dir,
        missing,
        jobs,
        atlas,
        atlas_name,
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
        std_dvars_threshold,
        motion_outliers,
        dummy_scans,
        min_clean_seconds,
        min_volumes,
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
    } = command;
    let cleaning = confounds.is_some()
        || band.is_some()
        || fd_threshold.is_some()
        || std_dvars_threshold.is_some()
        || motion_outliers;
    for (flag, value) in [("--std-dvars-threshold", std_dvars_threshold), ("--min-clean-seconds", min_clean_seconds)] {
        if value.is_some_and(|v| !(v >= 0.0 && v.is_finite())) {
            return Err(Error::Usage(format!("{flag}: give a number, 0 or more")));
        }
    }
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
        censoring: crate::imaging::denoise::Censoring {
            fd_threshold,
            std_dvars_threshold,
            motion_outliers,
            min_segment,
        },
        dummy_scans,
        min_clean_seconds,
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
        connectivity,
        fisher_z,
        connectivity_out,
        regions_out,
        min_kept_fraction: 0.5,
        min_volumes,
    };
    // A band the run's sampling cannot carry is a mistake on the command line.
    if let (Some((high, low)), false) = (args.band, args.bold.as_os_str().is_empty()) {
        let tr = match args.tr {
            Some(tr) => Some(tr),
            None => crate::imaging::nifti::VolumeReader::open(&args.bold)?.header.tr_seconds(),
        };
        if high < 0.0 || low < 0.0 {
            return Err(Error::Usage(format!("--band {high} {low}: cut-offs are in Hz, 0 or more")));
        }
        // As `imaging::run::clean_spec` reads the band: 0 (or ∞ for the low-pass) omits a side.
        let clean = crate::imaging::run::clean_spec(false, false, Some((high, low)), tr);
        let problem = tr.and_then(|tr| crate::imaging::denoise::band_problem(clean.high_pass, clean.low_pass, tr));
        if let Some(problem) = problem {
            return Err(Error::Usage(format!("--band: {problem}")));
        }
    }
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    match (manifest, fmriprep) {
        (Some(manifest), _) => extract_batch(&args, &manifest, jobs),
        (None, Some(root)) => {
            let atlas_name = match (&atlas_name, args.atlas.as_ref().or(args.maps.as_ref().map(|m| &m.0))) {
                (Some(name), _) => crate::design::bids_label([name.as_str()]),
                (None, Some(file)) => super::extract_batch::atlas_label(file),
                (None, None) => "custom".to_string(),
            };
            let select = entities
                .iter()
                .map(|e| {
                    e.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .ok_or_else(|| Error::Usage(format!("--entity `{e}`: write KEY=VALUE, e.g. res=2")))
                })
                .collect::<Result<Vec<_>>>()?;
            extract_fmriprep(
                &args,
                &root,
                (task.as_deref().unwrap_or_default(), space.as_deref().unwrap_or_default(), &select),
                out_dir.as_deref().unwrap_or(Path::new(".")),
                &atlas_name,
                missing == "skip",
                jobs,
            )
        }
        (None, None) => extract(&args),
    }
}

/// One extraction, as the command line asked for it.
#[derive(Clone)]
pub struct ExtractArgs {
    pub bold: PathBuf,
    pub atlas: Option<PathBuf>,
    pub labels: Option<PathBuf>,
    /// Probabilistic maps: 4D image, one name per volume, and the rule that makes regions.
    pub maps: Option<(PathBuf, Vec<String>, MapRule)>,
    /// Spheres: name, centre (MNI mm), radius (mm).
    pub spheres: Vec<(String, [f64; 3], f64)>,
    /// Binary masks: name, image.
    pub masks: Vec<(String, PathBuf)>,
    /// Seed regions: connectivity becomes seeds × other regions (rectangular).
    pub seeds: Option<Vec<String>>,
    /// Write a Fisher-z seed-to-voxel map per seed region into this folder.
    pub seed_maps_out: Option<PathBuf>,
    pub confounds: Option<PathBuf>,
    pub strategy: Option<String>,
    pub censoring: crate::imaging::denoise::Censoring,
    pub dummy_scans: crate::imaging::run::DummyScans,
    pub min_clean_seconds: Option<f64>,
    pub band: Option<(f64, f64)>,
    pub tr: Option<f64>,
    pub detrend: bool,
    pub standardise: bool,
    pub resampling: Resampling,
    pub out: PathBuf,
    pub connectivity: Option<Measure>,
    pub fisher_z: bool,
    pub connectivity_out: Option<PathBuf>,
    pub regions_out: Option<PathBuf>,
    /// Warn when a region keeps less than this fraction of its voxels after resampling.
    pub min_kept_fraction: f64,
    /// Fewest volumes that must survive scrubbing.
    pub min_volumes: usize,
}

pub(super) fn write(path: &Path, text: &str) -> Result<()> {
    write_bytes(path, text.as_bytes())
}

fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    write_atomic_in(dir, path, bytes)
}

/// The command's regions, in order: atlas labels, probabilistic maps, spheres, masks. Names
/// must be unique across sources.
fn region_set(args: &ExtractArgs, grid: &crate::imaging::regions::Grid) -> Result<Vec<Region>> {
    let sources = RegionSources {
        atlas: match &args.atlas {
            Some(atlas) => Some((atlas.clone(), args.labels.as_deref().map(read_label_table).transpose()?)),
            None => None,
        },
        include: Vec::new(),
        maps: args.maps.as_ref().map(|(p, names, rule)| {
            let rule = match rule {
                MapRule::Threshold(t) => MapRuleSpec::Threshold(*t),
                MapRule::MaxProbability => MapRuleSpec::MaxProbability,
            };
            (p.clone(), names.clone(), rule)
        }),
        spheres: args.spheres.clone(),
        masks: args.masks.clone(),
    };
    let regions = sources.build(grid, &args.bold, args.resampling)?;
    if regions.is_empty() {
        return Err(Error::Usage("no regions: give --atlas, --maps, --sphere or --mask".into()));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(r) = regions.iter().find(|r| !seen.insert(r.name.clone())) {
        return Err(Error::Usage(format!("two regions are named `{}`; region names must be unique", r.name)));
    }
    Ok(regions)
}

pub fn extract(args: &ExtractArgs) -> Result<()> {
    if args.connectivity.is_some() != args.connectivity_out.is_some() {
        return Err(Error::Usage("--connectivity and --connectivity-out go together".into()));
    }
    let (reader, grid) = open_bold(&args.bold)?;
    let regions = region_set(args, &grid)?;
    for region in &regions {
        let kept = region.voxels.len() as f64 / region.voxels_before as f64;
        if kept < args.min_kept_fraction {
            eprintln!(
                "warning: region `{}` keeps {} of its {} voxels ({:.0}%) on the BOLD grid",
                region.name,
                region.voxels.len(),
                region.voxels_before,
                100.0 * kept
            );
        }
    }
    let settings = RunSettings {
        strategy: args.strategy.as_deref(),
        confounds: args.confounds.as_deref(),
        censoring: args.censoring,
        dummy_scans: args.dummy_scans,
        band: args.band,
        tr: args.tr,
        detrend: args.detrend,
        standardise: args.standardise,
        min_volumes: args.min_volumes,
        min_clean_seconds: args.min_clean_seconds,
    };
    let run = match process_run(&args.bold, reader, &grid, &regions, &settings)? {
        Processed::Cleaned(run) => run,
        Processed::Excluded { reason, .. } => {
            return Err(Error::data(format!("{}: excluded: {reason}", args.bold.display())));
        }
    };
    let counts = run.counts;
    if counts.dummy_scans > 0 || counts.censored > 0 {
        eprintln!(
            "{}: dropped {} non-steady-state volumes, censored {}, kept {} of {}",
            args.bold.display(),
            counts.dummy_scans,
            counts.censored,
            counts.kept,
            counts.volumes
        );
    }
    // The same sidecars as a study's runs: TR, denoising, dropped and censored volumes.
    let about = Sidecar { settings: &settings, tr: run.tr, counts: &run.counts, status: "included" };
    let series_json = about.series(Some(&run), &run.series.names);
    let relmat_json = args.connectivity.map(|m| about.relmat(Some(&run), &matrix_measure(m, args.fisher_z)));
    let (series, matrix, columns, keep, t) = (run.series, run.confounds, run.n_confounds, run.keep, run.counts.volumes);
    write(&args.out, &series.to_tsv())?;
    write_bytes(&sidecar_path(&args.out), &series_json)?;
    if let Some(path) = &args.regions_out {
        let mut text = String::from("region\tvoxels_before\tvoxels_after\n");
        for region in &regions {
            text.push_str(&format!("{}\t{}\t{}\n", region.name, region.voxels_before, region.voxels.len()));
        }
        write(path, &text)?;
    }
    let seed_rows: Option<Vec<usize>> = match &args.seeds {
        Some(names) => Some(
            names
                .iter()
                .map(|n| {
                    series.names.iter().position(|r| r == n).ok_or_else(|| {
                        Error::Usage(format!("seed `{n}` is not a region (regions: {})", series.names.join(", ")))
                    })
                })
                .collect::<Result<_>>()?,
        ),
        None => None,
    };
    if let (Some(rows), Some(measure), Some(path)) = (&seed_rows, args.connectivity, &args.connectivity_out) {
        if measure != Measure::Pearson {
            return Err(Error::Usage("seed × region matrices use --connectivity pearson".into()));
        }
        let (n, r) = (series.volumes, series.regions());
        let full = pearson(&series.values, n, r);
        let columns: Vec<usize> = (0..r).filter(|c| !rows.contains(c)).collect();
        let mut text = String::from("seed");
        for &c in &columns {
            text.push('\t');
            text.push_str(&series.names[c]);
        }
        text.push('\n');
        for &a in rows {
            text.push_str(&series.names[a]);
            for &b in &columns {
                let v = full[a * r + b];
                let v = if args.fisher_z { v.clamp(-1.0, 1.0).atanh() } else { v };
                text.push_str(&format!("\t{v}"));
            }
            text.push('\n');
        }
        write(path, &text)?;
    } else if let (Some(measure), Some(path)) = (args.connectivity, &args.connectivity_out) {
        let (n, r) = (series.volumes, series.regions());
        let matrix = match measure {
            Measure::Pearson => pearson(&series.values, n, r),
            Measure::Correlation => {
                covariance_to_correlation(&ledoit_wolf(&centred(&series.values, n, r, true), n, r).0, r)
            }
            Measure::Partial => {
                let (cov, _) = ledoit_wolf(&centred(&series.values, n, r, true), n, r);
                partial_correlation(&cov, r)
                    .ok_or_else(|| Error::data("the shrunk covariance is singular; partial correlation is undefined"))?
            }
        };
        let matrix = if args.fisher_z { fisher_z(&matrix, r) } else { matrix };
        write(path, &matrix_tsv(&series.names, &matrix))?;
        if let Some(json) = &relmat_json {
            write_bytes(&sidecar_path(path), json)?;
        }
    }
    if let Some(dir) = &args.seed_maps_out {
        let rows = seed_rows.clone().ok_or_else(|| Error::Usage("--seed-maps-out needs --seeds".into()))?;
        seed_maps(args, &grid, &series, &rows, &matrix, columns, keep.as_deref(), dir)?;
    }
    eprintln!(
        "{}: {} regions × {} volumes{} → {}",
        args.bold.display(),
        series.regions(),
        series.volumes,
        keep.as_ref().map(|k| format!(" ({} of {t} kept after scrubbing)", k.len())).unwrap_or_default(),
        args.out.display()
    );
    Ok(())
}

/// The JSON sidecar beside a TSV (`x_timeseries.tsv` → `x_timeseries.json`).
fn sidecar_path(tsv: &Path) -> std::path::PathBuf {
    tsv.with_extension("json")
}

/// BEP017's description of an `extract --connectivity` matrix.
fn matrix_measure(measure: Measure, fisher_z: bool) -> MatrixMeasure<'static> {
    let (name, description) = match (measure, fisher_z) {
        (Measure::Pearson, false) => return MatrixMeasure::PEARSON,
        (Measure::Pearson, true) => (
            "Pearson correlation, Fisher z",
            "Fisher z-transformed Pearson correlation of two regions' denoised mean BOLD series over the kept volumes (diagonal set to 0)",
        ),
        (Measure::Correlation, false) => (
            "Ledoit-Wolf correlation",
            "Correlation from the Ledoit-Wolf shrunk covariance of the z-scored denoised series (nilearn's \"correlation\")",
        ),
        (Measure::Correlation, true) => (
            "Ledoit-Wolf correlation, Fisher z",
            "Fisher z-transformed correlation from the Ledoit-Wolf shrunk covariance of the z-scored denoised series (diagonal set to 0)",
        ),
        (Measure::Partial, false) => (
            "partial correlation",
            "Partial correlation from the Ledoit-Wolf shrunk covariance of the z-scored denoised series (nilearn's \"partial correlation\")",
        ),
        (Measure::Partial, true) => (
            "partial correlation, Fisher z",
            "Fisher z-transformed partial correlation from the Ledoit-Wolf shrunk covariance (diagonal set to 0)",
        ),
    };
    MatrixMeasure { name, description, valid_diagonal: !fisher_z }
}

/// Fisher-z correlation of each seed's cleaned series with every voxel's, cleaned the same way.
/// Voxels: those non-zero and finite in the first volume (a brain-masked image's brain).
#[allow(clippy::too_many_arguments)]
fn seed_maps(
    args: &ExtractArgs,
    grid: &crate::imaging::regions::Grid,
    series: &crate::imaging::extract::TimeSeries,
    seeds: &[usize],
    confounds: &[f64],
    n_confounds: usize,
    keep: Option<&[usize]>,
    dir: &Path,
) -> Result<()> {
    let mut reader = crate::imaging::nifti::VolumeReader::open(&args.bold)?;
    let mut volume = vec![0.0; grid.len()];
    reader.next_volume(&mut volume)?;
    let voxels: Vec<usize> = (0..grid.len()).filter(|&v| volume[v] != 0.0 && volume[v].is_finite()).collect();
    let clean = clean_spec(args.detrend, true, args.band, args.tr.or(reader.header.tr_seconds()));
    let maps = seed_map_values(&args.bold, &voxels, series, seeds, confounds, n_confounds, keep, &clean)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for (&s, values) in seeds.iter().zip(&maps) {
        let path = dir.join(format!("{}_fisherz.nii.gz", series.names[s]));
        let coding = crate::imaging::nifti::Coding::like(&reader.header, crate::imaging::nifti::Intent::ESTIMATE);
        crate::imaging::nifti::write_masked_f32(&path, grid.shape, grid.affine, &voxels, values, 0.0, coding)?;
    }
    Ok(())
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
