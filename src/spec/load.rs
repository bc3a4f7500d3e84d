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
    // Unknown keys anywhere in the file are reported together (serde would stop at the first).
    if let Ok(document) = DeTable::parse(&source) {
        let top = document.get_ref();
        let meta = ["name", "seed", "subject_id", "description"];
        if !top.iter().any(|(k, _)| k.get_ref() == "study")
            && top.iter().any(|(k, _)| meta.contains(&k.get_ref().as_ref()))
        {
            let first =
                top.iter().find(|(k, _)| meta.contains(&k.get_ref().as_ref())).map_or(0, |(k, _)| k.span().start);
            return Err(Error::Study(vec![
                Diagnostic::at_offset(
                    path,
                    &source,
                    first,
                    "`name`, `seed` and `subject_id` belong in a [study] section",
                )
                .with_hint("add the line [study] above them"),
            ]));
        }
        let unknown = unknown_keys(path, &source, top);
        if !unknown.is_empty() {
            return Err(Error::Study(unknown));
        }
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

/// Every key the study types do not know, found by walking the document against the JSON Schema
/// generated from those types (so the two cannot disagree).
fn unknown_keys(path: &Path, source: &str, document: &DeTable<'_>) -> Vec<Diagnostic> {
    let schema = serde_json::to_value(schemars::schema_for!(Study)).expect("schema serialises");
    let mut out = Vec::new();
    walk_table(path, source, document, &schema, &schema, &mut out);
    out.sort_by_key(|d| (d.line, d.col));
    out
}

/// Follow `$ref` and pick the object alternative of `anyOf` / `oneOf` (e.g. `Option<T>`).
fn resolve<'s>(root: &'s serde_json::Value, mut node: &'s serde_json::Value) -> &'s serde_json::Value {
    for _ in 0..16 {
        if let Some(reference) = node.get("$ref").and_then(|r| r.as_str()) {
            let name = reference.trim_start_matches("#/$defs/");
            node = &root["$defs"][name];
            continue;
        }
        let alternatives = node.get("anyOf").or_else(|| node.get("oneOf")).and_then(|a| a.as_array());
        if let Some(alternatives) = alternatives
            && let Some(object) = alternatives.iter().find(|a| a.get("type").and_then(|t| t.as_str()) != Some("null"))
        {
            node = object;
            continue;
        }
        break;
    }
    node
}

fn walk_table(
    path: &Path,
    source: &str,
    table: &DeTable<'_>,
    node: &serde_json::Value,
    root: &serde_json::Value,
    out: &mut Vec<Diagnostic>,
) {
    let node = resolve(root, node);
    let properties = node.get("properties").and_then(|p| p.as_object());
    let additional = node.get("additionalProperties");
    for (key, value) in table.iter() {
        let name: &str = key.get_ref();
        let child = match (properties.and_then(|p| p.get(name)), additional) {
            (Some(schema), _) => schema,
            (None, Some(schema)) if schema.is_object() => schema,
            (None, Some(serde_json::Value::Bool(false))) => {
                let known: Vec<&str> = properties.map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
                let mut d = Diagnostic::at_offset(path, source, key.span().start, format!("unknown key `{name}`"));
                d.hint = Some(match did_you_mean(name, known.iter().copied()) {
                    Some(best) => format!("did you mean `{best}`? (expected one of: {})", known.join(", ")),
                    None => format!("expected one of: {}", known.join(", ")),
                });
                out.push(d);
                continue;
            }
            _ => continue,
        };
        walk_value(path, source, value.get_ref(), child, root, out);
    }
}

fn walk_value(
    path: &Path,
    source: &str,
    value: &DeValue<'_>,
    node: &serde_json::Value,
    root: &serde_json::Value,
    out: &mut Vec<Diagnostic>,
) {
    let node = resolve(root, node);
    if let Some(table) = value.as_table() {
        walk_table(path, source, table, node, root, out);
    } else if let (Some(array), Some(items)) = (value.as_array(), node.get("items")) {
        for element in array.iter() {
            walk_value(path, source, element.get_ref(), items, root, out);
        }
    }
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
