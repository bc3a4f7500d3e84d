//! `neurospec extract`: one subject's region time series (and optionally connectivity) from a
//! BOLD image and a label atlas, with optional nilearn-style denoising.

use super::connectivity::{
    centred, covariance_to_correlation, fisher_z, ledoit_wolf, matrix_tsv, partial_correlation, pearson,
};
use super::denoise::{Clean, Confounds, Strategy, clean, scrub};
use super::extract::{open_bold, region_means};
use super::regions::{MapRule, MapRuleSpec, Region, RegionSources, Resampling, read_label_table};
use crate::error::{Error, Result};
use crate::store::write_atomic_in;
use std::path::{Path, PathBuf};

/// Connectivity measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Pearson correlation of the time series.
    Pearson,
    /// Correlation from the Ledoit–Wolf covariance of the z-scored series (nilearn "correlation").
    Correlation,
    /// Partial correlation from the Ledoit–Wolf covariance (nilearn "partial correlation").
    Partial,
}

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
    pub fd_threshold: Option<f64>,
    pub min_segment: usize,
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
}

fn write(path: &Path, text: &str) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    write_atomic_in(dir, path, text.as_bytes())
}

/// The command's regions, in order: atlas labels, probabilistic maps, spheres, masks. Names
/// must be unique across sources.
fn region_set(args: &ExtractArgs, grid: &super::regions::Grid) -> Result<Vec<Region>> {
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

/// Many subjects at once: a manifest TSV with columns `bold` and `out`, and optionally
/// `confounds` and `connectivity_out`, one row per run; paths relative to the manifest. Runs
/// are processed in parallel on `jobs` threads; every failure is reported with its row.
pub fn extract_batch(template: &ExtractArgs, manifest: &Path, jobs: usize) -> Result<()> {
    let text = std::fs::read_to_string(manifest).map_err(|e| Error::io(manifest, e))?;
    let table = crate::tables::Tsv::parse(&text);
    let base = manifest.parent().unwrap_or(Path::new("."));
    let column = |name: &str| table.col(name);
    let (Some(bold), Some(out)) = (column("bold"), column("out")) else {
        return Err(Error::data(format!("{}: the manifest needs columns `bold` and `out`", manifest.display())));
    };
    let (confounds, connectivity_out) = (column("confounds"), column("connectivity_out"));
    let path = |row: &[String], c: Option<usize>| -> Option<PathBuf> {
        c.and_then(|c| row.get(c)).filter(|v| !v.is_empty()).map(|v| base.join(v))
    };
    let runs: Vec<ExtractArgs> = table
        .rows
        .iter()
        .map(|row| ExtractArgs {
            bold: base.join(&row[bold]),
            out: base.join(&row[out]),
            confounds: path(row, confounds).or_else(|| template.confounds.clone()),
            connectivity_out: path(row, connectivity_out).or_else(|| template.connectivity_out.clone()),
            ..template.clone()
        })
        .collect();
    let labels: Vec<String> = (0..runs.len()).map(|i| format!("{}:{}", manifest.display(), i + 2)).collect();
    run_all(&runs, &labels, jobs)
}

/// Run many extractions in parallel; every failure is reported with its label.
fn run_all(runs: &[ExtractArgs], labels: &[String], jobs: usize) -> Result<()> {
    use rayon::prelude::*;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| Error::Usage(format!("cannot start {jobs} threads: {e}")))?;
    let failures: Vec<String> = pool.install(|| {
        runs.par_iter()
            .zip(labels)
            .filter_map(|(run, label)| {
                extract(run).err().map(|e| format!("{label}: {}", e.to_string().trim_start_matches("error: ")))
            })
            .collect()
    });
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Data(format!("{} of {} runs failed:\n{}", failures.len(), runs.len(), failures.join("\n"))))
    }
}

/// Every run of `task` in `space` under an fMRIPrep folder, written BIDS-derivatives style:
/// `OUT/sub-XX/[ses-YY/]func/<entities>_atlas-NAME_timeseries.tsv` (and
/// `_desc-MEASURE_connectivity.tsv`). A subject without a usable run is an error unless
/// `skip_missing`, in which case it is listed as excluded.
#[allow(clippy::too_many_arguments)]
pub fn extract_fmriprep(
    template: &ExtractArgs,
    root: &Path,
    task: &str,
    space: &str,
    out_dir: &Path,
    atlas_name: &str,
    skip_missing: bool,
    jobs: usize,
) -> Result<()> {
    let found = super::discover::discover(root, task, space)?;
    if !found.subjects_without_runs.is_empty() {
        let list = found.subjects_without_runs.join(", ");
        if !skip_missing {
            return Err(Error::data(format!(
                "{}: no `task-{task}` run in `space-{space}` for {list}; use --missing skip to exclude them",
                root.display()
            )));
        }
        eprintln!("excluded (no run of task-{task} in space-{space}): {list}");
    }
    if found.runs.is_empty() {
        return Err(Error::data(format!("{}: no run of task-{task} in space-{space}", root.display())));
    }
    let measure = template.connectivity.map(|m| match m {
        Measure::Pearson => "pearson",
        Measure::Correlation => "correlation",
        Measure::Partial => "partialcorrelation",
    });
    let needs_confounds = template.strategy.is_some() || template.fd_threshold.is_some();
    let mut runs = Vec::new();
    let mut labels = Vec::new();
    for run in &found.runs {
        if needs_confounds && run.confounds.is_none() {
            return Err(Error::data(format!("{}: no confounds file beside it", run.bold.display())));
        }
        let mut folder = out_dir.join(format!("sub-{}", run.subject));
        if let Some(session) = &run.session {
            folder = folder.join(format!("ses-{session}"));
        }
        let folder = folder.join("func");
        runs.push(ExtractArgs {
            bold: run.bold.clone(),
            confounds: if needs_confounds { run.confounds.clone() } else { None },
            tr: template.tr.or(run.tr),
            out: folder.join(format!("{}_atlas-{atlas_name}_timeseries.tsv", run.prefix)),
            connectivity_out: measure
                .map(|m| folder.join(format!("{}_atlas-{atlas_name}_desc-{m}_connectivity.tsv", run.prefix))),
            ..template.clone()
        });
        labels.push(run.prefix.clone());
    }
    run_all(&runs, &labels, jobs)?;
    let description = serde_json::json!({
        "Name": format!("neurospec extract ({atlas_name})"),
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "neurospec", "Version": env!("CARGO_PKG_VERSION")}],
    });
    write(
        &out_dir.join("dataset_description.json"),
        &(serde_json::to_string_pretty(&description).expect("json") + "\n"),
    )
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
        fd_threshold: args.fd_threshold,
        min_segment: args.min_segment,
        band: args.band,
        tr: args.tr,
        detrend: args.detrend,
        standardise: args.standardise,
        min_volumes: 10,
    };
    let Some(run) = process_run(&args.bold, reader, &grid, &regions, &settings)? else {
        return Err(Error::data(format!(
            "{}: fewer than {} volumes survive scrubbing at FD > {} mm",
            args.bold.display(),
            settings.min_volumes,
            args.fd_threshold.unwrap_or(0.0)
        )));
    };
    let (series, matrix, columns, keep, t) = (run.series, run.confounds, run.n_confounds, run.keep, run.volumes);
    write(&args.out, &series.to_tsv())?;
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

/// Cleaning settings from the command/study form: a band of (high-pass, low-pass) Hz where 0
/// or ∞ omits a side; confounds are always z-scored before regression (as nilearn).
fn clean_spec(detrend: bool, standardise: bool, band: Option<(f64, f64)>, tr: Option<f64>) -> Clean {
    Clean {
        detrend,
        standardise,
        standardise_confounds: true,
        high_pass: band.map(|b| b.0).filter(|v| *v > 0.0),
        low_pass: band.map(|b| b.1).filter(|v| v.is_finite() && *v > 0.0),
        tr,
    }
}

/// How one run is cleaned.
pub struct RunSettings<'a> {
    pub strategy: Option<&'a str>,
    pub confounds: Option<&'a Path>,
    pub fd_threshold: Option<f64>,
    pub min_segment: usize,
    /// (high-pass, low-pass) in Hz; 0 or ∞ omits one side.
    pub band: Option<(f64, f64)>,
    /// Repetition time (s); default from the image header.
    pub tr: Option<f64>,
    pub detrend: bool,
    pub standardise: bool,
    /// Fewer volumes left after scrubbing → `Ok(None)`.
    pub min_volumes: usize,
}

/// A cleaned run.
pub struct RunOutput {
    pub series: super::extract::TimeSeries,
    /// Volumes in the image.
    pub volumes: usize,
    /// Volumes kept after scrubbing (None: all).
    pub keep: Option<Vec<usize>>,
    /// The confound matrix used (T × n_confounds, row-major).
    pub confounds: Vec<f64>,
    pub n_confounds: usize,
}

/// From an opened image and regions on its grid to cleaned region series. A region whose
/// series is constant is an error naming it. Returns `Ok(None)` when scrubbing leaves fewer
/// than `min_volumes` volumes.
pub fn process_run(
    bold: &Path,
    reader: super::nifti::VolumeReader,
    grid: &super::regions::Grid,
    regions: &[Region],
    settings: &RunSettings<'_>,
) -> Result<Option<RunOutput>> {
    let tr_header = reader.header.tr_seconds();
    let raw = region_means(reader, grid, regions)?;
    let t = raw.volumes;
    let strategy = settings.strategy.map(Strategy::parse).transpose()?.filter(|s| *s != Strategy::None);
    let confounds = settings.confounds.map(Confounds::read).transpose()?;
    if strategy.is_some() && confounds.is_none() {
        return Err(Error::Usage("a confound strategy needs a confounds file".into()));
    }
    if settings.fd_threshold.is_some() && confounds.is_none() {
        return Err(Error::Usage("scrubbing needs a confounds file (for framewise_displacement)".into()));
    }
    if let Some(c) = &confounds
        && c.rows() != t
    {
        return Err(Error::data(format!(
            "{} has {} rows but {} has {t} volumes; they must describe the same run",
            c.path,
            c.rows(),
            bold.display()
        )));
    }
    let columns = strategy.as_ref().map(Strategy::columns).unwrap_or_default();
    let matrix = match &confounds {
        Some(c) if !columns.is_empty() => c.matrix(&columns)?,
        _ => Vec::new(),
    };
    let keep = match (settings.fd_threshold, &confounds) {
        (Some(threshold), Some(c)) => Some(scrub(&c.framewise_displacement()?, threshold, settings.min_segment)),
        _ => None,
    };
    if keep.as_ref().is_some_and(|k| k.len() < settings.min_volumes) {
        return Ok(None);
    }
    let cleaning =
        strategy.is_some() || settings.band.is_some() || keep.is_some() || settings.detrend || settings.standardise;
    let series = if cleaning {
        let spec = clean_spec(settings.detrend, settings.standardise, settings.band, settings.tr.or(tr_header));
        clean(&raw, &matrix, columns.len(), keep.as_deref(), &spec)?
    } else {
        raw
    };
    for r in 0..series.regions() {
        let column = series.column(r);
        let first = column[0];
        if column.iter().all(|v| *v == first) {
            return Err(Error::data(format!(
                "{}: region `{}` has a constant time series ({} volumes); it cannot be correlated — \
                 check the atlas alignment or drop the region from the label table",
                bold.display(),
                series.names[r],
                series.volumes
            )));
        }
    }
    Ok(Some(RunOutput { series, volumes: t, keep, n_confounds: columns.len(), confounds: matrix }))
}

/// Fisher-z correlation of each seed's cleaned series with every voxel's, cleaned the same way.
/// Voxels: those non-zero and finite in the first volume (a brain-masked image's brain).
#[allow(clippy::too_many_arguments)]
fn seed_maps(
    args: &ExtractArgs,
    grid: &super::regions::Grid,
    series: &super::extract::TimeSeries,
    seeds: &[usize],
    confounds: &[f64],
    n_confounds: usize,
    keep: Option<&[usize]>,
    dir: &Path,
) -> Result<()> {
    let mut reader = super::nifti::VolumeReader::open(&args.bold)?;
    let mut volume = vec![0.0; grid.len()];
    reader.next_volume(&mut volume)?;
    let voxels: Vec<usize> = (0..grid.len()).filter(|&v| volume[v] != 0.0 && volume[v].is_finite()).collect();
    let clean = clean_spec(args.detrend, true, args.band, args.tr.or(reader.header.tr_seconds()));
    let maps = seed_map_values(&args.bold, &voxels, series, seeds, confounds, n_confounds, keep, &clean)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for (&s, values) in seeds.iter().zip(&maps) {
        let path = dir.join(format!("{}_fisherz.nii.gz", series.names[s]));
        super::nifti::write_masked_f32(&path, grid.shape, grid.affine, &voxels, values, 0.0)?;
    }
    Ok(())
}

/// Fisher-z correlation of each seed's cleaned series with the series of each voxel in
/// `voxels` (flat grid indices), cleaned the same way (same confounds, scrubbing and filter;
/// always standardised). One vector per seed, in `voxels` order.
#[allow(clippy::too_many_arguments)]
pub fn seed_map_values(
    bold: &Path,
    voxels: &[usize],
    series: &super::extract::TimeSeries,
    seeds: &[usize],
    confounds: &[f64],
    n_confounds: usize,
    keep: Option<&[usize]>,
    clean_settings: &Clean,
) -> Result<Vec<Vec<f64>>> {
    let mut reader = super::nifti::VolumeReader::open(bold)?;
    let mut volume = vec![0.0; reader.header.volume_len()];
    let t = reader.header.volumes();
    let mut values = Vec::with_capacity(t * voxels.len());
    while reader.next_volume(&mut volume)? {
        values.extend(voxels.iter().map(|&v| volume[v]));
    }
    let raw = super::extract::TimeSeries {
        names: voxels.iter().map(|v| v.to_string()).collect(),
        values,
        volumes: t,
        tr: reader.header.tr_seconds(),
    };
    let spec = Clean { standardise: true, ..clean_settings.clone() };
    let cleaned = clean(&raw, confounds, n_confounds, keep, &spec)?;
    let n = cleaned.volumes;
    let v_count = voxels.len();
    Ok(seeds
        .iter()
        .map(|&s| {
            let seed = centred(&series.column(s), n, 1, true);
            (0..v_count)
                .map(|j| {
                    let dot: f64 = seed.iter().enumerate().map(|(i, s)| s * cleaned.values[i * v_count + j]).sum();
                    (dot / (n as f64 - 1.0)).clamp(-1.0, 1.0).atanh()
                })
                .collect()
        })
        .collect())
}
