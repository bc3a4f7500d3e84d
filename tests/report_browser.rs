//! Each shipped study's report (at test size) as a person sees it, in headless Chromium (Debian's
//! `chromium`): no console message, every image decodes, the screenshot is not blank, and the
//! figures show what the tables hold (the heatmap's cells are the connectome's column means and
//! the largest is drawn brightest; the cluster table has the clusters file's rows; the montage's
//! thresholded voxels include the planted cluster).
//!
//! Without Chromium the tests print why they skip and pass, unless NEUROSPEC_REQUIRE_TOOLS=1
//! (as in CI), where a missing browser fails.

mod common;

use common::*;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
        std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("NEUROSPEC_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "chromium is not installed and NEUROSPEC_REQUIRE_TOOLS=1 (apt-get install chromium)"
        );
        eprintln!("SKIP: chromium not found on PATH (Debian: apt-get install chromium); the browser check did not run");
    }
    found
}

/// Run headless Chromium on a file URL with the flags this machine needs; (stdout, stderr).
fn browse(bin: &Path, profile: &Path, extra: &[&str], page: &Path) -> (String, String) {
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            "--disable-quic",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium starts");
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Decode an 8-bit RGB or RGBA PNG (what Chromium writes) into RGB pixels.
fn decode_png(bytes: &[u8]) -> (usize, usize, Vec<[u8; 3]>) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let (mut at, mut idat, mut dims) = (8, Vec::new(), (0, 0, 0));
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind = &bytes[at + 4..at + 8];
        let data = &bytes[at + 8..at + 8 + len];
        match kind {
            b"IHDR" => {
                assert_eq!(data[8], 8, "8-bit");
                let channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    c => panic!("colour type {c}"),
                };
                dims = (
                    u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize,
                    u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize,
                    channels,
                );
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        at += 12 + len;
    }
    let (w, h, c) = dims;
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..]).read_to_end(&mut raw).unwrap();
    let stride = w * c;
    let mut prev = vec![0u8; stride];
    let mut pixels = Vec::with_capacity(w * h);
    for y in 0..h {
        let line = &raw[y * (stride + 1)..(y + 1) * (stride + 1)];
        let mut cur = line[1..].to_vec();
        for i in 0..stride {
            let a = if i >= c { cur[i - c] as i32 } else { 0 };
            let b = prev[i] as i32;
            let d = if i >= c { prev[i - c] as i32 } else { 0 };
            let add = match line[0] {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) / 2,
                4 => {
                    let p = a + b - d;
                    let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - d).abs());
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        d
                    }
                }
                f => panic!("filter {f}"),
            };
            cur[i] = cur[i].wrapping_add(add as u8);
        }
        pixels.extend(cur.chunks(c).map(|p| [p[0], p[1], p[2]]));
        prev = cur;
    }
    (w, h, pixels)
}

const PROBE: &str = r#"<!DOCTYPE html><html><body><iframe id="r" src="report.html" style="width:1200px;height:900px"></iframe><pre id="out">pending</pre>
<script>
const f = document.getElementById('r');
f.addEventListener('load', async () => {
  const d = f.contentDocument;
  const srcs = [...d.querySelectorAll('img')].map(i => i.getAttribute('src')).concat([...d.querySelectorAll('image')].map(i => i.getAttribute('href')));
  const bad = [];
  await Promise.all(srcs.map(s => new Promise(done => { const im = new Image(); im.onload = () => { if (!im.naturalWidth) bad.push(String(s).slice(0, 40)); done(); }; im.onerror = () => { bad.push(String(s).slice(0, 40)); done(); }; im.src = s; })));
  const figs = [...d.querySelectorAll('figure')].map(x => { const r = x.getBoundingClientRect(); return [x.dataset.figure, Math.round(r.width), Math.round(r.height)]; });
  const cells = [...d.querySelectorAll('figure[data-figure^="connectivity_mean"] rect.cell')].map(r => [r.closest('figure').dataset.figure, r.dataset.row, r.dataset.col, +r.dataset.value, getComputedStyle(r).fill]);
  const clusters = [...d.querySelectorAll('div.analysis')].filter(a => a.querySelector('table.clusters')).map(a => [a.dataset.analysis, [...a.querySelectorAll('table.clusters tbody tr')].map(tr => [...tr.cells].map(c => c.textContent))]);
  const montages = [...d.querySelectorAll('svg.montage')].map(s => [s.closest('figure').dataset.figure, s.dataset.voxels]);
  const sections = [...d.querySelectorAll('section')].map(s => s.id);
  const data = Object.fromEntries([...d.querySelectorAll('figure')].map(x => { const s = x.querySelector('svg'); return [x.dataset.figure, s ? {...s.dataset} : {}]; }));
  const legends = Object.fromEntries([...d.querySelectorAll('figure[data-figure^="roc_"] svg')].map(s => [s.closest('figure').dataset.figure, s.textContent]));
  document.getElementById('out').textContent = JSON.stringify({images: srcs.length, bad, figs, cells, clusters, montages, sections, data, legends});
});
</script></body></html>"#;

/// Open the report: console, images, screenshot; returns what the probe page read from the DOM.
fn check_in_browser(bin: &Path, out: &Path) -> serde_json::Value {
    let profile = tempfile::tempdir().unwrap();
    let shot = out.join("screenshot.png");
    let (_, stderr) = browse(
        bin,
        profile.path(),
        &["--enable-logging=stderr", "--v=0", "--window-size=1200,1600", &format!("--screenshot={}", shot.display())],
        &out.join("report.html"),
    );
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages while loading the report: {console:#?}");
    let (w, h, pixels) = decode_png(&std::fs::read(&shot).expect("a screenshot"));
    assert_eq!((w, h), (1200, 1600));
    let white = pixels.iter().filter(|p| p.iter().all(|&c| c > 245)).count();
    let mut colours: Vec<[u8; 3]> = pixels.clone();
    colours.sort();
    colours.dedup();
    assert!(
        white < pixels.len() * 97 / 100 && colours.len() > 20,
        "blank screenshot: {white} white pixels, {} colours",
        colours.len()
    );
    std::fs::remove_file(&shot).unwrap();

    let probe = out.join("probe.html");
    std::fs::write(&probe, PROBE).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let (dom, _) = browse(
        bin,
        profile.path(),
        &["--allow-file-access-from-files", "--virtual-time-budget=20000", "--dump-dom"],
        &probe,
    );
    std::fs::remove_file(&probe).unwrap();
    let text = dom.split("<pre id=\"out\">").nth(1).and_then(|s| s.split("</pre>").next()).expect("probe output");
    let text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&");
    let probe: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("probe: {e}: {text}"));
    assert_eq!(probe["bad"], serde_json::json!([]), "broken images");
    for fig in probe["figs"].as_array().unwrap() {
        assert!(fig[1].as_f64().unwrap() > 50.0 && fig[2].as_f64().unwrap() > 50.0, "figure not rendered: {fig}");
    }
    probe
}

/// The `data-*` attributes of a figure's root SVG as the browser read them (camelCase keys).
fn figure_data<'a>(probe: &'a serde_json::Value, figure: &str) -> &'a serde_json::Value {
    let data = &probe["data"][figure];
    assert!(
        data.is_object(),
        "no figure {figure} in the report (figures: {:?})",
        probe["data"].as_object().map(|m| m.keys().collect::<Vec<_>>())
    );
    data
}

fn attribute(data: &serde_json::Value, key: &str) -> f64 {
    data[key].as_str().unwrap_or_else(|| panic!("no {key} in {data}")).parse().unwrap()
}

/// The permutation-null figure of each model marks the published cross-validated r, and the
/// share of the published null at or above it is the published p.
fn check_prediction_null(probe: &serde_json::Value, out: &Path) {
    let metrics = Tsv::read(&out.join("prediction/F1_metrics.tsv"));
    let null = Tsv::read(&out.join("prediction/F1_null.tsv"));
    let repeats = Tsv::read(&out.join("prediction/F1_repeats.tsv"));
    let mut checked = 0;
    for r in (0..metrics.rows.len()).filter(|&r| metrics.rows[r][metrics.col("evaluation")] == "cross-validation") {
        let model = &metrics.rows[r][metrics.col("model")];
        let data = figure_data(probe, &format!("prediction_F1_{model}_null"));
        assert_eq!(attribute(data, "observed"), metrics.num(r, "r"), "{model}: observed marker");
        assert!((attribute(data, "p") - metrics.num(r, "p_r")).abs() < 1e-12, "{model}: p {data} vs the metrics table");
        let draws = (0..null.rows.len()).filter(|&q| null.rows[q][null.col("model")] == *model).count();
        assert_eq!(attribute(data, "permutations") as usize, draws);
        // The published mean over repeats is the mean of the published repeats.
        let per: Vec<f64> = (0..repeats.rows.len())
            .filter(|&q| repeats.rows[q][repeats.col("model")] == *model)
            .map(|q| repeats.num(q, "r"))
            .collect();
        assert_eq!(per.len(), 2, "{model}: one row per repeat");
        assert!((per.iter().sum::<f64>() / 2.0 - metrics.num(r, "r")).abs() < 1e-12);
        checked += 1;
    }
    assert!(checked > 0, "no cross-validation metrics");
    figure_data(probe, "prediction_F1_repeats");
}

/// QC-FC recomputed from connectome.tsv and each run's published motion: the correlation of every
/// edge with mean FD (volumes after the non-steady-state ones, the first left out).
fn check_qcfc(probe: &serde_json::Value, out: &Path) {
    let lock: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("neurospec.lock")).unwrap()).unwrap();
    let mut fd = std::collections::BTreeMap::new();
    for stage in lock["stages"].as_array().unwrap().iter().filter(|s| s["kind"] == "imaging-run") {
        let subject = stage["id"].as_str().unwrap().trim_start_matches("imaging/sub-").to_string();
        let report: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.join(stage["outputs"]["report"]["path"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        if report["status"] != "included" {
            continue;
        }
        let motion = Tsv::read(&out.join(stage["outputs"]["motion"]["path"].as_str().unwrap()));
        let values: Vec<f64> = (1..motion.rows.len())
            .filter(|&r| motion.rows[r][motion.col("status")] != "non-steady-state")
            .map(|r| motion.num(r, "framewise_displacement"))
            .collect();
        fd.insert(subject, values.iter().sum::<f64>() / values.len() as f64);
    }
    let connectome = Tsv::read(&out.join("connectome.tsv"));
    let rows: Vec<usize> = (0..connectome.rows.len())
        .filter(|&r| fd.contains_key(connectome.rows[r][0].trim_start_matches("sub-")))
        .collect();
    assert_eq!(rows.len(), fd.len(), "every included run's subject is a connectome row");
    let x: Vec<f64> = rows.iter().map(|&r| fd[connectome.rows[r][0].trim_start_matches("sub-")]).collect();
    let data = figure_data(probe, "qcfc_histogram");
    let shown: Vec<(String, f64)> = data["qcfc"]
        .as_str()
        .unwrap()
        .split(';')
        .map(|e| {
            let (name, r) = e.rsplit_once(':').unwrap();
            (name.to_string(), r.parse().unwrap())
        })
        .collect();
    let edges: Vec<&String> = connectome.header.iter().filter(|h| h.starts_with("conn_")).collect();
    assert_eq!(shown.len(), edges.len(), "one QC-FC value per edge");
    let mut abs = Vec::new();
    for (name, r) in &shown {
        let y: Vec<f64> = rows.iter().map(|&row| connectome.num(row, name)).collect();
        let n = x.len() as f64;
        let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
        let sxy: f64 = x.iter().zip(&y).map(|(a, b)| (a - mx) * (b - my)).sum();
        let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
        let syy: f64 = y.iter().map(|b| (b - my) * (b - my)).sum();
        let expected = sxy / (sxx * syy).sqrt();
        assert!((r - expected).abs() < 1e-9, "{name}: QC-FC {r} vs recomputed {expected}");
        abs.push(expected.abs());
    }
    abs.sort_by(f64::total_cmp);
    let m = abs.len() / 2;
    let median = if abs.len() % 2 == 1 { abs[m] } else { 0.5 * (abs[m - 1] + abs[m]) };
    assert!((attribute(data, "medianAbsR") - median).abs() < 1e-9, "median |QC-FC|");
    figure_data(probe, "qcfc_distance");
    figure_data(probe, "qc_mean_fd");
}

/// Each region set's slices show every region of the set in its own colour (the figure's PNG is
/// decoded) over the first grid's published mean BOLD volume in grey: every pixel outside the
/// set's regions is the reference voxel's grey (recomputed from the published image and the
/// figure's window), the grey varies where the reference is non-zero, and it is black outside.
fn check_region_slices(out: &Path) {
    use base64::Engine as _;
    let lock: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("neurospec.lock")).unwrap()).unwrap();
    let grid = lock["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "imaging-run" && s["outputs"]["labels"]["path"].is_string())
        .expect("a published label image");
    let published =
        |name: &str| out.join(grid["outputs"][name]["path"].as_str().unwrap_or_else(|| panic!("no {name}")));
    let (header, labels) = neurospec::imaging::nifti::read_3d(&published("labels")).unwrap();
    let (reference_header, reference) = neurospec::imaging::nifti::read_3d(&published("boldref")).unwrap();
    assert_eq!(reference_header.shape3(), header.shape3());
    assert_eq!(reference_header.affine, header.affine, "the reference is on the label image's grid");
    let [nx, ny, _] = header.shape3();
    let mut checked = 0;
    for entry in std::fs::read_dir(out.join("figures")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("regions_") {
            continue;
        }
        let svg = std::fs::read_to_string(&path).unwrap();
        let attr = |key: &str| -> &str {
            svg.split(&format!("{key}=\""))
                .nth(1)
                .unwrap_or_else(|| panic!("{name}: no {key}"))
                .split('"')
                .next()
                .unwrap()
        };
        let regions: usize = attr("data-regions").parse().unwrap();
        let scale: usize = attr("data-scale").parse().unwrap();
        let window: Vec<f64> = attr("data-window").split(',').map(|v| v.parse().unwrap()).collect();
        let png = svg.split("base64,").nth(1).unwrap().split('"').next().unwrap();
        let (w, _, pixels) = decode_png(&base64::engine::general_purpose::STANDARD.decode(png).unwrap());
        let is_grey = |p: &[u8; 3]| p[0] == p[1] && p[1] == p[2];
        let mut colours: Vec<[u8; 3]> = pixels.iter().copied().filter(|p| !is_grey(p)).collect();
        colours.sort_unstable();
        colours.dedup();
        assert!(regions > 0);
        assert_eq!(colours.len(), regions, "{name}: {} region colours drawn for {regions} regions", colours.len());
        // Each plane, left to right: a voxel not coloured is the reference's grey.
        let (mut ox, mut greys, mut compared) = (0, std::collections::BTreeSet::new(), 0);
        for plane in attr("data-planes").split(',') {
            let (axis, index) = plane.split_once('=').unwrap();
            let s: usize = index.parse().unwrap();
            let axis = ["i", "j", "k"].iter().position(|a| *a == axis).unwrap();
            let shape = header.shape3();
            let (a, b) = match axis {
                0 => (shape[1], shape[2]),
                1 => (shape[0], shape[2]),
                _ => (shape[0], shape[1]),
            };
            for u in 0..a {
                for v in 0..b {
                    let (i, j, k) = match axis {
                        0 => (s, u, v),
                        1 => (u, s, v),
                        _ => (u, v, s),
                    };
                    let pixel = pixels[((b - 1 - v) * scale) * w + ox + u * scale];
                    if !is_grey(&pixel) {
                        assert!(labels[i + nx * (j + ny * k)] != 0.0, "{name}: a colour outside every region");
                        continue;
                    }
                    let value = reference[i + nx * (j + ny * k)];
                    let expected = if value == 0.0 || !value.is_finite() {
                        0.0
                    } else {
                        40.0 + 200.0 * ((value - window[0]) / (window[1] - window[0])).clamp(0.0, 1.0)
                    };
                    assert!(
                        (f64::from(pixel[0]) - expected).abs() <= 0.5 + 1e-9,
                        "{name}: voxel ({i}, {j}, {k}) drawn grey {} for reference {value} (expected {expected})",
                        pixel[0]
                    );
                    if value != 0.0 {
                        greys.insert(pixel[0]);
                    }
                    compared += 1;
                }
            }
            ox += a * scale + 4;
        }
        assert!(compared > 0, "{name}: no reference pixel");
        assert!(greys.len() >= 5, "{name}: the reference shows only {} grey levels inside the brain", greys.len());
        checked += 1;
    }
    assert!(checked >= 2, "a slice figure per region set");
}

/// The heatmap cells are the connectome's column means, and the largest is the reddest.
fn check_heatmap(probe: &serde_json::Value, out: &Path) {
    let cells = probe["cells"].as_array().unwrap();
    assert!(!cells.is_empty(), "no connectivity heatmap cells");
    let connectome = Tsv::read(&out.join("connectome.tsv"));
    let figure = cells[0][0].as_str().unwrap().to_string();
    let cells: Vec<&serde_json::Value> = cells.iter().filter(|c| c[0] == figure.as_str()).collect();
    let session = figure.strip_prefix("connectivity_mean_").map(|s| format!("__{s}")).unwrap_or_default();
    for c in &cells {
        let column = format!("conn_{}__{}{session}", c[1].as_str().unwrap(), c[2].as_str().unwrap());
        let values: Vec<f64> =
            (0..connectome.rows.len()).map(|r| connectome.num(r, &column)).filter(|v| v.is_finite()).collect();
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!((mean - c[3].as_f64().unwrap()).abs() < 1e-9, "{column}: cell {} vs mean {mean}", c[3]);
    }
    let redness = |c: &serde_json::Value| {
        let fill = c[4].as_str().unwrap();
        let v: Vec<i64> = fill
            .trim_start_matches("rgb(")
            .trim_end_matches(')')
            .split(',')
            .map(|x| x.trim().parse().unwrap())
            .collect();
        v[0] - v[2]
    };
    let largest = cells.iter().max_by(|a, b| a[3].as_f64().unwrap().total_cmp(&b[3].as_f64().unwrap())).unwrap();
    let reddest = cells.iter().max_by_key(|c| redness(c)).unwrap();
    assert!(largest[3].as_f64().unwrap() > 0.0);
    assert_eq!(redness(largest), redness(reddest), "the largest mean {largest} is not drawn brightest ({reddest})");
}

fn study_text(name: &str, edits: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(repo().join(format!("studies/{name}.toml"))).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{name} has no `{from}`");
        text = text.replace(from, to);
    }
    text
}

#[test]
fn ukb_symptoms_report_in_chromium() {
    let Some(bin) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let text = study_text(
        "ukb-symptoms",
        &[
            ("subjects = 25000", "subjects = 2000"),
            ("permutations = 5000", "permutations = 99"),
            ("bootstrap = 1000", "bootstrap = 100"),
        ],
    );
    std::fs::write(dir.path().join("study.toml"), text).unwrap();
    run_json(dir.path(), "study.toml", &[]);
    let probe = check_in_browser(&bin, &dir.path().join("derivatives/ukb-symptoms"));
    for id in ["study", "flow", "association", "methods", "provenance"] {
        assert!(probe["sections"].as_array().unwrap().iter().any(|s| s == id), "no section {id}");
    }
}

#[test]
fn amygdala_wellbeing_report_in_chromium() {
    let Some(bin) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let text = study_text(
        "amygdala-wellbeing",
        &[("repeats = 5", "repeats = 2"), ("permutations = 500", "permutations = 99")],
    );
    std::fs::write(dir.path().join("study.toml"), text).unwrap();
    run_json(dir.path(), "study.toml", &[]);
    let out = dir.path().join("derivatives/amygdala-wellbeing");
    let probe = check_in_browser(&bin, &out);
    for id in ["qc", "regions", "connectivity", "factors", "prediction", "methods"] {
        assert!(probe["sections"].as_array().unwrap().iter().any(|s| s == id), "no section {id}");
    }
    check_heatmap(&probe, &out);
    check_prediction_null(&probe, &out);
    check_qcfc(&probe, &out);
    check_region_slices(&out);
}

#[test]
fn ketamine_amygdala_report_in_chromium() {
    let Some(bin) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let text = study_text(
        "ketamine-amygdala",
        &[("permutations = 5000", "permutations = 999"), ("bootstrap = 2000", "bootstrap = 200")],
    );
    std::fs::write(dir.path().join("study.toml"), text).unwrap();
    run_json(dir.path(), "study.toml", &[]);
    let out = dir.path().join("derivatives/ketamine-amygdala");
    let probe = check_in_browser(&bin, &out);
    check_heatmap(&probe, &out);
    check_region_slices(&out);
    // The ROC curves' areas are the published AUCs; the circular flag is in the in-sample legend.
    for name in ["lb_precuneus", "lb_cluster"] {
        let auc = Tsv::read(&out.join(format!("roc/{name}.tsv")));
        let data = figure_data(&probe, &format!("roc_{name}_curves"));
        for r in 0..auc.rows.len() {
            let key = match auc.rows[r][auc.col("evaluation")].as_str() {
                "in-sample" => "aucInSample",
                _ => "aucCrossValidated",
            };
            assert!(
                (attribute(data, key) - auc.num(r, "auc")).abs() < 1e-12,
                "{name} {key}: {data} vs {}",
                auc.num(r, "auc")
            );
        }
        let legend = probe["legends"][format!("roc_{name}_curves")].as_str().unwrap();
        assert!(legend.contains("in-sample") && legend.contains("CIRCULAR"), "{name}: legend {legend}");
    }
    // The cluster tables show the clusters files' rows, one table per voxelwise analysis.
    let tables = probe["clusters"].as_array().unwrap();
    assert_eq!(tables.len(), 3);
    let mut shown: Vec<&str> = tables.iter().map(|t| t[0].as_str().unwrap()).collect();
    shown.sort_unstable();
    assert_eq!(shown, ["change_pre", "post_vs_pre", "responders_pre"]);
    for table in tables {
        let analysis = table[0].as_str().unwrap();
        let clusters = Tsv::read(&out.join(format!("group/{analysis}_clusters.tsv")));
        let rows = table[1].as_array().unwrap();
        assert_eq!(rows.len(), clusters.rows.len().min(30), "{analysis}");
        for (shown, row) in rows.iter().zip(&clusters.rows) {
            assert_eq!(shown[0], row[0].as_str(), "{analysis}: cluster id");
            assert_eq!(shown[row.len() - 1], row[row.len() - 1].as_str(), "{analysis}: label");
        }
    }
    // The planted cluster is among the montage's thresholded voxels in every voxelwise analysis.
    let planted = Tsv::read(&dir.path().join("data/ketamine-response/truth/planted.tsv"));
    let planted: Vec<&str> = planted.rows[0][planted.col("voxels_ijk")].split(';').collect();
    let montages = probe["montages"].as_array().unwrap();
    assert_eq!(montages.len(), 3);
    for m in montages {
        let shown: Vec<&str> = m[1].as_str().unwrap().split(';').collect();
        let hit = planted.iter().filter(|v| shown.contains(v)).count();
        assert!(hit > 0, "{}: no planted voxel among the {} thresholded voxels shown", m[0], shown.len());
    }
}
