//! The committed JSON Schema is the one the code generates (regenerate with
//! `cargo run -- schema > schemas/study.schema.json`), and the shipped studies pass `check`.

mod common;

#[test]
fn committed_schema_is_current() {
    let committed = std::fs::read_to_string(common::repo().join("schemas/study.schema.json")).unwrap();
    let generated = neurospec::spec::schema::schema_json();
    assert!(
        committed == generated,
        "schemas/study.schema.json is stale: run `cargo run -- schema > schemas/study.schema.json`"
    );
}

#[test]
fn schema_describes_every_section() {
    let schema: serde_json::Value = serde_json::from_str(&neurospec::spec::schema::schema_json()).unwrap();
    let properties = schema["properties"].as_object().unwrap();
    for section in
        ["study", "simulate", "tables", "scores", "features", "exclusions", "split", "association", "outputs"]
    {
        assert!(properties.contains_key(section), "schema lacks `{section}`");
    }
    assert_eq!(schema["additionalProperties"], serde_json::Value::Bool(false), "unknown keys must be rejected");
}

#[test]
fn shipped_studies_check() {
    for entry in std::fs::read_dir(common::repo().join("studies")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let out = common::neurospec(&common::repo(), &["check", path.to_str().unwrap()]);
        assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    }
}
