//! A fuzzer for the study loader and checker: the shipped study, mutated at random (bytes
//! flipped, lines dropped or repeated, numbers replaced by extreme values, sections moved),
//! must always load and check to `Ok` or to a located error — never a panic.
//!
//! CI runs it for a few seconds. For a long run (the issue asks for ≥ 10 minutes):
//!
//! ```sh
//! NEUROSPEC_FUZZ_SECONDS=600 cargo test --release --test fuzz_study -- --nocapture
//! ```
//!
//! A failing input is written to `target/fuzz-study-failure.toml` and printed.

mod common;

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

/// A small deterministic generator (xorshift64*), so a failure reproduces from its seed.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const EXTREMES: &[&str] = &[
    "0",
    "-1",
    "1",
    "2",
    "99",
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "-inf",
    "0.0",
    "1.0",
    "0.5",
    "9223372036854775807",
    "18446744073709551615",
    "4294967296",
    "\"\"",
    "\"x\"",
    "[]",
    "{}",
    "true",
    "\"../../x\"",
    "\"/etc/passwd\"",
];

const SNIPPETS: &[&str] = &[
    "[factors]\nitems = [\"age\", \"height\", \"sex\"]\n",
    "[prediction]\noutcomes = [\"insomnia\"]\nfeatures = [\"area\"]\n",
    "[group.g]\ndesign = \"paired\"\nseed = \"x\"\n",
    "[roc.r]\nlabel = \"sex\"\nvalue = \"age\"\n",
    "[derived]\nz = \"age / (height - height)\"\n",
    "[imaging]\nfmriprep = \".\"\ntask = \"rest\"\nspace = \"x\"\n",
    "[simulate]\npreset = \"ukb-symptoms\"\nsubjects = 30\n",
    "[outputs]\ndir = \"..\"\n",
    "[[exclusions.iqr]]\ncolumns = [\"*\"]\nk = 0\n",
];

/// One random mutation of `text`.
fn mutate(text: &str, g: &mut Gen) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for _ in 0..1 + g.below(4) {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let i = g.below(lines.len());
        match g.below(7) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let line = lines[i].clone();
                lines.insert(i, line);
            }
            2 => {
                // Replace the value of a `key = value` line.
                if let Some((key, _)) = lines[i].split_once(" = ") {
                    lines[i] = format!("{key} = {}", EXTREMES[g.below(EXTREMES.len())]);
                }
            }
            3 => {
                // Flip one byte (keeping the text valid UTF-8 by choosing ASCII).
                let mut bytes = lines[i].clone().into_bytes();
                if !bytes.is_empty() {
                    let at = g.below(bytes.len());
                    let pool = b" =[]\"{},.#*^01azAZ\t";
                    bytes[at] = pool[g.below(pool.len())];
                }
                lines[i] = String::from_utf8_lossy(&bytes).into_owned();
            }
            4 => {
                let j = g.below(lines.len());
                lines.swap(i, j);
            }
            5 => lines.insert(i, SNIPPETS[g.below(SNIPPETS.len())].to_string()),
            _ => lines.truncate(i),
        }
    }
    lines.join("\n") + "\n"
}

/// Load and check one study text; `Err` only on a panic.
fn check_text(dir: &std::path::Path, text: &str) -> Result<(), String> {
    let path = dir.join("study.toml");
    std::fs::write(&path, text).unwrap();
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        if let Ok(loaded) = neurospec::spec::load(&path)
            && neurospec::spec::check::settings(&loaded).is_ok()
            && let Ok(resolved) = neurospec::spec::check::resolve(&loaded)
        {
            let plan = neurospec::plan::compile(&resolved);
            // The data-level front of `check`, unless the study simulates (which `run` does).
            if resolved.simulation.is_none() {
                let _ = neurospec::exec::preflight::check_data(&plan);
            }
        }
    }))
    .map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

#[test]
fn mutated_studies_never_panic_the_loader_or_checker() {
    let seconds: u64 = std::env::var("NEUROSPEC_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let out = common::neurospec(dir.path(), &["simulate", "ukb-symptoms", "--out", ".", "--subjects", "60"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let original = std::fs::read_to_string(dir.path().join("study.toml")).unwrap();
    // Panics are caught and reported below; keep their default message off the output.
    std::panic::set_hook(Box::new(|_| {}));
    let started = Instant::now();
    let (mut cases, mut seed) = (0u64, 1u64);
    while started.elapsed() < Duration::from_secs(seconds) {
        let mut g = Gen(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let text = mutate(&original, &mut g);
        if let Err(message) = check_text(dir.path(), &text) {
            let _ = std::panic::take_hook();
            eprintln!("fuzz_study: seed {seed} panicked: {message}");
            let keep = common::repo().join("target/fuzz-study-failure.toml");
            std::fs::write(&keep, &text).ok();
            panic!("seed {seed}: the checker panicked ({message}); input kept in {}:\n{text}", keep.display());
        }
        cases += 1;
        seed += 1;
    }
    let _ = std::panic::take_hook();
    eprintln!("fuzz_study: {cases} mutated studies in {seconds} s, no panic");
    assert!(cases > 0);
}
