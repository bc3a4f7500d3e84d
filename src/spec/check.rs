//! Semantic validation: everything that can be known to fail before compute.
//!
//! [`resolve`] checks the study against the headers of its tables (or the simulator's column
//! list) and produces a [`Resolved`] study: every pattern expanded to explicit columns, every
//! term parsed, every path resolved. All problems are collected and reported together, each at
//! the place in the study file that caused it.

use super::load::{Key, LoadedStudy};
use super::terms::Term;
use super::{MissingItems, SplitMethod, Study};
use crate::error::{Diagnostic, Error, Result, did_you_mean};
use crate::keys;
use crate::tables::read::DEFAULT_MISSING;
use crate::tables::{self};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

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

/// One score's items, visit by visit.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ResolvedScore {
    pub name: String,
    /// (visit label, item columns) — one entry with an empty label when there are no visits.
    pub visits: Vec<(String, Vec<String>)>,
    /// Per item position: reverse-keyed?
    pub reverse: Vec<bool>,
    pub method: super::ScoreMethod,
    pub range: [f64; 2],
    pub missing_codes: Vec<f64>,
    pub missing_items: MissingItems,
    pub min_items: usize,
    pub min_visits: usize,
}

/// A study with everything named resolved against the data.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub tables: Vec<ResolvedTable>,
    /// Column → table name.
    pub column_table: BTreeMap<String, String>,
    pub scores: Vec<ResolvedScore>,
    /// (group, column) in declaration order.
    pub features: Vec<(String, String)>,
    pub covariates: Vec<Term>,
    pub outcomes: Vec<String>,
    pub complete_cases: Vec<String>,
    pub iqr: Vec<(Vec<String>, f64)>,
    pub imaging: Option<ResolvedImaging>,
    pub factors: Option<ResolvedFactors>,
    pub prediction: Option<ResolvedPrediction>,
    /// Derived variables in evaluation order, with their undefined-value policy.
    pub derived: Vec<(super::expr::Checked, super::UndefinedPolicy)>,
    pub groups: Vec<ResolvedGroup>,
    /// ROC analyses by name, with where their value comes from.
    pub rocs: Vec<(String, RocSource)>,
}

/// Where a ROC analysis' value comes from.
#[derive(Debug, Clone)]
pub enum RocSource {
    /// A column, possibly chosen by a region-level group analysis.
    Column { value: String, selected: Option<Selection> },
    /// The largest cluster of a voxelwise two-sample group analysis.
    Cluster(ResolvedGroup),
}

/// The region-level group analysis that chose a ROC value.
pub type Selection = crate::stages::roc::EdgeChoice;

/// A label image for naming peaks: resolved path, path as written, label table.
pub type PeakAtlas = (PathBuf, String, Vec<(i64, String)>);

/// A group analysis resolved against the imaging half.
#[derive(Debug, Clone)]
pub struct ResolvedGroup {
    pub name: String,
    pub level: crate::stages::group::Level,
    /// Sessions used, in order (`[None]` without sessions).
    pub sessions: Vec<Option<String>>,
    /// Label atlas for peaks: (resolved path, as written, label table).
    pub peak_atlas: Option<PeakAtlas>,
    /// Dataset columns it reads (design variables and covariates; edge columns).
    pub columns: Vec<String>,
}

/// The pseudo-table of derived variables in `Resolved::column_table`.
pub const DERIVED: &str = "(derived)";

/// The factor model's inputs and output names.
#[derive(Debug, Clone)]
pub struct ResolvedFactors {
    /// Item columns (or score names), in order.
    pub items: Vec<String>,
    /// Declared names; empty means `F1..Fk` with k decided by the data.
    pub names: Vec<String>,
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
}

/// The imaging half of a study, resolved against the fMRIPrep folder and the region images.
#[derive(Debug, Clone)]
pub struct ResolvedImaging {
    /// One run per included subject.
    pub runs: Vec<crate::imaging::discover::Run>,
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
}

impl ResolvedImaging {
    /// `[None]` without sessions, else each declared session.
    pub fn session_labels(&self) -> Vec<Option<&str>> {
        if self.sessions.is_empty() { vec![None] } else { self.sessions.iter().map(|s| Some(s.as_str())).collect() }
    }
}

/// The name of an edge column in the `connectome` table.
pub fn edge_column(a: &str, b: &str) -> String {
    format!("conn_{a}__{b}")
}

/// The connectome column of an edge in one session (`conn_a__b__pre`), or without sessions the
/// edge column itself.
pub fn session_column(edge: &str, session: Option<&str>) -> String {
    match session {
        Some(s) => format!("{edge}__{s}"),
        None => edge.to_string(),
    }
}

/// Smallest number of subjects allowed on each side of a split.
pub const MIN_SPLIT_SIDE: usize = 10;

pub fn resolve(loaded: &LoadedStudy) -> Result<Resolved> {
    let mut problems = Vec::new();
    let resolved = resolve_into(loaded, &mut problems);
    if problems.is_empty() { Ok(resolved) } else { Err(Error::Study(problems)) }
}

fn resolve_into(loaded: &LoadedStudy, problems: &mut Vec<Diagnostic>) -> Resolved {
    let study: &Study = &loaded.study;
    let mut rep = Reporter { loaded, problems, all_columns: Vec::new() };
    let imaging = resolve_imaging(&mut rep, loaded);

    // Tables: where each comes from and which columns it has.
    let mut tables = Vec::new();
    for (name, spec) in &study.tables {
        let id_column = spec.id_column.clone().unwrap_or_else(|| study.study.subject_id.clone());
        let missing_values =
            spec.missing_values.clone().unwrap_or_else(|| DEFAULT_MISSING.iter().map(|s| s.to_string()).collect());
        if let Some(what) = &spec.imaging {
            let here = keys!["tables", name.as_str(), "imaging"];
            if spec.path.is_some() || spec.simulated.is_some() {
                rep.err(here, format!("table `{name}` needs exactly one of `path`, `simulated` or `imaging`"), None);
                continue;
            }
            if what != "connectome" {
                rep.err(
                    here,
                    format!("unknown imaging table `{what}`"),
                    Some("the imaging table is `connectome`".into()),
                );
                continue;
            }
            let Some(im) = &imaging else {
                if study.connectivity.is_none() || study.imaging.is_none() {
                    rep.err(here, "the `connectome` table needs [imaging] and [connectivity]".into(), None);
                }
                continue;
            };
            let mut columns = vec![id_column.clone()];
            for session in im.session_labels() {
                columns.extend(im.edges.iter().map(|(a, b)| session_column(&edge_column(a, b), session)));
            }
            tables.push(ResolvedTable {
                name: name.clone(),
                source: TableSource::Imaging,
                id_column,
                missing_values,
                columns,
            });
            continue;
        }
        let (source, columns) = match (&spec.path, &spec.simulated) {
            (Some(_), Some(_)) | (None, None) => {
                rep.err(
                    keys!["tables", name.as_str()],
                    format!("table `{name}` needs exactly one of `path`, `simulated` or `imaging`"),
                    Some("`path = \"data/pheno.tsv\"` reads a file; `simulated = \"pheno\"` uses [simulate]".into()),
                );
                continue;
            }
            (Some(written), None) => {
                let path = loaded.resolve(written);
                let here = keys!["tables", name.as_str(), "path"];
                if !path.is_file() {
                    rep.err(
                        here,
                        format!("table file `{written}` does not exist (looked for {})", path.display()),
                        Some("paths are relative to the study file".into()),
                    );
                    continue;
                }
                let format = match tables::read::format_of(&path, spec.format) {
                    Ok(f) => f,
                    Err(e) => {
                        rep.err(here, strip_error(&e), None);
                        continue;
                    }
                };
                match tables::read_header(&path, format) {
                    Ok(columns) => (TableSource::File { path, written: written.clone(), format }, columns),
                    Err(e) => {
                        rep.err(here, strip_error(&e), None);
                        continue;
                    }
                }
            }
            (None, Some(sim_name)) => {
                let here = keys!["tables", name.as_str(), "simulated"];
                let Some(simulate) = &study.simulate else {
                    rep.err(here, format!("table `{name}` is simulated but the study has no [simulate] section"), None);
                    continue;
                };
                match crate::sim::columns(simulate.preset, sim_name) {
                    Some(columns) => (TableSource::Simulated { name: sim_name.clone() }, columns),
                    None => {
                        let known = crate::sim::tables(simulate.preset);
                        rep.err(
                            here,
                            format!("the `{}` simulator writes no table `{sim_name}`", simulate.preset.name()),
                            Some(format!("it writes: {}", known.join(", "))),
                        );
                        continue;
                    }
                }
            }
        };
        if !columns.contains(&id_column) {
            let hint = match did_you_mean(&id_column, columns.iter().map(String::as_str)) {
                Some(best) => format!("did you mean `{best}`? set `id_column` on the table or `study.subject_id`"),
                None => format!("set `id_column` on the table; its columns start {}", preview(&columns)),
            };
            rep.err(
                keys!["tables", name.as_str()],
                format!("table `{name}` has no subject id column `{id_column}`"),
                Some(hint),
            );
        }
        tables.push(ResolvedTable { name: name.clone(), source, id_column, missing_values, columns });
    }

    // Column-level checks against a table that could not be read would only echo that problem.
    if !rep.problems.is_empty() {
        return Resolved {
            tables,
            column_table: BTreeMap::new(),
            scores: Vec::new(),
            features: Vec::new(),
            covariates: Vec::new(),
            outcomes: Vec::new(),
            complete_cases: Vec::new(),
            iqr: Vec::new(),
            imaging,
            factors: None,
            prediction: None,
            derived: Vec::new(),
            groups: Vec::new(),
            rocs: Vec::new(),
        };
    }

    // One namespace of columns across tables (the id column is shared).
    let mut column_table: BTreeMap<String, String> = BTreeMap::new();
    for table in &tables {
        for column in table.columns.iter().filter(|c| **c != table.id_column) {
            if let Some(other) = column_table.insert(column.clone(), table.name.clone()) {
                rep.err(
                    keys!["tables", table.name.as_str()],
                    format!("column `{column}` is in both table `{other}` and table `{}`", table.name),
                    Some("column names must be unique across tables; rename one of them".into()),
                );
            }
        }
    }
    let all_columns: Vec<String> = column_table.keys().cloned().collect();
    rep.all_columns = all_columns.clone();

    // Scores.
    let mut scores = Vec::new();
    for (name, spec) in &study.scores {
        let at = |field: &str| keys!["scores", name.as_str(), field];
        if all_columns.contains(name) {
            rep.err(
                keys!["scores", name.as_str()],
                format!("score `{name}` has the same name as a table column"),
                Some("rename the score".into()),
            );
        }
        if spec.items.is_empty() {
            rep.err(at("items"), format!("score `{name}` has no items"), None);
        }
        if !(spec.range[0] < spec.range[1]) {
            rep.err(
                at("range"),
                format!("range [{}, {}] is empty; write [min, max]", spec.range[0], spec.range[1]),
                None,
            );
        }
        for (i, r) in spec.reverse.iter().enumerate() {
            if !spec.items.contains(r) {
                rep.err(
                    keys!["scores", name.as_str(), "reverse", i],
                    format!("reverse-keyed item `{r}` is not one of this score's items"),
                    None,
                );
            }
        }
        let labels: Vec<String> = if spec.visits.is_empty() { vec![String::new()] } else { spec.visits.clone() };
        let mut visits = Vec::new();
        for label in &labels {
            let mut columns = Vec::new();
            for (i, item) in spec.items.iter().enumerate() {
                if spec.visits.is_empty() && item.contains("{visit}") {
                    rep.err(
                        keys!["scores", name.as_str(), "items", i],
                        format!("item `{item}` uses {{visit}} but the score declares no `visits`"),
                        None,
                    );
                    continue;
                }
                let column = item.replace("{visit}", label);
                if !column_table.contains_key(&column) {
                    rep.missing_column(keys!["scores", name.as_str(), "items", i], &column, "item", &[]);
                }
                columns.push(column);
            }
            visits.push((label.clone(), columns));
        }
        let n_items = spec.items.len();
        let min_items = match (spec.missing_items, spec.min_items) {
            (MissingItems::Prorate, Some(m)) if m == 0 || m > n_items => {
                rep.err(at("min_items"), format!("min_items must be between 1 and {n_items} (the item count)"), None);
                n_items
            }
            (MissingItems::Prorate, Some(m)) => m,
            (MissingItems::Prorate, None) => {
                rep.err(
                    at("missing_items"),
                    "`missing_items = \"prorate\"` needs `min_items`".into(),
                    Some(format!("e.g. `min_items = {}`", n_items.div_ceil(2).max(1))),
                );
                n_items
            }
            (_, Some(_)) => {
                rep.err(at("min_items"), "`min_items` only applies with `missing_items = \"prorate\"`".into(), None);
                n_items
            }
            (_, None) => n_items,
        };
        let min_visits = spec.min_visits.unwrap_or(labels.len());
        if min_visits == 0 || min_visits > labels.len() {
            rep.err(
                at("min_visits"),
                format!("min_visits must be between 1 and {} (the visit count)", labels.len()),
                None,
            );
        }
        scores.push(ResolvedScore {
            name: name.clone(),
            visits,
            reverse: spec.items.iter().map(|i| spec.reverse.contains(i)).collect(),
            method: spec.method,
            range: spec.range,
            missing_codes: spec.missing_codes.clone(),
            missing_items: spec.missing_items,
            min_items,
            min_visits,
        });
    }
    let score_names: Vec<String> = scores.iter().map(|s| s.name.clone()).collect();

    // Derived variables: checked against the columns and scores, then usable like columns.
    let mut derived = Vec::new();
    if !study.derived.is_empty() {
        let pairs: Vec<(String, String)> =
            study.derived.iter().map(|(n, d)| (n.clone(), d.text().to_string())).collect();
        let available: Vec<String> = all_columns.iter().chain(&score_names).cloned().collect();
        match super::expr::check(&pairs, &available) {
            Ok(checked) => {
                for c in checked {
                    let policy = study.derived[&c.name].undefined();
                    column_table.insert(c.name.clone(), DERIVED.to_string());
                    derived.push((c, policy));
                }
            }
            Err(errors) => {
                // Register the names anyway, so their uses do not add knock-on errors.
                for name in study.derived.keys() {
                    column_table.entry(name.clone()).or_insert_with(|| DERIVED.to_string());
                }
                for e in errors {
                    let keys = keys!["derived", e.name.as_str()];
                    let entry = keys!["derived", e.name.as_str(), "expr"];
                    let span = loaded.span_of(&entry).or_else(|| loaded.span_of(&keys));
                    let diagnostic = match span {
                        Some(span) => {
                            let quote = &loaded.source[span.start..];
                            let open = if quote.starts_with("\"\"\"") || quote.starts_with("'''") { 3 } else { 1 };
                            e.to_diagnostic(&loaded.path, &loaded.source, span.start + open)
                        }
                        None => loaded.diagnostic(&keys, e.to_string()),
                    };
                    rep.problems.push(diagnostic);
                }
            }
        }
    }
    let all_columns: Vec<String> = column_table.keys().cloned().collect();
    rep.all_columns = all_columns.clone();

    // Feature groups.
    let mut group_columns: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (group, patterns) in &study.features {
        let mut columns = Vec::new();
        for (i, pattern) in patterns.iter().enumerate() {
            let matched = expand(pattern, &all_columns);
            if matched.is_empty() {
                if pattern.contains('*') {
                    rep.err(
                        keys!["features", group.as_str(), i],
                        format!("pattern `{pattern}` matches no column"),
                        Some("`*` matches any run of characters, e.g. `area_*`".into()),
                    );
                } else {
                    rep.missing_column(keys!["features", group.as_str(), i], pattern, "feature", &[]);
                }
            }
            for c in matched {
                if !columns.contains(&c) {
                    columns.push(c);
                }
            }
        }
        group_columns.insert(group.clone(), columns);
    }

    // Factor model.
    let factors = study.factors.as_ref().map(|spec| {
        let mut items: Vec<String> = Vec::new();
        for (i, pattern) in spec.items.iter().enumerate() {
            let matched = expand_with_groups(pattern, &all_columns, &score_names, &group_columns);
            if matched.is_empty() {
                rep.missing_column(keys!["factors", "items", i], pattern, "item", &score_names);
            }
            for c in matched {
                if !items.contains(&c) {
                    items.push(c);
                }
            }
        }
        if items.len() < 3 {
            rep.err(
                keys!["factors", "items"],
                format!("factor analysis needs at least 3 items; {} given", items.len()),
                None,
            );
        }
        match spec.count {
            super::FactorCount::Fixed(k) if k == 0 || (k >= items.len() && items.len() >= 3) => rep.err(
                keys!["factors", "count"],
                format!("{k} factors cannot be extracted from {} items", items.len()),
                Some(format!("use between 1 and {}, or \"parallel\"", items.len().saturating_sub(1).max(1))),
            ),
            super::FactorCount::Fixed(k) if !spec.names.is_empty() && spec.names.len() != k => {
                rep.err(keys!["factors", "names"], format!("{} names for {k} factors", spec.names.len()), None)
            }
            _ => {}
        }
        if spec.parallel_simulations < 100 {
            rep.err(
                keys!["factors", "parallel_simulations"],
                format!(
                    "{} simulations cannot estimate a 95th percentile; use at least 100",
                    spec.parallel_simulations
                ),
                None,
            );
        }
        for (i, name) in spec.names.iter().enumerate() {
            if column_table.contains_key(name) || score_names.contains(name) {
                rep.err(
                    keys!["factors", "names", i],
                    format!("factor name `{name}` is already a column or score"),
                    Some("choose another name".into()),
                );
            }
            if spec.names[..i].contains(name) {
                rep.err(keys!["factors", "names", i], format!("factor name `{name}` is used twice"), None);
            }
        }
        let names = match spec.count {
            super::FactorCount::Fixed(k) if spec.names.is_empty() => (1..=k).map(|f| format!("F{f}")).collect(),
            _ => spec.names.clone(),
        };
        ResolvedFactors { items, names }
    });
    let is_factor = |name: &str| factors.as_ref().is_some_and(|f| f.provides(name));
    let factor_hint: Vec<String> = factors.as_ref().map(|f| f.names.clone()).unwrap_or_default();

    let mut outcomes = Vec::new();
    let mut covariates = Vec::new();
    let mut features = Vec::new();
    if let Some(association) = &study.association {
        for (i, outcome) in association.outcomes.iter().enumerate() {
            if !score_names.contains(outcome) && !column_table.contains_key(outcome) && !is_factor(outcome) {
                rep.missing_column(keys!["association", "outcomes", i], outcome, "outcome", &score_names);
            }
            outcomes.push(outcome.clone());
        }
        if association.outcomes.is_empty() {
            rep.err(keys!["association", "outcomes"], "no outcomes".into(), None);
        }
        for (i, text) in association.covariates.iter().enumerate() {
            match Term::parse(text) {
                Ok(term) => {
                    for c in term.columns() {
                        if !column_table.contains_key(c) && !score_names.iter().any(|s| s == c) {
                            rep.missing_column(keys!["association", "covariates", i], c, "covariate", &score_names);
                        }
                    }
                    covariates.push(term);
                }
                Err(message) => {
                    rep.err(keys!["association", "covariates", i], format!("covariate term: {message}"), None)
                }
            }
        }
        let groups: Vec<String> = if association.features.is_empty() {
            group_columns.keys().cloned().collect()
        } else {
            association.features.clone()
        };
        for (i, group) in groups.iter().enumerate() {
            match group_columns.get(group) {
                Some(columns) => features.extend(columns.iter().map(|c| (group.clone(), c.clone()))),
                None => {
                    let hint = did_you_mean(group, group_columns.keys().map(String::as_str))
                        .map(|b| format!("did you mean `{b}`?"))
                        .unwrap_or_else(|| "declare it under [features]".into());
                    rep.err(
                        keys!["association", "features", i],
                        format!("feature group `{group}` is not declared"),
                        Some(hint),
                    );
                }
            }
        }
        if features.is_empty() && !study.features.is_empty() {
            rep.err(keys!["association"], "the association has no features".into(), None);
        }
        if study.features.is_empty() {
            rep.err(keys!["association"], "the association needs feature groups under [features]".into(), None);
        }
        if association.permutations > 0 && association.permutations < 99 {
            rep.err(
                keys!["association", "permutations"],
                format!("{} permutations cannot give p < 0.01; use 0 (none) or at least 99", association.permutations),
                None,
            );
        }
        if !(association.ci_level > 0.5 && association.ci_level < 1.0) {
            rep.err(keys!["association", "ci_level"], "ci_level must lie between 0.5 and 1 (e.g. 0.95)".into(), None);
        }
        if !(association.fdr.q > 0.0 && association.fdr.q < 1.0) {
            rep.err(
                keys!["association", "fdr", "q"],
                "the FDR level q must lie between 0 and 1 (e.g. 0.05)".into(),
                None,
            );
        }
        if !(association.replication.alpha > 0.0 && association.replication.alpha < 1.0) {
            rep.err(keys!["association", "replication", "alpha"], "alpha must lie between 0 and 1".into(), None);
        }
        if association.bootstrap > 0 && association.bootstrap < 100 {
            rep.err(
                keys!["association", "bootstrap"],
                format!(
                    "{} bootstrap resamples are too few for percentile CIs; use 0 or at least 100",
                    association.bootstrap
                ),
                None,
            );
        }
    }

    // Exclusions.
    let mut complete_cases = Vec::new();
    for (i, pattern) in study.exclusions.complete_cases.iter().enumerate() {
        let matched = expand_with_groups(pattern, &all_columns, &score_names, &group_columns);
        if matched.is_empty() {
            rep.missing_column(keys!["exclusions", "complete_cases", i], pattern, "column", &score_names);
        }
        complete_cases.extend(matched);
    }
    let mut iqr = Vec::new();
    for (r, rule) in study.exclusions.iqr.iter().enumerate() {
        if !(rule.k > 0.0) {
            rep.err(keys!["exclusions", "iqr", r, "k"], "k must be positive (e.g. 1.5 or 2.5)".into(), None);
        }
        let mut columns = Vec::new();
        for (i, pattern) in rule.columns.iter().enumerate() {
            let matched = expand_with_groups(pattern, &all_columns, &score_names, &group_columns);
            if matched.is_empty() {
                rep.missing_column(keys!["exclusions", "iqr", r, "columns", i], pattern, "column", &score_names);
            }
            columns.extend(matched);
        }
        iqr.push((columns, rule.k));
    }

    // Split.
    if let Some(split) = &study.split {
        if matches!(split.method, SplitMethod::Stratified | SplitMethod::Grouped) {
            match &split.column {
                Some(column) if !column_table.contains_key(column) => {
                    rep.missing_column(keys!["split", "column"], column, "split column", &[]);
                }
                Some(_) => {}
                None => rep.err(
                    keys!["split"],
                    "a stratified or grouped split needs `column` (the strata or the group id)".into(),
                    None,
                ),
            }
        }
        match split.method {
            SplitMethod::Random | SplitMethod::Stratified | SplitMethod::Grouped => match split.held_out_fraction {
                Some(f) if f > 0.0 && f < 1.0 => {
                    if let Some(sim) = &study.simulate {
                        let held = (sim.subjects as f64 * f).round() as usize;
                        if held < MIN_SPLIT_SIDE || sim.subjects - held < MIN_SPLIT_SIDE {
                            rep.err(
                                keys!["split", "held_out_fraction"],
                                format!(
                                    "holding out {f} of {} subjects leaves {held} held out and {} in discovery; \
                                     each side needs at least {MIN_SPLIT_SIDE}",
                                    sim.subjects,
                                    sim.subjects - held
                                ),
                                None,
                            );
                        }
                    }
                }
                Some(f) => rep.err(
                    keys!["split", "held_out_fraction"],
                    format!("held_out_fraction {f} must lie strictly between 0 and 1"),
                    Some("e.g. 0.15 holds out 15% of subjects".into()),
                ),
                None => rep.err(keys!["split"], "this split needs `held_out_fraction`".into(), None),
            },
            SplitMethod::Column => match &split.column {
                Some(column) if !column_table.contains_key(column) => {
                    rep.missing_column(keys!["split", "column"], column, "split column", &[]);
                }
                Some(_) if split.held_out_values.is_empty() => rep.err(
                    keys!["split"],
                    "a column split needs `held_out_values`".into(),
                    Some("e.g. held_out_values = [\"site3\"]".into()),
                ),
                Some(_) => {}
                None => rep.err(keys!["split"], "a column split needs `column`".into(), None),
            },
        }
    }

    // Prediction.
    let prediction = study.prediction.as_ref().map(|spec| {
        let at = |field: &str| keys!["prediction", field];
        let mut outcomes = Vec::new();
        for (i, outcome) in spec.outcomes.iter().enumerate() {
            if !score_names.contains(outcome) && !column_table.contains_key(outcome) && !is_factor(outcome) {
                let extra: Vec<String> = score_names.iter().chain(&factor_hint).cloned().collect();
                rep.missing_column(keys!["prediction", "outcomes", i], outcome, "outcome", &extra);
            }
            outcomes.push(outcome.clone());
        }
        if outcomes.is_empty() {
            rep.err(at("outcomes"), "no outcomes".into(), None);
        }
        let mut features = Vec::new();
        for (i, group) in spec.features.iter().enumerate() {
            match group_columns.get(group) {
                Some(columns) => features.extend(columns.iter().cloned()),
                None => {
                    let hint = did_you_mean(group, group_columns.keys().map(String::as_str))
                        .map(|b| format!("did you mean `{b}`?"))
                        .unwrap_or_else(|| "declare it under [features], e.g. `edges = [\"conn_*\"]`".into());
                    rep.err(
                        keys!["prediction", "features", i],
                        format!("feature group `{group}` is not declared"),
                        Some(hint),
                    );
                }
            }
        }
        if spec.features.is_empty() {
            rep.err(at("features"), "no feature groups".into(), None);
        }
        let mut confounds = Vec::new();
        for (i, c) in spec.confounds.iter().enumerate() {
            if !column_table.contains_key(c) && !score_names.contains(c) {
                rep.missing_column(keys!["prediction", "confounds", i], c, "confound", &score_names);
            }
            confounds.push(c.clone());
        }
        if let Some(g) = &spec.group_column
            && !column_table.contains_key(g)
        {
            rep.missing_column(at("group_column"), g, "group column", &[]);
        }
        if spec.folds < 2 {
            rep.err(at("folds"), format!("{} folds: cross-validation needs at least 2", spec.folds), None);
        }
        if spec.repeats == 0 {
            rep.err(at("repeats"), "repeats must be at least 1".into(), None);
        }
        if spec.models.is_empty() {
            rep.err(at("models"), "no models; use [\"cpm\"], [\"ridge\"] or both".into(), None);
        }
        if !(spec.cpm_p > 0.0 && spec.cpm_p < 1.0) {
            rep.err(at("cpm_p"), format!("cpm_p {} must lie between 0 and 1 (e.g. 0.01)", spec.cpm_p), None);
        }
        if spec.ridge_alphas.is_empty() || spec.ridge_alphas.iter().any(|a| !(*a > 0.0)) {
            rep.err(at("ridge_alphas"), "ridge_alphas must be positive numbers, e.g. [0.1, 1, 10, 100]".into(), None);
        }
        if spec.permutations > 0 && spec.permutations < 99 {
            rep.err(
                at("permutations"),
                format!("{} permutations cannot give p < 0.01; use 0 (none) or at least 99", spec.permutations),
                None,
            );
        }
        if !(spec.ci_level > 0.5 && spec.ci_level < 1.0) {
            rep.err(at("ci_level"), "ci_level must lie between 0.5 and 1 (e.g. 0.95)".into(), None);
        }
        ResolvedPrediction { outcomes, features, confounds }
    });

    // Group analyses.
    let mut groups = Vec::new();
    for (name, spec) in &study.group {
        let at = |field: &str| keys!["group", name.as_str(), field];
        let declared: Vec<String> = imaging.as_ref().map(|im| im.sessions.clone()).unwrap_or_default();
        let needed = match spec.design {
            super::GroupDesign::Paired => 2,
            _ => 1,
        };
        let sessions: Vec<Option<String>> = if declared.is_empty() {
            if spec.design == super::GroupDesign::Paired {
                rep.err(at("design"), "a paired design needs two [imaging] sessions".into(), None);
            }
            vec![None]
        } else {
            if spec.sessions.len() != needed {
                rep.err(
                    at("sessions"),
                    format!("a {:?} design needs {needed} session(s); {} given", spec.design, spec.sessions.len()),
                    Some(format!("declared sessions: {}", declared.join(", "))),
                );
            }
            for (i, session) in spec.sessions.iter().enumerate() {
                if !declared.contains(session) {
                    rep.err(
                        keys!["group", name.as_str(), "sessions", i],
                        format!("session `{session}` is not declared in [imaging] sessions"),
                        None,
                    );
                }
            }
            spec.sessions.iter().map(|s| Some(s.clone())).collect()
        };
        let mut columns = Vec::new();
        let mut need_column = |field: &str, column: &Option<String>, what: &str, rep: &mut Reporter<'_>| match column {
            Some(c) if !column_table.contains_key(c) => rep.missing_column(at(field), c, what, &score_names),
            Some(c) => columns.push(c.clone()),
            None => rep.err(at(field), format!("a {:?} design needs `{field}`", spec.design), None),
        };
        match spec.design {
            super::GroupDesign::TwoSample => need_column("group", &spec.group, "group column", &mut rep),
            super::GroupDesign::Correlation => need_column("variable", &spec.variable, "variable", &mut rep),
            super::GroupDesign::Paired => {}
        }
        for (i, c) in spec.covariates.iter().enumerate() {
            if !column_table.contains_key(c) {
                rep.missing_column(keys!["group", name.as_str(), "covariates", i], c, "covariate", &score_names);
            }
            columns.push(c.clone());
        }
        let level = match (&spec.seed, spec.edges.is_empty()) {
            (Some(seed), true) => {
                let seeds = imaging.as_ref().and_then(|im| im.seed_maps.as_ref()).map(|m| m.0.clone());
                match seeds.as_ref().and_then(|list| list.iter().position(|s| s == seed)) {
                    Some(index) => crate::stages::group::Level::Voxel { seed: index, name: seed.clone() },
                    None => {
                        rep.err(
                            at("seed"),
                            format!("seed `{seed}` has no seed-to-voxel maps"),
                            Some("list it in [seed_maps] seeds".into()),
                        );
                        continue;
                    }
                }
            }
            (None, false) => {
                let Some(im) = &imaging else {
                    rep.err(at("edges"), "edges need [imaging] and [connectivity]".into(), None);
                    continue;
                };
                let names: Vec<String> = im.edges.iter().map(|(a, b)| edge_column(a, b)).collect();
                let mut edges = Vec::new();
                for (i, pattern) in spec.edges.iter().enumerate() {
                    let matched = expand(pattern, &names);
                    if matched.is_empty() {
                        rep.err(
                            keys!["group", name.as_str(), "edges", i],
                            format!("`{pattern}` matches no edge"),
                            None,
                        );
                    }
                    for e in matched {
                        let per_session: Vec<String> =
                            sessions.iter().map(|s| session_column(&e, s.as_deref())).collect();
                        columns.extend(per_session.iter().cloned());
                        edges.push((e, per_session));
                    }
                }
                crate::stages::group::Level::Edges(edges)
            }
            _ => {
                rep.err(
                    keys!["group", name.as_str()],
                    "give exactly one of `seed` (voxelwise) or `edges`".into(),
                    None,
                );
                continue;
            }
        };
        let peak_atlas = spec.peak_labels.as_ref().and_then(|set| {
            let region = study.regions.get(set);
            match region.and_then(|r| r.atlas.as_ref().zip(r.labels.as_ref())) {
                Some((atlas, labels)) => {
                    let table = crate::imaging::regions::read_label_table(&loaded.resolve(labels)).ok()?;
                    Some((
                        loaded.resolve(atlas),
                        atlas.clone(),
                        table.into_iter().map(|(i, n)| (i as i64, n)).collect(),
                    ))
                }
                None => {
                    rep.err(at("peak_labels"), format!("region set `{set}` has no atlas with labels"), None);
                    None
                }
            }
        });
        if spec.permutations > 0 && spec.permutations < 99 {
            rep.err(
                at("permutations"),
                format!("{} permutations cannot give p < 0.01; use at least 99", spec.permutations),
                None,
            );
        }
        groups.push(ResolvedGroup { name: name.clone(), level, sessions, peak_atlas, columns });
    }
    let mut rocs = Vec::new();
    for (name, spec) in &study.roc {
        let at = |field: &str| keys!["roc", name.as_str(), field];
        if !column_table.contains_key(&spec.label) {
            rep.missing_column(at("label"), &spec.label, "label", &score_names);
        }
        let source = match (&spec.value, &spec.cluster_of) {
            (Some(value), None) => {
                if !column_table.contains_key(value) {
                    rep.missing_column(at("value"), value, "value", &score_names);
                }
                let selected = spec.selected_by.as_ref().and_then(|g| match groups.iter().find(|x| &x.name == g) {
                    Some(ResolvedGroup { level: crate::stages::group::Level::Edges(edges), sessions, .. })
                        if sessions.len() == 1 && study.group[g].design == super::GroupDesign::TwoSample =>
                    {
                        let candidates: Vec<String> = edges.iter().map(|(_, c)| c[0].clone()).collect();
                        if !candidates.contains(value) {
                            rep.err(at("value"), format!("`{value}` is not one of the edges of `{g}`"), None);
                        }
                        let spec = &study.group[g];
                        Some(crate::stages::roc::EdgeChoice {
                            group: g.clone(),
                            candidates,
                            group_column: spec.group.clone().unwrap_or_default(),
                            covariates: spec.covariates.clone(),
                            tail: spec.tail,
                        })
                    }
                    _ => {
                        rep.err(
                            at("selected_by"),
                            format!("`{g}` is not a one-session, region-level (`edges`) two-sample group analysis"),
                            None,
                        );
                        None
                    }
                });
                RocSource::Column { value: value.clone(), selected }
            }
            (None, Some(g)) => match groups.iter().find(|x| &x.name == g) {
                Some(group @ ResolvedGroup { level: crate::stages::group::Level::Voxel { .. }, sessions, .. })
                    if sessions.len() == 1 && study.group[g].design == super::GroupDesign::TwoSample =>
                {
                    RocSource::Cluster(group.clone())
                }
                _ => {
                    rep.err(
                        at("cluster_of"),
                        format!("`{g}` is not a one-session, voxelwise (`seed`) two-sample group analysis"),
                        None,
                    );
                    continue;
                }
            },
            _ => {
                rep.err(keys!["roc", name.as_str()], "give exactly one of `value` or `cluster_of`".into(), None);
                continue;
            }
        };
        if spec.folds < 2 {
            rep.err(at("folds"), "folds must be at least 2".into(), None);
        }
        rocs.push((name.clone(), source));
    }

    // Sample sizes that can be known before reading data: subjects simulated or runs found,
    // times the split's discovery fraction.
    let available = match (&study.simulate, &imaging) {
        (_, Some(im)) => Some(im.runs.len()),
        (Some(sim), None) => Some(sim.subjects),
        _ => None,
    };
    if let Some(available) = available {
        let fraction = study.split.as_ref().and_then(|s| s.held_out_fraction).filter(|f| *f > 0.0 && *f < 1.0);
        let fit = available - fraction.map_or(0, |f| (available as f64 * f).round() as usize);
        let sample = if fraction.is_some() { "the discovery set" } else { "the study" };
        if let (Some(f), Some(spec)) = (&factors, &study.factors)
            && fit < f.items.len() + 2
        {
            rep.err(
                keys!["factors", "items"],
                format!(
                    "{sample} has at most {fit} subjects, too few to factor-analyse {} items (needs at least {})",
                    f.items.len(),
                    f.items.len() + 2
                ),
                Some(format!(
                    "{} factors requested; reduce the items or hold out fewer subjects",
                    match spec.count {
                        super::FactorCount::Fixed(k) => k.to_string(),
                        super::FactorCount::Rule(_) => "data-driven".into(),
                    }
                )),
            );
        }
        if let Some(spec) = &study.prediction
            && spec.folds >= 2
            && fit < 2 * spec.folds
        {
            rep.err(
                keys!["prediction", "folds"],
                format!(
                    "{sample} has at most {fit} subjects, too few for {}-fold cross-validation (needs at least {})",
                    spec.folds,
                    2 * spec.folds
                ),
                None,
            );
        }
    }

    Resolved {
        tables,
        column_table,
        scores,
        features,
        covariates,
        outcomes,
        complete_cases,
        iqr,
        imaging,
        factors,
        prediction,
        derived,
        groups,
        rocs,
    }
}

/// Discover the runs, build every region set on each distinct BOLD grid (so a region lost in
/// resampling fails here, by name), and list the connectivity edges.
fn resolve_imaging(rep: &mut Reporter<'_>, loaded: &LoadedStudy) -> Option<ResolvedImaging> {
    use crate::imaging::regions::{Grid, MapRuleSpec, RegionSources, Resampling, read_label_table};
    let study = &loaded.study;
    let (imaging, connectivity) = match (&study.imaging, &study.connectivity) {
        (None, None) if study.regions.is_empty() => return None,
        (Some(i), Some(c)) => (i, c),
        (None, _) => {
            rep.err(
                keys![],
                "region sets and connectivity need an [imaging] section (where the runs are)".into(),
                None,
            );
            return None;
        }
        (Some(_), None) => {
            rep.err(keys!["imaging"], "[imaging] needs a [connectivity] section (which edges to compute)".into(), None);
            return None;
        }
    };
    let root = loaded.resolve(&imaging.fmriprep);
    let found = match crate::imaging::discover::discover(&root, &imaging.task, &imaging.space) {
        Ok(found) => found,
        Err(e) => {
            rep.err(keys!["imaging", "fmriprep"], strip_error(&e), None);
            return None;
        }
    };
    if !found.subjects_without_runs.is_empty() && imaging.missing_runs == super::MissingRuns::Error {
        rep.err(
            keys!["imaging"],
            format!(
                "no run of task-{} in space-{} for {}",
                imaging.task,
                imaging.space,
                found.subjects_without_runs.join(", ")
            ),
            Some("set `missing_runs = \"exclude\"` to exclude (and list) such subjects".into()),
        );
    }
    // Runs per (subject, session): one each. With declared sessions, a subject missing one of
    // them is an error or an exclusion, like a subject without runs.
    let mut excluded = found.subjects_without_runs.clone();
    let mut per_subject: BTreeMap<String, Vec<crate::imaging::discover::Run>> = BTreeMap::new();
    for run in found.runs {
        if !imaging.sessions.is_empty() && !run.session.as_ref().is_some_and(|s| imaging.sessions.contains(s)) {
            continue;
        }
        per_subject.entry(run.subject.clone()).or_default().push(run);
    }
    let mut runs = Vec::new();
    for (subject, list) in per_subject {
        let wanted: Vec<Option<&str>> = if imaging.sessions.is_empty() {
            vec![None]
        } else {
            imaging.sessions.iter().map(|s| Some(s.as_str())).collect()
        };
        for session in wanted {
            let matching: Vec<&crate::imaging::discover::Run> =
                list.iter().filter(|r| session.is_none() || r.session.as_deref() == session).collect();
            if matching.len() > 1 {
                let sessions: BTreeSet<&str> = matching.iter().filter_map(|r| r.session.as_deref()).collect();
                rep.err(
                    keys!["imaging"],
                    format!(
                        "subject {subject} has {} runs of task-{} ({}); one run per subject{} is supported",
                        matching.len(),
                        imaging.task,
                        matching.iter().map(|r| r.prefix.as_str()).collect::<Vec<_>>().join(", "),
                        if session.is_some() { " and session" } else { "" }
                    ),
                    (session.is_none() && sessions.len() > 1).then(|| {
                        format!(
                            "declare the sessions to pair them, e.g. `sessions = [{}]`",
                            sessions.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")
                        )
                    }),
                );
                continue;
            }
            let Some(run) = matching.first() else {
                let label = format!("{subject} (ses-{})", session.unwrap_or(""));
                if imaging.missing_runs == super::MissingRuns::Error {
                    rep.err(
                        keys!["imaging", "sessions"],
                        format!("no run of task-{} in space-{} for {label}", imaging.task, imaging.space),
                        Some("set `missing_runs = \"exclude\"` to exclude (and list) such subjects".into()),
                    );
                }
                if !excluded.contains(&subject) {
                    excluded.push(subject.clone());
                }
                continue;
            };
            let strategy_needs =
                !study.denoise.strategy.eq_ignore_ascii_case("none") || study.denoise.fd_threshold.is_some();
            if strategy_needs && run.confounds.is_none() {
                rep.err(
                    keys!["imaging"],
                    format!("{}: no confounds file beside it, but [denoise] needs one", run.bold.display()),
                    None,
                );
                continue;
            }
            runs.push((*run).clone());
        }
    }
    // A subject excluded for a missing session contributes none of its runs.
    runs.retain(|r| !excluded.contains(&r.subject));
    excluded.sort();
    if runs.is_empty() {
        rep.err(keys!["imaging"], format!("{}: no usable run", root.display()), None);
        return None;
    }
    if let Err(e) = crate::imaging::denoise::Strategy::parse(&study.denoise.strategy) {
        rep.err(keys!["denoise", "strategy"], strip_error(&e), None);
    }

    // Region sets: resolve files, read label tables; file paths become input names.
    let mut sets = Vec::new();
    let mut region_files = Vec::new();
    let mut resolved_sources = Vec::new();
    for (set, spec) in &study.regions {
        let mut sources = RegionSources { include: spec.include.clone(), ..Default::default() };
        let mut real = RegionSources { include: spec.include.clone(), ..Default::default() };
        let mut file =
            |rep: &mut Reporter<'_>, field: Vec<Key>, written: &str, input: String| -> Option<(PathBuf, PathBuf)> {
                let path = loaded.resolve(written);
                if !path.is_file() {
                    rep.err(field, format!("`{written}` does not exist (looked for {})", path.display()), None);
                    return None;
                }
                region_files.push((input.clone(), path.clone(), written.to_string()));
                Some((PathBuf::from(input), path))
            };
        if let Some(atlas) = &spec.atlas {
            let table = match &spec.labels {
                Some(labels) => {
                    let path = loaded.resolve(labels);
                    match read_label_table(&path) {
                        Ok(t) => Some(t),
                        Err(e) => {
                            rep.err(keys!["regions", set.as_str(), "labels"], strip_error(&e), None);
                            None
                        }
                    }
                }
                None => None,
            };
            if let Some(t) = &table {
                for (i, name) in spec.include.iter().enumerate() {
                    if !t.iter().any(|(_, n)| n == name) {
                        let hint = did_you_mean(name, t.iter().map(|(_, n)| n.as_str()))
                            .map(|b| format!("did you mean `{b}`?"));
                        rep.err(
                            keys!["regions", set.as_str(), "include", i],
                            format!("label `{name}` is not in the label table"),
                            hint,
                        );
                    }
                }
            }
            if let Some((input, path)) =
                file(rep, keys!["regions", set.as_str(), "atlas"], atlas, format!("region:{set}:atlas"))
            {
                sources.atlas = Some((input, table.clone()));
                real.atlas = Some((path, table));
            }
        }
        if let Some(maps) = &spec.maps {
            let rule = match (spec.map_threshold, spec.map_maxprob) {
                (Some(t), false) => Some(MapRuleSpec::Threshold(t)),
                (None, true) => Some(MapRuleSpec::MaxProbability),
                _ => {
                    rep.err(
                        keys!["regions", set.as_str(), "maps"],
                        "maps need exactly one of `map_threshold` or `map_maxprob = true`".into(),
                        None,
                    );
                    None
                }
            };
            if let (Some(rule), Some((input, path))) =
                (rule, file(rep, keys!["regions", set.as_str(), "maps"], maps, format!("region:{set}:maps")))
            {
                sources.maps = Some((input, spec.map_names.clone(), rule));
                real.maps = Some((path, spec.map_names.clone(), rule));
            }
        }
        for s in &spec.spheres {
            sources.spheres.push((s.name.clone(), s.centre, s.radius));
            real.spheres.push((s.name.clone(), s.centre, s.radius));
        }
        for (name, written) in &spec.masks {
            if let Some((input, path)) = file(
                rep,
                keys!["regions", set.as_str(), "masks", name.as_str()],
                written,
                format!("region:{set}:mask:{name}"),
            ) {
                sources.masks.push((name.clone(), input));
                real.masks.push((name.clone(), path));
            }
        }
        sets.push((set.clone(), sources));
        resolved_sources.push((set.clone(), real));
    }
    if !rep.problems.is_empty() {
        return None;
    }

    // Build every set on each distinct BOLD grid: lost regions fail here, by name.
    let mut region_names: Vec<(String, Vec<String>)> = Vec::new();
    let mut grids: Vec<Grid> = Vec::new();
    for run in &runs {
        let grid = match crate::imaging::extract::open_bold(&run.bold) {
            Ok((_, g)) => g,
            Err(e) => {
                rep.err(keys!["imaging"], strip_error(&e), None);
                continue;
            }
        };
        if grids.iter().any(|g| g.matches(&grid, crate::imaging::regions::GRID_TOLERANCE)) {
            continue;
        }
        for (set, real) in &resolved_sources {
            match real.build(&grid, &run.bold, Resampling::Nearest) {
                Ok(regions) => {
                    if region_names.iter().all(|(s, _)| s != set) {
                        region_names.push((set.clone(), regions.iter().map(|r| r.name.clone()).collect()));
                    }
                    let min_kept = study.regions[set].min_kept_fraction;
                    for r in regions.iter().filter(|r| (r.voxels.len() as f64) < min_kept * r.voxels_before as f64) {
                        eprintln!(
                            "warning: region `{}` keeps {} of its {} voxels on the grid of {}",
                            r.name,
                            r.voxels.len(),
                            r.voxels_before,
                            run.bold.display()
                        );
                    }
                }
                Err(e) => rep.err(keys!["regions", set.as_str()], strip_error(&e), None),
            }
        }
        grids.push(grid);
    }
    let mut all: Vec<String> = region_names.iter().flat_map(|(_, n)| n.clone()).collect();
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = all.iter().find(|n| !seen.insert((*n).clone())) {
        rep.err(
            keys!["regions"],
            format!("region name `{dup}` appears twice; region names must be unique across sets"),
            None,
        );
    }
    let names_of = |set: &str| region_names.iter().find(|(s, _)| s == set).map(|(_, n)| n.clone());
    let mut edges = Vec::new();
    for (i, [a, b]) in connectivity.pairs.iter().enumerate() {
        let (Some(left), Some(right)) = (names_of(a), names_of(b)) else {
            let missing = if names_of(a).is_none() { a } else { b };
            let hint =
                did_you_mean(missing, study.regions.keys().map(String::as_str)).map(|b| format!("did you mean `{b}`?"));
            rep.err(
                keys!["connectivity", "pairs", i],
                format!("region set `{missing}` is not declared under [regions]"),
                hint,
            );
            continue;
        };
        if a == b {
            for x in 0..left.len() {
                for y in x + 1..left.len() {
                    edges.push((left[x].clone(), left[y].clone()));
                }
            }
        } else {
            for x in &left {
                for y in &right {
                    edges.push((x.clone(), y.clone()));
                }
            }
        }
    }
    all.dedup();
    let seed_maps = study.seed_maps.as_ref().and_then(|spec| {
        for (i, seed) in spec.seeds.iter().enumerate() {
            if !all.contains(seed) {
                let hint = did_you_mean(seed, all.iter().map(String::as_str)).map(|b| format!("did you mean `{b}`?"));
                rep.err(keys!["seed_maps", "seeds", i], format!("seed `{seed}` is not a region of any set"), hint);
            }
        }
        let path = loaded.resolve(&spec.mask);
        if !path.is_file() {
            rep.err(
                keys!["seed_maps", "mask"],
                format!("mask `{}` does not exist (looked for {})", spec.mask, path.display()),
                None,
            );
            return None;
        }
        Some((spec.seeds.clone(), path, spec.mask.clone()))
    });
    Some(ResolvedImaging {
        runs,
        excluded,
        sets,
        region_files,
        region_names: all,
        edges,
        sessions: imaging.sessions.clone(),
        seed_maps,
    })
}

struct Reporter<'a> {
    loaded: &'a LoadedStudy,
    problems: &'a mut Vec<Diagnostic>,
    all_columns: Vec<String>,
}

impl Reporter<'_> {
    fn err(&mut self, keys: Vec<Key>, message: String, hint: Option<String>) {
        let mut d = self.loaded.diagnostic(&keys, message);
        d.hint = hint;
        self.problems.push(d);
    }

    fn missing_column(&mut self, keys: Vec<Key>, column: &str, what: &str, extra: &[String]) {
        let candidates = self.all_columns.iter().chain(extra).map(String::as_str);
        let hint = did_you_mean(column, candidates).map(|b| format!("did you mean `{b}`?"));
        let mut d = self.loaded.diagnostic(&keys, format!("{what} `{column}` is not a column of any table"));
        d.hint = hint.or_else(|| Some("check the spelling against the table headers".into()));
        self.problems.push(d);
    }
}

/// Match a name or `*` pattern against columns (declaration order kept).
pub fn expand(pattern: &str, columns: &[String]) -> Vec<String> {
    if !pattern.contains('*') {
        return columns.iter().filter(|c| *c == pattern).cloned().collect();
    }
    columns.iter().filter(|c| glob_match(pattern, c)).cloned().collect()
}

fn expand_with_groups(
    pattern: &str,
    columns: &[String],
    scores: &[String],
    groups: &BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    if let Some(group) = groups.get(pattern) {
        return group.clone();
    }
    if scores.iter().any(|s| s == pattern) {
        return vec![pattern.to_string()];
    }
    expand(pattern, columns)
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

fn strip_error(e: &Error) -> String {
    e.to_string().trim_start_matches("error: ").to_string()
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
