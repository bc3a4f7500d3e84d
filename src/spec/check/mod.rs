//! Semantic validation: everything that can be known to fail before compute.
//!
//! [`resolve`] checks the study against the headers of its tables (or the simulator's column
//! list) and produces a [`Resolved`] study: every pattern expanded to explicit columns, every
//! term parsed, every path resolved, and every setting a stage will read — so `plan` compiles
//! from `Resolved` alone and never looks at the raw study. All problems are collected and
//! reported together, each at the place in the study file that caused it.
//!
//! One file per section of the study, run in this order (a later section sees the names an
//! earlier one declared; the order is also the order of the messages):
//! [`imaging`] (runs, region sets, edges), [`tables`] (sources, headers, one column namespace),
//! [`scores`] (and `[derived]`), [`features`] (and `[exclusions]`), [`factors`],
//! [`association`], [`split`], [`prediction`], [`group`] (and `[roc]`), and [`sizes`] (sample
//! sizes that can be known before reading data).

mod association;
mod confinement;
mod factors;
mod features;
mod group;
mod imaging;
pub mod limits;
mod prediction;
mod resources;
mod scores;
mod sizes;
mod sources;
mod split;
mod tables;

use super::load::{Key, LoadedStudy};
use super::terms::Term;
use super::{Association, Denoise, GroupSpec, Preset, RocSpec, SplitSpec, Study};
use crate::behaviour::scoring::ScoreDefinition;
use crate::design::{ClusterChoice, EdgeChoice, Level};
use crate::error::{Diagnostic, Error, Result, Severity, did_you_mean};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

pub use crate::design::{MIN_SPLIT_SIDE, edge_column, session_column};

/// Where a table's rows come from.
#[derive(Debug, Clone)]
pub enum TableSource {
    File {
        path: PathBuf,
        written: String,
        format: super::TableFormat,
    },
    Simulated {
        name: String,
    },
    /// The per-subject connectivity edges (`imaging = "connectome"`).
    Imaging,
}

#[derive(Debug, Clone)]
pub struct ResolvedTable {
    pub name: String,
    pub source: TableSource,
    pub id_column: String,
    pub missing_values: Vec<String>,
    pub columns: Vec<String>,
}

/// The study as a whole: what names its outputs and seeds its random streams.
#[derive(Debug, Clone)]
pub struct StudyInfo {
    pub name: String,
    pub seed: u64,
    pub subject_id: String,
    /// blake3 of the study file.
    pub hash: String,
    /// The folder relative paths are resolved against (the study file's folder).
    pub dir: PathBuf,
    pub output_dir: PathBuf,
    /// `[study] sources`, checked.
    pub sources: Vec<crate::design::SourceDataset>,
}

/// A simulator whose tables are made inside the DAG (presets that write files are materialised
/// before `check` and read like real data instead).
#[derive(Debug, Clone)]
pub struct Simulation {
    pub preset: Preset,
    pub subjects: usize,
    /// As written; `None` derives it from the study seed.
    pub seed: Option<u64>,
}

/// A study with everything named resolved against the data.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub study: StudyInfo,
    pub simulation: Option<Simulation>,
    pub tables: Vec<ResolvedTable>,
    /// Column → table name.
    pub column_table: BTreeMap<String, String>,
    pub scores: Vec<ScoreDefinition>,
    pub association: Option<ResolvedAssociation>,
    pub complete_cases: Vec<String>,
    pub iqr: Vec<(Vec<String>, f64)>,
    pub imaging: Option<ResolvedImaging>,
    pub factors: Option<ResolvedFactors>,
    pub split: Option<SplitSpec>,
    pub prediction: Option<ResolvedPrediction>,
    /// Derived variables in evaluation order, with their undefined-value policy.
    pub derived: Vec<(super::expr::Checked, super::UndefinedPolicy)>,
    pub groups: Vec<ResolvedGroup>,
    pub rocs: Vec<ResolvedRoc>,
    /// Columns used as categorical covariates (`C(column)`) anywhere; they may hold text.
    pub categorical: Vec<String>,
    /// Columns used as exchangeability blocks anywhere (carried into the dataset).
    pub block_columns: Vec<String>,
    /// `[resources.<stage kind>]` as checked (only what the study sets; the Slurm executor
    /// fills in its defaults). Never part of a fingerprint.
    pub resources: BTreeMap<String, crate::design::ResourceRequest>,
    /// Problems that do not stop the study (e.g. a region that keeps few voxels on a grid).
    pub warnings: Vec<Diagnostic>,
}

impl Resolved {
    /// Whether any model reads the analysis dataset (otherwise the study ends at its tables and
    /// scores).
    pub fn has_models(&self) -> bool {
        self.association.is_some()
            || self.prediction.is_some()
            || self.factors.is_some()
            || !self.groups.is_empty()
            || !self.rocs.is_empty()
    }
}

/// The per-feature association models.
#[derive(Debug, Clone)]
pub struct ResolvedAssociation {
    pub outcomes: Vec<String>,
    pub covariates: Vec<Term>,
    /// (group, column) in declaration order.
    pub features: Vec<(String, String)>,
    /// Permutations, bootstrap, FDR and replication settings, as checked.
    pub settings: Association,
    /// Per region (in order of first appearance): the indices into `features` of its edges.
    pub region_means: Vec<(String, Vec<usize>)>,
    /// Outcome pairs (a, b) whose β difference is bootstrapped.
    pub differences: Vec<(String, String)>,
}

/// Where a ROC analysis' value comes from.
#[derive(Debug, Clone)]
pub enum RocSource {
    /// A column, possibly chosen by a region-level group analysis.
    Column { value: String, selected: Option<EdgeChoice> },
    /// The largest cluster of a voxelwise two-sample group analysis: the choice, and the
    /// sessions whose maps it reads.
    Cluster { choice: ClusterChoice, sessions: Vec<Option<String>>, columns: Vec<String> },
}

/// One ROC analysis.
#[derive(Debug, Clone)]
pub struct ResolvedRoc {
    pub name: String,
    pub source: RocSource,
    /// Label, folds, bootstrap, permutations and CI level, as checked.
    pub settings: RocSpec,
}

/// A label image for naming peaks: resolved path, path as written, label table.
pub type PeakAtlas = (PathBuf, String, Vec<(i64, String)>);

/// A group analysis resolved against the imaging half.
#[derive(Debug, Clone)]
pub struct ResolvedGroup {
    pub name: String,
    pub level: Level,
    /// Sessions used, in order (`[None]` without sessions).
    pub sessions: Vec<Option<String>>,
    /// Label atlas for peaks: (resolved path, as written, label table).
    pub peak_atlas: Option<PeakAtlas>,
    /// Dataset columns it reads (design variables and covariates; edge columns).
    pub columns: Vec<String>,
    /// Design, permutations, tail and cluster settings, as checked.
    pub settings: GroupSpec,
    /// Region level: each edge's two regions, in edge order (the NBS graph).
    pub edge_endpoints: Option<Vec<(String, String)>>,
}

/// Fewest permutations that can give p < 0.01.
const MIN_PERMUTATIONS: usize = 99;

/// The pseudo-table of derived variables in `Resolved::column_table`.
pub const DERIVED: &str = "(derived)";

/// The factor model's inputs and output names.
#[derive(Debug, Clone)]
pub struct ResolvedFactors {
    /// Item columns (or score names), in order.
    pub items: Vec<String>,
    /// Declared names; empty means `F1..Fk` with k decided by the data.
    pub names: Vec<String>,
    /// Count, extraction, rotation and scores, as checked.
    pub settings: super::Factors,
    /// The target matrix for target rotations, as read from `target`: one row per item in
    /// `items` order, one cell per factor, `None` where unspecified.
    pub target: Option<Vec<Vec<Option<f64>>>>,
}

impl ResolvedFactors {
    /// Whether `name` is (or may turn out to be) a factor score column.
    pub fn provides(&self, name: &str) -> bool {
        if self.names.is_empty() {
            name.strip_prefix('F').is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) && d != "0")
        } else {
            self.names.iter().any(|n| n == name)
        }
    }
}

#[derive(Debug, Clone)]
pub struct ResolvedPrediction {
    pub outcomes: Vec<String>,
    pub features: Vec<String>,
    pub confounds: Vec<String>,
    /// Models, folds, repeats, permutations and penalties, as checked.
    pub settings: super::Prediction,
}

/// The imaging half of a study, resolved against the fMRIPrep folder and the region images.
#[derive(Debug, Clone)]
pub struct ResolvedImaging {
    /// One run per included subject.
    pub runs: Vec<crate::imaging::discover::Run>,
    /// Per run (aligned with `runs`): its BOLD grid (shape and affine) as the index among the
    /// study's distinct grids, numbered in order of first appearance (from the headers read).
    pub grids: Vec<usize>,
    /// Subject folders without a usable run (listed, when the study allows exclusion).
    pub excluded: Vec<String>,
    /// Region sets with their sources; file paths are replaced by input names (`region:SET:…`),
    /// whose files are in `region_files`.
    pub sets: Vec<(String, crate::imaging::regions::RegionSources)>,
    /// Input name → (resolved path, path as written).
    pub region_files: Vec<(String, PathBuf, String)>,
    /// Every region name, set by set, in order.
    pub region_names: Vec<String>,
    /// Connectivity edges (region a, region b), in order.
    pub edges: Vec<(String, String)>,
    /// Declared sessions (empty: one run per subject).
    pub sessions: Vec<String>,
    /// Seed-to-voxel maps: seed names and the mask (resolved path, as written).
    pub seed_maps: Option<(Vec<String>, PathBuf, String)>,
    pub denoise: Denoise,
    /// Whether edges are Fisher z (atanh r) rather than r.
    pub fisher_z: bool,
}

impl ResolvedImaging {
    /// `[None]` without sessions, else each declared session.
    pub fn session_labels(&self) -> Vec<Option<&str>> {
        if self.sessions.is_empty() { vec![None] } else { self.sessions.iter().map(|s| Some(s.as_str())).collect() }
    }
}

/// The checks that need no file: where the study writes (confinement) and the range of every
/// numeric setting. `resolve` runs them first too; the command line runs them alone before it
/// writes anything (a simulated cohort) for the study.
pub fn settings(loaded: &LoadedStudy) -> Result<()> {
    let mut cx = Checker::new(loaded);
    confinement::check(&mut cx);
    limits::check(&mut cx);
    resources::check(&mut cx);
    if cx.has_errors() { Err(Error::Study(cx.problems)) } else { Ok(()) }
}

pub fn resolve(loaded: &LoadedStudy) -> Result<Resolved> {
    let mut cx = Checker::new(loaded);
    let mut resolved = resolve_sections(&mut cx);
    if cx.has_errors() {
        return Err(Error::Study(cx.problems));
    }
    resolved.warnings = cx.problems;
    Ok(resolved)
}

impl<'a> Checker<'a> {
    fn new(loaded: &'a LoadedStudy) -> Self {
        Checker {
            loaded,
            study: &loaded.study,
            problems: Vec::new(),
            column_table: BTreeMap::new(),
            all_columns: Vec::new(),
            score_names: Vec::new(),
            group_columns: BTreeMap::new(),
            categorical: BTreeSet::new(),
            block_columns: BTreeSet::new(),
        }
    }
}

/// Every section checker in order; column-level checks are skipped when a table could not be
/// read (they would only echo that problem).
fn resolve_sections(cx: &mut Checker<'_>) -> Resolved {
    let study = cx.study;
    confinement::check(cx);
    limits::check(cx);
    sources::check(cx);
    let resources = resources::check(cx);
    let imaging = if cx.has_errors() { None } else { imaging::resolve(cx) };
    let tables = tables::resolve(cx, imaging.as_ref());
    let mut resolved = Resolved {
        study: StudyInfo {
            name: study.study.name.clone(),
            seed: study.study.seed,
            subject_id: study.study.subject_id.clone(),
            hash: cx.loaded.hash.clone(),
            dir: cx.loaded.dir.clone(),
            output_dir: cx.loaded.output_dir(),
            sources: study.study.sources.clone(),
        },
        simulation: study.simulate.as_ref().filter(|sim| !sim.preset.writes_files()).map(|sim| Simulation {
            preset: sim.preset,
            subjects: sim.subjects,
            seed: sim.seed,
        }),
        tables,
        column_table: BTreeMap::new(),
        scores: Vec::new(),
        association: None,
        complete_cases: Vec::new(),
        iqr: Vec::new(),
        imaging,
        factors: None,
        split: study.split.clone(),
        prediction: None,
        derived: Vec::new(),
        groups: Vec::new(),
        rocs: Vec::new(),
        categorical: Vec::new(),
        block_columns: Vec::new(),
        resources,
        warnings: Vec::new(),
    };
    if cx.has_errors() {
        return resolved;
    }
    tables::namespace(cx, &resolved.tables);
    resolved.scores = scores::resolve(cx);
    resolved.derived = scores::derived(cx);
    features::resolve(cx);
    resolved.factors = factors::resolve(cx);
    resolved.association = association::resolve(cx, resolved.factors.as_ref());
    (resolved.complete_cases, resolved.iqr) = features::exclusions(cx);
    split::check(cx);
    resolved.prediction = prediction::resolve(cx, resolved.factors.as_ref());
    resolved.groups = group::resolve(cx, resolved.imaging.as_ref());
    resolved.rocs = group::rocs(cx, &resolved.groups);
    sizes::check(cx, &resolved);
    resolved.column_table = std::mem::take(&mut cx.column_table);
    resolved.categorical = std::mem::take(&mut cx.categorical).into_iter().collect();
    resolved.block_columns = std::mem::take(&mut cx.block_columns).into_iter().collect();
    resolved
}

/// What the section checkers share: the study, the problems found so far, and the names the
/// earlier sections declared.
struct Checker<'a> {
    loaded: &'a LoadedStudy,
    study: &'a Study,
    problems: Vec<Diagnostic>,
    /// Column → table name (derived variables join it as [`DERIVED`]).
    column_table: BTreeMap<String, String>,
    /// The keys of `column_table`, for did-you-mean hints and patterns.
    all_columns: Vec<String>,
    score_names: Vec<String>,
    /// Feature group → its columns.
    group_columns: BTreeMap<String, Vec<String>>,
    /// Columns used as categorical covariates so far.
    categorical: BTreeSet<String>,
    /// Columns used as exchangeability blocks so far.
    block_columns: BTreeSet<String>,
}

impl Checker<'_> {
    fn err(&mut self, keys: Vec<Key>, message: String, hint: Option<String>) {
        let mut d = self.loaded.diagnostic(&keys, message);
        d.hint = hint;
        self.problems.push(d);
    }

    fn warn(&mut self, keys: Vec<Key>, message: String) {
        let d = self.loaded.diagnostic(&keys, message).warning();
        self.problems.push(d);
    }

    fn has_errors(&self) -> bool {
        self.problems.iter().any(|d| d.severity == Severity::Error)
    }

    fn missing_column(&mut self, keys: Vec<Key>, column: &str, what: &str, extra: &[String]) {
        let candidates = self.all_columns.iter().chain(extra).map(String::as_str);
        let hint = did_you_mean(column, candidates).map(|b| format!("did you mean `{b}`?"));
        let mut d = self.loaded.diagnostic(&keys, format!("{what} `{column}` is not a column of any table"));
        d.hint = hint.or_else(|| Some("check the spelling against the table headers".into()));
        self.problems.push(d);
    }

    /// A permutation count that can give p < 0.01 (0 means none where `none` says so).
    fn permutations(&mut self, keys: Vec<Key>, n: usize, none: &str) {
        if n > 0 && n < MIN_PERMUTATIONS {
            self.err(
                keys,
                format!("{n} permutations cannot give p < 0.01; use {none}at least {MIN_PERMUTATIONS}"),
                None,
            );
        }
    }

    /// A confidence level strictly between one half and one.
    fn ci_level(&mut self, keys: Vec<Key>, level: f64) {
        if !(level > 0.5 && level < 1.0) {
            self.err(keys, "ci_level must lie between 0.5 and 1 (e.g. 0.95)".into(), None);
        }
    }

    /// The columns of a declared feature group, or an error with a did-you-mean (else `fallback`).
    fn feature_group(&mut self, keys: Vec<Key>, group: &str, fallback: &str) -> Option<Vec<String>> {
        if let Some(columns) = self.group_columns.get(group) {
            return Some(columns.clone());
        }
        let hint = did_you_mean(group, self.group_columns.keys().map(String::as_str))
            .map(|b| format!("did you mean `{b}`?"))
            .unwrap_or_else(|| fallback.to_string());
        self.err(keys, format!("feature group `{group}` is not declared"), Some(hint));
        None
    }

    /// Covariate terms (`written[i]` at `at(i)`), parsed, each base column a column or score;
    /// categorical columns are recorded. With `plain_only`, only `column` and `C(column)` are
    /// accepted (designs that take raw columns rather than z-scored terms).
    fn covariate_terms(
        &mut self,
        at: impl Fn(usize) -> Vec<Key>,
        written: &[String],
        what: &str,
        plain_only: bool,
    ) -> Vec<Term> {
        let scores = self.score_names.clone();
        let mut terms = Vec::new();
        for (i, text) in written.iter().enumerate() {
            let term = match Term::parse(text) {
                Ok(Term::Square(_) | Term::Interaction(..)) if plain_only => {
                    self.err(at(i), format!("{what} `{text}`: only columns and `C(column)` are accepted here"), None);
                    continue;
                }
                Ok(term) => term,
                Err(message) => {
                    self.err(at(i), format!("{what} term: {message}"), None);
                    continue;
                }
            };
            for c in term.columns() {
                if !self.is_column(c) && !self.is_score(c) {
                    self.missing_column(at(i), c, what, &scores);
                }
            }
            if let Some(c) = term.categorical() {
                self.categorical.insert(c.to_string());
            }
            terms.push(term);
        }
        terms
    }

    /// A section's `permutation_blocks` and `block_permutation` (under `section`): the block
    /// column must exist; `block_permutation` without blocks is an error.
    fn blocks(
        &mut self,
        section: Vec<Key>,
        column: &Option<String>,
        mode: super::BlockPermutation,
    ) -> Option<(String, super::BlockPermutation)> {
        let at = |field: &str| {
            let mut keys = section.clone();
            keys.push(Key::from(field));
            keys
        };
        match column {
            None => {
                if !mode.is_default() {
                    self.err(
                        at("block_permutation"),
                        "`block_permutation` needs `permutation_blocks` (the column that names each subject's block)"
                            .into(),
                        None,
                    );
                }
                None
            }
            Some(c) => {
                if !self.is_column(c) {
                    let scores = self.score_names.clone();
                    self.missing_column(at("permutation_blocks"), c, "block column", &scores);
                }
                self.block_columns.insert(c.clone());
                Some((c.clone(), mode))
            }
        }
    }

    fn is_column(&self, name: &str) -> bool {
        self.column_table.contains_key(name)
    }

    fn is_score(&self, name: &str) -> bool {
        self.score_names.iter().any(|s| s == name)
    }

    /// Refresh `all_columns` after `column_table` changed.
    fn sync_columns(&mut self) {
        self.all_columns = self.column_table.keys().cloned().collect();
    }

    /// A feature group's columns, a score name, or a column / `*` pattern.
    fn expand_with_groups(&self, pattern: &str) -> Vec<String> {
        if let Some(group) = self.group_columns.get(pattern) {
            return group.clone();
        }
        if self.is_score(pattern) {
            return vec![pattern.to_string()];
        }
        expand(pattern, &self.all_columns)
    }
}

/// Match a name or `*` pattern against columns (declaration order kept).
pub fn expand(pattern: &str, columns: &[String]) -> Vec<String> {
    if !pattern.contains('*') {
        return columns.iter().filter(|c| *c == pattern).cloned().collect();
    }
    columns.iter().filter(|c| glob_match(pattern, c)).cloned().collect()
}

/// `*` matches any run of characters; everything else literally.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

fn preview(columns: &[String]) -> String {
    let shown: BTreeSet<&str> = columns.iter().take(5).map(String::as_str).collect();
    shown.into_iter().collect::<Vec<_>>().join(", ")
}

/// Append `items` to `list`, skipping ones already there (declaration order kept).
fn push_unique(list: &mut Vec<String>, items: impl IntoIterator<Item = String>) {
    for item in items {
        if !list.contains(&item) {
            list.push(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("area_*", "area_lh_insula"));
        assert!(glob_match("*_lh_*", "area_lh_insula"));
        assert!(!glob_match("area_*", "thick_lh_insula"));
        assert!(glob_match("a*b*c", "abc"));
        assert!(!glob_match("a*b*c", "acb"));
    }
}
