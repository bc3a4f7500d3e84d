//! A study file is data, never code, and writes only inside its own folder: the study name (it
//! names the output folder), `[outputs] dir` and `[simulate] dir` must stay inside the folder of
//! the study file, and no written folder may be reached through a symbolic link. Anything else
//! must be named on the command line by the person running it (`run --out`, `--cache-dir`).
//! Input tables and images may be read from anywhere.

use super::Checker;
use crate::keys;
use crate::spec::load::Key;
use std::path::{Component, Path};

/// Longest study name (it becomes a folder name).
const MAX_NAME: usize = 100;

pub(super) fn check(cx: &mut Checker<'_>) {
    let study = cx.study;
    let name = &study.study.name;
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > MAX_NAME || !name.chars().all(plain) || name.starts_with('.') {
        cx.err(
            keys!["study", "name"],
            format!("study name `{name}` must be a plain folder name (letters, digits, `-`, `_`, `.`; not starting with `.`)"),
            Some("it names the output folder derivatives/<name>/; use [outputs] dir for another place".into()),
        );
    }
    if let Some(dir) = &study.outputs.dir {
        inside(cx, keys!["outputs", "dir"], dir, "the output folder", " (or choose any folder with `run --out DIR`)");
    }
    if let Some(dir) = study.simulate.as_ref().and_then(|s| s.dir.as_ref()) {
        inside(cx, keys!["simulate", "dir"], dir, "the simulated cohort", "");
        if study.outputs.dir.as_deref().is_some_and(|o| normalise(o) == normalise(dir)) {
            cx.err(
                keys!["simulate", "dir"],
                "the simulated cohort and the outputs need different folders".into(),
                None,
            );
        }
    }
}

/// `written` is a relative path that stays strictly inside the study's folder, with no symbolic
/// link on the way.
fn inside(cx: &mut Checker<'_>, keys: Vec<Key>, written: &str, what: &str, escape: &str) {
    let hint =
        Some(format!("a study writes only inside its own folder; give a relative path such as \"data/x\"{escape}"));
    let path = Path::new(written);
    if written.trim().is_empty() {
        cx.err(keys, format!("{what} is an empty path"), hint);
        return;
    }
    if path.is_absolute() || normalise(written).is_none() {
        cx.err(keys, format!("{what} `{written}` is outside the study's folder"), hint);
        return;
    }
    if normalise(written).is_some_and(|parts| parts.is_empty()) {
        cx.err(keys, format!("{what} `{written}` is the study's folder itself"), hint);
        return;
    }
    let mut at = cx.loaded.dir.clone();
    for part in normalise(written).unwrap_or_default() {
        at.push(part);
        if at.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
            cx.err(
                keys,
                format!(
                    "{what} `{written}` goes through a symbolic link ({}); neurospec does not follow it",
                    at.display()
                ),
                None,
            );
            return;
        }
    }
}

/// The path's components with `.` dropped and `..` applied; `None` when `..` climbs above the
/// start (or the path is absolute).
fn normalise(written: &str) -> Option<Vec<String>> {
    let mut parts: Vec<String> = Vec::new();
    for c in Path::new(written).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn paths_that_climb_out_do_not_normalise() {
        assert_eq!(normalise("a/./b/../c"), Some(vec!["a".to_string(), "c".to_string()]));
        assert_eq!(normalise("a/.."), Some(vec![]));
        assert_eq!(normalise("../x"), None);
        assert_eq!(normalise("a/../../x"), None);
        assert_eq!(normalise("/etc"), None);
    }
}
