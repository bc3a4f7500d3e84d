//! `[group.NAME]`: group-level analyses — the design and its sessions, the variables and
//! covariates it reads, and what it tests (a seed's voxelwise maps or connectome edges); and
//! `[roc.NAME]`: ROC analyses of a column or of a voxelwise analysis' largest cluster.

use super::{
    Checker, PeakAtlas, ResolvedGroup, ResolvedImaging, ResolvedRoc, RocSource, edge_column, expand, session_column,
};
use crate::design::{ClusterChoice, EdgeChoice, Level};
use crate::keys;
use crate::spec::{GroupDesign, GroupSpec};

pub(super) fn resolve(cx: &mut Checker<'_>, imaging: Option<&ResolvedImaging>) -> Vec<ResolvedGroup> {
    let mut groups = Vec::new();
    for (name, spec) in &cx.study.group {
        let at = |field: &str| keys!["group", name.as_str(), field];
        let sessions = sessions(cx, name, spec, imaging);
        let mut columns = design_columns(cx, name, spec);
        cx.blocks(keys!["group", name.as_str()], &spec.permutation_blocks, spec.block_permutation);
        let Some(level) = level(cx, name, spec, imaging, &sessions, &mut columns) else { continue };
        let peak_atlas = spec.peak_labels.as_ref().and_then(|set| peak_atlas(cx, name, set));
        cx.permutations(at("permutations"), spec.permutations, "");
        enhancement(cx, name, spec, &level);
        let edge_endpoints = match (&level, imaging) {
            (Level::Edges(edges), Some(im)) => Some(
                edges
                    .iter()
                    .filter_map(|(e, _)| im.edges.iter().find(|(a, b)| edge_column(a, b) == *e).cloned())
                    .collect(),
            ),
            _ => None,
        };
        groups.push(ResolvedGroup {
            name: name.clone(),
            level,
            sessions,
            peak_atlas,
            columns,
            settings: spec.clone(),
            edge_endpoints,
        });
    }
    groups
}

/// TFCE (voxelwise only) and NBS (region level only), and their settings.
fn enhancement(cx: &mut Checker<'_>, name: &str, spec: &GroupSpec, level: &Level) {
    let at = |field: &str| keys!["group", name, field];
    let voxelwise = matches!(level, Level::Voxel { .. });
    if spec.tfce && !voxelwise {
        cx.err(
            at("tfce"),
            format!("TFCE needs a voxelwise analysis (`seed`), but `{name}` tests connectome edges"),
            Some("for edges use the network-based statistic: `nbs = { threshold_t = 3.0 }`".into()),
        );
    }
    if spec.tfce {
        for (field, value) in [("tfce_e", spec.tfce_e), ("tfce_h", spec.tfce_h)] {
            if !(value.is_finite() && value > 0.0 && value <= 10.0) {
                cx.err(
                    at(field),
                    format!("{field} must be a positive number up to 10, not {value}"),
                    Some("the usual values are E = 0.5, H = 2".into()),
                );
            }
        }
        if !(MIN_TFCE_STEPS..=MAX_TFCE_STEPS).contains(&spec.tfce_steps) {
            cx.err(
                at("tfce_steps"),
                format!(
                    "tfce_steps must lie between {MIN_TFCE_STEPS} and {MAX_TFCE_STEPS} (as nilearn), not {}",
                    spec.tfce_steps
                ),
                Some("fslmaths and nilearn use 100".into()),
            );
        }
    }
    let Some(nbs) = &spec.nbs else { return };
    if voxelwise {
        cx.err(
            at("nbs"),
            format!("the network-based statistic needs a region-level analysis (`edges`), but `{name}` is voxelwise"),
            Some("for voxelwise maps use `tfce = true` or cluster extent".into()),
        );
    }
    match (nbs.threshold_t, nbs.threshold_p) {
        (Some(t), None) if !(t.is_finite() && t > 0.0) => cx.err(
            keys!["group", name, "nbs", "threshold_t"],
            format!("threshold_t must be a positive t, not {t}"),
            None,
        ),
        (None, Some(p)) if !(p > 0.0 && p < 1.0) => cx.err(
            keys!["group", name, "nbs", "threshold_p"],
            format!("threshold_p must lie strictly between 0 and 1, not {p}"),
            Some("e.g. 0.001".into()),
        ),
        (Some(_), None) | (None, Some(_)) => {}
        _ => cx.err(
            at("nbs"),
            "nbs needs exactly one of `threshold_t` or `threshold_p`".into(),
            Some("e.g. `nbs = { threshold_t = 3.0 }`".into()),
        ),
    }
}

/// TFCE height steps allowed (nilearn's own bounds).
const MIN_TFCE_STEPS: usize = 10;
const MAX_TFCE_STEPS: usize = 1000;

/// The sessions a design uses (`[None]` without declared sessions).
fn sessions(
    cx: &mut Checker<'_>,
    name: &str,
    spec: &GroupSpec,
    imaging: Option<&ResolvedImaging>,
) -> Vec<Option<String>> {
    let at = |field: &str| keys!["group", name, field];
    let declared: Vec<String> = imaging.map(|im| im.sessions.clone()).unwrap_or_default();
    let needed = if spec.design == GroupDesign::Paired { 2 } else { 1 };
    if declared.is_empty() {
        if spec.design == GroupDesign::Paired {
            cx.err(at("design"), "a paired design needs two [imaging] sessions".into(), None);
        }
        return vec![None];
    }
    if spec.sessions.len() != needed {
        cx.err(
            at("sessions"),
            format!("a {:?} design needs {needed} session(s); {} given", spec.design, spec.sessions.len()),
            Some(format!("declared sessions: {}", declared.join(", "))),
        );
    }
    for (i, session) in spec.sessions.iter().enumerate() {
        if !declared.contains(session) {
            cx.err(
                keys!["group", name, "sessions", i],
                format!("session `{session}` is not declared in [imaging] sessions"),
                None,
            );
        }
    }
    spec.sessions.iter().map(|s| Some(s.clone())).collect()
}

/// The design variable (group or correlate) and the covariates, each a dataset column.
fn design_columns(cx: &mut Checker<'_>, name: &str, spec: &GroupSpec) -> Vec<String> {
    let scores = cx.score_names.clone();
    let mut columns = Vec::new();
    let (field, column, what) = match spec.design {
        GroupDesign::TwoSample => ("group", &spec.group, "group column"),
        GroupDesign::Correlation => ("variable", &spec.variable, "variable"),
        GroupDesign::Paired => ("", &None, ""),
    };
    if !field.is_empty() {
        match column {
            Some(c) if !cx.is_column(c) => cx.missing_column(keys!["group", name, field], c, what, &scores),
            Some(c) => columns.push(c.clone()),
            None => cx.err(keys!["group", name, field], format!("a {:?} design needs `{field}`", spec.design), None),
        }
    }
    let terms = cx.covariate_terms(|i| keys!["group", name, "covariates", i], &spec.covariates, "covariate", true);
    columns.extend(terms.iter().flat_map(|t| t.columns()).map(String::from));
    columns
}

/// A seed's voxelwise maps, or connectome edges (their columns join `columns`).
fn level(
    cx: &mut Checker<'_>,
    name: &str,
    spec: &GroupSpec,
    imaging: Option<&ResolvedImaging>,
    sessions: &[Option<String>],
    columns: &mut Vec<String>,
) -> Option<Level> {
    let at = |field: &str| keys!["group", name, field];
    match (&spec.seed, spec.edges.is_empty()) {
        (Some(seed), true) => {
            let seeds = imaging.and_then(|im| im.seed_maps.as_ref()).map(|m| &m.0);
            match seeds.and_then(|list| list.iter().position(|s| s == seed)) {
                Some(index) => Some(Level::Voxel { seed: index, name: seed.clone() }),
                None => {
                    cx.err(
                        at("seed"),
                        format!("seed `{seed}` has no seed-to-voxel maps"),
                        Some("list it in [seed_maps] seeds".into()),
                    );
                    None
                }
            }
        }
        (None, false) => {
            let Some(im) = imaging else {
                cx.err(at("edges"), "edges need [imaging] and [connectivity]".into(), None);
                return None;
            };
            let names: Vec<String> = im.edges.iter().map(|(a, b)| edge_column(a, b)).collect();
            let mut edges = Vec::new();
            for (i, pattern) in spec.edges.iter().enumerate() {
                let matched = expand(pattern, &names);
                if matched.is_empty() {
                    cx.err(keys!["group", name, "edges", i], format!("`{pattern}` matches no edge"), None);
                }
                for e in matched {
                    let per_session: Vec<String> = sessions.iter().map(|s| session_column(&e, s.as_deref())).collect();
                    columns.extend(per_session.iter().cloned());
                    edges.push((e, per_session));
                }
            }
            Some(Level::Edges(edges))
        }
        _ => {
            cx.err(keys!["group", name], "give exactly one of `seed` (voxelwise) or `edges`".into(), None);
            None
        }
    }
}

/// The label atlas of region set `set`, for naming cluster peaks.
fn peak_atlas(cx: &mut Checker<'_>, name: &str, set: &str) -> Option<PeakAtlas> {
    let region = cx.study.regions.get(set);
    match region.and_then(|r| r.atlas.as_ref().zip(r.labels.as_ref())) {
        Some((atlas, labels)) => {
            let table = crate::imaging::regions::read_label_table(&cx.loaded.resolve(labels)).ok()?;
            Some((cx.loaded.resolve(atlas), atlas.clone(), table.into_iter().map(|(i, n)| (i as i64, n)).collect()))
        }
        None => {
            cx.err(keys!["group", name, "peak_labels"], format!("region set `{set}` has no atlas with labels"), None);
            None
        }
    }
}

pub(super) fn rocs(cx: &mut Checker<'_>, groups: &[ResolvedGroup]) -> Vec<ResolvedRoc> {
    let mut rocs = Vec::new();
    for (name, spec) in &cx.study.roc {
        cx.blocks(keys!["roc", name.as_str()], &spec.permutation_blocks, spec.block_permutation);
        let at = |field: &str| keys!["roc", name.as_str(), field];
        let scores = cx.score_names.clone();
        if !cx.is_column(&spec.label) {
            cx.missing_column(at("label"), &spec.label, "label", &scores);
        }
        let source = match (&spec.value, &spec.cluster_of) {
            (Some(value), None) => {
                if !cx.is_column(value) {
                    cx.missing_column(at("value"), value, "value", &scores);
                }
                let selected = spec.selected_by.as_ref().and_then(|g| edge_choice(cx, name, value, g, groups));
                RocSource::Column { value: value.clone(), selected }
            }
            (None, Some(g)) => match cluster_choice(groups, g) {
                Some(source) => source,
                None => {
                    cx.err(
                        at("cluster_of"),
                        format!("`{g}` is not a one-session, voxelwise (`seed`) two-sample group analysis"),
                        None,
                    );
                    continue;
                }
            },
            _ => {
                cx.err(keys!["roc", name.as_str()], "give exactly one of `value` or `cluster_of`".into(), None);
                continue;
            }
        };
        if spec.folds < 2 {
            cx.err(at("folds"), "folds must be at least 2".into(), None);
        }
        rocs.push(ResolvedRoc { name: name.clone(), source, settings: spec.clone() });
    }
    rocs
}

/// The one-session, region-level two-sample analysis `g` that chose `value` among its edges.
fn edge_choice(cx: &mut Checker<'_>, roc: &str, value: &str, g: &str, groups: &[ResolvedGroup]) -> Option<EdgeChoice> {
    match groups.iter().find(|x| x.name == g) {
        Some(ResolvedGroup { level: Level::Edges(edges), sessions, settings, .. })
            if sessions.len() == 1 && settings.design == GroupDesign::TwoSample =>
        {
            let candidates: Vec<String> = edges.iter().map(|(_, c)| c[0].clone()).collect();
            if !candidates.iter().any(|c| c == value) {
                cx.err(keys!["roc", roc, "value"], format!("`{value}` is not one of the edges of `{g}`"), None);
            }
            Some(EdgeChoice {
                group: g.to_string(),
                candidates,
                group_column: settings.group.clone().unwrap_or_default(),
                covariates: settings.covariates.clone(),
                tail: settings.tail,
            })
        }
        _ => {
            cx.err(
                keys!["roc", roc, "selected_by"],
                format!("`{g}` is not a one-session, region-level (`edges`) two-sample group analysis"),
                None,
            );
            None
        }
    }
}

/// The one-session, voxelwise two-sample analysis `g` whose largest cluster gives the value.
fn cluster_choice(groups: &[ResolvedGroup], g: &str) -> Option<RocSource> {
    let group = groups.iter().find(|x| x.name == g)?;
    let (Level::Voxel { seed, .. }, [session]) = (&group.level, group.sessions.as_slice()) else { return None };
    let spec = &group.settings;
    let (GroupDesign::TwoSample, Some(group_column)) = (spec.design, &spec.group) else { return None };
    let choice = ClusterChoice {
        group: group.name.clone(),
        seed: *seed,
        session: session.clone(),
        group_column: group_column.clone(),
        covariates: spec.covariates.clone(),
        tail: spec.tail,
        cluster_t: spec.cluster_t,
        cluster_p: spec.cluster_p,
        connectivity: spec.connectivity,
    };
    Some(RocSource::Cluster { choice, sessions: group.sessions.clone(), columns: group.columns.clone() })
}
