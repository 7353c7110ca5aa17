//! Diagnostics: one problem in a pipeline file, with where it is.

use std::fmt;

/// One problem found in a pipeline file.
///
/// Displays as `daily.toml:12:5: step `ingest`: unknown key `fromat``.
/// `line` and `column` are 1-based; the column counts characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file name as given to [`load`](crate::load).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The step the problem is in, if any.
    pub step: Option<String>,
    /// The dotted key path the problem is at (inside the step when
    /// `step` is set, e.g. `filter.method`), if any.
    pub key: Option<String>,
    /// What is wrong, as a sentence fragment without a trailing period.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if let Some(step) = &self.step {
            write!(f, "step `{step}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

/// The 1-based line and column (in characters) of a byte offset.
///
/// Offsets past the end point just after the last character, and an
/// offset inside a multi-byte character counts as that character.
pub fn line_col(source: &str, byte_offset: usize) -> (usize, usize) {
    let mut offset = byte_offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = source.as_bytes().get(..offset).unwrap_or_default();
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |nl| nl + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = source.get(line_start..offset).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        let s = "ab\ncdé\nf";
        assert_eq!(line_col(s, 0), (1, 1));
        assert_eq!(line_col(s, 1), (1, 2));
        assert_eq!(line_col(s, 2), (1, 3));
        assert_eq!(line_col(s, 3), (2, 1));
        assert_eq!(line_col(s, 5), (2, 3));
        // Inside `é` (two bytes) counts as `é`.
        assert_eq!(line_col(s, 6), (2, 3));
        assert_eq!(line_col(s, 7), (2, 4));
        assert_eq!(line_col(s, 8), (3, 1));
        assert_eq!(line_col(s, 100), (3, 2));
        assert_eq!(line_col("", 5), (1, 1));
    }

    #[test]
    fn display() {
        let mut d = Diagnostic {
            file: "daily.toml".into(),
            line: 12,
            column: 5,
            step: Some("ingest".into()),
            key: Some("fromat".into()),
            message: "unknown key `fromat`".into(),
        };
        assert_eq!(d.to_string(), "daily.toml:12:5: step `ingest`: unknown key `fromat`");
        d.step = None;
        assert_eq!(d.to_string(), "daily.toml:12:5: unknown key `fromat`");
    }
}
