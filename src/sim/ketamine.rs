//! The `ketamine-response` preset: depressed patients scanned at rest before and after six
//! ketamine infusions, after Yuan et al. (2023, J Affect Disord).
//!
//! People: `participants.tsv` with 31/49 of the cohort anxious (the first in a shuffled order),
//! age, sex, and MADRS before (`madrs_pre`) and at day 13 (`madrs_post`). Each subject has a
//! latent N(0, 1) variable `r` that drives both the response and the planted connectivity:
//! the relative MADRS drop is 0.47 + 0.22·(0.8·r + 0.6·u), u ~ N(0, 1), so about 45% respond
//! (a drop of at least 50% in the written integers).
//!
//! Imaging: an fMRIPrep folder with two sessions per subject (`ses-pre`, `ses-post`), one
//! resting-state run each (20 × 24 × 20 grid of 4 mm voxels, `VOLUMES` volumes, TR 2 s) with
//! its confounds (see [`super::amygdala::write_confounds`]) and sidecar, a brain mask (an
//! ellipsoid touching the grid's faces), six probabilistic amygdala subregion maps
//! (`amygdala_subregions.nii.gz`, volumes in the order of `SUBREGIONS`, percent: 90·exp(−d²/2σ²)
//! with σ = 1.2 voxels, cut to 0 beyond 2.5 voxels, so `map_threshold = 50` keeps each centre and
//! its 6 face neighbours and the maps overlap only in their tails), and a label atlas of 8 target
//! regions (`atlas.nii.gz`, `atlas_labels.tsv`).
//!
//! Signals, in units of 10 raw intensity around 1000: each subregion has an N(0, 1) series
//! shared by the voxels whose highest map value is at least 25%; each target region's voxels
//! share y = Σ_s c_s·seed_s + √(1 − Σ c_s²)·e with c_s = tanh(z_s) and z_s = `BASE_Z` for every
//! seed except LB_left → precuneus, where z = `BASE_Z` + `EFFECT_PER_R`·r at ses-pre and, for
//! responders only, `POST_CHANGE_RESPONDERS` lower at ses-post. Every brain voxel adds three
//! network components (global, anterior–posterior and left–right gradients, loadings ≤ 0.4) and
//! N(0, 0.8²) noise, and a motion artefact (2·trans_x + 1·rot_y) that the 24P regressors remove.
//! `truth/` holds the planted cluster (`planted.tsv`, `planted_mask.nii.gz`), each subject's
//! latent `r`, response and planted Fisher z (`responders.tsv`), and the map volume order
//! (`subregions.tsv`).

use crate::error::{Error, Result};
use crate::imaging::nifti;
use crate::stats::rng::Rng;
use crate::tables::{Cell, TsvWriter};
use rayon::prelude::*;
use std::path::Path;

/// Probabilistic map volumes, in order.
pub const SUBREGIONS: [&str; 6] = ["LB_left", "CM_left", "SF_left", "LB_right", "CM_right", "SF_right"];
/// Target regions of the label atlas (labels 1…8).
pub const TARGETS: [&str; 8] =
    ["precuneus", "pcc", "vmpfc", "dacc", "insula_left", "insula_right", "hippocampus_left", "hippocampus_right"];
pub const SESSIONS: [&str; 2] = ["pre", "post"];
/// The planted edge: LB_left (map volume 0) → precuneus (atlas label 1).
pub const PLANTED_SEED: usize = 0;
pub const PLANTED_TARGET: usize = 0;
/// Fisher z of every seed–target coupling.
pub const BASE_Z: f64 = 0.1;
/// Planted LB_left → precuneus Fisher z per SD of the latent `r`, at ses-pre.
pub const EFFECT_PER_R: f64 = 0.25;
/// Change of the planted Fisher z from ses-pre to ses-post in responders (0 in non-responders).
pub const POST_CHANGE_RESPONDERS: f64 = -0.2;
/// Share of the cohort that is anxious (31 of 49).
const ANXIOUS: f64 = 31.0 / 49.0;
pub const VOLUMES: usize = 150;
const TR: f64 = 2.0;
pub const SHAPE: [usize; 3] = [20, 24, 20];
pub const SPACE: &str = "MNI152NLin2009cAsym";
/// Map shape: peak (%) and width (voxels) of each subregion's blob, cut beyond `MAP_REACH` voxels.
const MAP_PEAK: f64 = 90.0;
const MAP_SIGMA: f64 = 1.2;
const MAP_REACH: f64 = 2.5;
/// A voxel carries its most probable subregion's series from this map value (%) on.
const SIGNAL_FROM: f64 = 25.0;

/// 4 mm voxels; x = −38 … 38 (mirror-symmetric: voxel i ↔ 19 − i), y = −70 … 22, z = −30 … 46 mm.
pub fn affine() -> [[f64; 4]; 3] {
    [[4.0, 0.0, 0.0, -38.0], [0.0, 4.0, 0.0, -70.0], [0.0, 0.0, 4.0, -30.0]]
}

fn ijk(at: usize) -> [usize; 3] {
    [at % SHAPE[0], (at / SHAPE[0]) % SHAPE[1], at / (SHAPE[0] * SHAPE[1])]
}

/// World (mm) of a voxel centre.
fn world(at: usize) -> [f64; 3] {
    let a = affine();
    let v = ijk(at);
    [0, 1, 2].map(|r| a[r][r] * v[r] as f64 + a[r][3])
}

/// Subregion centres (voxels): left LB (x −26), CM (−18), SF (−22); the right ones mirrored.
/// Pairwise at least √3 voxels apart, so the thresholded (≥ 50%) seeds never share a voxel.
fn subregion_centre(m: usize) -> [f64; 3] {
    let left = [[3.0, 15.0, 4.0], [5.0, 16.0, 5.0], [4.0, 17.0, 6.0]][m % 3];
    if m < 3 { left } else { [(SHAPE[0] - 1) as f64 - left[0], left[1], left[2]] }
}

/// Target blocks: first and last voxel (inclusive) along i, j, k.
fn target_block(label: usize) -> [[usize; 2]; 3] {
    match label {
        0 => [[8, 11], [4, 6], [13, 15]],   // precuneus, centre (0, −50, 26) mm
        1 => [[8, 11], [8, 9], [12, 13]],   // pcc
        2 => [[8, 11], [20, 21], [6, 7]],   // vmpfc
        3 => [[8, 11], [17, 18], [12, 13]], // dacc
        4 => [[2, 3], [13, 14], [9, 10]],   // insula_left
        5 => [[16, 17], [13, 14], [9, 10]], // insula_right
        6 => [[4, 5], [10, 11], [3, 4]],    // hippocampus_left
        _ => [[14, 15], [10, 11], [3, 4]],  // hippocampus_right
    }
}

fn in_block(at: usize, block: [[usize; 2]; 3]) -> bool {
    let v = ijk(at);
    (0..3).all(|a| v[a] >= block[a][0] && v[a] <= block[a][1])
}

/// The brain: voxels inside the ellipsoid centred on the grid with semi-axes of half its extent.
fn in_brain(at: usize) -> bool {
    let v = ijk(at);
    (0..3).map(|a| ((v[a] as f64 - (SHAPE[a] - 1) as f64 / 2.0) / (SHAPE[a] as f64 / 2.0)).powi(2)).sum::<f64>() <= 1.0
}

/// Map `m`'s probability (%) at a voxel.
fn probability(m: usize, at: usize) -> f64 {
    let c = subregion_centre(m);
    let v = ijk(at);
    let d2: f64 = (0..3).map(|a| (v[a] as f64 - c[a]).powi(2)).sum();
    if d2 > MAP_REACH * MAP_REACH { 0.0 } else { MAP_PEAK * (-d2 / (2.0 * MAP_SIGMA * MAP_SIGMA)).exp() }
}

/// What drives a voxel's signal.
#[derive(Clone, Copy, PartialEq)]
enum Source {
    Outside,
    Background,
    Seed(usize),
    Target(usize),
}

fn layout() -> Vec<Source> {
    (0..SHAPE.iter().product())
        .map(|at| {
            if !in_brain(at) {
                return Source::Outside;
            }
            if let Some(t) = (0..TARGETS.len()).find(|&t| in_block(at, target_block(t))) {
                return Source::Target(t);
            }
            let (best, p) = (0..SUBREGIONS.len())
                .map(|m| (m, probability(m, at)))
                .fold((0, f64::MIN), |acc, x| if x.1 > acc.1 { x } else { acc });
            if p >= SIGNAL_FROM { Source::Seed(best) } else { Source::Background }
        })
        .collect()
}

struct Subject {
    id: String,
    age: f64,
    sex: u8,
    anxious: bool,
    r: f64,
    madrs_pre: i64,
    madrs_post: i64,
}

impl Subject {
    /// At least 50% MADRS drop from the written scores.
    fn responder(&self) -> bool {
        2 * (self.madrs_pre - self.madrs_post) >= self.madrs_pre
    }

    /// Planted LB_left → precuneus Fisher z in a session.
    fn planted_z(&self, session: usize) -> f64 {
        let pre = BASE_Z + EFFECT_PER_R * self.r;
        if session == 1 && self.responder() { pre + POST_CHANGE_RESPONDERS } else { pre }
    }
}

/// Write the cohort's files into `out` (which must not exist yet or be empty).
pub fn write(subjects: usize, seed: u64, out: &Path) -> Result<()> {
    let mut rng = Rng::derived(seed, "ketamine-response/people");
    let width = subjects.to_string().len().max(2);
    let mut order: Vec<usize> = (0..subjects).collect();
    rng.shuffle(&mut order);
    let anxious_count = (ANXIOUS * subjects as f64).round() as usize;
    let mut anxious = vec![false; subjects];
    for &s in &order[..anxious_count] {
        anxious[s] = true;
    }
    let people: Vec<Subject> = (0..subjects)
        .map(|s| {
            let r = rng.normal();
            let drop = (0.47 + 0.22 * (0.8 * r + 0.6 * rng.normal())).clamp(-0.2, 1.0);
            let madrs_pre = (31.0 + 5.0 * rng.normal()).round().clamp(22.0, 50.0);
            let madrs_post = (madrs_pre * (1.0 - drop)).round().clamp(0.0, 60.0);
            Subject {
                id: format!("K{:0width$}", s + 1),
                age: (18.0 + 47.0 * rng.uniform()).round(),
                sex: u8::from(rng.bernoulli(0.5)),
                anxious: anxious[s],
                r,
                madrs_pre: madrs_pre as i64,
                madrs_post: madrs_post as i64,
            }
        })
        .collect();
    std::fs::create_dir_all(out.join("truth")).map_err(|e| Error::io(out, e))?;
    let write_file = |name: &str, text: String| {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
    };

    let mut participants = TsvWriter::new(&["participant_id", "age", "sex", "anxious", "madrs_pre", "madrs_post"]);
    for s in &people {
        participants.row(&[
            Cell::Text(&s.id),
            Cell::Num(s.age),
            Cell::Int(s.sex as i64),
            Cell::Int(s.anxious as i64),
            Cell::Int(s.madrs_pre),
            Cell::Int(s.madrs_post),
        ]);
    }
    write_file("participants.tsv", participants.finish())?;

    // Images on the BOLD grid: brain mask, subregion maps, target atlas.
    let sources = layout();
    let voxels = sources.len();
    let mask: Vec<f32> = (0..voxels).map(|at| f32::from(u8::from(in_brain(at)))).collect();
    nifti::write_f32(&out.join("brain_mask.nii.gz"), &SHAPE, affine(), None, &mask)?;
    let maps: Vec<f32> =
        (0..SUBREGIONS.len()).flat_map(|m| (0..voxels).map(move |at| probability(m, at) as f32)).collect();
    let dim4 = [SHAPE[0], SHAPE[1], SHAPE[2], SUBREGIONS.len()];
    nifti::write_f32(&out.join("amygdala_subregions.nii.gz"), &dim4, affine(), None, &maps)?;
    let numbered = |names: &[&str]| names.iter().enumerate().map(|(i, n)| format!("{}\t{n}\n", i + 1)).collect();
    write_file("amygdala_subregions.tsv", numbered(&SUBREGIONS))?;
    let atlas: Vec<f32> =
        sources.iter().map(|s| if let Source::Target(t) = s { (t + 1) as f32 } else { 0.0 }).collect();
    nifti::write_f32(&out.join("atlas.nii.gz"), &SHAPE, affine(), None, &atlas)?;
    write_file("atlas_labels.tsv", numbered(&TARGETS))?;

    // Runs, in parallel; each run's draws come from its own stream.
    let runs: Vec<(&Subject, usize)> = people.iter().flat_map(|s| (0..SESSIONS.len()).map(move |k| (s, k))).collect();
    let fmriprep = out.join("fmriprep");
    runs.par_iter().map(|&(s, k)| write_run(s, k, seed, &fmriprep, &sources)).collect::<Result<Vec<()>>>()?;
    write_file(
        "fmriprep/dataset_description.json",
        "{\"Name\": \"neurospec ketamine-response simulation\", \"BIDSVersion\": \"1.8.0\", \
         \"DatasetType\": \"derivative\", \"GeneratedBy\": [{\"Name\": \"neurospec simulate\"}]}\n"
            .into(),
    )?;
    write_truth(out, &people, &sources)
}

fn write_run(s: &Subject, session: usize, seed: u64, fmriprep: &Path, sources: &[Source]) -> Result<()> {
    let name = SESSIONS[session];
    let mut rng = Rng::derived(seed, &format!("ketamine-response/bold/{}/{name}", s.id));
    let t = VOLUMES;
    let seeds: Vec<Vec<f64>> = (0..SUBREGIONS.len()).map(|_| (0..t).map(|_| rng.normal()).collect()).collect();
    let targets: Vec<Vec<f64>> = (0..TARGETS.len())
        .map(|j| {
            let c: Vec<f64> = (0..SUBREGIONS.len())
                .map(|m| if (m, j) == (PLANTED_SEED, PLANTED_TARGET) { s.planted_z(session) } else { BASE_Z }.tanh())
                .collect();
            let rest = (1.0 - c.iter().map(|v| v * v).sum::<f64>()).sqrt();
            (0..t).map(|v| (0..c.len()).map(|m| c[m] * seeds[m][v]).sum::<f64>() + rest * rng.normal()).collect()
        })
        .collect();
    let networks: Vec<Vec<f64>> = (0..3).map(|_| (0..t).map(|_| rng.normal()).collect()).collect();
    let loadings = |at: usize| {
        let v = ijk(at);
        let gradient = |a: usize| 0.4 * (v[a] as f64 - (SHAPE[a] - 1) as f64 / 2.0) / (SHAPE[a] as f64 / 2.0);
        [0.4, gradient(1), gradient(0)]
    };
    let loading: Vec<[f64; 3]> = (0..sources.len()).map(loadings).collect();
    // The artefact in every brain voxel is 2·trans_x + 1·rot_y (in raw units: 20 and 10).
    let motion = super::amygdala::motion(t, &mut rng);
    let voxels = sources.len();
    let mut data = vec![0f32; voxels * t];
    for v in 0..t {
        for (at, source) in sources.iter().enumerate() {
            let region = match *source {
                Source::Outside => continue,
                Source::Background => 0.0,
                Source::Seed(m) => seeds[m][v],
                Source::Target(j) => targets[j][v],
            };
            let network: f64 = (0..3).map(|n| loading[at][n] * networks[n][v]).sum();
            let signal = region + network + 0.8 * rng.normal();
            data[v * voxels + at] = super::amygdala::bold_value(signal, &motion, v);
        }
    }
    let func = fmriprep.join(format!("sub-{}/ses-{name}/func", s.id));
    let prefix = format!("sub-{}_ses-{name}_task-rest", s.id);
    super::amygdala::write_run_files(&func, &prefix, SHAPE, affine(), TR, &data, &motion, &mut rng)
}

/// The planted cluster (its mask and, per session and group, the mean planted Fisher z), each
/// subject's latent `r`, response and planted z, and the map volume order.
fn write_truth(out: &Path, people: &[Subject], sources: &[Source]) -> Result<()> {
    let cluster: Vec<usize> = (0..sources.len()).filter(|&at| sources[at] == Source::Target(PLANTED_TARGET)).collect();
    let mask: Vec<f32> = (0..sources.len()).map(|at| f32::from(u8::from(cluster.contains(&at)))).collect();
    nifti::write_f32(&out.join("truth/planted_mask.nii.gz"), &SHAPE, affine(), None, &mask)?;
    let centre: Vec<f64> =
        (0..3).map(|a| cluster.iter().map(|&at| world(at)[a]).sum::<f64>() / cluster.len() as f64).collect();
    let ijk_list: String =
        cluster.iter().map(|&at| ijk(at).map(|c| c.to_string()).join(",")).collect::<Vec<_>>().join(";");
    let mut planted = TsvWriter::new(&[
        "seed",
        "region",
        "centre_x",
        "centre_y",
        "centre_z",
        "voxels",
        "session",
        "group",
        "subjects",
        "base_z",
        "effect_per_r",
        "change_post",
        "mean_z",
        "mean_r",
        "voxels_ijk",
    ]);
    for (k, session) in SESSIONS.iter().enumerate() {
        for (group, responders) in [("responder", true), ("non_responder", false)] {
            let members: Vec<&Subject> = people.iter().filter(|s| s.responder() == responders).collect();
            let n = members.len().max(1) as f64;
            let mean_z = members.iter().map(|s| s.planted_z(k)).sum::<f64>() / n;
            let mean_r = members.iter().map(|s| s.planted_z(k).tanh()).sum::<f64>() / n;
            let change = if k == 1 && responders { POST_CHANGE_RESPONDERS } else { 0.0 };
            planted.row(&[
                Cell::Text(SUBREGIONS[PLANTED_SEED]),
                Cell::Text(TARGETS[PLANTED_TARGET]),
                Cell::Num(centre[0]),
                Cell::Num(centre[1]),
                Cell::Num(centre[2]),
                Cell::Int(cluster.len() as i64),
                Cell::Text(session),
                Cell::Text(group),
                Cell::Int(members.len() as i64),
                Cell::Num(BASE_Z),
                Cell::Num(EFFECT_PER_R),
                Cell::Num(change),
                Cell::Num(mean_z),
                Cell::Num(mean_r),
                Cell::Text(&ijk_list),
            ]);
        }
    }
    let mut responders =
        TsvWriter::new(&["participant_id", "anxious", "r", "madrs_pre", "madrs_post", "responder", "z_pre", "z_post"]);
    for s in people {
        responders.row(&[
            Cell::Text(&s.id),
            Cell::Int(s.anxious as i64),
            Cell::Num(s.r),
            Cell::Int(s.madrs_pre),
            Cell::Int(s.madrs_post),
            Cell::Int(s.responder() as i64),
            Cell::Num(s.planted_z(0)),
            Cell::Num(s.planted_z(1)),
        ]);
    }
    let mut subregions = TsvWriter::new(&["volume", "name", "centre_x", "centre_y", "centre_z"]);
    for (m, name) in SUBREGIONS.iter().enumerate() {
        let c = subregion_centre(m);
        let a = affine();
        let mm: Vec<f64> = (0..3).map(|r| a[r][r] * c[r] + a[r][3]).collect();
        subregions.row(&[
            Cell::Int(m as i64 + 1),
            Cell::Text(name),
            Cell::Num(mm[0]),
            Cell::Num(mm[1]),
            Cell::Num(mm[2]),
        ]);
    }
    for (name, text) in [
        ("truth/planted.tsv", planted.finish()),
        ("truth/responders.tsv", responders.finish()),
        ("truth/subregions.tsv", subregions.finish()),
    ] {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_sit_inside_the_brain_and_seeds_do_not_overlap() {
        let sources = layout();
        for (t, name) in TARGETS.iter().enumerate() {
            let inside = (0..sources.len()).filter(|&at| sources[at] == Source::Target(t)).count();
            let block = target_block(t);
            let full: usize = block.iter().map(|b| b[1] - b[0] + 1).product();
            assert_eq!(inside, full, "{name} is cut by the brain mask");
        }
        for (m, name) in SUBREGIONS.iter().enumerate() {
            let seed: Vec<usize> = (0..sources.len()).filter(|&at| probability(m, at) >= 50.0).collect();
            assert_eq!(seed.len(), 7, "{name}");
            assert!(seed.iter().all(|&at| sources[at] == Source::Seed(m)), "{name}");
        }
        let brain = (0..sources.len()).filter(|&at| in_brain(at)).count();
        assert!(brain > 4000, "{brain}");
    }

    #[test]
    fn writes_two_sessions_and_deterministic_people() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        write(4, 7, a.path()).unwrap();
        write(4, 7, b.path()).unwrap();
        let read = |p: &Path, f: &str| std::fs::read(p.join(f)).unwrap();
        assert_eq!(read(a.path(), "participants.tsv"), read(b.path(), "participants.tsv"));
        let run = "fmriprep/sub-K02/ses-post/func/sub-K02_ses-post_task-rest_desc-confounds_timeseries.tsv";
        assert_eq!(read(a.path(), run), read(b.path(), run));
        let found = crate::imaging::discover::discover(&a.path().join("fmriprep"), "rest", SPACE, &[]).unwrap();
        assert_eq!(found.runs.len(), 8);
        assert!(found.runs.iter().all(|r| r.confounds.is_some() && r.tr == Some(TR)));
    }
}
