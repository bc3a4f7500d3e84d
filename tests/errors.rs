//! The bad-input catalogue: each mistake gives a clear, located error (snapshot of the exact
//! message), exit code 1, no panic, and nothing written to the output folder.

mod common;

use common::*;
use std::path::Path;

/// A small file-based cohort (written by `neurospec simulate`) in a fresh folder.
fn cohort(subjects: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = neurospec(dir.path(), &["simulate", "ukb-symptoms", "--out", ".", "--subjects", &subjects.to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    dir
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no `{from}`", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// `check` and `run` both fail with exit code 1; returns check's stderr. `run` must not create
/// the output folder.
fn fails(dir: &Path) -> String {
    let check = neurospec(dir, &["check", "study.toml"]);
    let stderr = String::from_utf8_lossy(&check.stderr).to_string();
    assert_eq!(check.status.code(), Some(1), "check should fail with 1: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let run = neurospec(dir, &["run", "study.toml", "-j", "1"]);
    assert_eq!(run.status.code(), Some(1), "run should fail with 1: {}", String::from_utf8_lossy(&run.stderr));
    assert!(!String::from_utf8_lossy(&run.stderr).contains("panicked"));
    assert!(!dir.join("derivatives").exists(), "a failed run wrote outputs");
    stderr
}

#[test]
fn toml_syntax_error() {
    let dir = cohort(100);
    edit(&dir.path().join("study.toml"), "[study]", "[study");
    insta::assert_snapshot!(fails(dir.path()));
}

#[test]
fn unknown_key_suggests_the_right_one() {
    let dir = cohort(100);
    edit(&dir.path().join("study.toml"), "permutations = ", "permutaions = ");
    insta::assert_snapshot!(fails(dir.path()));
}

#[test]
fn wrong_type() {
    let dir = cohort(100);
    edit(&dir.path().join("study.toml"), "k = 2.5", "k = \"2.5\"");
    insta::assert_snapshot!(fails(dir.path()));
}

#[test]
fn missing_file() {
    let dir = cohort(100);
    std::fs::remove_file(dir.path().join("idps.tsv")).unwrap();
    insta::assert_snapshot!(fails(dir.path()));
}

#[test]
fn missing_columns_are_all_reported_with_suggestions() {
    let dir = cohort(100);
    let study = dir.path().join("study.toml");
    edit(&study, "\"age^2\"", "\"agee^2\"");
    edit(&study, "\"f2060_{visit}\"", "\"f2600_{visit}\"");
    insta::assert_snapshot!(fails(dir.path()));
}

#[test]
fn out_of_range_item() {
    let dir = cohort(100);
    let pheno = dir.path().join("pheno.tsv");
    let text = std::fs::read_to_string(&pheno).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let header: Vec<&str> = lines[0].split('\t').collect();
    let column = header.iter().position(|h| *h == "f1200_0").unwrap();
    let mut cells: Vec<String> = lines[5].split('\t').map(String::from).collect();
    cells[column] = "7".into();
    lines[5] = cells.join("\t");
    std::fs::write(&pheno, lines.join("\n") + "\n").unwrap();
    insta::assert_snapshot!(fails(dir.path()));
}

#[test]
fn empty_split() {
    let dir = cohort(100);
    let study = dir.path().join("study.toml");
    let text = std::fs::read_to_string(&study).unwrap();
    let start = text.find("[split]").unwrap();
    let end = start + text[start..].find("\n\n").unwrap_or(text.len() - start);
    let replaced = format!("{}[split]\nmethod = \"random\"\nheld_out_fraction = 0.98{}", &text[..start], &text[end..]);
    std::fs::write(&study, replaced).unwrap();
    insta::assert_snapshot!(fails(dir.path()));
}

#[test]
fn duplicate_subject_ids() {
    let dir = cohort(100);
    let idps = dir.path().join("idps.tsv");
    let text = std::fs::read_to_string(&idps).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let second_id = lines[2].split('\t').next().unwrap();
    let fourth = lines[4].split_once('\t').unwrap().1;
    let mut edited: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    edited[4] = format!("{second_id}\t{fourth}");
    std::fs::write(&idps, edited.join("\n") + "\n").unwrap();
    insta::assert_snapshot!(fails(dir.path()));
}

#[test]
fn non_numeric_cell() {
    let dir = cohort(100);
    let pheno = dir.path().join("pheno.tsv");
    let text = std::fs::read_to_string(&pheno).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let header: Vec<&str> = lines[0].split('\t').collect();
    let column = header.iter().position(|h| *h == "height").unwrap();
    let mut cells: Vec<String> = lines[3].split('\t').map(String::from).collect();
    cells[column] = "tall".into();
    lines[3] = cells.join("\t");
    std::fs::write(&pheno, lines.join("\n") + "\n").unwrap();
    insta::assert_snapshot!(fails(dir.path()));
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = neurospec(dir.path(), &["run"]);
    assert_eq!(out.status.code(), Some(2));
    let out = neurospec(dir.path(), &["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let out = neurospec(dir.path(), &["check", "nowhere.toml"]);
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stderr));
}

#[test]
fn every_unknown_key_is_reported_at_once() {
    let dir = cohort(100);
    let study = dir.path().join("study.toml");
    edit(&study, "permutations = ", "permutaions = ");
    edit(&study, "held_out_fraction = ", "held_out_fractoin = ");
    edit(&study, "[exclusions]", "[exclusions]\ncomplete_case = [\"age\"]");
    insta::assert_snapshot!(fails(dir.path()));
}

#[test]
fn too_few_subjects_for_the_model_fail_in_check() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.tsv"),
        "eid\tage\ty\tx\n1\t50\t1.5\t2\n2\t60\t2.5\t3\n3\t55\t1.0\t5\n4\t52\tNA\t1\n5\t61\t3.1\t2.2\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("study.toml"),
        "[study]\nname = \"tiny\"\nseed = 1\n\n[tables.t]\npath = \"t.tsv\"\n\n[features]\ng = [\"x\"]\n\n\
         [association]\noutcomes = [\"y\"]\ncovariates = [\"age\"]\n",
    )
    .unwrap();
    insta::assert_snapshot!(fails(dir.path()));
}

/// `neurospec schema | head`: output to a closed pipe is a quiet success, never a panic.
#[test]
fn a_closed_pipe_is_a_quiet_exit() {
    for args in [&["schema"][..], &["efa", "--help"][..]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let child = std::process::Command::new(bin())
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        if args[0] == "schema" {
            assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
            assert!(stderr.is_empty(), "{args:?}: {stderr}");
        }
    }
}

#[test]
fn malformed_resources_are_located_with_the_notation_to_use() {
    let dir = cohort(100);
    let study = dir.path().join("study.toml");
    let mut text = std::fs::read_to_string(&study).unwrap();
    text.push_str(
        "\n[resources.imaging-run]\ncpus = 0\nmemory = \"2 GB\"\ntime = \"10 min\"\n\n[resources.imaging]\ncpus = 1\n\n[resources.publish]\nmemory = \"lots\"\n",
    );
    std::fs::write(&study, text).unwrap();
    insta::assert_snapshot!(fails(dir.path()));
}
