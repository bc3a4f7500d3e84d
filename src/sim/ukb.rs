//! The `ukb-symptoms` preset: a UK-Biobank-style cohort after de Lange et al. (2025).
//!
//! Per subject: age (45–80 y), sex (1 = male), height (cm), handedness (1 = left); symptom items
//! at visits 0 and 2 (insomnia `f1200` 0–2; depression `f2050`, `f2060` 0–3; anxiety `f1970`,
//! `f1990`, `f2010` 0/1), with 30% of subjects lacking visit 2 and 0.3% of answers coded −3
//! ("prefer not to answer"); ~200 imaging-derived phenotypes (IDPs) in five modalities — regional
//! surface area and thickness (Desikan–Killiany, 68 each), subcortical volumes (14), functional
//! connectivity edges between 10 networks (45) and three global totals. 1% of subjects have no
//! imaging row; 0.02% of IDP cells are missing.
//!
//! # Generative model and ground truth
//!
//! Each IDP is a standardised variable `x = covariate effects + shared modality factor + unique
//! noise`, then mapped to natural units. The planted IDPs do not load on the modality factor, so
//! given the covariates they are independent of every other IDP: every non-planted
//! (IDP, symptom) pair is a true null. Each symptom has a latent liability
//! `L = Σ b·x + covariate effects + noise` with unit variance; items threshold `L` plus visit and
//! item noise. A symptom score is therefore an attenuated measure of `L`, and the standardised β
//! that the study estimates is `b · corr(score, L)` (Stein's lemma for a Gaussian liability).
//! `truth.tsv` lists, for every IDP × symptom, the latent `b` and this expected score-scale β
//! (computed in-sample), so tests can check recovery on the scale that is actually estimated.

use super::{Cohort, ID_COLUMN};
use crate::stats::rng::Rng;
use crate::tables::{Cell, Table, TsvWriter};

const REGIONS: [&str; 34] = [
    "bankssts",
    "caudalanteriorcingulate",
    "caudalmiddlefrontal",
    "cuneus",
    "entorhinal",
    "fusiform",
    "inferiorparietal",
    "inferiortemporal",
    "isthmuscingulate",
    "lateraloccipital",
    "lateralorbitofrontal",
    "lingual",
    "medialorbitofrontal",
    "middletemporal",
    "parahippocampal",
    "paracentral",
    "parsopercularis",
    "parsorbitalis",
    "parstriangularis",
    "pericalcarine",
    "postcentral",
    "posteriorcingulate",
    "precentral",
    "precuneus",
    "rostralanteriorcingulate",
    "rostralmiddlefrontal",
    "superiorfrontal",
    "superiorparietal",
    "superiortemporal",
    "supramarginal",
    "frontalpole",
    "temporalpole",
    "transversetemporal",
    "insula",
];
const SUBCORTICAL: [&str; 7] = ["thalamus", "caudate", "putamen", "pallidum", "hippocampus", "amygdala", "accumbens"];
const NETWORKS: usize = 10;
const VISITS: [&str; 2] = ["0", "2"];
const SYMPTOMS: [&str; 3] = ["insomnia", "depression", "anxiety"];

/// Planted latent effects (IDP, symptom index, b).
const PLANTED: [(&str, usize, f64); 8] = [
    ("total_area", 2, -0.05),
    ("vol_lh_thalamus", 0, -0.04),
    ("vol_lh_thalamus", 1, -0.04),
    ("vol_lh_thalamus", 2, -0.04),
    ("vol_rh_thalamus", 0, -0.035),
    ("vol_rh_thalamus", 1, -0.035),
    ("vol_rh_thalamus", 2, -0.035),
    ("fc_n02_n07", 1, -0.045),
];

/// One IDP: name, modality index, natural mean and SD.
struct Idp {
    name: String,
    modality: usize,
    mean: f64,
    sd: f64,
}

fn idps() -> Vec<Idp> {
    let mut out = Vec::new();
    for hemi in ["lh", "rh"] {
        for (i, r) in REGIONS.iter().enumerate() {
            out.push(Idp { name: format!("area_{hemi}_{r}"), modality: 0, mean: 900.0 + 60.0 * i as f64, sd: 150.0 });
        }
    }
    for hemi in ["lh", "rh"] {
        for (i, r) in REGIONS.iter().enumerate() {
            out.push(Idp { name: format!("thick_{hemi}_{r}"), modality: 1, mean: 2.2 + 0.02 * i as f64, sd: 0.15 });
        }
    }
    for hemi in ["lh", "rh"] {
        for (i, s) in SUBCORTICAL.iter().enumerate() {
            out.push(Idp { name: format!("vol_{hemi}_{s}"), modality: 2, mean: 7500.0 - 900.0 * i as f64, sd: 600.0 });
        }
    }
    for a in 1..=NETWORKS {
        for b in a + 1..=NETWORKS {
            out.push(Idp { name: format!("fc_n{a:02}_n{b:02}"), modality: 3, mean: 0.3, sd: 0.12 });
        }
    }
    out.push(Idp { name: "total_area".into(), modality: 4, mean: 170_000.0, sd: 16_000.0 });
    out.push(Idp { name: "total_thickness".into(), modality: 4, mean: 2.45, sd: 0.09 });
    out.push(Idp { name: "total_volume".into(), modality: 4, mean: 1_150_000.0, sd: 110_000.0 });
    out
}

fn items() -> Vec<(&'static str, usize, u8)> {
    // (field, symptom, max value)
    vec![("f1200", 0, 2), ("f2050", 1, 3), ("f2060", 1, 3), ("f1970", 2, 1), ("f1990", 2, 1), ("f2010", 2, 1)]
}

pub fn columns(table: &str) -> Option<Vec<String>> {
    let mut columns = vec![ID_COLUMN.to_string()];
    match table {
        "pheno" => {
            columns.extend(["age", "sex", "height", "handedness"].map(String::from));
            for (field, _, _) in items() {
                for v in VISITS {
                    columns.push(format!("{field}_{v}"));
                }
            }
        }
        "idps" => columns.extend(idps().into_iter().map(|i| i.name)),
        _ => return None,
    }
    Some(columns)
}

fn zscore(v: &mut [f64]) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    for x in v {
        *x = (*x - mean) / sd;
    }
}

fn corr(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    sab / (saa * sbb).sqrt()
}

pub fn simulate(n: usize, seed: u64) -> Cohort {
    let ids: Vec<String> = (0..n).map(|i| (1_000_001 + i).to_string()).collect();
    let mut rng = Rng::derived(seed, "covariates");
    let age: Vec<f64> = (0..n).map(|_| 45.0 + 35.0 * rng.uniform()).collect();
    let sex: Vec<f64> = (0..n).map(|_| f64::from(u8::from(rng.bernoulli(0.47)))).collect();
    let height: Vec<f64> = sex.iter().map(|s| 163.0 + 13.0 * s + 6.5 * rng.normal()).collect();
    let handedness: Vec<f64> = (0..n).map(|_| f64::from(u8::from(rng.bernoulli(0.1)))).collect();
    let mut age_z = age.clone();
    zscore(&mut age_z);
    let mut sex_z = sex.clone();
    zscore(&mut sex_z);
    let mut height_z = height.clone();
    zscore(&mut height_z);

    // IDPs, standardised in-sample, each from its own stream (stable if the list grows).
    let idp_list = idps();
    let mut factor_rng = Rng::derived(seed, "modality-factors");
    let factors: Vec<Vec<f64>> = (0..5).map(|_| (0..n).map(|_| factor_rng.normal()).collect()).collect();
    let planted = |name: &str| PLANTED.iter().any(|(p, _, _)| *p == name);
    let standardised: Vec<Vec<f64>> = idp_list
        .iter()
        .map(|idp| {
            let mut r = Rng::derived(seed, &format!("idp/{}", idp.name));
            let (a_age, a_sex, a_height) = match idp.modality {
                1 => (-0.35, 0.05, 0.0),
                3 => (-0.1, 0.05, 0.0),
                _ => (-0.2, 0.3, 0.15),
            };
            let loading = if planted(&idp.name) { 0.0 } else { 0.5 };
            let mut x: Vec<f64> = (0..n)
                .map(|i| {
                    a_age * age_z[i]
                        + a_sex * sex_z[i]
                        + a_height * height_z[i]
                        + loading * factors[idp.modality][i]
                        + r.normal()
                })
                .collect();
            zscore(&mut x);
            x
        })
        .collect();

    // Latent liabilities with unit variance; residuals correlated 0.4 across symptoms.
    let mut liab_rng = Rng::derived(seed, "liabilities");
    let shared: Vec<f64> = (0..n).map(|_| liab_rng.normal()).collect();
    let mut liabilities: Vec<Vec<f64>> = Vec::new();
    for (s, _) in SYMPTOMS.iter().enumerate() {
        let mut signal = vec![0.0; n];
        for (name, symptom, b) in PLANTED {
            if symptom == s {
                let at = idp_list.iter().position(|i| i.name == name).expect("planted IDP exists");
                for i in 0..n {
                    signal[i] += b * standardised[at][i];
                }
            }
        }
        let (c_age, c_sex) = [(0.05, -0.08), (-0.1, -0.12), (-0.08, -0.15)][s];
        for i in 0..n {
            signal[i] += c_age * age_z[i] + c_sex * sex_z[i];
        }
        let var_signal = {
            let m = signal.iter().sum::<f64>() / n as f64;
            signal.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n as f64
        };
        let noise_sd = (1.0 - var_signal).sqrt();
        let l: Vec<f64> = (0..n)
            .map(|i| signal[i] + noise_sd * (0.4f64.sqrt() * shared[i] + 0.6f64.sqrt() * liab_rng.normal()))
            .collect();
        liabilities.push(l);
    }

    // Items: thresholds on liability + visit state + item noise.
    let mut item_rng = Rng::derived(seed, "items");
    let has_visit2: Vec<bool> = (0..n).map(|_| !item_rng.bernoulli(0.3)).collect();
    let cuts: [&[f64]; 6] = [
        &[-0.5, 0.8],     // insomnia 0–2
        &[0.2, 1.1, 1.8], // depression items 0–3
        &[0.3, 1.2, 1.9],
        &[0.45], // anxiety yes/no
        &[0.75],
        &[0.6],
    ];
    let mut pheno = Table::new("simulated:pheno", ids.clone());
    pheno.push_numeric("age", age.iter().map(|a| (a * 10.0).round() / 10.0).collect());
    pheno.push_numeric("sex", sex.clone());
    let mut height_col: Vec<f64> = height.iter().map(|h| (h * 10.0).round() / 10.0).collect();
    let mut miss_rng = Rng::derived(seed, "missingness");
    for h in height_col.iter_mut() {
        if miss_rng.bernoulli(0.005) {
            *h = f64::NAN;
        }
    }
    pheno.push_numeric("height", height_col);
    pheno.push_numeric("handedness", handedness);
    let mut visit_state: Vec<Vec<Vec<f64>>> = vec![vec![vec![0.0; n]; VISITS.len()]; SYMPTOMS.len()];
    for per_symptom in visit_state.iter_mut() {
        for per_visit in per_symptom.iter_mut() {
            for v in per_visit.iter_mut() {
                *v = 0.5 * item_rng.normal();
            }
        }
    }
    // Scores as the study computes them (mean over visits of item sums), for the ground truth.
    let mut visit_sums = vec![vec![vec![f64::NAN; n]; VISITS.len()]; SYMPTOMS.len()];
    for (k, (field, symptom, max)) in items().into_iter().enumerate() {
        for (v, label) in VISITS.iter().enumerate() {
            let values: Vec<f64> = (0..n)
                .map(|i| {
                    let noise = 0.6 * item_rng.normal();
                    let coded_missing = item_rng.bernoulli(0.003);
                    if v == 1 && !has_visit2[i] {
                        return f64::NAN;
                    }
                    if coded_missing {
                        return -3.0;
                    }
                    let latent = liabilities[symptom][i] + visit_state[symptom][v][i] + noise;
                    let value = cuts[k].iter().filter(|c| latent > **c).count().min(max as usize);
                    value as f64
                })
                .collect();
            for i in 0..n {
                let s = &mut visit_sums[symptom][v][i];
                let first_item = items().iter().position(|(_, sy, _)| *sy == symptom) == Some(k);
                if values[i].is_nan() || values[i] < 0.0 {
                    *s = f64::NAN;
                } else if first_item {
                    *s = values[i];
                } else {
                    *s += values[i];
                }
            }
            pheno.push_numeric(format!("{field}_{label}"), values);
        }
    }

    let mut idp_table_rows: Vec<usize> = Vec::with_capacity(n);
    let mut imaging_rng = Rng::derived(seed, "imaging-missing");
    for i in 0..n {
        if !imaging_rng.bernoulli(0.01) {
            idp_table_rows.push(i);
        }
    }
    let mut idp_table = Table::new("simulated:idps", idp_table_rows.iter().map(|&i| ids[i].clone()).collect());
    for (idp, z) in idp_list.iter().zip(&standardised) {
        let values: Vec<f64> = idp_table_rows
            .iter()
            .map(|&i| if miss_rng.bernoulli(0.0002) { f64::NAN } else { idp.mean + idp.sd * z[i] })
            .collect();
        idp_table.push_numeric(idp.name.clone(), values);
    }

    // Ground truth on the score scale.
    let mut truth = TsvWriter::new(&["feature", "outcome", "b_latent", "beta"]);
    let mut attenuation = Vec::new();
    for s in 0..SYMPTOMS.len() {
        let (mut score, mut latent) = (Vec::new(), Vec::new());
        for i in 0..n {
            let visits: Vec<f64> = (0..VISITS.len()).map(|v| visit_sums[s][v][i]).filter(|x| !x.is_nan()).collect();
            if !visits.is_empty() {
                score.push(visits.iter().sum::<f64>() / visits.len() as f64);
                latent.push(liabilities[s][i]);
            }
        }
        attenuation.push(corr(&score, &latent));
    }
    for idp in &idp_list {
        for (s, symptom) in SYMPTOMS.iter().enumerate() {
            let b = PLANTED.iter().find(|(p, sy, _)| *p == idp.name && *sy == s).map_or(0.0, |(_, _, b)| *b);
            truth.row(&[Cell::Text(&idp.name), Cell::Text(symptom), Cell::Num(b), Cell::Num(b * attenuation[s])]);
        }
    }

    let mut tables = std::collections::BTreeMap::new();
    tables.insert("pheno".to_string(), pheno);
    tables.insert("idps".to_string(), idp_table);
    Cohort { tables, truth_tsv: truth.finish() }
}
