//! The JSON Schema of study files, generated from the same types serde reads. The committed copy
//! at `schemas/study.schema.json` is checked against this by a test.
//!
//! The schema is for editors (Taplo, Even Better TOML), so it is shaped for one mistake → one
//! error: TOML has no null, so schemars' `Option<T>` forms (`anyOf [T, {"type": "null"}]` and
//! `"type": [T, "null"]`) are rewritten to `T` alone. Under an `anyOf`, Taplo reports every
//! failing branch (a wrong value deep in `[imaging]` gave 38–199 errors); without it, only the
//! key that is wrong.

use serde_json::Value;

/// Where the schema says it lives (`$id`): the committed copy's path in the repository. Study
/// files point at the file itself with `#:schema` (see the README).
pub const SCHEMA_ID: &str = "https://github.com/neurospec/neurospec/raw/main/schemas/study.schema.json";

pub fn schema_json() -> String {
    serde_json::to_string_pretty(&schema_value()).expect("schemas serialise") + "\n"
}

/// The schema as a JSON value (also what `spec::shape` walks a study document against).
pub fn schema_value() -> Value {
    let schema = schemars::schema_for!(super::Study);
    let mut value = serde_json::to_value(&schema).expect("schemas serialise");
    drop_null(&mut value);
    if let Value::Object(root) = &mut value {
        // `$id` right after `$schema`, for a reader of the file.
        let entries = std::mem::take(root);
        for (key, entry) in entries {
            let is_meta = key == "$schema";
            root.insert(key, entry);
            if is_meta {
                root.insert("$id".into(), Value::String(SCHEMA_ID.into()));
            }
        }
    }
    value
}

/// Rewrite every `anyOf [S, null]` to `S` (keeping the outer schema's own keys, such as its
/// description and default) and every `"type": [T, "null"]` to `"type": T`.
fn drop_null(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(branches)) = map.get("anyOf") {
                let kept: Vec<Value> = branches.iter().filter(|b| !is_null_schema(b)).cloned().collect();
                if kept.len() == 1 && kept.len() < branches.len() {
                    map.remove("anyOf");
                    if let Value::Object(inner) = &kept[0] {
                        for (key, entry) in inner {
                            map.entry(key.clone()).or_insert_with(|| entry.clone());
                        }
                    }
                } else if kept.len() < branches.len() {
                    map.insert("anyOf".into(), Value::Array(kept));
                }
            }
            if map.get("const").is_some_and(Value::is_null) {
                map.remove("const");
            }
            if let Some(Value::Array(values)) = map.get_mut("enum") {
                values.retain(|v| !v.is_null());
            }
            map.values_mut().for_each(drop_null);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null),
        _ => {}
    }
}

fn is_null_schema(schema: &Value) -> bool {
    schema.get("type").is_some_and(|t| t == "null")
        || schema.get("const").is_some_and(Value::is_null)
        || schema.get("enum").is_some_and(|e| e.as_array().is_some_and(|e| e.iter().all(Value::is_null)))
}

/// The schema of `[denoise] strategy`: its words, `acompcorN`, `acompcor_all`, `acompcorN%`, or
/// a comma-separated column list. A pattern, not an `anyOf`, so that a wrong value is one editor
/// error; written in the lower case the documentation uses (`Strategy::parse` also accepts other
/// cases), which keeps the pattern an editor shows readable.
pub fn strategy_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "pattern": STRATEGY_PATTERN, "default": "24P" })
}

/// See [`strategy_schema`].
pub const STRATEGY_PATTERN: &str =
    "^(none|6P|24P|36P|gsr|simple|scrubbing|compcor|acompcor([0-9]+|_all|[0-9]+(\\.[0-9]+)?%)?|[^,]*,.*)$";

/// The schema of a cluster connectivity: 6 (faces), 18 (faces and edges) or 26 (and corners).
pub fn connectivity_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "integer", "enum": [6, 18, 26], "default": 26 })
}
