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

/// Every property the editor shows has a description; no `null` alternative (TOML has no null,
/// and under an `anyOf` Taplo reports every failing branch); an `$id`.
#[test]
fn every_property_is_described_and_nothing_is_nullable() {
    fn walk(node: &serde_json::Value, at: &str, missing: &mut Vec<String>) {
        match node {
            serde_json::Value::Object(map) => {
                assert!(map.get("type").is_none_or(|t| t != "null" && !t.to_string().contains("\"null\"")), "{at}");
                if let Some(serde_json::Value::Object(properties)) = map.get("properties") {
                    for (name, property) in properties {
                        if property.get("description").is_none() {
                            missing.push(format!("{at}.{name}"));
                        }
                    }
                }
                for (key, child) in map {
                    walk(child, &format!("{at}/{key}"), missing);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, at, missing)),
            _ => {}
        }
    }
    let schema: serde_json::Value = serde_json::from_str(&neurospec::spec::schema::schema_json()).unwrap();
    assert!(schema["$id"].as_str().is_some_and(|id| id.ends_with("schemas/study.schema.json")));
    let mut missing = Vec::new();
    walk(&schema, "", &mut missing);
    assert!(missing.is_empty(), "properties without a description: {missing:#?}");
    let group = &schema["$defs"]["GroupSpec"]["properties"];
    assert_eq!(group["connectivity"]["enum"], serde_json::json!([6, 18, 26]));
    assert!(group["design"]["$ref"].is_string(), "an optional or enum field references its type directly");
    assert!(schema["properties"]["split"]["$ref"].is_string(), "optional sections reference their type directly");
}
