//! The README's `extract` example runs as written on the shipped simulated cohort, and gives a
//! square, symmetric correlation matrix with a unit diagonal.

mod common;

use common::*;

/// The commands of the fenced block after `<!-- example: NAME -->`, continuation lines joined.
fn example(name: &str) -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let marker = format!("<!-- example: {name} -->");
    let after = &readme[readme.find(&marker).unwrap_or_else(|| panic!("README has no {marker}"))..];
    let body = after.split("```").nth(1).expect("a fenced block after the marker");
    body.replace("\\\n", " ")
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
        .filter(|words| !words.is_empty())
        .collect()
}

#[test]
fn the_readme_extract_example_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let commands = example("extract");
    assert_eq!(commands.len(), 2, "{commands:?}");
    for words in &commands {
        assert_eq!(words[0], "neurospec", "{words:?}");
        let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        let out = neurospec(dir.path(), &args);
        assert!(out.status.success(), "{words:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = std::fs::read_to_string(dir.path().join("aw/matrix.tsv")).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let n = rows.len() - 1;
    assert!(n >= 2 && rows[0].len() == n + 1, "square with a header: {} × {}", n, rows[0].len());
    let value = |i: usize, j: usize| -> f64 { rows[i + 1][j + 1].parse().unwrap() };
    for i in 0..n {
        assert_eq!(rows[i + 1][0], rows[0][i + 1], "row and column names agree");
        assert!((value(i, i) - 1.0).abs() < 1e-12);
        for j in 0..n {
            assert!((value(i, j) - value(j, i)).abs() < 1e-12 && value(i, j).abs() <= 1.0 + 1e-12);
        }
    }
}
