//! `ro-crate-metadata.json`: the folder as an RO-Crate 1.1 conforming to the Workflow Run Crate
//! and Provenance Run Crate profiles (0.5).
//!
//! - The root dataset's `mainEntity` is the study file (`study.toml`, typed File,
//!   SoftwareSourceCode, ComputationalWorkflow), written in the language `neurospec`.
//! - One `CreateAction` for the whole run (instrument: the study; object: every raw input; result:
//!   every published output), driven by an `OrganizeAction` of the engine.
//! - Per stage instance: a `HowToStep` of the workflow, a `SoftwareApplication` for its kind and
//!   code version, a `CreateAction` with its parameters (`PropertyValue`s, one per top-level
//!   parameter, JSON-encoded; instances with the same setting share the entity), its inputs
//!   (`object`) and its outputs (`result`), and a
//!   `ControlAction` linking step and action.
//! - Every file carries its blake3 hash as `identifier` (`blake3:<hex>`) and `contentSize`.
//!   Raw inputs outside the folder and unpublished intermediate outputs are contextual entities
//!   (`#input:<path>`, `#output:<stage>/<name>`).
//! - No `license` is claimed for the root dataset (RO-Crate 1.1 recommends one, but the licence
//!   of a study's results is the lab's choice, not neurospec's).

use super::folder::Folder;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const PROCESS: &str = "https://w3id.org/ro/wfrun/process/0.5";
const WORKFLOW: &str = "https://w3id.org/ro/wfrun/workflow/0.5";
const PROVENANCE: &str = "https://w3id.org/ro/wfrun/provenance/0.5";
const WORKFLOW_RO_CRATE: &str = "https://w3id.org/workflowhub/workflow-ro-crate/1.0";

fn id(s: &str) -> Value {
    json!({ "@id": s })
}

/// The id of an output: its published path, or a contextual id.
fn output_id(path: Option<&String>, stage: &str, name: &str) -> String {
    path.cloned().unwrap_or_else(|| format!("#output:{stage}/{name}"))
}

pub fn metadata(folder: &Folder) -> Value {
    let mut graph: Vec<Value> = Vec::new();
    let mut files: BTreeMap<String, Value> = BTreeMap::new();
    let mut outputs_by_ref: BTreeMap<String, String> = BTreeMap::new();
    let date = folder.run.as_ref().map(|r| r.date.clone());
    let mut actions = Vec::new();
    let mut steps = Vec::new();
    let mut tools: BTreeMap<String, Value> = BTreeMap::new();
    let mut inputs_all: BTreeMap<String, ()> = BTreeMap::new();
    let mut published = Vec::new();
    let mut shared_params = std::collections::BTreeSet::new();

    for stage in &folder.lock.stages {
        for (name, out) in &stage.outputs {
            let oid = output_id(out.path.as_ref(), &stage.id, name);
            outputs_by_ref.insert(format!("stage:{}/{name}", stage.id), oid.clone());
            let size = folder.records.get(&stage.id).and_then(|r| r.outputs.get(name)).map(|o| o.bytes);
            let mut entity = json!({
                "@id": oid, "@type": "File", "name": out.path.clone().unwrap_or_else(|| format!("{} ({})", name, stage.id)),
                "identifier": format!("blake3:{}", out.hash),
            });
            if let Some(size) = size {
                entity["contentSize"] = json!(size.to_string());
            }
            if out.path.is_some() {
                published.push(id(&oid));
            }
            files.insert(oid, entity);
        }
    }
    for stage in &folder.lock.stages {
        let Some(record) = folder.records.get(&stage.id) else { continue };
        let tool_id = format!("#stage-kind:{}@{}", record.kind, record.version);
        tools.entry(tool_id.clone()).or_insert_with(|| {
            json!({"@id": tool_id, "@type": "SoftwareApplication", "name": format!("neurospec stage {}", record.kind),
                   "softwareVersion": record.version.to_string()})
        });
        let mut object = Vec::new();
        for input in &record.inputs {
            let iid = match input.source.strip_prefix("file:") {
                Some(path) => {
                    let iid = format!("#input:{path}");
                    inputs_all.insert(iid.clone(), ());
                    files.entry(iid.clone()).or_insert_with(|| {
                        json!({"@id": iid, "@type": "File", "name": path, "identifier": format!("blake3:{}", input.hash)})
                    });
                    iid
                }
                None => outputs_by_ref.get(&input.source).cloned().unwrap_or_else(|| format!("#{}", input.source)),
            };
            object.push(id(&iid));
        }
        let mut params = Vec::new();
        if let Some(map) = record.params.as_object() {
            for (key, value) in map {
                let text = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                // Identical settings of many instances (one per imaging run) share one entity.
                let pid = format!("#param:{key}:{}", &crate::store::hash_bytes(text.as_bytes())[..16]);
                if shared_params.insert(pid.clone()) {
                    graph.push(json!({"@id": pid, "@type": "PropertyValue", "name": key, "value": text}));
                }
                params.push(id(&pid));
            }
        }
        object.extend(params);
        let result: Vec<Value> =
            stage.outputs.iter().map(|(name, out)| id(&output_id(out.path.as_ref(), &stage.id, name))).collect();
        let action_id = format!("#action:{}", stage.id);
        let step_id = format!("#step:{}", stage.id);
        let mut action = json!({
            "@id": action_id, "@type": "CreateAction", "name": format!("stage {}", stage.id),
            "instrument": id(&tool_id), "object": object, "result": result,
            "identifier": format!("fingerprint:{}", stage.fingerprint),
            "startTime": super::rfc3339(record.started_unix),
            "endTime": super::rfc3339(record.started_unix + record.wall_seconds.ceil() as u64),
            "subjectOf": id(&format!("provenance/{}", crate::outputs::provenance_name(&stage.id))),
        });
        if let Some(seed) = record.seed {
            action["description"] = json!(format!("seed {seed}"));
        }
        graph.push(action);
        graph.push(json!({"@id": step_id, "@type": "HowToStep", "name": stage.id, "workExample": id(&tool_id)}));
        graph.push(json!({"@id": format!("#control:{}", stage.id), "@type": "ControlAction", "instrument": id(&step_id), "object": id(&action_id)}));
        steps.push(id(&step_id));
        actions.push(id(&format!("#control:{}", stage.id)));
        let prov = format!("provenance/{}", crate::outputs::provenance_name(&stage.id));
        files.insert(prov.clone(), json!({"@id": prov, "@type": "File", "name": format!("provenance record of {}", stage.id), "encodingFormat": "application/json"}));
        published.push(id(&prov));
    }
    for (rel, format) in [
        ("neurospec.lock", "application/json"),
        ("dataset_description.json", "application/json"),
        ("report.html", "text/html"),
        ("methods.md", "text/markdown"),
        ("run.json", "application/json"),
    ] {
        if folder.exists(rel) {
            files.insert(rel.into(), json!({"@id": rel, "@type": "File", "name": rel, "encodingFormat": format}));
            published.push(id(rel));
        }
    }
    if folder.exists(super::folder::STUDY_FILE) {
        published.push(id(super::folder::STUDY_FILE));
    }
    let run_result: Vec<Value> = folder
        .lock
        .stages
        .iter()
        .flat_map(|s| s.outputs.values().filter_map(|o| o.path.as_ref()).map(|p| id(p)))
        .collect();
    let run_object: Vec<Value> = inputs_all.keys().map(|k| id(k)).collect();
    let mut run = json!({
        "@id": "#run", "@type": "CreateAction", "name": format!("neurospec run of {}", folder.lock.study),
        "instrument": id("study.toml"), "object": run_object, "result": run_result,
    });
    if let Some(date) = &date {
        run["endTime"] = json!(date);
    }
    let mut root = json!({
        "@id": "./", "@type": "Dataset", "name": folder.lock.study,
        "description": folder.study_description().unwrap_or_else(|| format!("neurospec outputs of {}", folder.lock.study)),
        "conformsTo": [id(PROCESS), id(WORKFLOW), id(PROVENANCE), id(WORKFLOW_RO_CRATE)],
        "mainEntity": id("study.toml"),
        "mentions": [id("#run")],
        "hasPart": published,
    });
    if let Some(date) = &date {
        root["datePublished"] = json!(date);
    }
    let mut head = vec![
        json!({"@id": "ro-crate-metadata.json", "@type": "CreativeWork",
               "conformsTo": [id("https://w3id.org/ro/crate/1.1"), id(WORKFLOW_RO_CRATE)], "about": id("./")}),
        root,
        json!({"@id": "study.toml", "@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow", "HowTo"],
               "name": format!("{} study file", folder.lock.study), "identifier": format!("blake3:{}", folder.lock.study_hash),
               "programmingLanguage": id("#neurospec-language"), "step": steps, "encodingFormat": "application/toml"}),
        json!({"@id": "#neurospec-language", "@type": "ComputerLanguage", "name": "neurospec study file (TOML)",
               "url": id("https://github.com/neurospec/neurospec"), "version": folder.lock.neurospec_version}),
        json!({"@id": "#neurospec", "@type": "SoftwareApplication", "name": "neurospec", "softwareVersion": folder.lock.neurospec_version}),
        json!({"@id": "#engine-run", "@type": "OrganizeAction", "name": "neurospec orchestration", "instrument": id("#neurospec"),
               "result": id("#run"), "object": actions}),
        run,
    ];
    for (uri, name) in [
        (PROCESS, "Process Run Crate"),
        (WORKFLOW, "Workflow Run Crate"),
        (PROVENANCE, "Provenance Run Crate"),
        (WORKFLOW_RO_CRATE, "Workflow RO-Crate"),
    ] {
        let version = uri.rsplit('/').next().unwrap_or("");
        head.push(json!({"@id": uri, "@type": "CreativeWork", "name": name, "version": version}));
    }
    head.extend(tools.into_values());
    head.extend(files.into_values());
    head.extend(graph);
    json!({ "@context": "https://w3id.org/ro/crate/1.1/context", "@graph": head })
}
