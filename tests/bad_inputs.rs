//! The bad-input corpus: a stranger's study files and tables, each a mistake neurospec must
//! answer with a clear, located message — never a panic, a hang, a silent change or a write
//! outside the study's folder. Every case runs `neurospec check` on a copy of a small simulated
//! cohort (some also `run`); the messages of all cases are one snapshot, so a changed message is
//! a visible diff, and the test counts panics (there must be none).

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// What a case does to the cohort before checking it.
enum Mutation {
    /// Replace text in study.toml (each `from` must occur).
    Study(&'static [(&'static str, &'static str)]),
    /// Append text to study.toml.
    Append(&'static str),
    /// Replace study.toml entirely.
    Whole(&'static str),
    /// Write a file (relative to the cohort) and optionally edit the study.
    File(&'static str, &'static str, &'static [(&'static str, &'static str)]),
    /// Replace text in a data file.
    Data(&'static str, &'static str, &'static str),
}

use Mutation::*;

/// (case name, mutation, also `run` it).
const CASES: &[(&str, Mutation, bool)] = &[
    // The study file itself.
    ("toml syntax: unclosed header", Study(&[("[study]", "[study")]), false),
    ("toml syntax: unterminated string", Study(&[("name = \"ukb-symptoms\"", "name = \"ukb-symptoms")]), false),
    ("json instead of toml", Whole("{\"study\": {\"name\": \"x\", \"seed\": 1}}"), false),
    ("empty study file", Whole(""), false),
    ("missing [study] header", Study(&[("[study]\n", "")]), false),
    ("missing seed", Study(&[("seed = 1\n", "")]), false),
    ("seed is text", Study(&[("seed = 1", "seed = \"one\"")]), false),
    ("negative seed", Study(&[("seed = 1", "seed = -1")]), false),
    ("unknown top-level section", Append("\n[analysis]\nx = 1\n"), false),
    ("unknown key with suggestion", Study(&[("permutations = 5000", "permutaions = 5000")]), false),
    ("two unknown keys at once", Study(&[("ci_level = 0.95", "ci_levl = 0.95"), ("q = 0.05", "qq = 0.05")]), false),
    ("duplicate key", Study(&[("seed = 1", "seed = 1\nseed = 2")]), false),
    ("unknown enum value", Study(&[("method = \"random\"", "method = \"randm\"")]), false),
    // Where the study writes.
    ("study name climbs out", Study(&[("name = \"ukb-symptoms\"", "name = \"../../x\"")]), false),
    ("study name absolute", Study(&[("name = \"ukb-symptoms\"", "name = \"/tmp/x\"")]), false),
    ("study name with a slash", Study(&[("name = \"ukb-symptoms\"", "name = \"a/b\"")]), false),
    ("study name empty", Study(&[("name = \"ukb-symptoms\"", "name = \"\"")]), false),
    ("outputs dir climbs out", Study(&[("[outputs]", "[outputs]\ndir = \"../../../x\"")]), true),
    ("outputs dir absolute", Study(&[("[outputs]", "[outputs]\ndir = \"/tmp/neurospec-outside\"")]), true),
    ("outputs dir empty", Study(&[("[outputs]", "[outputs]\ndir = \"\"")]), true),
    ("outputs dir is the study folder", Study(&[("[outputs]", "[outputs]\ndir = \"a/..\"")]), true),
    // Tables.
    ("table file missing", Study(&[("path = \"idps.tsv\"", "path = \"idp.tsv\"")]), false),
    ("table path is a folder", File("folder/x.txt", "x\n", &[("path = \"idps.tsv\"", "path = \"folder\"")]), false),
    (
        "table of unknown format",
        File("idps.dat", "eid\tx\n1\t2\n", &[("path = \"idps.tsv\"", "path = \"idps.dat\"")]),
        false,
    ),
    (
        "non-table file declared tsv",
        File(
            "passwd",
            "root:x:0:0:root:/root:/bin/bash\n",
            &[("path = \"idps.tsv\"", "path = \"passwd\"\nformat = \"tsv\"")],
        ),
        false,
    ),
    (
        "table needs exactly one source",
        Study(&[("path = \"idps.tsv\"", "path = \"idps.tsv\"\nsimulated = \"idps\"")]),
        false,
    ),
    ("simulated table without [simulate]", Study(&[("path = \"idps.tsv\"", "simulated = \"idps\"")]), false),
    ("unknown imaging table", Study(&[("path = \"idps.tsv\"", "imaging = \"timeseries\"")]), false),
    ("connectome table without imaging", Study(&[("path = \"idps.tsv\"", "imaging = \"connectome\"")]), false),
    ("no id column", Study(&[("subject_id = \"eid\"", "subject_id = \"participant_id\"")]), false),
    (
        "column in two tables",
        File(
            "more.tsv",
            "eid\tage\n1000001\t3\n",
            &[("[tables.pheno]", "[tables.more]\npath = \"more.tsv\"\n\n[tables.pheno]")],
        ),
        false,
    ),
    (
        "header-only table",
        File(
            "empty.tsv",
            "eid\textra_col\n",
            &[("[tables.pheno]", "[tables.more]\npath = \"empty.tsv\"\n\n[tables.pheno]")],
        ),
        false,
    ),
    (
        "empty table file",
        File("empty.tsv", "", &[("[tables.pheno]", "[tables.more]\npath = \"empty.tsv\"\n\n[tables.pheno]")]),
        false,
    ),
    ("ragged row: extra field", Data("pheno.tsv", "1000002\t45.6\t0", "1000002\t45.6\t0\t9"), false),
    ("ragged row: missing field", Data("pheno.tsv", "1000002\t45.6\t0\t", "1000002\t45.6\t"), false),
    ("last row cut mid-line", Data("pheno.tsv", "", ""), false),
    ("duplicate subject id", Data("pheno.tsv", "1000002\t", "1000001\t"), false),
    ("empty subject id", Data("pheno.tsv", "1000002\t", "\t"), false),
    ("text in a numeric covariate", Data("pheno.tsv", "1000002\t45.6", "1000002\tforty"), false),
    ("inf in a covariate", Data("pheno.tsv", "1000002\t45.6", "1000002\tinf"), false),
    ("item out of range", Data("pheno.tsv", "1000002\t45.6\t0\t178.6\t0\t2", "1000002\t45.6\t0\t178.6\t0\t7"), false),
    // Scores.
    ("score item missing", Study(&[("\"f1200_{visit}\"", "\"f1201_{visit}\"")]), false),
    ("score with no items", Study(&[("items = [\"f1200_{visit}\"]", "items = []")]), false),
    ("empty score range", Study(&[("range = [0.0, 2.0]", "range = [2.0, 0.0]")]), false),
    ("infinite score range", Study(&[("range = [0.0, 2.0]", "range = [0.0, inf]")]), false),
    ("reverse item not an item", Study(&[("range = [0.0, 2.0]", "range = [0.0, 2.0]\nreverse = [\"f9\"]")]), false),
    (
        "visit placeholder without visits",
        Study(&[("visits = [\"0\", \"2\"]\nmin_visits = 1\n\n[features]", "\n[features]")]),
        false,
    ),
    (
        "prorate without min_items",
        Study(&[(
            "missing_items = \"exclude\"\nvisits = [\"0\", \"2\"]\nmin_visits = 1\n\n[scores.insomnia]",
            "missing_items = \"prorate\"\nvisits = [\"0\", \"2\"]\nmin_visits = 1\n\n[scores.insomnia]",
        )]),
        false,
    ),
    (
        "min_visits too large",
        Study(&[(
            "visits = [\"0\", \"2\"]\nmin_visits = 1\n\n[features]",
            "visits = [\"0\", \"2\"]\nmin_visits = 3\n\n[features]",
        )]),
        false,
    ),
    ("score named like a column", Study(&[("[scores.anxiety]", "[scores.age]")]), false),
    (
        "non-finite missing code",
        Study(&[(
            "missing_codes = [-1.0, -3.0]\nmissing_items = \"exclude\"\nvisits = [\"0\", \"2\"]\nmin_visits = 1\n\n[features]",
            "missing_codes = [nan]\nmissing_items = \"exclude\"\nvisits = [\"0\", \"2\"]\nmin_visits = 1\n\n[features]",
        )]),
        false,
    ),
    // Features, exclusions, split.
    ("feature pattern matches nothing", Study(&[("area = [\"area_*\"]", "area = [\"aera_*\"]")]), false),
    ("feature column missing", Study(&[("global = [\"total_*\"]", "global = [\"total_brain\"]")]), false),
    (
        "complete-case column missing",
        Study(&[("complete_cases = [\"height\", \"handedness\"]", "complete_cases = [\"hieght\"]")]),
        false,
    ),
    ("iqr k negative", Study(&[("k = 2.5", "k = -1.0")]), false),
    ("iqr k infinite", Study(&[("k = 2.5", "k = inf")]), false),
    ("held-out fraction 0", Study(&[("held_out_fraction = 0.155", "held_out_fraction = 0.0")]), false),
    ("held-out fraction above 1", Study(&[("held_out_fraction = 0.155", "held_out_fraction = 1.5")]), false),
    ("split leaves too few", Study(&[("held_out_fraction = 0.155", "held_out_fraction = 0.95")]), false),
    ("split without fraction", Study(&[("held_out_fraction = 0.155", "")]), false),
    ("column split without column", Study(&[("method = \"random\"", "method = \"column\"")]), false),
    (
        "stratified split column missing",
        Study(&[("method = \"random\"", "method = \"stratified\"\ncolumn = \"sitee\"")]),
        false,
    ),
    // Association.
    (
        "outcome missing",
        Study(&[(
            "outcomes = [\"insomnia\", \"depression\", \"anxiety\"]",
            "outcomes = [\"insomnia\", \"depresion\"]",
        )]),
        false,
    ),
    ("no outcomes", Study(&[("outcomes = [\"insomnia\", \"depression\", \"anxiety\"]", "outcomes = []")]), false),
    (
        "covariate missing",
        Study(&[("\"height\", \"handedness\"]\npermutations", "\"hight\", \"handedness\"]\npermutations")]),
        false,
    ),
    ("covariate term malformed", Study(&[("\"age^2\"", "\"age^\"")]), false),
    ("feature group undeclared", Study(&[("ci_level = 0.95\n", "ci_level = 0.95\nfeatures = [\"areas\"]\n")]), false),
    ("too few permutations", Study(&[("permutations = 5000", "permutations = 50")]), false),
    ("permutations beyond memory", Study(&[("permutations = 5000", "permutations = 9223372036854775807")]), false),
    ("permutation p without permutations", Study(&[("permutations = 5000", "permutations = 0")]), false),
    ("too few bootstrap resamples", Study(&[("bootstrap = 1000", "bootstrap = 10")]), false),
    ("bootstrap beyond memory", Study(&[("bootstrap = 1000", "bootstrap = 100000000000")]), false),
    ("ci level 1", Study(&[("ci_level = 0.95", "ci_level = 1.0")]), false),
    ("outcome differences without bootstrap", Study(&[("bootstrap = 1000", "bootstrap = 0")]), false),
    (
        "outcome differences naming an unknown outcome and one outcome twice",
        Study(&[(
            "differences = [[\"insomnia\", \"depression\"]",
            "differences = [[\"insomnia\", \"sleep\"], [\"anxiety\", \"anxiety\"]",
        )]),
        false,
    ),
    ("region means pattern without {b}", Study(&[("edges = \"fc_{a}_{b}\"", "edges = \"fc_{a}\"")]), false),
    ("region means over a group that is not edges", Study(&[("group = \"connectivity\"", "group = \"area\"")]), false),
    ("fdr q 0", Study(&[("q = 0.05", "q = 0.0")]), false),
    ("replication alpha 2", Study(&[("alpha = 0.05", "alpha = 2.0")]), false),
    (
        "unknown fdr family key",
        Study(&[("families = [\"outcome\", \"group\"]", "families = [\"outcome\", \"modality\"]")]),
        false,
    ),
    // Factors and prediction (appended sections).
    ("factors with two items", Append("\n[factors]\nitems = [\"age\", \"height\"]\n"), false),
    (
        "factors count 0",
        Append("\n[factors]\nitems = [\"age\", \"height\", \"sex\", \"handedness\"]\ncount = 0\n"),
        false,
    ),
    (
        "factors names mismatch",
        Append("\n[factors]\nitems = [\"age\", \"height\", \"sex\", \"handedness\"]\ncount = 2\nnames = [\"a\"]\n"),
        false,
    ),
    (
        "factors few simulations",
        Append("\n[factors]\nitems = [\"age\", \"height\", \"sex\", \"handedness\"]\nparallel_simulations = 10\n"),
        false,
    ),
    (
        "factors infinite gamma",
        Append("\n[factors]\nitems = [\"age\", \"height\", \"sex\", \"handedness\"]\ngamma = inf\n"),
        false,
    ),
    ("prediction without features", Append("\n[prediction]\noutcomes = [\"insomnia\"]\nfeatures = []\n"), false),
    (
        "prediction one fold",
        Append("\n[prediction]\noutcomes = [\"insomnia\"]\nfeatures = [\"area\"]\nfolds = 1\n"),
        false,
    ),
    (
        "prediction folds beyond limit",
        Append("\n[prediction]\noutcomes = [\"insomnia\"]\nfeatures = [\"area\"]\nfolds = 100000\n"),
        false,
    ),
    (
        "prediction cpm_p 0",
        Append("\n[prediction]\noutcomes = [\"insomnia\"]\nfeatures = [\"area\"]\ncpm_p = 0.0\n"),
        false,
    ),
    (
        "prediction negative ridge alpha",
        Append("\n[prediction]\noutcomes = [\"insomnia\"]\nfeatures = [\"area\"]\nridge_alphas = [-1.0]\n"),
        false,
    ),
    (
        "prediction no models",
        Append("\n[prediction]\noutcomes = [\"insomnia\"]\nfeatures = [\"area\"]\nmodels = []\n"),
        false,
    ),
    // Groups and ROC without imaging.
    (
        "group edges without imaging",
        Append("\n[group.g]\ndesign = \"two-sample\"\ngroup = \"sex\"\nedges = [\"conn_*\"]\n"),
        false,
    ),
    (
        "group with seed and edges",
        Append("\n[group.g]\ndesign = \"two-sample\"\ngroup = \"sex\"\nseed = \"x\"\nedges = [\"conn_*\"]\n"),
        false,
    ),
    (
        "group connectivity 7",
        Append("\n[group.g]\ndesign = \"correlation\"\nvariable = \"age\"\nseed = \"x\"\nconnectivity = 7\n"),
        false,
    ),
    (
        "group cluster_p 2",
        Append("\n[group.g]\ndesign = \"correlation\"\nvariable = \"age\"\nseed = \"x\"\ncluster_p = 2.0\n"),
        false,
    ),
    ("paired design without sessions", Append("\n[group.g]\ndesign = \"paired\"\nseed = \"x\"\n"), false),
    (
        "roc with value and cluster_of",
        Append("\n[roc.r]\nlabel = \"sex\"\nvalue = \"age\"\ncluster_of = \"g\"\n"),
        false,
    ),
    ("roc label missing", Append("\n[roc.r]\nlabel = \"responder\"\nvalue = \"age\"\n"), false),
    ("roc one fold", Append("\n[roc.r]\nlabel = \"sex\"\nvalue = \"age\"\nfolds = 1\n"), false),
    // Simulation.
    (
        "simulated subjects beyond memory",
        Whole(
            "[study]\nname = \"s\"\nseed = 1\n\n[simulate]\npreset = \"ukb-symptoms\"\nsubjects = 9223372036854775807\n\n[tables.pheno]\nsimulated = \"pheno\"\n",
        ),
        true,
    ),
    (
        "simulated subjects 2^32",
        Whole(
            "[study]\nname = \"s\"\nseed = 1\n\n[simulate]\npreset = \"ukb-symptoms\"\nsubjects = 4294967296\n\n[tables.pheno]\nsimulated = \"pheno\"\n",
        ),
        true,
    ),
    (
        "simulated subjects 0",
        Whole(
            "[study]\nname = \"s\"\nseed = 1\n\n[simulate]\npreset = \"ukb-symptoms\"\nsubjects = 0\n\n[tables.pheno]\nsimulated = \"pheno\"\n",
        ),
        false,
    ),
    (
        "file preset without dir",
        Whole(
            "[study]\nname = \"s\"\nseed = 1\n\n[simulate]\npreset = \"amygdala-wellbeing\"\nsubjects = 50\n\n[tables.pheno]\npath = \"data/x/pheno.tsv\"\n",
        ),
        false,
    ),
    (
        "simulate dir climbs out",
        Whole(
            "[study]\nname = \"s\"\nseed = 1\n\n[simulate]\npreset = \"amygdala-wellbeing\"\nsubjects = 50\ndir = \"../elsewhere\"\n\n[tables.pheno]\npath = \"data/x/pheno.tsv\"\n",
        ),
        true,
    ),
    (
        "simulate dir absolute",
        Whole(
            "[study]\nname = \"s\"\nseed = 1\n\n[simulate]\npreset = \"amygdala-wellbeing\"\nsubjects = 50\ndir = \"/tmp/neurospec-cohort\"\n\n[tables.pheno]\npath = \"data/x/pheno.tsv\"\n",
        ),
        true,
    ),
    (
        "file preset subjects beyond limit",
        Whole(
            "[study]\nname = \"s\"\nseed = 1\n\n[simulate]\npreset = \"amygdala-wellbeing\"\nsubjects = 65536\ndir = \"data/x\"\n\n[tables.pheno]\npath = \"data/x/pheno.tsv\"\n",
        ),
        true,
    ),
    (
        "unknown simulated table",
        Whole(
            "[study]\nname = \"s\"\nseed = 1\n\n[simulate]\npreset = \"ukb-symptoms\"\nsubjects = 100\n\n[tables.pheno]\nsimulated = \"phenotypes\"\n",
        ),
        false,
    ),
    // Imaging sections without their data.
    ("regions without [imaging]", Append("\n[regions.r]\natlas = \"atlas.nii.gz\"\n"), false),
    (
        "imaging without connectivity",
        Append("\n[imaging]\nfmriprep = \"fmriprep\"\ntask = \"rest\"\nspace = \"MNI152NLin2009cAsym\"\n"),
        false,
    ),
    (
        "fmriprep folder missing",
        Append(
            "\n[imaging]\nfmriprep = \"fmriprep\"\ntask = \"rest\"\nspace = \"MNI152NLin2009cAsym\"\n\n[connectivity]\npairs = []\n",
        ),
        false,
    ),
    ("denoise fd threshold negative", Study(&[("min_segment = 5", "min_segment = 5\nfd_threshold = -0.5")]), false),
    ("denoise band reversed", Study(&[("min_segment = 5", "min_segment = 5\nband = [0.1, 0.01]")]), false),
    ("denoise min_volumes 0", Study(&[("min_volumes = 50", "min_volumes = 0")]), false),
];

/// Run `neurospec ARGS` in `dir` with a time limit (a hang fails the test, naming the case).
fn run_limited(dir: &Path, args: &[&str], case: &str) -> (Option<i32>, String) {
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            return (status.code(), stderr);
        }
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().ok();
            panic!("case `{case}`: `neurospec {}` still running after 60 s", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn apply(dir: &Path, mutation: &Mutation) {
    let study = dir.join("study.toml");
    let edit = |path: &Path, edits: &[(&str, &str)]| {
        let mut text = std::fs::read_to_string(path).unwrap();
        for (from, to) in edits {
            assert!(text.contains(from), "{} has no `{from}`", path.display());
            text = text.replacen(from, to, 1);
        }
        std::fs::write(path, text).unwrap();
    };
    match mutation {
        Study(edits) => edit(&study, edits),
        Append(text) => {
            let mut s = std::fs::read_to_string(&study).unwrap();
            s.push_str(text);
            std::fs::write(&study, s).unwrap();
        }
        Whole(text) => std::fs::write(&study, text).unwrap(),
        File(name, content, edits) => {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
            edit(&study, edits);
        }
        Data(name, "", "") => {
            // Cut the file in the middle of its last row.
            let path = dir.join(name);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.truncate(bytes.len() - 4);
            std::fs::write(path, bytes).unwrap();
        }
        Data(name, from, to) => edit(&dir.join(name), &[(from, to)]),
    }
}

#[test]
fn every_bad_input_gets_a_clear_message_and_no_panic() {
    assert!(CASES.len() >= 80, "the corpus has {} cases", CASES.len());
    let cohort = tempfile::tempdir().unwrap();
    let out = neurospec(cohort.path(), &["simulate", "ukb-symptoms", "--out", "c", "--subjects", "100"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (mut report, mut panics) = (String::new(), Vec::new());
    let mut names = std::collections::BTreeSet::new();
    for (i, (name, mutation, also_run)) in CASES.iter().enumerate() {
        assert!(names.insert(*name), "two cases are named `{name}`");
        // Each case in a fresh copy, one level down (so `..` has somewhere to point).
        let root = cohort.path().join(format!("case{i:03}"));
        let dir = root.join("study");
        std::fs::create_dir_all(&dir).unwrap();
        for file in ["study.toml", "pheno.tsv", "idps.tsv"] {
            std::fs::copy(cohort.path().join("c").join(file), dir.join(file)).unwrap();
        }
        apply(&dir, mutation);
        let mut commands = vec!["check"];
        if *also_run {
            commands.push("run");
        }
        for command in commands {
            let (code, stderr) =
                run_limited(&dir, &[command, "study.toml", "-j", "1"][..if command == "run" { 4 } else { 2 }], name);
            if stderr.contains("panicked") {
                panics.push(format!("{name} ({command}): {stderr}"));
            }
            assert!(
                matches!(code, Some(1) | Some(2)),
                "case `{name}` ({command}): exit {code:?}, expected a failure\n{stderr}"
            );
            let shown =
                stderr.replace(&dir.display().to_string(), "[DIR]").replace(&root.display().to_string(), "[ROOT]");
            report.push_str(&format!("=== {name} ({command}, exit {})\n{}\n", code.unwrap_or(-1), shown.trim_end()));
        }
        // Nothing was written outside the study's folder, and a failed run published nothing.
        let outside: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "study")
            .collect();
        assert!(outside.is_empty(), "case `{name}` wrote beside the study folder: {outside:?}");
        assert!(!dir.join("derivatives").exists(), "case `{name}`: a failed run published outputs");
    }
    assert!(!Path::new("/tmp/neurospec-outside").exists() && !Path::new("/tmp/neurospec-cohort").exists());
    assert!(panics.is_empty(), "{} panics:\n{}", panics.len(), panics.join("\n"));
    insta::assert_snapshot!(report);
}

/// A study that would need more memory than the machine has is refused in `check`, with the
/// estimate (the machine is made small through a test-only variable).
#[test]
fn a_study_larger_than_the_machine_is_refused_with_the_estimate() {
    let dir = tempfile::tempdir().unwrap();
    let out = neurospec(dir.path(), &["simulate", "ukb-symptoms", "--out", ".", "--subjects", "100"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let check = |memory: &str| {
        Command::new(bin())
            .args(["check", "study.toml"])
            .current_dir(dir.path())
            .env("NEUROSPEC_TEST_MEMORY_BYTES", memory)
            .output()
            .unwrap()
    };
    let small = check("1000000");
    let stderr = String::from_utf8_lossy(&small.stderr);
    assert_eq!(small.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("MB of tables would need about") && stderr.contains("more than this machine has (0.0 GB)"),
        "{stderr}"
    );
    assert!(check("100000000000").status.success());
}

/// `run` replaces a simulated cohort whose settings changed, but never deletes a cohort folder
/// that holds a file the simulator did not write.
#[test]
fn a_cohort_folder_holding_a_users_file_is_never_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("studies/ketamine-amygdala.toml")).unwrap();
    std::fs::write(dir.path().join("study.toml"), text.replace("subjects = 49", "subjects = 12")).unwrap();
    run_limited(dir.path(), &["run", "study.toml", "-j", "1"], "first run");
    let cohort = dir.path().join("data/ketamine-response");
    assert!(cohort.join(".neurospec-simulation.json").is_file(), "the first run simulated no cohort");
    std::fs::write(cohort.join("notes.txt"), "mine").unwrap();
    std::fs::write(dir.path().join("study.toml"), text.replace("subjects = 49", "subjects = 14")).unwrap();
    let (code, stderr) = run_limited(dir.path(), &["run", "study.toml", "-j", "1"], "second run");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("notes.txt") && stderr.contains("refusing to delete"), "{stderr}");
    assert_eq!(std::fs::read_to_string(cohort.join("notes.txt")).unwrap(), "mine");
}
