//! Located `check` errors for the inference options of issue 11: TFCE on a region-level
//! analysis, NBS on a voxelwise one, a bad NBS threshold, and target rotations whose target is
//! missing or does not match the items or the factor count. All messages are one snapshot.

mod common;

use common::*;
use std::path::Path;

/// `check` of `study` (copied into a fresh folder with `files`, after `edits`) fails with exit
/// code 1 and no panic; returns its stderr with the folder replaced by `[DIR]`.
fn check_fails(study: &str, edits: &[(&str, &str)], files: &[(&str, String)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut text = std::fs::read_to_string(repo().join("studies").join(study)).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{study} has no `{from}`");
        text = text.replacen(from, to, 1);
    }
    std::fs::write(dir.path().join("study.toml"), text).unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    let out = neurospec(dir.path(), &["check", "study.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "check should fail: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    redact(&stderr, dir.path())
}

fn redact(text: &str, dir: &Path) -> String {
    let real = dir.canonicalize().unwrap();
    let text = text.replace(&real.display().to_string(), "[DIR]").replace(&dir.display().to_string(), "[DIR]");
    // The scratch folder's random suffix.
    text.lines()
        .map(|line| match line.find("scratch/check-") {
            Some(at) => format!("{}scratch/check-[RANDOM]{}", &line[..at], &line[at + 20..]),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// A target file for the amygdala study's 33 items with `columns` factor columns; `misspelt`
/// renames the first item's row.
fn target(columns: usize, misspelt: bool) -> String {
    let study = std::fs::read_to_string(repo().join("studies/amygdala-wellbeing.toml")).unwrap();
    let start = study.find("items = [").unwrap();
    let end = start + study[start..].find(']').unwrap();
    let items: Vec<&str> = study[start..end].split('"').skip(1).step_by(2).collect();
    assert_eq!(items.len(), 33);
    let mut out = format!("item\t{}\n", (1..=columns).map(|f| format!("F{f}")).collect::<Vec<_>>().join("\t"));
    for (i, item) in items.iter().enumerate() {
        let name = if misspelt && i == 0 { "life_satisfactoin" } else { item };
        let cells: Vec<&str> = (0..columns).map(|f| if f == i % columns { "0.7" } else { "0" }).collect();
        out.push_str(&format!("{name}\t{}\n", cells.join("\t")));
    }
    out
}

#[test]
fn inference_options_are_checked_where_they_are_written() {
    let mut report = String::new();
    report += "== TFCE on edges, NBS on voxels, NBS with two thresholds, TFCE steps out of range ==\n";
    report += &check_fails(
        "ketamine-amygdala.toml",
        &[
            ("edges = [\"conn_*\"]\nsessions = [\"pre\"]", "edges = [\"conn_*\"]\ntfce = true\nsessions = [\"pre\"]"),
            (
                "permutations = 5000\ncluster_p = 0.001\npeak_labels = \"targets\"",
                "permutations = 5000\ncluster_p = 0.001\npeak_labels = \"targets\"\nnbs = { threshold_t = 3.0 }",
            ),
            (
                "[group.change_pre]\ndesign = \"correlation\"",
                "[group.change_pre]\ntfce = true\ntfce_steps = 5\ndesign = \"correlation\"",
            ),
        ],
        &[],
    );
    report += "\n== TFCE exponents that are not positive finite numbers ==\n";
    report += &check_fails(
        "ketamine-amygdala.toml",
        &[(
            "[group.change_pre]\ndesign = \"correlation\"",
            "[group.change_pre]\ntfce = true\ntfce_e = 0.0\ntfce_h = -2.0\ndesign = \"correlation\"",
        )],
        &[],
    );
    report += "\n== NBS needs one threshold ==\n";
    report += &check_fails(
        "ketamine-amygdala.toml",
        &[(
            "edges = [\"conn_*\"]\nsessions = [\"pre\"]",
            "edges = [\"conn_*\"]\nnbs = { threshold_t = 3.0, threshold_p = 0.001 }\nsessions = [\"pre\"]",
        )],
        &[],
    );
    report += "\n== target rotation without a target, with a data-driven count ==\n";
    report += &check_fails("amygdala-wellbeing.toml", &[("rotation = \"oblimin\"", "rotation = \"target_obl\"")], &[]);
    report += "\n== target with 3 factor columns for 4 factors ==\n";
    report += &check_fails(
        "amygdala-wellbeing.toml",
        &[(
            "count = \"parallel\"\nmethod = \"minres\"\nrotation = \"oblimin\"",
            "count = 4\nmethod = \"minres\"\nrotation = \"target_ort\"\ntarget = \"target.tsv\"",
        )],
        &[("target.tsv", target(3, false))],
    );
    report += "\n== target row for an unknown item ==\n";
    report += &check_fails(
        "amygdala-wellbeing.toml",
        &[(
            "count = \"parallel\"\nmethod = \"minres\"\nrotation = \"oblimin\"",
            "count = 4\nmethod = \"minres\"\nrotation = \"target_ort\"\ntarget = \"target.tsv\"",
        )],
        &[("target.tsv", target(4, true))],
    );
    report += "\n== target given to another rotation ==\n";
    report += &check_fails(
        "amygdala-wellbeing.toml",
        &[("rotation = \"oblimin\"", "rotation = \"oblimin\"\ntarget = \"target.tsv\"")],
        &[("target.tsv", target(4, false))],
    );
    insta::assert_snapshot!(report);
}
