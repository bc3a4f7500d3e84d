//! One run from image to cleaned region series: region means during decompression, the
//! confound strategy, scrubbing, nilearn-style cleaning, and seed-to-voxel maps. The study's
//! `imaging-run` stage and the `extract` command both call [`process_run`].

use super::connectivity::centred;
use super::denoise::{Clean, Confounds, Strategy, clean, scrub};
use super::extract::region_means;
use super::regions::Region;
use crate::error::{Error, Result};
use std::path::Path;

/// Fewest volumes a run must keep after scrubbing to be used (studies' `[denoise] min_volumes`
/// and `extract --min-volumes` default to it).
pub const DEFAULT_MIN_VOLUMES: usize = 50;

/// Cleaning settings from the command/study form: a band of (high-pass, low-pass) Hz where 0
/// or ∞ omits a side; confounds are always z-scored before regression (as nilearn).
pub fn clean_spec(detrend: bool, standardise: bool, band: Option<(f64, f64)>, tr: Option<f64>) -> Clean {
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
        return Err(Error::data("a confound strategy needs a confounds file"));
    }
    if settings.fd_threshold.is_some() && confounds.is_none() {
        return Err(Error::data("scrubbing needs a confounds file (for framewise_displacement)"));
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
