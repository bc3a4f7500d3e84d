//! Imaging parts of the report: run QC (volumes kept after scrubbing, excluded runs), regions
//! (voxel counts before/after resampling), the group-mean connectivity matrix, and voxelwise or
//! edge-level group analyses (slice montage of the FWE-thresholded t map, the cluster table).

use super::charts::{self, Axes, esc};
use super::folder::{Folder, Tsv};
use super::qcfc;
use super::slices::{Volume, montage};
use super::study::{details_table, table_html};
use super::{Figure, Section};
use crate::error::Result;
use std::fmt::Write as _;

pub fn sections(folder: &Folder) -> Result<Vec<Option<Section>>> {
    Ok(vec![qc(folder), regions(folder), connectivity(folder), group(folder)?])
}

fn qc(folder: &Folder) -> Option<Section> {
    let runs = folder.tsv("imaging_runs.tsv")?;
    let kept: Vec<f64> = (0..runs.rows.len())
        .filter(|&r| runs.text(r, "status") == "included")
        .map(|r| runs.value(r, "kept") / runs.value(r, "volumes"))
        .collect();
    let excluded: Vec<usize> = (0..runs.rows.len()).filter(|&r| runs.text(r, "status") != "included").collect();
    let mut body = format!(
        "<p>{} runs: {} included, {} excluded. Volumes kept after scrubbing: median {:.1}% (min {:.1}%).</p>",
        runs.rows.len(),
        kept.len(),
        excluded.len(),
        100.0 * median(&kept),
        100.0 * kept.iter().copied().fold(f64::INFINITY, f64::min).min(1.0),
    );
    if !excluded.is_empty() {
        let list = Tsv { header: runs.header.clone(), rows: excluded.iter().map(|&r| runs.rows[r].clone()).collect() };
        let _ = write!(body, "<h3>Excluded runs</h3>{}", table_html(&list, 100, "data"));
    }
    body.push_str(&details_table(&runs, "Every run (imaging_runs.tsv)", 1000));
    let mut axes = Axes::new("Fraction of volumes kept per run", "kept / volumes", "runs");
    axes.x_range = Some((0.0, 1.0001));
    let svg = charts::histogram(&axes, &kept, 20);
    let mut figures =
        vec![Figure { name: "qc_volumes_kept".into(), caption: "Volumes kept after scrubbing".into(), svg }];
    motion_qc(folder, &mut body, &mut figures);
    Some(Section { id: "qc", title: "Imaging QC".into(), body, figures })
}

/// Mean FD per run and QC-FC with its distance dependence, when the runs publish their motion.
fn motion_qc(folder: &Folder, body: &mut String, figures: &mut Vec<Figure>) {
    let Some(runs) = qcfc::runs(folder) else { return };
    let fds: Vec<f64> = runs.iter().filter(|r| r.included).map(|r| r.mean_fd).filter(|v| v.is_finite()).collect();
    if fds.is_empty() {
        body.push_str(
            "<p class=\"note\">The confounds files have no framewise displacement, so there is no QC-FC.</p>",
        );
        return;
    }
    let _ = write!(
        body,
        "<h3>Motion</h3><p>Mean framewise displacement of the {} included runs (volumes after the non-steady-state \
         ones, per-volume values in each run's <code>*_desc-motion_timeseries.tsv</code>): median {:.3} mm, max {:.3} mm.</p>",
        fds.len(),
        median(&fds),
        fds.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let axes = Axes::new("Mean framewise displacement per included run", "mean FD (mm)", "runs");
    figures.push(Figure {
        name: "qc_mean_fd".into(),
        caption: "Mean FD per run".into(),
        svg: charts::annotate(&charts::histogram(&axes, &fds, 20), &[("data-runs", fds.len().to_string())]),
    });
    for group in qcfc::qcfc(folder, &runs) {
        let suffix = group.session.as_ref().map_or(String::new(), |s| format!("_{s}"));
        let label = group.session.as_ref().map_or(String::new(), |s| format!(" (session {s})"));
        let r: Vec<f64> = group.edges.iter().map(|e| e.1).collect();
        let (median_abs, percent) = (group.median_abs_r(), group.percent_significant());
        let _ = write!(
            body,
            "<p class=\"qcfc\" data-session=\"{}\" data-subjects=\"{}\" data-median-abs-r=\"{median_abs}\" data-percent-p05=\"{percent}\">\
             QC-FC{label} (Ciric et al. 2017): correlation across {} subjects of each of {} edges with mean FD. \
             Median |r| = {median_abs:.3}; {percent:.1}% of edges with p &lt; .05 (uncorrected; about 5% expected with no \
             motion artefact); correlation of QC-FC with edge length r = {:.3}.</p>",
            esc(group.session.as_deref().unwrap_or("")),
            group.subjects,
            group.subjects,
            group.edges.len(),
            group.distance_r(),
        );
        let listed: Vec<String> = group.edges.iter().map(|e| format!("{}:{}", e.0, e.1)).collect();
        let title = format!("QC-FC{label}: edge × mean FD, N = {}", group.subjects);
        let mut axes = Axes::new(&title, "QC-FC r", "edges");
        axes.vlines = vec![(0.0, String::new())];
        figures.push(Figure {
            name: format!("qcfc_histogram{suffix}"),
            caption: title.clone(),
            svg: charts::annotate(
                &charts::histogram(&axes, &r, 30),
                &[("data-median-abs-r", median_abs.to_string()), ("data-qcfc", listed.join(";"))],
            ),
        });
        let points: Vec<(f64, f64)> = group.edges.iter().filter(|e| e.3.is_finite()).map(|e| (e.3, e.1)).collect();
        if !points.is_empty() {
            let title = format!("QC-FC vs edge length{label}");
            let mut axes = Axes::new(&title, "distance between region centroids (mm)", "QC-FC r");
            axes.hlines = vec![(0.0, String::new())];
            figures.push(Figure {
                name: format!("qcfc_distance{suffix}"),
                caption: title.clone(),
                svg: charts::xy(
                    &axes,
                    &[charts::Series { name: String::new(), points, color: charts::BLUE, dots: true, dashed: false }],
                ),
            });
        }
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 { s[m] } else { 0.5 * (s[m - 1] + s[m]) }
}

fn regions(folder: &Folder) -> Option<Section> {
    let report = folder.published("sub-", "_desc-extraction_report.json").into_iter().find_map(|p| {
        let json = folder.json(&p)?;
        (json["status"] == "included").then_some(json)
    })?;
    let regions = report["regions"].as_array()?;
    let mut body = String::from(
        "<p>Voxels per region on the first included run's BOLD grid, before and after nearest-neighbour resampling \
         (a region that loses voxels is flagged).</p><table class=\"data\"><thead><tr><th>region</th><th>voxels before</th>\
         <th>voxels after</th><th></th></tr></thead><tbody>",
    );
    for r in regions {
        let (before, after) = (r["voxels_before"].as_u64().unwrap_or(0), r["voxels_after"].as_u64().unwrap_or(0));
        let flag = if after == 0 {
            "lost"
        } else if (after as f64) < 0.5 * before as f64 {
            "shrank by more than half"
        } else {
            ""
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{before}</td><td>{after}</td><td class=\"warn\">{flag}</td></tr>",
            esc(r["region"].as_str().unwrap_or("?"))
        );
    }
    body.push_str("</tbody></table>");
    let figures = region_figures(folder, &mut body).unwrap_or_default();
    Some(Section { id: "regions", title: "Regions".into(), body, figures })
}

/// The published files of each distinct BOLD grid, in plan order: (label image, regions table,
/// reference image if published, the stage that made them).
fn grid_files(folder: &Folder) -> Vec<(String, String, Option<String>, String)> {
    let path = |s: &crate::outputs::LockedStage, name: &str| s.outputs.get(name).and_then(|o| o.path.clone());
    folder
        .lock
        .stages
        .iter()
        .filter(|s| s.kind == "imaging-run")
        .filter_map(|s| Some((path(s, "labels")?, path(s, "regions")?, path(s, "boldref"), s.id.clone())))
        .collect()
}

/// Orthogonal slices of each region set over the first grid's reference image (the mean BOLD
/// volume of the first run on that grid), from its published label image; other grids linked.
fn region_figures(folder: &Folder, body: &mut String) -> Option<Vec<Figure>> {
    let grids = grid_files(folder);
    let (image_file, table_file, reference_file, stage) = grids.first()?;
    let table = folder.tsv(table_file)?;
    let (header, labels) = crate::imaging::nifti::read_3d(&folder.dir.join(image_file)).ok()?;
    let reference = reference_file
        .as_ref()
        .and_then(|f| crate::imaging::nifti::read_3d(&folder.dir.join(f)).ok())
        .filter(|(h, _)| h.shape3() == header.shape3())
        .map(|(_, values)| values);
    let mut sets: Vec<(String, Vec<(usize, String)>)> = Vec::new();
    for r in 0..table.rows.len() {
        let set = table.text(r, "set").to_string();
        let entry = (table.value(r, "label") as usize, table.text(r, "region").to_string());
        match sets.iter_mut().find(|s| s.0 == set) {
            Some(s) => s.1.push(entry),
            None => sets.push((set, vec![entry])),
        }
    }
    let run = stage.trim_start_matches("imaging/");
    let _ = write!(
        body,
        "<p>The regions as resampled to the BOLD grid of {} (<a href=\"{}\">label image</a>, \
         <a href=\"{}\">labels with centroids</a>), drawn over {}; where regions overlap, the later one is drawn.</p>",
        esc(run),
        esc(image_file),
        esc(table_file),
        match (reference_file, &reference) {
            (Some(f), Some(_)) => format!(
                "that run's <a href=\"{}\">mean BOLD volume</a> (after the non-steady-state volumes, before \
                 censoring and denoising) in grey",
                esc(f)
            ),
            _ => "the extent of the grid (no reference image was published)".to_string(),
        }
    );
    if grids.len() > 1 {
        let _ = write!(
            body,
            "<p class=\"warn\">The runs lie on {} distinct BOLD grids (shape and affine); the slices show the first. \
             The others' regions: {}.</p>",
            grids.len(),
            grids[1..]
                .iter()
                .map(|(image, table, reference, stage)| {
                    let reference = reference
                        .as_ref()
                        .map(|r| format!(", <a href=\"{}\">mean BOLD</a>", esc(r)))
                        .unwrap_or_default();
                    format!(
                        "{} (<a href=\"{}\">label image</a>, <a href=\"{}\">labels</a>{reference})",
                        esc(stage.trim_start_matches("imaging/")),
                        esc(image),
                        esc(table)
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Some(
        sets.iter()
            .map(|(set, regions)| {
                let title = format!("Region set {set} on the BOLD grid");
                let volume = super::slices::LabelVolume {
                    shape: header.shape3(),
                    labels: &labels,
                    reference: reference.as_deref(),
                };
                Figure {
                    name: format!("regions_{set}"),
                    caption: title.clone(),
                    svg: super::slices::region_slices(&title, &volume, regions),
                }
            })
            .collect(),
    )
}

/// Group-mean matrix per session: (session, seeds, targets, values).
pub type Matrix = (Option<String>, Vec<String>, Vec<String>, Vec<Vec<f64>>);

pub fn mean_matrices(folder: &Folder) -> Option<Vec<Matrix>> {
    let table = folder.tsv("connectome.tsv")?;
    let run = folder.stages_of("imaging-run").into_iter().next()?;
    let pairs: Vec<(String, String)> = serde_json::from_value(run.params["edges"].clone()).ok()?;
    let names: Vec<String> = serde_json::from_value(folder.params_of("connectome")?["edges"].clone()).ok()?;
    let sessions: Vec<String> =
        serde_json::from_value(folder.params_of("connectome")?["sessions"].clone()).unwrap_or_default();
    let sessions: Vec<Option<String>> =
        if sessions.is_empty() { vec![None] } else { sessions.into_iter().map(Some).collect() };
    let mut rows: Vec<String> = Vec::new();
    let mut cols: Vec<String> = Vec::new();
    for (a, b) in &pairs {
        if !rows.contains(a) {
            rows.push(a.clone());
        }
        if !cols.contains(b) {
            cols.push(b.clone());
        }
    }
    let mut out = Vec::new();
    for session in sessions {
        let mut values = vec![vec![f64::NAN; cols.len()]; rows.len()];
        for ((a, b), name) in pairs.iter().zip(&names) {
            let column = crate::spec::check::session_column(name, session.as_deref());
            let v = table.column(&column);
            let finite: Vec<f64> = v.into_iter().filter(|x| x.is_finite()).collect();
            let mean = finite.iter().sum::<f64>() / finite.len().max(1) as f64;
            let (r, c) = (rows.iter().position(|x| x == a)?, cols.iter().position(|x| x == b)?);
            values[r][c] = mean;
        }
        out.push((session, rows.clone(), cols.clone(), values));
    }
    Some(out)
}

fn connectivity(folder: &Folder) -> Option<Section> {
    let matrices = mean_matrices(folder)?;
    let n = folder.tsv("connectome.tsv").map_or(0, |t| t.rows.len());
    let measure = if folder.stages_of("imaging-run").first().is_some_and(|r| r.params["fisher_z"] == true) {
        "Fisher z"
    } else {
        "Pearson r"
    };
    let mut figures = Vec::new();
    for (session, rows, cols, values) in &matrices {
        let suffix = session.as_ref().map_or(String::new(), |s| format!(" (session {s})"));
        let title = format!("Group mean connectivity, {measure}, N = {n}{suffix}");
        figures.push(Figure {
            name: format!("connectivity_mean{}", session.as_ref().map_or(String::new(), |s| format!("_{s}"))),
            caption: title.clone(),
            svg: charts::heatmap(&title, rows, cols, values),
        });
    }
    let body = "<p>Mean over included subjects of each edge in <a href=\"connectome.tsv\">connectome.tsv</a>. \
                Per-subject matrices are linked from the run folders (<code>sub-*/func/</code>), not embedded.</p>"
        .to_string();
    Some(Section { id: "connectivity", title: "Connectivity".into(), body, figures })
}

fn group(folder: &Folder) -> Result<Option<Section>> {
    let stages = folder.stages_of("group");
    if stages.is_empty() {
        return Ok(None);
    }
    let mut body = String::new();
    let mut figures = Vec::new();
    for record in stages {
        let name = record.stage.trim_start_matches("group/").to_string();
        let summary = folder.json(&format!("group/{name}_summary.json")).unwrap_or_default();
        let _ = write!(
            body,
            "<div class=\"analysis\" data-analysis=\"{0}\"><h3 id=\"group-{0}\">{0}</h3><p>Design <b>{1}</b>, {2} subjects, {3} permutations{4}.</p>",
            esc(&name),
            esc(summary["design"].as_str().unwrap_or("?")),
            summary["subjects"],
            summary["permutations"],
            summary["seed"].as_str().map_or(String::new(), |s| format!(", seed region {}", esc(s))),
        );
        if let Some(clusters) = folder.tsv(&format!("group/{name}_clusters.tsv")) {
            let _ = write!(
                body,
                "<p>Cluster-forming |t| ≥ {:.3}; clusters (cluster-extent FWE p):</p>{}",
                summary["cluster_t_threshold"].as_f64().unwrap_or(f64::NAN),
                table_html(&clusters, 30, "data clusters")
            );
            let tmap = folder.dir.join(format!("group/{name}_stat-t.nii.gz"));
            let pmap = folder.dir.join(format!("group/{name}_stat-pfwe.nii.gz"));
            if tmap.is_file() {
                let (header, t) = crate::imaging::nifti::read_3d(&tmap)?;
                let p = if pmap.is_file() { Some(crate::imaging::nifti::read_3d(&pmap)?.1) } else { None };
                let peaks = (0..clusters.rows.len())
                    .filter(|&r| clusters.value(r, "p_fwe") < 0.05)
                    .map(|r| [clusters.value(r, "peak_i"), clusters.value(r, "peak_j"), clusters.value(r, "peak_k")])
                    .filter(|p| p.iter().all(|x| x.is_finite() && *x >= 0.0))
                    .map(|p| p.map(|x| x as usize))
                    .collect();
                let volume = Volume {
                    shape: header.shape3(),
                    t: &t,
                    p_fwe: p.as_deref(),
                    cluster_t: summary["cluster_t_threshold"].as_f64(),
                    peaks,
                    connectivity: record.params["connectivity"].as_u64().unwrap_or(26) as u8,
                };
                let title = format!("{name}: t map, voxel p_FWE < .05");
                let figure = format!("group_{name}_montage");
                body.push_str(&super::figure_marker(&figure));
                figures.push(Figure { name: figure, caption: title.clone(), svg: montage(&title, &volume) });
                let _ = write!(
                    body,
                    "<p>Maps: <a href=\"group/{0}_stat-t.nii.gz\">t</a>, <a href=\"group/{0}_stat-pfwe.nii.gz\">p_FWE</a>.</p>",
                    esc(&name)
                );
            }
        }
        if summary.get("min_voxel_tfce_p_fwe").is_some() {
            let _ = write!(
                body,
                "<p>TFCE: smallest voxel p_FWE {} (max-TFCE over the permutations; 95th percentile of the null {}). Maps: \
                 <a href=\"group/{2}_stat-tfce.nii.gz\">TFCE</a>, <a href=\"group/{2}_stat-tfcepfwe.nii.gz\">TFCE p_FWE</a>.</p>",
                summary["min_voxel_tfce_p_fwe"],
                summary["max_tfce_null_95"],
                esc(&name),
            );
        }
        if let Some(components) = folder.tsv(&format!("group/{name}_components.tsv")) {
            let _ = write!(
                body,
                "<p>Network-based statistic: {} component(s) of supra-threshold edges (FWE p from the largest component \
                 under permutation):</p>{}",
                components.rows.len(),
                table_html(&components, 20, "data components")
            );
        }
        if let Some(edges) = folder.tsv(&format!("group/{name}_edges.tsv")) {
            let mut order: Vec<usize> = (0..edges.rows.len()).collect();
            order.sort_by(|&a, &b| edges.value(a, "p_fwe").total_cmp(&edges.value(b, "p_fwe")));
            let sorted =
                Tsv { header: edges.header.clone(), rows: order.iter().map(|&r| edges.rows[r].clone()).collect() };
            let _ = write!(body, "<p>Edges, by FWE p (max-statistic):</p>{}", table_html(&sorted, 10, "data edges"));
            let points: Vec<(f64, f64)> =
                (0..edges.rows.len()).map(|r| (edges.value(r, "beta"), -edges.value(r, "p").log10())).collect();
            let mut axes = Axes::new("", "β", "−log10 p");
            let title = format!("{name}: edges");
            axes.title = &title;
            body.push_str(&super::figure_marker(&format!("group_{name}_volcano")));
            figures.push(Figure {
                name: format!("group_{name}_volcano"),
                caption: title.clone(),
                svg: charts::xy(
                    &axes,
                    &[charts::Series { name: String::new(), points, color: charts::BLUE, dots: true, dashed: false }],
                ),
            });
        }
        body.push_str("</div>");
    }
    Ok(Some(Section { id: "group", title: "Group analyses".into(), body, figures }))
}
