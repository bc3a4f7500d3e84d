//! A group-level analysis (see `stats::voxelwise` for the method): a two-sample, paired
//! (after − before, by sign-flipping) or correlation design, tested at every voxel of a seed's
//! seed-to-voxel maps (max-T and cluster-extent FWE) or at every listed connectome edge (max-T
//! FWE). Subjects: the analysis dataset's rows (after exclusions) whose runs were all usable;
//! the others are listed in `summary`. Inputs: `dataset`; voxelwise also `maps:KEY` per run
//! (KEY = `SUBJECT` or `SUBJECT/SESSION`), the mask (`mask`, by path) and optionally a label
//! atlas (`peak_atlas`, by path) for naming cluster peaks. Outputs: voxelwise `tmap`, `pfwe`
//! (NIfTI), `clusters` (TSV), with TFCE also `tfce` and `tfcepfwe` (NIfTI: the signed TFCE map,
//! `stats::tfce`, and its max-TFCE FWE p); region level `results` (TSV), with NBS also
//! `components` (TSV, `stats::nbs`); both `summary` (JSON) and, with categorical covariates,
//! `levels` (their coding; see `stages::covariates`). TFCE and NBS read each permutation's
//! t map through the engine's map-statistic hook, so they use exactly max-T's permutations.
//! Maps keep the mask's xform code (4 for MNI template spaces) and carry a NIfTI intent: t
//! (with the degrees of freedom in `intent_p1`), p-value, or estimate (TFCE).

use super::{Context, Outputs};
pub use crate::design::Level;
use crate::error::{Error, Result};
use crate::spec::GroupDesign;
use crate::stats::nbs::{Nbs, NbsStatistic};
use crate::stats::tfce::{Tfce, TfceParams};
use crate::stats::voxelwise::{
    self, ClusterSettings, ClusterThreshold, Connectivity, Covariates, Design, MaskedGrid, Settings, Tail,
};
use crate::tables::{Cell, TsvWriter};
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 3;
/// Input names this stage reads (`*` ends a family, e.g. `table:*`).
pub const INPUTS: &[&str] = &["dataset", "maps:*", "mask", "peak_atlas"];
/// Output names this stage writes (`*` ends a family).
pub const OUTPUTS: &[&str] =
    &["tmap", "pfwe", "clusters", "results", "summary", "tfce", "tfcepfwe", "components", "levels"];

#[derive(Debug, Serialize, Deserialize)]
pub struct Params {
    pub name: String,
    pub design: GroupDesign,
    pub level: Level,
    /// Map input keys per session used (voxelwise): `None` without sessions.
    pub sessions: Vec<Option<String>>,
    pub group: Option<String>,
    pub variable: Option<String>,
    pub covariates: Vec<String>,
    pub permutations: usize,
    pub seed: u64,
    pub tail: Tail,
    pub cluster_t: Option<f64>,
    pub cluster_p: f64,
    pub connectivity: u8,
    /// Exchangeability blocks: the column and how blocks are permuted (or signs flipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<(String, crate::stats::exchange::BlockPermutation)>,
    /// Label table of the peak atlas (index, name).
    pub peak_labels: Vec<(i64, String)>,
    /// Voxelwise TFCE (absent: none, and the fingerprint is as before TFCE existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tfce: Option<TfceParams>,
    /// Region-level NBS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbs: Option<NbsParams>,
}

/// The network-based statistic of a region-level analysis.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NbsParams {
    pub threshold_t: Option<f64>,
    pub threshold_p: Option<f64>,
    pub statistic: NbsStatistic,
    /// Each edge's two regions, in edge order.
    pub endpoints: Vec<(String, String)>,
}

/// Cluster-extent settings from a group analysis' spec: threshold as |t| or uncorrected p, and
/// the neighbourhood (6, 18, or otherwise 26).
pub fn cluster_settings(t: Option<f64>, p: f64, connectivity: u8, mask: &MaskedGrid) -> ClusterSettings<'_> {
    ClusterSettings {
        threshold: match t {
            Some(t) => ClusterThreshold::T(t),
            None => ClusterThreshold::P(p),
        },
        connectivity: match connectivity {
            6 => Connectivity::Faces6,
            18 => Connectivity::Edges18,
            _ => Connectivity::Corners26,
        },
        mask,
    }
}

fn key(subject: &str, session: &Option<String>) -> String {
    match session {
        Some(s) => format!("{subject}/{s}"),
        None => subject.to_string(),
    }
}

pub fn run(ctx: &Context<'_>) -> Result<Outputs> {
    let p: Params = ctx.params()?;
    let dataset = ctx.table("dataset")?;
    let (subjects, skipped, data) = match &p.level {
        Level::Voxel { seed, .. } => load_maps(ctx, &dataset, *seed, &p.sessions)?,
        Level::Edges(edges) => {
            let mut data = Vec::with_capacity(dataset.rows());
            for row in 0..dataset.rows() {
                data.push(
                    (0..p.sessions.len().max(1))
                        .map(|s| {
                            edges.iter().map(|(_, columns)| dataset.numeric(&columns[s]).map(|c| c[row])).collect()
                        })
                        .collect::<Result<Vec<Vec<f64>>>>()?,
                );
            }
            ((0..dataset.rows()).collect(), Vec::new(), data)
        }
    };
    let n = subjects.len();
    if n < 4 {
        return Err(Error::data(format!(
            "{}: {n} subjects with usable data; a group analysis needs at least 4",
            ctx.stage
        )));
    }
    let column = |name: &str| -> Result<Vec<f64>> {
        let values = dataset.numeric(name)?;
        Ok(subjects.iter().map(|&r| values[r]).collect())
    };
    let expanded =
        super::covariates::expand(&dataset, &super::covariates::parse(&p.covariates)?, &subjects, "analysis", false)
            .map_err(|e| Error::data(format!("{}: {e}", ctx.stage)))?;
    let covariates =
        || -> Result<Covariates> { Ok(Covariates { names: expanded.names.clone(), values: expanded.values.clone() }) };
    let missing =
        |field: &str| Error::data(format!("{}: the design has no `{field}`; this is a neurospec bug", ctx.stage));
    let design = match p.design {
        GroupDesign::TwoSample => {
            let name = p.group.as_deref().ok_or_else(|| missing("group"))?;
            let values = column(name)?;
            if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| **v != 0.0 && **v != 1.0) {
                return Err(Error::data(format!(
                    "{}: group column `{name}` must be 0 or 1, but subject {} has {v}",
                    ctx.stage, dataset.ids[subjects[i]]
                )));
            }
            Design::TwoSample { group: values.iter().map(|v| *v == 1.0).collect(), covariates: covariates()? }
        }
        GroupDesign::Correlation => {
            let name = p.variable.as_deref().ok_or_else(|| missing("variable"))?;
            Design::Correlation { x: column(name)?, covariates: covariates()? }
        }
        GroupDesign::Paired => Design::Paired,
    };
    let values = data.first().map_or(0, |d| d[0].len());
    // Column-major per voxel/edge: subject i of unit v at v·n + i (paired: after − before).
    let mut y = vec![0.0; values * n];
    for (i, d) in data.iter().enumerate() {
        for v in 0..values {
            y[v * n + i] = match p.design {
                GroupDesign::Paired => d[1][v] - d[0][v],
                _ => d[0][v],
            };
        }
    }
    let tail = p.tail;
    let (mask, mask_header) = voxel_mask(ctx, &p.level)?;
    if let Some(m) = &mask
        && m.len() != values
    {
        return Err(Error::data(format!(
            "{}: the seed maps have {values} voxels but the mask has {}; the mask changed since the maps were made",
            ctx.stage,
            m.len()
        )));
    }
    let cluster = mask.as_ref().map(|m| cluster_settings(p.cluster_t, p.cluster_p, p.connectivity, m));
    let tfce = match (&p.tfce, &mask) {
        (Some(params), Some(m)) => {
            Some(Tfce::new(m, cluster_settings(None, 0.0, p.connectivity, m).connectivity, *params, tail)?)
        }
        _ => None,
    };
    let df = degrees_of_freedom(&p, n, expanded.names.len());
    let nbs = match &p.nbs {
        Some(choice) => Some(nbs_graph(choice, tail, df).map_err(|e| Error::data(format!("{}: {e}", ctx.stage)))?),
        None => None,
    };
    let tfce_max = |t: &[f64]| tfce.as_ref().map_or(0.0, |x| x.maximum(t));
    let nbs_max = |t: &[f64]| nbs.as_ref().map_or(0.0, |x| x.maximum(t));
    let map_statistic: Option<&voxelwise::MapStatistic<'_>> = match (&tfce, &nbs) {
        (Some(_), _) => Some(&tfce_max),
        (None, Some(_)) => Some(&nbs_max),
        _ => None,
    };
    let settings = Settings { permutations: p.permutations, seed: p.seed, tail, cluster, map_statistic };
    let total = p.permutations as u64;
    let progress = |done: u64| (ctx.progress)(done, total);
    let exchange = super::covariates::exchange(&dataset, p.blocks.as_ref(), &subjects)
        .map_err(|e| Error::data(format!("{}: {e}", ctx.stage)))?;
    let result = voxelwise::fit_blocked(&y, n, &design, &settings, &exchange, &progress)
        .map_err(|e| Error::data(format!("{}: {}", ctx.stage, e)))?;
    if nbs.is_some() && result.df != df {
        return Err(Error::data(format!(
            "{}: the model has {} degrees of freedom, not {df}; are covariates collinear?",
            ctx.stage, result.df
        )));
    }

    let mut outputs = Outputs::new();
    if !expanded.levels.is_empty() {
        outputs.insert("levels".into(), super::covariates::levels_tsv(&expanded.levels, "analysis"));
    }
    let mut summary = serde_json::json!({
        "analysis": p.name,
        "design": p.design,
        "subjects": n,
        "df": result.df,
        "permutations": result.permutations,
        "skipped_subjects": skipped,
        "degenerate_units": result.degenerate_voxels,
        "max_t_null_95": quantile(&result.null_max_t, 0.95),
    });
    match (&p.level, &mask) {
        (Level::Voxel { name, .. }, Some(mask)) => {
            let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
            // Maps keep the mask's xform code (4 for MNI template spaces) and say what they hold.
            use crate::imaging::nifti::{Coding, Intent};
            let header = mask_header.as_ref().expect("a voxelwise analysis has the mask's header");
            let image = |file: &str, values: &[f64], fill: f32, intent: Intent| -> Result<Vec<u8>> {
                let path = dir.path().join(file);
                crate::imaging::nifti::write_masked_f32(
                    &path,
                    mask.grid.shape,
                    mask.grid.affine,
                    &mask.voxels,
                    values,
                    fill,
                    Coding::like(header, intent),
                )?;
                std::fs::read(&path).map_err(|e| Error::io(&path, e))
            };
            outputs.insert("tmap".into(), image("t.nii.gz", &result.t, 0.0, Intent::t(result.df as f64))?);
            outputs.insert("pfwe".into(), image("pfwe.nii.gz", &result.p_fwe, 1.0, Intent::PVALUE)?);
            let atlas = match ctx.paths.get("peak_atlas") {
                Some(path) => Some(crate::imaging::nifti::read_3d(path)?.1),
                None => None,
            };
            let label_at = |v: usize| -> Option<String> {
                let value = atlas.as_ref()?.get(mask.voxels[v])?.round() as i64;
                p.peak_labels.iter().find(|(i, _)| *i == value).map(|(_, n)| n.clone())
            };
            let rows = match &result.clusters {
                Some(c) => voxelwise::cluster_table(c, mask, Some(&label_at)),
                None => Vec::new(),
            };
            outputs.insert("clusters".into(), voxelwise::render_cluster_table(&rows).into_bytes());
            summary["seed"] = serde_json::json!(name);
            summary["voxels"] = serde_json::json!(mask.len());
            summary["cluster_t_threshold"] = serde_json::json!(result.clusters.as_ref().map(|c| c.t_threshold));
            let min_p = result.p_fwe.iter().copied().fold(f64::INFINITY, f64::min);
            summary["min_voxel_p_fwe"] = serde_json::json!(min_p);
            if let Some(tfce) = &tfce {
                let inferred = tfce.infer(&result.t, &result.null_map_statistic, result.permutations);
                outputs.insert("tfce".into(), image("tfce.nii.gz", &inferred.map, 0.0, Intent::ESTIMATE)?);
                outputs.insert("tfcepfwe".into(), image("tfcepfwe.nii.gz", &inferred.p_fwe, 1.0, Intent::PVALUE)?);
                let min_p = inferred.p_fwe.iter().copied().fold(f64::INFINITY, f64::min);
                summary["min_voxel_tfce_p_fwe"] = serde_json::json!(min_p);
                summary["max_tfce_null_95"] = serde_json::json!(quantile(&result.null_map_statistic, 0.95));
            }
        }
        (Level::Edges(edges), _) => {
            let mut table = TsvWriter::new(&["edge", "n", "beta", "t", "p", "p_perm", "p_fwe"]);
            for (v, (edge, _)) in edges.iter().enumerate() {
                table.row(&[
                    Cell::Text(edge),
                    Cell::Int(n as i64),
                    Cell::Num(result.beta[v]),
                    Cell::Num(result.t[v]),
                    Cell::Num(result.p[v]),
                    Cell::Num(result.p_perm[v]),
                    Cell::Num(result.p_fwe[v]),
                ]);
            }
            outputs.insert("results".into(), table.finish().into_bytes());
            if let (Some(nbs), Some(choice)) = (&nbs, &p.nbs) {
                let components = nbs.infer(&result.t, &result.null_map_statistic, result.permutations);
                outputs.insert("components".into(), component_table(&components, edges, choice.statistic).into_bytes());
                summary["nbs_t_threshold"] = serde_json::json!(nbs.threshold());
                summary["nbs_components"] = serde_json::json!(components.len());
            }
        }
        (Level::Voxel { .. }, None) => unreachable!("a voxelwise analysis has a mask"),
    }
    outputs.insert("summary".into(), (serde_json::to_string_pretty(&summary).expect("json") + "\n").into_bytes());
    Ok(outputs)
}

/// Each dataset subject's seed map (seed index `seed`) in each session, for the subjects whose
/// runs all produced maps: (dataset rows, ids of the others, per subject the maps by session).
#[allow(clippy::type_complexity)]
pub fn load_maps(
    ctx: &Context<'_>,
    dataset: &crate::tables::Table,
    seed: usize,
    sessions: &[Option<String>],
) -> Result<(Vec<usize>, Vec<String>, Vec<Vec<Vec<f64>>>)> {
    let (mut rows, mut skipped, mut data) = (Vec::new(), Vec::new(), Vec::new());
    for (row, id) in dataset.ids.iter().enumerate() {
        let mut maps = Vec::new();
        for session in sessions {
            let Some(bytes) = ctx.inputs.get(&format!("maps:{}", key(id, session))) else { break };
            let Some(map) = super::imaging_run::decode_maps(bytes)?.into_iter().nth(seed) else { break };
            maps.push(map);
        }
        if maps.len() < sessions.len() {
            skipped.push(id.clone());
            continue;
        }
        rows.push(row);
        data.push(maps);
    }
    Ok((rows, skipped, data))
}

/// The mask of a voxelwise analysis (input `mask`).
pub fn load_mask(ctx: &Context<'_>) -> Result<MaskedGrid> {
    Ok(load_coded_mask(ctx)?.0)
}

/// A voxelwise analysis' mask and its header; none at region level.
fn voxel_mask(ctx: &Context<'_>, level: &Level) -> Result<(Option<MaskedGrid>, Option<crate::imaging::nifti::Header>)> {
    Ok(match level {
        Level::Voxel { .. } => {
            let (mask, header) = load_coded_mask(ctx)?;
            (Some(mask), Some(header))
        }
        Level::Edges(_) => (None, None),
    })
}

/// The mask and its header (whose xform code the written maps keep).
fn load_coded_mask(ctx: &Context<'_>) -> Result<(MaskedGrid, crate::imaging::nifti::Header)> {
    let (header, values) = crate::imaging::nifti::read_3d(ctx.path("mask")?)?;
    Ok((MaskedGrid::from_mask(crate::imaging::regions::Grid::of(&header), &values)?, header))
}

fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    crate::stats::quantile::quantile_sorted(&sorted, q)
}

/// The residual degrees of freedom the design will have: n − (1 + covariates) − 1, or n − 1 for
/// the paired (sign-flipping) design; `run` checks it against the fitted model.
fn degrees_of_freedom(p: &Params, n: usize, covariate_columns: usize) -> f64 {
    match p.design {
        GroupDesign::Paired => n as f64 - 1.0,
        _ => n as f64 - covariate_columns as f64 - 2.0,
    }
}

/// The NBS graph with its t threshold (from `threshold_p` via the model's df, two-sided for a
/// two-sided tail, as the cluster-forming threshold).
fn nbs_graph(choice: &NbsParams, tail: Tail, df: f64) -> std::result::Result<Nbs, String> {
    let t = match (choice.threshold_t, choice.threshold_p) {
        (Some(t), _) => t,
        (None, Some(p)) => {
            voxelwise::t_for_two_sided_p(if tail == Tail::TwoSided { p } else { (2.0 * p).min(1.0) }, df)
        }
        (None, None) => return Err("NBS needs threshold_t or threshold_p".into()),
    };
    if !(t.is_finite() && t > 0.0) {
        return Err(format!("the NBS threshold must be a positive t, not {t}"));
    }
    Ok(Nbs::new(&choice.endpoints, t, choice.statistic, tail))
}

/// One row per NBS component: rank, edges, regions, statistic, p_FWE and its edge names.
fn component_table(
    components: &[crate::stats::nbs::Component],
    edges: &[(String, Vec<String>)],
    statistic: NbsStatistic,
) -> String {
    let statistic_name = match statistic {
        NbsStatistic::Size => "size",
        NbsStatistic::Intensity => "intensity",
    };
    let mut table = TsvWriter::new(&["component", "edges", "regions", statistic_name, "p_fwe", "edge_names"]);
    for (i, c) in components.iter().enumerate() {
        let names: Vec<&str> = c.edges.iter().map(|&e| edges[e].0.as_str()).collect();
        table.row(&[
            Cell::Int(i as i64 + 1),
            Cell::Int(c.edges.len() as i64),
            Cell::Int(c.nodes as i64),
            Cell::Num(c.statistic),
            Cell::Num(c.p_fwe),
            Cell::Text(&names.join(",")),
        ]);
    }
    table.finish()
}
