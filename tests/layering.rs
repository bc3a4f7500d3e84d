//! The architecture's invariants that a reader of the source can check (ARCHITECTURE.md,
//! "Invariants"): layers depend one way, functions stay under 200 lines, and a file over 600
//! lines says in its module doc why it is one file.

mod common;

use std::path::{Path, PathBuf};

/// (folder or file under src/, what it must never name).
const FORBIDDEN: &[(&str, &[&str])] = &[
    ("spec", &["crate::stages", "crate::plan", "crate::exec", "crate::store", "crate::outputs", "crate::cli"]),
    ("plan", &["crate::exec", "crate::outputs", "crate::cli"]),
    ("exec", &["crate::cli", "crate::outputs"]),
    ("store", &["crate::spec", "crate::plan", "crate::exec", "crate::stages", "crate::cli"]),
    ("stages", &["crate::plan", "crate::exec", "crate::store", "crate::outputs", "crate::cli", "crate::spec::check"]),
    ("design.rs", &["crate::spec", "crate::plan", "crate::stages", "crate::exec", "crate::cli"]),
    ("imaging", &["crate::spec", "crate::plan", "crate::stages", "crate::exec", "crate::store", "crate::cli"]),
    ("behaviour", &["crate::spec", "crate::plan", "crate::stages", "crate::exec", "crate::store", "crate::cli"]),
    ("stats", &["crate::spec", "crate::plan", "crate::stages", "crate::exec", "crate::store", "crate::cli"]),
    ("tables", &["crate::spec", "crate::plan", "crate::stages", "crate::exec", "crate::store", "crate::cli"]),
];

const MAX_FUNCTION_LINES: usize = 200;
const MAX_FILE_LINES: usize = 600;
/// The phrase a long file's module doc uses to say why it is one file.
const LONG_FILE_REASON: &str = "One file because";

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.to_path_buf());
        }
        return;
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for entry in entries {
        rust_files(&entry, out);
    }
}

fn src() -> PathBuf {
    common::repo().join("src")
}

/// Every forbidden import, as `file:line: text`.
fn layering_violations(src: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for (layer, forbidden) in FORBIDDEN {
        let mut files = Vec::new();
        rust_files(&src.join(layer), &mut files);
        assert!(!files.is_empty(), "no source under src/{layer}: update FORBIDDEN");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (i, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for name in *forbidden {
                    if code.contains(name) {
                        found.push(format!("{}:{}: {} uses {name}", file.display(), i + 1, line.trim()));
                    }
                }
            }
        }
    }
    found
}

/// (file, first line, name, length) of every function longer than `limit` lines. A function
/// starts at a line whose code begins with `fn`/`pub fn`/… and ends where its braces close.
fn long_functions(file: &Path, limit: usize) -> Vec<(usize, String, usize)> {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        let head = t
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("pub ")
            .trim_start_matches("const ")
            .trim_start_matches("async ")
            .trim_start_matches("unsafe ");
        let Some(rest) = head.strip_prefix("fn ") else { continue };
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let (mut depth, mut opened) = (0i64, false);
        for (offset, body) in lines[start..].iter().enumerate() {
            for c in body.split("//").next().unwrap_or("").chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    ';' if !opened && depth == 0 => break,
                    _ => {}
                }
            }
            if opened && depth == 0 {
                if offset + 1 > limit {
                    out.push((start + 1, name.clone(), offset + 1));
                }
                break;
            }
            if !opened && body.trim_end().ends_with(';') {
                break;
            }
        }
    }
    out
}

#[test]
fn lower_layers_never_import_higher_ones() {
    let found = layering_violations(&src());
    assert!(found.is_empty(), "imports against the one-way layering (ARCHITECTURE.md):\n{}", found.join("\n"));
}

#[test]
fn the_layering_check_finds_a_planted_violation() {
    let dir = tempfile::tempdir().unwrap();
    for (layer, _) in FORBIDDEN {
        let path = dir.path().join(layer);
        let file = if layer.ends_with(".rs") { path } else { path.join("mod.rs") };
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "// crate::plan in a comment is fine\nfn f() {}\n").unwrap();
    }
    assert!(layering_violations(dir.path()).is_empty());
    std::fs::write(dir.path().join("stages/mod.rs"), "use crate::plan::Plan;\n").unwrap();
    let found = layering_violations(dir.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("crate::plan"));
}

#[test]
fn no_function_is_longer_than_200_lines() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut long = Vec::new();
    for file in &files {
        for (line, name, length) in long_functions(file, MAX_FUNCTION_LINES) {
            long.push(format!("{}:{line}: fn {name} has {length} lines", file.display()));
        }
    }
    assert!(long.is_empty(), "split these (no function over {MAX_FUNCTION_LINES} lines):\n{}", long.join("\n"));
}

#[test]
fn the_function_length_check_measures_a_planted_function() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.rs");
    let body = "    let x = 1;\n".repeat(5);
    std::fs::write(
        &file,
        format!("pub fn short() {{\n}}\n\nfn long(a: u8) -> u8 {{\n{body}    if a > 0 {{ 1 }} else {{ 0 }}\n}}\n"),
    )
    .unwrap();
    assert_eq!(long_functions(&file, 3), vec![(4, "long".to_string(), 8)]);
    assert!(long_functions(&file, 8).is_empty());
}

#[test]
fn a_long_file_says_why_it_is_one_file() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut unexplained = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let doc: String = text.lines().take_while(|l| l.starts_with("//!")).collect::<Vec<_>>().join("\n");
        if text.lines().count() > MAX_FILE_LINES && !doc.contains(LONG_FILE_REASON) {
            unexplained.push(format!("{} ({} lines)", file.display(), text.lines().count()));
        }
    }
    assert!(
        unexplained.is_empty(),
        "files over {MAX_FILE_LINES} lines whose module doc does not say \"{LONG_FILE_REASON} …\":\n{}",
        unexplained.join("\n")
    );
}
