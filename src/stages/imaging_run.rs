//! One subject's run: region sets on its grid, region means while decompressing, denoising,
//! and the connectivity edges the study asks for. Inputs (by path): `bold`, optionally
//! `confounds`, and the region images. Outputs: `series` (TSV), `edges` (TSV: edge, value;
//! empty when the run is excluded), `report` (JSON: volumes, non-steady-state volumes dropped, volumes censored, kept, status,
//! voxel counts), `motion` (TSV, per volume: framewise displacement and whether it was kept,
//! dropped as non-steady-state or censored), `regions` (TSV: each region's label in `labels`, set,
//! voxel counts and centroid in world mm on the BOLD grid) and `labels` (NIfTI: the resampled
//! regions as labels on the BOLD grid, a later region overwriting an earlier one where they
//! overlap), with `reference` (the first run of each distinct BOLD grid) `boldref` (NIfTI: the
//! mean of the volumes after the non-steady-state ones, before censoring and denoising, with the
//! BOLD image's xform code; the report draws the regions over it), and with seeds `seedmaps`: each seed's Fisher-z map at the mask's voxels (input `seedmask`, on
//! the BOLD grid), encoded by [`encode_maps`], and each map as a NIfTI image (`map:SEED`;
//! empty when the run is excluded). Published beside the series: `relmat` (BEP017: the square
//! Pearson correlation matrix of every extracted region, first column `region` naming the row's
//! region; empty when the run is excluded), and the JSON sidecars `series_json` and
//! `relmat_json`: repetition time and sampling frequency, the denoising (strategy, regressors,
//! filter, detrend, standardisation), the non-steady-state and censored volumes (0-based
//! indices into the image) and how many were kept; the series' sidecar describes each column,
//! the matrix's carries BEP017's `Measure`, `Weighted`, `Directed`, `ValidDiagonal`,
//! `StorageFormat`.

use super::{Context, Outputs};
use crate::error::{Error, Result};
use crate::imaging::connectivity::pearson;
use crate::imaging::regions::{Grid, Region, RegionSources, Resampling};
use crate::imaging::run::{MatrixMeasure, Processed, RunSettings, Sidecar, VolumeCounts, process_run};
use crate::spec::Denoise;
use crate::tables::{Cell, TsvWriter};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub const VERSION: u32 = 7;
/// Input names this stage reads (`*` ends a family, e.g. `table:*`).
pub const INPUTS: &[&str] = &["bold", "confounds", "seedmask", "region:*"];
/// Output names this stage writes (`*` ends a family).
pub const OUTPUTS: &[&str] = &[
    "series",
    "edges",
    "report",
    "seedmaps",
    "relmat",
    "series_json",
    "relmat_json",
    "map:*",
    "motion",
    "regions",
    "labels",
    "boldref",
];

#[derive(Debug, Serialize, Deserialize)]
pub struct Params {
    pub subject: String,
    /// Region sets; file paths are input names.
    pub sets: Vec<(String, RegionSources)>,
    pub denoise: Denoise,
    /// Repetition time from the sidecar (s).
    pub tr: Option<f64>,
    pub edges: Vec<(String, String)>,
    pub fisher_z: bool,
    /// Seeds of seed-to-voxel maps (region names).
    #[serde(default)]
    pub seed_maps: Vec<String>,
    /// This run stands for its BOLD grid: it also writes `boldref`, its mean volume.
    #[serde(default)]
    pub reference: bool,
}

/// Seed maps as bytes: u32 seeds, u32 voxels (little-endian), then f32 values seed by seed.
pub fn encode_maps(maps: &[Vec<f64>]) -> Vec<u8> {
    let voxels = maps.first().map_or(0, Vec::len);
    let mut out = Vec::with_capacity(8 + 4 * maps.len() * voxels);
    out.extend_from_slice(&(maps.len() as u32).to_le_bytes());
    out.extend_from_slice(&(voxels as u32).to_le_bytes());
    for map in maps {
        for v in map {
            out.extend_from_slice(&(*v as f32).to_le_bytes());
        }
    }
    out
}

/// Inverse of [`encode_maps`]; empty bytes (an excluded run) give no maps.
pub fn decode_maps(bytes: &[u8]) -> Result<Vec<Vec<f64>>> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let word = |i: usize| -> Option<u32> { Some(u32::from_le_bytes(bytes.get(4 * i..4 * i + 4)?.try_into().ok()?)) };
    let bad = || Error::data("a stored seed map is truncated; delete the cache (.neurospec) to recompute it");
    let (seeds, voxels) = (word(0).ok_or_else(bad)? as usize, word(1).ok_or_else(bad)? as usize);
    if bytes.len() != 8 + 4 * seeds * voxels {
        return Err(bad());
    }
    Ok((0..seeds)
        .map(|s| {
            (0..voxels)
                .map(|v| {
                    let at = 8 + 4 * (s * voxels + v);
                    f64::from(f32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")))
                })
                .collect()
        })
        .collect())
}

/// The run's report: volumes in the image, non-steady-state volumes dropped, volumes censored,
/// volumes kept, status, and each region's voxel counts.
fn run_report(subject: &str, counts: &VolumeCounts, status: &str, regions: Vec<serde_json::Value>) -> Vec<u8> {
    let report = serde_json::json!({
        "subject": subject, "volumes": counts.volumes, "dummy_scans": counts.dummy_scans,
        "censored": counts.censored, "kept": counts.kept, "status": status, "regions": regions,
    });
    serde_json::to_vec_pretty(&report).expect("json")
}

/// Per volume (from 0): framewise displacement (mm; `n/a` without the column) and status.
fn motion_tsv(motion: &crate::imaging::run::Motion) -> Vec<u8> {
    let mut table = TsvWriter::new(&["volume", "framewise_displacement", "status"]);
    for v in 0..motion.dummy.len() {
        let status = if motion.dummy[v] {
            "non-steady-state"
        } else if motion.censored[v] {
            "censored"
        } else {
            "kept"
        };
        let fd = motion.fd.as_ref().map_or(f64::NAN, |fd| fd[v]);
        table.row(&[Cell::Int(v as i64), Cell::Num(fd), Cell::Text(status)]);
    }
    table.finish().into_bytes()
}

/// Per region: its label in the label image (1-based, in extraction order), set, voxels before
/// and after resampling, and the centroid of its voxels on the BOLD grid in world coordinates (mm).
fn regions_tsv(regions: &[Region], sets: &[String], grid: &Grid) -> Vec<u8> {
    let mut table = TsvWriter::new(&["label", "region", "set", "voxels_before", "voxels", "x", "y", "z"]);
    let (nx, ny) = (grid.shape[0], grid.shape[1]);
    for (i, r) in regions.iter().enumerate() {
        let mut sum = [0.0; 3];
        for &v in &r.voxels {
            let v = v as usize;
            let xyz = grid.world(v % nx, v / nx % ny, v / (nx * ny));
            (0..3).for_each(|c| sum[c] += xyz[c]);
        }
        let n = r.voxels.len() as f64;
        table.row(&[
            Cell::Int(i as i64 + 1),
            Cell::Text(&r.name),
            Cell::Text(&sets[i]),
            Cell::Int(r.voxels_before as i64),
            Cell::Int(r.voxels.len() as i64),
            Cell::Num(sum[0] / n),
            Cell::Num(sum[1] / n),
            Cell::Num(sum[2] / n),
        ]);
    }
    table.finish().into_bytes()
}

/// The regions as one label image on the BOLD grid (NIfTI, gzip): region `i` has label `i + 1`.
fn label_image(regions: &[Region], grid: &Grid) -> Result<Vec<u8>> {
    let mut labels = vec![0f32; grid.len()];
    for (i, r) in regions.iter().enumerate() {
        for &v in &r.voxels {
            labels[v as usize] = (i + 1) as f32;
        }
    }
    write_nifti(grid, &labels, crate::imaging::nifti::Coding::PLAIN)
}

/// A 3D image on the BOLD grid as NIfTI bytes (gzip).
fn write_nifti(grid: &Grid, values: &[f32], coding: crate::imaging::nifti::Coding) -> Result<Vec<u8>> {
    let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let path = dir.path().join("image.nii.gz");
    crate::imaging::nifti::write_f32_coded(&path, &grid.shape, grid.affine, None, values, coding)?;
    std::fs::read(&path).map_err(|e| Error::io(&path, e))
}

/// The mask's voxels (flat indices) on the BOLD grid.
pub fn mask_voxels(mask: &std::path::Path, grid: &crate::imaging::regions::Grid) -> Result<Vec<usize>> {
    let (header, values) = crate::imaging::nifti::read_3d(mask)?;
    let mask_grid = crate::imaging::regions::Grid::of(&header);
    if !mask_grid.matches(grid, 1e-3) {
        return Err(Error::data(format!(
            "{}: the mask's grid {:?} differs from the BOLD grid {:?}; resample the mask to the BOLD space",
            mask.display(),
            mask_grid.shape,
            grid.shape
        )));
    }
    let voxels: Vec<usize> = (0..values.len()).filter(|&v| values[v] != 0.0 && values[v].is_finite()).collect();
    if voxels.is_empty() {
        return Err(Error::data(format!("{}: the mask has no non-zero voxel", mask.display())));
    }
    Ok(voxels)
}

fn with_paths(sources: &RegionSources, ctx: &Context<'_>) -> Result<RegionSources> {
    let path = |p: &PathBuf| -> Result<PathBuf> { Ok(ctx.path(&p.to_string_lossy())?.to_path_buf()) };
    Ok(RegionSources {
        atlas: match &sources.atlas {
            Some((p, table)) => Some((path(p)?, table.clone())),
            None => None,
        },
        include: sources.include.clone(),
        maps: match &sources.maps {
            Some((p, names, rule)) => Some((path(p)?, names.clone(), *rule)),
            None => None,
        },
        spheres: sources.spheres.clone(),
        masks: sources.masks.iter().map(|(n, p)| Ok((n.clone(), path(p)?))).collect::<Result<_>>()?,
    })
}

pub fn run(ctx: &Context<'_>) -> Result<Outputs> {
    let p: Params = ctx.params()?;
    let bold = ctx.path("bold")?.to_path_buf();
    let (reader, grid) = crate::imaging::extract::open_bold(&bold)?;
    let mut regions = Vec::new();
    let mut set_of = Vec::new();
    for (set, sources) in &p.sets {
        let built = with_paths(sources, ctx)?.build(&grid, &bold, Resampling::Nearest)?;
        set_of.extend(std::iter::repeat_n(set.clone(), built.len()));
        regions.extend(built);
    }
    let region_outputs = [
        ("regions".to_string(), regions_tsv(&regions, &set_of, &grid)),
        ("labels".to_string(), label_image(&regions, &grid)?),
    ];
    let confounds = ctx.paths.get("confounds").cloned();
    let strategy = (!p.denoise.strategy.eq_ignore_ascii_case("none")).then_some(p.denoise.strategy.as_str());
    let settings = RunSettings {
        strategy,
        confounds: confounds.as_deref(),
        censoring: crate::imaging::denoise::Censoring {
            fd_threshold: p.denoise.fd_threshold,
            std_dvars_threshold: p.denoise.std_dvars_threshold,
            motion_outliers: p.denoise.motion_outliers,
            min_segment: p.denoise.min_segment,
        },
        dummy_scans: p.denoise.dummy_scans,
        band: p.denoise.band.map(|b| (b[0], b[1])),
        tr: p.tr,
        detrend: p.denoise.detrend,
        standardise: p.denoise.standardize,
        min_volumes: p.denoise.min_volumes,
        min_clean_seconds: p.denoise.min_clean_seconds,
    };
    let volumes_tr = reader.header.tr_seconds();
    // Seed maps keep the BOLD image's xform code (4 for MNI template spaces) and are estimates.
    let map_coding = crate::imaging::nifti::Coding::like(&reader.header, crate::imaging::nifti::Intent::ESTIMATE);
    let voxel_counts: Vec<serde_json::Value> = regions
        .iter()
        .map(
            |r| serde_json::json!({"region": r.name, "voxels_before": r.voxels_before, "voxels_after": r.voxels.len()}),
        )
        .collect();
    let reference_coding = crate::imaging::nifti::Coding::like(&reader.header, crate::imaging::nifti::Intent::NONE);
    let output = process_run(&bold, reader, &grid, &regions, &settings)
        .map_err(|e| Error::data(format!("subject {}: {}", p.subject, e)))?;
    let dummy = match &output {
        Processed::Cleaned(o) => &o.motion.dummy,
        Processed::Excluded { motion, .. } => &motion.dummy,
    };
    let reference = if p.reference {
        let mean = crate::imaging::extract::mean_volume(&bold, dummy)
            .map_err(|e| Error::data(format!("subject {}: {}", p.subject, e)))?;
        Some(("boldref".to_string(), write_nifti(&grid, &mean, reference_coding)?))
    } else {
        None
    };
    let region_outputs: Vec<(String, Vec<u8>)> = region_outputs.into_iter().chain(reference).collect();
    let output = match output {
        Processed::Cleaned(output) => output,
        Processed::Excluded { counts, reason, motion } => {
            let status = format!("excluded: {reason}");
            let report = run_report(&p.subject, &counts, &status, voxel_counts);
            let about = Sidecar { settings: &settings, tr: p.tr.or(volumes_tr), counts: &counts, status: &status };
            return Ok([
                ("motion".to_string(), motion_tsv(&motion)),
                ("series".to_string(), Vec::new()),
                ("edges".to_string(), b"edge\tvalue\n".to_vec()),
                ("report".to_string(), report),
                ("seedmaps".to_string(), Vec::new()),
                ("relmat".to_string(), Vec::new()),
                ("series_json".to_string(), about.series(None, &[])),
                ("relmat_json".to_string(), about.relmat(None, &MatrixMeasure::PEARSON)),
            ]
            .into_iter()
            .chain(p.seed_maps.iter().map(|s| (format!("map:{s}"), Vec::new())))
            .chain(region_outputs)
            .collect());
        }
    };
    let series = &output.series;
    let (n, r) = (series.volumes, series.regions());
    let matrix = pearson(&series.values, n, r);
    let index = |name: &str| series.names.iter().position(|x| x == name);
    let mut edges = String::from("edge\tvalue\n");
    for (a, b) in &p.edges {
        let (Some(i), Some(j)) = (index(a), index(b)) else {
            return Err(Error::data(format!("subject {}: edge {a}–{b} names a region not extracted", p.subject)));
        };
        let value = matrix[i * r + j];
        let value = if p.fisher_z { value.clamp(-1.0, 1.0).atanh() } else { value };
        edges.push_str(&format!("{}\t{value}\n", crate::design::edge_column(a, b)));
    }
    let report = run_report(&p.subject, &output.counts, "included", voxel_counts);
    let about = Sidecar { settings: &settings, tr: output.tr, counts: &output.counts, status: "included" };
    let series_json = about.series(Some(&output), &series.names);
    let relmat_json = about.relmat(Some(&output), &MatrixMeasure::PEARSON);
    let relmat = crate::imaging::connectivity::matrix_tsv(&series.names, &matrix).into_bytes();
    let mut images: Vec<(String, Vec<u8>)> = Vec::new();
    let seedmaps = if p.seed_maps.is_empty() {
        Vec::new()
    } else {
        let voxels = mask_voxels(ctx.path("seedmask")?, &grid)?;
        let seeds: Vec<usize> = p
            .seed_maps
            .iter()
            .map(|s| {
                index(s)
                    .ok_or_else(|| Error::data(format!("subject {}: seed `{s}` is not an extracted region", p.subject)))
            })
            .collect::<Result<_>>()?;
        let clean = crate::imaging::denoise::Clean {
            detrend: p.denoise.detrend,
            standardise: true,
            standardise_confounds: true,
            high_pass: p.denoise.band.map(|b| b[0]).filter(|v| *v > 0.0),
            low_pass: p.denoise.band.map(|b| b[1]).filter(|v| v.is_finite() && *v > 0.0),
            tr: p.tr.or(volumes_tr),
        };
        let maps = crate::imaging::run::seed_map_values(
            &bold,
            &voxels,
            series,
            &seeds,
            &output.confounds,
            output.n_confounds,
            output.keep.as_deref(),
            &clean,
        )
        .map_err(|e| Error::data(format!("subject {}: {}", p.subject, e)))?;
        // Each map also as a NIfTI image on the BOLD grid (0 outside the mask).
        let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
        for (name, map) in p.seed_maps.iter().zip(&maps) {
            let path = dir.path().join("map.nii.gz");
            crate::imaging::nifti::write_masked_f32(&path, grid.shape, grid.affine, &voxels, map, 0.0, map_coding)?;
            images.push((format!("map:{name}"), std::fs::read(&path).map_err(|e| Error::io(&path, e))?));
        }
        encode_maps(&maps)
    };
    let mut outputs = Outputs::from([
        ("series".to_string(), series.to_tsv().into_bytes()),
        ("edges".to_string(), edges.into_bytes()),
        ("report".to_string(), report),
        ("seedmaps".to_string(), seedmaps),
        ("motion".to_string(), motion_tsv(&output.motion)),
        ("relmat".to_string(), relmat),
        ("series_json".to_string(), series_json),
        ("relmat_json".to_string(), relmat_json),
    ]);
    outputs.extend(images);
    outputs.extend(region_outputs);
    Ok(outputs)
}
