//! `[imaging]`, `[regions.SET]`, `[connectivity]`, `[denoise]` and `[seed_maps]`: discover the
//! fMRIPrep runs (one per subject and session), resolve every region file and label, build every
//! region set on each distinct BOLD grid (so a region lost in resampling fails here, by name), and
//! list the connectivity edges.
//!
//! This is the one section that opens images: it reads NIfTI headers and resamples region
//! images onto each BOLD grid, the cheapest way to prove before compute that every declared
//! region survives (the same library code the stages run).

use super::{Checker, ResolvedImaging};
use crate::error::did_you_mean;
use crate::imaging::discover::Run;
use crate::imaging::regions::{Grid, LabelTable, MapRuleSpec, RegionSources, Resampling, read_label_table};
use crate::keys;
use crate::spec::load::Key;
use crate::spec::{Imaging, MissingRuns, RegionSet};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

pub(super) fn resolve(cx: &mut Checker<'_>) -> Option<ResolvedImaging> {
    let study = cx.study;
    let (imaging, connectivity) = match (&study.imaging, &study.connectivity) {
        (None, None) if study.regions.is_empty() => return None,
        (Some(i), Some(c)) => (i, c),
        (None, _) => {
            cx.err(keys![], "region sets and connectivity need an [imaging] section (where the runs are)".into(), None);
            return None;
        }
        (Some(_), None) => {
            cx.err(keys!["imaging"], "[imaging] needs a [connectivity] section (which edges to compute)".into(), None);
            return None;
        }
    };
    let (runs, excluded) = runs(cx, imaging)?;
    if let Err(e) = crate::imaging::denoise::Strategy::parse(&study.denoise.strategy) {
        cx.err(keys!["denoise", "strategy"], e.to_string(), None);
    }
    let files = region_files(cx);
    if cx.has_errors() {
        return None;
    }
    let (region_names, grids) = build_on_grids(cx, &runs, &files.real);
    let mut all: Vec<String> = region_names.iter().flat_map(|(_, n)| n.clone()).collect();
    let mut seen = BTreeSet::new();
    if let Some(dup) = all.iter().find(|n| !seen.insert((*n).clone())) {
        cx.err(
            keys!["regions"],
            format!("region name `{dup}` appears twice; region names must be unique across sets"),
            None,
        );
    }
    let edges = edges(cx, &connectivity.pairs, &region_names);
    all.dedup();
    let seed_maps = seed_maps(cx, &all);
    if seed_maps.is_some() {
        several_runs_with_seed_maps(cx, &runs);
    }
    Some(ResolvedImaging {
        runs,
        grids,
        excluded,
        sets: files.sets,
        region_files: files.inputs,
        region_names: all,
        edges,
        sessions: imaging.sessions.clone(),
        seed_maps,
        denoise: study.denoise.clone(),
        fisher_z: connectivity.fisher_z,
    })
}

/// The runs used (one per subject, or per subject and declared session) and the subjects
/// excluded for having none.
fn runs(cx: &mut Checker<'_>, imaging: &Imaging) -> Option<(Vec<Run>, Vec<String>)> {
    let root = cx.loaded.resolve(&imaging.fmriprep);
    let select = imaging.entity_selection();
    let found = match crate::imaging::discover::discover(&root, &imaging.task, &imaging.space, &select) {
        Ok(found) => found,
        Err(e) => {
            cx.err(keys!["imaging", "fmriprep"], e.to_string(), None);
            return None;
        }
    };
    let exclude_hint = || Some("set `missing_runs = \"exclude\"` to exclude (and list) such subjects".to_string());
    if !found.subjects_without_runs.is_empty() && imaging.missing_runs == MissingRuns::Error {
        cx.err(
            keys!["imaging"],
            format!(
                "no run of task-{} in space-{} for {}",
                imaging.task,
                imaging.space,
                found.subjects_without_runs.join(", ")
            ),
            exclude_hint(),
        );
    }
    // Runs per (subject, session): one each. With declared sessions, a subject missing one of
    // them is an error or an exclusion, like a subject without runs.
    let mut excluded = found.subjects_without_runs.clone();
    let mut per_subject: BTreeMap<String, Vec<Run>> = BTreeMap::new();
    for run in found.runs {
        if !imaging.sessions.is_empty() && !run.session.as_ref().is_some_and(|s| imaging.sessions.contains(s)) {
            continue;
        }
        per_subject.entry(run.subject.clone()).or_default().push(run);
    }
    let wanted: Vec<Option<&str>> = if imaging.sessions.is_empty() {
        vec![None]
    } else {
        imaging.sessions.iter().map(|s| Some(s.as_str())).collect()
    };
    let mut runs = Vec::new();
    for (subject, list) in per_subject {
        for &session in &wanted {
            let matching: Vec<&Run> = list
                .iter()
                .filter(|r| session.is_none() || r.session.as_deref() == session)
                .filter(|r| imaging.runs.as_ref().is_none_or(|s| s.selects(r.run.as_deref())))
                .collect();
            if !one_image_per_run(cx, imaging, &subject, &matching) {
                continue;
            }
            if imaging.runs.is_none() && matching.len() > 1 {
                several_runs(cx, imaging, &subject, session, &matching);
                continue;
            }
            if matching.is_empty() {
                let label = format!("{subject} (ses-{})", session.unwrap_or(""));
                if imaging.missing_runs == MissingRuns::Error {
                    cx.err(
                        keys!["imaging", "sessions"],
                        format!("no run of task-{} in space-{} for {label}", imaging.task, imaging.space),
                        exclude_hint(),
                    );
                }
                if !excluded.contains(&subject) {
                    excluded.push(subject.clone());
                }
                continue;
            }
            for run in matching {
                if usable(cx, run) {
                    runs.push(run.clone());
                }
            }
        }
    }
    // A subject excluded for a missing session contributes none of its runs.
    runs.retain(|r| !excluded.contains(&r.subject));
    excluded.sort();
    if runs.is_empty() {
        // Said only when no problem above already explains it.
        if !cx.has_errors() {
            cx.err(keys!["imaging"], format!("{}: no usable run", root.display()), None);
        }
        return None;
    }
    Some((runs, excluded))
}

/// Whether a run's confounds and repetition time allow what `[denoise]` asks (errors otherwise).
fn usable(cx: &mut Checker<'_>, run: &Run) -> bool {
    let denoise = &cx.study.denoise;
    let strategy_needs = !denoise.strategy.eq_ignore_ascii_case("none")
        || denoise.fd_threshold.is_some()
        || denoise.std_dvars_threshold.is_some()
        || denoise.motion_outliers;
    if strategy_needs && run.confounds.is_none() {
        cx.err(
            keys!["imaging"],
            format!(
                "{}: no confounds file beside it (looked for `{}_desc-confounds_timeseries.tsv` or `_regressors.tsv`, \
                 without space/res/den), but [denoise] needs one",
                run.bold.display(),
                run.prefix
            ),
            None,
        );
        return false;
    }
    if denoise.band.is_some()
        && let Some(tr) = run.tr.filter(|t| !(*t > 0.0 && t.is_finite()))
    {
        cx.err(
            keys!["denoise", "band"],
            format!(
                "{}: its sidecar gives RepetitionTime = {tr}, so the band-pass cannot be applied",
                run.bold.display()
            ),
            Some("fix `RepetitionTime` (seconds) in the run's JSON sidecar".into()),
        );
        return false;
    }
    true
}

/// Each run (subject, session, run number) must have one image; several images of one run
/// (another resolution, density, acquisition…) are an error listing what differs.
fn one_image_per_run(cx: &mut Checker<'_>, imaging: &Imaging, subject: &str, matching: &[&Run]) -> bool {
    let mut ok = true;
    let mut labels: Vec<(Option<&str>, Option<&str>)> =
        matching.iter().map(|r| (r.session.as_deref(), r.run.as_deref())).collect();
    labels.sort();
    labels.dedup();
    for (session, label) in labels {
        let same: Vec<&Run> =
            matching.iter().copied().filter(|r| (r.session.as_deref(), r.run.as_deref()) == (session, label)).collect();
        if same.len() < 2 {
            continue;
        }
        ok = false;
        let differing = crate::imaging::discover::differing_entities(&same);
        let list: Vec<String> = differing.iter().map(|(k, v)| format!("{k} ({})", v.join(", "))).collect();
        let hint = differing
            .iter()
            .find(|(k, _)| crate::spec::IMAGING_ENTITIES.contains(&k.as_str()))
            .map(|(k, v)| format!("choose one in [imaging], e.g. `{k} = \"{}\"`", v.last().map_or("", String::as_str)));
        cx.err(
            keys!["imaging"],
            format!(
                "subject {subject}{}{}: {} images of task-{} in space-{} differ in {}: {}",
                session.map(|s| format!(" ses-{s}")).unwrap_or_default(),
                label.map(|r| format!(" run-{r}")).unwrap_or_default(),
                same.len(),
                imaging.task,
                imaging.space,
                if list.is_empty() { "their names".to_string() } else { list.join(", ") },
                same.iter()
                    .map(|r| r.bold.file_name().unwrap_or_default().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            hint,
        );
    }
    ok
}

fn several_runs(cx: &mut Checker<'_>, imaging: &Imaging, subject: &str, session: Option<&str>, matching: &[&Run]) {
    let sessions: BTreeSet<&str> = matching.iter().filter_map(|r| r.session.as_deref()).collect();
    let hint = if session.is_none() && sessions.len() > 1 {
        format!(
            "declare the sessions to pair them, e.g. `sessions = [{}]`",
            sessions.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")
        )
    } else {
        "set `runs = \"all\"` in [imaging] to use every run (connectivity is averaged as Fisher z), or `runs = [1]` to choose"
            .to_string()
    };
    cx.err(
        keys!["imaging"],
        format!(
            "subject {subject} has {} runs of task-{} ({}); by default one run per subject{} is used",
            matching.len(),
            imaging.task,
            matching.iter().map(|r| r.prefix.as_str()).collect::<Vec<_>>().join(", "),
            if session.is_some() { " and session" } else { "" }
        ),
        Some(hint),
    );
}

/// Region sets twice over: with input names in place of file paths (what stages receive, so
/// fingerprints never hold absolute paths) and with the real paths (to build them here).
struct RegionFiles {
    sets: Vec<(String, RegionSources)>,
    real: Vec<(String, RegionSources)>,
    /// Input name → (resolved path, path as written).
    inputs: Vec<(String, PathBuf, String)>,
}

fn region_files(cx: &mut Checker<'_>) -> RegionFiles {
    let mut files = RegionFiles { sets: Vec::new(), real: Vec::new(), inputs: Vec::new() };
    for (set, spec) in &cx.study.regions {
        let (sources, real) = region_set(cx, set, spec, &mut files.inputs);
        files.sets.push((set.clone(), sources));
        files.real.push((set.clone(), real));
    }
    files
}

/// One region set: its atlas (with labels), maps, spheres and masks.
fn region_set(
    cx: &mut Checker<'_>,
    set: &str,
    spec: &RegionSet,
    inputs: &mut Vec<(String, PathBuf, String)>,
) -> (RegionSources, RegionSources) {
    let mut sources = RegionSources { include: spec.include.clone(), ..Default::default() };
    let mut real = RegionSources { include: spec.include.clone(), ..Default::default() };
    let loaded = cx.loaded;
    let mut file = |cx: &mut Checker<'_>, field: Vec<Key>, written: &str, input: String| {
        let path = loaded.resolve(written);
        if !path.is_file() {
            cx.err(field, format!("`{written}` does not exist (looked for {})", path.display()), None);
            return None;
        }
        inputs.push((input.clone(), path.clone(), written.to_string()));
        Some((PathBuf::from(input), path))
    };
    if let Some(atlas) = &spec.atlas {
        let table = spec.labels.as_ref().and_then(|labels| label_table(cx, set, spec, labels));
        if let Some((input, path)) = file(cx, keys!["regions", set, "atlas"], atlas, format!("region:{set}:atlas")) {
            sources.atlas = Some((input, table.clone()));
            real.atlas = Some((path, table));
        }
    }
    if let Some(maps) = &spec.maps {
        let rule = match (spec.map_threshold, spec.map_maxprob) {
            (Some(t), false) => Some(MapRuleSpec::Threshold(t)),
            (None, true) => Some(MapRuleSpec::MaxProbability),
            _ => {
                cx.err(
                    keys!["regions", set, "maps"],
                    "maps need exactly one of `map_threshold` or `map_maxprob = true`".into(),
                    None,
                );
                None
            }
        };
        if let (Some(rule), Some((input, path))) =
            (rule, file(cx, keys!["regions", set, "maps"], maps, format!("region:{set}:maps")))
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
        let field = keys!["regions", set, "masks", name.as_str()];
        if let Some((input, path)) = file(cx, field, written, format!("region:{set}:mask:{name}")) {
            sources.masks.push((name.clone(), input));
            real.masks.push((name.clone(), path));
        }
    }
    (sources, real)
}

/// An atlas' label table; every included label must be in it.
fn label_table(cx: &mut Checker<'_>, set: &str, spec: &RegionSet, labels: &str) -> Option<LabelTable> {
    let table = match read_label_table(&cx.loaded.resolve(labels)) {
        Ok(t) => t,
        Err(e) => {
            cx.err(keys!["regions", set, "labels"], e.to_string(), None);
            return None;
        }
    };
    for (i, name) in spec.include.iter().enumerate() {
        if !table.iter().any(|(_, n)| n == name) {
            let hint =
                did_you_mean(name, table.iter().map(|(_, n)| n.as_str())).map(|b| format!("did you mean `{b}`?"));
            cx.err(keys!["regions", set, "include", i], format!("label `{name}` is not in the label table"), hint);
        }
    }
    Some(table)
}

/// Build every set on each distinct BOLD grid: lost regions fail here, by name. Returns each
/// set's region names, in order, and each run's grid (its index among the distinct grids).
fn build_on_grids(
    cx: &mut Checker<'_>,
    runs: &[Run],
    real: &[(String, RegionSources)],
) -> (Vec<(String, Vec<String>)>, Vec<usize>) {
    let mut region_names: Vec<(String, Vec<String>)> = Vec::new();
    let mut grids: Vec<Grid> = Vec::new();
    let mut run_grids = Vec::with_capacity(runs.len());
    for run in runs {
        let grid = match crate::imaging::extract::open_bold(&run.bold) {
            Ok((reader, g)) => {
                let volumes = reader.header.volumes();
                if let crate::spec::DummyScans::Count(n) = cx.study.denoise.dummy_scans
                    && n >= volumes
                {
                    cx.err(
                        keys!["denoise", "dummy_scans"],
                        format!(
                            "dummy_scans = {n} but {} has {volumes} volumes; nothing would be left",
                            run.bold.display()
                        ),
                        Some("lower dummy_scans, or use \"auto\" (fMRIPrep's non_steady_state_outlier columns)".into()),
                    );
                }
                g
            }
            Err(e) => {
                cx.err(keys!["imaging"], e.to_string(), None);
                run_grids.push(usize::MAX);
                continue;
            }
        };
        if let Some(seen) = grids.iter().position(|g| g.matches(&grid, crate::imaging::regions::GRID_TOLERANCE)) {
            run_grids.push(seen);
            continue;
        }
        run_grids.push(grids.len());
        for (set, sources) in real {
            match sources.build(&grid, &run.bold, Resampling::Nearest) {
                Ok(regions) => {
                    if region_names.iter().all(|(s, _)| s != set) {
                        region_names.push((set.clone(), regions.iter().map(|r| r.name.clone()).collect()));
                    }
                    let min_kept = cx.study.regions[set].min_kept_fraction;
                    for r in regions.iter().filter(|r| (r.voxels.len() as f64) < min_kept * r.voxels_before as f64) {
                        cx.warn(
                            keys!["regions", set.as_str()],
                            format!(
                                "region `{}` keeps {} of its {} voxels on the grid of {}",
                                r.name,
                                r.voxels.len(),
                                r.voxels_before,
                                run.bold.display()
                            ),
                        );
                    }
                }
                Err(e) => cx.err(keys!["regions", set.as_str()], e.to_string(), None),
            }
        }
        grids.push(grid);
    }
    (region_names, run_grids)
}

/// Connectivity edges: within a set, every pair once; between two sets, every combination.
fn edges(cx: &mut Checker<'_>, pairs: &[[String; 2]], region_names: &[(String, Vec<String>)]) -> Vec<(String, String)> {
    let names_of = |set: &str| region_names.iter().find(|(s, _)| s == set).map(|(_, n)| n.clone());
    let mut edges = Vec::new();
    for (i, [a, b]) in pairs.iter().enumerate() {
        let (Some(left), Some(right)) = (names_of(a), names_of(b)) else {
            let missing = if names_of(a).is_none() { a } else { b };
            let hint = did_you_mean(missing, cx.study.regions.keys().map(String::as_str))
                .map(|b| format!("did you mean `{b}`?"));
            cx.err(
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
    edges
}

/// Seed-to-voxel maps are made per run and tested per subject: a subject (and session) with
/// several runs has no single map yet.
fn several_runs_with_seed_maps(cx: &mut Checker<'_>, runs: &[Run]) {
    let mut seen = BTreeSet::new();
    for run in runs {
        if !seen.insert((run.subject.as_str(), run.session.as_deref())) {
            cx.err(
                keys!["imaging", "runs"],
                format!(
                    "subject {} has several runs, but [seed_maps] makes one map per subject (and session)",
                    run.subject
                ),
                Some("choose one run with `runs = [1]` while seed maps are used".into()),
            );
            return;
        }
    }
}

/// Seeds (each a region of some set) and the mask of the seed-to-voxel maps.
fn seed_maps(cx: &mut Checker<'_>, regions: &[String]) -> Option<(Vec<String>, PathBuf, String)> {
    let spec = cx.study.seed_maps.as_ref()?;
    for (i, seed) in spec.seeds.iter().enumerate() {
        if !regions.contains(seed) {
            let hint = did_you_mean(seed, regions.iter().map(String::as_str)).map(|b| format!("did you mean `{b}`?"));
            cx.err(keys!["seed_maps", "seeds", i], format!("seed `{seed}` is not a region of any set"), hint);
        }
    }
    let path = cx.loaded.resolve(&spec.mask);
    if !path.is_file() {
        cx.err(
            keys!["seed_maps", "mask"],
            format!("mask `{}` does not exist (looked for {})", spec.mask, path.display()),
            None,
        );
        return None;
    }
    Some((spec.seeds.clone(), path, spec.mask.clone()))
}
