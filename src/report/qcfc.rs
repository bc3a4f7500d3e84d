//! Motion QC and QC-FC (Ciric et al. 2017), computed from published files: each run's
//! framewise displacement per volume (`*_desc-motion_timeseries.tsv`), its status
//! (`*_desc-extraction_report.json`), its edges (`connectome.tsv`) and the region
//! centroids (`*_dseg.tsv`). A run's mean FD is the mean over its volumes after the
//! non-steady-state ones, the first volume (FD undefined) left out. Per subject (and per session
//! when the study declares sessions), the included runs' mean FDs and edge values are averaged;
//! QC-FC of an edge is the Pearson correlation across subjects of its value with mean FD, with a
//! two-sided t-test p. Edge distance is the Euclidean distance between the two regions'
//! centroids (mm, world coordinates of the first run's grid).

use super::folder::Folder;
use std::collections::BTreeMap;

/// One run as published.
pub struct RunQc {
    /// Stage id (`imaging/sub-…[/ses-…][/run-…]`).
    pub stage: String,
    pub subject: String,
    /// Session when the study declares sessions.
    pub session: Option<String>,
    pub included: bool,
    /// Mean framewise displacement (mm); NaN when the confounds had no FD column.
    pub mean_fd: f64,
    /// Edge column → value.
    pub edges: BTreeMap<String, f64>,
}

/// QC-FC of one group of subjects (all, or one session).
pub struct QcFc {
    pub session: Option<String>,
    pub subjects: usize,
    /// Edge column, correlation with mean FD, its p, and the edge's length (mm; NaN unknown).
    pub edges: Vec<(String, f64, f64, f64)>,
}

impl QcFc {
    pub fn median_abs_r(&self) -> f64 {
        let mut v: Vec<f64> = self.edges.iter().map(|e| e.1.abs()).filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
        }
    }

    /// Percentage of edges with p < .05.
    pub fn percent_significant(&self) -> f64 {
        let n = self.edges.len().max(1) as f64;
        100.0 * self.edges.iter().filter(|e| e.2 < 0.05).count() as f64 / n
    }

    /// Correlation across edges of QC-FC with edge length (distance dependence).
    pub fn distance_r(&self) -> f64 {
        let pairs: Vec<(f64, f64)> =
            self.edges.iter().filter(|e| e.1.is_finite() && e.3.is_finite()).map(|e| (e.3, e.1)).collect();
        let (a, b): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
        pearson(&a, &b)
    }
}

/// Mean FD of a motion table: volumes not dropped as non-steady-state, the first volume excluded.
pub fn mean_fd(motion: &super::folder::Tsv) -> f64 {
    let values: Vec<f64> = (1..motion.rows.len())
        .filter(|&r| motion.text(r, "status") != "non-steady-state")
        .map(|r| motion.value(r, "framewise_displacement"))
        .collect();
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// Every imaging run with its published motion, status and edges (None: no motion files).
pub fn runs(folder: &Folder) -> Option<Vec<RunQc>> {
    let sessions_declared =
        folder.params_of("connectome").is_some_and(|p| p["sessions"].as_array().is_some_and(|s| !s.is_empty()));
    let mut out = Vec::new();
    for stage in folder.lock.stages.iter().filter(|s| s.kind == "imaging-run") {
        let path = |name: &str| stage.outputs.get(name).and_then(|o| o.path.clone());
        let motion = folder.tsv(&path("motion")?)?;
        let report = folder.json(&path("report")?)?;
        let edges = path("edges").and_then(|p| folder.tsv(&p));
        let record = folder.records.get(&stage.id)?;
        let session = stage.id.split('/').find_map(|part| part.strip_prefix("ses-")).filter(|_| sessions_declared);
        out.push(RunQc {
            stage: stage.id.clone(),
            subject: record.params["subject"].as_str().unwrap_or("?").to_string(),
            session: session.map(String::from),
            included: report["status"] == "included",
            mean_fd: mean_fd(&motion),
            edges: edges
                .map(|t| (0..t.rows.len()).map(|r| (t.text(r, "edge").to_string(), t.value(r, "value"))).collect())
                .unwrap_or_default(),
        });
    }
    (!out.is_empty()).then_some(out)
}

/// Region name → centroid (mm), from the published regions table.
pub fn centroids(folder: &Folder) -> BTreeMap<String, [f64; 3]> {
    let Some(file) = folder.published("sub-", "_dseg.tsv").into_iter().next() else {
        return BTreeMap::new();
    };
    let Some(t) = folder.tsv(&file) else { return BTreeMap::new() };
    (0..t.rows.len())
        .map(|r| (t.text(r, "region").to_string(), [t.value(r, "x"), t.value(r, "y"), t.value(r, "z")]))
        .collect()
}

/// QC-FC per session (one group without sessions).
pub fn qcfc(folder: &Folder, runs: &[RunQc]) -> Vec<QcFc> {
    let centroids = centroids(folder);
    let pairs: Vec<(String, String)> = folder
        .stages_of("imaging-run")
        .first()
        .and_then(|r| serde_json::from_value(r.params["edges"].clone()).ok())
        .unwrap_or_default();
    let length: BTreeMap<String, f64> = pairs
        .iter()
        .map(|(a, b)| {
            let d = match (centroids.get(a), centroids.get(b)) {
                (Some(p), Some(q)) => (0..3).map(|c| (p[c] - q[c]).powi(2)).sum::<f64>().sqrt(),
                _ => f64::NAN,
            };
            (crate::design::edge_column(a, b), d)
        })
        .collect();
    let mut groups: BTreeMap<Option<String>, BTreeMap<String, Vec<&RunQc>>> = BTreeMap::new();
    for run in runs.iter().filter(|r| r.included && r.mean_fd.is_finite()) {
        groups.entry(run.session.clone()).or_default().entry(run.subject.clone()).or_default().push(run);
    }
    let mut out = Vec::new();
    for (session, subjects) in groups {
        let fd: Vec<f64> =
            subjects.values().map(|rs| rs.iter().map(|r| r.mean_fd).sum::<f64>() / rs.len() as f64).collect();
        let names: Vec<String> =
            subjects.values().next().map(|rs| rs[0].edges.keys().cloned().collect()).unwrap_or_default();
        let n = fd.len();
        let edges = names
            .into_iter()
            .map(|name| {
                let values: Vec<f64> = subjects
                    .values()
                    .map(|rs| {
                        rs.iter().map(|r| r.edges.get(&name).copied().unwrap_or(f64::NAN)).sum::<f64>()
                            / rs.len() as f64
                    })
                    .collect();
                let r = pearson(&values, &fd);
                let t = r * ((n as f64 - 2.0) / (1.0 - r * r).max(1e-300)).sqrt();
                let p = if r.is_finite() && n > 2 { crate::stats::t_two_sided_p(t, n as f64 - 2.0) } else { f64::NAN };
                let d = length.get(&name).copied().unwrap_or(f64::NAN);
                (name, r, p, d)
            })
            .collect();
        out.push(QcFc { session, subjects: n, edges });
    }
    out
}

/// Pearson correlation (NaN when either side is constant or any value is not finite, where
/// `stats::predict::pearson`, which this calls otherwise, gives 0).
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let constant = |v: &[f64]| v.iter().all(|x| *x == v[0]);
    if a.len() != b.len() || a.len() < 3 || a.iter().chain(b).any(|v| !v.is_finite()) || constant(a) || constant(b) {
        return f64::NAN;
    }
    crate::stats::predict::pearson(a, b)
}
