//! The column dictionary: what every column of every published table means, in one place.
//!
//! BIDS asks for a JSON sidecar beside each TSV describing its columns (`LongName`,
//! `Description`, `Units`, `Levels`). The publisher writes one beside each published table
//! without a sidecar of its own, from [`describe`]: an entry matches a table (by a pattern of its
//! path in the output folder) and a column (by name, or a pattern for columns the study names,
//! such as `conn_*` edges or a score's name). The first matching entry wins, so specific entries
//! come before general ones. Conventions every table follows (and `tests/bids_outputs.rs` checks):
//! the subject column is `participant_id` holding `sub-<label>`, a yes/no column holds
//! `TRUE`/`FALSE`, and a missing cell is `n/a`. `tests/bids_outputs.rs` checks that no column of a shipped study's
//! published tables falls through to [`UNDESCRIBED`].

/// One column's description, as BIDS spells the keys.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Column {
    pub long_name: &'static str,
    pub description: &'static str,
    /// Units, when the column is a measurement.
    pub units: Option<&'static str>,
    /// Values of a categorical column and what each means.
    pub levels: &'static [(&'static str, &'static str)],
}

impl Column {
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        map.insert("LongName".into(), self.long_name.into());
        map.insert("Description".into(), self.description.into());
        if let Some(units) = self.units {
            map.insert("Units".into(), units.into());
        }
        if !self.levels.is_empty() {
            let levels = self.levels.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect();
            map.insert("Levels".into(), serde_json::Value::Object(levels));
        }
        serde_json::Value::Object(map)
    }
}

/// What a column without an entry gets (a shipped study never shows it: see the module doc).
pub const UNDESCRIBED: Column = Column {
    long_name: "undescribed column",
    description: "No description is registered for this column (src/outputs/columns.rs); please report it.",
    units: None,
    levels: &[],
};

const fn col(long_name: &'static str, description: &'static str) -> Column {
    Column { long_name, description, units: None, levels: &[] }
}

const fn unit(long_name: &'static str, description: &'static str, units: &'static str) -> Column {
    Column { long_name, description, units: Some(units), levels: &[] }
}

/// The one boolean spelling of published tables (`crate::tables::boolean`).
const BOOLEAN: &[(&str, &str)] = &[("TRUE", "yes"), ("FALSE", "no")];
const SAMPLE: &[(&str, &str)] = &[
    ("discovery", "the discovery (training) sample"),
    ("held-out", "the held-out (test) sample, used once"),
    ("all", "every subject (no split)"),
];

/// (table pattern, column pattern, description); `*` matches any run of characters.
// One entry a line: the registry reads as a table.
#[rustfmt::skip]
const ENTRIES: &[(&str, &str, Column)] = &[
    // Identifiers, wherever they appear.
    ("*", "participant_id", col("participant", "Participant identifier as BIDS writes it: `sub-` followed by the id of the input tables (without their own `sub-`, if any)")),
    ("*", "session", col("session", "Imaging session label (`ses-` entity without the prefix); n/a when the run has none")),
    ("*", "run", col("run", "Run label (`run-` entity without the prefix); n/a when the run has none")),
    ("*", "sample", Column { long_name: "sample", description: "Which side of the split the participant is on", units: None, levels: SAMPLE }),
    // Covariate coding (any stage).
    ("*_covariate_levels.tsv", "term", col("covariate term", "The covariate term as written in the study (e.g. `C(site)`)")),
    ("*_covariate_levels.tsv", "column", col("column", "The table column the term reads")),
    ("*_covariate_levels.tsv", "level", col("level", "A level of the categorical column")),
    ("*_covariate_levels.tsv", "reference", Column { long_name: "reference level", description: "Whether this level is the reference (no indicator column)", units: None, levels: BOOLEAN }),
    ("*_covariate_levels.tsv", "subjects", unit("participants", "Participants at this level in the sample", "participants")),
    // Connectome and imaging runs.
    ("connectome.tsv", "conn_*", unit("connectivity edge", "Connectivity of the edge `conn_A__B` (region A to region B; `__SESSION` appended per session): Pearson correlation of the denoised region series, Fisher z-transformed when the study asks for it, averaged over a participant's runs as mean Fisher z", "Fisher z (or r)")),
    ("imaging_runs.tsv", "volumes", unit("volumes", "Volumes in the BOLD image", "volumes")),
    ("imaging_runs.tsv", "dummy_scans", unit("non-steady-state volumes", "Non-steady-state volumes dropped before cleaning", "volumes")),
    ("imaging_runs.tsv", "censored", unit("censored volumes", "Further volumes censored for motion (scrubbing)", "volumes")),
    ("imaging_runs.tsv", "kept", unit("kept volumes", "Volumes used after dropping and censoring", "volumes")),
    ("imaging_runs.tsv", "status", col("status", "`included`, or `excluded: REASON` when the run left too little clean data, or `no run` for a participant without a usable run")),
    // Scores.
    ("scoring_report.tsv", "score", col("score", "Questionnaire score defined in the study's [scores]")),
    ("scoring_report.tsv", "subjects_scored", unit("participants scored", "Participants with a value of this score", "participants")),
    ("scoring_report.tsv", "subjects_unscored", unit("participants unscored", "Participants without a value (n/a) of this score", "participants")),
    ("scoring_report.tsv", "visits_scored", unit("visits scored", "Visits at which the score could be computed", "visits")),
    ("scoring_report.tsv", "visits_absent", unit("visits absent", "Visits with none of the score's items", "visits")),
    ("scoring_report.tsv", "visits_excluded_missing_items", unit("visits excluded", "Visits not scored because too many items were missing", "visits")),
    ("scoring_report.tsv", "visits_prorated", unit("visits prorated", "Visits scored from the items present, scaled up to the full item count", "visits")),
    ("scoring_report.tsv", "missing_codes_read", unit("missing codes", "Item cells holding a declared missing-value code, read as missing", "cells")),
    ("scores.tsv", "*", col("questionnaire score", "A score defined in the study's [scores]: its items summed (or averaged) within a visit, then averaged over visits; n/a when not scorable")),
    // Exclusions.
    ("exclusions.tsv", "reason", col("reason", "Why the participant was excluded (e.g. `missing_value`, `outlier_iqr`, `no_imaging`)")),
    ("exclusions.tsv", "column", col("column", "The column that caused the exclusion; n/a when the reason concerns no column")),
    ("exclusions.tsv", "value", col("value", "The offending value as read; n/a when missing")),
    ("exclusion_summary.tsv", "reason", col("reason", "Exclusion reason; `available` counts the participants present before any exclusion")),
    ("exclusion_summary.tsv", "column", col("column", "The column of the reason; n/a when the reason concerns no column")),
    ("exclusion_summary.tsv", "subjects", unit("participants", "Participants with this reason", "participants")),
    // Between-outcome differences and region means (before the general association entries).
    ("association/*_differences.tsv", "outcome_a", col("outcome a", "The first outcome of the pair; the difference is beta_a − beta_b")),
    ("association/*_differences.tsv", "outcome_b", col("outcome b", "The second outcome of the pair")),
    ("association/*_differences.tsv", "beta_a", unit("beta of outcome a", "The feature's standardised beta for outcome a", "SD of outcome per SD of feature")),
    ("association/*_differences.tsv", "beta_b", unit("beta of outcome b", "The feature's standardised beta for outcome b", "SD of outcome per SD of feature")),
    ("association/*_differences.tsv", "difference", unit("beta difference", "beta_a − beta_b", "SD of outcome per SD of feature")),
    ("association/*_differences.tsv", "ci_low", col("CI lower bound", "Lower bound of the percentile interval of beta_a − beta_b over paired bootstrap resamples (the same subjects for both outcomes); not corrected for multiple comparisons")),
    ("association/*_differences.tsv", "ci_high", col("CI upper bound", "Upper bound of the percentile interval of beta_a − beta_b over paired bootstrap resamples")),
    ("association/*_differences.tsv", "resamples", unit("resamples used", "Bootstrap resamples fitted for both outcomes", "resamples")),
    ("association/*_differences.tsv", "ci_excludes_zero", Column { long_name: "interval excludes zero", description: "Whether the interval of the difference excludes zero (uncorrected)", units: None, levels: BOOLEAN }),
    ("association/*_region_means.tsv", "region", col("region", "Region (node) named in the edge columns")),
    ("association/*_region_means.tsv", "edges", unit("edges", "Edges of the feature group that join this region", "edges")),
    ("association/*_region_means.tsv", "mean_beta", unit("mean edge beta", "Mean of the standardised beta over the region's edges", "SD of outcome per SD of feature")),
    ("association/*_region_means.tsv", "p_perm", col("permutation p", "Two-sided permutation p-value of the mean beta (|mean beta| under the shared permutations)")),
    ("association/*_region_means.tsv", "p_fwe", col("FWE-corrected p", "Permutation p-value corrected over regions by the maximum |mean beta|")),
    // Per-run motion and regions on the BOLD grid.
    ("*_desc-motion_timeseries.tsv", "volume", unit("volume", "Volume index in the BOLD image, from 0", "volumes")),
    ("*_desc-motion_timeseries.tsv", "framewise_displacement", unit("framewise displacement", "Framewise displacement from the confounds file (Power et al. 2012); n/a for the first volume or without the column", "mm")),
    ("*_desc-motion_timeseries.tsv", "status", Column { long_name: "volume status", description: "What cleaning did with the volume", units: None, levels: &[("kept", "used"), ("non-steady-state", "dropped as a dummy scan"), ("censored", "censored for motion (scrubbing)")] }),
    ("*_desc-edges_connectivity.tsv", "edge", col("edge", "The study's edge (region pair, as named in connectome.tsv without the `conn_` prefix)")),
    ("*_desc-edges_connectivity.tsv", "value", col("edge value", "Connectivity of the edge in this run: Pearson correlation of the denoised region series, Fisher z-transformed when the study asks for it")),
    ("*_dseg.tsv", "label", col("label", "The region's value in the label image beside this table")),
    ("*_dseg.tsv", "region", col("region", "Region name")),
    ("*_dseg.tsv", "set", col("region set", "The study's region set ([regions.NAME]) the region belongs to")),
    ("*_dseg.tsv", "voxels_before", unit("voxels before resampling", "Voxels of the region in its own image", "voxels")),
    ("*_dseg.tsv", "voxels", unit("voxels", "Voxels of the region on the BOLD grid", "voxels")),
    ("*_dseg.tsv", "x", unit("centroid x", "World coordinate x of the region's centroid on the BOLD grid", "mm")),
    ("*_dseg.tsv", "y", unit("centroid y", "World coordinate y of the region's centroid", "mm")),
    ("*_dseg.tsv", "z", unit("centroid z", "World coordinate z of the region's centroid", "mm")),
    // Prediction repeats and permutation null.
    ("prediction/*_repeats.tsv", "repeat", col("repeat", "Repeat of the k-fold cross-validation, from 1")),
    ("prediction/*_null.tsv", "permutation", col("permutation", "Permutation number")),
    ("prediction/*_null.tsv", "r", col("null r", "Cross-validated prediction r with the outcome permuted")),
    ("prediction/*_repeats.tsv", "r", col("prediction r", "Pearson correlation of out-of-fold predictions and observed outcome in this repeat")),
    ("prediction/*_repeats.tsv", "r2", col("prediction R²", "1 − SSE/SST of this repeat's out-of-fold predictions")),
    ("prediction/*_repeats.tsv", "mae", col("mean absolute error", "Mean absolute error of this repeat's out-of-fold predictions")),
    ("prediction/*_repeats.tsv", "outcome", col("outcome", "The predicted outcome")),
    ("prediction/*_repeats.tsv", "model", col("model", "Prediction model (cpm-positive, cpm-negative, cpm-combined, ridge)")),
    ("prediction/*_null.tsv", "outcome", col("outcome", "The predicted outcome")),
    ("prediction/*_null.tsv", "model", col("model", "Prediction model (cpm-positive, cpm-negative, cpm-combined, ridge)")),
    // ROC per-subject scores.
    ("roc/*_scores.tsv", "label", Column { long_name: "label", description: "The participant's binary label", units: None, levels: BOOLEAN }),
    ("roc/*_scores.tsv", "in_sample_score", col("in-sample score", "The value scored, as used for the in-sample AUC")),
    ("roc/*_scores.tsv", "cross_validated_score", col("cross-validated score", "The value from the fold that held the participant out (selection redone per fold)")),
    ("roc/*_scores.tsv", "fold", col("fold", "The cross-validation fold that scored the participant, from 1")),
    // Associations (per-feature OLS) and their FDR.
    ("association/*", "outcome", col("outcome", "The outcome modelled (a score, factor or table column)")),
    ("association/*", "group", col("feature group", "The feature group (modality) the feature belongs to; FDR is applied within outcome × group")),
    ("association/*", "feature", col("feature", "The predictor column")),
    ("association/*", "n", unit("participants", "Participants in the model (complete cases)", "participants")),
    ("association/*", "beta", unit("standardised beta", "OLS coefficient of the feature (standardised when the study z-scores variables)", "SD of outcome per SD of feature")),
    ("association/*", "se", col("standard error", "Standard error of beta")),
    ("association/*", "t", col("t statistic", "t statistic of beta")),
    ("association/*", "p", col("parametric p", "Two-sided parametric p-value of beta (t distribution)")),
    ("association/*", "p_perm", col("permutation p", "Permutation p-value of beta (label permutations, exchangeability blocks respected)")),
    ("association/*", "p_fwe", col("FWE-corrected p", "Permutation p-value corrected across the features of the family by the max-statistic method")),
    ("association/*", "ci_low", col("CI lower bound", "Lower bound of the bootstrap confidence interval of beta")),
    ("association/*", "ci_high", col("CI upper bound", "Upper bound of the bootstrap confidence interval of beta")),
    ("association/*", "boot_skipped", unit("bootstrap resamples skipped", "Bootstrap resamples that could not be fitted (e.g. a constant column) and were skipped", "resamples")),
    ("association/*", "family", col("FDR family", "The family over which FDR is controlled: `outcome:group`")),
    ("association/*", "p_fdr", col("p used for FDR", "The p-value entered into Benjamini–Hochberg (the permutation p when permutations were run, else the parametric p)")),
    ("association/*", "q", col("FDR q", "Benjamini–Hochberg adjusted p-value (q) within the family")),
    ("association/*", "significant", Column { long_name: "significant", description: "Whether q is at or below the study's FDR level", units: None, levels: BOOLEAN }),
    // Replication.
    ("replication.tsv", "outcome", col("outcome", "The outcome modelled")),
    ("replication.tsv", "group", col("feature group", "The feature group (modality)")),
    ("replication.tsv", "feature", col("feature", "The predictor column")),
    ("replication.tsv", "family", col("FDR family", "The discovery FDR family: `outcome:group`")),
    ("replication.tsv", "beta_discovery", col("discovery beta", "beta in the discovery sample")),
    ("replication.tsv", "q_discovery", col("discovery q", "FDR q in the discovery sample")),
    ("replication.tsv", "beta_held_out", col("held-out beta", "beta in the held-out sample")),
    ("replication.tsv", "p_held_out", col("held-out p", "p-value in the held-out sample (the p entered into FDR there)")),
    ("replication.tsv", "p_held_out_adjusted", col("held-out adjusted p", "Held-out p adjusted (Benjamini–Hochberg) over the discovery hits tested")),
    ("replication.tsv", "replicated", Column { long_name: "replicated", description: "Whether the hit replicated: same sign and adjusted held-out p at or below the FDR level", units: None, levels: BOOLEAN }),
    // Simulation truth.
    ("simulation/truth.tsv", "feature", col("feature", "Simulated feature column")),
    ("simulation/truth.tsv", "outcome", col("outcome", "Simulated outcome")),
    ("simulation/truth.tsv", "b_latent", col("planted latent effect", "Effect of the latent trait on the feature planted by the simulator")),
    ("simulation/truth.tsv", "beta", col("planted beta", "The standardised beta the planted effect implies")),
    // Factors.
    ("factors/loadings.tsv", "item", col("item", "Questionnaire item")),
    ("factors/loadings.tsv", "communality", col("communality", "Share of the item's variance explained by the factors")),
    ("factors/loadings.tsv", "uniqueness", col("uniqueness", "1 − communality")),
    ("factors/loadings.tsv", "*", col("factor loading", "Loading of the item on this factor (pattern matrix after rotation)")),
    ("factors/weights.tsv", "item", col("item", "Questionnaire item")),
    ("factors/weights.tsv", "*", col("score weight", "Weight of the standardised item in this factor's score")),
    ("factors/phi.tsv", "factor", col("factor", "Factor")),
    ("factors/phi.tsv", "*", col("factor correlation", "Correlation between the two factors (identity for orthogonal rotations)")),
    ("factors/scores.tsv", "*", unit("factor score", "The participant's score on this factor (items standardised with the discovery means and SDs)", "z")),
    // Prediction.
    ("prediction/*_metrics.tsv", "outcome", col("outcome", "The predicted outcome")),
    ("prediction/*_metrics.tsv", "model", Column { long_name: "model", description: "Prediction model", units: None, levels: &[
        ("cpm-positive", "connectome-based predictive modelling, positive network"),
        ("cpm-negative", "connectome-based predictive modelling, negative network"),
        ("cpm-combined", "connectome-based predictive modelling, positive minus negative network"),
        ("ridge", "ridge regression on every edge"),
    ] }),
    ("prediction/*_metrics.tsv", "evaluation", Column { long_name: "evaluation", description: "How the metric was obtained", units: None, levels: &[("cross-validation", "repeated k-fold in the fit sample"), ("held-out", "the final model applied once to the held-out sample")] }),
    ("prediction/*_metrics.tsv", "n", unit("participants", "Participants evaluated", "participants")),
    ("prediction/*_metrics.tsv", "r", col("prediction r", "Pearson correlation of predicted and observed outcome")),
    ("prediction/*_metrics.tsv", "r_ci_low", col("r CI lower bound", "Lower bound of the confidence interval of r")),
    ("prediction/*_metrics.tsv", "r_ci_high", col("r CI upper bound", "Upper bound of the confidence interval of r")),
    ("prediction/*_metrics.tsv", "r2", col("prediction R²", "1 − SSE/SST of the predictions")),
    ("prediction/*_metrics.tsv", "mae", col("mean absolute error", "Mean absolute error of the predictions, in outcome units")),
    ("prediction/*_metrics.tsv", "p_r", col("permutation p of r", "Permutation p-value of r")),
    ("prediction/*_metrics.tsv", "p_r2", col("permutation p of R²", "Permutation p-value of R²")),
    ("prediction/*_metrics.tsv", "p_mae", col("permutation p of MAE", "Permutation p-value of the mean absolute error (smaller is better)")),
    ("prediction/*_metrics.tsv", "permutations", unit("permutations", "Permutations run for the p-values", "permutations")),
    ("prediction/*_metrics.tsv", "note", col("note", "What to keep in mind reading this row; n/a when nothing")),
    ("prediction/*_edges.tsv", "feature", col("feature", "The edge (feature) column")),
    ("prediction/*_edges.tsv", "selected_positive", col("selected positive", "Share of cross-validation folds in which CPM selected the edge in its positive network")),
    ("prediction/*_edges.tsv", "selected_negative", col("selected negative", "Share of cross-validation folds in which CPM selected the edge in its negative network")),
    ("prediction/*_edges.tsv", "mean_r", col("mean edge r", "Mean over folds of the edge's correlation with the outcome in the training folds")),
    ("prediction/*_edges.tsv", "ridge_weight", col("ridge weight", "The final ridge model's weight of the standardised edge")),
    ("prediction/*_predictions.tsv", "target", col("observed outcome", "The observed outcome value")),
    ("prediction/*_predictions.tsv", "*", col("predicted outcome", "The model's prediction of the outcome (out of fold in cross-validation; the final model on held-out)")),
    // ROC.
    ("roc/*", "value", col("predictor", "The value scored (a column, or a map value in a region or cluster)")),
    ("roc/*", "label", col("label", "The binary label predicted")),
    ("roc/*", "evaluation", col("evaluation", "`in-sample` or `cross-validated`")),
    ("roc/*", "n", unit("participants", "Participants with both value and label", "participants")),
    ("roc/*", "positives", unit("positives", "Participants with the positive label", "participants")),
    ("roc/*", "auc", col("AUC", "Area under the ROC curve")),
    ("roc/*", "delong_ci_low", col("DeLong CI lower bound", "Lower bound of DeLong's confidence interval of the AUC")),
    ("roc/*", "delong_ci_high", col("DeLong CI upper bound", "Upper bound of DeLong's confidence interval of the AUC")),
    ("roc/*", "bootstrap_ci_low", col("bootstrap CI lower bound", "Lower bound of the bootstrap confidence interval of the AUC; n/a when not computed")),
    ("roc/*", "bootstrap_ci_high", col("bootstrap CI upper bound", "Upper bound of the bootstrap confidence interval of the AUC; n/a when not computed")),
    ("roc/*", "p_perm", col("permutation p", "Permutation p-value of the AUC")),
    ("roc/*", "circular", Column { long_name: "circular", description: "Whether the value was selected on the same participants (optimistic)", units: None, levels: BOOLEAN }),
    ("roc/*", "note", col("note", "What to keep in mind reading this row")),
    // Group analyses: clusters, edges, components.
    ("group/*_clusters.tsv", "cluster", col("cluster", "Cluster number, largest first")),
    ("group/*_clusters.tsv", "sign", Column { long_name: "sign", description: "Direction of the effect", units: None, levels: &[("positive", "t > 0"), ("negative", "t < 0")] }),
    ("group/*_clusters.tsv", "size_voxels", unit("size", "Cluster size", "voxels")),
    ("group/*_clusters.tsv", "volume_mm3", unit("volume", "Cluster volume", "mm^3")),
    ("group/*_clusters.tsv", "peak_t", col("peak t", "t statistic at the cluster's peak")),
    ("group/*_clusters.tsv", "peak_i", unit("peak i", "Voxel index (first axis) of the peak", "voxels")),
    ("group/*_clusters.tsv", "peak_j", unit("peak j", "Voxel index (second axis) of the peak", "voxels")),
    ("group/*_clusters.tsv", "peak_k", unit("peak k", "Voxel index (third axis) of the peak", "voxels")),
    ("group/*_clusters.tsv", "peak_x", unit("peak x", "World coordinate x of the peak (the image's sform)", "mm")),
    ("group/*_clusters.tsv", "peak_y", unit("peak y", "World coordinate y of the peak", "mm")),
    ("group/*_clusters.tsv", "peak_z", unit("peak z", "World coordinate z of the peak", "mm")),
    ("group/*_clusters.tsv", "p_fwe", col("cluster FWE p", "Cluster-extent p-value, family-wise corrected by permutation")),
    ("group/*_clusters.tsv", "label", col("peak label", "Atlas region at the peak; n/a when outside every region")),
    ("group/*_edges.tsv", "edge", col("edge", "Connectome edge column")),
    ("group/*_edges.tsv", "n", unit("participants", "Participants in the model", "participants")),
    ("group/*_edges.tsv", "beta", col("beta", "The contrast's coefficient for the edge")),
    ("group/*_edges.tsv", "t", col("t statistic", "t statistic of the contrast")),
    ("group/*_edges.tsv", "p", col("parametric p", "Two-sided parametric p-value")),
    ("group/*_edges.tsv", "p_perm", col("permutation p", "Uncorrected permutation p-value")),
    ("group/*_edges.tsv", "p_fwe", col("FWE-corrected p", "Permutation p-value corrected over edges by the max-statistic method")),
    ("group/*_components.tsv", "component", col("component", "NBS component number, largest first")),
    ("group/*_components.tsv", "edges", unit("edges", "Edges in the component", "edges")),
    ("group/*_components.tsv", "regions", unit("regions", "Regions the component's edges join", "regions")),
    ("group/*_components.tsv", "size", col("component size", "The NBS statistic of the component (edge count or summed supra-threshold t)")),
    ("group/*_components.tsv", "intensity", col("component intensity", "The NBS statistic of the component: summed supra-threshold t")),
    ("group/*_components.tsv", "p_fwe", col("component FWE p", "Permutation p-value of the component, family-wise corrected (NBS)")),
    ("group/*_components.tsv", "edge_names", col("edge names", "The component's edges, comma-separated")),
];

/// `*` matches any run of characters (greedy enough for these short patterns).
fn matches(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else { return false };
            (0..=tail.len()).filter(|&i| tail.is_char_boundary(i)).any(|i| matches(rest, &tail[i..]))
        }
    }
}

/// Whether the registry describes `column` of the published table at `table` (a path in the
/// output folder).
pub fn entry(table: &str, column: &str) -> Option<Column> {
    ENTRIES.iter().find(|(t, c, _)| matches(t, table) && matches(c, column)).map(|(_, _, d)| *d)
}

/// The description of `column` of the published table `table`, [`UNDESCRIBED`] if none.
pub fn describe(table: &str, column: &str) -> Column {
    entry(table, column).unwrap_or(UNDESCRIBED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_names() {
        assert!(matches("association/*", "association/discovery.tsv"));
        assert!(matches("*_covariate_levels.tsv", "prediction/F1_covariate_levels.tsv"));
        assert!(!matches("roc/*", "group/roc.tsv"));
        assert!(matches("conn_*", "conn_a__b"));
        assert!(!matches("scores.tsv", "factors/scores.tsv"));
    }

    #[test]
    fn specific_entries_win_over_general_ones() {
        assert_eq!(describe("factors/loadings.tsv", "item").long_name, "item");
        assert_eq!(describe("factors/loadings.tsv", "F1").long_name, "factor loading");
        assert_eq!(describe("prediction/F1_covariate_levels.tsv", "reference").levels, BOOLEAN);
        assert_eq!(describe("nowhere.tsv", "mystery"), UNDESCRIBED);
    }
}
