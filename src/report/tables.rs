//! Statistical parts of the report, read from the result tables: association (forest, volcano,
//! discovery vs held-out), factors (scree with the parallel-analysis line, loadings, Φ),
//! prediction (held-out observed vs predicted, metrics) and ROC (AUC with CIs, circular flag).

use super::charts::{self, Axes, ForestRow, PALETTE, Series, esc};
use super::folder::{Folder, Tsv};
use super::study::{details_table, format_number, table_html};
use super::{Figure, Section};
use std::fmt::Write as _;

pub fn sections(folder: &Folder) -> Vec<Option<Section>> {
    vec![association(folder), factors(folder), prediction(folder), roc(folder)]
}

fn significant(t: &Tsv, r: usize) -> bool {
    t.text(r, "significant") == crate::tables::boolean(true)
}

fn association(folder: &Folder) -> Option<Section> {
    // One result table per sample (`association/<sample>.tsv`); the coding, region-mean and
    // difference tables beside them have an underscore in their names.
    let files: Vec<String> = folder
        .published("association/", ".tsv")
        .into_iter()
        .filter(|f| !f["association/".len()..].contains('_'))
        .collect();
    if files.is_empty() {
        return None;
    }
    let mut body = String::new();
    let mut figures = Vec::new();
    for file in &files {
        let sample = file.trim_start_matches("association/").trim_end_matches(".tsv").to_string();
        let t = folder.tsv(file)?;
        let hits: Vec<usize> = (0..t.rows.len()).filter(|&r| significant(&t, r)).collect();
        let _ = write!(
            body,
            "<h3>{}</h3><p>{} tests, {} significant after BH-FDR within family.</p>",
            esc(&sample),
            t.rows.len(),
            hits.len()
        );
        let mut order = hits.clone();
        order.sort_by(|&a, &b| t.value(a, "q").total_cmp(&t.value(b, "q")));
        let shown: Vec<usize> = order.into_iter().take(40).collect();
        if !shown.is_empty() {
            let rows: Vec<ForestRow> = shown
                .iter()
                .map(|&r| ForestRow {
                    label: format!("{} ~ {}", t.text(r, "outcome"), t.text(r, "feature")),
                    estimate: t.value(r, "beta"),
                    low: t.value(r, "ci_low"),
                    high: t.value(r, "ci_high"),
                })
                .collect();
            let title = format!("{sample}: significant β with bootstrap CI");
            body.push_str(&super::figure_marker(&format!("association_{sample}_forest")));
            figures.push(Figure {
                name: format!("association_{sample}_forest"),
                caption: title.clone(),
                svg: charts::forest(&title, "standardised β", &rows, 0.0),
            });
        }
        let (sig, rest): (Vec<usize>, Vec<usize>) = (0..t.rows.len()).partition(|&r| significant(&t, r));
        let points =
            |rows: &[usize]| rows.iter().map(|&r| (t.value(r, "beta"), -t.value(r, "p").log10())).collect::<Vec<_>>();
        let title = format!("{sample}: volcano");
        body.push_str(&super::figure_marker(&format!("association_{sample}_volcano")));
        let axes = Axes::new(&title, "standardised β", "−log10 p");
        figures.push(Figure {
            name: format!("association_{sample}_volcano"),
            caption: title.clone(),
            svg: charts::xy(
                &axes,
                &[
                    Series {
                        name: "not significant".into(),
                        points: points(&rest),
                        color: charts::GREY,
                        dots: true,
                        dashed: false,
                    },
                    Series {
                        name: "q ≤ FDR level".into(),
                        points: points(&sig),
                        color: charts::RED,
                        dots: true,
                        dashed: false,
                    },
                ],
            ),
        });
        let top = Tsv { header: t.header.clone(), rows: shown.iter().map(|&r| t.rows[r].clone()).collect() };
        if !top.rows.is_empty() {
            body.push_str(&details_table(&top, &format!("Significant features, by q ({file})"), 40));
        }
    }
    association_extras(folder, &mut body);
    if let Some(rep) = folder.tsv("replication.tsv") {
        let replicated =
            (0..rep.rows.len()).filter(|&r| rep.text(r, "replicated") == crate::tables::boolean(true)).count();
        let _ = write!(
            body,
            "<h3>Replication</h3><p>{replicated} of {} discovery findings replicated in the held-out sample.</p>",
            rep.rows.len()
        );
        let yes: Vec<(f64, f64)> = (0..rep.rows.len())
            .filter(|&r| rep.text(r, "replicated") == crate::tables::boolean(true))
            .map(|r| (rep.value(r, "beta_discovery"), rep.value(r, "beta_held_out")))
            .collect();
        let no: Vec<(f64, f64)> = (0..rep.rows.len())
            .filter(|&r| rep.text(r, "replicated") != crate::tables::boolean(true))
            .map(|r| (rep.value(r, "beta_discovery"), rep.value(r, "beta_held_out")))
            .collect();
        body.push_str(&super::figure_marker("replication"));
        let mut axes = Axes::new("Discovery vs held-out β", "β discovery", "β held-out");
        axes.identity = true;
        figures.push(Figure {
            name: "replication".into(),
            caption: "Discovery vs held-out β of the discovery findings".into(),
            svg: charts::xy(
                &axes,
                &[
                    Series {
                        name: "not replicated".into(),
                        points: no,
                        color: charts::GREY,
                        dots: true,
                        dashed: false,
                    },
                    Series { name: "replicated".into(), points: yes, color: charts::GREEN, dots: true, dashed: false },
                ],
            ),
        });
        body.push_str(&details_table(&rep, "replication.tsv", 60));
    }
    Some(Section { id: "association", title: "Association".into(), body, figures })
}

/// Between-outcome differences and region means, when the study asks for them: counts and the
/// strongest rows as tables.
fn association_extras(folder: &Folder, body: &mut String) {
    let strongest = |t: &Tsv, rows: Vec<usize>, key: &dyn Fn(usize) -> f64| -> Tsv {
        let mut rows = rows;
        rows.sort_by(|&a, &b| key(a).total_cmp(&key(b)));
        Tsv { header: t.header.clone(), rows: rows.into_iter().take(40).map(|r| t.rows[r].clone()).collect() }
    };
    for file in folder.published("association/", "_differences.tsv") {
        let Some(t) = folder.tsv(&file) else { continue };
        let hits: Vec<usize> =
            (0..t.rows.len()).filter(|&r| t.text(r, "ci_excludes_zero") == crate::tables::boolean(true)).collect();
        let _ = write!(
            body,
            "<h3>Differences between outcomes ({})</h3><p>{} of {} differences β_a − β_b have a bootstrap interval \
             excluding zero (uncorrected).</p>",
            esc(&file),
            hits.len(),
            t.rows.len()
        );
        let top = strongest(&t, hits, &|r| -t.value(r, "difference").abs());
        if !top.rows.is_empty() {
            body.push_str(&details_table(
                &top,
                &format!("Largest differences with intervals excluding zero ({file})"),
                40,
            ));
        }
    }
    for file in folder.published("association/", "_region_means.tsv") {
        let Some(t) = folder.tsv(&file) else { continue };
        let top = strongest(&t, (0..t.rows.len()).collect(), &|r| t.value(r, "p_perm"));
        body.push_str(&details_table(&top, &format!("Mean edge β per region, by p ({file})"), 40));
    }
}

fn matrix(t: &Tsv) -> (Vec<String>, Vec<String>, Vec<Vec<f64>>) {
    let rows: Vec<String> = t.rows.iter().map(|r| r[0].clone()).collect();
    let cols: Vec<String> = t.header[1..].to_vec();
    let values = (0..t.rows.len()).map(|r| cols.iter().map(|c| t.value(r, c)).collect()).collect();
    (rows, cols, values)
}

fn factors(folder: &Folder) -> Option<Section> {
    let fit = folder.json("factors/fit.json")?;
    let mut figures = Vec::new();
    let pa = &fit["parallel_analysis"];
    let observed: Vec<f64> = serde_json::from_value(pa["observed"].clone()).unwrap_or_default();
    let thresholds: Vec<f64> = serde_json::from_value(pa["thresholds"].clone()).unwrap_or_default();
    if !observed.is_empty() {
        let series = vec![
            Series {
                name: "observed eigenvalues".into(),
                points: observed.iter().enumerate().map(|(i, v)| ((i + 1) as f64, *v)).collect(),
                color: charts::BLUE,
                dots: false,
                dashed: false,
            },
            Series {
                name: "parallel analysis (95th percentile)".into(),
                points: thresholds.iter().enumerate().map(|(i, v)| ((i + 1) as f64, *v)).collect(),
                color: charts::RED,
                dots: false,
                dashed: true,
            },
        ];
        let axes = Axes::new("Scree", "factor", "eigenvalue");
        figures.push(Figure {
            name: "factors_scree".into(),
            caption: "Scree with parallel analysis".into(),
            svg: charts::xy(&axes, &series),
        });
    }
    let names =
        fit["factor_names"].as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(", "));
    let mut body = format!(
        "<p>{} factors ({}), fitted on the {} sample (n = {}): method {}, rotation {}, scores {}. \
         Parallel analysis suggested {}, Velicer's MAP {}. KMO {}; RMSR {}.</p>",
        fit["factors"],
        esc(&names.unwrap_or_default()),
        esc(fit["fit_sample"].as_str().unwrap_or("whole")),
        fit["n"],
        esc(fit["method"].as_str().unwrap_or("?")),
        esc(fit["rotation"].as_str().unwrap_or("?")),
        esc(fit["scores"].as_str().unwrap_or("?")),
        pa["factors"],
        fit["velicer_map"]["factors"],
        fit["kmo"]["overall"].as_f64().map_or("?".into(), format_number),
        fit["rmsr"].as_f64().map_or("?".into(), format_number),
    );
    if let Some(l) = folder.tsv("factors/loadings.tsv") {
        let (rows, cols, values) = matrix(&l);
        figures.push(Figure {
            name: "factors_loadings".into(),
            caption: "Loadings".into(),
            svg: charts::heatmap("Loadings", &rows, &cols, &values),
        });
    }
    if let Some(phi) = folder.tsv("factors/phi.tsv") {
        body.push_str("<h3>Factor correlations Φ</h3>");
        body.push_str(&table_html(&phi, 20, "data"));
    }
    Some(Section { id: "factors", title: "Factors".into(), body, figures })
}

fn prediction(folder: &Folder) -> Option<Section> {
    let files = folder.published("prediction/", "_metrics.tsv");
    if files.is_empty() {
        return None;
    }
    let mut body = String::new();
    let mut figures = Vec::new();
    for file in &files {
        let outcome = file.trim_start_matches("prediction/").trim_end_matches("_metrics.tsv").to_string();
        let metrics = folder.tsv(file)?;
        let _ = write!(body, "<h3>{}</h3>{}", esc(&outcome), super::figure_marker(&format!("prediction_{outcome}")));
        body.push_str(&details_table(&metrics, &format!("Metrics ({file})"), 20));
        repeats_and_null(folder, &outcome, &metrics, &mut body, &mut figures);
        let Some(pred) = folder.tsv(&format!("prediction/{outcome}_predictions.tsv")) else { continue };
        let models: Vec<String> = pred.header.iter().skip(3).cloned().collect();
        let held: Vec<usize> = (0..pred.rows.len()).filter(|&r| pred.text(r, "sample") == "held-out").collect();
        let rows = if held.is_empty() { (0..pred.rows.len()).collect() } else { held.clone() };
        let series: Vec<Series> = models
            .iter()
            .enumerate()
            .map(|(m, model)| Series {
                name: model.clone(),
                points: rows.iter().map(|&r| (pred.value(r, model), pred.value(r, "target"))).collect(),
                color: PALETTE[m % PALETTE.len()],
                dots: true,
                dashed: false,
            })
            .collect();
        let title = format!(
            "{outcome}: observed vs predicted ({})",
            if held.is_empty() { "cross-validated" } else { "held-out" }
        );
        let mut axes = Axes::new(&title, "predicted", "observed");
        axes.identity = false;
        figures.push(Figure {
            name: format!("prediction_{outcome}"),
            caption: title.clone(),
            svg: charts::xy(&axes, &series),
        });
    }
    Some(Section { id: "prediction", title: "Prediction".into(), body, figures })
}

/// The cross-validated r of each repeat, and each model's permutation null with the observed r.
fn repeats_and_null(folder: &Folder, outcome: &str, metrics: &Tsv, body: &mut String, figures: &mut Vec<Figure>) {
    let models: Vec<String> = (0..metrics.rows.len())
        .filter(|&r| metrics.text(r, "evaluation") == "cross-validation")
        .map(|r| metrics.text(r, "model").to_string())
        .collect();
    let observed = |model: &str| {
        (0..metrics.rows.len())
            .find(|&r| metrics.text(r, "evaluation") == "cross-validation" && metrics.text(r, "model") == model)
            .map_or(f64::NAN, |r| metrics.value(r, "r"))
    };
    if let Some(repeats) = folder.tsv(&format!("prediction/{outcome}_repeats.tsv")) {
        let series: Vec<Series> = models
            .iter()
            .enumerate()
            .map(|(m, model)| Series {
                name: model.clone(),
                points: (0..repeats.rows.len())
                    .filter(|&r| repeats.text(r, "model") == model)
                    .map(|r| (repeats.value(r, "repeat"), repeats.value(r, "r")))
                    .collect(),
                color: PALETTE[m % PALETTE.len()],
                dots: true,
                dashed: false,
            })
            .collect();
        let title = format!("{outcome}: cross-validated r per repeat");
        let axes = Axes::new(&title, "repeat", "r (out-of-fold)");
        body.push_str(&super::figure_marker(&format!("prediction_{outcome}_repeats")));
        figures.push(Figure {
            name: format!("prediction_{outcome}_repeats"),
            caption: title.clone(),
            svg: charts::xy(&axes, &series),
        });
    }
    let Some(null) = folder.tsv(&format!("prediction/{outcome}_null.tsv")) else { return };
    for model in &models {
        let draws: Vec<f64> =
            (0..null.rows.len()).filter(|&r| null.text(r, "model") == model).map(|r| null.value(r, "r")).collect();
        if draws.is_empty() {
            continue;
        }
        let value = observed(model);
        let at_least = draws.iter().filter(|&&d| d >= value - 1e-10 * value.abs().max(1e-300)).count();
        let p = (1.0 + at_least as f64) / (1.0 + draws.len() as f64);
        let title = format!("{outcome}, {model}: permutation null of the cross-validated r");
        let mut axes = Axes::new(&title, "mean r over repeats", "permutations");
        axes.vlines = vec![(value, format!("observed r = {value:.3}, p = {p:.3}"))];
        let name = format!("prediction_{outcome}_{model}_null");
        body.push_str(&super::figure_marker(&name));
        figures.push(Figure {
            name,
            caption: title.clone(),
            svg: charts::annotate(
                &charts::histogram(&axes, &draws, 30),
                &[
                    ("data-observed", value.to_string()),
                    ("data-permutations", draws.len().to_string()),
                    ("data-p", p.to_string()),
                ],
            ),
        });
    }
}

/// ROC curve points (false positive rate, true positive rate) from scores and labels, one point
/// per distinct threshold (ties move both rates at once), and the area under it (trapezoids;
/// equal to the Mann–Whitney AUC with ties counted half).
pub fn roc_curve(scores: &[f64], labels: &[bool]) -> (Vec<(f64, f64)>, f64) {
    let mut order: Vec<usize> = (0..scores.len()).filter(|&i| scores[i].is_finite()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let positives = order.iter().filter(|&&i| labels[i]).count().max(1) as f64;
    let negatives = order.iter().filter(|&&i| !labels[i]).count().max(1) as f64;
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut points = vec![(0.0, 0.0)];
    let mut area = 0.0;
    let mut i = 0;
    while i < order.len() {
        let threshold = scores[order[i]];
        while i < order.len() && scores[order[i]] == threshold {
            if labels[order[i]] {
                tp += 1.0
            } else {
                fp += 1.0
            }
            i += 1;
        }
        let (x0, y0) = *points.last().expect("starts at the origin");
        let (x1, y1) = (fp / negatives, tp / positives);
        area += (x1 - x0) * (y0 + y1) / 2.0;
        points.push((x1, y1));
    }
    (points, area)
}

fn roc_curves(folder: &Folder, name: &str, t: &Tsv, body: &mut String) -> Option<Figure> {
    let scores = folder.tsv(&format!("roc/{name}_scores.tsv"))?;
    let labels: Vec<bool> =
        (0..scores.rows.len()).map(|r| scores.text(r, "label") == crate::tables::boolean(true)).collect();
    let mut series = Vec::new();
    let mut attributes = Vec::new();
    for (k, (evaluation, column)) in
        [("in-sample", "in_sample_score"), ("cross-validated", "cross_validated_score")].into_iter().enumerate()
    {
        if !scores.header.iter().any(|h| h == column) {
            continue;
        }
        let values: Vec<f64> = (0..scores.rows.len()).map(|r| scores.value(r, column)).collect();
        let (points, area) = roc_curve(&values, &labels);
        let row = (0..t.rows.len()).find(|&r| t.text(r, "evaluation") == evaluation);
        let (low, high, kind) = match row {
            Some(r) if t.value(r, "bootstrap_ci_low").is_finite() => {
                (t.value(r, "bootstrap_ci_low"), t.value(r, "bootstrap_ci_high"), "bootstrap")
            }
            Some(r) => (t.value(r, "delong_ci_low"), t.value(r, "delong_ci_high"), "DeLong"),
            None => (f64::NAN, f64::NAN, ""),
        };
        let circular = row.is_some_and(|r| t.text(r, "circular") == crate::tables::boolean(true));
        attributes.push((if k == 0 { "data-auc-in-sample" } else { "data-auc-cross-validated" }, area.to_string()));
        series.push(Series {
            name: format!(
                "{evaluation}: AUC {area:.3} [{low:.3}, {high:.3}] ({kind} CI){}",
                if circular { " — CIRCULAR (optimistic)" } else { "" }
            ),
            points,
            color: if k == 0 { charts::RED } else { charts::BLUE },
            dots: false,
            dashed: k == 0 && circular,
        });
    }
    series.push(Series {
        name: "chance".into(),
        points: vec![(0.0, 0.0), (1.0, 1.0)],
        color: charts::GREY,
        dots: false,
        dashed: true,
    });
    let title = format!("{name}: ROC");
    let mut axes = Axes::new(&title, "false positive rate", "true positive rate");
    axes.x_range = Some((0.0, 1.0));
    axes.y_range = Some((0.0, 1.0));
    let figure = format!("roc_{name}_curves");
    body.push_str(&super::figure_marker(&figure));
    Some(Figure {
        name: figure,
        caption: title.clone(),
        svg: charts::annotate(&charts::xy(&axes, &series), &attributes),
    })
}

fn roc(folder: &Folder) -> Option<Section> {
    let files: Vec<String> =
        folder.published("roc/", ".tsv").into_iter().filter(|f| !f.ends_with("_scores.tsv")).collect();
    if files.is_empty() {
        return None;
    }
    let mut body = String::new();
    let mut rows = Vec::new();
    let mut figures = Vec::new();
    for file in &files {
        let name = file.trim_start_matches("roc/").trim_end_matches(".tsv");
        let t = folder.tsv(file)?;
        let _ = write!(body, "<h3>{}</h3>", esc(name));
        figures.extend(roc_curves(folder, name, &t, &mut body));
        body.push_str(&table_html(&t, 10, "data roc"));
        for r in 0..t.rows.len() {
            let circular = t.text(r, "circular") == crate::tables::boolean(true);
            rows.push(ForestRow {
                label: format!("{name} {}{}", t.text(r, "evaluation"), if circular { " (circular)" } else { "" }),
                estimate: t.value(r, "auc"),
                low: t.value(r, "bootstrap_ci_low"),
                high: t.value(r, "bootstrap_ci_high"),
            });
        }
    }
    body.push_str(
        "<p class=\"note\">In-sample AUCs marked circular were computed on the subjects that chose the value; the \
         cross-validated AUC redoes the choice inside each training fold (its curve is drawn from the out-of-fold \
         scores in <code>roc/NAME_scores.tsv</code>).</p>",
    );
    let svg = charts::forest("AUC with bootstrap CI (0.5 = chance)", "AUC", &rows, 0.5);
    figures.push(Figure { name: "roc_auc".into(), caption: "AUCs".into(), svg });
    Some(Section { id: "roc", title: "ROC".into(), body, figures })
}
