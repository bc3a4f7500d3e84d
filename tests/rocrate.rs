//! `ro-crate-metadata.json` of a run: every published file is a data entity with its blake3
//! hash, every stage instance a CreateAction whose inputs and outputs resolve to entities, and
//! (when a Python with ro-crate-py is available: NEUROSPEC_PYTHON, default `python3`) the crate
//! passes tests/fixtures/rocrate/check_crate.py — parsed by ro-crate-py, every term in the
//! RO-Crate context, every reference resolved, the Workflow Run / Provenance Run Crate rules, a
//! round trip. Without ro-crate-py that part prints why it skips, unless
//! NEUROSPEC_REQUIRE_TOOLS=1 (CI), where it fails.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::process::Command;

#[test]
fn the_crate_lists_every_output_with_its_hash_and_every_stage_as_an_action() {
    let dir = tempfile::tempdir().unwrap();
    embedded_study(
        dir.path(),
        &[
            ("subjects = 25000", "subjects = 1500"),
            ("permutations = 5000", "permutations = 99"),
            ("bootstrap = 1000", "bootstrap = 100"),
        ],
    );
    run_json(dir.path(), "study.toml", &[]);
    let out = dir.path().join("derivatives/ukb-symptoms");
    let metadata: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("ro-crate-metadata.json")).unwrap()).unwrap();
    assert_eq!(metadata["@context"], "https://w3id.org/ro/crate/1.1/context");
    let graph: BTreeMap<String, &serde_json::Value> =
        metadata["@graph"].as_array().unwrap().iter().map(|e| (e["@id"].as_str().unwrap().to_string(), e)).collect();
    assert_eq!(graph["ro-crate-metadata.json"]["about"]["@id"], "./");
    assert_eq!(graph["./"]["mainEntity"]["@id"], "study.toml");

    let lock: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("neurospec.lock")).unwrap()).unwrap();
    let stages = lock["stages"].as_array().unwrap();
    for stage in stages {
        let id = stage["id"].as_str().unwrap();
        let action = graph.get(&format!("#action:{id}")).unwrap_or_else(|| panic!("no action for {id}"));
        assert_eq!(action["@type"], "CreateAction");
        assert_eq!(action["identifier"], format!("fingerprint:{}", stage["fingerprint"].as_str().unwrap()));
        // Outputs: published files by path, with the hash of the bytes in the folder.
        for (name, output) in stage["outputs"].as_object().unwrap() {
            let oid = output["path"].as_str().map_or_else(|| format!("#output:{id}/{name}"), String::from);
            assert!(action["result"].as_array().unwrap().iter().any(|r| r["@id"] == oid.as_str()), "{id}: {oid}");
            let entity = graph[&oid];
            assert_eq!(entity["identifier"], format!("blake3:{}", output["hash"].as_str().unwrap()));
            if let Some(path) = output["path"].as_str() {
                let bytes = std::fs::read(out.join(path)).unwrap();
                assert_eq!(entity["identifier"], format!("blake3:{}", blake3::hash(&bytes).to_hex()));
                assert_eq!(entity["contentSize"], bytes.len().to_string());
            }
        }
        // Inputs and parameters resolve to entities of the crate.
        for object in action["object"].as_array().unwrap() {
            let oid = object["@id"].as_str().unwrap();
            assert!(graph.contains_key(oid), "{id}: input {oid} is not in the crate");
        }
        // Parameters: one PropertyValue per top-level parameter, with the recorded value.
        let record: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.join("provenance").join(format!("{}.json", id.replace('/', "__")))).unwrap(),
        )
        .unwrap();
        let recorded = record["params"].as_object().unwrap();
        let params: Vec<&serde_json::Value> = action["object"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["@id"].as_str().unwrap().starts_with("#param:"))
            .map(|o| graph[o["@id"].as_str().unwrap()])
            .collect();
        assert_eq!(params.len(), recorded.len(), "{id}");
        for p in params {
            let value = &recorded[p["name"].as_str().unwrap()];
            let text = value.as_str().map_or_else(|| value.to_string(), String::from);
            assert_eq!(p["value"], text.as_str(), "{id}: {}", p["name"]);
        }
    }

    let python = std::env::var("NEUROSPEC_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_rocrate = Command::new(&python).args(["-c", "import rocrate"]).output().is_ok_and(|o| o.status.success());
    if !has_rocrate {
        assert!(
            std::env::var("NEUROSPEC_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "{python} cannot import rocrate (ro-crate-py) and NEUROSPEC_REQUIRE_TOOLS=1; .ci/run makes a venv for it"
        );
        eprintln!(
            "SKIP: {python} has no ro-crate-py (pip install -r tests/fixtures/rocrate/requirements.txt); the crate was checked in Rust only"
        );
        return;
    }
    let check = Command::new(&python)
        .arg(repo().join("tests/fixtures/rocrate/check_crate.py"))
        .arg(&out)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "ro-crate check failed:\n{stdout}\n{}", String::from_utf8_lossy(&check.stderr));
    assert!(stdout.starts_with("ok "), "{stdout}");
}
