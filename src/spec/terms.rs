//! Covariate terms: `age`, `age^2` (square), `age*sex` (interaction), and `C(site)` or
//! `C(site, ref="A")` (a categorical column, treatment-coded as statsmodels/patsy do: one 0/1
//! column per level except the reference, which is the first level in sorted order unless
//! chosen; see `stages::covariates`).
//!
//! Derived terms are formed from z-scored base columns. With an intercept in the model this spans
//! exactly the same column space as the raw products (age² = s²·z² + 2ms·z + m²), so the feature's
//! β, SE and t are unchanged, and the design stays well conditioned.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Term {
    Column(String),
    Square(String),
    Interaction(String, String),
    /// A categorical column and its chosen reference level.
    Categorical {
        column: String,
        reference: Option<String>,
    },
}

impl Term {
    /// Parse one term; the error says what is wrong with the text.
    pub fn parse(text: &str) -> Result<Term, String> {
        let text = text.trim();
        // Real column names carry `&`, `-`, `.` (FreeSurfer's `lh_G&S_frontomargin_thickness`,
        // `Left-Amygdala`); only what the term syntax itself uses is excluded.
        let valid = |name: &str| {
            !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || matches!(c, '(' | ')' | ',' | '"' | '\''))
        };
        if let Some(inner) = text.strip_prefix("C(") {
            return Self::parse_categorical(inner);
        }
        if let Some((base, power)) = text.split_once('^') {
            let base = base.trim();
            if power.trim() != "2" {
                return Err(format!("only squares are supported (`{base}^2`), not `^{}`", power.trim()));
            }
            if !valid(base) {
                return Err(format!("`{base}` is not a column name"));
            }
            return Ok(Term::Square(base.to_string()));
        }
        if let Some((a, b)) = text.split_once('*') {
            let (a, b) = (a.trim(), b.trim());
            if b.contains('*') {
                return Err("only two-way interactions are supported (`a*b`)".into());
            }
            for name in [a, b] {
                if !valid(name) {
                    return Err(format!("`{name}` is not a column name"));
                }
            }
            return Ok(Term::Interaction(a.to_string(), b.to_string()));
        }
        if !valid(text) {
            return Err(format!("`{text}` is not a column name or a term like `age^2` or `age*sex`"));
        }
        Ok(Term::Column(text.to_string()))
    }

    /// `C(` already stripped: `col)`, `col, ref="A")` (also `ref='A'`, `ref=A`, and patsy's
    /// `Treatment(reference="A")`).
    fn parse_categorical(inner: &str) -> Result<Term, String> {
        let Some(body) = inner.trim_end().strip_suffix(')') else {
            return Err("`C(` needs a closing `)`, as in `C(site)`".into());
        };
        let (column, rest) = match body.split_once(',') {
            Some((c, rest)) => (c.trim(), Some(rest.trim())),
            None => (body.trim(), None),
        };
        if column.is_empty() || column.contains(['(', ')', '"', '\'', '*', '^', ' ']) {
            return Err(format!("`{column}` is not a column name; write `C(column)` or `C(column, ref=\"LEVEL\")`"));
        }
        let reference = match rest {
            None => None,
            Some(rest) => {
                let value = rest
                    .strip_prefix("ref")
                    .or_else(|| rest.strip_prefix("Treatment(reference").and_then(|r| r.strip_suffix(')')))
                    .and_then(|r| r.trim_start().strip_prefix('='))
                    .or_else(|| rest.strip_prefix("Treatment(").and_then(|r| r.strip_suffix(')')))
                    .map(str::trim)
                    .ok_or_else(|| format!("`{rest}`: write the reference level as `ref=\"LEVEL\"`"))?;
                let unquoted = ['"', '\'']
                    .iter()
                    .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
                    .unwrap_or(value);
                if unquoted.is_empty() {
                    return Err("the reference level is empty; write `ref=\"LEVEL\"`".into());
                }
                Some(unquoted.to_string())
            }
        };
        Ok(Term::Categorical { column: column.to_string(), reference })
    }

    /// The base columns the term reads.
    pub fn columns(&self) -> Vec<&str> {
        match self {
            Term::Column(c) | Term::Square(c) | Term::Categorical { column: c, .. } => vec![c],
            Term::Interaction(a, b) => vec![a, b],
        }
    }

    /// The column read as categories, if the term is categorical.
    pub fn categorical(&self) -> Option<&str> {
        match self {
            Term::Categorical { column, .. } => Some(column),
            _ => None,
        }
    }

    /// Evaluate a numeric term for one subject from (z-scored) base values; a categorical term
    /// has no single value (it expands into indicator columns) and gives NaN.
    pub fn eval(&self, z: impl Fn(&str) -> f64) -> f64 {
        match self {
            Term::Column(c) => z(c),
            Term::Square(c) => z(c) * z(c),
            Term::Interaction(a, b) => z(a) * z(b),
            Term::Categorical { .. } => f64::NAN,
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Column(c) => write!(f, "{c}"),
            Term::Square(c) => write!(f, "{c}^2"),
            Term::Interaction(a, b) => write!(f, "{a}*{b}"),
            Term::Categorical { column, reference: None } => write!(f, "C({column})"),
            Term::Categorical { column, reference: Some(r) } => write!(f, "C({column}, ref=\"{r}\")"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(Term::parse("age").unwrap(), Term::Column("age".into()));
        assert_eq!(Term::parse("age ^ 2").unwrap(), Term::Square("age".into()));
        assert_eq!(Term::parse("age*sex").unwrap(), Term::Interaction("age".into(), "sex".into()));
        assert!(Term::parse("age^3").unwrap_err().contains("only squares"));
        assert!(Term::parse("a*b*c").is_err());
        assert!(Term::parse("log(age)").is_err());
        assert_eq!(Term::parse("Left-Amygdala").unwrap(), Term::Column("Left-Amygdala".into()));
    }

    #[test]
    fn parses_categorical_terms() {
        let c = |column: &str, reference: Option<&str>| Term::Categorical {
            column: column.into(),
            reference: reference.map(String::from),
        };
        assert_eq!(Term::parse("C(site)").unwrap(), c("site", None));
        assert_eq!(Term::parse(" C( site ) ").unwrap(), c("site", None));
        assert_eq!(Term::parse("C(site, ref=\"B\")").unwrap(), c("site", Some("B")));
        assert_eq!(Term::parse("C(site, ref='B')").unwrap(), c("site", Some("B")));
        assert_eq!(Term::parse("C(site, Treatment(reference=\"B\"))").unwrap(), c("site", Some("B")));
        assert_eq!(Term::parse("C(lh_G&S_frontomargin_thickness)").unwrap(), c("lh_G&S_frontomargin_thickness", None));
        for term in [c("site", None), c("site", Some("Site 2"))] {
            assert_eq!(Term::parse(&term.to_string()).unwrap(), term);
        }
        assert!(Term::parse("C(site").unwrap_err().contains("closing"));
        assert!(Term::parse("C(site, B)").unwrap_err().contains("ref="));
        assert!(Term::parse("C(site, ref=\"\")").unwrap_err().contains("empty"));
    }
}
