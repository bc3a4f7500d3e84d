//! The published output folder as the report reads it: the lock, the provenance records, the
//! copy of the study file, the record of the last run, and tables and JSON by relative path.
//! Nothing else is read: the report is a function of the folder's files alone.

use crate::error::{Error, Result};
use crate::outputs::{LOCK_FILE, Lock, provenance_name};
use crate::store::Record;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File name of the copy of the study file in the output folder.
pub const STUDY_FILE: &str = "study.toml";
/// File name of the record of the last run (date, command, outcome per stage).
pub const RUN_FILE: &str = "run.json";

/// What the last `neurospec run` that published this folder did. Not a result: it holds a date
/// and which stages were cached, so `verify` does not compare it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// The study file relative to the output folder (how `verify DIR` finds it).
    pub study: String,
    /// The study file's name as given on the command line.
    pub study_name: String,
    /// The command that reproduces the folder.
    pub command: String,
    /// UTC time the run finished publishing, RFC 3339.
    pub date: String,
    /// Stage id → `executed` or `cached`, in plan order.
    pub stages: Vec<(String, String)>,
    /// Wall time of the whole run up to publishing, seconds.
    pub wall_seconds: f64,
}

/// Result tables are read back with the tables module's reader.
pub use crate::tables::Tsv;

pub struct Folder {
    pub dir: PathBuf,
    pub lock: Lock,
    /// Stage id → provenance record.
    pub records: BTreeMap<String, Record>,
    pub run: Option<RunInfo>,
    pub study_text: Option<String>,
}

impl Folder {
    pub fn read(dir: &Path) -> Result<Folder> {
        let lock_path = dir.join(LOCK_FILE);
        let bytes = std::fs::read(&lock_path).map_err(|e| {
            Error::data(format!(
                "{} is not a neurospec output folder (cannot read {LOCK_FILE}: {e}); run the study first",
                dir.display()
            ))
        })?;
        let lock: Lock = serde_json::from_slice(&bytes)
            .map_err(|e| Error::data(format!("{}: unreadable lock file: {e}", lock_path.display())))?;
        let mut records = BTreeMap::new();
        for stage in &lock.stages {
            let path = dir.join("provenance").join(provenance_name(&stage.id));
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            let record: Record = serde_json::from_slice(&bytes)
                .map_err(|e| Error::data(format!("{}: unreadable provenance record: {e}", path.display())))?;
            records.insert(stage.id.clone(), record);
        }
        let run = std::fs::read(dir.join(RUN_FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let study_text = std::fs::read_to_string(dir.join(STUDY_FILE)).ok();
        Ok(Folder { dir: dir.to_path_buf(), lock, records, run, study_text })
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.dir.join(rel).is_file()
    }

    pub fn text(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(rel)).ok()
    }

    pub fn tsv(&self, rel: &str) -> Option<Tsv> {
        self.text(rel).map(|t| Tsv::parse(&t))
    }

    pub fn json(&self, rel: &str) -> Option<serde_json::Value> {
        self.text(rel).and_then(|t| serde_json::from_str(&t).ok())
    }

    /// Published paths (from the lock) that start with `prefix` and end with `suffix`, sorted.
    pub fn published(&self, prefix: &str, suffix: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .lock
            .stages
            .iter()
            .flat_map(|s| s.outputs.values().filter_map(|o| o.path.clone()))
            .filter(|p| p.starts_with(prefix) && p.ends_with(suffix))
            .collect();
        out.sort();
        out
    }

    /// Stages of a kind, in lock (plan) order.
    pub fn stages_of(&self, kind: &str) -> Vec<&Record> {
        self.lock.stages.iter().filter(|s| s.kind == kind).filter_map(|s| self.records.get(&s.id)).collect()
    }

    /// Parameters of the first stage of a kind.
    pub fn params_of(&self, kind: &str) -> Option<&serde_json::Value> {
        self.stages_of(kind).first().map(|r| &r.params)
    }

    /// The study seed as recorded by the seeded stages (the smallest recorded seed is not the
    /// study seed, so this reads the study file's `[study] seed` when the copy exists).
    pub fn study_seed(&self) -> Option<u64> {
        let text = self.study_text.as_ref()?;
        let value: toml::Table = text.parse().ok()?;
        value.get("study")?.get("seed")?.as_integer().map(|s| s as u64)
    }

    /// `[study] description` from the copy of the study file.
    pub fn study_description(&self) -> Option<String> {
        let value: toml::Table = self.study_text.as_ref()?.parse().ok()?;
        value.get("study")?.get("description")?.as_str().map(String::from)
    }
}
