//! The human-facing output folder and `explain`.
//!
//! After a successful run, published stage outputs are copied from the cache into a new output
//! folder (`derivatives/<study>/` by default) that replaces the previous one as a whole (see
//! [`folder`]: staged beside it, every object verified by hash, swapped in atomically; a folder
//! that already holds exactly this run is left untouched). Beside the outputs:
//! `dataset_description.json` (BIDS derivatives: `GeneratedBy` names neurospec, its version, its
//! code URL and, namespaced under it, the study file's hash; `SourceDatasets` lists the input
//! data folders as written in the study), a JSON sidecar beside every published TSV that has
//! none of its own, describing each column from one registry ([`columns`]),
//! `provenance/<stage>.json` (the record of every stage instance), and
//! `neurospec.lock`, which lists every stage's fingerprint and output hashes and is written last.
//! Nothing is published when a run fails, and the folder is only ever swapped whole, so it always
//! holds the results of one complete run: files put into it by hand are not carried over, and a
//! folder without `neurospec.lock` is never replaced.

use crate::error::{Error, Result};
use crate::exec::RunReport;
use crate::plan::Plan;
use crate::store::{Record, Store, hash_bytes};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub mod columns;
mod folder;

pub const LOCK_FILE: &str = "neurospec.lock";

#[derive(Debug, Serialize, Deserialize)]
pub struct Lock {
    pub neurospec_version: String,
    pub study: String,
    pub study_hash: String,
    pub stages: Vec<LockedStage>,
    /// The column-dictionary sidecars written beside published tables: path → blake3 of the
    /// bytes (they are made at publishing from the tables' headers, not by a stage).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sidecars: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct LockedStage {
    pub id: String,
    pub kind: String,
    pub version: u32,
    pub fingerprint: String,
    /// Output name → (hash, published path if any).
    pub outputs: BTreeMap<String, LockedOutput>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct LockedOutput {
    pub hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// File name of a stage's provenance record.
pub fn provenance_name(stage: &str) -> String {
    format!("{}.json", stage.replace('/', "__"))
}

/// What one published file holds: a cache object (verified by hash as it is copied) or bytes
/// made here (provenance, description, lock).
enum Content {
    Object(String),
    Bytes(Vec<u8>),
}

/// Every file of the output folder of this run, in writing order (the lock file last).
fn contents(plan: &Plan, report: &RunReport, store: &Store) -> Result<Vec<(String, Content)>> {
    let mut files = Vec::new();
    let mut stages = Vec::new();
    for &i in &plan.order {
        let node = plan.node(i);
        let record = report.record(i).ok_or_else(|| Error::data(format!("stage {} has no result", node.id)))?;
        let mut outputs = BTreeMap::new();
        for (name, output) in &record.outputs {
            let path = node.publish.iter().find(|(o, _)| o == name).map(|(_, p)| p.clone());
            if let Some(rel) = &path {
                files.push((rel.clone(), Content::Object(output.hash.clone())));
            }
            outputs.insert(name.clone(), LockedOutput { hash: output.hash.clone(), path });
        }
        let provenance = serde_json::to_vec_pretty(record).expect("records serialise");
        files.push((format!("provenance/{}", provenance_name(&node.id)), Content::Bytes(provenance)));
        stages.push(LockedStage {
            id: node.id.clone(),
            kind: record.kind.clone(),
            version: record.version,
            fingerprint: record.fingerprint.clone(),
            outputs,
        });
    }
    let sidecars = column_sidecars(&files, store)?;
    let sidecar_hashes: BTreeMap<String, String> = sidecars
        .iter()
        .map(|(rel, content)| match content {
            Content::Bytes(bytes) => (rel.clone(), crate::store::hash_bytes(bytes)),
            Content::Object(hash) => (rel.clone(), hash.clone()),
        })
        .collect();
    files.extend(sidecars);
    let mut generated_by = serde_json::json!({
        "Name": "neurospec",
        "Version": env!("CARGO_PKG_VERSION"),
        "Description": "neurospec run of one study file",
        "neurospec": { "StudyHash": format!("blake3:{}", plan.study_hash) },
    });
    if !CODE_URL.is_empty() {
        generated_by["CodeURL"] = CODE_URL.into();
    }
    let description = serde_json::json!({
        "Name": plan.study_name,
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [generated_by],
        "SourceDatasets": source_datasets(plan),
    });
    let description = serde_json::to_string_pretty(&description).expect("json") + "\n";
    files.push(("dataset_description.json".into(), Content::Bytes(description.into_bytes())));
    let lock = Lock {
        neurospec_version: env!("CARGO_PKG_VERSION").to_string(),
        study: plan.study_name.clone(),
        study_hash: plan.study_hash.clone(),
        stages,
        sidecars: sidecar_hashes,
    };
    let lock = serde_json::to_string_pretty(&lock).expect("json") + "\n";
    files.push((LOCK_FILE.into(), Content::Bytes(lock.into_bytes())));
    Ok(files)
}

/// Where neurospec's code lives (`GeneratedBy.CodeURL`): Cargo.toml's `repository`, omitted
/// while that is unset.
const CODE_URL: &str = env!("CARGO_PKG_REPOSITORY");

/// The input data folders of the run, as written in the study (relative to its folder): for a
/// file inside a BIDS-style dataset, the folder above its `sub-*` folders; otherwise the
/// file's folder. Sorted, each once.
/// `[study] sources` first, then the local folders the inputs were read from.
fn source_datasets(plan: &Plan) -> Vec<serde_json::Value> {
    let mut roots = std::collections::BTreeSet::new();
    for node in plan.graph.node_weights() {
        for (_, source) in &node.inputs {
            if let crate::plan::Source::Path { written, .. } | crate::plan::Source::File { written, .. } = source {
                let root = match written.find("/sub-") {
                    Some(at) => &written[..at],
                    None => written.rsplit_once('/').map_or(".", |(dir, _)| dir),
                };
                roots.insert(root.to_string());
            }
        }
    }
    let declared = plan.sources.iter().map(crate::design::SourceDataset::to_bids);
    declared.chain(roots.into_iter().map(|url| serde_json::json!({ "URL": url }))).collect()
}

/// A JSON sidecar for every published TSV without one of its own (`x.tsv` → `x.json`),
/// describing each column of its header from [`columns::describe`].
fn column_sidecars(files: &[(String, Content)], store: &Store) -> Result<Vec<(String, Content)>> {
    let mut sidecars = Vec::new();
    for (rel, content) in files {
        let (Some(stem), Content::Object(hash)) = (rel.strip_suffix(".tsv"), content) else { continue };
        let json = format!("{stem}.json");
        if files.iter().any(|(other, _)| *other == json) {
            continue;
        }
        let bytes = store.get(hash)?;
        let header = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
        let header = String::from_utf8_lossy(header);
        let mut map = serde_json::Map::new();
        for column in header.split('\t').filter(|c| !c.is_empty()) {
            map.insert(column.to_string(), columns::describe(rel, column).to_json());
        }
        let text = serde_json::to_string_pretty(&serde_json::Value::Object(map)).expect("json") + "\n";
        sidecars.push((json, Content::Bytes(text.into_bytes())));
    }
    Ok(sidecars)
}

/// Whether `dir` already holds exactly these files with these contents, and (when known) with
/// the permission bits new files and folders get (then nothing is written).
fn holds_exactly(
    dir: &Path,
    files: &[(String, Content)],
    modes: Option<(u32, u32)>,
    derived: &dyn Fn(&str) -> bool,
) -> bool {
    #[cfg(unix)]
    let mode_ok = |path: &Path, dir: bool| {
        use std::os::unix::fs::PermissionsExt;
        modes.is_none_or(|(file_mode, dir_mode)| {
            std::fs::metadata(path)
                .is_ok_and(|m| m.permissions().mode() & 0o777 == if dir { dir_mode } else { file_mode })
        })
    };
    #[cfg(not(unix))]
    let mode_ok = |_: &Path, _: bool| {
        let _ = modes;
        true
    };
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>, mode_ok: &dyn Fn(&Path, bool) -> bool) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else { return false };
        if !mode_ok(dir, true) {
            return false;
        }
        for entry in entries.flatten() {
            let path = entry.path();
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {
                    if !walk(root, &path, out, mode_ok) {
                        return false;
                    }
                }
                Ok(m) if m.is_file() && mode_ok(&path, false) => {
                    out.push(path.strip_prefix(root).expect("inside").to_string_lossy().replace('\\', "/"))
                }
                _ => return false,
            }
        }
        true
    }
    let mut present = Vec::new();
    if !walk(dir, dir, &mut present, &mode_ok) {
        return false;
    }
    present.retain(|rel| !derived(rel));
    present.sort();
    let mut expected: Vec<&str> = files.iter().map(|(rel, _)| rel.as_str()).collect();
    expected.sort();
    present == expected
        && files.iter().all(|(rel, content)| {
            let Ok(bytes) = std::fs::read(dir.join(rel)) else { return false };
            match content {
                Content::Object(hash) => hash_bytes(&bytes) == *hash,
                Content::Bytes(b) => bytes == *b,
            }
        })
}

/// Publish the run: published outputs, provenance and the lock file replace the output folder
/// as a whole (see `folder`). A folder that already holds exactly this run is left as it is.
pub fn publish(plan: &Plan, store: &Store, report: &RunReport, views: Option<&Views<'_>>) -> Result<PathBuf> {
    let files = contents(plan, report, store)?;
    let mut publication = folder::Publication::begin(&plan.output_dir)?;
    let owns = |rel: &str| views.is_some_and(|v| (v.owns)(rel));
    if holds_exactly(&plan.output_dir, &files, publication.fresh_modes(), &owns) {
        return Ok(plan.output_dir.clone());
    }
    for (rel, content) in &files {
        match content {
            Content::Object(hash) => publication.write(rel, &store.get(hash)?)?,
            Content::Bytes(bytes) => publication.write(rel, bytes)?,
        }
    }
    if let Some(views) = views {
        (views.write)(publication.staging())?;
    }
    publication.commit()
}

/// Files derived from a run's results and published beside them (the report): `write` makes them
/// in the staging folder once the results and the lock are there, so they are swapped in with the
/// results; `owns` names them (they are not in the lock, and a folder that holds exactly this run
/// is not republished for them).
pub struct Views<'a> {
    pub owns: &'a dyn Fn(&str) -> bool,
    pub write: &'a dyn Fn(&Path) -> Result<()>,
}

/// Describe how an output file was made, back to the raw inputs.
pub fn explain(path: &Path) -> Result<String> {
    let absolute = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
    let root = absolute
        .ancestors()
        .skip(1)
        .find(|dir| dir.join(LOCK_FILE).is_file())
        .ok_or_else(|| {
            Error::data(format!(
                "{} is not inside a neurospec output folder (no {LOCK_FILE} above it); run the study first",
                path.display()
            ))
        })?
        .to_path_buf();
    let lock: Lock =
        serde_json::from_slice(&std::fs::read(root.join(LOCK_FILE)).map_err(|e| Error::io(root.join(LOCK_FILE), e))?)
            .map_err(|e| Error::data(format!("{}: unreadable lock file: {e}", root.join(LOCK_FILE).display())))?;
    let rel = absolute.strip_prefix(&root).expect("ancestor").to_string_lossy().replace('\\', "/");
    let (stage, output, locked) = lock
        .stages
        .iter()
        .find_map(|s| s.outputs.iter().find(|(_, o)| o.path.as_deref() == Some(rel.as_str())).map(|(n, o)| (s, n, o)))
        .ok_or_else(|| {
            Error::data(format!(
                "{rel} is not an output recorded in {}; provenance files describe stages, not outputs",
                root.join(LOCK_FILE).display()
            ))
        })?;
    let bytes = std::fs::read(&absolute).map_err(|e| Error::io(&absolute, e))?;
    let current = hash_bytes(&bytes);
    let load = |id: &str| -> Option<Record> {
        serde_json::from_slice(&std::fs::read(root.join("provenance").join(provenance_name(id))).ok()?).ok()
    };
    let mut out = String::new();
    let _ = writeln!(out, "{rel}");
    let _ = writeln!(
        out,
        "  content   blake3:{} ({})",
        short(&current),
        if current == locked.hash { "as produced by the run" } else { "MODIFIED since the run" }
    );
    let _ = writeln!(out, "  made by   stage {} (output `{output}`)", stage.id);
    let record = load(&stage.id).ok_or_else(|| Error::data(format!("provenance of stage {} is missing", stage.id)))?;
    let _ =
        writeln!(out, "  kind      {} v{}, fingerprint {}", record.kind, record.version, short(&record.fingerprint));
    if let Some(seed) = record.seed {
        let _ = writeln!(out, "  seed      {seed}");
    }
    let _ = writeln!(
        out,
        "  ran       {:.2} s on {} with neurospec {}",
        record.wall_seconds, record.host, record.neurospec_version
    );
    let _ = writeln!(out, "  params    {}", crate::plan::fingerprint::canonical_json(&record.params));
    let _ = writeln!(out, "  inputs");
    for input in &record.inputs {
        let _ = writeln!(out, "    {:<18} blake3:{}  ← {}", input.name, short(&input.hash), input.source);
    }
    let _ = writeln!(out, "  chain back to the raw inputs");
    let mut seen = std::collections::BTreeSet::new();
    chain(&record, &load, 2, &mut seen, &mut out);
    Ok(out)
}

fn chain(
    record: &Record,
    load: &dyn Fn(&str) -> Option<Record>,
    depth: usize,
    seen: &mut std::collections::BTreeSet<String>,
    out: &mut String,
) {
    let indent = "  ".repeat(depth);
    let _ = writeln!(out, "{indent}{} [{} v{}]", record.stage, record.kind, record.version);
    if !seen.insert(record.stage.clone()) {
        return;
    }
    for input in &record.inputs {
        if let Some(rest) = input.source.strip_prefix("stage:") {
            let upstream = rest.rsplit_once('/').map_or(rest, |(s, _)| s);
            match load(upstream) {
                Some(r) if seen.contains(&r.stage) => {
                    let _ = writeln!(out, "{indent}  {} (see above)", r.stage);
                }
                Some(r) => chain(&r, load, depth + 1, seen, out),
                None => {
                    let _ = writeln!(out, "{indent}  {upstream} (provenance missing)");
                }
            }
        } else {
            let _ = writeln!(out, "{indent}  {} blake3:{}", input.source, short(&input.hash));
        }
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(16)]
}
