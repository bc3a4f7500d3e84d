//! Errors and diagnostics.
//!
//! Two kinds of failure reach the user. A [`Diagnostic`] points into a file the user wrote (the
//! study TOML, or a data table) at `FILE:LINE:COL`, with a message and a hint; a study can produce
//! many at once. An [`Error`] is anything else that stops a command: a data problem found while
//! running a stage (naming the subject, column and value), an I/O failure with its path, or bad
//! command-line usage. The command line maps them to exit codes: 1 for study or data errors,
//! 2 for usage errors.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem located in a user file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line; 0 when the problem concerns the whole file.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at a byte offset of `source` (the text of `file`).
    pub fn at_offset(file: &Path, source: &str, offset: usize, message: impl Into<String>) -> Self {
        let (line, col) = line_col(source, offset);
        Diagnostic { file: file.to_path_buf(), line, col, message: message.into(), hint: None }
    }

    /// A diagnostic about a whole file (no position).
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        Diagnostic { file: file.to_path_buf(), line: 0, col: 0, message: message.into(), hint: None }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.col, self.message)?;
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// 1-based (line, column) of a byte offset; columns count characters, not bytes.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..floor_char_boundary(source, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Everything that can stop a command.
#[derive(Debug)]
pub enum Error {
    /// Problems in the study file or its declared inputs, found before any compute.
    Study(Vec<Diagnostic>),
    /// A data problem found while computing (names file/subject/column/value in the message).
    Data(String),
    /// A file-system failure, with the path involved.
    Io { path: PathBuf, source: std::io::Error },
    /// The command line asked for something impossible.
    Usage(String),
    /// One or more stages failed (their messages are in the list).
    Stages(Vec<(String, String)>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().to_path_buf(), source }
    }
    pub fn data(message: impl Into<String>) -> Self {
        Error::Data(message.into())
    }
    /// The process exit code for this error: 2 for usage, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Study(diagnostics) => {
                for (i, d) in diagnostics.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "error: {d}")?;
                }
                let n = diagnostics.len();
                write!(f, "\n{n} problem{} found", if n == 1 { "" } else { "s" })
            }
            Error::Data(message) => write!(f, "error: {message}"),
            Error::Io { path, source } => write!(f, "error: {}: {source}", path.display()),
            Error::Usage(message) => write!(f, "error: {message}"),
            Error::Stages(failures) => {
                for (stage, message) in failures {
                    writeln!(f, "error: stage {stage} failed: {message}")?;
                }
                write!(f, "{} stage(s) failed", failures.len())
            }
        }
    }
}

impl std::error::Error for Error {}

/// Edit distance for did-you-mean hints (Levenshtein, on characters).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// The closest candidate to `name` when it is plausibly a typo of it.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&name.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let s = "a = 1\nbé = 2\n";
        assert_eq!(line_col(s, 0), (1, 1));
        assert_eq!(line_col(s, 6), (2, 1));
        assert_eq!(line_col(s, 9), (2, 3));
    }

    #[test]
    fn suggestions_are_close_names_only() {
        assert_eq!(did_you_mean("rotaton", ["rotation", "method"]), Some("rotation"));
        assert_eq!(did_you_mean("zzz", ["rotation", "method"]), None);
    }
}
