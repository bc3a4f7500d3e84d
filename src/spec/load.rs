//! Reading a study file: TOML syntax and types, with every problem located at `FILE:LINE:COL`.

use super::Study;
use crate::error::{Diagnostic, Error, Result, did_you_mean};
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};

/// A parsed study with what is needed to point back into its source.
#[derive(Debug, Clone)]
pub struct LoadedStudy {
    /// The study file as given on the command line.
    pub path: PathBuf,
    /// Folder relative paths in the study are resolved against.
    pub dir: PathBuf,
    pub source: String,
    pub study: Study,
    /// blake3 of the study file's bytes (recorded in `dataset_description.json`).
    pub hash: String,
    /// Read paths under the first folder from the second instead (`check` and `plan` read a
    /// simulated cohort from the cache before `run` has written it into the study's folder).
    pub redirect: Option<(PathBuf, PathBuf)>,
}

/// One step of a key path into the TOML document.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    Name(String),
    Index(usize),
}

impl From<&str> for Key {
    fn from(s: &str) -> Self {
        Key::Name(s.to_string())
    }
}
impl From<String> for Key {
    fn from(s: String) -> Self {
        Key::Name(s)
    }
}
impl From<usize> for Key {
    fn from(i: usize) -> Self {
        Key::Index(i)
    }
}

/// Build a key path: `keys!["association", "covariates", 2]`.
#[macro_export]
macro_rules! keys {
    ($($k:expr),* $(,)?) => { vec![$($crate::spec::load::Key::from($k)),*] };
}

/// Read and parse a study file. Syntax and type errors come back as located diagnostics.
pub fn load(path: &Path) -> Result<LoadedStudy> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::Study(vec![
            Diagnostic::file(path, format!("cannot read study file: {e}"))
                .with_hint("check the path; study files are TOML (e.g. studies/ukb-symptoms.toml)"),
        ])
    })?;
    let source = String::from_utf8(bytes.clone())
        .map_err(|_| Error::Study(vec![Diagnostic::file(path, "study file is not valid UTF-8")]))?;
    if source.trim_start().starts_with('{') {
        return Err(Error::Study(vec![
            Diagnostic::file(path, "this looks like JSON; study files are TOML").with_hint(
                "write sections as [study], [tables.NAME], … (see studies/ukb-symptoms.toml); \
                 `neurospec schema` describes every field",
            ),
        ]));
    }
    // Syntax errors, unknown keys, wrong types and missing keys anywhere in the file are
    // reported together (the parser recovers; serde would stop at the first).
    let (document, syntax) = DeTable::parse_recoverable(&source);
    let top = document.get_ref();
    let meta = ["name", "seed", "subject_id", "description"];
    if syntax.is_empty()
        && !top.iter().any(|(k, _)| k.get_ref() == "study")
        && top.iter().any(|(k, _)| meta.contains(&k.get_ref().as_ref()))
    {
        let first = top.iter().find(|(k, _)| meta.contains(&k.get_ref().as_ref())).map_or(0, |(k, _)| k.span().start);
        return Err(Error::Study(vec![
            Diagnostic::at_offset(path, &source, first, "`name`, `seed` and `subject_id` belong in a [study] section")
                .with_hint("add the line [study] above them"),
        ]));
    }
    let mut problems: Vec<Diagnostic> = syntax.iter().map(|e| toml_diagnostic(path, &source, e)).collect();
    // A document with syntax errors is partial: its missing keys are not news.
    let shape = super::shape::problems(path, &source, top, &super::schema::schema_value());
    problems.extend(shape.into_iter().filter(|d| syntax.is_empty() || !d.message.contains("lacks the required key")));
    if !problems.is_empty() {
        problems.sort_by_key(|d| (d.line, d.col));
        return Err(Error::Study(problems));
    }
    let study: Study = toml::from_str(&source).map_err(|e| Error::Study(vec![toml_diagnostic(path, &source, &e)]))?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
    Ok(LoadedStudy {
        path: path.to_path_buf(),
        dir,
        source,
        study,
        hash: blake3::hash(&bytes).to_hex().to_string(),
        redirect: None,
    })
}

fn toml_diagnostic(path: &Path, source: &str, e: &toml::de::Error) -> Diagnostic {
    let offset = e.span().map_or(0, |s| s.start);
    let message = e.message().trim().to_string();
    let mut diagnostic = Diagnostic::at_offset(path, source, offset, message.clone());
    if e.span().is_none() {
        diagnostic.line = 0;
    }
    // serde: "unknown field `rotaton`, expected one of `a`, `b`" / "unknown variant `x`, expected ..."
    for kind in ["unknown field", "unknown variant"] {
        if let Some(rest) = message.strip_prefix(kind) {
            let names: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
            if let Some((given, expected)) = names.split_first() {
                let what = if kind == "unknown field" { "key" } else { "value" };
                diagnostic.message = format!("unknown {what} `{given}`");
                diagnostic.hint = Some(match did_you_mean(given, expected.iter().copied()) {
                    Some(best) => format!("did you mean `{best}`? (expected one of: {})", expected.join(", ")),
                    None => format!("expected one of: {}", expected.join(", ")),
                });
            }
        }
    }
    if message.starts_with("missing field") {
        diagnostic.hint = Some("add the field; `neurospec schema` lists every field with its meaning".into());
    }
    if message.starts_with("invalid type") {
        diagnostic.hint = Some("see `neurospec schema` for the expected type of this field".into());
    }
    diagnostic
}

impl LoadedStudy {
    /// Byte span of the value at `keys` (or of the nearest existing parent).
    pub fn span_of(&self, keys: &[Key]) -> Option<Range<usize>> {
        let document = DeTable::parse(&self.source).ok()?;
        let mut span = None;
        let mut value: Option<&DeValue<'_>> = None;
        let mut table: Option<&DeTable<'_>> = Some(document.get_ref());
        for key in keys {
            match key {
                Key::Name(name) => {
                    let t = table.or_else(|| value.and_then(DeValue::as_table))?;
                    let (_, v) = t.iter().find(|(k, _)| k.get_ref() == name)?;
                    span = Some(v.span());
                    value = Some(v.get_ref());
                    table = None;
                }
                Key::Index(i) => {
                    let array = value?.as_array()?;
                    let v = array.get(*i)?;
                    span = Some(v.span());
                    value = Some(v.get_ref());
                    table = None;
                }
            }
        }
        span
    }

    /// A diagnostic at the value named by `keys` (falling back to its nearest present parent).
    pub fn diagnostic(&self, keys: &[Key], message: impl Into<String>) -> Diagnostic {
        let mut prefix = keys.len();
        while prefix > 0 {
            if let Some(span) = self.span_of(&keys[..prefix]) {
                return Diagnostic::at_offset(&self.path, &self.source, span.start, message);
            }
            prefix -= 1;
        }
        Diagnostic::at_offset(&self.path, &self.source, 0, message)
    }

    /// Resolve a path written in the study (relative to the study file).
    pub fn resolve(&self, relative: &str) -> PathBuf {
        let p = Path::new(relative);
        let path = if p.is_absolute() { p.to_path_buf() } else { self.dir.join(p) };
        match &self.redirect {
            Some((from, to)) => match path.strip_prefix(from) {
                Ok(rest) => to.join(rest),
                Err(_) => path,
            },
            None => path,
        }
    }

    /// The output folder for this study.
    pub fn output_dir(&self) -> PathBuf {
        match &self.study.outputs.dir {
            Some(dir) => self.resolve(dir),
            None => self.dir.join("derivatives").join(&self.study.study.name),
        }
    }
}
