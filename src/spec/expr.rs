//! Derived variables: a small, safe expression language over columns.
//!
//! A study may compute new columns from existing ones:
//!
//! ```toml
//! [derived]
//! change = "madrs_pre - madrs_post"
//! response = "(madrs_pre - madrs_post) / madrs_pre >= 0.5"
//! anxious_group = "hama >= 14 and not excluded"
//! log_dose = "log(dose + 1)"
//! ```
//!
//! An expression is arithmetic and logic over the columns of one subject; it cannot read files,
//! run commands or hold text. Each derived variable becomes a column that later sections (and
//! other derived variables) may use.
//!
//! # Values
//!
//! - **Numbers**: `3`, `0.5`, `.5`, `1e-3`, `2.5E+4`.
//! - **Columns**: a name such as `madrs_pre` or `x1.mean` (letters, digits, `_` and `.`, not
//!   starting with a digit or `.`). Any other name goes in backquotes: `` `CES-D total` ``.
//!   The words `and`, `or` and `not` must be backquoted when they are column names.
//! - A column of a table or a score is a number. A derived variable holding true/false is stored
//!   as 1/0, and another expression that uses it sees true/false.
//!
//! # Operators, loosest first
//!
//! | operators                         | meaning                                   |
//! |-----------------------------------|-------------------------------------------|
//! | `or`, `\|\|`                      | either is true                            |
//! | `and`, `&&`                       | both are true                             |
//! | `not`, `!`                        | negation                                  |
//! | `<` `<=` `>` `>=` `==` `!=`       | comparison (cannot be chained)            |
//! | `+` `-`                           | sum, difference                           |
//! | `*` `/`                           | product, quotient                         |
//! | `-x`                              | negation of a number                      |
//! | `^`                               | power, groups to the right                |
//!
//! So `1 + 2 * 3 ^ 2` is 19, `2 ^ 3 ^ 2` is 512 and, as in Python and R, `-2 ^ 2` is −4.
//! `a < b < c` is an error: write `a < b and b < c`. Parentheses group as usual. `==` and `!=`
//! compare numbers exactly, or two true/false values.
//!
//! # Functions
//!
//! | function              | result                                                           |
//! |-----------------------|------------------------------------------------------------------|
//! | `if(cond, a, b)`      | `a` where `cond` is true, `b` where it is false                  |
//! | `abs(x)`, `sqrt(x)`   | absolute value, square root                                      |
//! | `log(x)`, `exp(x)`    | natural logarithm, e to the power x                              |
//! | `min(x, y, …)`        | smallest / largest of two or more numbers                        |
//! | `max(x, y, …)`        |                                                                  |
//! | `round(x)`            | nearest whole number; halves go to the even one (2.5 → 2), as R  |
//! | `is_missing(x)`       | true where `x` is missing                                        |
//! | `coalesce(x, y)`      | `x`, or `y` where `x` is missing                                 |
//!
//! # Types
//!
//! Every expression is checked before any data is read: arithmetic, comparisons with `<`, and the
//! number functions need numbers; `and`, `or`, `not` and the condition of `if` need true/false;
//! the two branches of `if` and the two arguments of `coalesce` must have the same type. A column
//! that does not exist is an error with a did-you-mean suggestion.
//!
//! # Missing values
//!
//! A missing input makes the result missing, with these exceptions:
//! - `is_missing(x)` is never missing; `coalesce(x, y)` is missing only where both are.
//! - `and` and `or` follow SQL's three-valued logic: `false and missing` is false,
//!   `true or missing` is true; otherwise a missing side makes the result missing.
//! - `if(cond, a, b)` is missing where `cond` is missing.
//!
//! Only what is needed is computed for each subject: the branch of `if` that is not taken, the
//! right side of `and` when the left is false (of `or` when it is true), and `y` in
//! `coalesce(x, y)` when `x` is present. So `if(dose > 0, log(dose), 0)` never takes the log of 0.
//!
//! # Undefined operations
//!
//! Dividing by zero, the log of a number ≤ 0, the square root of a negative number, a negative
//! number to a fractional power, and results too large to represent are *undefined*. The
//! [`Undefined`] policy decides: `Error` stops with the subject, the expression and the values
//! involved; `Missing` makes the value missing and counts how often that happened.
//!
//! # Order
//!
//! Derived variables are computed in dependency order (ties in the order given); a cycle
//! (`a` uses `b`, which uses `a`) is an error naming it.
//!
//! # For callers
//!
//! Values are `f64` per subject, **NaN meaning missing** (true/false as 1/0). Errors carry the
//! byte span in the expression text; [`ExprError::render`] draws it with carets and
//! [`ExprError::to_diagnostic`] places it in the study file. [`Expr`]'s `Display` is a canonical
//! form (`and` for `&&`, minimal parentheses, single spaces) used in fingerprints and provenance:
//! parsing it gives back the same expression.
//!
//! One file because the lexer, parser, type and dependency checker, evaluator and the canonical
//! printer of one small language change together.

use crate::error::{Diagnostic, did_you_mean};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::path::Path;

// ---------------------------------------------------------------------------------------------
// Syntax tree
// ---------------------------------------------------------------------------------------------

/// A parsed expression: what it computes and where it was written.
///
/// Equality compares structure only, not source positions, so `parse("a+b") == parse("a + b")`.
#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    /// Byte range of this sub-expression in the text it was parsed from (parentheses included).
    pub span: Range<usize>,
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Number(f64),
    Column(String),
    /// `-x`
    Neg(Box<Expr>),
    /// `not x`
    Not(Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    Call(Function, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
}

impl BinaryOp {
    /// The canonical spelling.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Pow => "^",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
        }
    }

    fn is_comparison(self) -> bool {
        matches!(self, BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge | BinaryOp::Eq | BinaryOp::Ne)
    }

    /// (left, right) binding powers; higher binds tighter. Left-associative operators have
    /// right > left, `^` (right-associative) has right < left, comparisons are non-associative
    /// (checked in the parser).
    fn binding_power(self) -> (u8, u8) {
        match self {
            BinaryOp::Or => (1, 2),
            BinaryOp::And => (3, 4),
            op if op.is_comparison() => (7, 8),
            BinaryOp::Add | BinaryOp::Sub => (9, 10),
            BinaryOp::Mul | BinaryOp::Div => (11, 12),
            _ => (16, 15), // Pow
        }
    }
}

/// Binding power of the operand of prefix `not` and prefix `-`.
const NOT_OPERAND: u8 = 5;
const NEG_OPERAND: u8 = 13;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    If,
    Abs,
    Sqrt,
    Log,
    Exp,
    Min,
    Max,
    Round,
    IsMissing,
    Coalesce,
}

impl Function {
    pub const ALL: [Function; 10] = [
        Function::If,
        Function::Abs,
        Function::Sqrt,
        Function::Log,
        Function::Exp,
        Function::Min,
        Function::Max,
        Function::Round,
        Function::IsMissing,
        Function::Coalesce,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Function::If => "if",
            Function::Abs => "abs",
            Function::Sqrt => "sqrt",
            Function::Log => "log",
            Function::Exp => "exp",
            Function::Min => "min",
            Function::Max => "max",
            Function::Round => "round",
            Function::IsMissing => "is_missing",
            Function::Coalesce => "coalesce",
        }
    }

    fn from_name(name: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.name() == name)
    }

    /// How many arguments it takes: (fewest, most).
    fn arity(self) -> (usize, usize) {
        match self {
            Function::If => (3, 3),
            Function::Min | Function::Max => (2, usize::MAX),
            Function::Coalesce => (2, 2),
            _ => (1, 1),
        }
    }
}

impl Expr {
    fn new(kind: ExprKind, span: Range<usize>) -> Expr {
        Expr { kind, span }
    }

    /// The columns the expression reads, each once, in order of first appearance.
    pub fn columns(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        self.visit_columns(&mut |name, _| {
            if !out.contains(&name) {
                out.push(name);
            }
        });
        out
    }

    /// Every column reference with its span, in source order.
    fn visit_columns<'a>(&'a self, f: &mut impl FnMut(&'a str, &Range<usize>)) {
        match &self.kind {
            ExprKind::Number(_) => {}
            ExprKind::Column(name) => f(name, &self.span),
            ExprKind::Neg(x) | ExprKind::Not(x) => x.visit_columns(f),
            ExprKind::Binary(_, a, b) => {
                a.visit_columns(f);
                b.visit_columns(f);
            }
            ExprKind::Call(_, args) => args.iter().for_each(|a| a.visit_columns(f)),
        }
    }

    /// How tightly the canonical form of this node binds (for parentheses in `Display`).
    fn precedence(&self) -> u8 {
        match &self.kind {
            ExprKind::Binary(op, ..) => op.binding_power().0,
            ExprKind::Not(_) => NOT_OPERAND,
            ExprKind::Neg(_) => NEG_OPERAND,
            ExprKind::Number(_) | ExprKind::Column(_) | ExprKind::Call(..) => u8::MAX,
        }
    }
}

/// Write `e`, in parentheses when `parenthesise`.
fn write_operand(f: &mut fmt::Formatter<'_>, e: &Expr, parenthesise: bool) -> fmt::Result {
    if parenthesise { write!(f, "({e})") } else { write!(f, "{e}") }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Number(x) => write!(f, "{}", format_number(*x)),
            ExprKind::Column(name) if is_plain_name(name) => write!(f, "{name}"),
            ExprKind::Column(name) => write!(f, "`{name}`"),
            ExprKind::Neg(x) => {
                write!(f, "-")?;
                write_operand(f, x, x.precedence() <= NEG_OPERAND)
            }
            ExprKind::Not(x) => {
                write!(f, "not ")?;
                write_operand(f, x, x.precedence() < NOT_OPERAND)
            }
            ExprKind::Binary(op, a, b) => {
                let p = op.binding_power().0;
                let (left_parens, right_parens) = if *op == BinaryOp::Pow {
                    (a.precedence() <= p, b.precedence() < p)
                } else if op.is_comparison() {
                    (a.precedence() <= p, b.precedence() <= p)
                } else {
                    (a.precedence() < p, b.precedence() <= p)
                };
                write_operand(f, a, left_parens)?;
                write!(f, " {} ", op.symbol())?;
                write_operand(f, b, right_parens)
            }
            ExprKind::Call(function, args) => {
                write!(f, "{}(", function.name())?;
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{arg}")?;
                }
                write!(f, ")")
            }
        }
    }
}

/// Shortest text that reads back as the same `f64`: `0.001`, `19`, `1e-7`, `1e300`.
fn format_number(x: f64) -> String {
    let debug = format!("{x:?}");
    if debug.contains('e') { debug } else { format!("{x}") }
}

const KEYWORDS: [&str; 3] = ["and", "or", "not"];

/// Whether a column name can be written without backquotes.
fn is_plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && !KEYWORDS.contains(&name)
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A problem with one expression, located in its text.
#[derive(Debug, Clone, PartialEq)]
pub struct ExprError {
    /// The derived variable (empty when the text was parsed on its own with [`parse`]).
    pub name: String,
    /// The expression as written.
    pub text: String,
    /// Byte range in `text` the problem is about; `None` when it concerns the whole definition
    /// (e.g. its name).
    pub span: Option<Range<usize>>,
    pub message: String,
    pub hint: Option<String>,
}

impl ExprError {
    fn new(span: Range<usize>, message: impl Into<String>) -> ExprError {
        ExprError { name: String::new(), text: String::new(), span: Some(span), message: message.into(), hint: None }
    }

    fn hint(mut self, hint: impl Into<String>) -> ExprError {
        self.hint = Some(hint.into());
        self
    }

    fn named(mut self, name: &str, text: &str) -> ExprError {
        self.name = name.to_string();
        self.text = text.to_string();
        self
    }

    /// 0-based position of the problem in the expression, in characters.
    pub fn char_offset(&self) -> usize {
        let start = self.span.as_ref().map_or(0, |s| s.start).min(self.text.len());
        self.text.get(..start).map_or(start, |before| before.chars().count())
    }

    /// The definition with carets under the problem:
    ///
    /// ```text
    /// response = "(madrs_pre - madrs_pst) / madrs_pre >= 0.5"
    ///                          ^^^^^^^^^ unknown column `madrs_pst`; did you mean `madrs_post`?
    /// ```
    pub fn render(&self) -> String {
        let prefix = if self.name.is_empty() { "\"".to_string() } else { format!("{} = \"", self.name) };
        let mut out = format!("{prefix}{}\"\n", self.text);
        let explanation = match &self.hint {
            Some(hint) => format!("{}; {hint}", self.message),
            None => self.message.clone(),
        };
        match &self.span {
            Some(span) => {
                let indent = prefix.chars().count() + self.char_offset();
                let width = self.text.get(span.clone()).map_or(1, |s| s.chars().count()).max(1);
                out.push_str(&format!("{}{} {explanation}", " ".repeat(indent), "^".repeat(width)));
            }
            None => out.push_str(&explanation),
        }
        out
    }

    /// A diagnostic in the study file. `text_start` is the byte offset in `source` where the
    /// expression text begins (just after the opening quote); exact for TOML strings without
    /// escape sequences.
    pub fn to_diagnostic(&self, file: &Path, source: &str, text_start: usize) -> Diagnostic {
        let offset = text_start + self.span.as_ref().map_or(0, |s| s.start);
        let message = if self.name.is_empty() {
            self.message.clone()
        } else {
            format!("derived variable `{}`: {}", self.name, self.message)
        };
        let diagnostic = Diagnostic::at_offset(file, source, offset, message);
        match &self.hint {
            Some(hint) => diagnostic.with_hint(hint.clone()),
            None => diagnostic,
        }
    }
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.name.is_empty() {
            write!(f, "derived variable `{}`", self.name)?;
        } else {
            write!(f, "expression")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ExprError {}

// ---------------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    /// A plain name (not a keyword).
    Name(String),
    /// A backquoted name.
    Quoted(String),
    Binary(BinaryOp),
    Minus,
    Not,
    Open,
    Close,
    Comma,
    End,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Number(x) => format!("the number `{}`", format_number(*x)),
            Token::Name(n) | Token::Quoted(n) => format!("`{n}`"),
            Token::Binary(op) => format!("`{}`", op.symbol()),
            Token::Minus => "`-`".into(),
            Token::Not => "`not`".into(),
            Token::Open => "`(`".into(),
            Token::Close => "`)`".into(),
            Token::Comma => "`,`".into(),
            Token::End => "the end".into(),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<(Token, Range<usize>)>, ExprError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let c = text[i..].chars().next().expect("in bounds");
        let start = i;
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            i = scan_number(text, i)?;
            let literal = &text[start..i];
            let value: f64 =
                literal.parse().map_err(|_| ExprError::new(start..i, format!("`{literal}` is not a number")))?;
            if !value.is_finite() {
                return Err(ExprError::new(start..i, format!("`{literal}` is too large")));
            }
            if bytes.get(i).is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_') {
                let end =
                    i + text[i..].find(|c: char| !c.is_ascii_alphanumeric() && c != '_').unwrap_or(text.len() - i);
                return Err(ExprError::new(start..end, format!("`{}` is not a number", &text[start..end]))
                    .hint("names cannot start with a digit; write a product as `2 * x`"));
            }
            tokens.push((Token::Number(value), start..i));
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            i += text[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .unwrap_or(text.len() - i);
            let word = &text[start..i];
            let token = match word {
                "and" => Token::Binary(BinaryOp::And),
                "or" => Token::Binary(BinaryOp::Or),
                "not" => Token::Not,
                _ => Token::Name(word.to_string()),
            };
            tokens.push((token, start..i));
            continue;
        }
        if c == '`' {
            let Some(length) = text[i + 1..].find('`') else {
                return Err(ExprError::new(start..text.len(), "unclosed backquote")
                    .hint("end the column name with another backquote: `like this`"));
            };
            i += length + 2;
            if length == 0 {
                return Err(ExprError::new(start..i, "empty column name ``"));
            }
            tokens.push((Token::Quoted(text[start + 1..i - 1].to_string()), start..i));
            continue;
        }
        let two = text.get(i..i + 2).unwrap_or("");
        let (token, length) = match two {
            "<=" => (Token::Binary(BinaryOp::Le), 2),
            ">=" => (Token::Binary(BinaryOp::Ge), 2),
            "==" => (Token::Binary(BinaryOp::Eq), 2),
            "!=" => (Token::Binary(BinaryOp::Ne), 2),
            "&&" => (Token::Binary(BinaryOp::And), 2),
            "||" => (Token::Binary(BinaryOp::Or), 2),
            "**" => return Err(ExprError::new(i..i + 2, "`**` is not an operator").hint("write powers with `^`")),
            _ => match c {
                '+' => (Token::Binary(BinaryOp::Add), 1),
                '-' => (Token::Minus, 1),
                '*' => (Token::Binary(BinaryOp::Mul), 1),
                '/' => (Token::Binary(BinaryOp::Div), 1),
                '^' => (Token::Binary(BinaryOp::Pow), 1),
                '<' => (Token::Binary(BinaryOp::Lt), 1),
                '>' => (Token::Binary(BinaryOp::Gt), 1),
                '!' => (Token::Not, 1),
                '(' => (Token::Open, 1),
                ')' => (Token::Close, 1),
                ',' => (Token::Comma, 1),
                _ => {
                    let span = i..i + c.len_utf8();
                    let error = ExprError::new(span, format!("unexpected character `{c}`"));
                    return Err(match c {
                        '=' => error.hint("compare with `==`"),
                        '&' => error.hint("write `and` (or `&&`)"),
                        '|' => error.hint("write `or` (or `||`)"),
                        '"' | '\'' => error.hint("expressions hold no text; put unusual column names in backquotes"),
                        _ => error.hint("expressions use numbers, column names, `+ - * / ^`, comparisons, `and or not` and functions"),
                    });
                }
            },
        };
        i += length;
        tokens.push((token, start..i));
    }
    tokens.push((Token::End, text.len()..text.len()));
    Ok(tokens)
}

/// End of the number literal starting at `start`: digits, optional fraction, optional exponent.
fn scan_number(text: &str, start: usize) -> Result<usize, ExprError> {
    let bytes = text.as_bytes();
    let digits = |mut i: usize| {
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut i = digits(start);
    if bytes.get(i) == Some(&b'.') {
        i = digits(i + 1);
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(bytes.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let end = digits(j);
        if end == j {
            return Err(ExprError::new(start..j, format!("`{}` is not a number", &text[start..j]))
                .hint("an exponent needs digits, e.g. `1e-3`"));
        }
        i = end;
    }
    Ok(i)
}

// ---------------------------------------------------------------------------------------------
// Parser (Pratt)
// ---------------------------------------------------------------------------------------------

/// Parse one expression. The error's `name` and `text` are left empty (see [`check`]).
pub fn parse(text: &str) -> Result<Expr, ExprError> {
    let tokens = tokenize(text)?;
    let parts =
        tokens.iter().filter(|(t, _)| !matches!(t, Token::Open | Token::Close | Token::Comma | Token::End)).count();
    if parts > MAX_PARTS {
        let message = format!("the expression is too long ({parts} parts; at most {MAX_PARTS})");
        return Err(ExprError::new(0..text.len(), message).hint("split it into several derived variables"));
    }
    let mut parser = Parser { tokens, position: 0, nesting: 0 };
    if parser.peek() == &Token::End {
        return Err(ExprError::new(0..text.len(), "the expression is empty"));
    }
    let expr = parser.expression(0)?;
    match parser.peek() {
        Token::End => Ok(expr),
        Token::Close => Err(ExprError::new(parser.span(), "`)` without a matching `(`")),
        token => {
            let message = format!("expected an operator, found {}", token.describe());
            Err(ExprError::new(parser.span(), message).hint("is an operator such as `*` or `and` missing?"))
        }
    }
}

/// Most parts (numbers, names, operators, function names) in one expression. Each part makes at
/// most one node, so this bounds the tree's depth: checking, evaluating and printing recurse over
/// it and must not exhaust the stack, whatever the input.
const MAX_PARTS: usize = 1000;

/// Deepest nesting of sub-expressions while parsing (parentheses and operands). The canonical
/// form of a tree of depth d nests at most 2d + 1 deep, so whatever parses, its `Display` parses.
const MAX_NESTING: usize = 2 * MAX_PARTS + 1;

struct Parser {
    tokens: Vec<(Token, Range<usize>)>,
    position: usize,
    /// Current depth of `expression` calls.
    nesting: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.position].0
    }

    fn span(&self) -> Range<usize> {
        self.tokens[self.position].1.clone()
    }

    fn advance(&mut self) -> (Token, Range<usize>) {
        let token = self.tokens[self.position].clone();
        if self.position + 1 < self.tokens.len() {
            self.position += 1;
        }
        token
    }

    fn expression(&mut self, min_power: u8) -> Result<Expr, ExprError> {
        if self.nesting == MAX_NESTING {
            return Err(ExprError::new(self.span(), format!("the expression is nested more than {MAX_NESTING} deep"))
                .hint("split it into several derived variables"));
        }
        self.nesting += 1;
        let expr = self.binary_chain(min_power);
        self.nesting -= 1;
        expr
    }

    /// An operand followed by operators binding at least `min_power`, left to right.
    fn binary_chain(&mut self, min_power: u8) -> Result<Expr, ExprError> {
        let mut left = self.operand()?;
        // Whether `left` is a comparison built in this loop (not one inside parentheses).
        let mut after_comparison = false;
        loop {
            let op = match *self.peek() {
                Token::Binary(op) => op,
                Token::Minus => BinaryOp::Sub,
                _ => break,
            };
            let (left_power, right_power) = op.binding_power();
            if left_power < min_power {
                break;
            }
            if op.is_comparison() && after_comparison {
                return Err(ExprError::new(self.span(), "comparisons cannot be chained")
                    .hint("write `a < b and b < c`, or add parentheses"));
            }
            let (_, operator_span) = self.advance();
            let right = self.operand_after(right_power, &operator_span, op.symbol())?;
            after_comparison = op.is_comparison();
            let span = left.span.start..right.span.end;
            left = Expr::new(ExprKind::Binary(op, Box::new(left), Box::new(right)), span);
        }
        Ok(left)
    }

    /// The operand after an operator, with a clear error when there is none.
    fn operand_after(&mut self, power: u8, operator: &Range<usize>, symbol: &str) -> Result<Expr, ExprError> {
        if matches!(self.peek(), Token::End | Token::Close | Token::Comma | Token::Binary(_)) {
            let found = self.peek().describe();
            return Err(ExprError::new(operator.clone(), format!("`{symbol}` needs a value after it, found {found}")));
        }
        self.expression(power)
    }

    /// A value with its prefix operators: number, column, call, parenthesised expression.
    fn operand(&mut self) -> Result<Expr, ExprError> {
        let (token, span) = self.advance();
        match token {
            Token::Number(x) => Ok(Expr::new(ExprKind::Number(x), span)),
            Token::Quoted(name) => Ok(Expr::new(ExprKind::Column(name), span)),
            Token::Name(name) if self.peek() == &Token::Open => self.call(name, span),
            Token::Name(name) => Ok(Expr::new(ExprKind::Column(name), span)),
            Token::Minus => {
                let x = self.operand_after(NEG_OPERAND, &span, "-")?;
                let span = span.start..x.span.end;
                Ok(Expr::new(ExprKind::Neg(Box::new(x)), span))
            }
            Token::Not => {
                let x = self.operand_after(NOT_OPERAND, &span, "not")?;
                let span = span.start..x.span.end;
                Ok(Expr::new(ExprKind::Not(Box::new(x)), span))
            }
            Token::Open => {
                if self.peek() == &Token::Close {
                    return Err(ExprError::new(span.start..self.span().end, "empty parentheses"));
                }
                let mut inner = self.expression(0)?;
                match self.advance() {
                    (Token::Close, close) => {
                        inner.span = span.start..close.end;
                        Ok(inner)
                    }
                    (Token::End, _) => Err(ExprError::new(span, "this `(` is never closed")),
                    (other, at) => {
                        Err(ExprError::new(at, format!("expected `)` or an operator, found {}", other.describe())))
                    }
                }
            }
            Token::Close => Err(ExprError::new(span, "expected a value, found `)`")),
            Token::Comma => Err(ExprError::new(span, "expected a value, found `,`")),
            Token::End => Err(ExprError::new(span, "expected a value, found the end")),
            Token::Binary(op) => Err(ExprError::new(span, format!("expected a value, found `{}`", op.symbol()))),
        }
    }

    /// `name(args…)`; the current token is `(`.
    fn call(&mut self, name: String, name_span: Range<usize>) -> Result<Expr, ExprError> {
        let Some(function) = Function::from_name(&name) else {
            let names: Vec<&str> = Function::ALL.iter().map(|f| f.name()).collect();
            let error = ExprError::new(name_span, format!("unknown function `{name}`"));
            return Err(match did_you_mean(&name, names.iter().copied()) {
                Some(best) => error.hint(format!("did you mean `{best}`?")),
                None => error.hint(format!("functions are: {}", names.join(", "))),
            });
        };
        let (_, open) = self.advance();
        let mut args = Vec::new();
        if self.peek() != &Token::Close {
            loop {
                args.push(self.expression(0)?);
                match self.advance() {
                    (Token::Comma, _) => continue,
                    (Token::Close, _) => break,
                    (Token::End, _) => return Err(ExprError::new(open, format!("`{name}(` is never closed"))),
                    (other, at) => {
                        let message = format!("expected `,` or `)`, found {}", other.describe());
                        return Err(ExprError::new(at, message));
                    }
                }
            }
        } else {
            self.advance();
        }
        let end = self.tokens[self.position - 1].1.end;
        let span = name_span.start..end;
        let (fewest, most) = function.arity();
        if args.len() < fewest || args.len() > most {
            let expected = match (fewest, most) {
                (1, 1) => "1 argument".to_string(),
                (n, m) if n == m => format!("{n} arguments"),
                (n, _) => format!("at least {n} arguments"),
            };
            let usage = match function {
                Function::If => "if(condition, value_if_true, value_if_false)".to_string(),
                Function::Coalesce => "coalesce(x, value_if_x_missing)".to_string(),
                Function::Min | Function::Max => format!("{name}(x, y, …)"),
                _ => format!("{name}(x)"),
            };
            return Err(ExprError::new(span, format!("`{name}` takes {expected}, not {}", args.len()))
                .hint(format!("write `{usage}`")));
        }
        Ok(Expr::new(ExprKind::Call(function, args), span))
    }
}

// ---------------------------------------------------------------------------------------------
// Checking: names, dependencies, types
// ---------------------------------------------------------------------------------------------

/// The type of an expression's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Number,
    /// true/false, stored as 1/0.
    Bool,
}

/// A derived variable that passed every check, ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub name: String,
    /// The expression as written.
    pub text: String,
    pub expr: Expr,
    pub ty: Type,
    /// The other derived variables it reads (they come earlier in [`check`]'s result).
    pub uses: Vec<String>,
}

/// Check derived variables `(name, expression)` against the columns available to them (tables
/// and scores; all numbers). Returns them in evaluation order (each after the derived variables
/// it uses; otherwise in the given order), or every problem found, in the given order.
pub fn check(derived: &[(String, String)], columns: &[String]) -> Result<Vec<Checked>, Vec<ExprError>> {
    let column_set: HashSet<&str> = columns.iter().map(String::as_str).collect();
    let mut errors: Vec<(usize, ExprError)> = Vec::new();
    let mut index_of: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, (name, text)) in derived.iter().enumerate() {
        let problem = if name.trim().is_empty() {
            Some(ExprError::new(0..0, "a derived variable needs a name"))
        } else if column_set.contains(name.as_str()) {
            Some(
                ExprError::new(0..0, format!("`{name}` is already a column"))
                    .hint("give the derived variable a new name"),
            )
        } else if index_of.contains_key(name.as_str()) {
            Some(ExprError::new(0..0, format!("`{name}` is defined twice")))
        } else {
            index_of.insert(name, i);
            None
        };
        if let Some(mut error) = problem {
            error.span = None;
            errors.push((i, error.named(name, text)));
        }
    }

    // Parse, and resolve every column: a table column, a derived variable, or unknown.
    let parsed: Vec<Option<Expr>> = derived
        .iter()
        .enumerate()
        .map(|(i, (name, text))| match parse(text) {
            Ok(expr) => Some(expr),
            Err(error) => {
                errors.push((i, error.named(name, text)));
                None
            }
        })
        .collect();
    let candidates: Vec<&str> = columns.iter().map(String::as_str).chain(index_of.keys().copied()).collect();
    // uses[i]: (derived index, span of the first reference) for each derived variable i reads.
    let mut uses: Vec<Vec<(usize, Range<usize>)>> = vec![Vec::new(); derived.len()];
    for (i, expr) in parsed.iter().enumerate() {
        let Some(expr) = expr else { continue };
        let (name, text) = &derived[i];
        expr.visit_columns(&mut |column, span| {
            if let Some(&j) = index_of.get(column) {
                if !uses[i].iter().any(|(k, _)| *k == j) {
                    uses[i].push((j, span.clone()));
                }
            } else if !column_set.contains(column) {
                let error = ExprError::new(span.clone(), format!("unknown column `{column}`"));
                let error = match did_you_mean(column, candidates.iter().copied()) {
                    Some(best) => error.hint(format!("did you mean `{best}`?")),
                    None if Function::from_name(column).is_some() => {
                        error.hint(format!("`{column}` is a function: write `{column}(…)`"))
                    }
                    None => error.hint("use a column of the tables, a score, or another derived variable"),
                };
                errors.push((i, error.named(name, text)));
            }
        });
    }

    let (order, cycles) = dependency_order(&uses);
    for cycle in cycles {
        let first = cycle[0];
        let (name, text) = &derived[first];
        let next = cycle.get(1).copied().unwrap_or(first);
        let span = uses[first].iter().find(|(j, _)| *j == next).map(|(_, s)| s.clone()).unwrap_or(0..0);
        let error = if cycle.len() == 1 {
            ExprError::new(span, format!("`{name}` uses itself"))
        } else {
            let path: Vec<String> = cycle.iter().chain([&first]).map(|&k| format!("`{}`", derived[k].0)).collect();
            ExprError::new(span, format!("derived variables use each other in a cycle: {}", path.join(" → ")))
        };
        errors.push((first, error.hint("one of them must be computed from other columns only").named(name, text)));
    }

    // Types, in dependency order so that a derived variable's type is known where it is used.
    let mut types: Vec<Option<Type>> = vec![None; derived.len()];
    for &i in &order {
        let Some(expr) = &parsed[i] else { continue };
        let (name, text) = &derived[i];
        let mut found = Vec::new();
        let column_type = |column: &str| match index_of.get(column) {
            Some(&j) => types[j],
            None => Some(Type::Number),
        };
        types[i] = type_of(expr, &column_type, &mut found);
        errors.extend(found.into_iter().map(|e| (i, e.named(name, text))));
    }

    if !errors.is_empty() {
        errors.sort_by_key(|(i, e)| (*i, e.span.as_ref().map_or(0, |s| s.start)));
        return Err(errors.into_iter().map(|(_, e)| e).collect());
    }
    Ok(order
        .into_iter()
        .map(|i| Checked {
            name: derived[i].0.clone(),
            text: derived[i].1.clone(),
            expr: parsed[i].clone().expect("parsed without errors"),
            ty: types[i].expect("typed without errors"),
            uses: uses[i].iter().map(|(j, _)| derived[*j].0.clone()).collect(),
        })
        .collect())
}

/// Topological order of `uses` (i reads each of uses[i]), taking the earliest-given ready
/// variable first; and the cycles among the rest, each once, starting at its earliest member.
fn dependency_order(uses: &[Vec<(usize, Range<usize>)>]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let n = uses.len();
    let mut placed = vec![false; n];
    let mut order = Vec::with_capacity(n);
    while let Some(i) = (0..n).find(|&i| !placed[i] && uses[i].iter().all(|(j, _)| placed[*j])) {
        placed[i] = true;
        order.push(i);
    }
    // Every unplaced variable uses an unplaced one, so walking those edges must come round.
    let mut cycles: Vec<Vec<usize>> = Vec::new();
    let mut seen: Vec<Vec<usize>> = Vec::new();
    for start in (0..n).filter(|&i| !placed[i]) {
        let mut path = vec![start];
        let cycle = loop {
            let last = *path.last().expect("non-empty");
            let next = uses[last].iter().map(|(j, _)| *j).find(|&j| !placed[j]).expect("unplaced uses unplaced");
            if let Some(at) = path.iter().position(|&k| k == next) {
                break path.split_off(at);
            }
            path.push(next);
        };
        let mut members = cycle.clone();
        members.sort_unstable();
        if !seen.contains(&members) {
            let earliest = cycle.iter().position(|&k| k == members[0]).expect("member");
            let mut rotated = cycle[earliest..].to_vec();
            rotated.extend_from_slice(&cycle[..earliest]);
            cycles.push(rotated);
            seen.push(members);
        }
    }
    (order, cycles)
}

/// How a value of type `ty` computed by `e` reads in a message.
fn describe(e: &Expr, ty: Type) -> String {
    match (ty, &e.kind) {
        (Type::Number, ExprKind::Column(c)) => format!("the column `{c}` (a number)"),
        (Type::Number, ExprKind::Number(x)) => format!("the number {}", format_number(*x)),
        (Type::Number, _) => "a number".into(),
        (Type::Bool, ExprKind::Column(c)) => format!("`{c}` (true/false)"),
        (Type::Bool, ExprKind::Binary(op, ..)) if op.is_comparison() => "a comparison (true/false)".into(),
        (Type::Bool, ExprKind::Call(Function::IsMissing, _)) => "a missing-value test (true/false)".into(),
        (Type::Bool, _) => "a logical expression (true/false)".into(),
    }
}

/// Require type `want` of the operand `x` (typed `got`; `None` = unknown, already reported),
/// described as `what` of `operation`.
fn require(x: &Expr, got: Option<Type>, want: Type, operation: &str, what: &str, errors: &mut Vec<ExprError>) {
    if let Some(got) = got
        && got != want
    {
        let needs = match want {
            Type::Number => "numbers",
            Type::Bool => "true/false values",
        };
        let message = format!("{operation} needs {needs} but {what} is {}", describe(x, got));
        let hint = match want {
            Type::Number => "turn true/false into 1/0 with `if(condition, 1, 0)`".to_string(),
            Type::Bool => format!("compare it, e.g. `{x} > 0`"),
        };
        errors.push(ExprError::new(x.span.clone(), message).hint(hint));
    }
}

/// Type of `e`, pushing every problem to `errors`. `None` when unknown because of an error
/// (reported here or elsewhere), so one mistake does not cascade into many messages.
fn type_of(e: &Expr, column_type: &dyn Fn(&str) -> Option<Type>, errors: &mut Vec<ExprError>) -> Option<Type> {
    match &e.kind {
        ExprKind::Number(_) => Some(Type::Number),
        ExprKind::Column(c) => column_type(c),
        ExprKind::Neg(x) => {
            let t = type_of(x, column_type, errors);
            require(x, t, Type::Number, "`-`", "its operand", errors);
            Some(Type::Number)
        }
        ExprKind::Not(x) => {
            let t = type_of(x, column_type, errors);
            require(x, t, Type::Bool, "`not`", "its operand", errors);
            Some(Type::Bool)
        }
        ExprKind::Binary(op, a, b) => {
            let (ta, tb) = (type_of(a, column_type, errors), type_of(b, column_type, errors));
            let operation = format!("`{}`", op.symbol());
            match op {
                BinaryOp::And | BinaryOp::Or => {
                    require(a, ta, Type::Bool, &operation, "its left side", errors);
                    require(b, tb, Type::Bool, &operation, "its right side", errors);
                    Some(Type::Bool)
                }
                BinaryOp::Eq | BinaryOp::Ne => {
                    if let (Some(ta), Some(tb)) = (ta, tb)
                        && ta != tb
                    {
                        let message = format!(
                            "{operation} compares values of one type, but its left side is {} and its right side is {}",
                            describe(a, ta),
                            describe(b, tb)
                        );
                        errors.push(
                            ExprError::new(e.span.clone(), message)
                                .hint("turn true/false into 1/0 with `if(condition, 1, 0)`"),
                        );
                    }
                    Some(Type::Bool)
                }
                op if op.is_comparison() => {
                    require(a, ta, Type::Number, &operation, "its left side", errors);
                    require(b, tb, Type::Number, &operation, "its right side", errors);
                    Some(Type::Bool)
                }
                _ => {
                    require(a, ta, Type::Number, &operation, "its left side", errors);
                    require(b, tb, Type::Number, &operation, "its right side", errors);
                    Some(Type::Number)
                }
            }
        }
        ExprKind::Call(function, args) => {
            let types: Vec<Option<Type>> = args.iter().map(|a| type_of(a, column_type, errors)).collect();
            let operation = format!("`{}`", function.name());
            match function {
                Function::If => {
                    require(&args[0], types[0], Type::Bool, "the condition of `if`", "its first argument", errors);
                    match (types[1], types[2]) {
                        (Some(t1), Some(t2)) if t1 != t2 => {
                            let message = format!(
                                "the two branches of `if` must have one type, but the second argument is {} and the third is {}",
                                describe(&args[1], t1),
                                describe(&args[2], t2)
                            );
                            errors.push(
                                ExprError::new(args[1].span.start..args[2].span.end, message)
                                    .hint("turn true/false into 1/0 with `if(condition, 1, 0)`"),
                            );
                            None
                        }
                        (t1, t2) => t1.or(t2),
                    }
                }
                Function::IsMissing => Some(Type::Bool),
                Function::Coalesce => match (types[0], types[1]) {
                    (Some(t1), Some(t2)) if t1 != t2 => {
                        let message = format!(
                            "the two arguments of `coalesce` must have one type, but the first is {} and the second is {}",
                            describe(&args[0], t1),
                            describe(&args[1], t2)
                        );
                        errors.push(ExprError::new(e.span.clone(), message));
                        None
                    }
                    (t1, t2) => t1.or(t2),
                },
                _ => {
                    let single = args.len() == 1;
                    for (i, (arg, t)) in args.iter().zip(&types).enumerate() {
                        let what = if single { "its argument".to_string() } else { format!("its argument {}", i + 1) };
                        require(arg, *t, Type::Number, &operation, &what, errors);
                    }
                    Some(Type::Number)
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

/// What an undefined operation (division by zero, log of a number ≤ 0, …) does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Undefined {
    /// Stop, naming the subject, the operation and the values involved.
    #[default]
    Error,
    /// The value is missing; [`Evaluated::undefined`] counts the subjects concerned.
    Missing,
}

/// The values of one derived variable.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    pub name: String,
    pub ty: Type,
    /// One value per subject: NaN is missing, true/false are 1/0.
    pub values: Vec<f64>,
    /// Subjects for whom an undefined operation gave missing (always 0 with [`Undefined::Error`]).
    pub undefined: usize,
}

/// Evaluate one checked expression for every subject. `get` gives a column's values (NaN =
/// missing; one per entry of `ids`, which name the subjects in messages), including derived
/// variables evaluated earlier (see [`evaluate_all`], which handles that).
pub fn evaluate<'d>(
    checked: &Checked,
    get: &dyn Fn(&str) -> Option<&'d [f64]>,
    ids: &[String],
    policy: Undefined,
) -> Result<Evaluated, ExprError> {
    let n = ids.len();
    let mut evaluator = Evaluator { checked, get, ids, policy, undefined: vec![false; n] };
    let values = evaluator.eval(&checked.expr, &vec![true; n]).map_err(|e| e.named(&checked.name, &checked.text))?;
    let undefined = evaluator.undefined.iter().filter(|&&u| u).count();
    Ok(Evaluated { name: checked.name.clone(), ty: checked.ty, values, undefined })
}

/// Evaluate checked derived variables in order (as returned by [`check`]), each able to read
/// the ones before it, each with its own undefined-value policy.
pub fn evaluate_all<'d>(
    checked: &[Checked],
    get: &dyn Fn(&str) -> Option<&'d [f64]>,
    ids: &[String],
    policy: &dyn Fn(&str) -> Undefined,
) -> Result<Vec<Evaluated>, ExprError> {
    let mut done: Vec<Evaluated> = Vec::with_capacity(checked.len());
    for c in checked {
        let lookup =
            |name: &str| done.iter().find(|d| d.name == name).map(|d| d.values.as_slice()).or_else(|| get(name));
        let evaluated = evaluate(c, &lookup, ids, policy(&c.name))?;
        done.push(evaluated);
    }
    Ok(done)
}

struct Evaluator<'a, 'd> {
    checked: &'a Checked,
    get: &'a dyn Fn(&str) -> Option<&'d [f64]>,
    ids: &'a [String],
    policy: Undefined,
    /// Rows where an undefined operation gave missing.
    undefined: Vec<bool>,
}

/// 1/0 for true/false.
fn truth(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

impl Evaluator<'_, '_> {
    /// Values of `e` for the rows marked in `active` (other rows are NaN and never fail).
    fn eval(&mut self, e: &Expr, active: &[bool]) -> Result<Vec<f64>, ExprError> {
        let n = active.len();
        let values = match &e.kind {
            ExprKind::Number(x) => vec![*x; n],
            ExprKind::Column(name) => {
                let values = (self.get)(name)
                    .ok_or_else(|| ExprError::new(e.span.clone(), format!("column `{name}` is not available")))?;
                if values.len() != n {
                    let message = format!("column `{name}` has {} values for {n} subjects", values.len());
                    return Err(ExprError::new(e.span.clone(), message));
                }
                values.to_vec()
            }
            ExprKind::Neg(x) => self.eval(x, active)?.into_iter().map(|v| -v).collect(),
            ExprKind::Not(x) => {
                self.eval(x, active)?.into_iter().map(|v| if v.is_nan() { v } else { 1.0 - v }).collect()
            }
            ExprKind::Binary(op @ (BinaryOp::And | BinaryOp::Or), a, b) => {
                // The value of the left side that decides alone: false for `and`, true for `or`.
                let decisive = truth(*op == BinaryOp::Or);
                let left = self.eval(a, active)?;
                let needed: Vec<bool> = active.iter().zip(&left).map(|(&on, &l)| on && l != decisive).collect();
                let right = self.eval(b, &needed)?;
                left.iter()
                    .zip(&right)
                    .map(|(&l, &r)| {
                        if l == decisive || r == decisive {
                            decisive
                        } else if l.is_nan() || r.is_nan() {
                            f64::NAN
                        } else {
                            1.0 - decisive
                        }
                    })
                    .collect()
            }
            ExprKind::Binary(op, a, b) => {
                let (left, right) = (self.eval(a, active)?, self.eval(b, active)?);
                let mut out = Vec::with_capacity(n);
                for i in 0..n {
                    let (l, r) = (left[i], right[i]);
                    let value = match op {
                        BinaryOp::Add => l + r,
                        BinaryOp::Sub => l - r,
                        BinaryOp::Mul => l * r,
                        BinaryOp::Div => l / r,
                        BinaryOp::Pow => l.powf(r),
                        _ if l.is_nan() || r.is_nan() => f64::NAN,
                        BinaryOp::Lt => truth(l < r),
                        BinaryOp::Le => truth(l <= r),
                        BinaryOp::Gt => truth(l > r),
                        BinaryOp::Ge => truth(l >= r),
                        BinaryOp::Eq => truth(l == r),
                        _ => truth(l != r), // Ne
                    };
                    out.push(self.defined(value, active[i] && !l.is_nan() && !r.is_nan(), i, e)?);
                }
                out
            }
            ExprKind::Call(function, args) => self.call(*function, args, e, active)?,
        };
        Ok(values.into_iter().zip(active).map(|(v, &on)| if on { v } else { f64::NAN }).collect())
    }

    fn call(&mut self, function: Function, args: &[Expr], e: &Expr, active: &[bool]) -> Result<Vec<f64>, ExprError> {
        let n = active.len();
        match function {
            Function::If => {
                let condition = self.eval(&args[0], active)?;
                let when = |want: f64| -> Vec<bool> {
                    active.iter().zip(&condition).map(|(&on, &c)| on && c == want).collect()
                };
                let (yes, no) = (when(1.0), when(0.0));
                let (then, otherwise) = (self.eval(&args[1], &yes)?, self.eval(&args[2], &no)?);
                Ok((0..n)
                    .map(|i| {
                        if yes[i] {
                            then[i]
                        } else if no[i] {
                            otherwise[i]
                        } else {
                            f64::NAN
                        }
                    })
                    .collect())
            }
            Function::IsMissing => Ok(self.eval(&args[0], active)?.into_iter().map(|v| truth(v.is_nan())).collect()),
            Function::Coalesce => {
                let first = self.eval(&args[0], active)?;
                let needed: Vec<bool> = active.iter().zip(&first).map(|(&on, &v)| on && v.is_nan()).collect();
                let second = self.eval(&args[1], &needed)?;
                Ok(first.into_iter().zip(second).map(|(a, b)| if a.is_nan() { b } else { a }).collect())
            }
            Function::Min | Function::Max => {
                let mut out = self.eval(&args[0], active)?;
                for arg in &args[1..] {
                    let next = self.eval(arg, active)?;
                    for (o, v) in out.iter_mut().zip(next) {
                        // f64::min ignores NaN; a missing argument must make the result missing.
                        *o = if o.is_nan() || v.is_nan() {
                            f64::NAN
                        } else if function == Function::Min {
                            o.min(v)
                        } else {
                            o.max(v)
                        };
                    }
                }
                Ok(out)
            }
            Function::Abs | Function::Sqrt | Function::Log | Function::Exp | Function::Round => {
                let x = self.eval(&args[0], active)?;
                let mut out = Vec::with_capacity(n);
                for (i, v) in x.into_iter().enumerate() {
                    let value = match function {
                        Function::Abs => v.abs(),
                        Function::Sqrt => v.sqrt(),
                        Function::Log => v.ln(),
                        Function::Exp => v.exp(),
                        _ => v.round_ties_even(),
                    };
                    out.push(self.defined(value, active[i] && !v.is_nan(), i, e)?);
                }
                Ok(out)
            }
        }
    }

    /// `value` when it is a finite number; otherwise (from present inputs: `inputs_present`) the
    /// operation `e` was undefined at `row`, an error or a counted missing value by the policy.
    fn defined(&mut self, value: f64, inputs_present: bool, row: usize, e: &Expr) -> Result<f64, ExprError> {
        if value.is_finite() || !inputs_present {
            return Ok(value);
        }
        if self.policy == Undefined::Missing {
            self.undefined[row] = true;
            return Ok(f64::NAN);
        }
        Err(self.undefined_error(row, e))
    }

    fn undefined_error(&self, row: usize, e: &Expr) -> ExprError {
        let value_at = |x: &Expr| -> Option<f64> {
            let mut evaluator = Evaluator {
                checked: self.checked,
                get: self.get,
                ids: self.ids,
                policy: Undefined::Missing,
                undefined: vec![false; self.ids.len()],
            };
            let mut only = vec![false; self.ids.len()];
            only[row] = true;
            evaluator.eval(x, &only).ok().map(|v| v[row])
        };
        // The operand whose value makes the operation undefined, and what went wrong.
        let (culprit, what) = match &e.kind {
            ExprKind::Binary(BinaryOp::Div, _, b) if value_at(b) == Some(0.0) => (&**b, "divides by zero"),
            ExprKind::Binary(BinaryOp::Pow, a, b) => {
                let (base, power) = (value_at(a).unwrap_or(f64::NAN), value_at(b).unwrap_or(f64::NAN));
                if base < 0.0 && power.fract() != 0.0 {
                    (e, "raises a negative number to a fractional power")
                } else if base == 0.0 && power < 0.0 {
                    (e, "raises 0 to a negative power")
                } else {
                    (e, "gives a number too large to represent")
                }
            }
            ExprKind::Call(Function::Log, args) => (&args[0], "takes the log of a number that is not positive"),
            ExprKind::Call(Function::Sqrt, args) => (&args[0], "takes the square root of a negative number"),
            _ => (e, "gives a number too large to represent"),
        };
        let mut values: Vec<String> = Vec::new();
        for column in culprit.columns() {
            let value = (self.get)(column).and_then(|v| v.get(row).copied()).unwrap_or(f64::NAN);
            let shown = if value.is_nan() { "missing".to_string() } else { format_number(value) };
            values.push(format!("{column} = {shown}"));
        }
        let values = if values.is_empty() { String::new() } else { format!(" ({})", values.join(", ")) };
        let source = self.checked.text.get(e.span.clone()).map_or_else(|| e.to_string(), str::to_string);
        let subject = self.ids.get(row).map_or_else(|| format!("row {}", row + 1), |id| format!("subject {id}"));
        ExprError::new(e.span.clone(), format!("{subject}: `{source}` {what}{values}"))
            .hint("guard it with `if(…)`, or let undefined values become missing")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NA: f64 = f64::NAN;

    fn defs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// Check `pairs` against `data`'s columns and evaluate them all.
    fn run(pairs: &[(&str, &str)], data: &[(&str, Vec<f64>)], policy: Undefined) -> Result<Vec<Evaluated>, ExprError> {
        let columns: Vec<String> = data.iter().map(|(n, _)| n.to_string()).collect();
        let checked = check(&defs(pairs), &columns).unwrap_or_else(|e| panic!("check failed: {e:?}"));
        let n = data.first().map_or(1, |(_, v)| v.len());
        let ids: Vec<String> = (1..=n).map(|i| format!("s{i}")).collect();
        let get = |name: &str| data.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_slice());
        evaluate_all(&checked, &get, &ids, &|_| policy)
    }

    /// The values of one expression.
    fn values(text: &str, data: &[(&str, Vec<f64>)]) -> Vec<f64> {
        run(&[("out", text)], data, Undefined::Error).unwrap().remove(0).values
    }

    fn constant(text: &str) -> f64 {
        values(text, &[])[0]
    }

    /// Equal, counting NaN (missing) as equal to NaN.
    fn same(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
    }

    fn parse_error(text: &str) -> (String, Range<usize>) {
        let e = parse(text).unwrap_err();
        (e.message, e.span.unwrap())
    }

    fn check_errors(pairs: &[(&str, &str)], columns: &[&str]) -> Vec<ExprError> {
        check(&defs(pairs), &names(columns)).unwrap_err()
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(constant("1 + 2 * 3 ^ 2"), 19.0);
        assert_eq!(constant("-2 ^ 2"), -4.0);
        assert_eq!(constant("(-2) ^ 2"), 4.0);
        assert_eq!(constant("2 ^ 3 ^ 2"), 512.0);
        assert_eq!(constant("2 ^ -1"), 0.5);
        assert_eq!(constant("2 ^ -1 * 3"), 1.5);
        assert_eq!(constant("10 - 4 - 3"), 3.0);
        assert_eq!(constant("8 / 4 / 2"), 1.0);
        assert_eq!(constant("(1 + 2) * 3"), 9.0);
        assert_eq!(constant("1e-3 * 1000 + .5"), 1.5);
        assert_eq!(constant("1 + 1 == 2 and not 3 < 2 or 1 > 2"), 1.0);
        assert_eq!(parse("a && !b || c").unwrap(), parse("(a and (not b)) or c").unwrap());
        assert_eq!(parse("not a < b").unwrap(), parse("not (a < b)").unwrap());
        assert_eq!(parse("-a * b").unwrap(), parse("(-a) * b").unwrap());
    }

    #[test]
    fn functions() {
        assert_eq!(constant("abs(-3) + sqrt(16) + exp(0) + log(1)"), 8.0);
        assert_eq!(constant("min(3, 1, 2) + max(3, 1, 2)"), 4.0);
        assert_eq!(constant("round(2.5) + round(3.5) + round(-1.5) + round(0.4)"), 4.0);
        assert_eq!(constant("if(1 < 2, 10, 20)"), 10.0);
        assert_eq!(constant("if(1 > 2, 10, 20)"), 20.0);
    }

    #[test]
    fn display_is_canonical() {
        let cases = [
            ("1+2*3^2", "1 + 2 * 3 ^ 2"),
            ("(1+2)*3", "(1 + 2) * 3"),
            ("a-(b-c)", "a - (b - c)"),
            ("(a-b)-c", "a - b - c"),
            ("(2^3)^2", "(2 ^ 3) ^ 2"),
            ("2^(3^2)", "2 ^ 3 ^ 2"),
            ("(-2)^2", "(-2) ^ 2"),
            ("-(2^2)", "-2 ^ 2"),
            ("2^-1", "2 ^ (-1)"),
            ("--a", "-(-a)"),
            ("a && !b || c", "a and not b or c"),
            ("!(a < b)", "not a < b"),
            ("not (a and b)", "not (a and b)"),
            ("(a < b) == (c < d)", "(a < b) == (c < d)"),
            ("`odd name` + `and` + x.1", "`odd name` + `and` + x.1"),
            ("1e-3 + 1E300 + 2.50 + 1e-7", "0.001 + 1e300 + 2.5 + 1e-7"),
            ("log( dose+1 )", "log(dose + 1)"),
            ("IF", "IF"),
            ("if(a>1,coalesce(b,0),-1)", "if(a > 1, coalesce(b, 0), -1)"),
        ];
        for (text, canonical) in cases {
            assert_eq!(parse(text).unwrap().to_string(), canonical, "{text}");
        }
    }

    #[test]
    fn display_round_trips() {
        let texts = [
            "1 + 2 * 3 ^ 2",
            "-2 ^ 2 ^ -a",
            "(madrs_pre - madrs_post) / madrs_pre >= 0.5",
            "hama >= 14 and not excluded or `odd-name` != 3",
            "not not (a < b) and (c or d)",
            "a - -b * -(c - d) / (e / f)",
            "if(is_missing(a), coalesce(b, c), min(a, b, 1e-9, 123456789.25))",
            "((a)) ^ (b ^ c) ^ d",
            "0.1 + 0.2 + 1e22 + 3e-300",
        ];
        for text in texts {
            let expr = parse(text).unwrap();
            let shown = expr.to_string();
            assert_eq!(parse(&shown).unwrap(), expr, "{text} → {shown}");
            assert_eq!(parse(&shown).unwrap().to_string(), shown, "{text}: display is a fixed point");
        }
    }

    #[test]
    fn the_longest_expressions_do_not_exhaust_the_stack() {
        let data = [("a", vec![1.0, NA])];
        let negations = format!("{}a", "-".repeat(MAX_PARTS - 1));
        assert!(same(&values(&negations, &data), &[-1.0, NA]));
        let nots = format!("{}a > 0", "not ".repeat(MAX_PARTS - 3));
        assert!(same(&values(&nots, &data), &[0.0, NA]));
        let nested = format!("{}a{}", "(-".repeat(MAX_PARTS - 1), ")".repeat(MAX_PARTS - 1));
        assert!(same(&values(&nested, &data), &[-1.0, NA]));
        let powers = format!("{}a", "a ^ ".repeat((MAX_PARTS - 1) / 2));
        assert!(same(&values(&powers, &data), &[1.0, NA]));
        let sums = format!("{}a{}", "a + (".repeat((MAX_PARTS - 1) / 2), ")".repeat((MAX_PARTS - 1) / 2));
        assert!(same(&values(&sums, &data), &[500.0, NA]));
        for text in [&negations, &nots, &nested, &powers, &sums] {
            let expr = parse(text).unwrap();
            assert_eq!(parse(&expr.to_string()).unwrap(), expr, "the canonical form parses too");
        }
    }

    #[test]
    fn columns_are_listed_once_in_order() {
        let expr = parse("b + a * b + `c d` + log(a)").unwrap();
        assert_eq!(expr.columns(), vec!["b", "a", "c d"]);
    }

    #[test]
    fn syntax_errors_say_what_and_where() {
        let cases: [(&str, &str, Range<usize>); 14] = [
            ("a < b < c", "comparisons cannot be chained", 6..7),
            ("a == b != c", "comparisons cannot be chained", 7..9),
            ("madrs +", "`+` needs a value after it, found the end", 6..7),
            ("a * / b", "`*` needs a value after it, found `/`", 2..3),
            ("(a + b", "this `(` is never closed", 0..1),
            ("a + b)", "`)` without a matching `(`", 5..6),
            ("a b", "expected an operator, found `b`", 2..3),
            ("lg(x)", "unknown function `lg`", 0..2),
            ("log(x, y)", "`log` takes 1 argument, not 2", 0..9),
            ("min(x)", "`min` takes at least 2 arguments, not 1", 0..6),
            ("a = b", "unexpected character `=`", 2..3),
            ("2x + 1", "`2x` is not a number", 0..2),
            ("x ** 2", "`**` is not an operator", 2..4),
            ("`unclosed + 1", "unclosed backquote", 0..13),
        ];
        for (text, message, span) in cases {
            assert_eq!(parse_error(text), (message.to_string(), span), "{text}");
        }
        assert_eq!(parse_error("  ").0, "the expression is empty");
        assert_eq!(parse_error("1e+").0, "`1e+` is not a number");
        assert_eq!(parse("lg(x)").unwrap_err().hint.as_deref(), Some("did you mean `log`?"));
        assert_eq!(parse("a = b").unwrap_err().hint.as_deref(), Some("compare with `==`"));
        assert!(parse("(a < b) < c").is_ok(), "parentheses make a chain explicit");
        // Size limits give errors, never a stack overflow.
        let parts = vec!["a"; 501].join(" + ");
        assert_eq!(parse_error(&parts).0, "the expression is too long (1001 parts; at most 1000)");
        let parentheses = format!("{}a{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert_eq!(parse_error(&parentheses), ("the expression is nested more than 2001 deep".to_string(), 2001..2002));
        let parentheses = format!("{}a{}", "(".repeat(MAX_NESTING - 1), ")".repeat(MAX_NESTING - 1));
        assert_eq!(parse(&parentheses).unwrap().to_string(), "a");
    }

    #[test]
    fn unknown_column_suggests_and_renders_with_carets() {
        let errors = check_errors(
            &[("response", "(madrs_pre - madrs_pst) / madrs_pre >= 0.5")],
            &["eid", "madrs_pre", "madrs_post"],
        );
        assert_eq!(errors.len(), 1);
        let e = &errors[0];
        assert_eq!((e.name.as_str(), e.message.as_str()), ("response", "unknown column `madrs_pst`"));
        assert_eq!(e.hint.as_deref(), Some("did you mean `madrs_post`?"));
        assert_eq!((e.span.clone(), e.char_offset()), (Some(13..22), 13));
        assert_eq!(
            e.render(),
            format!(
                "response = \"(madrs_pre - madrs_pst) / madrs_pre >= 0.5\"\n{}^^^^^^^^^ unknown column `madrs_pst`; \
                 did you mean `madrs_post`?",
                " ".repeat(25)
            )
        );
        assert_eq!(
            e.to_string(),
            "derived variable `response`: unknown column `madrs_pst`; did you mean `madrs_post`?"
        );
        // In a study file the expression starts after `response = "`: line 3, column 13 + 13.
        let source = "[derived]\nchange = \"a\"\nresponse = \"(madrs_pre - madrs_pst) / madrs_pre >= 0.5\"\n";
        let start = source.find("(madrs").unwrap();
        let d = e.to_diagnostic(Path::new("study.toml"), source, start);
        assert_eq!((d.line, d.col), (3, 26));
        assert_eq!(d.message, "derived variable `response`: unknown column `madrs_pst`");
    }

    #[test]
    fn type_errors_name_the_side_and_what_it_is() {
        let columns = ["madrs", "a", "b", "x", "hama"];
        let cases: [(&str, &str, Range<usize>); 8] = [
            ("madrs + (a > b)", "`+` needs numbers but its right side is a comparison (true/false)", 8..15),
            (
                "if(x, 1, 2)",
                "the condition of `if` needs true/false values but its first argument is the column `x` (a number)",
                3..4,
            ),
            ("hama and a > 1", "`and` needs true/false values but its left side is the column `hama` (a number)", 0..4),
            ("a > 1 or 2", "`or` needs true/false values but its right side is the number 2", 9..10),
            ("not x", "`not` needs true/false values but its operand is the column `x` (a number)", 4..5),
            ("-(a < b)", "`-` needs numbers but its operand is a comparison (true/false)", 1..8),
            ("log(is_missing(a))", "`log` needs numbers but its argument is a missing-value test (true/false)", 4..17),
            (
                "if(a > b, 1, a > 2)",
                "the two branches of `if` must have one type, but the second argument is the number 1 and the third \
                 is a comparison (true/false)",
                10..18,
            ),
        ];
        for (text, message, span) in cases {
            let errors = check_errors(&[("out", text)], &columns);
            assert_eq!(errors.len(), 1, "{text}: {errors:?}");
            assert_eq!((errors[0].message.as_str(), errors[0].span.clone()), (message, Some(span)), "{text}");
        }
        let e = &check_errors(&[("out", "a == (a > b)")], &columns)[0];
        assert_eq!(
            e.message,
            "`==` compares values of one type, but its left side is the column `a` (a number) and its right side \
             is a comparison (true/false)"
        );
        assert_eq!(check_errors(&[("out", "hama and a")], &columns).len(), 2, "both sides are reported");
        let e = &check_errors(&[("out", "sqrt + 1")], &columns)[0];
        assert_eq!(e.hint.as_deref(), Some("`sqrt` is a function: write `sqrt(…)`"));
    }

    #[test]
    fn every_problem_is_reported_once() {
        let errors = check_errors(
            &[("good", "a + 1"), ("typo", "a + bb + cc"), ("broken", "a +"), ("uses_broken", "broken * 2"), ("a", "1")],
            &["a", "b", "c"],
        );
        let summary: Vec<(&str, &str)> = errors.iter().map(|e| (e.name.as_str(), e.message.as_str())).collect();
        assert_eq!(
            summary,
            vec![
                ("typo", "unknown column `bb`"),
                ("typo", "unknown column `cc`"),
                ("broken", "`+` needs a value after it, found the end"),
                ("a", "`a` is already a column"),
            ]
        );
        assert_eq!(errors[3].span, None);
        assert_eq!(errors[3].render(), "a = \"1\"\n`a` is already a column; give the derived variable a new name");
    }

    #[test]
    fn derived_booleans_stay_booleans() {
        let checked = check(&defs(&[("both", "flag and a > 0"), ("flag", "a > 1")]), &names(&["a"])).unwrap();
        let order: Vec<(&str, Type)> = checked.iter().map(|c| (c.name.as_str(), c.ty)).collect();
        assert_eq!(order, vec![("flag", Type::Bool), ("both", Type::Bool)]);
        assert_eq!(checked[1].uses, vec!["flag"]);
        let e = &check_errors(&[("flag", "a > 1"), ("n", "flag + 1")], &["a"])[0];
        assert_eq!(e.message, "`+` needs numbers but its left side is `flag` (true/false)");
        assert_eq!(e.hint.as_deref(), Some("turn true/false into 1/0 with `if(condition, 1, 0)`"));
    }

    #[test]
    fn order_follows_dependencies_then_the_given_order() {
        let checked =
            check(&defs(&[("z", "y + 1"), ("y", "a * 2"), ("w", "a"), ("v", "z + y")]), &names(&["a"])).unwrap();
        let order: Vec<&str> = checked.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(order, vec!["y", "z", "w", "v"]);
    }

    #[test]
    fn cycles_are_named_once() {
        let errors =
            check_errors(&[("d", "a"), ("b", "c + 1"), ("a", "2 * b"), ("c", "a + x"), ("x", "x + 1")], &["y"]);
        let summary: Vec<(&str, &str, Option<Range<usize>>)> =
            errors.iter().map(|e| (e.name.as_str(), e.message.as_str(), e.span.clone())).collect();
        assert_eq!(
            summary,
            vec![
                ("b", "derived variables use each other in a cycle: `b` → `c` → `a` → `b`", Some(0..1)),
                ("x", "`x` uses itself", Some(0..1)),
            ]
        );
    }

    #[test]
    fn missing_values_propagate() {
        let data = [("a", vec![1.0, NA, 4.0]), ("b", vec![2.0, 3.0, NA])];
        assert!(same(&values("a + b", &data), &[3.0, NA, NA]));
        assert!(same(&values("sqrt(a) * 2", &data), &[2.0, NA, 4.0]));
        assert!(same(&values("max(a, b)", &data), &[2.0, NA, NA]));
        assert!(same(&values("a < b", &data), &[1.0, NA, NA]));
        assert!(same(&values("if(a > 2, 1, 0)", &data), &[0.0, NA, 1.0]));
        assert!(same(&values("a / b", &data), &[0.5, NA, NA]), "missing divisor is not undefined");
        assert!(same(&values("is_missing(a)", &data), &[0.0, 1.0, 0.0]));
        assert!(same(&values("coalesce(a, b)", &data), &[1.0, 3.0, 4.0]));
        assert!(same(&values("coalesce(a, -1) + coalesce(b, -1)", &data), &[3.0, 2.0, 3.0]));
    }

    #[test]
    fn backquotes_reach_any_column_name() {
        let data = [("CES-D total", vec![10.0, NA]), ("and", vec![1.0, 2.0])];
        assert!(same(&values("`CES-D total` * 2 + `and`", &data), &[21.0, NA]));
        let pairs = [("flag", "`CES-D total` > 5"), ("unknown", "is_missing(flag) or not flag")];
        let out = run(&pairs, &data, Undefined::Error).unwrap();
        assert!(same(&out[1].values, &[0.0, 1.0]));
        assert_eq!(parse_error("`` + 1"), ("empty column name ``".to_string(), 0..2));
    }

    #[test]
    fn logic_is_three_valued() {
        // Every pair of (true, false, missing).
        let p = vec![1.0, 1.0, 1.0, 0.0, 0.0, 0.0, NA, NA, NA];
        let q = vec![1.0, 0.0, NA, 1.0, 0.0, NA, 1.0, 0.0, NA];
        let data = [("p", p), ("q", q)];
        let and = [1.0, 0.0, NA, 0.0, 0.0, 0.0, NA, 0.0, NA];
        let or = [1.0, 1.0, 1.0, 1.0, 0.0, NA, 1.0, NA, NA];
        let not = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, NA, NA, NA];
        assert!(same(&values("p == 1 and q == 1", &data), &and));
        assert!(same(&values("p == 1 && q == 1", &data), &and));
        assert!(same(&values("p == 1 or q == 1", &data), &or));
        assert!(same(&values("not p == 1", &data), &not));
    }

    fn madrs() -> [(&'static str, Vec<f64>); 2] {
        [("madrs_pre", vec![20.0, 0.0, NA]), ("madrs_post", vec![8.0, 3.0, 5.0])]
    }

    #[test]
    fn undefined_operations_stop_with_subject_and_values() {
        let pairs = [("response", "(madrs_pre - madrs_post) / madrs_pre >= 0.5")];
        let columns = names(&["madrs_pre", "madrs_post"]);
        let checked = check(&defs(&pairs), &columns).unwrap();
        let data = madrs();
        let get = |name: &str| data.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_slice());
        let ids = names(&["11", "17", "23"]);
        let e = evaluate(&checked[0], &get, &ids, Undefined::Error).unwrap_err();
        assert_eq!(e.message, "subject 17: `(madrs_pre - madrs_post) / madrs_pre` divides by zero (madrs_pre = 0)");
        assert_eq!((e.name.as_str(), e.span.clone()), ("response", Some(0..36)));
        assert!(e.to_string().starts_with("derived variable `response`: subject 17: "));

        let log = run(&[("log_dose", "log(dose + 1)")], &[("dose", vec![0.0, -1.0])], Undefined::Error).unwrap_err();
        assert_eq!(
            log.message,
            "subject s2: `log(dose + 1)` takes the log of a number that is not positive (dose = -1)"
        );
        let sqrt = run(&[("r", "sqrt(a - b)")], &[("a", vec![1.0]), ("b", vec![2.5])], Undefined::Error).unwrap_err();
        assert_eq!(
            sqrt.message,
            "subject s1: `sqrt(a - b)` takes the square root of a negative number (a = 1, b = 2.5)"
        );
        let power = run(&[("r", "a ^ 0.5")], &[("a", vec![-8.0])], Undefined::Error).unwrap_err();
        assert_eq!(power.message, "subject s1: `a ^ 0.5` raises a negative number to a fractional power (a = -8)");
        let big = run(&[("r", "exp(a)")], &[("a", vec![1000.0])], Undefined::Error).unwrap_err();
        assert_eq!(big.message, "subject s1: `exp(a)` gives a number too large to represent (a = 1000)");
    }

    #[test]
    fn undefined_operations_can_become_missing_and_are_counted() {
        let pairs =
            [("ratio", "(madrs_pre - madrs_post) / madrs_pre"), ("both", "1 / madrs_pre + log(madrs_pre - 10)")];
        let out = run(&pairs, &madrs(), Undefined::Missing).unwrap();
        assert!(same(&out[0].values, &[0.6, NA, NA]));
        assert_eq!(out[0].undefined, 1, "subject 3 is missing, not undefined");
        assert!(same(&out[1].values, &[0.05 + 10f64.ln(), NA, NA]));
        assert_eq!(out[1].undefined, 1, "two undefined operations for one subject count once");
    }

    #[test]
    fn branches_not_taken_are_not_computed() {
        let data = madrs();
        let guarded = [
            "if(madrs_pre != 0, (madrs_pre - madrs_post) / madrs_pre, 0)",
            "madrs_pre != 0 and madrs_post / madrs_pre > 0.1",
            "madrs_pre == 0 or madrs_post / madrs_pre > 0.1",
            "coalesce(if(madrs_pre == 0, -1, 1 / madrs_pre), 0) * 2",
        ];
        for text in guarded {
            let out = run(&[("out", text)], &data, Undefined::Error).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(out[0].undefined, 0);
        }
        assert!(same(&values(guarded[0], &data), &[0.6, 0.0, NA]));
        assert!(same(&values(guarded[1], &data), &[1.0, 0.0, NA]));
    }

    #[test]
    fn derived_variables_read_earlier_ones() {
        let pairs = [("response", "change / madrs_pre >= 0.5"), ("change", "madrs_pre - madrs_post")];
        let out = run(&pairs, &madrs(), Undefined::Missing).unwrap();
        let by_name: Vec<(&str, Type)> = out.iter().map(|e| (e.name.as_str(), e.ty)).collect();
        assert_eq!(by_name, vec![("change", Type::Number), ("response", Type::Bool)]);
        assert!(same(&out[0].values, &[12.0, -3.0, NA]));
        assert!(same(&out[1].values, &[1.0, NA, NA]));
        assert_eq!(out[1].undefined, 1);
    }
}
