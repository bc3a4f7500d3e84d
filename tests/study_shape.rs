//! Syntax and type errors of a study file are reported all at once, each with the key's dotted
//! name, its line and the expected type in words (snapshot of the exact text).

mod common;

#[test]
fn every_syntax_and_type_error_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(common::repo().join("studies/ukb-symptoms.toml")).unwrap();
    let mut broken = text.clone();
    for (from, to) in [
        ("subjects = 25000", "subjects = \"lots\""),
        ("seed = 20250101", "seed = -3"),
        ("held_out_fraction = 0.155", "held_out_fraction = \"a fifth\""),
        ("permutations = 5000", "permutations = 2.5"),
        ("bootstrap = 1000", "bootstrap = = 1000"),
    ] {
        assert!(broken.contains(from), "ukb-symptoms.toml has no `{from}`");
        broken = broken.replacen(from, to, 1);
    }
    std::fs::write(dir.path().join("study.toml"), broken).unwrap();
    let out = common::neurospec(dir.path(), &["check", "study.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    // Five mistakes; TOML's parser reports the doubled `=` as two problems of line 76.
    assert_eq!(stderr.matches("error:").count(), 6, "every mistake reported:\n{stderr}");
    for named in ["study.seed", "simulate.subjects", "split.held_out_fraction", "association.permutations", ":76:"] {
        assert!(stderr.contains(named), "`{named}` not reported:\n{stderr}");
    }
    assert!(!stderr.contains("usize") && !stderr.contains("u64"), "serde's type names leak:\n{stderr}");
    insta::assert_snapshot!(stderr);
}

#[test]
fn check_json_lists_the_errors() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(common::repo().join("studies/ukb-symptoms.toml")).unwrap();
    std::fs::write(dir.path().join("study.toml"), text.replacen("subjects = 25000", "subjects = -1", 1)).unwrap();
    let out = common::neurospec(dir.path(), &["check", "study.toml", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(summary["ok"], false);
    let errors = summary["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{summary}");
    assert!(errors[0]["message"].as_str().unwrap().contains("simulate.subjects"), "{summary}");
    assert!(errors[0]["line"].as_u64().unwrap() > 0);
}
