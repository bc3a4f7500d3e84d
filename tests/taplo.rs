//! Editor help: Taplo (the engine of Even Better TOML) checks study files against
//! `schemas/study.schema.json`. The shipped studies give no error, and one mistake gives exactly
//! one error that names the wrong key or value (not dozens from every branch of an `anyOf`).
//!
//! Needs Taplo's CLI (`npm install -g @taplo/cli`, or `NEUROSPEC_TAPLO=/path/to/taplo`). Without
//! it the test prints why it skips and passes, unless NEUROSPEC_REQUIRE_TOOLS=1 (as in CI).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn taplo() -> Option<PathBuf> {
    let candidate = std::env::var_os("NEUROSPEC_TAPLO").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("taplo"));
    // @taplo/cli 0.7.0 prints `taplo 0.9.0` for --version but exits 1.
    let works = Command::new(&candidate).arg("--version").output().is_ok_and(|o| o.stdout.starts_with(b"taplo "));
    if !works {
        assert!(
            std::env::var("NEUROSPEC_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "taplo is not installed and NEUROSPEC_REQUIRE_TOOLS=1 (npm install -g @taplo/cli)"
        );
        eprintln!(
            "SKIP: taplo not found (npm install -g @taplo/cli, or set NEUROSPEC_TAPLO); the editor check did not run"
        );
        return None;
    }
    Some(candidate)
}

/// `taplo lint` of one file against the committed schema: the error lines it prints.
fn lint(taplo: &Path, file: &Path) -> Vec<String> {
    let schema = format!("file://{}", common::repo().join("schemas/study.schema.json").display());
    let out = Command::new(taplo)
        .args(["lint", "--no-auto-config", "--colors", "never", "--schema", &schema])
        .arg(file)
        .env("RUST_LOG", "error")
        .output()
        .expect("taplo runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let errors: Vec<String> = text.lines().filter(|l| l.starts_with("error:")).map(str::to_string).collect();
    assert_eq!(out.status.success(), errors.is_empty(), "taplo's exit status disagrees with its output:\n{text}");
    errors
}

#[test]
fn shipped_studies_have_no_editor_errors() {
    let Some(taplo) = taplo() else { return };
    for name in ["ukb-symptoms", "amygdala-wellbeing", "ketamine-amygdala"] {
        let errors = lint(&taplo, &common::repo().join(format!("studies/{name}.toml")));
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
}

#[test]
fn one_mistake_gives_one_editor_error_naming_it() {
    let Some(taplo) = taplo() else { return };
    let dir = tempfile::tempdir().unwrap();
    // (study, text to replace, replacement, what the one error must mention)
    let cases = [
        ("ketamine-amygdala", "strategy = \"24P\"", "strategy = \"25P\"", "25P"),
        ("ketamine-amygdala", "detrend = true", "detrend = \"yes\"", "yes"),
        ("amygdala-wellbeing", "[split]\n", "[split]\nheld_out_fracton = 0.2\n", "held_out_fracton"),
        ("amygdala-wellbeing", "method = \"grouped\"", "method = \"familywise\"", "familywise"),
        ("ukb-symptoms", "[association]\n", "[association]\npermutation_blokcs = \"site\"\n", "permutation_blokcs"),
        ("ketamine-amygdala", "design = \"two-sample\"", "design = \"two_sample\"", "two_sample"),
        ("ketamine-amygdala", "[group.responders_pre]\n", "[group.responders_pre]\nconnectivity = 7\n", "7"),
    ];
    for (i, (study, from, to, named)) in cases.iter().enumerate() {
        let text = std::fs::read_to_string(common::repo().join(format!("studies/{study}.toml"))).unwrap();
        assert!(text.contains(from), "{study}.toml has no `{from}`");
        let file = dir.path().join(format!("broken-{i}.toml"));
        std::fs::write(&file, text.replacen(from, to, 1)).unwrap();
        let mut errors = lint(&taplo, &file);
        // Taplo 0.9 repeats an unknown key's one message (once per sibling key of its table);
        // what must not happen is several different errors for one mistake.
        errors.dedup();
        assert_eq!(errors.len(), 1, "{study} with `{to}`: expected one distinct error, got {errors:#?}");
        assert!(errors[0].contains(named), "{study} with `{to}`: the error does not name `{named}`: {}", errors[0]);
    }
}
