//! Methods text generated from the published folder: one paragraph per part of the study, with
//! the numbers as they were used (N at each step, thresholds, permutations, seeds, versions) read
//! from the provenance records' parameters and the result tables, and the references each method
//! rests on. Written into the report and to `methods.md`.

use super::Section;
use super::charts::esc;
use super::folder::Folder;
use super::study::flow_counts;
use serde_json::Value;
use std::fmt::Write as _;

pub struct Paragraph {
    pub title: &'static str,
    pub text: String,
    /// Keys into [`REFERENCES`].
    pub cites: Vec<&'static str>,
}

pub const REFERENCES: [(&str, &str); 18] = [
    (
        "freedman-lane",
        "Freedman D, Lane D (1983). A nonstochastic interpretation of reported significance levels. J Bus Econ Stat 1:292–298.",
    ),
    (
        "manly",
        "Manly BFJ (1986). Randomization and regression methods for testing for associations with geographical, environmental and biological distributions. Res Popul Ecol 28:201–218.",
    ),
    (
        "winkler",
        "Winkler AM, Ridgway GR, Webster MA, Smith SM, Nichols TE (2014). Permutation inference for the general linear model. NeuroImage 92:381–397.",
    ),
    (
        "bh",
        "Benjamini Y, Hochberg Y (1995). Controlling the false discovery rate: a practical and powerful approach to multiple testing. J R Stat Soc B 57:289–300.",
    ),
    ("efron", "Efron B, Tibshirani RJ (1993). An Introduction to the Bootstrap. Chapman & Hall."),
    (
        "horn",
        "Horn JL (1965). A rationale and test for the number of factors in factor analysis. Psychometrika 30:179–185.",
    ),
    (
        "velicer",
        "Velicer WF (1976). Determining the number of components from the matrix of partial correlations. Psychometrika 41:321–327.",
    ),
    (
        "shen",
        "Shen X, Finn ES, Scheinost D, et al. (2017). Using connectome-based predictive modeling to predict individual behavior from brain connectivity. Nat Protoc 12:506–518.",
    ),
    (
        "delong",
        "DeLong ER, DeLong DM, Clarke-Pearson DL (1988). Comparing the areas under two or more correlated receiver operating characteristic curves. Biometrics 44:837–845.",
    ),
    (
        "nichols",
        "Nichols TE, Holmes AP (2002). Nonparametric permutation tests for functional neuroimaging: a primer with examples. Hum Brain Mapp 15:1–25.",
    ),
    (
        "power",
        "Power JD, Barnes KA, Snyder AZ, Schlaggar BL, Petersen SE (2012). Spurious but systematic correlations in functional connectivity MRI networks arise from subject motion. NeuroImage 59:2142–2154.",
    ),
    (
        "satterthwaite",
        "Satterthwaite TD, Elliott MA, Gerraty RT, et al. (2013). An improved framework for confound regression and filtering for control of motion artifact. NeuroImage 64:240–256.",
    ),
    (
        "nilearn",
        "Abraham A, Pedregosa F, Eickenberg M, et al. (2014). Machine learning for neuroimaging with scikit-learn. Front Neuroinform 8:14.",
    ),
    (
        "winkler-blocks",
        "Winkler AM, Webster MA, Vidaurre D, Nichols TE, Smith SM (2015). Multi-level block permutation. NeuroImage 123:253–268.",
    ),
    (
        "tfce",
        "Smith SM, Nichols TE (2009). Threshold-free cluster enhancement: addressing problems of smoothing, threshold dependence and localisation in cluster inference. NeuroImage 44:83–98.",
    ),
    (
        "nbs",
        "Zalesky A, Fornito A, Bullmore ET (2010). Network-based statistic: identifying differences in brain networks. NeuroImage 53:1197–1207.",
    ),
    (
        "esteban",
        "Esteban O, Markiewicz CJ, Blair RW, et al. (2019). fMRIPrep: a robust preprocessing pipeline for functional MRI. Nat Methods 16:111–116.",
    ),
    (
        "ciric",
        "Ciric R, Wolf DH, Power JD, et al. (2017). Benchmarking of participant-level confound regression strategies for the control of motion artifact in studies of functional connectivity. NeuroImage 154:174–187.",
    ),
];

fn n(v: &Value) -> String {
    match v {
        Value::Number(x) => x.to_string(),
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        other => other.to_string(),
    }
}

fn imaging(folder: &Folder) -> Option<Paragraph> {
    let p = folder.params_of("imaging-run")?;
    let d = &p["denoise"];
    let runs = folder.tsv("imaging_runs.tsv");
    let (total, included) = runs
        .as_ref()
        .map_or((0, 0), |t| (t.rows.len(), (0..t.rows.len()).filter(|&r| t.text(r, "status") == "included").count()));
    // Non-steady-state volumes are mentioned when some were dropped (the run table counts them).
    let dropped: f64 = runs.as_ref().map_or(0.0, |t| {
        if t.header.iter().any(|h| h == "dummy_scans") {
            (0..t.rows.len()).map(|r| t.value(r, "dummy_scans")).filter(|v| v.is_finite()).sum()
        } else {
            0.0
        }
    });
    let dummies = match &d["dummy_scans"] {
        _ if dropped == 0.0 => String::new(),
        Value::Number(count) => format!(" The first {count} volumes of each run (dummy scans) were dropped first."),
        _ => format!(
            " The {dropped} volumes fMRIPrep flagged as non-steady-state (non_steady_state_outlier columns) were dropped \
             first."
        ),
    };
    let mut text = format!(
        "Region time series were extracted from {total} preprocessed BOLD runs ({included} included).{dummies} Each run \
         was denoised with the {} confound strategy",
        n(&d["strategy"])
    );
    if !d["std_dvars_threshold"].is_null() || d["motion_outliers"].as_bool() == Some(true) {
        let _ = write!(
            text,
            ", volumes were also censored{}{}",
            if d["std_dvars_threshold"].is_null() {
                String::new()
            } else {
                format!(" at standardised DVARS above {}", n(&d["std_dvars_threshold"]))
            },
            if d["motion_outliers"].as_bool() == Some(true) { " where fMRIPrep flagged motion outliers" } else { "" }
        );
    }
    if !d["min_clean_seconds"].is_null() {
        let _ = write!(text, ", runs with less than {} s of clean data were excluded", n(&d["min_clean_seconds"]));
    }
    if !d["fd_threshold"].is_null() {
        let _ = write!(
            text,
            ", volumes with framewise displacement above {} mm were scrubbed (segments shorter than {} volumes dropped; \
             runs with fewer than {} volumes left were excluded)",
            n(&d["fd_threshold"]),
            n(&d["min_segment"]),
            n(&d["min_volumes"])
        );
    }
    if let Some(band) = d["band"].as_array() {
        let _ = write!(text, ", band-pass filtered to {}–{} Hz", n(&band[0]), n(&band[1]));
    }
    let _ = write!(
        text,
        "{}{}, following nilearn's signal.clean semantics. Connectivity was the Pearson correlation of region pairs{} ({} edges).",
        if d["detrend"] == true { ", linearly detrended" } else { "" },
        if d["standardize"] == true { " and z-scored" } else { "" },
        if p["fisher_z"] == true { ", Fisher z-transformed" } else { "" },
        p["edges"].as_array().map_or(0, Vec::len),
    );
    if let Some(c) = folder.params_of("connectome") {
        let averaged = c["runs"].as_object().map_or(0, |m| m.len());
        if averaged > 0 {
            let _ = write!(
                text,
                " {averaged} subjects{} had several usable runs; their edges were averaged as the mean Fisher z over runs.",
                if c["sessions"].as_array().is_some_and(|s| !s.is_empty()) { " (or sessions)" } else { "" }
            );
        }
    }
    let _ = write!(
        text,
        " Confounds were read from fMRIPrep's confounds files (column names of every fMRIPrep generation{}).",
        match n(&d["strategy"]).to_lowercase().as_str() {
            preset @ ("simple" | "scrubbing" | "compcor") => format!(
                "; the `{preset}` preset selects its columns{} as nilearn's load_confounds_strategy does",
                if preset == "scrubbing" { " and its censoring" } else { "" }
            ),
            _ => String::new(),
        }
    );
    let mut cites = vec!["esteban", "nilearn", "power", "satterthwaite"];
    if !folder.published("sub-", "_desc-motion_timeseries.tsv").is_empty() {
        text.push_str(
            " Motion was summarised per run as the mean framewise displacement after the non-steady-state volumes; QC-FC \
             (the correlation across subjects of each edge with mean FD) and its dependence on the distance between region \
             centroids are reported as a benchmark of the denoising.",
        );
        cites.push("ciric");
    }
    Some(Paragraph { title: "Imaging", text, cites })
}

fn sample(folder: &Folder) -> Option<Paragraph> {
    let flow = flow_counts(folder)?;
    let mut text = format!("Of {} subjects available", flow.available.map_or("?".into(), |n| n.to_string()));
    if flow.exclusions.is_empty() {
        text.push_str(", none was excluded");
    } else {
        let parts: Vec<String> = flow
            .exclusions
            .iter()
            .map(|super::study::Exclusion { reason, subjects: k, columns }| {
                let reason = reason.replace('_', " ");
                if columns.is_empty() {
                    format!("{k} for {reason}")
                } else {
                    format!("{k} for {reason} ({})", super::study::column_summary(columns, 80))
                }
            })
            .collect();
        let _ = write!(
            text,
            ", {} were excluded (each subject counted once, under the first reason found)",
            parts.join("; ")
        );
    }
    let _ = write!(text, ", leaving {}.", flow.included.map_or("?".into(), |n| n.to_string()));
    if let Some(d) = folder.params_of("dataset") {
        if let Some(cc) = d["complete_cases"].as_array().filter(|c| !c.is_empty()) {
            let names: Vec<String> = cc.iter().take(6).map(n).collect();
            let more = if cc.len() > names.len() { format!(", … ({} columns)", cc.len()) } else { String::new() };
            let _ = write!(text, " Complete cases were required on {}{more}.", names.join(", "));
        }
        for rule in d["iqr"].as_array().into_iter().flatten() {
            let _ = write!(
                text,
                " Values more than {} interquartile ranges beyond the quartiles of any of {} columns excluded the subject.",
                n(&rule[1]),
                rule[0].as_array().map_or(0, Vec::len)
            );
        }
    }
    if !flow.samples.is_empty() {
        let parts: Vec<String> = flow.samples.iter().map(|(s, k)| format!("{k} {s}")).collect();
        let how = folder.params_of("split").map_or(String::new(), |p| {
            let seed = if p["seed"].is_null() { String::new() } else { format!(", seed {}", n(&p["seed"])) };
            format!(" (method {}{seed})", n(&p["method"]))
        });
        let _ = write!(
            text,
            " They were split into {}{how}; everything fitted was fitted on discovery only.",
            parts.join(" and ")
        );
    }
    Some(Paragraph { title: "Sample", text, cites: Vec::new() })
}

fn association(folder: &Folder) -> Option<Paragraph> {
    let stages = folder.stages_of("associate");
    let p = &stages.first()?.params;
    let fdr = folder.params_of("fdr");
    let scheme = n(&p["permutation_scheme"]);
    let features = p["features"].as_array().map_or(0, Vec::len);
    let covariates: Vec<String> = p["covariates"].as_array().map_or(Vec::new(), |c| c.iter().map(term).collect());
    let mut text = format!(
        "Each of {features} features was related to each outcome by ordinary least squares with z-scored variables \
         (standardised β) and covariates {}, in {} stage instances. P values came from {} label permutations ({} scheme, \
         seed {}), with the maximum statistic over features for family-wise error; {}% confidence intervals from {} \
         bootstrap resamples (seed {}).",
        if covariates.is_empty() { "none".into() } else { covariates.join(", ") },
        stages.len(),
        n(&p["permutations"]),
        scheme,
        n(&p["permutation_seed"]),
        p["ci_level"].as_f64().map_or("?".into(), |c| format!("{}", 100.0 * c)),
        n(&p["bootstrap"]),
        n(&p["bootstrap_seed"]),
    );
    if let Some(regions) = p["region_means"].as_array().filter(|r| !r.is_empty()) {
        let _ = write!(
            text,
            " Connectivity edges were also averaged per region: for each of {} regions, the mean β over its edges was \
             tested against the same permutations (two-sided), with the maximum over regions for family-wise error.",
            regions.len()
        );
    }
    if let Some(d) = folder.params_of("differences") {
        let pairs: Vec<String> = d["pairs"]
            .as_array()
            .map_or(Vec::new(), |a| a.iter().map(|pair| format!("{} − {}", n(&pair[0]), n(&pair[1]))).collect());
        let _ = write!(
            text,
            " Differences between outcomes ({}) were estimated per feature as β_a − β_b with percentile intervals from \
             the same bootstrap resamples, paired (each resample draws the same subjects for both outcomes); these \
             intervals are not corrected for multiple comparisons.",
            pairs.join(", ")
        );
    }
    if let Some(f) = fdr {
        let families: Vec<String> = f["families"].as_array().map_or(Vec::new(), |a| a.iter().map(n).collect());
        let _ = write!(
            text,
            " The false discovery rate was controlled at q = {} (Benjamini–Hochberg) within each {} family.",
            n(&f["q"]),
            families.join(" × ")
        );
    }
    if let Some(r) = folder.params_of("replicate") {
        let _ = write!(
            text,
            " Discovery findings replicated when the held-out β had the same sign and p < {} ({} correction).",
            n(&r["alpha"]),
            n(&r["correction"])
        );
    }
    let first = if scheme.to_lowercase().contains("manly") { "manly" } else { "freedman-lane" };
    let mut cites = vec![first, "winkler", "bh", "efron"];
    if blocks(&mut text, &p["blocks"]) {
        cites.push("winkler-blocks");
    }
    categorical(folder, &mut text, "association/");
    Some(Paragraph { title: "Association", text, cites })
}

/// Exchangeability blocks of a permutation test (`blocks` parameter: [column, within|whole]),
/// appended to `text`; whether there were any.
fn blocks(text: &mut String, blocks: &Value) -> bool {
    let Some([column, mode]) = blocks.as_array().map(Vec::as_slice) else { return false };
    let how = if mode == "whole" {
        "whole blocks (of equal size) were exchanged as units"
    } else {
        "subjects were permuted only within their block"
    };
    let _ = write!(text, " Permutations respected exchangeability blocks defined by `{}`: {how}.", n(column));
    true
}

/// Categorical covariates `C(column)`: treatment coding with the reference level and the number
/// of subjects per level, from the published `*_covariate_levels.tsv` files under `prefix`.
fn categorical(folder: &Folder, text: &mut String, prefix: &str) {
    let Some(file) = folder.published(prefix, "_covariate_levels.tsv").into_iter().next() else { return };
    let Some(t) = folder.tsv(&file) else { return };
    let mut terms: Vec<String> = Vec::new();
    for r in 0..t.rows.len() {
        let term = t.text(r, "term").to_string();
        if terms.contains(&term) {
            continue;
        }
        let rows: Vec<usize> = (0..t.rows.len()).filter(|&q| t.text(q, "term") == term).collect();
        let reference = rows
            .iter()
            .find(|&&q| t.text(q, "reference") == crate::tables::boolean(true))
            .map_or("?", |&q| t.text(q, "level"));
        let levels: Vec<String> =
            rows.iter().map(|&q| format!("{} (n = {})", t.text(q, "level"), t.text(q, "subjects"))).collect();
        let _ = write!(
            text,
            " The categorical covariate {term} was treatment-coded (one indicator per level, reference level {reference}; \
             levels in the {} sample: {}).",
            t.text(rows[0], "sample"),
            levels.join(", ")
        );
        terms.push(term);
    }
}

/// A covariate term as written in a formula: `age`, `age²`, `age×sex`.
fn term(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().map(term).collect::<Vec<_>>().join("×"),
        Value::Object(map) => map
            .iter()
            .map(|(kind, inner)| match kind.as_str() {
                "Square" => format!("{}²", term(inner)),
                _ => term(inner),
            })
            .collect::<Vec<_>>()
            .join(":"),
        other => other.to_string(),
    }
}

fn factors(folder: &Folder) -> Option<Paragraph> {
    let fit = folder.json("factors/fit.json")?;
    let pa = &fit["parallel_analysis"];
    let text = format!(
        "An exploratory factor analysis of {} items was fitted on the {} sample (n = {}) by {} extraction with {} rotation. \
         Horn's parallel analysis ({} simulated data sets, 95th percentile, seed {}) suggested {} factors and Velicer's MAP {}; \
         {} factors were kept. Factor scores ({} method) were computed for everyone with the fit sample's means, SDs and weights.",
        fit["items"].as_array().map_or(0, Vec::len),
        n(&fit["fit_sample"]),
        n(&fit["n"]),
        n(&fit["method"]),
        n(&fit["rotation"]),
        n(&pa["simulations"]),
        n(&pa["seed"]),
        n(&pa["factors"]),
        n(&fit["velicer_map"]["factors"]),
        n(&fit["factors"]),
        n(&fit["scores"]),
    );
    Some(Paragraph { title: "Factor analysis", text, cites: vec!["horn", "velicer"] })
}

fn prediction(folder: &Folder) -> Option<Paragraph> {
    let stages = folder.stages_of("predict");
    let p = &stages.first()?.params;
    let mut models = Vec::new();
    if p["cpm"] == true {
        models.push(format!("connectome-based predictive modelling (edge selection p < {})", n(&p["cpm_p"])));
    }
    if p["ridge"] == true {
        models.push(format!("ridge regression (α from {})", n(&p["alphas"])));
    }
    let text = format!(
        "{} outcome(s) were predicted from {} features by {}, evaluated by {}-fold cross-validation repeated {} times within \
         discovery (fold seed {}){}; confounds ({}) were regressed out inside folds. Significance came from {} permutations \
         (seed {}). The final models, trained on all of discovery, were applied once to the held-out sample.",
        stages.len(),
        p["features"].as_array().map_or(0, Vec::len),
        models.join(" and "),
        n(&p["folds"]),
        n(&p["repeats"]),
        n(&p["fold_seed"]),
        if p["group_column"].is_null() {
            String::new()
        } else {
            format!(", keeping each {} in one fold", n(&p["group_column"]))
        },
        p["confounds"].as_array().map_or("none".into(), |c| c.iter().map(n).collect::<Vec<_>>().join(", ")),
        n(&p["permutations"]),
        n(&p["permutation_seed"]),
    );
    let mut text = text;
    let mut cites = vec!["shen"];
    if blocks(&mut text, &p["blocks"]) {
        cites.push("winkler-blocks");
    }
    categorical(folder, &mut text, "prediction/");
    Some(Paragraph { title: "Prediction", text, cites })
}

fn group(folder: &Folder) -> Option<Paragraph> {
    let stages = folder.stages_of("group");
    if stages.is_empty() {
        return None;
    }
    let parts: Vec<String> = stages
        .iter()
        .map(|r| {
            let p = &r.params;
            let voxel = p["level"].get("Voxel").is_some() || p["level"].to_string().contains("oxel");
            format!(
                "{} ({} design, {}, {} permutations, seed {}{})",
                n(&p["name"]),
                n(&p["design"]),
                if voxel { "voxelwise" } else { "on connectome edges" },
                n(&p["permutations"]),
                n(&p["seed"]),
                if voxel { format!(", cluster-forming p = {}", n(&p["cluster_p"])) } else { String::new() },
            )
        })
        .collect();
    let mut text = format!(
        "Group analyses used the general linear model with permutation inference (sign-flipping for paired designs): {}. \
         Family-wise error was controlled by the maximum statistic (voxel level) and by the maximum cluster extent.",
        parts.join("; ")
    );
    let mut cites = vec!["nichols", "winkler"];
    for r in &stages {
        let p = &r.params;
        if let Some(t) = p["tfce"].as_object() {
            let _ = write!(
                text,
                " In {}, threshold-free cluster enhancement (E = {}, H = {}, {} steps{}) gave a TFCE map whose \
                 family-wise p came from the maximum TFCE over the same permutations.",
                n(&p["name"]),
                n(&t.get("e").cloned().unwrap_or_default()),
                n(&t.get("h").cloned().unwrap_or_default()),
                n(&t.get("steps").cloned().unwrap_or_default()),
                t.get("connectivity").map_or(String::new(), |c| format!(", {}-connectivity", n(c))),
            );
            if !cites.contains(&"tfce") {
                cites.push("tfce");
            }
        }
        if let Some(b) = p["nbs"].as_object() {
            let threshold = match (b.get("threshold_t").filter(|v| !v.is_null()), b.get("threshold_p")) {
                (Some(t), _) => format!("|t| ≥ {}", n(t)),
                (None, Some(p)) => format!("uncorrected p < {}", n(p)),
                _ => "?".into(),
            };
            let _ = write!(
                text,
                " In {}, the network-based statistic thresholded the edges at {threshold} and tested each connected \
                 component by its {} against the permutation distribution of the largest component.",
                n(&p["name"]),
                n(&b.get("statistic").cloned().unwrap_or_default()),
            );
            if !cites.contains(&"nbs") {
                cites.push("nbs");
            }
        }
        if blocks(&mut text, &p["blocks"]) && !cites.contains(&"winkler-blocks") {
            cites.push("winkler-blocks");
        }
    }
    categorical(folder, &mut text, "group/");
    Some(Paragraph { title: "Group analyses", text, cites })
}

fn roc(folder: &Folder) -> Option<Paragraph> {
    let stages = folder.stages_of("roc");
    let p = &stages.first()?.params;
    let text = format!(
        "{} ROC analyses computed the AUC with DeLong {}% confidence intervals, {} bootstrap resamples and {} label \
         permutations (seed {}); where the value was chosen on the same subjects, the in-sample AUC is marked circular and a \
         {}-fold cross-validated AUC repeats the choice inside each training fold.",
        stages.len(),
        p["ci_level"].as_f64().map_or("?".into(), |c| format!("{}", 100.0 * c)),
        n(&p["bootstrap"]),
        n(&p["permutations"]),
        n(&p["seed"]),
        n(&p["folds"]),
    );
    Some(Paragraph { title: "ROC", text, cites: vec!["delong", "efron"] })
}

fn software(folder: &Folder) -> Paragraph {
    Paragraph {
        title: "Software and reproducibility",
        text: format!(
            "All analyses ran in neurospec {} from one study file (blake3 {}), study seed {}; every random stream is derived \
             from the study seed and the stage's identity, and results are bitwise reproducible (`neurospec verify`).",
            folder.lock.neurospec_version,
            &folder.lock.study_hash[..folder.lock.study_hash.len().min(16)],
            folder.study_seed().map_or("?".into(), |s| s.to_string()),
        ),
        cites: Vec::new(),
    }
}

pub fn methods(folder: &Folder) -> Vec<Paragraph> {
    [
        sample(folder),
        imaging(folder),
        association(folder),
        factors(folder),
        prediction(folder),
        group(folder),
        roc(folder),
    ]
    .into_iter()
    .flatten()
    .chain(std::iter::once(software(folder)))
    .collect()
}

/// The cited references, numbered in order of first citation.
fn cited(paragraphs: &[Paragraph]) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for key in paragraphs.iter().flat_map(|p| &p.cites) {
        if let Some(reference) = REFERENCES.iter().find(|(k, _)| k == key)
            && !out.contains(reference)
        {
            out.push(*reference);
        }
    }
    out
}

fn marks(p: &Paragraph, cited: &[(&str, &str)]) -> String {
    let numbers: Vec<String> =
        p.cites.iter().filter_map(|k| cited.iter().position(|(c, _)| c == k).map(|i| (i + 1).to_string())).collect();
    if numbers.is_empty() { String::new() } else { format!(" [{}]", numbers.join(", ")) }
}

pub fn markdown(folder: &Folder, paragraphs: &[Paragraph]) -> String {
    let cited = cited(paragraphs);
    let mut out = format!("# Methods: {}\n\n", folder.lock.study);
    for p in paragraphs {
        let _ = write!(out, "## {}\n\n{}{}\n\n", p.title, p.text, marks(p, &cited));
    }
    out.push_str("## References\n\n");
    for (i, (_, r)) in cited.iter().enumerate() {
        let _ = writeln!(out, "{}. {r}", i + 1);
    }
    out
}

pub fn section(paragraphs: &[Paragraph]) -> Option<Section> {
    let cited = cited(paragraphs);
    let mut body = String::from("<p class=\"note\">Also in <a href=\"methods.md\">methods.md</a>.</p>");
    for p in paragraphs {
        let _ = write!(body, "<h3>{}</h3><p>{}{}</p>", esc(p.title), esc(&p.text), marks(p, &cited));
    }
    body.push_str("<h3>References</h3><ol class=\"refs\">");
    for (_, r) in &cited {
        let _ = write!(body, "<li>{}</li>", esc(r));
    }
    body.push_str("</ol>");
    Some(Section { id: "methods", title: "Methods".into(), body, figures: Vec::new() })
}
