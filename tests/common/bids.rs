//! BIDS-derivative checks of a published folder: file names parsed into entities (order and
//! presence of `sub`/`ses`/`task`/`run`/`space`/`atlas`/`meas`/`desc`), a JSON sidecar beside
//! every TSV describing every column, BEP017 connectivity sidecars and matrices, and
//! `dataset_description.json`.

use std::path::Path;

/// BIDS 1.9 entity order (with BEP017's `meas`); `seed` (not a BIDS entity) sits after `atlas`.
const ORDER: &[&str] = &[
    "sub",
    "ses",
    "sample",
    "task",
    "acq",
    "ce",
    "trc",
    "stain",
    "rec",
    "dir",
    "run",
    "mod",
    "echo",
    "flip",
    "inv",
    "mt",
    "part",
    "proc",
    "hemi",
    "space",
    "split",
    "recording",
    "chunk",
    "atlas",
    "roi",
    "seed",
    "model",
    "meas",
    "stat",
    "desc",
];

/// A file name split into BIDS entities, suffix and extension.
#[derive(Debug)]
pub struct BidsName {
    pub entities: Vec<(String, String)>,
    pub suffix: String,
    pub extension: String,
}

impl BidsName {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entities.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Parse `sub-01_task-rest_space-X_atlas-Y_timeseries.tsv`; an error says what is wrong.
pub fn parse(name: &str) -> Result<BidsName, String> {
    let (stem, extension) = name.split_once('.').ok_or(format!("{name}: no extension"))?;
    let mut parts: Vec<&str> = stem.split('_').collect();
    let suffix = parts.pop().ok_or(format!("{name}: empty"))?;
    if suffix.contains('-') || suffix.is_empty() || !suffix.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!("{name}: suffix `{suffix}` is not a BIDS suffix"));
    }
    let mut entities = Vec::new();
    let mut last = None;
    for part in parts {
        let (key, value) = part.split_once('-').ok_or(format!("{name}: `{part}` is not KEY-VALUE"))?;
        if value.is_empty() || !value.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("{name}: label `{value}` of `{key}` is not letters and digits"));
        }
        let at = ORDER.iter().position(|k| *k == key).ok_or(format!("{name}: unknown entity `{key}`"))?;
        if last.is_some_and(|l| at <= l) {
            return Err(format!("{name}: entity `{key}` out of BIDS order"));
        }
        last = Some(at);
        entities.push((key.to_string(), value.to_string()));
    }
    Ok(BidsName { entities, suffix: suffix.to_string(), extension: extension.to_string() })
}

/// Every file below `dir`, relative, with `/`.
pub fn files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Names under `sub-*/`: parse, and check `sub`/`ses` against the folders, `task` present,
/// `space`, `atlas` on series and matrices, `meas` on matrices. Returns how many were checked.
pub fn check_subject_names(dir: &Path, space: &str) -> usize {
    let mut checked = 0;
    for rel in files(dir).iter().filter(|f| f.starts_with("sub-")) {
        let parts: Vec<&str> = rel.split('/').collect();
        let name = parse(parts.last().unwrap()).unwrap_or_else(|e| panic!("{e}"));
        let subject = parts[0].strip_prefix("sub-").unwrap();
        assert_eq!(name.get("sub"), Some(subject), "{rel}: sub- entity differs from its folder");
        match parts[1].strip_prefix("ses-") {
            Some(session) => assert_eq!(name.get("ses"), Some(session), "{rel}: ses- differs from its folder"),
            None => assert_eq!(name.get("ses"), None, "{rel}: ses- entity outside a ses- folder"),
        }
        assert!(name.get("task").is_some(), "{rel}: no task-");
        // Motion per volume is not in a space (as fMRIPrep's `desc-confounds_timeseries`).
        let spatial = name.get("desc") != Some("motion");
        let expected = if spatial { Some(space) } else { None };
        assert_eq!(name.get("space"), expected, "{rel}: space-");
        if spatial && ["timeseries", "relmat"].contains(&name.suffix.as_str()) {
            let atlas = name.get("atlas").unwrap_or_else(|| panic!("{rel}: no atlas-"));
            assert!(!["regions", "atlas"].contains(&atlas), "{rel}: atlas-{atlas} is not a name");
        }
        if name.suffix == "relmat" {
            assert!(name.get("meas").is_some(), "{rel}: a relmat without meas-");
        }
        checked += 1;
    }
    checked
}

/// Every TSV has a JSON sidecar beside it describing every column of its header (LongName and
/// Description, never the registry's placeholder). Returns the number of tables checked.
pub fn check_sidecars(dir: &Path) -> usize {
    let mut checked = 0;
    for rel in files(dir).iter().filter(|f| f.ends_with(".tsv")) {
        let text = std::fs::read_to_string(dir.join(rel)).unwrap();
        if text.is_empty() {
            continue; // an excluded run's empty series
        }
        let sidecar = dir.join(rel.replace(".tsv", ".json"));
        let json: serde_json::Value = serde_json::from_slice(
            &std::fs::read(&sidecar).unwrap_or_else(|_| panic!("{rel}: no sidecar {}", sidecar.display())),
        )
        .unwrap();
        let header = text.lines().next().unwrap();
        for column in header.split('\t') {
            if rel.ends_with("_relmat.tsv") {
                continue; // BEP017: the matrix's labels, described by the sidecar as a whole
            }
            let entry = &json[column];
            let description = entry["Description"].as_str().unwrap_or_else(|| panic!("{rel}: `{column}` undescribed"));
            assert!(entry["LongName"].is_string(), "{rel}: `{column}` has no LongName");
            assert!(!description.contains("No description is registered"), "{rel}: `{column}` undescribed");
        }
        checked += 1;
    }
    checked
}

/// The table conventions of every TSV (BIDS): one subject column, `participant_id`, first and
/// holding `sub-<label>`; no empty cell (missing is `n/a`); one boolean spelling (`TRUE`/`FALSE`,
/// and a sidecar's boolean `Levels` say so). Returns the number of cells checked.
pub fn check_table_conventions(dir: &Path) -> usize {
    let mut cells = 0;
    for rel in files(dir).iter().filter(|f| f.ends_with(".tsv")) {
        let text = std::fs::read_to_string(dir.join(rel)).unwrap();
        let Some(header) = text.lines().next() else { continue };
        let header: Vec<&str> = header.split('\t').collect();
        for name in ["subject", "sub", "eid", "id"] {
            assert!(!header.contains(&name), "{rel}: subject column `{name}` instead of participant_id");
        }
        let id = header.iter().position(|h| *h == "participant_id");
        assert!(id.is_none_or(|i| i == 0), "{rel}: participant_id is not the first column");
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(rel.replace(".tsv", ".json"))).unwrap()).unwrap();
        let boolean: Vec<bool> = header
            .iter()
            .map(|h| {
                let levels = json[*h]["Levels"].as_object();
                let keys: Vec<&str> = levels.map(|l| l.keys().map(String::as_str).collect()).unwrap_or_default();
                for spelling in ["1", "0", "yes", "no", "True", "False", "true", "false"] {
                    assert!(!keys.contains(&spelling), "{rel}: `{h}` is a boolean spelled `{spelling}`");
                }
                keys == ["FALSE", "TRUE"] || keys == ["TRUE", "FALSE"]
            })
            .collect();
        for (line, row) in text.lines().enumerate().skip(1) {
            let row: Vec<&str> = row.split('\t').collect();
            assert_eq!(row.len(), header.len(), "{rel}:{}: {} cells for {} columns", line + 1, row.len(), header.len());
            for (c, cell) in row.iter().enumerate() {
                assert!(!cell.is_empty(), "{rel}:{}: `{}` is empty (missing is n/a)", line + 1, header[c]);
                if boolean[c] {
                    assert!(["TRUE", "FALSE", "n/a"].contains(cell), "{rel}:{}: `{}` = {cell}", line + 1, header[c]);
                }
                cells += 1;
            }
            if let Some(i) = id {
                let label =
                    row[i].strip_prefix("sub-").unwrap_or_else(|| panic!("{rel}:{}: id without sub-", line + 1));
                assert!(!label.is_empty() && !label.starts_with("sub-"), "{rel}:{}: id `{}`", line + 1, row[i]);
            }
        }
    }
    cells
}

/// BEP017 matrices: square, header = row names, symmetric, unit diagonal; the sidecars of
/// series and matrices say the TR, the denoising and the censored volumes.
pub fn check_connectivity(dir: &Path) -> usize {
    let mut checked = 0;
    for rel in files(dir).iter().filter(|f| f.ends_with("_relmat.tsv")) {
        let text = std::fs::read_to_string(dir.join(rel)).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(rel.replace(".tsv", ".json"))).unwrap()).unwrap();
        for key in ["Measure", "MeasureDescription", "Weighted", "Directed", "ValidDiagonal", "StorageFormat"] {
            assert!(!json[key].is_null(), "{rel}: sidecar lacks {key}");
        }
        for key in ["RepetitionTime", "SamplingFrequency", "Denoising", "CensoredVolumes", "NumberOfVolumesKept"] {
            assert!(json.get(key).is_some(), "{rel}: sidecar lacks {key}");
        }
        let series = dir.join(rel.replace(&format!("_meas-{}_relmat.tsv", meas(rel)), "_timeseries.json"));
        let series: serde_json::Value = serde_json::from_slice(&std::fs::read(&series).unwrap()).unwrap();
        assert_eq!(series["Denoising"], json["Denoising"], "{rel}: series and matrix disagree on the denoising");
        if text.is_empty() {
            assert!(json["Status"].as_str().unwrap().starts_with("excluded"), "{rel}");
            continue;
        }
        let kept = json["NumberOfVolumesKept"].as_u64().unwrap();
        let volumes = json["NumberOfVolumes"].as_u64().unwrap();
        let dropped =
            json["DummyVolumes"].as_array().unwrap().len() + json["CensoredVolumes"].as_array().unwrap().len();
        assert_eq!(kept + dropped as u64, volumes, "{rel}: kept + dropped ≠ volumes");
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
        let names = &rows[0][1..];
        assert_eq!(rows.len() - 1, names.len(), "{rel}: not square");
        for (i, row) in rows[1..].iter().enumerate() {
            assert_eq!(row[0], names[i], "{rel}: row {i} names another region than its column");
            let value = |j: usize| row[j + 1].parse::<f64>().unwrap();
            assert!((value(i) - 1.0).abs() < 1e-9, "{rel}: diagonal {}", value(i));
            for (j, other) in rows[1..].iter().enumerate() {
                assert_eq!(row[j + 1], other[i + 1], "{rel}: not symmetric at {i},{j}");
            }
        }
        checked += 1;
    }
    checked
}

fn meas(rel: &str) -> &str {
    rel.split('_').find_map(|p| p.strip_prefix("meas-")).unwrap()
}

/// `dataset_description.json`: a BIDS derivative naming neurospec, the study hash namespaced
/// under `GeneratedBy`, `SourceDatasets` listed.
pub fn check_description(dir: &Path) -> serde_json::Value {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("dataset_description.json")).unwrap()).unwrap();
    assert_eq!(json["DatasetType"], "derivative");
    assert_eq!(json["GeneratedBy"][0]["Name"], "neurospec");
    assert!(json["GeneratedBy"][0]["neurospec"]["StudyHash"].as_str().unwrap().starts_with("blake3:"));
    assert!(json.get("StudyHash").is_none(), "no top-level StudyHash");
    assert!(json["SourceDatasets"].is_array());
    json
}

/// All of the above for a study's output folder.
pub fn check_folder(dir: &Path, space: Option<&str>) {
    if let Some(space) = space {
        assert!(check_subject_names(dir, space) > 0, "no subject files");
        assert!(check_connectivity(dir) > 0, "no connectivity matrix");
    }
    assert!(check_sidecars(dir) > 0, "no table");
    assert!(check_table_conventions(dir) > 0, "no table cell");
    check_description(dir);
}
