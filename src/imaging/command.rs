//! `neurospec extract`: one subject's region time series (and optionally connectivity) from a
//! BOLD image and a label atlas, with optional nilearn-style denoising.

use super::connectivity::{
    centred, covariance_to_correlation, fisher_z, ledoit_wolf, matrix_tsv, partial_correlation, pearson,
};
use super::denoise::{Clean, Confounds, Strategy, clean, scrub};
use super::extract::{open_bold, region_means};
use super::regions::{Resampling, from_labels, read_label_table};
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

pub struct ExtractArgs {
    pub bold: PathBuf,
    pub atlas: PathBuf,
    pub labels: Option<PathBuf>,
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

pub fn extract(args: &ExtractArgs) -> Result<()> {
    if args.connectivity.is_some() != args.connectivity_out.is_some() {
        return Err(Error::Usage("--connectivity and --connectivity-out go together".into()));
    }
    let (reader, grid) = open_bold(&args.bold)?;
    let table = args.labels.as_deref().map(read_label_table).transpose()?;
    let regions = from_labels(&args.atlas, table.as_deref(), &grid, &args.bold, args.resampling)?;
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
    let tr_header = reader.header.tr_seconds();
    let raw = region_means(reader, &grid, &regions)?;
    let t = raw.volumes;

    let strategy = args.strategy.as_deref().map(Strategy::parse).transpose()?;
    let confounds = args.confounds.as_deref().map(Confounds::read).transpose()?;
    if strategy.is_some() && confounds.is_none() {
        return Err(Error::Usage("--strategy needs --confounds".into()));
    }
    if args.fd_threshold.is_some() && confounds.is_none() {
        return Err(Error::Usage("--fd-threshold needs --confounds (for framewise_displacement)".into()));
    }
    if let Some(c) = &confounds
        && c.rows() != t
    {
        return Err(Error::data(format!(
            "{} has {} rows but {} has {t} volumes; they must describe the same run",
            c.path,
            c.rows(),
            args.bold.display()
        )));
    }
    let columns = strategy.as_ref().map(Strategy::columns).unwrap_or_default();
    let matrix = match &confounds {
        Some(c) if !columns.is_empty() => c.matrix(&columns)?,
        _ => Vec::new(),
    };
    let keep = match (args.fd_threshold, &confounds) {
        (Some(threshold), Some(c)) => Some(scrub(&c.framewise_displacement()?, threshold, args.min_segment)),
        _ => None,
    };
    let cleaning = strategy.is_some() || args.band.is_some() || keep.is_some() || args.detrend || args.standardise;
    let series = if cleaning {
        let spec = Clean {
            detrend: args.detrend,
            standardise: args.standardise,
            standardise_confounds: true,
            high_pass: args.band.map(|b| b.0).filter(|v| *v > 0.0),
            low_pass: args.band.map(|b| b.1).filter(|v| v.is_finite() && *v > 0.0),
            tr: args.tr.or(tr_header),
        };
        if let Some(keep) = &keep {
            let minimum = 10usize;
            if keep.len() < minimum {
                return Err(Error::data(format!(
                    "{}: only {} of {t} volumes survive scrubbing at FD > {} mm (need at least {minimum})",
                    args.bold.display(),
                    keep.len(),
                    args.fd_threshold.unwrap_or(0.0)
                )));
            }
        }
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
                args.bold.display(),
                series.names[r],
                series.volumes
            )));
        }
    }
    write(&args.out, &series.to_tsv())?;
    if let Some(path) = &args.regions_out {
        let mut text = String::from("region\tvoxels_before\tvoxels_after\n");
        for region in &regions {
            text.push_str(&format!("{}\t{}\t{}\n", region.name, region.voxels_before, region.voxels.len()));
        }
        write(path, &text)?;
    }
    if let (Some(measure), Some(path)) = (args.connectivity, &args.connectivity_out) {
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
