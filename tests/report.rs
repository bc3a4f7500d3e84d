//! The report and `verify` on a reduced embedded study: a run writes a self-contained report
//! whose figures agree with the result tables, `neurospec report` rebuilds it byte for byte from
//! the folder alone without touching a result, and `verify` passes on an untouched folder and
//! names a tampered result file and the stage that made it.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::Path;

fn small_study(dir: &Path) {
    embedded_study(
        dir,
        &[
            ("subjects = 25000", "subjects = 5000"),
            ("permutations = 5000", "permutations = 999"),
            ("bootstrap = 1000", "bootstrap = 100"),
        ],
    );
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Values of `attr="..."` on every element of `tag` with `class="class"` in an SVG/HTML text.
fn attributes(text: &str, marker: &str, attr: &str) -> Vec<String> {
    text.split(marker)
        .skip(1)
        .filter_map(|rest| {
            let element = &rest[..rest.find('>').unwrap_or(rest.len())];
            let start = element.find(&format!("{attr}=\""))? + attr.len() + 2;
            Some(element[start..start + element[start..].find('"')?].to_string())
        })
        .collect()
}

#[test]
fn the_report_is_self_contained_agrees_with_the_tables_and_is_rebuilt_from_the_folder_alone() {
    let dir = tempfile::tempdir().unwrap();
    small_study(dir.path());
    run_json(dir.path(), "study.toml", &[]);
    let out = dir.path().join("derivatives/ukb-symptoms");
    let html = read(&out.join("report.html"));

    // Self-contained: no script, no external stylesheet, nothing fetched from a network.
    for forbidden in ["<script", "<link", "src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!html.contains(forbidden), "report.html contains `{forbidden}`");
    }
    // The parts this study has, and not the ones it lacks.
    for id in ["study", "flow", "association", "methods", "provenance"] {
        assert!(html.contains(&format!("<section id=\"{id}\">")), "no section {id}");
    }
    for id in ["qc", "connectivity", "factors", "prediction", "group", "roc"] {
        assert!(!html.contains(&format!("<section id=\"{id}\">")), "section {id} in a study without it");
    }
    // Every figure shown is also a file under figures/, with the same SVG.
    let names = attributes(&html, "<figure ", "data-figure");
    assert!(names.len() >= 5, "{names:?}");
    for name in &names {
        let svg = read(&out.join(format!("figures/{name}.svg")));
        assert!(html.contains(&svg), "figures/{name}.svg differs from the inline figure");
    }

    // The participant flow shows the counts of exclusion_summary.tsv and split.tsv.
    let summary = Tsv::read(&out.join("exclusion_summary.tsv"));
    let flow = read(&out.join("figures/participant_flow.svg"));
    let available = summary.num(0, "subjects") as usize;
    assert_eq!(available, 5000);
    assert!(flow.contains(&format!("Available: N = {available}")), "{flow}");
    let excluded: Vec<usize> =
        attributes(&flow, "<g class=\"excluded\"", "data-n").iter().map(|n| n.parse().unwrap()).collect();
    // One box per reason, in the file's order, with the reason's total over its columns.
    let mut expected: Vec<(String, usize)> = Vec::new();
    for r in 1..summary.rows.len() - 1 {
        let (reason, n) = (summary.text(r, "reason").to_string(), summary.num(r, "subjects") as usize);
        match expected.iter_mut().find(|(x, _)| *x == reason) {
            Some(e) => e.1 += n,
            None => expected.push((reason, n)),
        }
    }
    assert!(expected.len() >= 2, "{expected:?}");
    assert_eq!(excluded, expected.iter().map(|e| e.1).collect::<Vec<_>>());
    let included = summary.num(summary.rows.len() - 1, "subjects") as usize;
    assert_eq!(available - expected.iter().map(|e| e.1).sum::<usize>(), included);
    assert!(flow.contains(&format!("Included: N = {included}")), "{flow}");
    let split = Tsv::read(&out.join("split.tsv"));
    let held_out = (0..split.rows.len()).filter(|&r| split.text(r, "sample") == "held-out").count();
    assert!(flow.contains(&format!("held-out: n = {held_out}")), "{flow}");

    // The forest plot has one row per significant discovery feature (up to 40), by q.
    let discovery = Tsv::read(&out.join("association/discovery.tsv"));
    let significant: BTreeSet<String> = (0..discovery.rows.len())
        .filter(|&r| discovery.text(r, "significant") == "TRUE")
        .map(|r| format!("{} ~ {}", discovery.text(r, "outcome"), discovery.text(r, "feature")))
        .collect();
    assert!(!significant.is_empty(), "the planted effects are significant at this size");
    let forest = read(&out.join("figures/association_discovery_forest.svg"));
    let rows: BTreeSet<String> = attributes(&forest, "<g class=\"row\"", "data-label").into_iter().collect();
    assert_eq!(rows.len(), significant.len().min(40));
    assert!(rows.is_subset(&significant), "{rows:?} vs {significant:?}");

    // Methods carry the numbers and the references.
    let methods = read(&out.join("methods.md"));
    assert!(methods.contains(&format!("Of {available} subjects available")), "{methods}");
    assert!(methods.contains("999 label permutations"), "{methods}");
    assert!(methods.contains("Benjamini Y, Hochberg Y (1995)"), "{methods}");
    assert!(methods.contains("Freedman D, Lane D (1983)"), "{methods}");

    // `neurospec report` rebuilds the same bytes from the folder alone and changes no result.
    let before = outputs(&out);
    let provenance_before = std::fs::read_dir(out.join("provenance")).unwrap().count();
    std::fs::remove_file(out.join("report.html")).unwrap();
    std::fs::remove_dir_all(out.join("figures")).unwrap();
    let status = neurospec(dir.path(), &["report", "derivatives/ukb-symptoms"]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let rebuilt = read(&out.join("report.html"));
    let first_difference = rebuilt.bytes().zip(html.bytes()).position(|(a, b)| a != b);
    assert!(rebuilt == html, "the rebuilt report differs from byte {first_difference:?}");
    assert_eq!(outputs(&out), before, "`report` changed a result file");
    assert_eq!(std::fs::read_dir(out.join("provenance")).unwrap().count(), provenance_before);
    // The study file is in the folder, with the hash the lock records.
    let lock: serde_json::Value = serde_json::from_str(&read(&out.join("neurospec.lock"))).unwrap();
    let copy = std::fs::read(out.join("study.toml")).unwrap();
    assert_eq!(blake3::hash(&copy).to_hex().to_string(), lock["study_hash"].as_str().unwrap());
}

#[test]
fn verify_passes_on_the_published_folder_and_names_a_tampered_file_and_its_stage() {
    let dir = tempfile::tempdir().unwrap();
    small_study(dir.path());
    run_json(dir.path(), "study.toml", &[]);
    let out = dir.path().join("derivatives/ukb-symptoms");

    let ok = neurospec(dir.path(), &["verify", "derivatives/ukb-symptoms"]);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "verify failed on an untouched folder:\n{stdout}\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(stdout.contains("verified:"), "{stdout}");

    // Change one digit of one result; verify (given the study file this time) names it.
    let table = out.join("association/held-out.tsv");
    let text = read(&table);
    let at = text.find("0.").expect("a number") + 2;
    let digit = text.as_bytes()[at];
    let mut tampered = text.clone().into_bytes();
    tampered[at] = if digit == b'9' { b'8' } else { digit + 1 };
    std::fs::write(&table, tampered).unwrap();
    let bad = neurospec(dir.path(), &["verify", "study.toml"]);
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("DIFFERS")).collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(lines[0].contains("association/held-out.tsv") && lines[0].contains("(stage fdr/held-out)"), "{stdout}");
    assert!(lines[0].contains("edited after the run"), "{stdout}");
}
