//! A real lab's tables: text covariates used bare or as categories, rare levels, unknown
//! references, and the two spellings of a BIDS subject id — each a located message in `check`.

mod common;

use common::*;

fn study(covariates: &str) -> String {
    format!(
        r#"
[study]
name = "real-tables"
seed = 1
subject_id = "participant_id"

[tables.data]
path = "data.tsv"

[features]
fs = ["Left-Amygdala"]

[association]
outcomes = ["y"]
covariates = {covariates}
"#
    )
}

fn check(dir: &std::path::Path, covariates: &str) -> (bool, String) {
    std::fs::write(dir.join("study.toml"), study(covariates)).unwrap();
    let out = neurospec(dir, &["check", "study.toml"]);
    (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
}

fn fixture(dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string(repo().join("tests/fixtures/categorical/data.tsv")).unwrap();
    std::fs::write(dir.join("data.tsv"), &text).unwrap();
    text
}

#[test]
fn text_covariates_get_a_hint_and_categories_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let text = fixture(dir.path());
    let (ok, e) = check(dir.path(), r#"["age", "sex"]"#);
    assert!(!ok);
    assert!(e.contains("covariate `sex` holds text") && e.contains("write `C(sex)`"), "{e}");
    let (ok, e) = check(dir.path(), r#"["age", "C(sex)", "C(site)"]"#);
    assert!(ok, "{e}");
    let (ok, e) = check(dir.path(), r#"["C(site, ref=\"Oxford\")"]"#);
    assert!(!ok);
    assert!(
        e.contains("no subject of the all sample has the reference level `Oxford` (levels: Cheadle, Nottingham, Reading, St Albans)"),
        "{e}"
    );
    // One subject at a site of its own.
    let lone = text.replacen("\tCheadle\t", "\tOxford\t", 1);
    std::fs::write(dir.path().join("data.tsv"), lone).unwrap();
    let (ok, e) = check(dir.path(), r#"["C(site)"]"#);
    assert!(!ok);
    assert!(e.contains("`C(site)`: level `Oxford` has 1 subject in the all sample"), "{e}");
    let (ok, e) = check(dir.path(), r#"["C(site"]"#);
    assert!(!ok);
    assert!(e.contains("study.toml:") && e.contains("closing `)`"), "{e}");
}

#[test]
fn bids_prefixes_join_and_collide() {
    let dir = tempfile::tempdir().unwrap();
    let text = fixture(dir.path());
    // Half the ids without the prefix: still one subject each, and the study runs.
    let mixed: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| if i % 2 == 1 { l.replacen("sub-", "", 1) } else { l.to_string() } + "\n")
        .collect();
    std::fs::write(dir.path().join("data.tsv"), &mixed).unwrap();
    std::fs::write(dir.path().join("study.toml"), study(r#"["age"]"#)).unwrap();
    run_json(dir.path(), "study.toml", &[]);
    let stats = Tsv::read(&dir.path().join("derivatives/real-tables/association/all.tsv"));
    assert_eq!(stats.num(0, "n"), 240.0);
    // `sub-0001` and `0001` in one table are the same subject twice.
    std::fs::write(
        dir.path().join("data.tsv"),
        format!("{text}{}", text.lines().nth(1).unwrap().replacen("sub-", "", 1) + "\n"),
    )
    .unwrap();
    let out = neurospec(dir.path(), &["check", "study.toml"]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        e.contains(
            "data.tsv:242: subject id `0001` appears twice (lines 2 and 242) (`sub-0001` and `0001` are one subject"
        ),
        "{e}"
    );
}

/// A prediction confound with a level too rare for the training sample fails in `check`.
#[test]
fn rare_levels_of_prediction_confounds_fail_in_check() {
    let dir = tempfile::tempdir().unwrap();
    let text = fixture(dir.path());
    std::fs::write(dir.path().join("data.tsv"), text.replacen("\tCheadle\t", "\tOxford\t", 1)).unwrap();
    let study = r#"
[study]
name = "real-tables"
seed = 1
subject_id = "participant_id"

[tables.data]
path = "data.tsv"

[features]
fs = ["Left-Amygdala", "rh_*", "lh_*"]

[prediction]
outcomes = ["y"]
features = ["fs"]
confounds = ["age", "C(site)"]
models = ["ridge"]
folds = 5
repeats = 1
permutations = 0
"#;
    std::fs::write(dir.path().join("study.toml"), study).unwrap();
    let out = neurospec(dir.path(), &["check", "study.toml"]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(e.contains("predict/y: `C(site)`: level `Oxford` has 1 subject in the all sample"), "{e}");
    // Without the lone subject the same study runs and publishes the coding.
    fixture(dir.path());
    run_json(dir.path(), "study.toml", &[]);
    let levels =
        std::fs::read_to_string(dir.path().join("derivatives/real-tables/prediction/y_covariate_levels.tsv")).unwrap();
    assert!(levels.contains("C(site)\tsite\tall\tCheadle\tTRUE\t60"), "{levels}");
}
