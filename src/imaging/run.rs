//! One run from image to cleaned region series: region means during decompression, the
//! confound strategy, scrubbing, nilearn-style cleaning, and seed-to-voxel maps. The study's
//! `imaging-run` stage and the `extract` command both call [`process_run`].

use super::connectivity::centred;
use super::denoise::{Censoring, Clean, Confounds, Strategy, clean};
use super::extract::region_means;
use super::regions::Region;
use crate::error::{Error, Result};
use std::path::Path;

/// Fewest volumes a run must keep after scrubbing to be used (studies' `[denoise] min_volumes`
/// and `extract --min-volumes` default to it).
pub const DEFAULT_MIN_VOLUMES: usize = 50;

/// Cleaning settings from the command/study form: a band of (high-pass, low-pass) Hz where 0
/// or ∞ omits a side; confounds are always z-scored before regression (as nilearn).
pub fn clean_spec(detrend: bool, standardise: bool, band: Option<(f64, f64)>, tr: Option<f64>) -> Clean {
    Clean {
        detrend,
        standardise,
        standardise_confounds: true,
        high_pass: band.map(|b| b.0).filter(|v| *v > 0.0),
        low_pass: band.map(|b| b.1).filter(|v| v.is_finite() && *v > 0.0),
        tr,
    }
}

/// Volumes dropped at the start of a run before anything else, because the magnetisation had
/// not yet reached steady state (XCP-D's `--dummy-scans`). Written `"auto"` or a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DummyScans {
    /// The volumes fMRIPrep flags in its `non_steady_state_outlierNN` columns (none when the
    /// confounds file has no such column), as nilearn's `load_confounds` drops them.
    #[default]
    Auto,
    /// Exactly this many first volumes (0: keep every volume).
    Count(usize),
}

impl serde::Serialize for DummyScans {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            DummyScans::Auto => s.serialize_str("auto"),
            DummyScans::Count(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> serde::Deserialize<'de> for DummyScans {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged, expecting = "`\"auto\"` or a number of volumes (0 keeps every volume)")]
        enum Written {
            Count(usize),
            Text(String),
        }
        match Written::deserialize(d)? {
            Written::Count(n) => Ok(DummyScans::Count(n)),
            Written::Text(t) if t == "auto" => Ok(DummyScans::Auto),
            Written::Text(t) => Err(serde::de::Error::custom(format!(
                "`{t}`: write \"auto\" or a number of volumes (0 keeps every volume)"
            ))),
        }
    }
}

impl schemars::JsonSchema for DummyScans {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DummyScans".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "\"auto\" (fMRIPrep's non_steady_state_outlierNN columns) or a number of first volumes",
            "anyOf": [{"const": "auto"}, {"type": "integer", "minimum": 0}]
        })
    }
}

impl DummyScans {
    /// The default: fMRIPrep's flags.
    pub fn is_auto(&self) -> bool {
        *self == DummyScans::Auto
    }

    /// Parse the command-line form: `auto` or a count.
    pub fn parse(text: &str) -> std::result::Result<DummyScans, String> {
        if text.eq_ignore_ascii_case("auto") {
            return Ok(DummyScans::Auto);
        }
        text.parse().map(DummyScans::Count).map_err(|_| format!("`{text}`: write auto or a number of volumes"))
    }
}

/// How one run is cleaned.
pub struct RunSettings<'a> {
    pub strategy: Option<&'a str>,
    pub confounds: Option<&'a Path>,
    /// Volumes censored for motion (FD, std DVARS, fMRIPrep's outlier columns, segment rule).
    pub censoring: Censoring,
    /// Non-steady-state volumes dropped first.
    pub dummy_scans: DummyScans,
    /// (high-pass, low-pass) in Hz; 0 or ∞ omits one side.
    pub band: Option<(f64, f64)>,
    /// Repetition time (s); default from the image header.
    pub tr: Option<f64>,
    pub detrend: bool,
    pub standardise: bool,
    /// Fewer volumes left after dropping and censoring → the run is excluded.
    pub min_volumes: usize,
    /// Less clean data than this (s) → the run is excluded.
    pub min_clean_seconds: Option<f64>,
}

/// What happened to a run's volumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeCounts {
    /// Volumes in the image.
    pub volumes: usize,
    /// Non-steady-state volumes dropped.
    pub dummy_scans: usize,
    /// Further volumes censored for motion.
    pub censored: usize,
    /// Volumes used.
    pub kept: usize,
}

/// Each volume's framewise displacement and fate, for quality control.
#[derive(Debug, Clone, PartialEq)]
pub struct Motion {
    /// Framewise displacement per volume (mm; the first volume's `n/a` read as 0), when the
    /// confounds file has it.
    pub fd: Option<Vec<f64>>,
    /// Per volume: dropped as non-steady-state.
    pub dummy: Vec<bool>,
    /// Per volume: censored for motion (and not non-steady-state).
    pub censored: Vec<bool>,
}

/// A cleaned run.
pub struct RunOutput {
    pub series: super::extract::TimeSeries,
    pub counts: VolumeCounts,
    /// Volumes kept after dropping and censoring (None: all).
    pub keep: Option<Vec<usize>>,
    /// The confound matrix used (T × n_confounds, row-major).
    pub confounds: Vec<f64>,
    pub n_confounds: usize,
    pub motion: Motion,
    /// Names of the confound columns regressed out (the columns of `confounds`).
    pub regressors: Vec<String>,
    /// Non-steady-state volumes dropped (0-based indices into the image's volumes).
    pub dummy_volumes: Vec<usize>,
    /// Volumes censored for motion (0-based indices into the image's volumes).
    pub censored_volumes: Vec<usize>,
    /// Repetition time used (s): the study's, else the image header's.
    pub tr: Option<f64>,
}

/// A run cleaned, or excluded with its reason.
pub enum Processed {
    Cleaned(RunOutput),
    Excluded { counts: VolumeCounts, reason: String, motion: Motion },
}

/// A run's volumes to drop: (non-steady-state, censored for motion), true = dropped. Motion
/// outliers and the segment rule are computed over the whole run (as nilearn does); the
/// non-steady-state volumes are then dropped as well.
pub fn dropped_volumes(
    confounds: Option<&Confounds>,
    dummy: DummyScans,
    censoring: &Censoring,
    t: usize,
    bold: &Path,
) -> Result<(Vec<bool>, Vec<bool>)> {
    let dummies = dummy_volumes(dummy, confounds, t, bold)?;
    let censored = match confounds {
        Some(c) if censoring.is_active() => censoring.censored(c)?,
        _ => vec![false; t],
    };
    Ok((dummies, censored))
}

/// The volumes to drop as non-steady-state (true = dropped).
fn dummy_volumes(dummy: DummyScans, confounds: Option<&Confounds>, t: usize, bold: &Path) -> Result<Vec<bool>> {
    match (dummy, confounds) {
        (DummyScans::Auto, Some(c)) => c.flagged("non_steady_state_outlier"),
        (DummyScans::Auto, None) => Ok(vec![false; t]),
        (DummyScans::Count(n), _) if n >= t => Err(Error::data(format!(
            "dummy_scans = {n} but {} has {t} volumes; nothing would be left — lower dummy_scans",
            bold.display()
        ))),
        (DummyScans::Count(n), _) => Ok((0..t).map(|i| i < n).collect()),
    }
}

/// From an opened image and regions on its grid to cleaned region series. A region whose
/// series is constant is an error naming it. A run left with fewer than `min_volumes` volumes
/// (or less than `min_clean_seconds` of data) after dropping non-steady-state volumes and
/// censoring is [`Processed::Excluded`], with the counts and the reason.
///
/// Dropping and censoring follow nilearn's `load_confounds` + `sample_mask`: motion outliers
/// (FD, std DVARS, fMRIPrep's `motion_outlierNN`) and the segment rule are computed over the
/// whole run; the non-steady-state volumes are then added to the censored set.
pub fn process_run(
    bold: &Path,
    reader: super::nifti::VolumeReader,
    grid: &super::regions::Grid,
    regions: &[Region],
    settings: &RunSettings<'_>,
) -> Result<Processed> {
    let tr_header = reader.header.tr_seconds();
    let raw = region_means(reader, grid, regions)?;
    let t = raw.volumes;
    let strategy = settings.strategy.map(Strategy::parse).transpose()?.filter(|s| *s != Strategy::None);
    let confounds = settings.confounds.map(Confounds::read).transpose()?;
    let censoring = match strategy.as_ref().and_then(Strategy::censoring) {
        Some(preset) if !settings.censoring.is_active() => preset,
        _ => settings.censoring,
    };
    if strategy.is_some() && confounds.is_none() {
        return Err(Error::data("a confound strategy needs a confounds file"));
    }
    if censoring.is_active() && confounds.is_none() {
        return Err(Error::data(
            "censoring needs a confounds file (framewise_displacement, std_dvars, motion_outlierNN)",
        ));
    }
    if let Some(c) = &confounds
        && c.rows() != t
    {
        return Err(Error::data(format!(
            "{} has {} rows but {} has {t} volumes; they must describe the same run",
            c.path,
            c.rows(),
            bold.display()
        )));
    }
    let columns = match (&strategy, &confounds) {
        (Some(s), Some(c)) => s.columns(c)?,
        _ => Vec::new(),
    };
    let matrix = match &confounds {
        Some(c) if !columns.is_empty() => c.matrix(&columns)?,
        _ => Vec::new(),
    };
    let (dummy, censored) = dropped_volumes(confounds.as_ref(), settings.dummy_scans, &censoring, t, bold)?;
    let counts = VolumeCounts {
        volumes: t,
        dummy_scans: dummy.iter().filter(|d| **d).count(),
        censored: (0..t).filter(|&i| censored[i] && !dummy[i]).count(),
        kept: (0..t).filter(|&i| !censored[i] && !dummy[i]).count(),
    };
    let keep: Option<Vec<usize>> = (censoring.is_active() || counts.dummy_scans > 0)
        .then(|| (0..t).filter(|&i| !censored[i] && !dummy[i]).collect());
    let motion = Motion {
        fd: confounds.as_ref().and_then(|c| c.framewise_displacement().ok()),
        censored: (0..t).map(|i| censored[i] && !dummy[i]).collect(),
        dummy,
    };
    let tr = settings.tr.or(tr_header);
    let what = format!(
        "after dropping {} non-steady-state and censoring {} of {} volumes",
        counts.dummy_scans, counts.censored, counts.volumes
    );
    if counts.kept < settings.min_volumes.max(1) {
        let reason = format!("fewer than {} volumes ({}) {what}", settings.min_volumes.max(1), counts.kept);
        return Ok(Processed::Excluded { counts, reason, motion });
    }
    if let Some(seconds) = settings.min_clean_seconds {
        let tr = tr.ok_or_else(|| {
            Error::data(format!("{}: min_clean_seconds needs the repetition time (none in the header)", bold.display()))
        })?;
        if (counts.kept as f64) * tr < seconds {
            let reason = format!("less than {seconds} s of clean data ({} s) {what}", counts.kept as f64 * tr);
            return Ok(Processed::Excluded { counts, reason, motion });
        }
    }
    let cleaning =
        strategy.is_some() || settings.band.is_some() || keep.is_some() || settings.detrend || settings.standardise;
    let series = if cleaning {
        let spec = clean_spec(settings.detrend, settings.standardise, settings.band, tr);
        clean(&raw, &matrix, columns.len(), keep.as_deref(), &spec)?
    } else {
        raw
    };
    for r in 0..series.regions() {
        let column = series.column(r);
        let first = column[0];
        if column.iter().all(|v| *v == first) {
            return Err(Error::data(format!(
                "{}: region `{}` has a constant time series ({} volumes); it cannot be correlated — \
                 check the atlas alignment or drop the region from the label table",
                bold.display(),
                series.names[r],
                series.volumes
            )));
        }
    }
    let dummy_volumes = (0..t).filter(|&i| motion.dummy[i]).collect();
    let censored_volumes = (0..t).filter(|&i| motion.censored[i]).collect();
    Ok(Processed::Cleaned(RunOutput {
        series,
        counts,
        keep,
        n_confounds: columns.len(),
        confounds: matrix,
        regressors: columns,
        dummy_volumes,
        censored_volumes,
        tr,
        motion,
    }))
}

/// Fisher-z correlation of each seed's cleaned series with the series of each voxel in
/// `voxels` (flat grid indices), cleaned the same way (same confounds, scrubbing and filter;
/// always standardised). One vector per seed, in `voxels` order.
#[allow(clippy::too_many_arguments)]
pub fn seed_map_values(
    bold: &Path,
    voxels: &[usize],
    series: &super::extract::TimeSeries,
    seeds: &[usize],
    confounds: &[f64],
    n_confounds: usize,
    keep: Option<&[usize]>,
    clean_settings: &Clean,
) -> Result<Vec<Vec<f64>>> {
    let mut reader = super::nifti::VolumeReader::open(bold)?;
    let mut volume = vec![0.0; reader.header.volume_len()];
    let t = reader.header.volumes();
    let mut values = Vec::with_capacity(t * voxels.len());
    while reader.next_volume(&mut volume)? {
        values.extend(voxels.iter().map(|&v| volume[v]));
    }
    let raw = super::extract::TimeSeries {
        names: voxels.iter().map(|v| v.to_string()).collect(),
        values,
        volumes: t,
        tr: reader.header.tr_seconds(),
    };
    let spec = Clean { standardise: true, ..clean_settings.clone() };
    let cleaned = clean(&raw, confounds, n_confounds, keep, &spec)?;
    let n = cleaned.volumes;
    let v_count = voxels.len();
    Ok(seeds
        .iter()
        .map(|&s| {
            let seed = centred(&series.column(s), n, 1, true);
            (0..v_count)
                .map(|j| {
                    let dot: f64 = seed.iter().enumerate().map(|(i, s)| s * cleaned.values[i * v_count + j]).sum();
                    (dot / (n as f64 - 1.0)).clamp(-1.0, 1.0).atanh()
                })
                .collect()
        })
        .collect())
}

/// The connectivity measure a BEP017 matrix sidecar names.
pub struct MatrixMeasure<'a> {
    /// BEP017 `Measure` (e.g. "Pearson correlation").
    pub name: &'a str,
    /// BEP017 `MeasureDescription`.
    pub description: &'a str,
    /// Whether the diagonal holds a value (false after a Fisher z transform sets it to 0).
    pub valid_diagonal: bool,
}

impl MatrixMeasure<'static> {
    /// The Pearson correlation of the study's runs and `extract --connectivity pearson`.
    pub const PEARSON: MatrixMeasure<'static> = MatrixMeasure {
        name: "Pearson correlation",
        description: "Pearson correlation coefficient of two regions' denoised mean BOLD series over the kept volumes",
        valid_diagonal: true,
    };
}

/// What the JSON sidecars of a run's series and matrix record (the study's published runs and
/// `neurospec extract`'s files alike): repetition time, the denoising, the non-steady-state and
/// censored volumes (0-based indices into the image) and how many were kept.
pub struct Sidecar<'a> {
    pub settings: &'a RunSettings<'a>,
    /// Repetition time (s), when known.
    pub tr: Option<f64>,
    pub counts: &'a VolumeCounts,
    /// `included`, or `excluded: REASON`.
    pub status: &'a str,
}

impl Sidecar<'_> {
    /// Keys shared by both sidecars (BIDS names; `Denoising` is neurospec's own block).
    fn common(&self, output: Option<&RunOutput>) -> serde_json::Map<String, serde_json::Value> {
        let s = self.settings;
        let mut map = serde_json::Map::new();
        let mut put = |k: &str, v: serde_json::Value| {
            map.insert(k.to_string(), v);
        };
        put("RepetitionTime", self.tr.into());
        put("SamplingFrequency", self.tr.map(|tr| 1.0 / tr).into());
        put(
            "Denoising",
            serde_json::json!({
                "Strategy": s.strategy.unwrap_or("none"),
                "Regressors": output.map(|o| o.regressors.clone()).unwrap_or_default(),
                "HighPass": s.band.map(|b| b.0).filter(|v| *v > 0.0),
                "LowPass": s.band.map(|b| b.1).filter(|v| v.is_finite() && *v > 0.0),
                "Detrend": s.detrend,
                "Standardize": s.standardise,
                "DummyScans": serde_json::to_value(s.dummy_scans).unwrap_or(serde_json::Value::Null),
                "FDThreshold": s.censoring.fd_threshold,
                "StdDVARSThreshold": s.censoring.std_dvars_threshold,
                "MotionOutliers": s.censoring.motion_outliers,
                "MinSegment": s.censoring.min_segment,
            }),
        );
        put("NumberOfVolumes", self.counts.volumes.into());
        put("DummyVolumes", output.map(|o| o.dummy_volumes.clone()).unwrap_or_default().into());
        put("CensoredVolumes", output.map(|o| o.censored_volumes.clone()).unwrap_or_default().into());
        put("NumberOfVolumesKept", self.counts.kept.into());
        put("Status", self.status.into());
        map
    }

    /// The series' sidecar: the common keys and a description of each region's column.
    pub fn series(&self, output: Option<&RunOutput>, names: &[String]) -> Vec<u8> {
        let mut map = self.common(output);
        for name in names {
            map.insert(
                name.clone(),
                serde_json::json!({
                    "LongName": name,
                    "Description": format!("Mean BOLD signal of region `{name}` in each kept volume, after denoising"),
                    "Units": if self.settings.standardise { "z" } else { "arbitrary" },
                }),
            );
        }
        serde_json::to_vec_pretty(&serde_json::Value::Object(map)).expect("json")
    }

    /// The matrix's sidecar: the common keys and BEP017's.
    pub fn relmat(&self, output: Option<&RunOutput>, measure: &MatrixMeasure<'_>) -> Vec<u8> {
        let mut map = self.common(output);
        let bep017 = serde_json::json!({
            "Measure": measure.name,
            "MeasureDescription": measure.description,
            "Weighted": true,
            "Directed": false,
            "ValidDiagonal": measure.valid_diagonal,
            "StorageFormat": "Full",
        });
        if let serde_json::Value::Object(keys) = bep017 {
            map.extend(keys);
        }
        serde_json::to_vec_pretty(&serde_json::Value::Object(map)).expect("json")
    }
}
