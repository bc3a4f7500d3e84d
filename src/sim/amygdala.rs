//! The `amygdala-wellbeing` preset: an HCP-style cohort after Klein-Flügge et al. (2022).
//!
//! Subjects come in families of 1–4 (`family_id`). Four correlated latent dimensions (social /
//! life satisfaction, negative emotion, sleep, anger / rejection; correlations `PHI`) have a
//! family-shared part (40% of variance) and an individual part. 33 questionnaire scale scores
//! (T-score units, `questionnaires.tsv`) each load on one dimension: z = λ·f + √(1 − λ²)·e.
//!
//! Imaging: an fMRIPrep folder with one resting-state run per subject (10 × 10 × 10 grid of 4 mm
//! voxels, `VOLUMES` volumes, TR 0.8 s), its confounds (24 motion regressors, framewise
//! displacement, global, CSF and white-matter signals) and sidecar, and an atlas of 7 amygdala
//! nuclei and 10 target ROIs (2 × 2 × 2-voxel blocks; `atlas.nii.gz`, `atlas_labels.tsv`). Each
//! nucleus has an independent N(0, 1) series; ROI j is Σ_i c_ij·nucleus_i + √(1 − Σ_i c_ij²)·noise,
//! so the true nucleus–ROI correlation is c_ij = tanh(z_ij) with
//! z_ij = 0.15 + Σ b·f_k (planted edges only) + 0.05·u (subject-specific, u ~ N(0, 1)).
//! Voxels are 1000 + 10·(region series + 0.3·noise) plus a motion artefact that the motion
//! regressors remove. `truth/` holds the planted loadings, Φ, the planted edges and, per
//! dimension, the correlation between its factor-score estimate and a CPM strength made of its
//! planted edges that these settings imply (the held-out r a perfect edge selection can expect).

use crate::error::{Error, Result};
use crate::imaging::nifti;
use crate::stats::dense::M;
use crate::stats::rng::Rng;
use crate::tables::{Cell, TsvWriter};
use rayon::prelude::*;
use std::path::Path;

pub const NUCLEI: [&str; 7] =
    ["lateral", "basolateral", "basomedial", "central", "cortical_medial", "transition_area", "anterior_area"];
pub const ROIS: [&str; 10] =
    ["vmpfc", "dacc", "ofc", "insula", "hippocampus", "precuneus", "dlpfc", "temporal_pole", "pcc", "striatum"];
pub const DIMENSIONS: [&str; 4] = ["social_life", "negative_emotion", "sleep", "anger_rejection"];
const PHI: [[f64; 4]; 4] =
    [[1.0, -0.25, -0.2, -0.2], [-0.25, 1.0, 0.25, 0.3], [-0.2, 0.25, 1.0, 0.2], [-0.2, 0.3, 0.2, 1.0]];

/// (scale, dimension, loading).
pub const SCALES: [(&str, usize, f64); 33] = [
    ("life_satisfaction", 0, 0.85),
    ("meaning_purpose", 0, 0.8),
    ("positive_affect", 0, 0.75),
    ("friendship", 0, 0.7),
    ("emotional_support", 0, 0.7),
    ("instrumental_support", 0, 0.6),
    ("self_efficacy", 0, 0.6),
    ("social_satisfaction", 0, 0.65),
    ("general_wellbeing", 0, 0.55),
    ("sadness", 1, 0.85),
    ("fear_affect", 1, 0.8),
    ("perceived_stress", 1, 0.75),
    ("loneliness", 1, 0.7),
    ("somatic_anxiety", 1, 0.65),
    ("depression_problems", 1, 0.7),
    ("anxiety_problems", 1, 0.65),
    ("neuroticism", 1, 0.6),
    ("emotional_distress", 1, 0.55),
    ("sleep_quality", 2, 0.85),
    ("sleep_latency", 2, 0.75),
    ("sleep_duration", 2, 0.7),
    ("sleep_efficiency", 2, 0.7),
    ("sleep_disturbance", 2, 0.65),
    ("daytime_dysfunction", 2, 0.6),
    ("sleep_medication", 2, 0.5),
    ("anger_affect", 3, 0.85),
    ("anger_hostility", 3, 0.75),
    ("anger_aggression", 3, 0.7),
    ("perceived_rejection", 3, 0.7),
    ("perceived_hostility", 3, 0.65),
    ("aggressive_behaviour", 3, 0.6),
    ("rule_breaking", 3, 0.55),
    ("irritability", 3, 0.6),
];

/// (nucleus, ROI, dimension, b in Fisher-z units per SD of the dimension).
pub const PLANTED: [(usize, usize, usize, f64); 8] = [
    (1, 0, 0, 0.07),
    (3, 1, 0, -0.07),
    (0, 3, 1, 0.07),
    (2, 2, 1, -0.07),
    (4, 4, 2, 0.07),
    (6, 5, 2, -0.07),
    (5, 6, 3, 0.07),
    (1, 7, 3, -0.07),
];
const BASE_Z: f64 = 0.15;
const INDIVIDUAL_Z: f64 = 0.05;
pub const VOLUMES: usize = 200;
const TR: f64 = 0.8;
const GRID: usize = 10;
pub const SPACE: &str = "MNI152NLin2009cAsym";
/// Confound regressors of the study's 24P strategy plus detrending: the implied r accounts for
/// these degrees of freedom.
const CONFOUND_DOF: usize = 24 + 2;

/// The region of each label (1-based: nuclei first, then ROIs) as the corner of its block.
fn block(label: usize) -> [usize; 3] {
    let slot = label - 1;
    [(slot % 3) * 3 + 1, ((slot / 3) % 3) * 3 + 1, (slot / 9) * 3 + 1]
}

fn affine() -> [[f64; 4]; 3] {
    [[4.0, 0.0, 0.0, -20.0], [0.0, 4.0, 0.0, -24.0], [0.0, 0.0, 4.0, -20.0]]
}

pub fn edge_column(nucleus: usize, roi: usize) -> String {
    crate::design::edge_column(NUCLEI[nucleus], ROIS[roi])
}

fn cholesky(a: &[[f64; 4]; 4]) -> [[f64; 4]; 4] {
    let mut l = [[0.0; 4]; 4];
    for i in 0..4 {
        for j in 0..=i {
            let s: f64 = a[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>();
            l[i][j] = if i == j { s.sqrt() } else { s / l[j][j] };
        }
    }
    l
}

struct Subject {
    id: String,
    family: String,
    age: f64,
    sex: u8,
    factors: [f64; 4],
}

/// Write the cohort's files into `out` (which must not exist yet or be empty).
pub fn write(subjects: usize, seed: u64, out: &Path) -> Result<()> {
    let mut rng = Rng::derived(seed, "amygdala-wellbeing/people");
    let l = cholesky(&PHI);
    let correlated = |rng: &mut Rng| {
        let z: [f64; 4] = std::array::from_fn(|_| rng.normal());
        let f: [f64; 4] = std::array::from_fn(|i| (0..=i).map(|k| l[i][k] * z[k]).sum());
        f
    };
    let mut people = Vec::with_capacity(subjects);
    let mut family = 0;
    while people.len() < subjects {
        family += 1;
        let u = rng.uniform();
        let size = if u < 0.3 {
            1
        } else if u < 0.7 {
            2
        } else if u < 0.9 {
            3
        } else {
            4
        };
        let shared = correlated(&mut rng);
        for _ in 0..size.min(subjects - people.len()) {
            let own = correlated(&mut rng);
            let factors: [f64; 4] = std::array::from_fn(|k| 0.4f64.sqrt() * shared[k] + 0.6f64.sqrt() * own[k]);
            people.push(Subject {
                id: format!("{:06}", 100_000 + people.len() * 7 + 3),
                family: format!("fam{family:04}"),
                age: ((22.0 + 15.0 * rng.uniform()) * 10.0).round() / 10.0,
                sex: u8::from(rng.bernoulli(0.45)),
                factors,
            });
        }
    }
    std::fs::create_dir_all(out.join("truth")).map_err(|e| Error::io(out, e))?;
    let write_file = |name: &str, text: String| {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
    };

    let mut participants = TsvWriter::new(&["participant_id", "family_id", "age", "sex"]);
    for s in &people {
        participants.row(&[Cell::Text(&s.id), Cell::Text(&s.family), Cell::Num(s.age), Cell::Int(s.sex as i64)]);
    }
    write_file("participants.tsv", participants.finish())?;

    let header: Vec<&str> = std::iter::once("participant_id").chain(SCALES.iter().map(|s| s.0)).collect();
    let mut questionnaires = TsvWriter::new(&header);
    for s in &people {
        let mut q = Rng::derived(seed, &format!("amygdala-wellbeing/scales/{}", s.id));
        let values: Vec<f64> = SCALES
            .iter()
            .map(|&(_, k, lambda)| {
                let z = lambda * s.factors[k] + (1.0 - lambda * lambda).sqrt() * q.normal();
                (500.0 + 100.0 * z).round() / 10.0
            })
            .collect();
        let mut cells = vec![Cell::Text(&s.id)];
        cells.extend(values.iter().map(|v| Cell::Num(*v)));
        questionnaires.row(&cells);
    }
    write_file("questionnaires.tsv", questionnaires.finish())?;

    // Atlas.
    let mut atlas = vec![0f32; GRID * GRID * GRID];
    let labels = NUCLEI.len() + ROIS.len();
    for label in 1..=labels {
        let [x, y, z] = block(label);
        for (dx, dy, dz) in (0..8).map(|c| (c & 1, (c >> 1) & 1, c >> 2)) {
            atlas[(x + dx) + GRID * ((y + dy) + GRID * (z + dz))] = label as f32;
        }
    }
    nifti::write_f32(&out.join("atlas.nii.gz"), &[GRID, GRID, GRID], affine(), None, &atlas)?;
    let names: Vec<&str> = NUCLEI.iter().chain(ROIS.iter()).copied().collect();
    write_file(
        "atlas_labels.tsv",
        names.iter().enumerate().map(|(i, n)| format!("{}\t{n}\n", i + 1)).collect::<String>(),
    )?;

    // Runs, in parallel; each subject's draws come from its own stream.
    people.par_iter().map(|s| write_run(s, seed, &out.join("fmriprep"), &atlas)).collect::<Result<Vec<()>>>()?;
    write_file(
        "fmriprep/dataset_description.json",
        "{\"Name\": \"neurospec amygdala-wellbeing simulation\", \"BIDSVersion\": \"1.8.0\", \
         \"DatasetType\": \"derivative\", \"GeneratedBy\": [{\"Name\": \"neurospec simulate\"}]}\n"
            .into(),
    )?;
    write_truth(out)
}

fn write_run(s: &Subject, seed: u64, fmriprep: &Path, atlas: &[f32]) -> Result<()> {
    let mut rng = Rng::derived(seed, &format!("amygdala-wellbeing/bold/{}", s.id));
    let t = VOLUMES;
    let nuclei: Vec<Vec<f64>> = (0..NUCLEI.len()).map(|_| (0..t).map(|_| rng.normal()).collect()).collect();
    let mut series: Vec<Vec<f64>> = nuclei.clone();
    for j in 0..ROIS.len() {
        let c: Vec<f64> = (0..NUCLEI.len())
            .map(|i| {
                let planted: f64 = PLANTED.iter().filter(|p| p.0 == i && p.1 == j).map(|p| p.3 * s.factors[p.2]).sum();
                (BASE_Z + planted + INDIVIDUAL_Z * rng.normal()).tanh()
            })
            .collect();
        let rest = (1.0 - c.iter().map(|v| v * v).sum::<f64>()).sqrt();
        series.push(
            (0..t).map(|v| (0..NUCLEI.len()).map(|i| c[i] * nuclei[i][v]).sum::<f64>() + rest * rng.normal()).collect(),
        );
    }
    // The artefact in every brain voxel is 2·trans_x + 1·rot_y.
    let motion = motion(t, &mut rng);
    let voxels = atlas.len();
    let mut data = vec![0f32; voxels * t];
    for v in 0..t {
        for (i, &label) in atlas.iter().enumerate() {
            if label > 0.0 {
                let signal = series[label as usize - 1][v] + 0.3 * rng.normal();
                data[v * voxels + i] = bold_value(signal, &motion, v);
            }
        }
    }
    let func = fmriprep.join(format!("sub-{}/func", s.id));
    write_run_files(
        &func,
        &format!("sub-{}_task-rest", s.id),
        [GRID, GRID, GRID],
        affine(),
        TR,
        &data,
        &motion,
        &mut rng,
    )
}

/// A voxel's raw BOLD value: baseline 1000, the signal in units of 10, and the motion artefact
/// (2·trans_x + 1·rot_y, in units of 10) that the motion regressors remove.
pub(crate) fn bold_value(signal: f64, motion: &[Vec<f64>], volume: usize) -> f32 {
    (1000.0 + 10.0 * signal + 20.0 * motion[0][volume] + 10.0 * motion[4][volume]) as f32
}

/// One run in fMRIPrep layout inside `func`: the preprocessed BOLD image, its JSON sidecar and
/// its confounds (from `motion`, plus tissue signals drawn from `rng`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_run_files(
    func: &Path,
    prefix: &str,
    shape: [usize; 3],
    affine: [[f64; 4]; 3],
    tr: f64,
    data: &[f32],
    motion: &[Vec<f64>],
    rng: &mut Rng,
) -> Result<()> {
    std::fs::create_dir_all(func).map_err(|e| Error::io(func, e))?;
    let volumes = motion.first().map_or(0, Vec::len);
    nifti::write_f32(
        &func.join(format!("{prefix}_space-{SPACE}_desc-preproc_bold.nii.gz")),
        &[shape[0], shape[1], shape[2], volumes],
        affine,
        Some(tr),
        data,
    )?;
    let sidecar = func.join(format!("{prefix}_space-{SPACE}_desc-preproc_bold.json"));
    std::fs::write(&sidecar, format!("{{\"RepetitionTime\": {tr}, \"TaskName\": \"rest\"}}\n"))
        .map_err(|e| Error::io(&sidecar, e))?;
    write_confounds(&func.join(format!("{prefix}_desc-confounds_timeseries.tsv")), motion, rng)
}

/// Six slow motion series of `t` volumes (AR(1), coefficient 0.9, innovations N(0, 0.05²)),
/// starting at 0: trans_x/y/z and rot_x/y/z.
pub(crate) fn motion(t: usize, rng: &mut Rng) -> Vec<Vec<f64>> {
    let mut motion = vec![vec![0.0; t]; 6];
    for m in motion.iter_mut() {
        for v in 1..t {
            m[v] = 0.9 * m[v - 1] + 0.05 * rng.normal();
        }
    }
    motion
}

/// An fMRIPrep-style confounds file for `motion` (six series: trans_x/y/z in mm, rot_x/y/z in
/// radians): the 24-parameter expansion (derivatives `n/a` at the first volume), framewise
/// displacement (Power: rotations on a 50 mm sphere) and global, CSF and white-matter signals
/// (N(100, 1) from `rng`).
pub(crate) fn write_confounds(path: &Path, motion: &[Vec<f64>], rng: &mut Rng) -> Result<()> {
    let t = motion[0].len();
    let names = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"];
    let mut header: Vec<String> = Vec::new();
    for suffix in ["", "_derivative1", "_power2", "_derivative1_power2"] {
        header.extend(names.iter().map(|n| format!("{n}{suffix}")));
    }
    header.extend(["framewise_displacement", "global_signal", "csf", "white_matter"].map(String::from));
    let mut text = header.join("\t");
    text.push('\n');
    for v in 0..t {
        let mut cells: Vec<String> = Vec::with_capacity(header.len());
        let d = |m: usize| if v == 0 { None } else { Some(motion[m][v] - motion[m][v - 1]) };
        cells.extend((0..6).map(|m| format!("{:.6}", motion[m][v])));
        cells.extend((0..6).map(|m| d(m).map_or("n/a".into(), |x| format!("{x:.6}"))));
        cells.extend((0..6).map(|m| format!("{:.6}", motion[m][v] * motion[m][v])));
        cells.extend((0..6).map(|m| d(m).map_or("n/a".into(), |x| format!("{:.6}", x * x))));
        let fd = if v == 0 {
            "n/a".to_string()
        } else {
            format!(
                "{:.6}",
                (0..3).map(|m| d(m).unwrap().abs()).sum::<f64>()
                    + (3..6).map(|m| 50.0 * d(m).unwrap().abs()).sum::<f64>()
            )
        };
        cells.push(fd);
        cells.extend((0..3).map(|_| format!("{:.6}", 100.0 + rng.normal())));
        text.push_str(&cells.join("\t"));
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// Loadings, Φ, planted edges, and the r each dimension's planted edges imply.
fn write_truth(out: &Path) -> Result<()> {
    let p = SCALES.len();
    let lambda = M::from_fn(p, 4, |i, k| if SCALES[i].1 == k { SCALES[i].2 } else { 0.0 });
    let phi = M::from_fn(4, 4, |i, j| PHI[i][j]);
    let mut loadings = TsvWriter::new(&std::iter::once("scale").chain(DIMENSIONS).collect::<Vec<_>>());
    for (i, s) in SCALES.iter().enumerate() {
        let mut cells = vec![Cell::Text(s.0)];
        cells.extend((0..4).map(|k| Cell::Num(lambda.at(i, k))));
        loadings.row(&cells);
    }
    let mut phi_tsv = TsvWriter::new(&std::iter::once("dimension").chain(DIMENSIONS).collect::<Vec<_>>());
    for (i, d) in DIMENSIONS.iter().enumerate() {
        let mut cells = vec![Cell::Text(d)];
        cells.extend((0..4).map(|k| Cell::Num(PHI[i][k])));
        phi_tsv.row(&cells);
    }
    // Regression factor scores' correlation with the factors: √diag(Φ Λᵀ Σ⁻¹ Λ Φ).
    let sigma = M::from_fn(p, p, |i, j| {
        let common = lambda.mul(&phi).mul(&lambda.t()).at(i, j);
        if i == j { 1.0 } else { common }
    });
    let inv = sigma.inverse().ok_or_else(|| Error::data("simulation: singular scale covariance"))?;
    let reliability = phi.mul(&lambda.t()).mul(&inv).mul(&lambda).mul(&phi);
    // A planted edge's Fisher z across subjects: b·f + 0.05·u plus its sampling error, which a
    // Monte Carlo of the same generative model gives exactly: 4,000 virtual subjects' nucleus and
    // ROI series of T − (confound degrees of freedom) samples (what is left after the 24 motion
    // regressors and detrending are projected out).
    let mut mc = Rng::derived(0, "amygdala-wellbeing/implied");
    let virtual_subjects = 4000;
    let length = VOLUMES - CONFOUND_DOF;
    let mut edges = TsvWriter::new(&["edge", "dimension", "b", "expected_r_with_factor"]);
    let mut dims = TsvWriter::new(&["dimension", "score_reliability", "planted_edges", "implied_r"]);
    for (k, d) in DIMENSIONS.iter().enumerate() {
        let planted: Vec<&(usize, usize, usize, f64)> = PLANTED.iter().filter(|p| p.2 == k).collect();
        let mut f = Vec::with_capacity(virtual_subjects);
        let mut measured = vec![Vec::with_capacity(virtual_subjects); planted.len()];
        for _ in 0..virtual_subjects {
            let factor = mc.normal();
            f.push(factor);
            for (e, &&(_, _, _, b)) in planted.iter().enumerate() {
                let c = (BASE_Z + b * factor + INDIVIDUAL_Z * mc.normal()).tanh();
                let x: Vec<f64> = (0..length).map(|_| mc.normal()).collect();
                let y: Vec<f64> = x.iter().map(|v| c * v + (1.0 - c * c).sqrt() * mc.normal()).collect();
                measured[e].push(crate::stats::predict::pearson(&x, &y).atanh());
            }
        }
        let rel = reliability.at(k, k).sqrt();
        let mut strength = vec![0.0; virtual_subjects];
        for (e, &&(i, j, _, b)) in planted.iter().enumerate() {
            let (mean, sd) = crate::stats::mean_sd(&measured[e]);
            for (s, v) in strength.iter_mut().zip(&measured[e]) {
                *s += b.signum() * (v - mean) / sd;
            }
            let r = crate::stats::predict::pearson(&measured[e], &f);
            edges.row(&[Cell::Text(&edge_column(i, j)), Cell::Text(d), Cell::Num(b), Cell::Num(r.abs() * rel)]);
        }
        let r_strength = crate::stats::predict::pearson(&strength, &f);
        dims.row(&[Cell::Text(d), Cell::Num(rel), Cell::Int(planted.len() as i64), Cell::Num(r_strength * rel)]);
    }
    for (name, text) in [
        ("truth/loadings.tsv", loadings.finish()),
        ("truth/phi.tsv", phi_tsv.finish()),
        ("truth/edges.tsv", edges.finish()),
        ("truth/dimensions.tsv", dims.finish()),
    ] {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}
