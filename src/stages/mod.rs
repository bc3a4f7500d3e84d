//! Stage kinds. Each file reads top to bottom as a methods paragraph: its `Params` (exactly what
//! it reads from the study), its inputs and outputs, and `run`.
//!
//! Invariants: a stage sees only its parameters and its inputs — bytes, or for large images a
//! path it streams from (fingerprinted by content like any input) — never the study file, any
//! other file, the cache, or which executor runs it. It returns named output bytes;
//! storing, hashing and publishing them is the executor's business. Its random draws come only
//! from seeds in its parameters.

pub mod associate;
pub mod connectome;
pub mod covariates;
pub mod dataset;
pub mod differences;
pub mod factors;
pub mod fdr;
pub mod group;
pub mod imaging_run;
pub mod load_table;
pub mod predict;
pub mod replicate;
pub mod roc;
pub mod scores;
pub mod simulate;
pub mod split;

use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Simulate,
    LoadTable,
    Scores,
    Dataset,
    Split,
    Associate,
    Fdr,
    Differences,
    Replicate,
    ImagingRun,
    Connectome,
    Factors,
    Predict,
    Group,
    Roc,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Simulate => "simulate",
            Kind::LoadTable => "load-table",
            Kind::Scores => "scores",
            Kind::Dataset => "dataset",
            Kind::Split => "split",
            Kind::Associate => "associate",
            Kind::Fdr => "fdr",
            Kind::Differences => "differences",
            Kind::Replicate => "replicate",
            Kind::ImagingRun => "imaging-run",
            Kind::Connectome => "connectome",
            Kind::Factors => "factors",
            Kind::Predict => "predict",
            Kind::Group => "group",
            Kind::Roc => "roc",
        }
    }

    /// Code version: bump when the stage's method or output format changes, so that cached
    /// results made by the old code are not reused.
    pub fn version(self) -> u32 {
        match self {
            Kind::Simulate => simulate::VERSION,
            Kind::LoadTable => load_table::VERSION,
            Kind::Scores => scores::VERSION,
            Kind::Dataset => dataset::VERSION,
            Kind::Split => split::VERSION,
            Kind::Associate => associate::VERSION,
            Kind::Fdr => fdr::VERSION,
            Kind::Differences => differences::VERSION,
            Kind::Replicate => replicate::VERSION,
            Kind::ImagingRun => imaging_run::VERSION,
            Kind::Connectome => connectome::VERSION,
            Kind::Factors => factors::VERSION,
            Kind::Predict => predict::VERSION,
            Kind::Group => group::VERSION,
            Kind::Roc => roc::VERSION,
        }
    }

    /// Input names the stage reads, declared once in its file (`INPUTS`).
    pub fn inputs(self) -> &'static [&'static str] {
        match self {
            Kind::Simulate => simulate::INPUTS,
            Kind::LoadTable => load_table::INPUTS,
            Kind::Scores => scores::INPUTS,
            Kind::Dataset => dataset::INPUTS,
            Kind::Split => split::INPUTS,
            Kind::Associate => associate::INPUTS,
            Kind::Fdr => fdr::INPUTS,
            Kind::Differences => differences::INPUTS,
            Kind::Replicate => replicate::INPUTS,
            Kind::ImagingRun => imaging_run::INPUTS,
            Kind::Connectome => connectome::INPUTS,
            Kind::Factors => factors::INPUTS,
            Kind::Predict => predict::INPUTS,
            Kind::Group => group::INPUTS,
            Kind::Roc => roc::INPUTS,
        }
    }

    /// Output names the stage writes, declared once in its file (`OUTPUTS`).
    pub fn outputs(self) -> &'static [&'static str] {
        match self {
            Kind::Simulate => simulate::OUTPUTS,
            Kind::LoadTable => load_table::OUTPUTS,
            Kind::Scores => scores::OUTPUTS,
            Kind::Dataset => dataset::OUTPUTS,
            Kind::Split => split::OUTPUTS,
            Kind::Associate => associate::OUTPUTS,
            Kind::Fdr => fdr::OUTPUTS,
            Kind::Differences => differences::OUTPUTS,
            Kind::Replicate => replicate::OUTPUTS,
            Kind::ImagingRun => imaging_run::OUTPUTS,
            Kind::Connectome => connectome::OUTPUTS,
            Kind::Factors => factors::OUTPUTS,
            Kind::Predict => predict::OUTPUTS,
            Kind::Group => group::OUTPUTS,
            Kind::Roc => roc::OUTPUTS,
        }
    }

    pub fn declares_input(self, name: &str) -> bool {
        self.inputs().iter().any(|d| name_matches(d, name))
    }

    pub fn declares_output(self, name: &str) -> bool {
        self.outputs().iter().any(|d| name_matches(d, name))
    }

    /// Every stage kind.
    pub const ALL: [Kind; 15] = [
        Kind::Simulate,
        Kind::LoadTable,
        Kind::Scores,
        Kind::Dataset,
        Kind::Split,
        Kind::Associate,
        Kind::Fdr,
        Kind::Differences,
        Kind::Replicate,
        Kind::ImagingRun,
        Kind::Connectome,
        Kind::Factors,
        Kind::Predict,
        Kind::Group,
        Kind::Roc,
    ];

    /// The kind with this name (as written by [`Kind::name`]).
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A kind is written by its name (in a submitted plan, see `exec::slurm`).
impl serde::Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Kind, D::Error> {
        let name = String::deserialize(deserializer)?;
        Kind::from_name(&name).ok_or_else(|| serde::de::Error::custom(format!("unknown stage kind `{name}`")))
    }
}

/// A declared name (`map:*` ends a family) against an actual one.
fn name_matches(declared: &str, name: &str) -> bool {
    match declared.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => declared == name,
    }
}

/// Run a stage and check it wrote only the outputs its kind declares (an undeclared output would
/// be stored but never wired or published: a neurospec bug, reported as such).
pub fn run_checked(kind: Kind, ctx: &Context<'_>) -> Result<Outputs> {
    let outputs = run(kind, ctx)?;
    check_declared(kind, ctx.stage, &outputs)?;
    Ok(outputs)
}

/// Every output of stage `stage` is one its kind declares.
pub fn check_declared(kind: Kind, stage: &str, outputs: &Outputs) -> Result<()> {
    match outputs.keys().find(|name| !kind.declares_output(name)) {
        Some(name) => Err(Error::data(format!(
            "stage {stage} wrote output `{name}`, which its kind ({}) does not declare; this is a neurospec bug",
            kind.name()
        ))),
        None => Ok(()),
    }
}

/// Named output bytes of a stage.
pub type Outputs = BTreeMap<String, Vec<u8>>;

/// What a running stage can see.
pub struct Context<'a> {
    pub stage: &'a str,
    pub params: &'a serde_json::Value,
    pub inputs: BTreeMap<String, Vec<u8>>,
    /// Inputs handed over by path (large images the stage streams itself).
    pub paths: BTreeMap<String, std::path::PathBuf>,
    /// Report progress: (done, total) in stage-defined units.
    pub progress: &'a (dyn Fn(u64, u64) + Sync),
}

impl Context<'_> {
    pub fn params<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.params.clone())
            .map_err(|e| Error::data(format!("stage {}: bad parameters ({e}); this is a neurospec bug", self.stage)))
    }

    pub fn input(&self, name: &str) -> Result<&[u8]> {
        self.inputs.get(name).map(Vec::as_slice).ok_or_else(|| {
            Error::data(format!("stage {}: input `{name}` missing; this is a neurospec bug", self.stage))
        })
    }

    pub fn path(&self, name: &str) -> Result<&std::path::Path> {
        self.paths.get(name).map(|p| p.as_path()).ok_or_else(|| {
            Error::data(format!("stage {}: input file `{name}` missing; this is a neurospec bug", self.stage))
        })
    }

    pub fn table(&self, name: &str) -> Result<crate::tables::Table> {
        crate::tables::decode(self.input(name)?)
    }

    pub fn text(&self, name: &str) -> Result<String> {
        String::from_utf8(self.input(name)?.to_vec())
            .map_err(|_| Error::data(format!("stage {}: input `{name}` is not text", self.stage)))
    }
}

pub fn run(kind: Kind, ctx: &Context<'_>) -> Result<Outputs> {
    match kind {
        Kind::Simulate => simulate::run(ctx),
        Kind::LoadTable => load_table::run(ctx),
        Kind::Scores => scores::run(ctx),
        Kind::Dataset => dataset::run(ctx),
        Kind::Split => split::run(ctx),
        Kind::Associate => associate::run(ctx),
        Kind::Fdr => fdr::run(ctx),
        Kind::Differences => differences::run(ctx),
        Kind::Replicate => replicate::run(ctx),
        Kind::ImagingRun => imaging_run::run(ctx),
        Kind::Connectome => connectome::run(ctx),
        Kind::Factors => factors::run(ctx),
        Kind::Predict => predict::run(ctx),
        Kind::Group => group::run(ctx),
        Kind::Roc => roc::run(ctx),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_study_vocabulary_names_every_stage_kind() {
        let names: Vec<&str> = super::Kind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names, crate::design::STAGE_KINDS);
    }
}
