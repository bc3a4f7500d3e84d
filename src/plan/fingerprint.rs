//! Fingerprints: when a stage instance reruns, and why.
//!
//! # The rule
//!
//! A stage instance reruns exactly when its **fingerprint** has no complete record in the cache.
//! The fingerprint is a blake3 hash of, in this order:
//!
//! 1. the stage **kind** (`associate`, `fdr`, …) and its **code version** — a number in
//!    `stages/` bumped whenever the method changes, so a fixed bug invalidates old results;
//! 2. the stage's **parameters**: the canonical JSON of exactly the slice of the study file the
//!    stage reads (the FDR stage sees `q`, the families and the p-value kind; it does not see the
//!    number of permutations). Editing any other part of the study leaves this stage alone;
//! 3. its **seed**, for stages that draw random numbers (derived from the study seed and the
//!    stage's purpose, so changing the study seed reruns only stages that draw);
//! 4. for every input, in declared order, its name and the **content hash** of its bytes: for a
//!    raw file, the blake3 of the file; for another stage's output, the hash recorded when that
//!    output was stored.
//!
//! Nothing else enters: not mtimes, not absolute paths, not the host, not the thread count.
//! A study moved to another folder or machine hits the same cache entries.
//!
//! # Consequences
//!
//! * **Nothing changed → nothing runs.** Every fingerprint matches a record.
//! * **Cut-off at unchanged outputs.** Inputs are hashed by content, so when an upstream stage
//!   reruns but produces byte-identical output (say, a table file was touched but not edited, or a
//!   comment in a parameter that does not affect it changed), its dependents hit the cache.
//! * **A missing or corrupt output** makes the record incomplete: the stage reruns (reason
//!   "output missing"). Reads verify hashes, so corruption is found, not propagated. A record that
//!   lacks an output the plan publishes or passes on (code that made fewer outputs) is not reused
//!   either (`exec`, reason "the cached result lacks output …").
//! * **Before running**, a stage whose upstream is stale cannot know its input hashes yet; `plan`
//!   reports it as stale "because `X` will rerun", and at run time it may still turn out cached.
//!
//! # Explaining staleness
//!
//! The cache keeps, per stage id, the record it last ran with (`latest/`). When a fingerprint
//! misses, [`why_stale`] compares the new inputs to that record: code version, each changed
//! top-level parameter (by name), each input whose hash changed (by name), or "never run".

use crate::plan::Node;
use crate::store::{Record, Store};
use serde_json::Value;

/// Compute a node's fingerprint from its input hashes (name, hash) in declared order.
pub fn fingerprint(node: &Node, inputs: &[(String, String)]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"neurospec-fingerprint-v1\0");
    h.update(node.kind.name().as_bytes());
    h.update(b"\0");
    h.update(&node.kind.version().to_le_bytes());
    h.update(canonical_json(&node.params).as_bytes());
    h.update(b"\0");
    if let Some(seed) = node.seed {
        h.update(b"seed");
        h.update(&seed.to_le_bytes());
    }
    for (name, hash) in inputs {
        h.update(name.as_bytes());
        h.update(b"\0");
        h.update(hash.as_bytes());
        h.update(b"\0");
    }
    h.finalize().to_hex().to_string()
}

/// JSON with object keys sorted at every level, no whitespace.
pub fn canonical_json(value: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&map[k]));
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sorted(value)).expect("JSON values serialise")
}

/// Why a node whose fingerprint missed must run, compared with the last record of its id.
pub fn why_stale(store: &Store, node: &Node, inputs: &[(String, String)], fingerprint: &str) -> String {
    if let Some(record) = store.record(fingerprint) {
        let missing: Vec<&String> =
            record.outputs.iter().filter(|(_, o)| !store.has(&o.hash)).map(|(name, _)| name).collect();
        return format!("output {} missing from the cache", list(&missing));
    }
    let Some(last) = store.latest(&node.id) else {
        return "never run".to_string();
    };
    let mut reasons = Vec::new();
    if last.version != node.kind.version() {
        reasons.push(format!("code version {} → {}", last.version, node.kind.version()));
    }
    let changed = changed_params(&last, &node.params);
    if !changed.is_empty() {
        reasons.push(format!("parameter {} changed", list(&changed)));
    }
    if last.seed != node.seed {
        reasons.push("seed changed".to_string());
    }
    let changed_inputs: Vec<&String> = inputs
        .iter()
        .filter(|(name, hash)| last.inputs.iter().find(|i| &i.name == name).is_none_or(|i| &i.hash != hash))
        .map(|(name, _)| name)
        .collect();
    if !changed_inputs.is_empty() {
        reasons.push(format!("input {} changed", list(&changed_inputs)));
    }
    if reasons.is_empty() {
        reasons.push("no record for this fingerprint".to_string());
    }
    reasons.join("; ")
}

fn changed_params(last: &Record, now: &Value) -> Vec<String> {
    let (Value::Object(old), Value::Object(new)) = (&last.params, now) else {
        return if &last.params == now { vec![] } else { vec!["(all)".into()] };
    };
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().filter(|k| old.get(*k) != new.get(*k)).map(|k| k.to_string()).collect()
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    items.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
}
