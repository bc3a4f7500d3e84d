//! The study specification: typed, documented, checked.
//!
//! A study file is parsed into [`Study`] (serde, `deny_unknown_fields`), whose doc comments are
//! also the JSON Schema's descriptions (`neurospec schema`). [`load`] turns TOML problems into
//! located [`Diagnostic`](crate::error::Diagnostic)s; [`check`] runs the semantic validation
//! (files exist, columns exist, terms parse, the split leaves people on both sides) that must
//! pass before any compute.
//!
//! Invariant: nothing here computes results. `check` reads table headers and, for the few checks
//! that need them, column values (ranges, ids), never more.
//!
//! One file because these types are the study file's schema: every section and its doc comments
//! (which become the JSON Schema's descriptions) read top to bottom in the order of a study.

pub mod check;
pub mod expr;
pub mod load;
pub mod schema;
pub mod shape;
pub mod terms;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use crate::behaviour::efa::{Extraction, Rotation, Scores};
pub use crate::behaviour::scoring::{MissingItems, ScoreMethod};
pub use crate::imaging::run::DummyScans;
pub use crate::stats::association::PermutationScheme;
pub use crate::stats::exchange::BlockPermutation;
pub use crate::stats::nbs::NbsStatistic;
pub use crate::stats::voxelwise::Tail;
pub use crate::tables::TableFormat;
pub use load::{LoadedStudy, load};

/// A whole study.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Study {
    /// Name, seed and subject identifier.
    pub study: StudyMeta,
    /// Generate the input tables with neurospec's simulator instead of reading files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulate: Option<Simulate>,
    /// Input tables by name. Each comes from a file (`path`) or from the simulator (`simulated`).
    pub tables: BTreeMap<String, TableSpec>,
    /// Scores computed from questionnaire items, by name (the name becomes a column).
    #[serde(default)]
    pub scores: BTreeMap<String, ScoreSpec>,
    /// Derived variables by name: an expression over table columns, scores and other derived
    /// variables, e.g. `response = "(madrs_pre - madrs_post) / madrs_pre >= 0.5"` (see
    /// `spec::expr` for the language). Either the expression, or `{ expr = "...", undefined =
    /// "missing" }` to make undefined values (division by zero, log of a number ≤ 0) missing
    /// instead of an error naming the subject.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub derived: BTreeMap<String, DerivedSpec>,
    /// Feature groups (e.g. imaging modalities) by name: column names or `*` patterns.
    #[serde(default)]
    pub features: BTreeMap<String, Vec<String>>,
    /// Which subjects enter the analysis.
    #[serde(default)]
    pub exclusions: Exclusions,
    /// Discovery / held-out split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitSpec>,
    /// Mass-univariate association of features with outcomes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association: Option<Association>,
    /// Resting-state images: where the runs are (an fMRIPrep folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imaging: Option<Imaging>,
    /// Named region sets (e.g. `nuclei`, `rois`), each built from any mix of a label atlas,
    /// probabilistic maps, spheres and masks.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub regions: BTreeMap<String, RegionSet>,
    /// Denoising of region time series (nilearn `signal.clean` semantics).
    #[serde(default)]
    pub denoise: Denoise,
    /// Connectivity edges computed per subject; they form the table `connectome`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connectivity: Option<ConnectivitySpec>,
    /// Seed-to-voxel Fisher-z maps per run (within a brain mask), for voxelwise group analyses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_maps: Option<SeedMapsSpec>,
    /// Group-level analyses by name: two-sample, paired or correlation designs on seed-to-voxel
    /// maps (max-T and cluster-extent FWE) or on connectome edges (max-T FWE).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub group: BTreeMap<String, GroupSpec>,
    /// ROC analyses by name: how well a value classifies a binary outcome.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roc: BTreeMap<String, RocSpec>,
    /// Exploratory factor analysis of questionnaire scales, fitted on the discovery set only;
    /// the factor scores become columns usable as outcomes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factors: Option<Factors>,
    /// Cross-validated prediction of outcomes from features (CPM, ridge) in the discovery set,
    /// and the final model tested once on the held-out set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<Prediction>,
    /// Where results are written.
    #[serde(default)]
    pub outputs: Outputs,
    /// Cluster resources per stage kind for `run --executor slurm`, e.g. `[resources.imaging-run]
    /// cpus = 1, memory = "2G", time = "00:10:00"`, and for the job that publishes the output
    /// folder, `[resources.publish]`. Unset fields keep the measured defaults.
    /// A local run ignores this section, and it never enters a fingerprint.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, Resources>,
}

/// What one stage instance of a kind (or, as `[resources.publish]`, the job that publishes the
/// output folder) asks the cluster for. A Slurm array task that packs several stages asks for
/// their summed `time`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU cores (Slurm `--cpus-per-task`; also the stage's worker threads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    /// Memory, a whole number with unit K, M, G or T (Slurm `--mem`), e.g. `"2G"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Wall time of one stage instance in Slurm's format: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`,
    /// `D-HH:MM` or `D-HH:MM:SS`, e.g. `"00:10:00"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// Seed-to-voxel maps.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedMapsSpec {
    /// Seed region names (from any region set).
    pub seeds: Vec<String>,
    /// Brain mask on the BOLD grid; its non-zero voxels are mapped and analysed.
    pub mask: String,
}

/// One group-level analysis.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// `two-sample` (group of interest vs the rest, on `group`), `paired` (after − before over
    /// two `sessions`, by sign flipping) or `correlation` (with `variable`).
    pub design: GroupDesign,
    /// Voxelwise: the seed whose seed-to-voxel maps are tested (needs [seed_maps]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    /// Region level instead: connectome edges (names or `*` patterns, without session suffix).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<String>,
    /// Sessions: one for two-sample and correlation designs; `[before, after]` for a paired
    /// design, which tests after − before. Empty without [imaging] sessions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<String>,
    /// Two-sample: the 0/1 column (1 = group of interest; e.g. a derived `response`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Correlation: the continuous column (e.g. symptom change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variable: Option<String>,
    /// Nuisance columns (two-sample and correlation designs); `C(site)` for a categorical one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub covariates: Vec<String>,
    /// Random permutations (sign flips for paired designs).
    #[serde(default = "default_group_permutations")]
    pub permutations: usize,
    /// Exchangeability blocks for the permutations (e.g. `family_id`): subjects are only
    /// rearranged as PALM's blocks allow (Winkler et al. 2015).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permutation_blocks: Option<String>,
    /// With `permutation_blocks`: `within` (shuffle inside each block) or `whole` (exchange whole
    /// blocks of equal size; sign flips flip whole blocks).
    #[serde(default, skip_serializing_if = "BlockPermutation::is_default")]
    pub block_permutation: BlockPermutation,
    /// Direction of the test: `two-sided` (default), `positive` or `negative`.
    #[serde(default)]
    pub tail: Tail,
    /// Cluster-forming threshold as |t| (voxelwise; default: p < 0.001 uncorrected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_t: Option<f64>,
    /// Cluster-forming threshold as an uncorrected p (used when `cluster_t` is absent).
    #[serde(default = "default_cluster_p")]
    pub cluster_p: f64,
    /// Voxel neighbourhood for clusters: 6, 18 or 26.
    #[serde(default = "default_cluster_connectivity")]
    #[schemars(schema_with = "schema::connectivity_schema")]
    pub connectivity: u8,
    /// Region set whose atlas labels name cluster peaks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_labels: Option<String>,
    /// Voxelwise: threshold-free cluster enhancement (as nilearn) with max-TFCE FWE, written as
    /// `NAME_stat-tfce.nii.gz` and `NAME_stat-tfcepfwe.nii.gz`; uses `connectivity`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tfce: bool,
    /// TFCE extent exponent E.
    #[serde(default = "default_tfce_e")]
    pub tfce_e: f64,
    /// TFCE height exponent H.
    #[serde(default = "default_tfce_h")]
    pub tfce_h: f64,
    /// TFCE height steps (the step is max |t| / steps).
    #[serde(default = "default_tfce_steps")]
    pub tfce_steps: usize,
    /// Region level: the network-based statistic on the edges' graph, with a component table
    /// (`NAME_components.tsv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbs: Option<NbsSpec>,
}

/// `nbs = { threshold_t = 3.0 }` or `{ threshold_p = 0.001 }`, optionally `statistic`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NbsSpec {
    /// Edges with |t| above this (one-sided: t or −t) form the graph.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_t: Option<f64>,
    /// Or an uncorrected p (two-sided for a two-sided tail), converted to t with the model's df.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_p: Option<f64>,
    /// Component statistic: `size` (edges) or `intensity` (sum of |t|).
    #[serde(default)]
    pub statistic: NbsStatistic,
}

fn default_tfce_e() -> f64 {
    crate::stats::tfce::DEFAULT_E
}
fn default_tfce_h() -> f64 {
    crate::stats::tfce::DEFAULT_H
}
fn default_tfce_steps() -> usize {
    crate::stats::tfce::DEFAULT_STEPS
}

fn default_group_permutations() -> usize {
    5000
}
fn default_cluster_p() -> f64 {
    0.001
}
fn default_cluster_connectivity() -> u8 {
    26
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GroupDesign {
    TwoSample,
    Paired,
    Correlation,
}

/// One ROC analysis.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RocSpec {
    /// The classifier: a column, e.g. `conn_LB_left__precuneus__pre` (or use `cluster_of`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Or: the mean seed-map value in the largest cluster of this voxelwise two-sample group
    /// analysis (one session), found with the same people — so the in-sample AUC is flagged
    /// circular and a cross-validated AUC refits the analysis inside each training fold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_of: Option<String>,
    /// The binary outcome column (1 = positive), e.g. a derived `response`.
    pub label: String,
    /// The two-sample group analysis (region level) that chose `value` among its edges using the same
    /// people: the in-sample AUC is then flagged circular, and a cross-validated AUC redoes
    /// the choice inside each training fold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_by: Option<String>,
    /// Folds of the cross-validated AUC.
    #[serde(default = "default_roc_folds")]
    pub folds: usize,
    /// Bootstrap resamples for the percentile CI (the DeLong CI is always given).
    #[serde(default = "default_roc_resamples")]
    pub bootstrap: usize,
    /// Label permutations for the p-value.
    #[serde(default = "default_roc_resamples")]
    pub permutations: usize,
    /// Exchangeability blocks for the permutations (e.g. `family_id`): subjects are only
    /// rearranged as PALM's blocks allow (Winkler et al. 2015).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permutation_blocks: Option<String>,
    /// With `permutation_blocks`: `within` (shuffle inside each block) or `whole` (exchange whole
    /// blocks of equal size; sign flips flip whole blocks).
    #[serde(default, skip_serializing_if = "BlockPermutation::is_default")]
    pub block_permutation: BlockPermutation,
    /// Confidence level of the AUC's intervals (e.g. 0.95).
    #[serde(default = "default_ci_level")]
    pub ci_level: f64,
}

fn default_roc_folds() -> usize {
    5
}
fn default_roc_resamples() -> usize {
    2000
}

/// One derived variable.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum DerivedSpec {
    Expr(String),
    Full {
        /// The expression (see docs/derived.md).
        expr: String,
        /// Where the expression is undefined (division by zero, log of 0, …): `error` stops
        /// naming the subject; `missing` leaves the value missing and counts it.
        #[serde(default)]
        undefined: UndefinedPolicy,
    },
}

impl DerivedSpec {
    pub fn text(&self) -> &str {
        match self {
            DerivedSpec::Expr(t) | DerivedSpec::Full { expr: t, .. } => t,
        }
    }
    pub fn undefined(&self) -> UndefinedPolicy {
        match self {
            DerivedSpec::Expr(_) => UndefinedPolicy::Error,
            DerivedSpec::Full { undefined, .. } => *undefined,
        }
    }
}

/// What a derived expression does where it is undefined for a subject.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UndefinedPolicy {
    /// Stop, naming the subject, the operation and the values.
    #[default]
    Error,
    /// The value is missing (the subject may then be excluded as incomplete, and is counted).
    Missing,
}

/// Where the resting-state runs are.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Imaging {
    /// fMRIPrep derivatives folder (relative to the study file).
    pub fmriprep: String,
    /// Task label, e.g. `rest`.
    pub task: String,
    /// Output space, e.g. `MNI152NLin2009cAsym`.
    pub space: String,
    /// A subject folder without a usable run: `error` (stop in `check`) or `exclude` (listed).
    #[serde(default)]
    pub missing_runs: MissingRuns,
    /// BIDS session labels (e.g. `["pre", "post"]`): one run per subject and session, paired
    /// by subject; every connectome column then exists per session (`conn_a__b__pre`). Empty:
    /// one run per subject, whatever its session.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<String>,
    /// Which runs of a subject (and session): `"all"` (each run is its own stage; a subject's
    /// connectivity is the mean Fisher z over its included runs) or run numbers, e.g. `[1]`
    /// (an image without `_run-` is run 1). Default: one run per subject; several are an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<RunSelection>,
    /// fMRIPrep's `_res-` entity, to choose among resolutions (e.g. `"2"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub res: Option<String>,
    /// fMRIPrep's `_den-` entity (surface density), to choose among alternatives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub den: Option<String>,
    /// BIDS `_acq-` entity, to choose among acquisitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acq: Option<String>,
    /// BIDS `_ce-` entity (contrast enhancement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ce: Option<String>,
    /// BIDS `_rec-` entity (reconstruction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rec: Option<String>,
    /// BIDS `_dir-` entity (phase-encoding direction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// BIDS `_echo-` entity (one echo of multi-echo data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo: Option<String>,
}

/// Entity fields of `[imaging]` that choose among images, in the order of BIDS names.
pub const IMAGING_ENTITIES: [&str; 7] = ["acq", "ce", "rec", "dir", "echo", "res", "den"];

impl Imaging {
    /// The `(entity, value)` pairs the study asks images to carry.
    pub fn entity_selection(&self) -> Vec<(String, String)> {
        let values = [&self.acq, &self.ce, &self.rec, &self.dir, &self.echo, &self.res, &self.den];
        IMAGING_ENTITIES
            .iter()
            .zip(values)
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_string(), v.clone())))
            .collect()
    }
}

/// `runs = "all"` or `runs = [1, 2]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunSelection {
    All,
    Numbers(Vec<u32>),
}

impl RunSelection {
    /// Whether a run labelled `label` (`None`: no `_run-` entity, run 1) is selected.
    pub fn selects(&self, label: Option<&str>) -> bool {
        match self {
            RunSelection::All => true,
            RunSelection::Numbers(numbers) => {
                let number = label.map_or(Some(1), |l| l.parse::<u32>().ok());
                number.is_some_and(|n| numbers.contains(&n))
            }
        }
    }
}

impl Serialize for RunSelection {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            RunSelection::All => s.serialize_str("all"),
            RunSelection::Numbers(n) => n.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for RunSelection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "`\"all\"` or a list of run numbers, e.g. [1]")]
        enum Written {
            Numbers(Vec<u32>),
            Text(String),
        }
        match Written::deserialize(d)? {
            Written::Numbers(n) if n.is_empty() => {
                Err(serde::de::Error::custom("list at least one run number, e.g. [1]"))
            }
            Written::Numbers(n) => Ok(RunSelection::Numbers(n)),
            Written::Text(t) if t == "all" => Ok(RunSelection::All),
            Written::Text(t) => {
                Err(serde::de::Error::custom(format!("`{t}`: write \"all\" or a list of run numbers, e.g. [1]")))
            }
        }
    }
}

impl JsonSchema for RunSelection {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RunSelection".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "\"all\" or a list of run numbers",
            "anyOf": [{"const": "all"}, {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1}]
        })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MissingRuns {
    #[default]
    Error,
    Exclude,
}

/// One named set of regions.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionSet {
    /// Integer label image (0 = background).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atlas: Option<String>,
    /// Label table for `atlas`: `index name` per line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<String>,
    /// Only these label names from the table (default: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// 4D probabilistic maps, one region per volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maps: Option<String>,
    /// Names of the `maps` volumes, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub map_names: Vec<String>,
    /// Probability (%) from which a voxel belongs to a map's region (or use `map_maxprob`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_threshold: Option<f64>,
    /// Each voxel to its most probable map.
    #[serde(default)]
    pub map_maxprob: bool,
    /// Spheres at MNI coordinates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spheres: Vec<SphereSpec>,
    /// Binary masks: name → image.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub masks: BTreeMap<String, String>,
    /// Warn when a region keeps less than this fraction of its voxels after resampling.
    #[serde(default = "default_min_kept")]
    pub min_kept_fraction: f64,
}

fn default_min_kept() -> f64 {
    0.5
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SphereSpec {
    /// The region's name (a column label in the time series and connectome).
    pub name: String,
    /// Centre in MNI mm.
    pub centre: [f64; 3],
    /// Radius in mm.
    pub radius: f64,
}

/// Denoising settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Denoise {
    /// Confound strategy: none, 6P, 24P, 36P, acompcorN (count), acompcor_all, acompcorN%
    /// (cumulative variance explained, from the confounds' JSON sidecar), gsr, nilearn's presets
    /// `simple`, `scrubbing` (with its censoring, unless thresholds are given here) and
    /// `compcor`, or a comma-separated column list.
    #[serde(default = "default_strategy")]
    #[schemars(schema_with = "schema::strategy_schema")]
    pub strategy: String,
    /// Non-steady-state volumes dropped before cleaning: `"auto"` (those fMRIPrep flags in
    /// `non_steady_state_outlierNN`), a number of first volumes, or 0 (keep all).
    #[serde(default, skip_serializing_if = "DummyScans::is_auto")]
    pub dummy_scans: DummyScans,
    /// Scrub volumes with framewise displacement above this (mm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd_threshold: Option<f64>,
    /// Scrub volumes whose standardised DVARS (`std_dvars`) is above this (nilearn's scrubbing
    /// uses 1.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std_dvars_threshold: Option<f64>,
    /// Also scrub the volumes fMRIPrep flags in its `motion_outlierNN` columns.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub motion_outliers: bool,
    /// A run with less clean data than this (seconds, after dropping and scrubbing) is
    /// excluded (and listed), as XCP-D's `--min-time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_clean_seconds: Option<f64>,
    /// After scrubbing, drop kept segments shorter than this many volumes.
    #[serde(default = "default_min_segment")]
    pub min_segment: usize,
    /// Band-pass [high-pass, low-pass] in Hz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub band: Option<[f64; 2]>,
    /// Remove each series' linear trend before filtering (nilearn's `detrend`).
    #[serde(default = "default_true")]
    pub detrend: bool,
    /// Z-score each cleaned series (nilearn's `standardize="zscore_sample"`).
    #[serde(default = "default_true")]
    pub standardize: bool,
    /// A run with fewer volumes left is excluded (and listed).
    #[serde(default = "default_min_volumes")]
    pub min_volumes: usize,
}

impl Default for Denoise {
    fn default() -> Self {
        Denoise {
            strategy: default_strategy(),
            dummy_scans: DummyScans::Auto,
            fd_threshold: None,
            std_dvars_threshold: None,
            motion_outliers: false,
            min_clean_seconds: None,
            min_segment: default_min_segment(),
            band: None,
            detrend: true,
            standardize: true,
            min_volumes: default_min_volumes(),
        }
    }
}

fn default_strategy() -> String {
    "24P".into()
}
fn default_min_segment() -> usize {
    5
}
fn default_true() -> bool {
    true
}
fn default_min_volumes() -> usize {
    crate::imaging::run::DEFAULT_MIN_VOLUMES
}

/// Per-subject connectivity between region sets.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectivitySpec {
    /// Pearson correlation of the cleaned series.
    #[serde(default)]
    pub measure: ConnectivityMeasure,
    /// Store Fisher z (atanh r) instead of r.
    #[serde(default = "default_true")]
    pub fisher_z: bool,
    /// Pairs of region sets: `[["nuclei", "rois"]]` gives every nucleus × ROI edge; a set paired
    /// with itself gives its upper triangle.
    pub pairs: Vec<[String; 2]>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConnectivityMeasure {
    #[default]
    Pearson,
}

/// Exploratory factor analysis (see `neurospec efa` for the same model on one table).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Factors {
    /// Input variables: columns, `*` patterns or score names (e.g. questionnaire scale scores).
    /// A subject missing any of them is excluded (and listed); nothing is imputed.
    pub items: Vec<String>,
    /// Number of factors: a number, `"parallel"` (Horn's parallel analysis, 95th percentile) or
    /// `"map"` (Velicer's MAP).
    #[serde(default)]
    pub count: FactorCount,
    /// Extraction method.
    #[serde(default)]
    pub method: Extraction,
    /// Rotation.
    #[serde(default)]
    pub rotation: Rotation,
    /// Oblimin γ (0 = quartimin); read only with `rotation = "oblimin"`.
    #[serde(default)]
    pub gamma: f64,
    /// Target matrix for `rotation = "target_ort"` or `"target_obl"`: a TSV file (relative to the
    /// study file) with a header (`item`, then one column per factor) and one row per item; `NA`
    /// leaves a cell unspecified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Factor score method.
    #[serde(default)]
    pub scores: Scores,
    /// Simulated data sets for parallel analysis.
    #[serde(default = "default_parallel_simulations")]
    pub parallel_simulations: usize,
    /// Names of the factor score columns, in factor order (largest variance first). Default:
    /// `F1`, `F2`, …. With a data-driven `count`, a different number of factors is an error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}

fn default_parallel_simulations() -> usize {
    1000
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum FactorCount {
    Fixed(usize),
    Rule(FactorRule),
}

impl Default for FactorCount {
    fn default() -> Self {
        FactorCount::Rule(FactorRule::Parallel)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FactorRule {
    Parallel,
    Map,
}

/// Cross-validated prediction.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Prediction {
    /// Outcome columns, score names or factor names.
    pub outcomes: Vec<String>,
    /// Feature group names from `[features]` (e.g. the connectome edges).
    pub features: Vec<String>,
    /// Columns regressed out of features and outcome inside each training fold; `C(site)` for a
    /// categorical one (indicators coded on the training sample).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confounds: Vec<String>,
    /// Models: `cpm` (positive, negative and combined networks) and/or `ridge`.
    #[serde(default = "default_models")]
    pub models: Vec<PredictionModel>,
    /// k of the k-fold cross-validation.
    #[serde(default = "default_folds")]
    pub folds: usize,
    /// Repeats of the k-fold cross-validation (different random folds).
    #[serde(default = "default_repeats")]
    pub repeats: usize,
    /// Keep subjects sharing a value of this column (e.g. a family id) in one fold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_column: Option<String>,
    /// CPM edge selection threshold (two-sided p of the edge–outcome correlation).
    #[serde(default = "default_cpm_p")]
    pub cpm_p: f64,
    /// Ridge penalties searched by leave-one-out CV within each training fold.
    #[serde(default = "default_alphas")]
    pub ridge_alphas: Vec<f64>,
    /// Permutations of the outcome for p-values of the cross-validated metrics (0 = none).
    #[serde(default = "default_prediction_permutations")]
    pub permutations: usize,
    /// Exchangeability blocks for the permutations (e.g. `family_id`): subjects are only
    /// rearranged as PALM's blocks allow (Winkler et al. 2015).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permutation_blocks: Option<String>,
    /// With `permutation_blocks`: `within` (shuffle inside each block) or `whole` (exchange whole
    /// blocks of equal size; sign flips flip whole blocks).
    #[serde(default, skip_serializing_if = "BlockPermutation::is_default")]
    pub block_permutation: BlockPermutation,
    /// Confidence level of the held-out r.
    #[serde(default = "default_ci_level")]
    pub ci_level: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PredictionModel {
    Cpm,
    Ridge,
}

fn default_models() -> Vec<PredictionModel> {
    vec![PredictionModel::Cpm, PredictionModel::Ridge]
}
fn default_folds() -> usize {
    10
}
fn default_repeats() -> usize {
    10
}
fn default_cpm_p() -> f64 {
    0.01
}
fn default_alphas() -> Vec<f64> {
    vec![0.01, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5]
}
fn default_prediction_permutations() -> usize {
    1000
}

/// Study-wide settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StudyMeta {
    /// Short name; used for the output folder `derivatives/<name>/`.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Master seed. Every random draw (simulation, split, permutations, bootstrap) comes from a
    /// generator seeded from this and the stage's identity.
    pub seed: u64,
    /// Name of the subject identifier column in every table (a table may override it).
    #[serde(default = "default_subject_id")]
    pub subject_id: String,
    /// The datasets the inputs come from, for `dataset_description.json`'s `SourceDatasets`:
    /// each a DOI or URL string, or `{ name, url, doi }`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<crate::design::SourceDataset>,
}

fn default_subject_id() -> String {
    "eid".to_string()
}

/// A simulated cohort (the embedded default; also useful for power analysis).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Simulate {
    /// Which cohort design to simulate.
    pub preset: Preset,
    /// Number of subjects.
    pub subjects: usize,
    /// Simulation seed (default: derived from the study seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// For presets that write files (images): the folder, relative to the study file, where
    /// the cohort is written before the study is checked. It is rewritten only when the preset,
    /// subjects or seed change; the study's tables and [imaging] then read from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
}

/// Simulator presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// UK-Biobank-style tabular study: ~200 IDPs, symptom items at two visits, covariates,
    /// planted standardised effects and true nulls (de Lange et al. 2025 design).
    UkbSymptoms,
    /// HCP-style cohort in families: 33 questionnaire scales from 4 correlated dimensions, and
    /// an fMRIPrep folder of resting-state runs with planted amygdala-nucleus → ROI couplings
    /// (Klein-Flügge et al. 2022 design). Written as files into `dir`.
    AmygdalaWellbeing,
    /// Depressed patients (31 anxious of 49) scanned at rest before and after six ketamine
    /// infusions (`ses-pre`, `ses-post`), MADRS before and at day 13, probabilistic amygdala
    /// subregion maps and a target atlas; LB_left → precuneus coupling is higher in responders
    /// and falls after treatment (Yuan et al. 2023 design). Written as files into `dir`.
    KetamineResponse,
}

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::UkbSymptoms => "ukb-symptoms",
            Preset::AmygdalaWellbeing => "amygdala-wellbeing",
            Preset::KetamineResponse => "ketamine-response",
        }
    }

    /// Whether the preset writes files (into `[simulate] dir`) instead of simulated tables.
    pub fn writes_files(self) -> bool {
        matches!(self, Preset::AmygdalaWellbeing | Preset::KetamineResponse)
    }
}

/// One input table.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// File path (TSV, CSV or Parquet), relative to the study file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Name of a table written by `[simulate]` (e.g. `pheno`, `idps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulated: Option<String>,
    /// `connectome`: the per-subject connectivity edges computed by `[connectivity]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imaging: Option<String>,
    /// File format; inferred from the extension when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<TableFormat>,
    /// Subject id column of this table (default: `study.subject_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_column: Option<String>,
    /// Cell values read as missing (default: empty, `NA`, `NaN`, `nan`, `n/a`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_values: Option<Vec<String>>,
}

/// A questionnaire score: items combined within a visit, then over visits.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreSpec {
    /// Item columns. With `visits`, each item may contain `{visit}`, replaced by each visit label.
    pub items: Vec<String>,
    /// How items combine within a visit.
    #[serde(default)]
    pub method: ScoreMethod,
    /// Valid item range `[min, max]`; a value outside it is an error naming subject and column.
    pub range: [f64; 2],
    /// Reverse-keyed items (as written in `items`): scored as `min + max - value`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reverse: Vec<String>,
    /// Item codes that mean "no answer" (e.g. UK Biobank's -1, -3); read as missing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_codes: Vec<f64>,
    /// What a missing item in an otherwise answered visit does.
    #[serde(default)]
    pub missing_items: MissingItems,
    /// With `missing_items = "prorate"`: the fewest answered items that still give a score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_items: Option<usize>,
    /// Visit (instance) labels substituted for `{visit}`; the score is the mean over visits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub visits: Vec<String>,
    /// Fewest visits with a score for the subject to have one (default: all visits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_visits: Option<usize>,
}

/// Subject exclusions, applied in order: complete cases, then IQR outliers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exclusions {
    /// Columns (or `*` patterns, or score names) that must be present. The outcomes, covariates
    /// and features of the analysis are always required.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub complete_cases: Vec<String>,
    /// IQR outlier rules: a subject is excluded when a value lies below Q1 − k·IQR or above
    /// Q3 + k·IQR of its column (quartiles over the complete cases).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub iqr: Vec<IqrRule>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IqrRule {
    /// Columns, `*` patterns, or feature group names.
    pub columns: Vec<String>,
    /// The IQR multiplier (e.g. 1.5, 2.5, 3).
    pub k: f64,
}

/// How subjects are divided into discovery and held-out sets.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    /// How subjects are split: `random`, `column` (by its values), `stratified` (random within
    /// the values of `column`) or `grouped` (whole groups, e.g. families, held out).
    pub method: SplitMethod,
    /// `random`, `stratified`, `grouped`: fraction of subjects held out (0 < f < 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_out_fraction: Option<f64>,
    /// `column`: the column whose values decide the split; `stratified`: the strata;
    /// `grouped`: the group (family) id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// `column`: values (as written in the table) that mark held-out subjects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_out_values: Vec<String>,
    /// Seed of random splits (default: derived from the study seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SplitMethod {
    /// A random fraction of subjects is held out.
    Random,
    /// Held out by the values of `column` (e.g. a site).
    Column,
    /// Random within each value of `column`, so both sides keep its proportions.
    Stratified,
    /// Whole groups (e.g. families: `column` = family id) are held out, so no group straddles
    /// the split; the held-out fraction is met as closely as whole groups allow.
    Grouped,
}

/// Per feature × outcome: OLS of the z-scored outcome on the z-scored feature plus covariates.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Association {
    /// Outcome columns or score names.
    pub outcomes: Vec<String>,
    /// Feature group names from `[features]` (default: all groups).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// Covariate terms: a column (`age`), a square (`age^2`), an interaction (`age*sex`) or a
    /// categorical column (`C(site)`, `C(site, ref="B")`: treatment coding as patsy).
    #[serde(default)]
    pub covariates: Vec<String>,
    /// Number of permutations shared by all tests (0 = none).
    #[serde(default)]
    pub permutations: usize,
    /// What is permuted.
    #[serde(default)]
    pub permutation_scheme: PermutationScheme,
    /// Exchangeability blocks for the permutations (e.g. `family_id`): subjects are only
    /// rearranged as PALM's blocks allow (Winkler et al. 2015).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permutation_blocks: Option<String>,
    /// With `permutation_blocks`: `within` (shuffle inside each block) or `whole` (exchange whole
    /// blocks of equal size; sign flips flip whole blocks).
    #[serde(default, skip_serializing_if = "BlockPermutation::is_default")]
    pub block_permutation: BlockPermutation,
    /// Number of bootstrap resamples for percentile CIs of β (0 = none).
    #[serde(default)]
    pub bootstrap: usize,
    /// Confidence level of bootstrap intervals.
    #[serde(default = "default_ci_level")]
    pub ci_level: f64,
    /// False discovery rate control.
    #[serde(default)]
    pub fdr: Fdr,
    /// How discovery hits are judged in the held-out set.
    #[serde(default)]
    pub replication: Replication,
    /// Pairs of outcomes whose difference in β (β_a − β_b) gets a bootstrap CI per feature, from
    /// paired resamples (each resample draws the same subjects for both outcomes); needs
    /// `bootstrap`. Written to `association/<sample>_differences.tsv`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<[String; 2]>,
    /// Connectivity edges averaged per region: for each region, the mean β over its edges, with
    /// permutation p-values from the same shared permutations as the features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_means: Option<RegionMeans>,
}

/// Which features are edges, and which two regions each edge joins.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionMeans {
    /// The feature group (from `[features]`) holding the edges; every column of it must be an edge.
    pub group: String,
    /// How an edge column names its regions, with `{a}` and `{b}` standing for them, e.g.
    /// `"fc_{a}_{b}"` for `fc_n01_n02`.
    pub edges: String,
}

fn default_ci_level() -> f64 {
    0.95
}

/// Benjamini–Hochberg FDR.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fdr {
    /// FDR level q.
    #[serde(default = "default_q")]
    pub q: f64,
    /// Tests are corrected within families defined by these keys.
    #[serde(default = "default_families")]
    pub families: Vec<FamilyKey>,
    /// Which p-value is corrected.
    #[serde(default)]
    pub p: PValueKind,
}

impl Default for Fdr {
    fn default() -> Self {
        Fdr { q: default_q(), families: default_families(), p: PValueKind::default() }
    }
}

fn default_q() -> f64 {
    0.05
}
fn default_families() -> Vec<FamilyKey> {
    vec![FamilyKey::Outcome, FamilyKey::Group]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FamilyKey {
    /// One family per outcome.
    Outcome,
    /// One family per feature group.
    Group,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PValueKind {
    /// Permutation p when permutations > 0, else parametric.
    #[default]
    Permutation,
    Parametric,
}

/// Replication of discovery hits in the held-out set.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Replication {
    /// A hit replicates when the held-out β has the same sign and its (corrected) p < alpha.
    #[serde(default = "default_q")]
    pub alpha: f64,
    /// Correction of held-out p-values across the discovery hits.
    #[serde(default)]
    pub correction: ReplicationCorrection,
}

impl Default for Replication {
    fn default() -> Self {
        Replication { alpha: default_q(), correction: ReplicationCorrection::default() }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReplicationCorrection {
    /// Benjamini–Hochberg over the discovery hits.
    #[default]
    Fdr,
    None,
}

/// Output settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Outputs {
    /// Output folder, relative to the study file (default `derivatives/<study name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
}
