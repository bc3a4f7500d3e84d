//! The JSON Schema of study files, generated from the same types serde reads. The committed copy
//! at `schemas/study.schema.json` is checked against this by a test.

pub fn schema_json() -> String {
    let schema = schemars::schema_for!(super::Study);
    serde_json::to_string_pretty(&schema).expect("schemas serialise") + "\n"
}
