//! Region time series: the mean over each region's voxels, computed volume by volume while the
//! image is decompressed, so a 4D image is never held in memory.

use super::nifti::VolumeReader;
use super::regions::{Grid, Region};
use crate::error::{Error, Result};
use std::path::Path;

/// Region × time values.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSeries {
    pub names: Vec<String>,
    /// Row-major: `values[t * regions + r]`.
    pub values: Vec<f64>,
    pub volumes: usize,
    /// Repetition time (s) from the image header, if stated.
    pub tr: Option<f64>,
}

impl TimeSeries {
    pub fn regions(&self) -> usize {
        self.names.len()
    }

    /// One region's series.
    pub fn column(&self, r: usize) -> Vec<f64> {
        (0..self.volumes).map(|t| self.values[t * self.regions() + r]).collect()
    }

    /// Keep only the listed volumes (e.g. after scrubbing).
    pub fn select(&self, keep: &[usize]) -> TimeSeries {
        let r = self.regions();
        let mut values = Vec::with_capacity(keep.len() * r);
        for &t in keep {
            values.extend_from_slice(&self.values[t * r..(t + 1) * r]);
        }
        TimeSeries { names: self.names.clone(), values, volumes: keep.len(), tr: self.tr }
    }

    /// TSV: region names as header, one row per volume.
    pub fn to_tsv(&self) -> String {
        let mut out = self.names.join("\t") + "\n";
        let r = self.regions();
        for t in 0..self.volumes {
            for (i, v) in self.values[t * r..(t + 1) * r].iter().enumerate() {
                if i > 0 {
                    out.push('\t');
                }
                if v.is_nan() {
                    out.push_str(crate::tables::MISSING);
                } else {
                    out.push_str(&format!("{v}"));
                }
            }
            out.push('\n');
        }
        out
    }
}

/// Open a 4D image and return its reader and grid (regions must be built on this grid).
pub fn open_bold(path: &Path) -> Result<(VolumeReader, Grid)> {
    let reader = VolumeReader::open(path)?;
    if reader.header.dim.len() < 4 || reader.header.volumes() < 2 {
        return Err(Error::data(format!(
            "{}: expected a 4D image (x, y, z, time), found dimensions {:?}",
            path.display(),
            reader.header.dim
        )));
    }
    if reader.header.dim.len() > 4 && reader.header.dim[4..].iter().any(|&d| d > 1) {
        return Err(Error::data(format!(
            "{}: expected a 4D image, found {} dimensions {:?}",
            path.display(),
            reader.header.dim.len(),
            reader.header.dim
        )));
    }
    let grid = Grid::of(&reader.header);
    Ok((reader, grid))
}

/// The mean of every voxel over the volumes not dropped (`dropped[t]`, e.g. the non-steady-state
/// ones), before any cleaning: the run's reference image (as fMRIPrep's `boldref` averages the
/// steady-state volumes). Summed in f64 in volume order, so the result does not depend on
/// threads; a non-finite voxel stays non-finite.
pub fn mean_volume(path: &Path, dropped: &[bool]) -> Result<Vec<f32>> {
    let mut reader = VolumeReader::open(path)?;
    let mut volume = vec![0.0f64; reader.header.volume_len()];
    let mut sum = vec![0.0f64; volume.len()];
    let (mut t, mut used) = (0usize, 0usize);
    while reader.next_volume(&mut volume)? {
        if !dropped.get(t).copied().unwrap_or(false) {
            sum.iter_mut().zip(&volume).for_each(|(s, v)| *s += v);
            used += 1;
        }
        t += 1;
    }
    if used == 0 {
        return Err(Error::data(format!("{}: every volume is dropped; no reference image", path.display())));
    }
    Ok(sum.into_iter().map(|s| (s / used as f64) as f32).collect())
}

/// Mean of each region in every volume. A NaN or infinite voxel inside a region is an error
/// naming the voxel, volume and region.
pub fn region_means(mut reader: VolumeReader, grid: &Grid, regions: &[Region]) -> Result<TimeSeries> {
    let volumes = reader.header.volumes();
    let mut volume = vec![0.0f64; grid.len()];
    let mut values = Vec::with_capacity(volumes * regions.len());
    let mut t = 0;
    while reader.next_volume(&mut volume)? {
        for region in regions {
            let mut sum = 0.0;
            for &v in &region.voxels {
                sum += volume[v as usize];
            }
            if !sum.is_finite() {
                let bad = region.voxels.iter().find(|&&v| !volume[v as usize].is_finite()).copied().unwrap_or(0);
                let (i, j, k) = (
                    bad as usize % grid.shape[0],
                    (bad as usize / grid.shape[0]) % grid.shape[1],
                    bad as usize / (grid.shape[0] * grid.shape[1]),
                );
                return Err(Error::data(format!(
                    "{}: voxel ({i}, {j}, {k}) of region `{}` is {} in volume {}; \
                     mask such voxels out of the region or repair the image",
                    reader.path.display(),
                    region.name,
                    volume[bad as usize],
                    t + 1
                )));
            }
            values.push(sum / region.voxels.len() as f64);
        }
        t += 1;
    }
    Ok(TimeSeries {
        names: regions.iter().map(|r| r.name.clone()).collect(),
        values,
        volumes,
        tr: reader.header.tr_seconds(),
    })
}
