//! The vocabulary of a study's analyses, shared by `spec` (which resolves a study into it),
//! `plan` (which hands it to stages as parameters) and `stages` (which act on it): samples,
//! connectome column names, what a group analysis tests, and where a ROC value comes from.
//!
//! It sits below all three so that none of them has to import another's types (see the layering
//! invariant in ARCHITECTURE.md). It holds data and naming rules only: no I/O, no computation.

use crate::error::{Error, Result};
use crate::stats::voxelwise::Tail;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Which people a stage fits or tests: one side of the discovery/held-out split, or everyone
/// when the study has no split. Written as `discovery`, `held-out` or `all` (in `split.tsv`, in
/// stage ids and in parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Sample {
    #[serde(rename = "discovery")]
    Discovery,
    #[serde(rename = "held-out")]
    HeldOut,
    #[serde(rename = "all")]
    All,
}

impl Sample {
    pub fn name(self) -> &'static str {
        match self {
            Sample::Discovery => "discovery",
            Sample::HeldOut => "held-out",
            Sample::All => "all",
        }
    }

    /// The samples analysed separately: both sides of a split, or everyone.
    pub fn parts(split: bool) -> &'static [Sample] {
        if split { &[Sample::Discovery, Sample::HeldOut] } else { &[Sample::All] }
    }

    /// The sample a model is fitted on: discovery with a split, else everyone.
    pub fn fit(split: bool) -> Sample {
        if split { Sample::Discovery } else { Sample::All }
    }
}

impl std::fmt::Display for Sample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Smallest number of subjects allowed on each side of a split (checked before compute when the
/// cohort size is known, and again by the split stage on the real data).
pub const MIN_SPLIT_SIDE: usize = 10;

/// Each subject's sample as written by the split stage (`subject`, `sample` columns).
pub struct SplitAssignment(HashMap<String, Sample>);

impl SplitAssignment {
    /// Parse `split.tsv`; a row naming an unknown sample is an error.
    pub fn parse(text: &str) -> Result<SplitAssignment> {
        let mut map = HashMap::new();
        for (line, row) in text.lines().enumerate().skip(1) {
            let Some((id, sample)) = row.split_once('\t') else { continue };
            let sample = match sample {
                "discovery" => Sample::Discovery,
                "held-out" => Sample::HeldOut,
                other => {
                    return Err(Error::data(format!(
                        "split.tsv line {}: unknown sample `{other}`; this is a neurospec bug",
                        line + 1
                    )));
                }
            };
            map.insert(id.to_string(), sample);
        }
        Ok(SplitAssignment(map))
    }

    /// The sample of subject `id` (None: not in the split, e.g. excluded later).
    pub fn of(&self, id: &str) -> Option<Sample> {
        self.0.get(id).copied()
    }

    /// Positions in `ids` of the subjects in `sample`; `Sample::All` selects everyone.
    pub fn rows(split: Option<&SplitAssignment>, ids: &[String], sample: Sample) -> Vec<usize> {
        match (split, sample) {
            (_, Sample::All) | (None, _) => (0..ids.len()).collect(),
            (Some(s), _) => (0..ids.len()).filter(|&i| s.of(&ids[i]) == Some(sample)).collect(),
        }
    }
}

/// The name of an edge column in the `connectome` table.
pub fn edge_column(a: &str, b: &str) -> String {
    format!("conn_{a}__{b}")
}

/// The connectome column of an edge in one session (`conn_a__b__pre`), or without sessions the
/// edge column itself.
pub fn session_column(edge: &str, session: Option<&str>) -> String {
    match session {
        Some(s) => format!("{edge}__{s}"),
        None => edge.to_string(),
    }
}

/// What a group analysis tests at each of its units.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Level {
    /// Seed index within the runs' seed maps, and its name.
    Voxel { seed: usize, name: String },
    /// Per edge: its name and its dataset column in each session used.
    Edges(Vec<(String, Vec<String>)>),
}

/// The region-level two-sample analysis that chose a ROC value among its edges.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EdgeChoice {
    pub group: String,
    pub candidates: Vec<String>,
    pub group_column: String,
    pub covariates: Vec<String>,
    pub tail: Tail,
}

/// The voxelwise two-sample analysis whose largest cluster gives a ROC value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterChoice {
    pub group: String,
    pub seed: usize,
    pub session: Option<String>,
    pub group_column: String,
    pub covariates: Vec<String>,
    pub tail: Tail,
    pub cluster_t: Option<f64>,
    pub cluster_p: f64,
    pub connectivity: u8,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_assignment_reads_both_sides_and_selects_rows() {
        let s = SplitAssignment::parse("subject\tsample\na\tdiscovery\nb\theld-out\nc\tdiscovery\n").unwrap();
        let ids: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        assert_eq!(SplitAssignment::rows(Some(&s), &ids, Sample::Discovery), vec![0, 2]);
        assert_eq!(SplitAssignment::rows(Some(&s), &ids, Sample::HeldOut), vec![1]);
        assert_eq!(SplitAssignment::rows(Some(&s), &ids, Sample::All), vec![0, 1, 2, 3]);
        assert!(SplitAssignment::parse("subject\tsample\na\tneither\n").is_err());
    }

    #[test]
    fn sample_serialises_as_its_name() {
        for s in [Sample::Discovery, Sample::HeldOut, Sample::All] {
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.name()));
        }
    }
}
