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
    /// Parse `split.tsv` (`participant_id` with `sub-`, read as the subject's label); a row
    /// naming an unknown sample is an error.
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
            map.insert(crate::tables::subject_label(id).to_string(), sample);
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

/// A dataset the study's inputs come from (`[study] sources`), listed first in
/// `dataset_description.json`'s `SourceDatasets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum SourceDataset {
    /// A DOI (`10.18112/openneuro.ds000030.v1.0.0`, `doi:` optional) or a URL (`https://…`).
    Link(String),
    /// A named source with its DOI, its URL, or both.
    Entry(SourceEntry),
}

/// A named source dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceEntry {
    /// What the dataset is called (e.g. `UK Biobank imaging, application 12345`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where it is (`http://` or `https://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Its DOI (`10.PREFIX/SUFFIX`; `doi:` optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doi: Option<String>,
}

/// Whether `text` is a DOI: `10.` + a registrant code of digits (and dots), `/`, a suffix
/// without spaces; `doi:` in front is allowed.
pub fn is_doi(text: &str) -> bool {
    let text = text.strip_prefix("doi:").unwrap_or(text);
    let Some((prefix, suffix)) = text.split_once('/') else { return false };
    let registrant = prefix.strip_prefix("10.").unwrap_or("");
    !registrant.is_empty()
        && registrant.chars().all(|c| c.is_ascii_digit() || c == '.')
        && !suffix.is_empty()
        && !suffix.chars().any(char::is_whitespace)
}

/// Whether `text` is a web address (`http://` or `https://` and a host).
pub fn is_url(text: &str) -> bool {
    let rest = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://")).unwrap_or("");
    !rest.is_empty() && !text.chars().any(char::is_whitespace)
}

impl SourceDataset {
    /// The BIDS `SourceDatasets` entry: `DOI` as `doi:…`, `URL`, and neurospec's `Name`.
    pub fn to_bids(&self) -> serde_json::Value {
        let doi = |d: &str| format!("doi:{}", d.strip_prefix("doi:").unwrap_or(d));
        let mut map = serde_json::Map::new();
        match self {
            SourceDataset::Link(text) if is_doi(text) => {
                map.insert("DOI".into(), doi(text).into());
            }
            SourceDataset::Link(text) => {
                map.insert("URL".into(), text.clone().into());
            }
            SourceDataset::Entry(e) => {
                if let Some(name) = &e.name {
                    map.insert("Name".into(), name.clone().into());
                }
                if let Some(d) = &e.doi {
                    map.insert("DOI".into(), doi(d).into());
                }
                if let Some(url) = &e.url {
                    map.insert("URL".into(), url.clone().into());
                }
            }
        }
        serde_json::Value::Object(map)
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
    fn sources_become_bids_source_datasets() {
        assert!(is_doi("10.18112/openneuro.ds000030.v1.0.0") && is_doi("doi:10.1000/x"));
        assert!(!is_doi("10.x/y") && !is_doi("10.1000/") && !is_doi("https://doi.org/10.1000/x"));
        assert!(is_url("https://openneuro.org/datasets/ds000030") && !is_url("openneuro.org") && !is_url("https://"));
        let doi = SourceDataset::Link("10.18112/openneuro.ds000030.v1.0.0".into());
        assert_eq!(doi.to_bids(), serde_json::json!({"DOI": "doi:10.18112/openneuro.ds000030.v1.0.0"}));
        let entry = SourceDataset::Entry(SourceEntry {
            name: Some("UCLA CNP".into()),
            url: Some("https://openneuro.org/datasets/ds000030".into()),
            doi: Some("doi:10.18112/openneuro.ds000030.v1.0.0".into()),
        });
        assert_eq!(
            entry.to_bids(),
            serde_json::json!({"Name": "UCLA CNP", "DOI": "doi:10.18112/openneuro.ds000030.v1.0.0", "URL": "https://openneuro.org/datasets/ds000030"})
        );
    }

    #[test]
    fn split_assignment_reads_both_sides_and_selects_rows() {
        let s = SplitAssignment::parse("participant_id\tsample\nsub-a\tdiscovery\nsub-b\theld-out\nsub-c\tdiscovery\n")
            .unwrap();
        let ids: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        assert_eq!(SplitAssignment::rows(Some(&s), &ids, Sample::Discovery), vec![0, 2]);
        assert_eq!(SplitAssignment::rows(Some(&s), &ids, Sample::HeldOut), vec![1]);
        assert_eq!(SplitAssignment::rows(Some(&s), &ids, Sample::All), vec![0, 1, 2, 3]);
        assert!(SplitAssignment::parse("participant_id\tsample\nsub-a\tneither\n").is_err());
    }

    #[test]
    fn sample_serialises_as_its_name() {
        for s in [Sample::Discovery, Sample::HeldOut, Sample::All] {
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.name()));
        }
    }
}

/// The `[resources.<name>]` of the Slurm job that publishes the output folder (not a stage kind).
pub const PUBLISH_JOB: &str = "publish";

/// Every stage kind's name (`stages::Kind::name`), for the study's `[resources.<kind>]` tables,
/// which `spec` checks without knowing the stages (a test in `stages` keeps the two equal).
pub const STAGE_KINDS: &[&str] = &[
    "simulate",
    "load-table",
    "scores",
    "dataset",
    "split",
    "associate",
    "fdr",
    "differences",
    "replicate",
    "imaging-run",
    "connectome",
    "factors",
    "predict",
    "group",
    "roc",
];

/// What one stage instance asks a cluster for; `None` keeps the executor's default for its kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRequest {
    pub cpus: Option<u32>,
    /// Mebibytes.
    pub memory_mb: Option<u64>,
    /// Seconds of wall time.
    pub time_seconds: Option<u64>,
}

/// A memory size in Slurm's `--mem` notation: a whole number with an optional unit K, M, G or T
/// (binary; no unit means M). Returns mebibytes (at least 1), or `None` if malformed.
pub fn parse_memory_mb(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let number: u64 = digits.parse().ok()?;
    let kib = match unit.to_ascii_uppercase().trim_end_matches('B') {
        "K" => number,
        "" | "M" => number.checked_mul(1 << 10)?,
        "G" => number.checked_mul(1 << 20)?,
        "T" => number.checked_mul(1 << 30)?,
        _ => return None,
    };
    (number > 0).then(|| kib.div_ceil(1 << 10))
}

/// A wall time in Slurm's `--time` notation: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M` or `D-H:M:S`.
/// Returns seconds (more than 0), or `None` if malformed.
pub fn parse_time_seconds(text: &str) -> Option<u64> {
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
    };
    let (days, rest) = match text.trim().split_once('-') {
        Some((d, rest)) => (Some(number(d)?), rest),
        None => (None, text.trim()),
    };
    let parts: Vec<u64> = rest.split(':').map(number).collect::<Option<_>>()?;
    let (h, m, s) = match (days, parts.as_slice()) {
        (None, [m]) => (0, *m, 0),
        (None, [m, s]) => (0, *m, *s),
        (None, [h, m, s]) | (Some(_), [h, m, s]) => (*h, *m, *s),
        (Some(_), [h]) => (*h, 0, 0),
        (Some(_), [h, m]) => (*h, *m, 0),
        _ => return None,
    };
    let total = days
        .unwrap_or(0)
        .checked_mul(86_400)?
        .checked_add(h.checked_mul(3600)?)?
        .checked_add(m.checked_mul(60)?)?
        .checked_add(s)?;
    (total > 0).then_some(total)
}

/// Seconds as Slurm's `D-HH:MM:SS` (what `sbatch --time` reads).
pub fn slurm_time(seconds: u64) -> String {
    let (d, rest) = (seconds / 86_400, seconds % 86_400);
    format!("{d}-{:02}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
}

#[cfg(test)]
mod resource_tests {
    use super::*;

    #[test]
    fn slurm_notations_parse_and_malformed_ones_do_not() {
        assert_eq!(parse_memory_mb("2G"), Some(2048));
        assert_eq!(parse_memory_mb("512"), Some(512));
        assert_eq!(parse_memory_mb("1500K"), Some(2));
        assert_eq!(parse_memory_mb("1t"), Some(1 << 20));
        for bad in ["", "G", "2 G", "2X", "-1G", "0", "1.5G", "99999999999999999999T"] {
            assert_eq!(parse_memory_mb(bad), None, "{bad}");
        }
        assert_eq!(parse_time_seconds("00:10:00"), Some(600));
        assert_eq!(parse_time_seconds("30"), Some(1800));
        assert_eq!(parse_time_seconds("5:30"), Some(330));
        assert_eq!(parse_time_seconds("1-2"), Some(93_600));
        assert_eq!(parse_time_seconds("1-02:03"), Some(93_780));
        assert_eq!(parse_time_seconds("1-02:03:04"), Some(93_784));
        for bad in ["", "10 min", "1:2:3:4", "-1", "a:00", "0", "00:00:00", "1-", "1-2:3:4:5"] {
            assert_eq!(parse_time_seconds(bad), None, "{bad}");
        }
        assert_eq!(slurm_time(93_784), "1-02:03:04");
    }
}

/// A BIDS label (letters and digits only) made of words: the first word as written, each later
/// word capitalised (`["nuclei", "rois"]` → `nucleiRois`, `["amygdala_nuclei"]` →
/// `amygdalaNuclei`); anything not a letter or digit separates words. Output file names use it
/// for the `atlas-` entity, named after the study's region sets.
pub fn bids_label<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    let mut label = String::new();
    for word in words.into_iter().flat_map(|w| w.split(|c: char| !c.is_ascii_alphanumeric())) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            if label.is_empty() {
                label.push(first);
            } else {
                label.push(first.to_ascii_uppercase());
            }
            label.extend(chars);
        }
    }
    label
}

#[cfg(test)]
mod label_tests {
    use super::bids_label;

    #[test]
    fn labels_keep_only_letters_and_digits() {
        assert_eq!(bids_label(["nuclei", "rois"]), "nucleiRois");
        assert_eq!(bids_label(["amygdala_nuclei", "dmn-7"]), "amygdalaNucleiDmn7");
        assert_eq!(bids_label(["Schaefer2018"]), "Schaefer2018");
        assert_eq!(bids_label(["__"]), "");
    }
}
