//! One subject's run: region sets on its grid, region means while decompressing, denoising,
//! and the connectivity edges the study asks for. Inputs (by path): `bold`, optionally
//! `confounds`, and the region images. Outputs: `series` (TSV), `edges` (TSV: edge, value;
//! empty when the run is excluded), `report` (JSON: volumes, kept, status, voxel counts).

use super::{Context, Outputs};
use crate::error::{Error, Result};
use crate::imaging::command::{RunSettings, process_run};
use crate::imaging::connectivity::pearson;
use crate::imaging::regions::{RegionSources, Resampling};
use crate::spec::Denoise;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub const VERSION: u32 = 1;

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
    for (_, sources) in &p.sets {
        regions.extend(with_paths(sources, ctx)?.build(&grid, &bold, Resampling::Nearest)?);
    }
    let confounds = ctx.paths.get("confounds").cloned();
    let strategy = (!p.denoise.strategy.eq_ignore_ascii_case("none")).then_some(p.denoise.strategy.as_str());
    let settings = RunSettings {
        strategy,
        confounds: confounds.as_deref(),
        fd_threshold: p.denoise.fd_threshold,
        min_segment: p.denoise.min_segment,
        band: p.denoise.band.map(|b| (b[0], b[1])),
        tr: p.tr,
        detrend: p.denoise.detrend,
        standardise: p.denoise.standardize,
        min_volumes: p.denoise.min_volumes,
    };
    let volumes = reader.header.volumes();
    let voxel_counts: Vec<serde_json::Value> = regions
        .iter()
        .map(
            |r| serde_json::json!({"region": r.name, "voxels_before": r.voxels_before, "voxels_after": r.voxels.len()}),
        )
        .collect();
    let output = process_run(&bold, reader, &grid, &regions, &settings)
        .map_err(|e| Error::data(format!("subject {}: {}", p.subject, e.to_string().trim_start_matches("error: "))))?;
    let Some(output) = output else {
        let report = serde_json::json!({
            "subject": p.subject, "volumes": volumes, "kept": null,
            "status": format!("excluded: fewer than {} volumes after scrubbing", p.denoise.min_volumes),
            "regions": voxel_counts,
        });
        return Ok(Outputs::from([
            ("series".to_string(), Vec::new()),
            ("edges".to_string(), b"edge\tvalue\n".to_vec()),
            ("report".to_string(), serde_json::to_vec_pretty(&report).expect("json")),
        ]));
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
        edges.push_str(&format!("{}\t{value}\n", crate::spec::check::edge_column(a, b)));
    }
    let report = serde_json::json!({
        "subject": p.subject, "volumes": volumes, "kept": output.keep.as_ref().map_or(volumes, Vec::len),
        "status": "included", "regions": voxel_counts,
    });
    Ok(Outputs::from([
        ("series".to_string(), series.to_tsv().into_bytes()),
        ("edges".to_string(), edges.into_bytes()),
        ("report".to_string(), serde_json::to_vec_pretty(&report).expect("json")),
    ]))
}
