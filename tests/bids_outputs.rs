//! BIDS-derivative outputs: the entity parser itself, and the embedded study's folder (every
//! published table with a sidecar describing each column, `dataset_description.json`). The
//! imaging studies' names, matrices and sidecars are checked where those studies already run
//! (`amygdala_study.rs`, `ketamine_study.rs`, and `imaging.rs` for `neurospec extract`).

mod common;

use common::bids::{check_folder, parse};
use common::*;

#[test]
fn the_parser_rejects_what_bids_forbids() {
    let name =
        parse("sub-01_ses-1_task-rest_run-2_space-MNI_atlas-Schaefer_meas-pearsoncorrelation_relmat.tsv").unwrap();
    let keys: Vec<&str> = name.entities.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["sub", "ses", "task", "run", "space", "atlas", "meas"]);
    assert_eq!((name.suffix.as_str(), name.extension.as_str()), ("relmat", "tsv"));
    assert!(parse("sub-01_space-MNI_task-rest_timeseries.tsv").unwrap_err().contains("out of BIDS order"));
    assert!(parse("sub-01_task-rest_desc-x_atlas-y_timeseries.tsv").unwrap_err().contains("order"));
    assert!(parse("sub-01_task-rest_atlas-my_atlas_timeseries.tsv").is_err());
    assert!(parse("sub-01_task-rest_atlas-a.b_timeseries.tsv").is_err());
    assert!(parse("sub-01_task-rest_colour-red_timeseries.tsv").unwrap_err().contains("unknown entity"));
}

#[test]
fn every_published_table_of_the_embedded_study_has_a_column_dictionary() {
    let dir = tempfile::tempdir().unwrap();
    embedded_study(
        dir.path(),
        &[
            ("subjects = 25000", "subjects = 3000"),
            ("permutations = 5000", "permutations = 99"),
            ("bootstrap = 1000", "bootstrap = 100"),
            ("subject_id = \"eid\"", SOURCES),
        ],
    );
    run_json(dir.path(), "study.toml", &[]);
    let out = dir.path().join("derivatives/ukb-symptoms");
    check_folder(&out, None);
    // One sidecar per published table, made from the registry (here: the association table).
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("association/discovery.json")).unwrap()).unwrap();
    assert!(sidecar["q"]["Description"].as_str().unwrap().contains("Benjamini"));
    assert_eq!(sidecar["significant"]["Levels"]["TRUE"], "yes");
    // The subject column is participant_id with sub-, whatever the input's id column (`eid`).
    let split = std::fs::read_to_string(out.join("split.tsv")).unwrap();
    assert!(split.starts_with("participant_id\tsample\nsub-"), "{}", &split[..40]);
    // `[study] sources` are the source datasets (simulated tables add no folder of their own).
    let description: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("dataset_description.json")).unwrap()).unwrap();
    assert_eq!(
        description["SourceDatasets"],
        serde_json::json!([
            {"DOI": "doi:10.18112/openneuro.ds000030.v1.0.0"},
            {"Name": "UK Biobank", "URL": "https://www.ukbiobank.ac.uk"},
        ])
    );
}

const SOURCES: &str = "subject_id = \"eid\"\nsources = [\"10.18112/openneuro.ds000030.v1.0.0\", \
                       { name = \"UK Biobank\", url = \"https://www.ukbiobank.ac.uk\" }]";

#[test]
fn a_source_that_is_neither_doi_nor_url_is_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = "subject_id = \"eid\"\nsources = [\"openneuro ds000030\", { name = \"UKB\", doi = \"https://doi.org/10.1/x\" }, { name = \"none\" }]";
    embedded_study(dir.path(), &[("subject_id = \"eid\"", bad)]);
    let out = neurospec(dir.path(), &["check", "study.toml"]);
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("`openneuro ds000030` is neither a DOI nor a web address"), "{text}");
    assert!(text.contains("`https://doi.org/10.1/x` is not a DOI"), "{text}");
    assert!(text.contains("a source needs a `doi` or a `url`"), "{text}");
    assert!(text.contains("study.toml:"), "located: {text}");
}
