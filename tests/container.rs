//! The container recipes (`Dockerfile`, `neurospec.def`) have the parts the README promises: a
//! Rust 1.95 builder running `cargo build --release --locked`, a slim runtime holding only the
//! binary, the binary as entry point; every file they copy exists. (A full build needs Docker or
//! Apptainer and ~15 minutes; see the README for what was verified.)

mod common;

fn read(name: &str) -> String {
    std::fs::read_to_string(common::repo().join(name)).unwrap()
}

#[test]
fn dockerfile_is_a_two_stage_locked_release_build() {
    let text = read("Dockerfile");
    let instructions: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(' ').map(|(k, v)| (k.to_uppercase(), v.trim().to_string())))
        .collect();
    let froms: Vec<&String> = instructions.iter().filter(|(k, _)| k == "FROM").map(|(_, v)| v).collect();
    assert_eq!(froms.len(), 2, "two stages: {froms:?}");
    assert!(froms[0].starts_with("rust:1.95") && froms[0].ends_with(" AS builder"), "{}", froms[0]);
    assert!(froms[1].contains("-slim"), "slim runtime: {}", froms[1]);
    let builder_end = instructions.iter().rposition(|(k, _)| k == "FROM").unwrap();
    let build =
        instructions[..builder_end].iter().any(|(k, v)| k == "RUN" && v.contains("cargo build --release --locked"));
    assert!(build, "the builder runs cargo build --release --locked");
    let runtime = &instructions[builder_end..];
    assert!(
        runtime
            .iter()
            .any(|(k, v)| k == "COPY" && v.starts_with("--from=builder") && v.contains("target/release/neurospec"))
    );
    assert!(runtime.iter().any(|(k, v)| k == "ENTRYPOINT" && v.contains("neurospec")));
    assert!(!runtime.iter().any(|(k, v)| k == "RUN" && v.contains("cargo")), "no toolchain in the runtime");
    for (k, v) in &instructions[..builder_end] {
        if k == "COPY" {
            let parts: Vec<&str> = v.split_whitespace().collect();
            for source in &parts[..parts.len() - 1] {
                assert!(common::repo().join(source).exists(), "Dockerfile copies missing `{source}`");
            }
        }
    }
}

#[test]
fn apptainer_definition_builds_the_same_way() {
    let text = read("neurospec.def");
    let headers: Vec<&str> = text.lines().filter(|l| l.starts_with("From:")).collect();
    assert_eq!(headers.len(), 2, "two stages: {headers:?}");
    assert!(headers[0].contains("rust:1.95") && headers[1].contains("-slim"));
    assert_eq!(text.matches("Bootstrap: docker").count(), 2);
    let section = |name: &str| -> Vec<String> {
        let start = text.find(&format!("\n{name}")).unwrap_or_else(|| panic!("no {name} section"));
        text[start + 1..]
            .lines()
            .skip(1)
            .take_while(|l| !l.starts_with('%') && !l.starts_with("Bootstrap"))
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    };
    assert!(section("%post").iter().any(|l| l.contains("cargo build --release --locked")));
    for line in section("%files") {
        let source = line.split_whitespace().next().unwrap();
        assert!(common::repo().join(source).exists(), "neurospec.def copies missing `{source}`");
    }
    assert!(section("%files from builder").iter().any(|l| l.contains("target/release/neurospec")));
    assert!(section("%runscript").iter().any(|l| l.contains("neurospec \"$@\"")));
}
