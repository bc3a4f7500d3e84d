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

/// Whether a problem stops the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Severity {
    #[default]
    Error,
    /// Reported, but the study still runs (e.g. a region that keeps few voxels on a grid).
    Warning,
}

impl Severity {
    /// The word a rendered problem starts with.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem located in a user file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
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
        Diagnostic {
            severity: Severity::Error,
            file: file.to_path_buf(),
            line,
            col,
            message: message.into(),
            hint: None,
        }
    }

    /// A diagnostic about a whole file (no position).
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: file.to_path_buf(),
            line: 0,
            col: 0,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The same problem, reported as a warning.
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// As printed: `error: FILE:LINE:COL: message` (or `warning: …`), then the hint.
    pub fn render(&self) -> String {
        format!("{}: {self}", self.severity.label())
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
    /// Several data problems found together, one message each.
    Problems(Vec<String>),
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

/// The plain message, as it reads inside another message (`subject 07: …`); [`Error::render`]
/// gives what the command line prints.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Study(diagnostics) => {
                for (i, d) in diagnostics.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{d}")?;
                }
                Ok(())
            }
            Error::Data(message) | Error::Usage(message) => f.write_str(message),
            Error::Problems(messages) => f.write_str(&messages.join("\n")),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Stages(failures) => {
                for (i, (stage, message)) in failures.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "stage {stage} failed: {message}")?;
                }
                Ok(())
            }
        }
    }
}

impl Error {
    /// What the command line prints: every problem on its own line(s) after `error: ` (or
    /// `warning: `), and a count where there can be many.
    pub fn render(&self) -> String {
        match self {
            Error::Study(diagnostics) => {
                let lines: Vec<String> = diagnostics.iter().map(Diagnostic::render).collect();
                let n = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
                format!("{}\n{n} problem{} found", lines.join("\n"), if n == 1 { "" } else { "s" })
            }
            Error::Problems(messages) => messages.iter().map(|m| format!("error: {m}")).collect::<Vec<_>>().join("\n"),
            Error::Stages(failures) => {
                let lines: Vec<String> =
                    failures.iter().map(|(stage, message)| format!("error: stage {stage} failed: {message}")).collect();
                format!("{}\n{} stage(s) failed", lines.join("\n"), failures.len())
            }
            other => format!("error: {other}"),
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
