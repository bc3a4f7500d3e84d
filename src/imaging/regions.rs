//! Regions on the BOLD grid — one concept for label atlases, spheres, masks and probabilistic maps.
//!
//! Every region source is turned into the same thing: a named list of voxel indices on the grid
//! of the data (a [`Grid`]), with its voxel count before and after any resampling recorded. A
//! label image on another grid is resampled nearest-neighbour: each data voxel takes the label
//! of the source voxel whose centre is nearest to its own centre (world coordinates through both
//! affines; ties at exactly .5 round up, as `floor(x + 0.5)`).

use super::nifti::{Header, read_3d};
use crate::error::{Error, Result};
use std::path::Path;

/// A voxel grid: shape and voxel → world (mm) affine.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub shape: [usize; 3],
    pub affine: [[f64; 4]; 3],
}

impl Grid {
    pub fn of(header: &Header) -> Grid {
        Grid { shape: header.shape3(), affine: header.affine }
    }

    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Same shape and affines equal within `tolerance` (mm, elementwise).
    pub fn matches(&self, other: &Grid, tolerance: f64) -> bool {
        self.shape == other.shape
            && self.affine.iter().flatten().zip(other.affine.iter().flatten()).all(|(a, b)| (a - b).abs() <= tolerance)
    }

    pub fn world(&self, i: usize, j: usize, k: usize) -> [f64; 3] {
        let v = [i as f64, j as f64, k as f64];
        [0, 1, 2]
            .map(|r| self.affine[r][0] * v[0] + self.affine[r][1] * v[1] + self.affine[r][2] * v[2] + self.affine[r][3])
    }

    /// World (mm) → continuous voxel coordinates; None when the affine is singular.
    pub fn voxel(&self, xyz: [f64; 3]) -> Option<[f64; 3]> {
        let a = &self.affine;
        let m = [[a[0][0], a[0][1], a[0][2]], [a[1][0], a[1][1], a[1][2]], [a[2][0], a[2][1], a[2][2]]];
        let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
        if det.abs() < 1e-12 {
            return None;
        }
        let inv = [
            [
                (m[1][1] * m[2][2] - m[1][2] * m[2][1]) / det,
                (m[0][2] * m[2][1] - m[0][1] * m[2][2]) / det,
                (m[0][1] * m[1][2] - m[0][2] * m[1][1]) / det,
            ],
            [
                (m[1][2] * m[2][0] - m[1][0] * m[2][2]) / det,
                (m[0][0] * m[2][2] - m[0][2] * m[2][0]) / det,
                (m[0][2] * m[1][0] - m[0][0] * m[1][2]) / det,
            ],
            [
                (m[1][0] * m[2][1] - m[1][1] * m[2][0]) / det,
                (m[0][1] * m[2][0] - m[0][0] * m[2][1]) / det,
                (m[0][0] * m[1][1] - m[0][1] * m[1][0]) / det,
            ],
        ];
        let d = [xyz[0] - a[0][3], xyz[1] - a[1][3], xyz[2] - a[2][3]];
        Some([0, 1, 2].map(|r| inv[r][0] * d[0] + inv[r][1] * d[1] + inv[r][2] * d[2]))
    }

    pub fn index(&self, i: usize, j: usize, k: usize) -> usize {
        i + self.shape[0] * (j + self.shape[1] * k)
    }

    /// For each voxel of `data`, the voxel of this grid whose centre is nearest to its centre
    /// (world coordinates through both affines, `floor(x + 0.5)`), or None outside this grid.
    /// `path` names this grid's image in the error for a singular affine.
    pub fn nearest_sources(&self, data: &Grid, path: &Path) -> Result<Vec<Option<usize>>> {
        let mut out = vec![None; data.len()];
        for k in 0..data.shape[2] {
            for j in 0..data.shape[1] {
                for i in 0..data.shape[0] {
                    let v = self
                        .voxel(data.world(i, j, k))
                        .ok_or_else(|| Error::data(format!("{}: its affine is singular", path.display())))?;
                    let r = v.map(|c| (c + 0.5).floor());
                    if r.iter().zip(self.shape).all(|(c, n)| *c >= 0.0 && *c < n as f64) {
                        out[data.index(i, j, k)] = Some(self.index(r[0] as usize, r[1] as usize, r[2] as usize));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// A region: voxel indices (x fastest) on the data grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub name: String,
    pub voxels: Vec<u32>,
    /// Voxels in the region's own image before resampling (equal to `voxels.len()` when none).
    pub voxels_before: usize,
}

/// A label table: `index name` rows (TSV with a header, or whitespace-separated without one).
pub fn read_label_table(path: &Path) -> Result<LabelTable> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split(['\t', ' ']).filter(|f| !f.is_empty());
        let (Some(index), Some(name)) = (fields.next(), fields.next()) else {
            return Err(Error::data(format!("{}:{}: expected `index name`", path.display(), line_no + 1)));
        };
        match index.parse::<u32>() {
            Ok(i) => out.push((i, name.to_string())),
            Err(_) if line_no == 0 => continue, // header row
            Err(_) => {
                return Err(Error::data(format!(
                    "{}:{}: `{index}` is not a label index (a whole number)",
                    path.display(),
                    line_no + 1
                )));
            }
        }
    }
    if out.is_empty() {
        return Err(Error::data(format!(
            "{}: no labels; a label table has one `index name` row per region",
            path.display()
        )));
    }
    Ok(out)
}

/// How a region image on another grid is brought onto the data grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resampling {
    /// A grid mismatch beyond the tolerance is an error naming both files.
    Forbid,
    Nearest,
}

/// Affine tolerance (mm) under which two grids count as the same.
pub const GRID_TOLERANCE: f64 = 1e-3;

/// The label of each data voxel from a label image (resampled when needed).
fn labels_on_grid(
    labels: &Path,
    data: &Grid,
    data_path: &Path,
    resampling: Resampling,
) -> Result<(Vec<u32>, Vec<u32>)> {
    let (header, values) = read_3d(labels)?;
    let grid = Grid::of(&header);
    let to_label = |v: f64, at: usize| -> Result<u32> {
        if v < 0.0 || v.fract() != 0.0 || !v.is_finite() {
            return Err(Error::data(format!(
                "{}: voxel {at} has value {v}; a label image holds whole, non-negative numbers",
                labels.display()
            )));
        }
        Ok(v as u32)
    };
    let source: Vec<u32> = values.iter().enumerate().map(|(i, &v)| to_label(v, i)).collect::<Result<_>>()?;
    if grid.matches(data, GRID_TOLERANCE) {
        return Ok((source.clone(), source));
    }
    if resampling == Resampling::Forbid {
        return Err(Error::data(format!(
            "{} (shape {:?}) is not on the grid of {} (shape {:?}) within {GRID_TOLERANCE} mm; \
             allow resampling or resample the atlas first",
            labels.display(),
            grid.shape,
            data_path.display(),
            data.shape
        )));
    }
    let target = grid.nearest_sources(data, labels)?.iter().map(|src| src.map_or(0, |at| source[at])).collect();
    Ok((source, target))
}

/// Regions from a label image: one per entry of the label table (or per distinct non-zero
/// label, named by its number, when there is no table). A region with no voxel on the data grid
/// is an error naming it.
pub fn from_labels(
    labels: &Path,
    table: Option<&[(u32, String)]>,
    data: &Grid,
    data_path: &Path,
    resampling: Resampling,
) -> Result<Vec<Region>> {
    let (source, target) = labels_on_grid(labels, data, data_path, resampling)?;
    let entries: Vec<(u32, String)> = match table {
        Some(t) => t.iter().filter(|(i, _)| *i != 0).cloned().collect(),
        None => {
            let mut present: Vec<u32> = source.iter().copied().filter(|&v| v != 0).collect();
            present.sort_unstable();
            present.dedup();
            present.into_iter().map(|i| (i, i.to_string())).collect()
        }
    };
    let max = entries.iter().map(|(i, _)| *i).max().unwrap_or(0) as usize;
    let mut slot = vec![usize::MAX; max + 1];
    for (position, (index, _)) in entries.iter().enumerate() {
        slot[*index as usize] = position;
    }
    let mut before = vec![0usize; entries.len()];
    for &v in &source {
        if let Some(&s) = slot.get(v as usize)
            && s != usize::MAX
        {
            before[s] += 1;
        }
    }
    let mut voxels: Vec<Vec<u32>> = vec![Vec::new(); entries.len()];
    for (at, &v) in target.iter().enumerate() {
        if let Some(&s) = slot.get(v as usize)
            && s != usize::MAX
        {
            voxels[s].push(at as u32);
        }
    }
    let mut regions = Vec::with_capacity(entries.len());
    for ((index, name), (voxels, before)) in entries.into_iter().zip(voxels.into_iter().zip(before)) {
        if before == 0 {
            return Err(Error::data(format!(
                "{}: label {index} (`{name}`) from the label table has no voxel in the image",
                labels.display()
            )));
        }
        if voxels.is_empty() {
            return Err(Error::data(format!(
                "{}: region `{name}` (label {index}, {before} voxels) loses all its voxels when resampled \
                 onto the grid of {}",
                labels.display(),
                data_path.display()
            )));
        }
        regions.push(Region { name, voxels, voxels_before: before });
    }
    Ok(regions)
}

/// A sphere of `radius` mm around `centre` (world mm): the data voxels whose centres lie within.
pub fn sphere(name: &str, centre: [f64; 3], radius: f64, data: &Grid) -> Result<Region> {
    let mut voxels = Vec::new();
    for k in 0..data.shape[2] {
        for j in 0..data.shape[1] {
            for i in 0..data.shape[0] {
                let w = data.world(i, j, k);
                let d2: f64 = (0..3).map(|a| (w[a] - centre[a]).powi(2)).sum();
                if d2 <= radius * radius {
                    voxels.push(data.index(i, j, k) as u32);
                }
            }
        }
    }
    if voxels.is_empty() {
        return Err(Error::data(format!(
            "sphere `{name}` at {centre:?} mm with radius {radius} mm contains no voxel centre of the data grid"
        )));
    }
    let n = voxels.len();
    Ok(Region { name: name.to_string(), voxels, voxels_before: n })
}

/// A binary mask image (non-zero = in) as a region.
pub fn mask(name: &str, path: &Path, data: &Grid, data_path: &Path, resampling: Resampling) -> Result<Region> {
    let (source, target) = labels_on_grid(path, data, data_path, resampling).map_err(|e| match e {
        Error::Data(m) if m.contains("whole, non-negative") => {
            Error::data(format!("{}: a mask must hold 0 and 1 (or other whole numbers)", path.display()))
        }
        other => other,
    })?;
    let before = source.iter().filter(|&&v| v != 0).count();
    let voxels: Vec<u32> = target.iter().enumerate().filter(|(_, v)| **v != 0).map(|(i, _)| i as u32).collect();
    if voxels.is_empty() {
        return Err(Error::data(format!("mask `{name}` ({}) has no voxel on the data grid", path.display())));
    }
    Ok(Region { name: name.to_string(), voxels, voxels_before: before })
}

/// How probabilistic maps become regions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MapRule {
    /// Voxels whose probability is at least this many percent.
    Threshold(f64),
    /// Each voxel goes to the map with the highest probability (ties: the first map), if that
    /// probability is above zero.
    MaxProbability,
}

/// The map with the highest probability at voxel `at` (ties: the first) and that probability.
fn most_probable(volumes: &[Vec<f64>], at: usize) -> (usize, f64) {
    volumes.iter().enumerate().fold((0, f64::MIN), |acc, (m, v)| if v[at] > acc.1 { (m, v[at]) } else { acc })
}

/// Regions from a 4D probabilistic atlas (one volume per region, values in [0, 1] or [0, 100]).
pub fn from_probabilistic(
    maps: &Path,
    names: &[String],
    rule: MapRule,
    data: &Grid,
    data_path: &Path,
    resampling: Resampling,
) -> Result<Vec<Region>> {
    let mut reader = super::nifti::VolumeReader::open(maps)?;
    let grid = Grid::of(&reader.header);
    let count = reader.header.volumes();
    if count != names.len() {
        return Err(Error::data(format!(
            "{}: {count} probability maps but {} region names were given",
            maps.display(),
            names.len()
        )));
    }
    let mut volumes = Vec::with_capacity(count);
    let mut buffer = vec![0.0; grid.len()];
    while reader.next_volume(&mut buffer)? {
        volumes.push(buffer.clone());
    }
    let max = volumes.iter().flatten().fold(0.0f64, |a, &b| a.max(b));
    let scale = if max <= 1.0 { 100.0 } else { 1.0 }; // to percent
    // For each data voxel, the source voxel whose values it takes.
    let same = grid.matches(data, GRID_TOLERANCE);
    if !same && resampling == Resampling::Forbid {
        return Err(Error::data(format!(
            "{} (shape {:?}) is not on the grid of {} (shape {:?}); allow resampling or resample the maps first",
            maps.display(),
            grid.shape,
            data_path.display(),
            data.shape
        )));
    }
    let source_of: Vec<Option<usize>> =
        if same { (0..data.len()).map(Some).collect() } else { grid.nearest_sources(data, maps)? };
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); count];
    for (at, src) in source_of.iter().enumerate() {
        let Some(src) = *src else { continue };
        match rule {
            MapRule::Threshold(percent) => {
                for (m, volume) in volumes.iter().enumerate() {
                    if volume[src] * scale >= percent && volume[src] > 0.0 {
                        members[m].push(at as u32);
                    }
                }
            }
            MapRule::MaxProbability => {
                let (best, value) = most_probable(&volumes, src);
                if value > 0.0 {
                    members[best].push(at as u32);
                }
            }
        }
    }
    let before: Vec<usize> = (0..count)
        .map(|m| match rule {
            MapRule::Threshold(percent) => volumes[m].iter().filter(|&&p| p * scale >= percent && p > 0.0).count(),
            MapRule::MaxProbability => (0..grid.len())
                .filter(|&v| {
                    let (best, value) = most_probable(&volumes, v);
                    best == m && value > 0.0
                })
                .count(),
        })
        .collect();
    names
        .iter()
        .zip(members)
        .zip(before)
        .map(|((name, voxels), before)| {
            if voxels.is_empty() {
                Err(Error::data(format!(
                    "{}: region `{name}` has no voxel on the grid of {} under {rule:?} ({before} voxels on its own grid)",
                    maps.display(),
                    data_path.display()
                )))
            } else {
                Ok(Region { name: name.clone(), voxels, voxels_before: before })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Grid {
        Grid { shape: [4, 3, 2], affine: [[2.0, 0.0, 0.0, -4.0], [0.0, 2.0, 0.0, -2.0], [0.0, 0.0, 2.0, 0.0]] }
    }

    #[test]
    fn world_and_voxel_are_inverse() {
        let g = grid();
        let w = g.world(3, 1, 1);
        assert_eq!(w, [2.0, 0.0, 2.0]);
        assert_eq!(g.voxel(w).unwrap(), [3.0, 1.0, 1.0]);
    }

    #[test]
    fn spheres_take_voxel_centres_within_the_radius() {
        let g = grid();
        let s = sphere("s", [0.0, 0.0, 0.0], 2.0, &g).unwrap();
        // Centres within 2 mm of the origin: voxel (2,1,0) and its 5 face neighbours inside the
        // grid (the one below, k = −1, is outside).
        assert_eq!(s.voxels.len(), 6, "{:?}", s.voxels);
        assert!(sphere("far", [100.0, 0.0, 0.0], 2.0, &g).is_err());
    }

    #[test]
    fn probabilistic_maps_threshold_and_maxprob() {
        let dir = tempfile::tempdir().unwrap();
        let g = grid();
        let n = g.len();
        let mut data = vec![0.0f32; 2 * n];
        data[0] = 0.6; // map 0, voxel 0
        data[1] = 0.3;
        data[n + 1] = 0.5; // map 1, voxel 1
        data[n] = 0.2;
        let path = dir.path().join("maps.nii.gz");
        super::super::nifti::write_f32(&path, &[4, 3, 2, 2], g.affine, None, &data).unwrap();
        let names = vec!["lb".to_string(), "cm".to_string()];
        let t = from_probabilistic(&path, &names, MapRule::Threshold(25.0), &g, &path, Resampling::Forbid).unwrap();
        assert_eq!(t[0].voxels, vec![0, 1]);
        assert_eq!(t[1].voxels, vec![1]);
        let m = from_probabilistic(&path, &names, MapRule::MaxProbability, &g, &path, Resampling::Forbid).unwrap();
        assert_eq!(m[0].voxels, vec![0]);
        assert_eq!(m[1].voxels, vec![1]);
        let e = from_probabilistic(&path, &names, MapRule::Threshold(90.0), &g, &path, Resampling::Forbid).unwrap_err();
        assert!(e.to_string().contains("`lb`"), "{e}");
    }
}

/// A label table: (label index, region name) rows.
pub type LabelTable = Vec<(u32, String)>;

/// The sources of one region set, all resolved to paths.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct RegionSources {
    /// Label image and its table (index, name); None table = regions named by label number.
    pub atlas: Option<(std::path::PathBuf, Option<LabelTable>)>,
    /// Only these names from the atlas (empty = all).
    pub include: Vec<String>,
    pub maps: Option<(std::path::PathBuf, Vec<String>, MapRuleSpec)>,
    pub spheres: Vec<(String, [f64; 3], f64)>,
    pub masks: Vec<(String, std::path::PathBuf)>,
}

/// Serializable form of [`MapRule`].
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, PartialEq)]
pub enum MapRuleSpec {
    Threshold(f64),
    MaxProbability,
}

impl From<MapRuleSpec> for MapRule {
    fn from(r: MapRuleSpec) -> Self {
        match r {
            MapRuleSpec::Threshold(p) => MapRule::Threshold(p),
            MapRuleSpec::MaxProbability => MapRule::MaxProbability,
        }
    }
}

impl RegionSources {
    /// The regions on the data grid, in order: atlas labels, maps, spheres, masks.
    pub fn build(&self, data: &Grid, data_path: &Path, resampling: Resampling) -> Result<Vec<Region>> {
        let mut regions = Vec::new();
        if let Some((atlas, table)) = &self.atlas {
            let table: Option<Vec<(u32, String)>> = table.as_ref().map(|t| {
                t.iter().filter(|(_, n)| self.include.is_empty() || self.include.contains(n)).cloned().collect()
            });
            regions.extend(from_labels(atlas, table.as_deref(), data, data_path, resampling)?);
        }
        if let Some((path, names, rule)) = &self.maps {
            regions.extend(from_probabilistic(path, names, (*rule).into(), data, data_path, resampling)?);
        }
        for (name, centre, radius) in &self.spheres {
            regions.push(sphere(name, *centre, *radius, data)?);
        }
        for (name, path) in &self.masks {
            regions.push(mask(name, path, data, data_path, resampling)?);
        }
        Ok(regions)
    }
}
