//! Covariate terms: `age`, `age^2` (square), `age*sex` (interaction).
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
}

impl Term {
    /// Parse one term; the error says what is wrong with the text.
    pub fn parse(text: &str) -> Result<Term, String> {
        let text = text.trim();
        let valid =
            |name: &str| !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'));
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

    /// The base columns the term reads.
    pub fn columns(&self) -> Vec<&str> {
        match self {
            Term::Column(c) | Term::Square(c) => vec![c],
            Term::Interaction(a, b) => vec![a, b],
        }
    }

    /// Evaluate the term for one subject from z-scored base values.
    pub fn eval(&self, z: impl Fn(&str) -> f64) -> f64 {
        match self {
            Term::Column(c) => z(c),
            Term::Square(c) => z(c) * z(c),
            Term::Interaction(a, b) => z(a) * z(b),
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Column(c) => write!(f, "{c}"),
            Term::Square(c) => write!(f, "{c}^2"),
            Term::Interaction(a, b) => write!(f, "{a}*{b}"),
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
    }
}
