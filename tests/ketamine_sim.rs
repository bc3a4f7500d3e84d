//! The ketamine-response simulator: 49 patients × two sessions of runs, 31 anxious, about 45%
//! responders, six probabilistic subregion maps in percent, and — measured with neurospec's own
//! extraction (24P, detrending, maps thresholded at 50%) — the planted LB_left → precuneus
//! coupling: higher in responders than non-responders before treatment and lower after it in
//! responders, while a null pair (CM_right → hippocampus_left) shows neither.

mod common;

use common::Tsv;
use neurospec::imaging::denoise::Censoring;
use neurospec::imaging::extract::open_bold;
use neurospec::imaging::nifti::VolumeReader;
use neurospec::imaging::regions::{MapRuleSpec, RegionSources, Resampling, read_label_table};
use neurospec::imaging::run::{DummyScans, Processed, RunSettings, process_run};
use neurospec::sim::ketamine;
use rayon::prelude::*;
use std::collections::BTreeMap;

fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    (m, x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0))
}

fn welch_t(a: &[f64], b: &[f64]) -> f64 {
    let ((ma, va), (mb, vb)) = (mean_var(a), mean_var(b));
    (ma - mb) / (va / a.len() as f64 + vb / b.len() as f64).sqrt()
}

fn paired_t(after: &[f64], before: &[f64]) -> f64 {
    let d: Vec<f64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    let (m, v) = mean_var(&d);
    m / (v / d.len() as f64).sqrt()
}

fn fisher_z(x: &[f64], y: &[f64]) -> f64 {
    let ((mx, vx), (my, vy)) = (mean_var(x), mean_var(y));
    let c: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum::<f64>() / (x.len() as f64 - 1.0);
    (c / (vx * vy).sqrt()).atanh()
}

#[test]
fn ketamine_cohort_has_the_design_and_the_planted_coupling() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    ketamine::write(49, 1, out).unwrap();

    let people = Tsv::read(&out.join("participants.tsv"));
    assert_eq!(people.rows.len(), 49);
    let anxious = (0..49).filter(|&r| people.num(r, "anxious") == 1.0).count();
    assert_eq!(anxious, 31);
    let mut responder = BTreeMap::new();
    for r in 0..49 {
        let (pre, post) = (people.num(r, "madrs_pre"), people.num(r, "madrs_post"));
        assert!((0.0..=60.0).contains(&pre) && (0.0..=60.0).contains(&post) && pre.fract() == 0.0);
        responder.insert(people.text(r, "participant_id").to_string(), (pre - post) / pre >= 0.5);
    }
    let fraction = responder.values().filter(|r| **r).count() as f64 / 49.0;
    assert!((0.35..=0.60).contains(&fraction), "responder fraction {fraction}");
    let truth = Tsv::read(&out.join("truth/responders.tsv"));
    for r in 0..49 {
        assert_eq!(truth.num(r, "responder") == 1.0, responder[truth.text(r, "participant_id")]);
    }

    let maps = out.join("amygdala_subregions.nii.gz");
    let mut reader = VolumeReader::open(&maps).unwrap();
    assert_eq!(reader.header.volumes(), 6);
    let mut volume = vec![0.0; reader.header.volume_len()];
    while reader.next_volume(&mut volume).unwrap() {
        assert!(volume.iter().all(|v| (0.0..=100.0).contains(v)));
        assert!(volume.iter().any(|v| *v >= 50.0));
    }

    let found = neurospec::imaging::discover::discover(&out.join("fmriprep"), "rest", ketamine::SPACE, &[]).unwrap();
    assert_eq!(found.runs.len(), 98);
    assert!(found.subjects_without_runs.is_empty());
    for session in ["pre", "post"] {
        assert_eq!(found.runs.iter().filter(|r| r.session.as_deref() == Some(session)).count(), 49);
    }

    let sources = RegionSources {
        atlas: Some((out.join("atlas.nii.gz"), Some(read_label_table(&out.join("atlas_labels.tsv")).unwrap()))),
        maps: Some((maps, ketamine::SUBREGIONS.map(String::from).to_vec(), MapRuleSpec::Threshold(50.0))),
        ..Default::default()
    };
    // (subject, session) → (LB_left → precuneus, CM_right → hippocampus_left) Fisher z.
    let edges: BTreeMap<(String, String), (f64, f64)> = found
        .runs
        .par_iter()
        .map(|run| {
            let (reader, grid) = open_bold(&run.bold).unwrap();
            let regions = sources.build(&grid, &run.bold, Resampling::Forbid).unwrap();
            let settings = RunSettings {
                strategy: Some("24P"),
                confounds: run.confounds.as_deref(),
                censoring: Censoring { min_segment: 5, ..Censoring::default() },
                dummy_scans: DummyScans::Auto,
                min_clean_seconds: None,
                band: None,
                tr: run.tr,
                detrend: true,
                standardise: true,
                min_volumes: 10,
            };
            let Processed::Cleaned(cleaned) = process_run(&run.bold, reader, &grid, &regions, &settings).unwrap()
            else {
                panic!("{}: excluded", run.bold.display())
            };
            let cleaned = cleaned.series;
            let column = |name: &str| cleaned.column(cleaned.names.iter().position(|n| n == name).unwrap());
            let planted = fisher_z(&column("LB_left"), &column("precuneus"));
            let null = fisher_z(&column("CM_right"), &column("hippocampus_left"));
            ((run.subject.clone(), run.session.clone().unwrap()), (planted, null))
        })
        .collect();
    let pick = |session: &str, responders: bool, edge: fn(&(f64, f64)) -> f64| -> Vec<f64> {
        responder
            .iter()
            .filter(|(_, r)| **r == responders)
            .map(|(s, _)| edge(&edges[&(s.clone(), session.into())]))
            .collect()
    };
    let planted = |e: &(f64, f64)| e.0;
    let null = |e: &(f64, f64)| e.1;
    let t_pre = welch_t(&pick("pre", true, planted), &pick("pre", false, planted));
    let t_change = paired_t(&pick("post", true, planted), &pick("pre", true, planted));
    let t_null_pre = welch_t(&pick("pre", true, null), &pick("pre", false, null));
    let t_null_change = paired_t(&pick("post", true, null), &pick("pre", true, null));
    eprintln!("t: planted pre {t_pre:.2}, change {t_change:.2}; null pre {t_null_pre:.2}, change {t_null_change:.2}");
    assert!(t_pre > 2.0, "responders vs non-responders at pre: t = {t_pre}");
    assert!(t_change < -2.0, "post − pre in responders: t = {t_change}");
    assert!(t_null_pre.abs() < 3.0, "null pair at pre: t = {t_null_pre}");
    assert!(t_null_change.abs() < 3.0, "null pair post − pre: t = {t_null_change}");
}
