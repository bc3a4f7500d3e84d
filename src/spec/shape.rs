//! The shape of a study document, checked against the JSON Schema generated from the study types
//! (so the two cannot disagree) before serde reads it: every unknown key, every value of the wrong
//! type and every missing required key, all at once, each at its `FILE:LINE:COL` with the key's
//! dotted name and the expected type in words ("a whole number ≥ 0", not serde's "usize").
//! Serde still reads the document afterwards; what it rejects that this walk let through is
//! reported as before.

use crate::error::{Diagnostic, did_you_mean};
use serde_json::{Map, Value};
use std::path::Path;
use toml::de::{DeTable, DeValue};

/// Where problems are reported.
struct Walk<'a> {
    path: &'a Path,
    source: &'a str,
    root: &'a Value,
    out: Vec<Diagnostic>,
}

/// Every shape problem of `document`, in file order.
pub fn problems(path: &Path, source: &str, document: &DeTable<'_>, schema: &Value) -> Vec<Diagnostic> {
    let mut walk = Walk { path, source, root: schema, out: Vec::new() };
    walk.table(document, 0, schema, "");
    walk.out.sort_by_key(|d| (d.line, d.col));
    walk.out
}

/// Follow `$ref`s.
fn resolve<'s>(root: &'s Value, mut node: &'s Value) -> &'s Value {
    for _ in 0..16 {
        match node.get("$ref").and_then(Value::as_str) {
            Some(reference) => node = &root["$defs"][reference.trim_start_matches("#/$defs/")],
            None => break,
        }
    }
    node
}

fn dotted(prefix: &str, key: &str) -> String {
    let bare = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare { key.to_string() } else { format!("\"{key}\"") };
    if prefix.is_empty() { key } else { format!("{prefix}.{key}") }
}

impl<'a> Walk<'a> {
    fn table(&mut self, table: &DeTable<'_>, offset: usize, node: &'a Value, name: &str) {
        let node = resolve(self.root, node);
        let properties = node.get("properties").and_then(Value::as_object);
        let additional = node.get("additionalProperties");
        for (key, value) in table.iter() {
            let key_name: &str = key.get_ref();
            let child = match (properties.and_then(|p| p.get(key_name)), additional) {
                (Some(schema), _) => schema,
                (None, Some(schema)) if schema.is_object() => schema,
                (None, Some(Value::Bool(false))) => {
                    self.unknown(key_name, key.span().start, properties);
                    continue;
                }
                _ => continue,
            };
            self.value(value.get_ref(), value.span().start, child, &dotted(name, key_name));
        }
        let required = node.get("required").and_then(Value::as_array).into_iter().flatten();
        for key in required.filter_map(Value::as_str) {
            if !table.iter().any(|(k, _)| k.get_ref() == key) {
                let section = if name.is_empty() { "the file".to_string() } else { format!("`{name}`") };
                let what = properties.and_then(|p| p.get(key)).map_or_else(String::new, |s| self.expected(s));
                let message = format!("{section} lacks the required key `{}`", dotted(name, key));
                let hint = format!("add `{key} = …` ({what}); `neurospec schema` describes every key");
                self.out.push(Diagnostic::at_offset(self.path, self.source, offset, message).with_hint(hint));
            }
        }
    }

    fn unknown(&mut self, key: &str, offset: usize, properties: Option<&Map<String, Value>>) {
        let known: Vec<&str> = properties.map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
        let mut d = Diagnostic::at_offset(self.path, self.source, offset, format!("unknown key `{key}`"));
        d.hint = Some(match did_you_mean(key, known.iter().copied()) {
            Some(best) => format!("did you mean `{best}`? (expected one of: {})", known.join(", ")),
            None => format!("expected one of: {}", known.join(", ")),
        });
        self.out.push(d);
    }

    fn value(&mut self, value: &DeValue<'_>, offset: usize, node: &'a Value, name: &str) {
        let node = resolve(self.root, node);
        if !self.fits(value, node) {
            let message = format!("`{name}` is {}; expected {}", found(value), self.expected(node));
            self.out.push(Diagnostic::at_offset(self.path, self.source, offset, message));
            return;
        }
        // The value fits; look inside tables and arrays (of the branch it fits, if several).
        let node = self.branch(value, node);
        if let Some(table) = value.as_table() {
            self.table(table, offset, node, name);
        } else if let (Some(array), Some(items)) = (value.as_array(), node.get("items")) {
            for (i, element) in array.iter().enumerate() {
                self.value(element.get_ref(), element.span().start, items, &format!("{name}[{i}]"));
            }
        }
    }

    /// The alternative of `anyOf` / `oneOf` that `value` fits (the node itself without those).
    fn branch(&self, value: &DeValue<'_>, node: &'a Value) -> &'a Value {
        match alternatives(node) {
            Some(list) => list
                .iter()
                .map(|a| resolve(self.root, a))
                .find(|a| self.fits(value, a))
                .map_or(node, |a| self.branch(value, a)),
            None => node,
        }
    }

    /// Whether `value` has the schema's type, enum value and range (not its inner keys: those
    /// are reported one by one).
    fn fits(&self, value: &DeValue<'_>, node: &Value) -> bool {
        let node = resolve(self.root, node);
        if let Some(list) = alternatives(node) {
            return list.iter().any(|a| self.fits(value, a));
        }
        if let Some(constant) = node.get("const") {
            return value.as_str().is_some_and(|s| constant == s);
        }
        if let Some(values) = node.get("enum").and_then(Value::as_array) {
            return values.iter().any(|v| match v {
                Value::String(s) => value.as_str() == Some(s),
                Value::Number(n) => integer(value).is_some_and(|i| n.as_i64() == i64::try_from(i).ok()),
                _ => false,
            });
        }
        let within = |x: f64| {
            node.get("minimum").and_then(Value::as_f64).is_none_or(|m| x >= m)
                && node.get("maximum").and_then(Value::as_f64).is_none_or(|m| x <= m)
        };
        match node.get("type").and_then(Value::as_str) {
            Some("integer") => integer(value).is_some_and(|i| within(i as f64)),
            Some("number") => number(value).is_some_and(within),
            Some("string") => value.as_str().is_some(),
            Some("boolean") => matches!(value, DeValue::Boolean(_)),
            Some("array") => value.as_array().is_some_and(|a| {
                let n = a.len() as f64;
                node.get("minItems").and_then(Value::as_f64).is_none_or(|m| n >= m)
                    && node.get("maxItems").and_then(Value::as_f64).is_none_or(|m| n <= m)
            }),
            Some("object") => value.as_table().is_some(),
            _ => true,
        }
    }

    /// What a schema node accepts, in words.
    fn expected(&self, node: &Value) -> String {
        let node = resolve(self.root, node);
        if let Some(list) = alternatives(node) {
            let words: Vec<String> = list.iter().map(|a| self.expected(a)).collect();
            if words.iter().all(|w| w.starts_with('`')) {
                return format!("one of {}", words.join(", "));
            }
            return words.join(" or ");
        }
        if let Some(constant) = node.get("const") {
            return format!("`{}`", constant.as_str().map_or_else(|| constant.to_string(), str::to_string));
        }
        if let Some(values) = node.get("enum").and_then(Value::as_array) {
            let names: Vec<String> = values
                .iter()
                .map(|v| format!("`{}`", v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                .collect();
            return format!("one of {}", names.join(", "));
        }
        let bound = |key: &str| node.get(key).and_then(Value::as_f64);
        match node.get("type").and_then(Value::as_str) {
            Some("integer") => match (bound("minimum"), bound("maximum")) {
                (Some(lo), Some(hi)) => format!("a whole number from {lo} to {hi}"),
                (Some(lo), None) => format!("a whole number ≥ {lo}"),
                _ => "a whole number".into(),
            },
            Some("number") => "a number".into(),
            Some("string") => "a string (in quotes)".into(),
            Some("boolean") => "true or false".into(),
            Some("array") => {
                let items = node.get("items").map(|i| self.expected(i)).unwrap_or_default();
                let count = match (bound("minItems"), bound("maxItems")) {
                    (Some(lo), Some(hi)) if lo == hi => format!("{lo} "),
                    _ => String::new(),
                };
                if items.is_empty() { "a list [ … ]".into() } else { format!("a list of {count}[{items}]") }
            }
            Some("object") => "a table".into(),
            _ => "another value (see `neurospec schema`)".into(),
        }
    }
}

fn alternatives(node: &Value) -> Option<&Vec<Value>> {
    node.get("anyOf").or_else(|| node.get("oneOf")).and_then(Value::as_array)
}

fn integer(value: &DeValue<'_>) -> Option<i128> {
    match value {
        DeValue::Integer(i) => i128::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok(),
        _ => None,
    }
}

fn number(value: &DeValue<'_>) -> Option<f64> {
    match value {
        DeValue::Float(f) => f.as_str().replace('_', "").parse().ok(),
        _ => integer(value).map(|i| i as f64),
    }
}

/// The value a user wrote, in words.
fn found(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => format!("the string \"{s}\""),
        DeValue::Integer(_) => format!("the whole number {}", integer(value).map_or("?".into(), |i| i.to_string())),
        DeValue::Float(f) => format!("the number {}", f.as_str()),
        DeValue::Boolean(b) => format!("{b}"),
        DeValue::Datetime(d) => format!("the date {d}"),
        DeValue::Array(_) => "a list".into(),
        DeValue::Table(_) => "a table".into(),
    }
}
